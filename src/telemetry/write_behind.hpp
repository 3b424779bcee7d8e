// Internal: writes checkpoint buffers on a thread of its own, so the dispatcher formats the
// next lines while the kernel copies the last ones (write() was a fifth of the dispatcher's
// time on the overhead benchmark).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "asyncflow/telemetry/checkpoint.hpp"
#include "line_buffer.hpp"

namespace asyncflow::detail {

/// Owns the writer thread ("af-checkpoint"). submit() and drain() are thread-safe; stop() is
/// called by one thread (the manager's stop, or the destructor). The CheckpointWriter belongs
/// to the writer thread until stop() returns.
class WriteBehind {
 public:
  /// At most this many buffers (of about 1 MiB) wait for the writer; submit() then waits
  /// (the disk sets the pace, memory stays bounded).
  static constexpr std::size_t kMaxQueued = 4;

  explicit WriteBehind(CheckpointWriter& writer);
  ~WriteBehind();  // stop()
  WriteBehind(const WriteBehind&) = delete;
  WriteBehind& operator=(const WriteBehind&) = delete;

  /// Queues the lines in `buffer` and leaves `buffer` empty (with the capacity of a buffer
  /// already written, so formatting does not reallocate).
  void submit(LineBuffer& buffer);
  /// Returns true when every buffer submitted before the call has been handed to the OS,
  /// false when `deadline` came first.
  bool drain(std::chrono::steady_clock::time_point deadline);
  /// drain(), then ends the thread. Idempotent.
  void stop();

 private:
  void run();

  CheckpointWriter& writer_;
  std::mutex mu_;
  std::condition_variable work_cv_;  // the writer waits for buffers / stop
  std::condition_variable done_cv_;  // submit() and drain() wait for room / completion
  std::deque<LineBuffer> queue_;
  std::vector<LineBuffer> spare_;  // written buffers, kept for their capacity
  bool writing_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace asyncflow::detail
