// Private: the EngineObserver that turns engine lifecycle points into telemetry events
// (reference asyncflow-engine.md §5.2, in the order Created → Resolved → Submitted → Queued →
// Started → terminal, with terminal events for every task, also those canceled locally).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "asyncflow/core/observer.hpp"
#include "asyncflow/telemetry/manager.hpp"

namespace asyncflow::detail {

class TelemetryBridge final : public EngineObserver {
 public:
  explicit TelemetryBridge(std::shared_ptr<TelemetryManager> manager);

  void on_task_created(const TaskInfo& task,
                       std::span<const std::string> depends_on) noexcept override;
  void on_task_resolved(const TaskInfo& task) noexcept override;
  void on_task_submitted(const TaskInfo& task) noexcept override;
  void on_task_queued(const TaskInfo& task) noexcept override;
  void on_task_started(const TaskInfo& task) noexcept override;
  void on_task_finished(const TaskInfo& task, TaskState state,
                        const std::exception_ptr& error) noexcept override;
  void on_workflow_begin(std::string_view workflow_id,
                         std::string_view parent_workflow_id) noexcept override;
  void on_workflow_end(std::string_view workflow_id) noexcept override;
  void add_trace_context(
      std::string_view task_uid,
      std::vector<std::pair<std::string, std::string>>& env) const noexcept override;

 private:
  /// The shared base fields of `task`'s events (cached per thread).
  /// `on_node`: the task reached the node it runs on (node_id set).
  std::shared_ptr<const EventContext> context(const TaskInfo& task, bool on_node) const;
  /// `values`: the type's extra fields, in order. `extra`: attributes of this event only.
  void emit(const EventTypePtr& type, const TaskInfo& task, Attributes extra = {},
            std::vector<FieldValue> values = {}, bool on_node = false) noexcept;
  void emit_workflow(const EventTypePtr& type, std::string_view workflow_id,
                     std::string_view parent_workflow_id) noexcept;
  std::shared_ptr<TelemetryManager> manager_;
  const std::string node_id_;  // where the tasks run: this machine
  const std::uint64_t id_;     // tells this bridge's cached contexts from other sessions'
};

}  // namespace asyncflow::detail
