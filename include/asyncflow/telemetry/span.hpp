// Spans: the trace model (OTel-shaped ids and fields) that the TelemetryManager builds from
// lifecycle events — SpanData for any span, TaskSpan for the compact task and block spans —
// and the SpanProcessor interface. Shapes: reference rhapsody-telemetry.md §4.2.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "asyncflow/telemetry/event.hpp"

namespace asyncflow {

/// Span outcome, as OTel's StatusCode.
enum class SpanStatus { kUnset, kOk, kError };

/// "UNSET", "OK", "ERROR" (the JSONL `status_code`).
std::string_view to_string(SpanStatus status) noexcept;

/// An event recorded on a span (e.g. TaskQueued on a task span).
struct SpanEvent {
  std::string name;
  std::int64_t time_ns = 0;  ///< epoch nanoseconds
  Attributes attributes;
};

/// A finished span: name, ids, parent, epoch-ns start/end, status, attributes.
/// Thread-safety: a value.
struct SpanData {
  std::string name;  ///< "session", "workflow", "block" or "task"
  TraceId trace_id;
  std::uint64_t span_id = 0;         ///< never 0 for a real span
  std::uint64_t parent_span_id = 0;  ///< 0 = root (the session span)
  std::int64_t start_ns = 0;         ///< epoch nanoseconds
  std::int64_t end_ns = 0;
  SpanStatus status = SpanStatus::kUnset;
  std::optional<std::string> status_description;
  Attributes attributes;
  std::vector<SpanEvent> events;

  /// The attribute `key`, or null when absent.
  const FieldValue* attribute(std::string_view key) const noexcept;
  /// The attribute `key` when it is a string, else empty.
  std::string_view text(std::string_view key) const noexcept;
  double duration_seconds() const noexcept { return static_cast<double>(end_ns - start_ns) / 1e9; }
};

/// A task or block span in compact form, as the session keeps it while open and hands it to
/// exporters once finished: its attribute strings live in the task's shared EventContext (the
/// TaskCreated event's), so a span copies none. to_span_data() expands it.
/// Thread-safety: a value (the context it points into is immutable).
struct TaskSpan {
  enum class Outcome : std::uint8_t { kOpen, kCompleted, kFailed, kCanceled };

  std::shared_ptr<const EventContext> context;  ///< owns the strings pointed to below
  const std::string* executable = nullptr;      ///< the factory name; null: not given
  const std::string* task_type = nullptr;       ///< "function", "executable", "block"
  /// The scope or block the task was created in (the span's parent); null: ungrouped.
  const std::string* workflow_id = nullptr;
  std::string task_id;
  std::string backend;
  TraceId trace_id;
  std::uint64_t span_id = 0;
  std::uint64_t parent_span_id = 0;
  std::int64_t start_ns = 0;  ///< epoch ns: TaskCreated
  std::int64_t end_ns = 0;    ///< epoch ns: the terminal event (or the session's end)
  /// Lifecycle moments as span events (epoch ns; -1 when the event did not come):
  /// asyncflow.TaskResolved, TaskQueued, TaskStarted.
  std::int64_t resolved_ns = -1;
  std::int64_t queued_ns = -1;
  std::int64_t started_ns = -1;
  Outcome outcome = Outcome::kOpen;
  bool block = false;
  bool incomplete = false;  ///< terminal event without TaskStarted (incomplete_lifecycle)
  bool unfinished = false;  ///< still open when the session ended (asyncflow.unfinished)
  std::string error_type;   ///< kFailed only
  /// The measured resource usage from the terminal event ("usage.*" attributes, in their
  /// order; usage_attributes.hpp); empty when the backend measured none.
  Attributes usage;

  /// "block" or "task".
  std::string_view name() const noexcept { return block ? "block" : "task"; }
  /// "completed", "failed", "canceled"; empty while open or unfinished.
  std::string_view status() const noexcept;
  /// OK for completed, ERROR for failed and canceled, else UNSET.
  SpanStatus status_code() const noexcept;
  /// The error type of a failed task, else null.
  const std::string* status_description() const noexcept {
    return outcome == Outcome::kFailed ? &error_type : nullptr;
  }
  /// The session id (from the context), empty without one.
  std::string_view session_id() const noexcept {
    return context ? std::string_view(context->session_id) : std::string_view();
  }
  /// The span's asyncflow.workflow_id: a block's own uid (the workflow its body runs, as in
  /// the reference), else the scope or block the task was created in; null when ungrouped.
  const std::string* workflow_attribute() const noexcept { return block ? &task_id : workflow_id; }
  double duration_seconds() const noexcept { return static_cast<double>(end_ns - start_ns) / 1e9; }
};

/// A finished span as exporters receive it: a task or block span in compact form, or any
/// other span (session, workflow) in full.
using SpanRecord = std::variant<SpanData, TaskSpan>;

/// The span in full. Task spans get the attributes session_id, backend, task_id, executable,
/// task_type, [asyncflow.workflow_id], [asyncflow.parent_workflow_id] (blocks in a scope),
/// then status, [error_type], [incomplete_lifecycle] once ended, or asyncflow.unfinished;
/// and the span events asyncflow.TaskResolved, TaskQueued and TaskStarted that came, each with
/// the attribute task_id.
SpanData to_span_data(const TaskSpan& span);
SpanData to_span_data(const SpanRecord& span);

/// What a span processor lost: spans, and why in words.
struct SpanLosses {
  std::uint64_t spans = 0;
  std::string last_error;
};

/// Receives every span when it ends, on the telemetry dispatcher thread (an implementation
/// that does slow I/O should hand spans to a thread of its own, as a batch processor does).
/// Implementations are called by one thread at a time; force_flush() may come from any thread.
/// Thread-safety: on_end() and shutdown() come from one thread at a time; force_flush() may
/// come from any thread, so an implementation makes that one thread-safe.
class SpanProcessor {
 public:
  virtual ~SpanProcessor() = default;
  virtual void on_end(const SpanData& span) noexcept = 0;
  /// Hands over what is buffered; true when done within `timeout`.
  virtual bool force_flush(std::chrono::microseconds timeout) noexcept {
    (void)timeout;
    return true;
  }
  /// Called once when the manager stops, after the last on_end(); true when it finished
  /// cleanly within `timeout`.
  virtual bool shutdown(std::chrono::microseconds timeout) noexcept {
    (void)timeout;
    return true;
  }
  /// Spans it lost (a full queue, failed exports): the session adds them to its losses at
  /// stop, after shutdown(). Thread-safe.
  virtual SpanLosses losses() const noexcept { return {}; }

 protected:
  SpanProcessor() = default;
  SpanProcessor(const SpanProcessor&) = delete;
  SpanProcessor& operator=(const SpanProcessor&) = delete;
};

}  // namespace asyncflow
