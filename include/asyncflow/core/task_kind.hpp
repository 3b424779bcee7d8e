// TaskKind: what kind of work a task is. A vocabulary type of the engine that backends see too
// (BackendTask::kind()), so it depends on nothing.
#pragma once

#include <string_view>

namespace asyncflow {

/// What kind of work a task is.
enum class TaskKind { kFunction, kExecutable, kBlock };

/// "function", "executable", "block": the `task_type` telemetry records for the kind.
constexpr std::string_view to_string(TaskKind kind) noexcept {
  switch (kind) {
    case TaskKind::kFunction: return "function";
    case TaskKind::kExecutable: return "executable";
    case TaskKind::kBlock: return "block";
  }
  return "function";
}

}  // namespace asyncflow
