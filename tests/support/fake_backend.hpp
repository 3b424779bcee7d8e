// FakeBackend: a deterministic backend for tests. It holds submitted tasks until the test
// runs them, and records every submit and cancel call.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <asyncflow/backend/backend.hpp>

#include "support/sync.hpp"

namespace asyncflow::testing {

class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(std::string name) : name_(std::move(name)) {}
  static std::shared_ptr<FakeBackend> create(std::string name) {
    return std::make_shared<FakeBackend>(std::move(name));
  }

  const std::string& name() const noexcept override { return name_; }

  void submit(std::span<BackendTask* const> batch) override {
    {
      std::lock_guard lock(mu_);
      for (BackendTask* t : batch) {
        held_.push_back(t);
        submitted_.push_back(t->uid());
      }
      ++batches_;
    }
    cv_.notify_all();
  }

  void cancel(BackendTask& task) noexcept override {
    std::lock_guard lock(mu_);
    canceled_.push_back(task.uid());
  }

  /// Waits until at least `n` tasks are held. Returns false on timeout.
  bool wait_held(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return held_.size() >= n; });
  }
  /// Runs the oldest held task (its body runs on this thread). False when none is held.
  bool run_next() {
    BackendTask* t = nullptr;
    {
      std::lock_guard lock(mu_);
      if (held_.empty()) return false;
      t = held_.front();
      held_.pop_front();
    }
    t->run();
    return true;
  }
  /// Runs held tasks until none is left (including ones submitted meanwhile).
  void run_all() {
    while (run_next()) {
    }
  }
  std::size_t held() const {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  std::vector<std::string> submitted() const {
    std::lock_guard lock(mu_);
    return submitted_;
  }
  std::vector<std::string> canceled() const {
    std::lock_guard lock(mu_);
    return canceled_;
  }
  int batches() const {
    std::lock_guard lock(mu_);
    return batches_;
  }

 private:
  std::string name_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<BackendTask*> held_;
  std::vector<std::string> submitted_;
  std::vector<std::string> canceled_;
  int batches_ = 0;
};

}  // namespace asyncflow::testing

namespace asyncflow::testing {

/// Forwards every call to another backend (STYLE G11's BackendWrapper), and opens `shutdown_begun`
/// when the engine's shutdown asks it to stop its tasks: a test can then let work finish
/// knowing the shutdown is under way, instead of guessing with a sleep. Thread-safe as the
/// backend it wraps.
class ShutdownSignalingBackend final : public Backend {
 public:
  explicit ShutdownSignalingBackend(std::shared_ptr<Backend> inner) : inner_(std::move(inner)) {}
  const std::string& name() const noexcept override { return inner_->name(); }
  void submit(std::span<BackendTask* const> batch) override { inner_->submit(batch); }
  void cancel(BackendTask& task) noexcept override { inner_->cancel(task); }
  bool runs_executables() const noexcept override { return inner_->runs_executables(); }
  bool runs_closures() const noexcept override { return inner_->runs_closures(); }
  void stop_tasks_of(const void* owner) noexcept override {
    shutdown_begun.open();
    inner_->stop_tasks_of(owner);
  }
  Gate shutdown_begun;

 private:
  std::shared_ptr<Backend> inner_;
};

}  // namespace asyncflow::testing

namespace asyncflow::testing {

/// Fails every task it is given at once, with `message` (as a backend whose resource went
/// away): the engine's failure paths without processes. Thread-safe.
class FailingBackend final : public Backend {
 public:
  explicit FailingBackend(std::string name, std::string message)
      : name_(std::move(name)), message_(std::move(message)) {}
  const std::string& name() const noexcept override { return name_; }
  void submit(std::span<BackendTask* const> batch) override {
    for (BackendTask* t : batch) {
      if (!t->report_started()) continue;  // canceled meanwhile: already reported
      t->report_failed(std::make_exception_ptr(std::runtime_error(message_)));
    }
  }
  void cancel(BackendTask&) noexcept override {}  // nothing is ever left running

 private:
  std::string name_;
  std::string message_;
};

}  // namespace asyncflow::testing
