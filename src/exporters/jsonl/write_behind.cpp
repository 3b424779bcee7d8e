// WriteBehind: the checkpoint's writer thread (see write_behind.hpp).
#include "write_behind.hpp"

#include <pthread.h>

namespace asyncflow::jsonl::detail {

using asyncflow::detail::LineBuffer;

WriteBehind::WriteBehind(std::function<void(std::string_view)> write,
                         std::function<void(LineBuffer&)> pull)
    : write_(std::move(write)), pull_(std::move(pull)) {
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "af-checkpoint");
}

WriteBehind::~WriteBehind() {
  stop();
}

void WriteBehind::submit(LineBuffer& buffer) {
  if (buffer.empty()) return;
  MutexLock lock(mu_);
  done_cv_.wait(mu_, [this]() ASYNCFLOW_REQUIRES(mu_) { return queue_.size() < kMaxQueued; });
  queue_.push_back(std::move(buffer));  // leaves `buffer` empty, without storage
  if (!spare_.empty()) {
    buffer = std::move(spare_.back());
    spare_.pop_back();
  }
  lock.unlock();
  work_cv_.notify_one();
}

void WriteBehind::poke() {
  {
    MutexLock lock(mu_);
    if (pending_) return;
    pending_ = true;
  }
  work_cv_.notify_one();
}

bool WriteBehind::drain(std::chrono::steady_clock::time_point deadline) {
  MutexLock lock(mu_);
  return done_cv_.wait_until(
      mu_, deadline, [this]() ASYNCFLOW_REQUIRES(mu_) { return queue_.empty() && !writing_; });
}

void WriteBehind::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void WriteBehind::run() {
  MutexLock lock(mu_);
  for (;;) {
    work_cv_.wait(
        mu_, [this]() ASYNCFLOW_REQUIRES(mu_) { return !queue_.empty() || stopping_ || pending_; });
    if (queue_.empty() && pending_ && !stopping_) {
      // Formatted lines wait: give the formatter the interval to fill a buffer, then pull.
      work_cv_.wait_for(mu_, kWriteInterval,
                        [this]() ASYNCFLOW_REQUIRES(mu_) { return !queue_.empty() || stopping_; });
    }
    LineBuffer buffer;
    if (!queue_.empty()) {
      buffer = std::move(queue_.front());
      queue_.pop_front();
    } else if (pending_ && !stopping_) {
      pending_ = false;
      if (!spare_.empty()) {
        buffer = std::move(spare_.back());
        spare_.pop_back();
      }
      lock.unlock();
      pull_(buffer);
      lock.lock();
      if (buffer.empty()) {
        if (spare_.size() < kMaxSpare) spare_.push_back(std::move(buffer));
        continue;
      }
    } else {
      return;  // stopping, and everything queued is written
    }
    writing_ = true;
    lock.unlock();
    done_cv_.notify_all();  // room in the queue
    write_(buffer.view());  // failures are kept (sticky) and counted by the writer
    buffer.clear();
    lock.lock();
    writing_ = false;
    if (spare_.size() < kMaxSpare) spare_.push_back(std::move(buffer));
    done_cv_.notify_all();
  }
}

}  // namespace asyncflow::jsonl::detail
