// Internal: the few writes the telemetry layer makes to an event before anyone else sees it
// (a task id stamped at emit, a lifecycle duration completed by the dispatcher).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "asyncflow/telemetry/event.hpp"

namespace asyncflow::detail {

/// Writes a random uuid4 as 32 lowercase hex digits to `out` (no terminator).
void fill_uuid4_hex(char* out) noexcept;

struct EventAccess {
  /// Marks a type that lives until exit (a function-local static): events then refer to it
  /// without touching its reference count.
  static EventTypePtr immortal(EventTypePtr type) {
    const_cast<EventType&>(*type).immortal_ = true;
    return type;
  }
  /// The pointer an event keeps to `type`: a control-block-free alias for immortal types.
  static EventTypePtr type_ref(const EventTypePtr& type) {
    return type->immortal_ ? EventTypePtr(EventTypePtr(), type.get()) : type;
  }
  static const EventTypeJsonl& jsonl(const EventType& type) { return type.jsonl_; }
  static const std::shared_ptr<const EventContext>& context(const Event& e) { return e.context_; }
  /// Whether the event's id was generated here (32 hex digits, nothing to escape).
  static bool has_uuid4_id(const Event& e) noexcept { return e.event_id_is_uuid4_; }
  static void set_task_id(Event& e, std::string task_id) { e.task_id_ = std::move(task_id); }
  static void set_value(Event& e, std::size_t index, FieldValue v) { e.values_[index] = std::move(v); }
  /// The event's own attributes, to change: a context shared with other events is copied first.
  static Attributes& attributes(Event& e) {
    auto own = std::make_shared<EventContext>(e.context());
    e.context_ = own;
    return own->attributes;
  }

  /// An engine lifecycle event over a shared context, stamped now. `values` must already fit
  /// the type's fields, in order (the engine's own events; users go through make_event()).
  static Event lifecycle(const EventTypePtr& type, std::shared_ptr<const EventContext> context,
                         std::string task_id, std::vector<FieldValue> values = {}) {
    Event e;
    e.type_ = type_ref(type);
    e.context_ = std::move(context);
    e.task_id_ = std::move(task_id);
    e.values_ = std::move(values);
    e.event_time_ = e.emit_time_ = epoch_seconds();
    fill_uuid4_hex(e.event_id_.data());
    e.event_id_size_ = 32;
    e.event_id_is_uuid4_ = true;
    return e;
  }
};

}  // namespace asyncflow::detail
