// Private: engine lifecycle → telemetry events.
#include "telemetry_bridge.hpp"

#include <cxxabi.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <typeinfo>

namespace asyncflow::detail {

namespace {

// Blocks run inside the engine, not on a backend.
constexpr std::string_view kEngineBackend = "asyncflow";

std::string_view task_type(TaskKind kind) noexcept {
  switch (kind) {
    case TaskKind::kFunction: return "function";
    case TaskKind::kExecutable: return "executable";
    case TaskKind::kBlock: return "block";
  }
  return "function";
}

std::string demangle(const char* name) {
  int status = 0;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string s = status == 0 && out != nullptr ? out : name;
  std::free(out);
  return s;
}

/// The exception's dynamic type name (TaskFailed.error_type) and message.
std::pair<std::string, std::string> describe(const std::exception_ptr& error) {
  if (!error) return {"unknown", ""};
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return {demangle(typeid(e).name()), e.what()};
  } catch (...) {
    const std::type_info* t = abi::__cxa_current_exception_type();
    return {t != nullptr ? demangle(t->name()) : "unknown", ""};
  }
}

constexpr double kFilledByDispatcher = std::numeric_limits<double>::quiet_NaN();

}  // namespace

void TelemetryBridge::emit(const EventTypePtr& type, const TaskInfo& task, Attributes extra,
                           std::vector<std::pair<std::string, FieldValue>> values) noexcept {
  if (!manager_->running()) return;  // the session ended: nothing to record, nothing lost
  try {
    EventBase base;
    base.session_id = manager_->session_id();
    base.backend = std::string(task.kind == TaskKind::kBlock ? kEngineBackend : task.backend);
    base.task_id = task.uid;
    base.attributes.reserve(3 + extra.size());
    base.attributes.emplace_back("executable", std::string(task.name));
    base.attributes.emplace_back("task_type", std::string(task_type(task.kind)));
    if (!task.workflow_id.empty())
      base.attributes.emplace_back("asyncflow.workflow_id", std::string(task.workflow_id));
    for (auto& a : extra) base.attributes.push_back(std::move(a));
    manager_->emit(make_event(type, std::move(base), std::move(values)));
  } catch (const std::exception& e) {
    // Out of memory while building an event: lose the event, never the task.
    std::fprintf(stderr, "asyncflow telemetry: %s event for %s lost: %s\n", type->name().c_str(),
                 task.uid.c_str(), e.what());
  }
}

void TelemetryBridge::on_task_created(const TaskInfo& task,
                                      std::span<const std::string> depends_on) noexcept {
  Attributes extra;
  if (!depends_on.empty()) {
    std::string list;
    for (const auto& d : depends_on) list += (list.empty() ? "" : " ") + d;
    extra.emplace_back("depends_on", std::move(list));
  }
  emit(events::TaskCreated(), task, std::move(extra));
}

void TelemetryBridge::on_task_resolved(const TaskInfo& task) noexcept {
  emit(events::TaskResolved(), task);
}

void TelemetryBridge::on_task_submitted(const TaskInfo& task) noexcept {
  emit(events::TaskSubmitted(), task);
}

void TelemetryBridge::on_task_queued(const TaskInfo& task) noexcept {
  emit(events::TaskQueued(), task);
}

void TelemetryBridge::on_task_started(const TaskInfo& task) noexcept {
  emit(events::TaskStarted(), task);
}

void TelemetryBridge::on_task_finished(const TaskInfo& task, TaskState state,
                                       const std::exception_ptr& error) noexcept {
  // duration_seconds NaN: the dispatcher fills it from the TaskStarted it processed.
  std::vector<std::pair<std::string, FieldValue>> values = {
      {"duration_seconds", kFilledByDispatcher}};
  if (state == TaskState::kDone) {
    emit(events::TaskCompleted(), task, {}, std::move(values));
    return;
  }
  auto [type_name, message] = describe(error);
  Attributes extra;
  if (state == TaskState::kFailed) {
    extra.emplace_back("error_type", type_name);
    extra.emplace_back("error_message", std::move(message));
    values.emplace_back("error_type", std::move(type_name));
    emit(events::TaskFailed(), task, std::move(extra), std::move(values));
  } else {
    extra.emplace_back("error_message", std::move(message));
    emit(events::TaskCanceled(), task, std::move(extra), std::move(values));
  }
}

void TelemetryBridge::emit_workflow(const EventTypePtr& type, std::string_view workflow_id,
                                    std::string_view parent_workflow_id) noexcept {
  if (!manager_->running()) return;
  try {
    EventBase base{manager_->session_id(), std::string(kEngineBackend)};
    base.attributes.emplace_back("asyncflow.workflow_id", std::string(workflow_id));
    if (!parent_workflow_id.empty())
      base.attributes.emplace_back("asyncflow.parent_workflow_id", std::string(parent_workflow_id));
    manager_->emit(make_event(type, std::move(base)));
  } catch (const std::exception&) {
  }
}

void TelemetryBridge::on_workflow_begin(std::string_view workflow_id,
                                        std::string_view parent_workflow_id) noexcept {
  emit_workflow(events::WorkflowStarted(), workflow_id, parent_workflow_id);
}

void TelemetryBridge::on_workflow_end(std::string_view workflow_id) noexcept {
  emit_workflow(events::WorkflowEnded(), workflow_id, {});
}

}  // namespace asyncflow::detail
