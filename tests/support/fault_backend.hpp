// Backends that misbehave on purpose, for the fault-injection suite (tests/fault/): each wraps a
// real backend (a ThreadPoolBackend, usually) and injects one fault — a submit() that throws,
// tasks that are never run, reports out of order or twice, reports from threads the engine has
// never seen — as leveldb's EnvWrapper/ErrorEnv do for file systems.
#pragma once

#include <asyncflow/backend/backend.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "support/sync.hpp"

namespace asyncflow::testing {

/// Forwards every call to another backend (STYLE G11's BackendWrapper): a fault overrides only
/// the calls it breaks. Thread-safe as the backend it wraps.
class BackendWrapper : public Backend {
 public:
  explicit BackendWrapper(std::shared_ptr<Backend> inner) : inner_(std::move(inner)) {}
  const std::string& name() const noexcept override { return inner_->name(); }
  void submit(std::span<BackendTask* const> batch) override { inner_->submit(batch); }
  void cancel(BackendTask& task) noexcept override { inner_->cancel(task); }
  bool runs_executables() const noexcept override { return inner_->runs_executables(); }
  bool runs_closures() const noexcept override { return inner_->runs_closures(); }
  void stop_tasks_of(const void* owner) noexcept override { inner_->stop_tasks_of(owner); }

 protected:
  Backend& inner() const noexcept { return *inner_; }

 private:
  std::shared_ptr<Backend> inner_;
};

/// Throws std::runtime_error(`message`) from every `every`-th submit() call, as a backend whose
/// queue cannot take more. By default it throws before it took anything; with `take_first`
/// it first hands that many tasks of the refused batch to the inner backend (a queue that
/// filled up half way through the batch). Thread-safe.
class ThrowingSubmitBackend final : public BackendWrapper {
 public:
  ThrowingSubmitBackend(std::shared_ptr<Backend> inner, int every, std::string message,
                        std::size_t take_first = 0)
      : BackendWrapper(std::move(inner)),
        every_(every),
        take_first_(take_first),
        message_(std::move(message)) {}

  void submit(std::span<BackendTask* const> batch) override {
    bool refuse = false;
    {
      std::lock_guard lock(mu_);
      refuse = ++calls_ % every_ == 0;
      if (refuse) refused_ += batch.size();
    }
    if (!refuse) {
      BackendWrapper::submit(batch);
      return;
    }
    const std::size_t taken = std::min(take_first_, batch.size());
    if (taken != 0) BackendWrapper::submit(batch.first(taken));
    throw std::runtime_error(message_);
  }

  /// submit() calls so far.
  int calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  /// Tasks in the batches it threw for (taken in part or not at all).
  std::size_t refused_tasks() const {
    std::lock_guard lock(mu_);
    return refused_;
  }

 private:
  const int every_;
  const std::size_t take_first_;
  const std::string message_;
  mutable std::mutex mu_;
  int calls_ = 0;            // guarded by mu_
  std::size_t refused_ = 0;  // guarded by mu_
};

/// Never runs the tasks named `stuck` (a backend whose node went silent): it holds them and
/// hands the others on. A held task ends only through cancel() (reported canceled at once, as
/// a backend drops a queued task), through stop_tasks_of() when `drop_on_shutdown` (as
/// ProcessBackend stops its queued tasks), or through release(), the test's way out, which
/// runs them on the calling thread. Opens `shutdown_begun` when the engine's shutdown asks it
/// to stop its tasks. Thread-safe.
class HangingBackend final : public BackendWrapper {
 public:
  HangingBackend(std::shared_ptr<Backend> inner, std::string stuck, bool drop_on_shutdown)
      : BackendWrapper(std::move(inner)),
        stuck_(std::move(stuck)),
        drop_on_shutdown_(drop_on_shutdown) {}

  void submit(std::span<BackendTask* const> batch) override {
    std::vector<BackendTask*> others;
    std::vector<BackendTask*> held_now;
    for (BackendTask* t : batch) (t->name() == stuck_ ? held_now : others).push_back(t);
    std::vector<BackendTask*> canceled;
    if (!held_now.empty()) {
      // The stop flag is read under the lock cancel() takes: a cancel either finds the task
      // held, or came first and the task is dropped here, never held (and never touched
      // after another thread reported it).
      std::lock_guard lock(mu_);
      for (BackendTask* t : held_now) (t->stop_requested() ? canceled : held_).push_back(t);
      cv_.notify_all();
    }
    for (BackendTask* t : canceled) t->report_canceled(" while held by a hung backend");
    if (!others.empty()) BackendWrapper::submit(others);
  }

  void cancel(BackendTask& task) noexcept override {
    // Whoever takes a task out of held_ reports it: exactly once.
    if (take(&task)) {
      task.report_canceled(" while held by a hung backend");
      return;
    }
    BackendWrapper::cancel(task);
  }

  void stop_tasks_of(const void* owner) noexcept override {
    shutdown_begun.open();
    if (drop_on_shutdown_) {
      std::vector<BackendTask*> mine;
      {
        std::lock_guard lock(mu_);
        auto it = std::stable_partition(held_.begin(), held_.end(),
                                        [owner](BackendTask* t) { return t->owner() != owner; });
        mine.assign(it, held_.end());
        held_.erase(it, held_.end());
      }
      for (BackendTask* t : mine)
        t->report_canceled(" by engine shutdown (dropped by its backend)");
    }
    BackendWrapper::stop_tasks_of(owner);
  }

  /// Waits until `n` tasks are held. False on timeout.
  bool wait_held(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return held_.size() >= n; });
  }
  std::size_t held() const {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  /// Runs every held task on this thread (after a shutdown began they end canceled).
  void release() {
    std::vector<BackendTask*> all;
    {
      std::lock_guard lock(mu_);
      all.swap(held_);
    }
    for (BackendTask* t : all) t->run();
  }

  Gate shutdown_begun;

 private:
  bool take(BackendTask* t) noexcept {
    std::lock_guard lock(mu_);
    auto it = std::find(held_.begin(), held_.end(), t);
    if (it == held_.end()) return false;
    held_.erase(it);
    return true;
  }

  const std::string stuck_;
  const bool drop_on_shutdown_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<BackendTask*> held_;  // guarded by mu_
};

/// How a ScriptedBackend reports each task. Function tasks are run() (twice for kReportTwice,
/// then reported failed for kCompletedThenFailed); executable tasks are "run" out of process
/// style, through report_* calls, their output being their argv joined by spaces plus "#1"
/// for the first completion report and "#2" for a second one.
enum class Script {
  kNormal,                  ///< started, completed#1 (the contract)
  kReportTwice,             ///< started, completed#1, completed#2
  kCompletedThenFailed,     ///< started, completed#1, failed
  kCompletedBeforeStarted,  ///< completed#1, started, completed#2
  kCompletedNeverStarted,   ///< completed#1 only (the task is kept, see cancel_leftovers())
  kFailedBeforeStarted,     ///< failed only (the contract allows it: a program that never ran)
};

/// Where a ScriptedBackend plays its scripts.
enum class Where {
  kInnerPool,      ///< on the wrapped backend's threads (each task handed on in a proxy)
  kThreadPerTask,  ///< on a std::thread of its own per task, joined by the destructor
};

/// Reports tasks as `script` says, from `where`. Reporting a task again after its final report
/// breaks BackendTask's lifetime contract (the task may be gone): tests that use such a script
/// keep every handle until wait_scripts() returned, which keeps the task objects alive.
/// Thread-safe.
class ScriptedBackend final : public BackendWrapper {
 public:
  ScriptedBackend(std::shared_ptr<Backend> inner, Script script, Where where)
      : BackendWrapper(std::move(inner)), script_(script), where_(where) {}
  ~ScriptedBackend() override { join_all(); }

  bool runs_executables() const noexcept override { return true; }
  bool runs_closures() const noexcept override { return true; }

  void submit(std::span<BackendTask* const> batch) override {
    if (where_ == Where::kThreadPerTask) {
      std::lock_guard lock(mu_);
      for (BackendTask* t : batch) threads_.emplace_back([this, t] { play(*t); });
      return;
    }
    std::vector<BackendTask*> proxies;
    proxies.reserve(batch.size());
    for (BackendTask* t : batch) proxies.push_back(new Proxy(*this, *t));
    BackendWrapper::submit(proxies);
  }

  /// Waits until `n` scripts were played to their end. False on timeout.
  bool wait_scripts(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return played_ >= n; });
  }
  /// Threads other than the test's and the inner backend's that reported (kThreadPerTask).
  std::size_t threads_started() const {
    std::lock_guard lock(mu_);
    return threads_started_;
  }
  /// Reports canceled the tasks kCompletedNeverStarted left unfinished (the test holds their
  /// handles, so they are alive; a finished one ignores the report).
  void cancel_leftovers() {
    std::vector<BackendTask*> left;
    {
      std::lock_guard lock(mu_);
      left.swap(leftovers_);
    }
    for (BackendTask* t : left) t->report_canceled(" (left unfinished by its backend's script)");
  }
  /// Joins the per-task threads started so far (and those they started).
  void join_all() {
    for (;;) {
      std::vector<std::thread> threads;
      {
        std::lock_guard lock(mu_);
        threads.swap(threads_);
      }
      if (threads.empty()) return;
      for (auto& t : threads) t.join();
    }
  }

 private:
  /// Hands the inner backend a stand-in whose run() plays the script on the real task; every
  /// other call is forwarded. Deletes itself once run() is over (the backend's last call).
  /// Thread-safe as the task it stands for.
  class Proxy final : public BackendTask {
   public:
    Proxy(ScriptedBackend& owner, BackendTask& task) : owner_(owner), task_(task) {}
    std::string uid() const override { return task_.uid(); }
    const std::string& name() const noexcept override { return task_.name(); }
    TaskKind kind() const noexcept override { return task_.kind(); }
    const TaskDescription& description() const noexcept override { return task_.description(); }
    const std::filesystem::path& work_dir() const noexcept override { return task_.work_dir(); }
    bool stop_requested() const noexcept override { return task_.stop_requested(); }
    void run() noexcept override {
      ScriptedBackend& owner = owner_;
      BackendTask& task = task_;
      delete this;
      owner.play(task);
    }
    void run_dry() noexcept override { task_.run_dry(); }
    void report_queued() noexcept override { task_.report_queued(); }
    Command command() override { return task_.command(); }
    std::string function_request() override { return task_.function_request(); }
    bool report_started() noexcept override { return task_.report_started(); }
    void report_completed(std::string output, const TaskUsage* usage = nullptr) noexcept override {
      task_.report_completed(std::move(output), usage);
    }
    void report_failed(std::exception_ptr error,
                       const TaskUsage* usage = nullptr) noexcept override {
      task_.report_failed(std::move(error), usage);
    }
    void report_canceled(std::string_view how) noexcept override { task_.report_canceled(how); }
    const void* owner() const noexcept override { return task_.owner(); }

   private:
    ScriptedBackend& owner_;
    BackendTask& task_;
  };

  static std::exception_ptr script_error() {
    return std::make_exception_ptr(std::runtime_error("reported failed after completing"));
  }

  void play(BackendTask& t) noexcept {
    if (where_ == Where::kThreadPerTask) {
      std::lock_guard lock(mu_);
      ++threads_started_;
    }
    if (t.kind() == TaskKind::kExecutable) {
      play_executable(t);
    } else {
      t.run();
      if (script_ == Script::kReportTwice) t.run();
      if (script_ == Script::kCompletedThenFailed) t.report_failed(script_error());
    }
    // Notified under the lock: a test woken by it may destroy this backend at once.
    std::lock_guard lock(mu_);
    ++played_;
    cv_.notify_all();
  }

  void play_executable(BackendTask& t) noexcept {
    std::string output;
    try {
      for (const std::string& arg : t.command().argv) output += (output.empty() ? "" : " ") + arg;
    } catch (...) {
      t.report_failed(std::current_exception());
      return;
    }
    switch (script_) {
      case Script::kNormal:
        if (t.report_started()) t.report_completed(output + "#1");
        break;
      case Script::kReportTwice:
        if (!t.report_started()) break;
        t.report_completed(output + "#1");
        t.report_completed(output + "#2");
        break;
      case Script::kCompletedThenFailed:
        if (!t.report_started()) break;
        t.report_completed(output + "#1");
        t.report_failed(script_error());
        break;
      case Script::kCompletedBeforeStarted:
        t.report_completed(output + "#1");
        if (t.report_started()) t.report_completed(output + "#2");
        break;
      case Script::kCompletedNeverStarted: {
        {
          std::lock_guard lock(mu_);
          leftovers_.push_back(&t);
        }
        t.report_completed(output + "#1");
        break;
      }
      case Script::kFailedBeforeStarted:
        t.report_failed(std::make_exception_ptr(std::runtime_error("could not start " + output)));
        break;
    }
  }

  const Script script_;
  const Where where_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> threads_;     // guarded by mu_
  std::vector<BackendTask*> leftovers_;  // guarded by mu_
  std::size_t played_ = 0;               // guarded by mu_
  std::size_t threads_started_ = 0;      // guarded by mu_
};

}  // namespace asyncflow::testing
