// Internal: a task or block span kept compact while it is open and in the span history. Its
// attributes come from the events' shared context (no copies); a SpanData is built only for
// span processors and readers, and the JSONL line is written straight from the record.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/span.hpp"
#include "json_cursor.hpp"

namespace asyncflow::detail {

struct TaskSpan {
  enum class Outcome : std::uint8_t { kOpen, kCompleted, kFailed, kCanceled };

  std::shared_ptr<const EventContext> context;  // owns the strings pointed to below
  const std::string* executable = nullptr;       // null: not given
  const std::string* task_type = nullptr;
  const std::string* workflow_id = nullptr;      // null: ungrouped
  std::string task_id;
  std::string backend;
  TraceId trace_id;
  std::uint64_t span_id = 0;
  std::uint64_t parent_span_id = 0;
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  std::int64_t queued_ns = -1;  // the TaskQueued span event, when there was one
  Outcome outcome = Outcome::kOpen;
  bool block = false;
  bool incomplete = false;  // terminal event without TaskStarted (incomplete_lifecycle)
  bool unfinished = false;  // still open when the session ended (asyncflow.unfinished)
  std::string error_type;   // kFailed only

  std::string_view name() const noexcept { return block ? "block" : "task"; }
  /// "completed", "failed", "canceled"; empty while open or unfinished.
  std::string_view status() const noexcept;
  double duration_seconds() const noexcept {
    return static_cast<double>(end_ns - start_ns) / 1e9;
  }
};

/// The span as processors and readers see it: attributes session_id, backend, task_id,
/// executable, task_type, [asyncflow.workflow_id], then status, [error_type],
/// [incomplete_lifecycle] once ended, or asyncflow.unfinished.
SpanData to_span_data(const TaskSpan& span, std::string_view session_id);

/// Writes the span's JSONL line; the same bytes as jsonl::append_span_line(to_span_data()).
void write_task_span_line(jsonl::detail::JsonCursor& w, const TaskSpan& span,
                          std::string_view session_id);

/// A finished span for the checkpoint, processors and the history.
using FinishedSpan = std::variant<SpanData, TaskSpan>;

}  // namespace asyncflow::detail
