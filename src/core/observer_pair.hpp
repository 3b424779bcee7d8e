// Private: two observers as one — telemetry's and the user's, both installed — so the engine's
// hot path still reads one pointer (one branch with none installed).
#pragma once

#include <memory>
#include <utility>

#include "asyncflow/core/observer.hpp"

namespace asyncflow::detail {

/// Thread-safe as its two observers are (both must be, per EngineObserver).
class ObserverPair final : public EngineObserver {
 public:
  ObserverPair(std::shared_ptr<EngineObserver> first, std::shared_ptr<EngineObserver> second)
      : first_(std::move(first)), second_(std::move(second)) {}

  void on_task_created(const TaskInfo& task,
                       std::span<const std::string> depends_on) noexcept override {
    first_->on_task_created(task, depends_on);
    second_->on_task_created(task, depends_on);
  }
  void on_task_resolved(const TaskInfo& task) noexcept override {
    first_->on_task_resolved(task);
    second_->on_task_resolved(task);
  }
  void on_task_submitted(const TaskInfo& task) noexcept override {
    first_->on_task_submitted(task);
    second_->on_task_submitted(task);
  }
  void on_task_queued(const TaskInfo& task) noexcept override {
    first_->on_task_queued(task);
    second_->on_task_queued(task);
  }
  void on_task_started(const TaskInfo& task) noexcept override {
    first_->on_task_started(task);
    second_->on_task_started(task);
  }
  void on_task_finished(const TaskInfo& task, TaskState state,
                        const std::exception_ptr& error) noexcept override {
    first_->on_task_finished(task, state, error);
    second_->on_task_finished(task, state, error);
  }
  void on_workflow_begin(std::string_view workflow_id,
                         std::string_view parent_workflow_id) noexcept override {
    first_->on_workflow_begin(workflow_id, parent_workflow_id);
    second_->on_workflow_begin(workflow_id, parent_workflow_id);
  }
  void on_workflow_end(std::string_view workflow_id) noexcept override {
    first_->on_workflow_end(workflow_id);
    second_->on_workflow_end(workflow_id);
  }
  void add_trace_context(
      std::string_view task_uid,
      std::vector<std::pair<std::string, std::string>>& env) const noexcept override {
    first_->add_trace_context(task_uid, env);
    second_->add_trace_context(task_uid, env);
  }

 private:
  const std::shared_ptr<EngineObserver> first_;
  const std::shared_ptr<EngineObserver> second_;
};

}  // namespace asyncflow::detail
