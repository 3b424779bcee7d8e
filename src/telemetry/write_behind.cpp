// WriteBehind: the checkpoint's writer thread (see write_behind.hpp).
#include "write_behind.hpp"

#include <pthread.h>

namespace asyncflow::detail {

WriteBehind::WriteBehind(CheckpointWriter& writer) : writer_(writer) {
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "af-checkpoint");
}

WriteBehind::~WriteBehind() { stop(); }

void WriteBehind::submit(LineBuffer& buffer) {
  if (buffer.empty()) return;
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [this] { return queue_.size() < kMaxQueued; });
  queue_.push_back(std::move(buffer));  // leaves `buffer` empty, without storage
  if (!spare_.empty()) {
    buffer = std::move(spare_.back());
    spare_.pop_back();
  }
  lock.unlock();
  work_cv_.notify_one();
}

bool WriteBehind::drain(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  return done_cv_.wait_until(lock, deadline, [this] { return queue_.empty() && !writing_; });
}

void WriteBehind::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void WriteBehind::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [this] { return !queue_.empty() || stopping_; });
    if (queue_.empty()) return;  // stopping, and everything is written
    LineBuffer buffer = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    lock.unlock();
    done_cv_.notify_all();  // room in the queue
    writer_.append(buffer.view());  // failures are kept (sticky) and counted by the writer
    buffer.clear();
    lock.lock();
    writing_ = false;
    if (spare_.size() < kMaxQueued) spare_.push_back(std::move(buffer));
    done_cv_.notify_all();
  }
}

}  // namespace asyncflow::detail
