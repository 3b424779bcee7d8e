// Private: engine lifecycle → telemetry events.
#include "telemetry_bridge.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <typeinfo>
#include <vector>

#include "asyncflow/telemetry/log.hpp"
#include "asyncflow/telemetry/manager.hpp"
#include "asyncflow/telemetry/resource.hpp"
#include "asyncflow/telemetry/usage_attributes.hpp"
#include "common/exception_text.hpp"

namespace asyncflow::detail {

namespace {

// Blocks run inside the engine, not on a backend.
constexpr std::string_view kEngineBackend = "asyncflow";

constexpr double kFilledByDispatcher = std::numeric_limits<double>::quiet_NaN();

std::atomic<std::uint64_t> g_next_bridge_id{1};

/// An event that could not even be built (out of memory): the task goes on, the log says it.
void lost(std::string_view what, std::string_view about, const char* why) noexcept {
  try {
    log_message(LogLevel::kError,
                std::string(what) + " event for " + std::string(about) + " lost: " + why);
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory for the message too
  }
}

// A task's events share their base fields with every task of the same factory, kind, backend
// and group; a small per-thread cache hands out one shared context for them, so an engine
// event copies no strings. Entries are matched by content (and bridge), never by address. An
// entry keeps its context (a few hundred bytes) until it is replaced or the thread exits.
struct ContextCache {
  struct Entry {
    std::uint64_t bridge = 0;
    TaskKind kind = TaskKind::kFunction;
    bool on_node = false;
    std::string name;
    std::string backend;
    std::string workflow;
    std::shared_ptr<const EventContext> context;
    // References to `context` taken ahead, kSpares at a time: each event takes one without an
    // atomic increment of its own. The count lives on a line the threads that destroy events
    // write too, and an increment per event there was 80% of this lookup (perf).
    std::vector<std::shared_ptr<const EventContext>> spares;
  };
  static constexpr std::size_t kSpares = 64;
  // Two per factory in use (before and after the task reached a node).
  std::array<Entry, 8> entries;
  std::size_t next = 0;  // round-robin replacement
};
thread_local ContextCache t_contexts;

/// `usage`'s measured fields as event attributes (usage_attributes.hpp).
void add_usage(Attributes& out, const TaskUsage& usage) {
  namespace names = usage_attributes;
  auto seconds = [&out](const char* name, const std::optional<double>& v) {
    if (v) out.emplace_back(name, *v);
  };
  auto count = [&out](const char* name, const std::optional<std::uint64_t>& v) {
    if (v)
      out.emplace_back(name, static_cast<std::int64_t>(std::min<std::uint64_t>(
                                 *v, std::numeric_limits<std::int64_t>::max())));
  };
  seconds(names::kWallSeconds, usage.wall_seconds);
  seconds(names::kCpuUserSeconds, usage.cpu_user_seconds);
  seconds(names::kCpuSystemSeconds, usage.cpu_system_seconds);
  count(names::kPeakMemoryBytes, usage.peak_memory_bytes);
  count(names::kReadBytes, usage.read_bytes);
  count(names::kWriteBytes, usage.write_bytes);
  count(names::kReadChars, usage.read_chars);
  count(names::kWriteChars, usage.write_chars);
  count(names::kVoluntarySwitches, usage.voluntary_switches);
  count(names::kInvoluntarySwitches, usage.involuntary_switches);
}

}  // namespace

TelemetryBridge::TelemetryBridge(std::shared_ptr<TelemetryManager> manager)
    : manager_(std::move(manager)), node_id_(host_name()), id_(g_next_bridge_id.fetch_add(1)) {}

std::shared_ptr<const EventContext> TelemetryBridge::context(const TaskInfo& task,
                                                             bool on_node) const {
  const std::string_view backend = task.kind == TaskKind::kBlock ? kEngineBackend : task.backend;
  on_node = on_node && task.kind != TaskKind::kBlock;  // blocks run in the engine
  for (auto& e : t_contexts.entries) {
    if (e.bridge == id_ && e.kind == task.kind && e.on_node == on_node && e.name == task.name &&
        e.backend == backend && e.workflow == task.workflow_id) {
      if (e.spares.empty()) e.spares.assign(ContextCache::kSpares, e.context);
      std::shared_ptr<const EventContext> ref = std::move(e.spares.back());
      e.spares.pop_back();
      return ref;
    }
  }
  auto context = std::make_shared<EventContext>();
  context->session_id = manager_->session_id();
  context->backend = std::string(backend);
  // Every backend today runs its tasks on this machine.
  if (on_node) context->node_id = node_id_;
  context->attributes.reserve(3);
  context->attributes.emplace_back("executable", std::string(task.name));
  context->attributes.emplace_back("task_type", std::string(to_string(task.kind)));
  if (!task.workflow_id.empty())
    context->attributes.emplace_back("asyncflow.workflow_id", std::string(task.workflow_id));
  auto& slot = t_contexts.entries[t_contexts.next++ % t_contexts.entries.size()];
  slot = {id_,
          task.kind,
          on_node,
          std::string(task.name),
          std::string(backend),
          std::string(task.workflow_id),
          context,
          {}};
  return context;
}

void TelemetryBridge::emit(const EventTypePtr& type, const TaskInfo& task, Attributes extra,
                           std::vector<FieldValue> values, bool on_node) noexcept {
  if (!manager_->running()) return;  // the session ended: nothing to record, nothing lost
  try {
    std::shared_ptr<const EventContext> shared = context(task, on_node);
    if (!extra.empty()) {  // attributes of this event only: its own copy of the context
      auto own = std::make_shared<EventContext>(*shared);
      for (auto& a : extra) own->attributes.push_back(std::move(a));
      shared = std::move(own);
    }
    manager_->emit(type, std::move(shared), std::string(task.uid), std::move(values));
  } catch (const std::exception& e) {
    // Out of memory while building an event: lose the event, never the task, and say so.
    lost(type->name(), task.uid, e.what());
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
  emit(events::TaskStarted(), task, {}, {}, /*on_node=*/true);
}

void TelemetryBridge::on_task_finished(const TaskInfo& task, TaskState state,
                                       const std::exception_ptr& error) noexcept {
  // duration_seconds NaN (no values: NaN, with nothing to allocate here): the dispatcher
  // fills it from the TaskStarted it processed.
  try {
    Attributes extra;
    if (state == TaskState::kDone) {
      if (task.usage != nullptr) add_usage(extra, *task.usage);
      emit(events::TaskCompleted(), task, std::move(extra), {}, task.ran);
      return;
    }
    auto [type_name, message] = describe_exception(error);
    if (state == TaskState::kFailed) {
      extra.emplace_back("error_type", type_name);
      extra.emplace_back("error_message", std::move(message));
      if (task.usage != nullptr) add_usage(extra, *task.usage);
      emit(events::TaskFailed(), task, std::move(extra),
           {kFilledByDispatcher, std::move(type_name)}, task.ran);
    } else {
      extra.emplace_back("error_message", std::move(message));
      emit(events::TaskCanceled(), task, std::move(extra), {kFilledByDispatcher}, task.ran);
    }
  } catch (const std::exception& e) {
    lost("terminal", task.uid, e.what());
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
  } catch (const std::exception& e) {
    lost(type->name(), std::string(workflow_id), e.what());
  }
}

void TelemetryBridge::on_workflow_begin(std::string_view workflow_id,
                                        std::string_view parent_workflow_id) noexcept {
  emit_workflow(events::WorkflowStarted(), workflow_id, parent_workflow_id);
}

void TelemetryBridge::on_workflow_end(std::string_view workflow_id) noexcept {
  emit_workflow(events::WorkflowEnded(), workflow_id, {});
}

void TelemetryBridge::add_trace_context(
    std::string_view task_uid,
    std::vector<std::pair<std::string, std::string>>& env) const noexcept {
  try {
    env.emplace_back("TRACEPARENT", manager_->traceparent(task_uid));
    if (!manager_->tracestate().empty()) env.emplace_back("TRACESTATE", manager_->tracestate());
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the program runs untraced
  }
}

}  // namespace asyncflow::detail
