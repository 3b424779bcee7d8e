// Internal: the few writes the telemetry layer makes to an event before anyone else sees it
// (a task id stamped at emit, a lifecycle duration completed by the dispatcher).
#pragma once

#include <string>
#include <utility>

#include "asyncflow/telemetry/event.hpp"

namespace asyncflow::detail {

struct EventAccess {
  static void set_task_id(Event& e, std::string task_id) { e.base_.task_id = std::move(task_id); }
  static void set_value(Event& e, std::size_t index, FieldValue v) { e.values_[index] = std::move(v); }
  static Attributes& attributes(Event& e) { return e.base_.attributes; }
};

}  // namespace asyncflow::detail
