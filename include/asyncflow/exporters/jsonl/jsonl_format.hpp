// JSONL checkpoint lines: one JSON object per event, span or metric snapshot, with the keys,
// key order and value forms of the reference (rhapsody-telemetry.md §3.2), so pandas and the
// reference's plotting scripts read our files unchanged. docs/checkpoint-format.md. Every
// function here is thread-safe (it writes only to `out`).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/metrics.hpp"
#include "asyncflow/telemetry/span.hpp"

namespace asyncflow::jsonl {

/// Appends `"0x…"`-style ids as the reference writes them (Python hex(int)): lowercase,
/// not zero-padded, `0x` prefix. A zero id is written as null.
void append_id(std::string& out, std::uint64_t id);
void append_id(std::string& out, const TraceId& id);

/// Appends `value` as Python's json.dumps would: shortest round-trip digits, repr's choice
/// between fixed and exponent notation ("0.0", "1e-05", "1e+16"), NaN/Infinity/-Infinity
/// as bare tokens.
void append_double(std::string& out, double value);

/// Appends `text` as a JSON string literal (quotes, escapes for `"`, `\`, control characters
/// and DEL; UTF-8 passes through unescaped, unlike json.dumps' ensure_ascii; bytes that are not
/// valid UTF-8 become \ufffd).
void append_string(std::string& out, std::string_view text);

/// Appends one event line and '\n': the 9 base fields, the type's extra fields in order, then
/// trace_id, span_id (null when zero/invalid), name (= event_type), section "event".
void append_event_line(std::string& out, const Event& event, const TraceId& trace_id,
                       std::uint64_t span_id);
/// The same with the event's own correlation (Event::trace_id() / span_id()).
void append_event_line(std::string& out, const Event& event);

/// Appends one span line and '\n': name, span_id, trace_id, parent_span_id, start_ns,
/// end_ns, start_time_s, end_time_s, duration_ms (3 decimals), status_code,
/// status_description, attributes, section "span". A TaskSpan is written exactly as its
/// to_span_data() would be.
void append_span_line(std::string& out, const SpanData& span);
void append_span_line(std::string& out, const TaskSpan& span);

/// Appends one metric line and '\n': checkpoint_time, then per instrument with data its total
/// (histograms: `<name>_count` and `<name>_sum`), then section "metric".
void append_metric_line(std::string& out, double checkpoint_time, const MetricsSnapshot& metrics);

namespace detail {
class RenderCache;
}  // namespace detail

/// The line writers above with the JSONL exporter's caches: the constant parts of the lines of
/// each event type, and the JSON of base fields that several events share (the engine's
/// lifecycle events share one context per task factory and group), are rendered once.
/// Produces the same bytes as the free functions. Not thread-safe: one thread formats.
class LineFormatter {
 public:
  LineFormatter();
  ~LineFormatter();
  LineFormatter(const LineFormatter&) = delete;
  LineFormatter& operator=(const LineFormatter&) = delete;

  void append_event_line(std::string& out, const Event& event, const TraceId& trace_id,
                         std::uint64_t span_id);
  void append_event_line(std::string& out, const Event& event);
  void append_span_line(std::string& out, const SpanRecord& span);

 private:
  std::unique_ptr<detail::RenderCache> cache_;
};

}  // namespace asyncflow::jsonl
