// Private: ProcessBackend's pool of long-lived worker processes for registered functions.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "asyncflow/backend/backend.hpp"

namespace asyncflow::detail {

/// Runs registered function tasks in up to `workers` worker processes (the program itself
/// re-executed with the worker flag, or another program that serves the same protocol: one
/// JSON call per line in, one JSON answer per line out; see asyncflow::serve_if_worker). Workers
/// start when work needs them and live until the pool is destroyed. A worker that dies fails
/// only the task it was running and is replaced when work is waiting. One thread waits on the
/// workers' sockets and pidfds (epoll). Thread-safe.
class FunctionWorkers {
 public:
  struct Options {
    std::string backend_name;
    std::size_t workers = 1;
    Command command;  ///< how a worker is started
    std::chrono::milliseconds kill_grace{5000};
    bool measure_usage = true;        ///< each call's usage, measured in its worker
    bool measure_peak_memory = true;  ///< with measure_usage: its peak memory too
  };
  /// Throws asyncflow::Error when the waiting thread cannot be set up.
  explicit FunctionWorkers(Options options);
  /// Cancels what waits, stops what runs (as cancel does), lets idle workers exit, joins.
  ~FunctionWorkers();
  FunctionWorkers(const FunctionWorkers&) = delete;
  FunctionWorkers& operator=(const FunctionWorkers&) = delete;

  void submit(BackendTask* task);
  /// Stops `task` if it is one of ours (queued: dropped; running: its worker is killed).
  /// Returns false when it is not ours.
  bool cancel(BackendTask& task) noexcept;
  void stop_tasks_of(const void* owner) noexcept;
  /// Pids of the live workers.
  std::vector<pid_t> worker_pids() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

/// In a process started as a function worker whose program did not call serve_if_worker()
/// (kWorkerFdVariable still set), writes why to stderr and exits with kUnservedWorkerStatus:
/// creating a ProcessBackend there would start workers recursively. Otherwise returns.
void exit_if_unserved_worker();

}  // namespace asyncflow::detail
