// EngineObserver: the one small interface through which the engine reports lifecycle points
// (telemetry implements it). With no observer installed each point costs one branch.
#pragma once

#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "asyncflow/backend/task_usage.hpp"
#include "asyncflow/core/task_kind.hpp"
#include "asyncflow/core/task_state.hpp"

namespace asyncflow {

/// A read-only view of one task or block, valid only during the observer call (copy what
/// must outlive it: the views point into the engine's memory and the caller's stack).
struct TaskInfo {
  std::string_view uid;           ///< "task.000001" / "block.000001".
  std::string_view name;          ///< Factory name.
  TaskKind kind;                  ///< Function, executable or block.
  std::string_view backend;       ///< Owning backend's name; empty for blocks.
  std::string_view workflow_id;   ///< Scope id or enclosing block uid; empty when ungrouped.
  std::string_view parent_block;  ///< uid of the enclosing block, empty outside blocks.
  /// on_task_finished only: the task started (it ran, or was running when it ended).
  bool ran = false;
  /// on_task_finished only: what the task's process used, when its backend measured it.
  const TaskUsage* usage = nullptr;
};

/// Receives engine lifecycle points. Calls come from any thread, concurrently; every method
/// must be thread-safe and must not throw (it is noexcept: a throw terminates).
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;

  /// A task was created; `depends_on` holds the uids of its distinct dependencies.
  virtual void on_task_created(const TaskInfo& task,
                               std::span<const std::string> depends_on) noexcept = 0;
  /// The task's last dependency finished (at creation when it has none).
  virtual void on_task_resolved(const TaskInfo& task) noexcept = 0;
  /// The task was handed to its backend.
  virtual void on_task_submitted(const TaskInfo& task) noexcept = 0;
  /// The backend holds the task waiting for a slot.
  virtual void on_task_queued(const TaskInfo& task) noexcept = 0;
  /// The task started executing (a block: its body started).
  virtual void on_task_started(const TaskInfo& task) noexcept = 0;
  /// The task reached `state` (kDone, kFailed or kCanceled); `error` is set unless kDone.
  virtual void on_task_finished(const TaskInfo& task, TaskState state,
                                const std::exception_ptr& error) noexcept = 0;
  /// A workflow_scope opened / closed on this engine. `parent_workflow_id` is the id of the
  /// enclosing scope or block (a block's id is its uid), empty at top level.
  virtual void on_workflow_begin(std::string_view workflow_id,
                                 std::string_view parent_workflow_id) noexcept = 0;
  virtual void on_workflow_end(std::string_view workflow_id) noexcept = 0;
  /// Environment entries that carry the trace context of task `task_uid` to the programs it
  /// runs (telemetry: TRACEPARENT pointing at the task's span, TRACESTATE), appended to `env`.
  /// Called before each program starts; by default adds nothing.
  virtual void add_trace_context(
      std::string_view task_uid,
      std::vector<std::pair<std::string, std::string>>& env) const noexcept {
    (void)task_uid;
    (void)env;
  }

 protected:
  EngineObserver() = default;
  EngineObserver(const EngineObserver&) = delete;
  EngineObserver& operator=(const EngineObserver&) = delete;
};

}  // namespace asyncflow
