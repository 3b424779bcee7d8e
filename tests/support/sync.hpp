// Synchronisation for tests: a one-shot gate and a countdown latch with timed waits, so tests
// wait for an event instead of sleeping for it (a slow machine cannot break them).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace asyncflow::testing {

/// Closed until open(); then every wait returns at once. Thread-safe.
class Gate {
 public:
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return open_; });
  }
  [[nodiscard]] bool wait_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return open_; });
  }
  bool is_open() {
    std::lock_guard lock(mu_);
    return open_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;  // guarded by mu_
};

/// Opens once count_down() was called `count` times. Thread-safe.
class Latch {
 public:
  explicit Latch(std::size_t count) : left_(count) {}
  void count_down(std::size_t n = 1) {
    {
      std::lock_guard lock(mu_);
      left_ = n >= left_ ? 0 : left_ - n;
    }
    cv_.notify_all();
  }
  [[nodiscard]] bool wait_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return left_ == 0; });
  }
  std::size_t left() {
    std::lock_guard lock(mu_);
    return left_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t left_;  // guarded by mu_
};

}  // namespace asyncflow::testing
