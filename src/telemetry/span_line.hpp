// Internal: the parts of a JSONL span line around its attributes object, shared by
// jsonl::append_span_line (SpanData) and the compact task spans (task_span.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "asyncflow/telemetry/span.hpp"

namespace asyncflow::jsonl::detail {

/// `{"name": …` up to and including `"attributes": ` (docs/checkpoint-format.md).
void append_span_line_head(std::string& out, std::string_view name, const TraceId& trace_id,
                           std::uint64_t span_id, std::uint64_t parent_span_id,
                           std::int64_t start_ns, std::int64_t end_ns, SpanStatus status,
                           const std::optional<std::string>& status_description);
/// `, "section": "span"}` and the newline.
void append_span_line_end(std::string& out);

}  // namespace asyncflow::jsonl::detail
