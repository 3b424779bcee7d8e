// Private: where a child's stdout and stderr go, and reading them back.
#pragma once

#include <cstddef>
#include <string>

#include "asyncflow/backend/backend.hpp"

namespace asyncflow::detail {

/// The child's stdout and stderr: files `{work_dir}/{uid}.stdout|.stderr` when the task
/// captures stdio, else anonymous memory files (memfd) that vanish with their descriptors.
/// Owns the two descriptors. Movable, not copyable.
class OutputSinks {
 public:
  OutputSinks() = default;
  /// Opens the sinks for `task`. Throws asyncflow::Error naming the file that failed.
  static OutputSinks open(const BackendTask& task);
  ~OutputSinks();
  OutputSinks(OutputSinks&& o) noexcept;
  OutputSinks& operator=(OutputSinks&& o) noexcept;
  OutputSinks(const OutputSinks&) = delete;
  OutputSinks& operator=(const OutputSinks&) = delete;

  int stdout_fd() const noexcept { return out_; }
  int stderr_fd() const noexcept { return err_; }
  /// The task's result: the stdout text, or the stdout file's path when captured to files.
  std::string result() const;
  /// The last `max` bytes of stderr (from a line start when one is near), "" when empty.
  std::string stderr_tail(std::size_t max) const;

 private:
  int out_ = -1;
  int err_ = -1;
  std::string out_path_;  // empty: memfd
};

}  // namespace asyncflow::detail
