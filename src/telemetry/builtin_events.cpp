// The built-in event types (reference rhapsody-telemetry.md §1.2, §1.4) and
// asyncflow.TaskResolved, plus the clock and id helpers events use.
#include <chrono>
#include <cstdint>

#include "asyncflow/telemetry/event.hpp"

#include "common/hex.hpp"
#include "common/random.hpp"
#include "event_access.hpp"

namespace asyncflow {

namespace {

EventTypePtr builtin(std::string name, std::vector<std::pair<std::string, FieldSpec>> fields = {}) {
  // Built-ins are not namespaced, so they bypass define_event's checks on purpose.
  return detail::EventAccess::builtin(std::move(name), std::move(fields));
}

std::pair<std::string, FieldSpec> duration_field() {
  return {"duration_seconds", FieldType::kDouble};
}

}  // namespace

namespace events {

const EventTypePtr& SessionStarted() {
  static const EventTypePtr t = builtin("SessionStarted");
  return t;
}
const EventTypePtr& SessionEnded() {
  static const EventTypePtr t = builtin("SessionEnded", {duration_field()});
  return t;
}
const EventTypePtr& TaskCreated() {
  static const EventTypePtr t = builtin("TaskCreated");
  return t;
}
const EventTypePtr& TaskSubmitted() {
  static const EventTypePtr t = builtin("TaskSubmitted");
  return t;
}
const EventTypePtr& TaskQueued() {
  static const EventTypePtr t = builtin("TaskQueued");
  return t;
}
const EventTypePtr& TaskStarted() {
  static const EventTypePtr t = builtin("TaskStarted");
  return t;
}
const EventTypePtr& TaskCompleted() {
  static const EventTypePtr t = builtin("TaskCompleted", {duration_field()});
  return t;
}
const EventTypePtr& TaskFailed() {
  static const EventTypePtr t =
      builtin("TaskFailed", {duration_field(), {"error_type", {FieldType::kString, "unknown"}}});
  return t;
}
const EventTypePtr& TaskCanceled() {
  static const EventTypePtr t = builtin("TaskCanceled", {duration_field()});
  return t;
}
const EventTypePtr& ResourceUpdate() {
  static const EventTypePtr t =
      builtin("ResourceUpdate", {{"cpu_percent", FieldSpec::optional(FieldType::kDouble)},
                                 {"memory_percent", FieldSpec::optional(FieldType::kDouble)},
                                 {"gpu_percent", FieldSpec::optional(FieldType::kDouble)},
                                 {"gpu_id", FieldSpec::optional(FieldType::kInt)},
                                 {"disk_read_bytes", FieldSpec::optional(FieldType::kDouble)},
                                 {"disk_write_bytes", FieldSpec::optional(FieldType::kDouble)},
                                 {"net_sent_bytes", FieldSpec::optional(FieldType::kDouble)},
                                 {"net_recv_bytes", FieldSpec::optional(FieldType::kDouble)},
                                 {"resource_scope", {FieldType::kString, "per_node"}}});
  return t;
}
const EventTypePtr& TaskResolved() {
  static const EventTypePtr t = builtin("asyncflow.TaskResolved");
  return t;
}
const EventTypePtr& WorkflowStarted() {
  static const EventTypePtr t = builtin("asyncflow.WorkflowStarted");
  return t;
}
const EventTypePtr& WorkflowEnded() {
  static const EventTypePtr t = builtin("asyncflow.WorkflowEnded");
  return t;
}

const EventTypePtr* builtin_event_type(std::string_view name) noexcept {
  using Getter = const EventTypePtr& (*)();
  static constexpr std::pair<std::string_view, Getter> kTypes[] = {
      {"SessionStarted", &SessionStarted},
      {"SessionEnded", &SessionEnded},
      {"TaskCreated", &TaskCreated},
      {"TaskSubmitted", &TaskSubmitted},
      {"TaskQueued", &TaskQueued},
      {"TaskStarted", &TaskStarted},
      {"TaskCompleted", &TaskCompleted},
      {"TaskFailed", &TaskFailed},
      {"TaskCanceled", &TaskCanceled},
      {"ResourceUpdate", &ResourceUpdate},
      {"asyncflow.TaskResolved", &TaskResolved},
      {"asyncflow.WorkflowStarted", &WorkflowStarted},
      {"asyncflow.WorkflowEnded", &WorkflowEnded}};
  for (const auto& [n, get] : kTypes) {
    if (n == name) return &get();
  }
  return nullptr;
}

}  // namespace events

double epoch_seconds() noexcept {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

namespace detail {

void fill_uuid4_hex(char* out) noexcept {
  std::uint64_t hi = random_u64();
  std::uint64_t lo = random_u64();
  hi = (hi & ~0xF000ull) | 0x4000ull;            // version 4
  lo = (lo & ~(0x3ull << 62)) | (0x2ull << 62);  // RFC 4122 variant
  write_hex16(out, hi);
  write_hex16(out + 16, lo);
}

}  // namespace detail

std::string uuid4_hex() {
  std::string out(32, '0');
  detail::fill_uuid4_hex(out.data());
  return out;
}

}  // namespace asyncflow
