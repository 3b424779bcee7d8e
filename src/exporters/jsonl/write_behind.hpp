// Internal: writes checkpoint buffers on a thread of its own, so the formatting thread formats
// the next lines while the kernel copies the last ones (write() was a fifth of the dispatcher's
// time on the overhead benchmark), and hands over what is formatted at least every 100 ms.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "asyncflow/common/thread_annotations.hpp"
#include "line_buffer.hpp"

namespace asyncflow::jsonl::detail {

/// Owns the writer thread ("af-checkpoint"). submit(), poke() and drain() are thread-safe;
/// stop() is called by one thread.
class WriteBehind {
 public:
  /// At most this many buffers (of about 1 MiB) wait for the writer; submit() then waits
  /// (the disk sets the pace, memory stays bounded).
  static constexpr std::size_t kMaxQueued = 4;
  /// Buffers written are kept for reuse, up to every buffer that can be in use at once (the
  /// queue, the one being written, the formatter's two): none is freed and made again.
  static constexpr std::size_t kMaxSpare = kMaxQueued + 3;
  /// How late formatted lines may reach the file (a reader or `tail -f` sees them then).
  static constexpr std::chrono::milliseconds kWriteInterval{100};

  /// `write` writes one buffer (the writer thread only). `pull` moves what is formatted but
  /// not submitted into its argument, or leaves it empty when it cannot now (it must not wait
  /// for a submit(): it runs on the writer thread).
  WriteBehind(std::function<void(std::string_view)> write,
              std::function<void(asyncflow::detail::LineBuffer&)> pull);
  ~WriteBehind();  // stop()
  WriteBehind(const WriteBehind&) = delete;
  WriteBehind& operator=(const WriteBehind&) = delete;

  /// Queues the lines in `buffer` and leaves `buffer` empty (with the capacity of a buffer
  /// already written, so formatting does not reallocate).
  void submit(asyncflow::detail::LineBuffer& buffer);
  /// Lines were formatted: pull them within kWriteInterval unless a submit() comes first.
  void poke();
  /// Returns true when every buffer submitted before the call has been written, false when
  /// `deadline` came first.
  bool drain(std::chrono::steady_clock::time_point deadline);
  /// Writes what is queued, then ends the thread. Idempotent.
  void stop();

 private:
  void run();

  const std::function<void(std::string_view)> write_;
  const std::function<void(asyncflow::detail::LineBuffer&)> pull_;
  Mutex mu_;
  CondVar work_cv_;  // the writer waits for buffers / pokes / stop
  CondVar done_cv_;  // submit() and drain() wait for room / completion
  std::deque<asyncflow::detail::LineBuffer> queue_ ASYNCFLOW_GUARDED_BY(mu_);
  std::vector<asyncflow::detail::LineBuffer> spare_ ASYNCFLOW_GUARDED_BY(mu_);  // for capacity
  bool writing_ ASYNCFLOW_GUARDED_BY(mu_) = false;
  bool pending_ ASYNCFLOW_GUARDED_BY(mu_) = false;  // poked since the last pull
  bool stopping_ ASYNCFLOW_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace asyncflow::jsonl::detail
