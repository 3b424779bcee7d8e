// The execution backend interface: what the engine hands to a backend (BackendTask) and what a
// backend must implement (Backend). Backends know nothing of the engine; they see tasks only
// through BackendTask, whose report_* calls route outcomes back to the owning engine.
#pragma once

#include <exception>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "asyncflow/backend/command.hpp"
#include "asyncflow/backend/task_description.hpp"
#include "asyncflow/backend/task_usage.hpp"
#include "asyncflow/core/task_kind.hpp"

namespace asyncflow {

/// One task as a backend sees it. Implemented by the engine.
///
/// Lifetime: valid from `Backend::submit` until the backend's last report_* / run* call on it
/// returns; the backend must not touch it afterwards.
/// Thread safety: every member is thread-safe and may be called from any thread.
class BackendTask {
 public:
  virtual ~BackendTask() = default;

  /// Engine-unique id, e.g. "task.000042".
  virtual std::string uid() const = 0;
  /// The name given to the task factory.
  virtual const std::string& name() const noexcept = 0;
  virtual TaskKind kind() const noexcept = 0;
  virtual const TaskDescription& description() const noexcept = 0;
  /// The owning engine's directory, `{work_dir}/{engine uid}`, made at the first call (files
  /// made in it fail, naming why, when it could not be).
  virtual const std::filesystem::path& work_dir() const noexcept = 0;
  /// True once cancel() reached this task. (Engine shutdown does not stop running tasks.)
  virtual bool stop_requested() const noexcept = 0;

  /// In-process execution: marks the task started (unless it was canceled meanwhile, in which
  /// case it is reported canceled and nothing runs), runs its function with the resolved
  /// arguments, records the outcome and reports it. The task object may be gone on return.
  virtual void run() noexcept = 0;
  /// Dry run: completes the task without running its body; the result is a value-initialized
  /// value (or a failure when the result type cannot be value-initialized).
  virtual void run_dry() noexcept = 0;

  /// The backend holds the task waiting for a free slot (emits TaskQueued once telemetry is on).
  virtual void report_queued() noexcept = 0;

  // --- Out-of-process execution (the process backend) ---------------------------------------
  // Instead of run(), such a backend calls report_started() once, then exactly one of
  // report_completed / report_failed / report_canceled (or just report_canceled when the task
  // never started). The task object may be gone once the final report returns.

  /// Executable tasks: runs the task's builder with the resolved dependency values and
  /// returns the command. Throws what the builder threw, or asyncflow::Error when the result
  /// is unusable (empty argv, a shell string without TaskDescription::shell). Call it once.
  virtual Command command() = 0;
  /// Registered function tasks: the call as one JSON line, {"function": name, "args": [...]}
  /// with the resolved arguments. Throws asyncflow::Error for other tasks, or what the
  /// arguments' serialization threw.
  virtual std::string function_request() = 0;
  /// Marks the task running. Returns false, having reported the task canceled, when a cancel
  /// or the engine's shutdown came first: the backend must then not start it.
  virtual bool report_started() noexcept = 0;
  /// The task succeeded; `output` becomes its result: an executable's stdout (or file path),
  /// a registered function's JSON result. `usage`: what its process used, when measured (the
  /// engine puts it on the task's terminal event; read during the call only).
  virtual void report_completed(std::string output, const TaskUsage* usage = nullptr) noexcept = 0;
  virtual void report_failed(std::exception_ptr error,
                             const TaskUsage* usage = nullptr) noexcept = 0;
  /// The task was stopped; `how` completes "task 'x' (uid) was canceled…", e.g. " while
  /// running (process group killed)".
  virtual void report_canceled(std::string_view how) noexcept = 0;
  /// Environment entries the engine adds for the programs this task runs (the W3C trace
  /// context of its span, TRACEPARENT and TRACESTATE, while telemetry runs). A backend puts
  /// them in the program's environment unless the task's own env sets the same name or
  /// replaces the environment (TaskDescription::replace_env).
  virtual std::vector<std::pair<std::string, std::string>> context_env() const { return {}; }
  /// Identifies the engine the task belongs to (see Backend::stop_tasks_of).
  virtual const void* owner() const noexcept = 0;

 protected:
  BackendTask() = default;
  BackendTask(const BackendTask&) = delete;
  BackendTask& operator=(const BackendTask&) = delete;
};

/// An execution backend. Implementations: NoopBackend, ThreadPoolBackend, ProcessBackend.
///
/// Contract:
///  - submit() returns quickly; each submitted task must eventually be completed through its
///    run()/run_dry() (or, for out-of-process backends, its report calls), exactly once.
///  - cancel() is best effort and never blocks; the task still completes exactly once.
///  - The destructor stops the backend: it waits for running work and joins its threads.
/// Thread safety: submit() and cancel() may be called concurrently from any thread.
class Backend {
 public:
  virtual ~Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  Backend(Backend&&) = delete;
  Backend& operator=(Backend&&) = delete;

  /// Unique name within one engine; tasks route to a backend by this name.
  virtual const std::string& name() const noexcept = 0;
  /// Hands a batch of ready tasks to the backend. Noop completes them before returning.
  virtual void submit(std::span<BackendTask* const> batch) = 0;
  /// Asks the backend to stop `task` (queued: never start it; running: request stop).
  virtual void cancel(BackendTask& task) noexcept = 0;
  /// True when the backend runs executable tasks (their command()); the engine routes
  /// executable tasks only to such backends.
  virtual bool runs_executables() const noexcept { return false; }
  /// False when the backend cannot call an in-process closure (run()): it runs work in other
  /// processes. Such a backend takes function tasks only as registered functions.
  virtual bool runs_closures() const noexcept { return true; }
  /// True when the engine is to measure each run() of this backend on the thread that calls
  /// it (wall time, the thread's CPU time and context switches) and report that as the task's
  /// usage, while telemetry watches the engine: for in-process backends whose run() is the
  /// task's own work. Costs up to two getrusage calls a task.
  virtual bool measures_calls() const noexcept { return false; }
  /// The engine `owner` is shutting down: stop its queued and running tasks now rather than
  /// wait for them (the process backend kills their process groups). In-process backends let
  /// running functions finish, so the default does nothing.
  virtual void stop_tasks_of(const void* owner) noexcept { (void)owner; }

 protected:
  Backend() = default;
};

}  // namespace asyncflow
