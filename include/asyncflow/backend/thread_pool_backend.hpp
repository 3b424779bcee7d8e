// ThreadPoolBackend: runs function tasks in-process on a fixed set of worker threads.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "asyncflow/backend/backend.hpp"

namespace asyncflow {

struct ThreadPoolOptions {
  std::string name = "thread_pool";  ///< Routing name.
  std::size_t threads = 0;           ///< Worker count; 0 = std::thread::hardware_concurrency().
  /// Each task's wall time, CPU time (user, system) and context switches on its worker thread
  /// as its `usage.*`, while telemetry watches (about 1 us a task: getrusage).
  bool measure_usage = true;
};

/// Runs submitted tasks on `threads` workers.
///
/// Scheduling: one shared FIFO queue (a mutex and a condition variable) plus a per-worker
/// continuation slot: the first task a worker makes ready while finishing a task runs next on
/// that same worker without a queue round trip or a wake-up (chains stay on one thread).
/// Idle workers are woken only when work arrives that the submitting worker will not take.
/// Cancel: a queued task is dropped when a worker reaches it and reported canceled; a running
/// function is asked to stop (asyncflow::this_task::stop_requested()) and reported canceled
/// when it returns.
/// Thread-safe. The destructor finishes queued work, then joins the workers.
class ThreadPoolBackend final : public Backend {
 public:
  static std::shared_ptr<ThreadPoolBackend> create(ThreadPoolOptions options = {});

  explicit ThreadPoolBackend(ThreadPoolOptions options);
  ~ThreadPoolBackend() override;

  const std::string& name() const noexcept override;
  void submit(std::span<BackendTask* const> batch) override;
  void cancel(BackendTask& task) noexcept override;
  bool measures_calls() const noexcept override;

  /// Number of worker threads.
  std::size_t thread_count() const noexcept;
  /// True when called from one of this pool's worker threads.
  bool on_worker_thread() const noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace asyncflow
