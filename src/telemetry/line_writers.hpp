// Internal: the JSONL line writers over a JsonCursor, for the dispatcher, which writes a whole
// batch through one cursor (making room once rather than per line). jsonl.hpp's append_*
// functions are the same writers over a cursor of their own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/metrics.hpp"
#include "asyncflow/telemetry/span.hpp"
#include "json_cursor.hpp"

namespace asyncflow::jsonl::detail {

/// Room a cursor makes per line it is about to write (an engine event line is about 500
/// bytes, a task span line 550); a longer line makes more.
inline constexpr std::size_t kExpectedLineSize = 600;

/// The context's fields as JSON (EventContext::Jsonl), rendered once and kept in the context
/// when other events share it (the engine's lifecycle events: most of a line is the same for
/// every event of a task); null for a context of one event.
const asyncflow::detail::EventContext::Jsonl* rendered(
    const std::shared_ptr<const asyncflow::detail::EventContext>& context);

/// One event line (jsonl::append_event_line).
void write_event_line(JsonCursor& w, const Event& event, const TraceId& trace_id,
                      std::uint64_t span_id);
/// One span line (jsonl::append_span_line).
void write_span_line(JsonCursor& w, const SpanData& span);
/// One metric line (jsonl::append_metric_line).
void write_metric_line(JsonCursor& w, double checkpoint_time, const MetricsSnapshot& metrics);

/// `{"name": …` up to and including `"attributes": ` (docs/checkpoint-format.md); with
/// write_span_line_end, the parts of a span line around its attributes object, shared with
/// the compact task spans (task_span.hpp).
void write_span_line_head(JsonCursor& w, std::string_view name, const TraceId& trace_id,
                          std::uint64_t span_id, std::uint64_t parent_span_id,
                          std::int64_t start_ns, std::int64_t end_ns, SpanStatus status,
                          const std::optional<std::string>& status_description);
/// `, "section": "span"}` and the newline.
void write_span_line_end(JsonCursor& w);

}  // namespace asyncflow::jsonl::detail
