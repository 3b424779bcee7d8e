// Internal: the few writes the telemetry layer makes to an event before anyone else sees it
// (a task id stamped at emit, a lifecycle duration and the span correlation completed by the
// dispatcher), and the built-in types' construction.
#pragma once

#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "asyncflow/telemetry/event.hpp"

namespace asyncflow::detail {

/// Writes a random uuid4 as 32 lowercase hex digits to `out` (no terminator).
void fill_uuid4_hex(char* out) noexcept;

struct EventAccess {
  /// A type that lives until exit (a function-local static), outside define_event()'s rules
  /// (built-in names, internal ticks): events refer to it without touching its reference count.
  static EventTypePtr builtin(std::string name,
                              std::vector<std::pair<std::string, FieldSpec>> fields = {}) {
    auto type = std::make_shared<EventType>(std::move(name), std::move(fields));
    type->immortal_ = true;
    return type;
  }
  /// The pointer an event keeps to `type`: a control-block-free alias for immortal types.
  static EventTypePtr type_ref(const EventTypePtr& type) {
    return type->immortal_ ? EventTypePtr(EventTypePtr(), type.get()) : type;
  }
  /// Gives `e` a fresh uuid4 event_id (32 lowercase hex digits).
  static void generate_id(Event& e) noexcept {
    fill_uuid4_hex(e.event_id_chars());
    e.event_id_size_ = 32;
    e.event_id_is_uuid4_ = true;
  }
  /// make_event(type, context, task_id, values); with `pending` the event_id is left for
  /// complete_pending() on the dispatcher thread (the engine's events: nobody sees them
  /// before), and empty `values` for a type of double fields only mean each is NaN, to be
  /// filled there too (a terminal event's duration): the engine's thread allocates nothing.
  static Event context_event(const EventTypePtr& type, std::shared_ptr<const EventContext> context,
                             std::string task_id, std::vector<FieldValue> values, bool pending);
  /// Gives a pending context_event() its uuid4 and its NaN values; other events are left
  /// alone. Throws std::bad_alloc (the event keeps an empty values()).
  static void complete_pending(Event& e) {
    if (!e.event_id_pending_) return;
    generate_id(e);
    e.event_id_pending_ = false;
    const std::size_t fields = e.type_->fields().size();
    if (e.values_.size() != fields)
      e.values_.assign(fields, std::numeric_limits<double>::quiet_NaN());
  }
  /// Whether the event's type is built in (the engine's and the session's own events).
  static bool is_builtin(const Event& e) noexcept { return e.type_->immortal_; }
  static void set_task_id(Event& e, std::string task_id) { e.task_id_ = std::move(task_id); }
  static void set_value(Event& e, std::size_t index, FieldValue v) {
    e.values_[index] = std::move(v);
  }
  static void set_correlation(Event& e, const TraceId& trace_id, std::uint64_t span_id) noexcept {
    e.trace_id_ = trace_id;
    e.span_id_ = span_id;
  }
  /// The event's own attributes, to change: a context shared with other events is copied first.
  static Attributes& attributes(Event& e) {
    auto own = std::make_shared<EventContext>(e.fields());
    e.context_ = own;
    return own->attributes;
  }
};

}  // namespace asyncflow::detail
