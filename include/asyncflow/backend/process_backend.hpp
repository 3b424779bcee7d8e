// ProcessBackend: runs executable tasks as child processes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "asyncflow/backend/backend.hpp"

namespace asyncflow {

struct ProcessBackendOptions {
  std::string name = "process";  ///< Routing name.
  /// Children alive at once; more tasks wait in a FIFO (TaskQueued). 0 = hardware threads.
  std::size_t max_processes = 0;
  /// After SIGTERM (cancel, timeout, engine shutdown), how long a process group has to exit
  /// before it gets SIGKILL.
  std::chrono::milliseconds kill_grace{std::chrono::seconds(5)};
  /// Threads that spawn children; each blocks while its child execs, so several spawn in
  /// parallel on several cores. 0 = half the hardware threads, within [2, 8]; never more
  /// than max_processes.
  std::size_t spawn_threads = 0;
  /// Worker processes for registered function tasks (started when first needed, kept until
  /// the backend is destroyed). 0 = max_processes.
  std::size_t function_workers = 0;
  /// How a worker starts. Empty: this program again, {"/proc/self/exe", "--asyncflow-worker"};
  /// its main() must call asyncflow::serve_if_worker(argc, argv) first. Another program serves
  /// the same protocol (registered_function.hpp) on the descriptor that the environment
  /// variable ASYNCFLOW_WORKER_FD names (3); its stdin is /dev/null, its stdout and stderr are
  /// this process's stderr.
  Command worker_command{};
  /// Measure what each task's process used (TaskUsage on its TaskCompleted / TaskFailed
  /// event: CPU, wall time, I/O and context switches, from the kernel when it is reaped);
  /// registered functions: per call, in the worker. false: none of it.
  bool measure_usage = true;
  /// With measure_usage, also each task's peak memory, from a memory cgroup that holds only
  /// the task's processes, where the machine allows one (peak_memory_method()). On cgroup v1
  /// each spawning thread has a cgroup its children are born in, so there is one spawning
  /// thread per slot (max_processes; spawn_threads is then ignored); on cgroup v2 each task's
  /// process joins a cgroup of its own before it execs. Registered functions: the worker's
  /// resident high-water mark over each call, read from /proc/self/status (about 6 us a call).
  bool measure_peak_memory = true;
};

/// The flag that makes asyncflow::serve_if_worker() serve (the default worker command).
inline constexpr const char* kWorkerFlag = "--asyncflow-worker";
/// The environment variable that names a function worker's connection descriptor.
inline constexpr const char* kWorkerFdVariable = "ASYNCFLOW_WORKER_FD";
/// Set in a function worker's environment when the backend measures usage: each answer then
/// carries the call's usage, {"ok": …, "usage": {"cpu_user_seconds": 0.5, …}} (the TaskUsage
/// field names, visit_usage_fields). "1": all of it; "no-peak": all but peak_memory_bytes.
/// Another program may leave it out.
inline constexpr const char* kWorkerUsageVariable = "ASYNCFLOW_WORKER_USAGE";
/// The exit status of a worker whose program did not call serve_if_worker() before creating a
/// ProcessBackend (which would start workers of its own, and they theirs).
inline constexpr int kUnservedWorkerStatus = 86;

/// Runs executable tasks (WorkflowEngine::executable_task) as child processes, each in a
/// process group of its own, at most `max_processes` at once. Children get SIGKILL when this
/// process dies (a parent-death signal), so none is left behind even after a SIGKILL of ours.
///
/// Honours TaskDescription::cwd, env / replace_env, timeout, capture_stdio (stdout and stderr
/// to `{work_dir}/{uid}.stdout|.stderr`, result = the stdout file's path; otherwise the result
/// is the stdout text). stdin is /dev/null.
/// A task fails with asyncflow::ProcessError on a non-zero exit status, a terminating signal, a
/// timeout, or a program that cannot be started (named in the message); the message ends with
/// the tail of stderr. Cancel and engine shutdown send SIGTERM to the task's process group, and
/// SIGKILL after `kill_grace`. When a task's process exits, whatever it left running in its
/// process group is killed, so no task leaves stray processes behind.
///
/// Registered function tasks (asyncflow::register_function) run in a pool of long-lived worker
/// processes, one call at a time each, arguments and results as JSON over a Unix socket. A
/// function that throws fails its task with asyncflow::RemoteFunctionError (type and message
/// from the worker); a worker that dies (crash, exit, cancel, timeout) fails or cancels only the
/// task it was running and is replaced when work is waiting. In-process closures cannot run
/// here (the engine refuses to route them).
///
/// One reaper thread waits on the children's pidfds (epoll; no polling, no thread per child);
/// `spawn_threads` threads start them.
/// TaskQueued is reported when a task has to wait for a free slot, TaskStarted when its child
/// is being spawned.
/// Thread-safe. The destructor stops every remaining task (as cancel does) and joins.
class ProcessBackend final : public Backend {
 public:
  /// Throws asyncflow::Error when the reaper cannot be set up (epoll/eventfd), naming why.
  static std::shared_ptr<ProcessBackend> create(ProcessBackendOptions options = {});

  explicit ProcessBackend(ProcessBackendOptions options);
  ~ProcessBackend() override;

  const std::string& name() const noexcept override;
  void submit(std::span<BackendTask* const> batch) override;
  void cancel(BackendTask& task) noexcept override;
  bool runs_executables() const noexcept override { return true; }
  bool runs_closures() const noexcept override { return false; }
  void stop_tasks_of(const void* owner) noexcept override;

  /// The limit on children alive at once.
  std::size_t max_processes() const noexcept;
  /// Threads that spawn children (ProcessBackendOptions::spawn_threads, resolved).
  std::size_t spawn_threads() const noexcept;
  /// Children alive (or being started) right now (function workers not counted).
  std::size_t running() const noexcept;
  /// Pids of the live function workers.
  std::vector<pid_t> function_worker_pids() const;

  /// How this machine lets tasks' peak memory be measured: "cgroup v2 memory.peak", "cgroup v1
  /// memory.max_usage_in_bytes", or empty when it does not (usage then has no peak memory:
  /// rusage's maxrss is not the program's, see docs/checkpoint-format.md). Found once.
  static const std::string& peak_memory_method();
  /// Why peak memory is not measured here (empty when it is).
  static const std::string& peak_memory_unavailable_reason();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace asyncflow
