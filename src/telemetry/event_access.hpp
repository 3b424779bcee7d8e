// Internal: the few writes the telemetry layer makes to an event before anyone else sees it
// (a task id stamped at emit, a lifecycle duration completed by the dispatcher).
#pragma once

#include <string>
#include <utility>

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
  static void set_task_id(Event& e, std::string task_id) { e.base_.task_id = std::move(task_id); }
  static void set_value(Event& e, std::size_t index, FieldValue v) { e.values_[index] = std::move(v); }
  static Attributes& attributes(Event& e) { return e.base_.attributes; }
};

}  // namespace asyncflow::detail
