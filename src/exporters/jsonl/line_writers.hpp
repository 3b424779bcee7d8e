// Internal: the JSONL line writers over a JsonCursor. The exporter writes a whole batch through
// one cursor (making room once rather than per line), with its RenderCache; jsonl_format.hpp's
// append_* functions are the same writers over a cursor of their own, without a cache.
#pragma once

#include <cstddef>
#include <cstdint>

#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/metrics.hpp"
#include "asyncflow/telemetry/span.hpp"
#include "json_cursor.hpp"

namespace asyncflow::jsonl::detail {

class RenderCache;

/// Room a cursor makes per line it is about to write (an engine event line is about 500
/// bytes, a task span line 550); a longer line makes more.
inline constexpr std::size_t kExpectedLineSize = 600;

/// One event line with the given correlation; `cache` may be null.
void write_event_line(JsonCursor& w, const Event& event, const TraceId& trace_id,
                      std::uint64_t span_id, RenderCache* cache);
/// One span line; `cache` may be null.
void write_span_line(JsonCursor& w, const SpanData& span);
void write_span_line(JsonCursor& w, const TaskSpan& span, RenderCache* cache);
/// One metric line.
void write_metric_line(JsonCursor& w, double checkpoint_time, const MetricsSnapshot& metrics);

// The pieces of a context, as RenderCache keeps them.
/// `, "session_id": …, "backend": …, "task_id": `
void write_context_head(JsonCursor& w, const EventContext& c);
/// `, "node_id": …, "attributes": {…}`
void write_context_tail(JsonCursor& w, const EventContext& c);
/// `{"session_id": …, "backend": …, "task_id": ` (a task span's attributes)
void write_span_attributes_head(JsonCursor& w, const EventContext& c);
/// `, "executable": …, "task_type": …[, "asyncflow.workflow_id": …]`
void write_span_attributes_tail(JsonCursor& w, const EventContext& c);

}  // namespace asyncflow::jsonl::detail
