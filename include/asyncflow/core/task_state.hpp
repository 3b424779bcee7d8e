// TaskState: the lifecycle of a task or block, readable at any time through its handle.
#pragma once

#include <cstdint>
#include <string_view>

namespace asyncflow {

/// Lifecycle of a task. Transitions only move forward:
/// kPending → kResolved → kSubmitted → kRunning → one of kDone | kFailed | kCanceled.
/// A task may skip to a terminal state from any earlier one (dependency failure, cancel).
/// Blocks go kPending → kResolved → kRunning (body started) → terminal.
enum class TaskState : std::uint8_t {
  kPending,    ///< Created; waiting for dependencies.
  kResolved,   ///< All dependencies finished; about to be submitted.
  kSubmitted,  ///< Handed to its backend; waiting for a slot.
  kRunning,    ///< Executing (a block: its body has started).
  kDone,       ///< Finished; the result is available.
  kFailed,     ///< Finished with an error (its own or a dependency's).
  kCanceled,   ///< Canceled (cancel(), a canceled dependency or block, or engine shutdown).
};

/// True for kDone, kFailed and kCanceled.
constexpr bool is_terminal(TaskState s) noexcept {
  return s >= TaskState::kDone;
}

/// The reference's state names: "PENDING", "RESOLVED", "SUBMITTED", "RUNNING", "DONE",
/// "FAILED", "CANCELED".
constexpr std::string_view to_string(TaskState s) noexcept {
  switch (s) {
    case TaskState::kPending: return "PENDING";
    case TaskState::kResolved: return "RESOLVED";
    case TaskState::kSubmitted: return "SUBMITTED";
    case TaskState::kRunning: return "RUNNING";
    case TaskState::kDone: return "DONE";
    case TaskState::kFailed: return "FAILED";
    case TaskState::kCanceled: return "CANCELED";
  }
  return "UNKNOWN";
}

}  // namespace asyncflow
