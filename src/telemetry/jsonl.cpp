// JSONL line formatting (docs/checkpoint-format.md). Hand-written rather than built on a JSON
// library: the dispatcher formats every event on the telemetry hot path, and building a DOM
// per line costs several allocations per key. Here a line is written straight into the
// caller's reused buffer (through a JsonCursor), so a batch allocates nothing once the buffer
// has grown.
//
// The output matches Python's json.dumps(obj) byte for byte (separators ", " and ": ", floats
// as repr(), NaN/Infinity as bare tokens), except that non-ASCII UTF-8 is passed through
// instead of being escaped as \uXXXX (ensure_ascii): both parse to the same strings.
#include "asyncflow/telemetry/jsonl.hpp"

#include <cmath>
#include <memory>

#include "event_access.hpp"
#include "json_cursor.hpp"
#include "line_writers.hpp"

namespace asyncflow::jsonl {

namespace {

using detail::JsonCursor;


/// `"session_id": …, "backend": …, "task_id": `: how both an event line and a task span's
/// attributes go on after their opening.
void write_session_and_backend(JsonCursor& w, const asyncflow::detail::EventContext& c) {
  w.literal("\"session_id\": ");
  w.string(c.session_id);
  w.literal(", \"backend\": ");
  w.string(c.backend);
  w.literal(", \"task_id\": ");
}

void write_context_head(JsonCursor& w, const asyncflow::detail::EventContext& c) {
  w.literal(", ");
  write_session_and_backend(w, c);
}

void write_context_tail(JsonCursor& w, const asyncflow::detail::EventContext& c) {
  w.literal(", \"node_id\": ");
  w.optional_string(c.node_id);
  w.literal(", \"attributes\": ");
  w.attributes(c.attributes);
}

/// A string attribute of the context; null when absent or not a string.
const std::string* string_attribute(const asyncflow::detail::EventContext& c,
                                    std::string_view key) {
  const FieldValue* v = c.attribute(key);
  return v != nullptr ? std::get_if<std::string>(v) : nullptr;
}

void write_span_attributes_head(JsonCursor& w, const asyncflow::detail::EventContext& c) {
  w.character('{');
  write_session_and_backend(w, c);
}

/// As task_span.cpp's for_each_attribute writes them: executable and task_type always ("" when
/// not given as strings), the workflow id when given.
void write_span_attributes_tail(JsonCursor& w, const asyncflow::detail::EventContext& c) {
  auto or_empty = [](const std::string* s) { return s != nullptr ? std::string_view(*s) : ""; };
  w.literal(", \"executable\": ");
  w.string(or_empty(string_attribute(c, "executable")));
  w.literal(", \"task_type\": ");
  w.string(or_empty(string_attribute(c, "task_type")));
  if (const std::string* workflow = string_attribute(c, "asyncflow.workflow_id")) {
    w.literal(", \"asyncflow.workflow_id\": ");
    w.string(*workflow);
  }
}

}  // namespace

namespace detail {

const asyncflow::detail::EventContext::Jsonl* rendered(
    const std::shared_ptr<const asyncflow::detail::EventContext>& c) {
  if (!c) return nullptr;
  if (const auto* j = c->jsonl.load(std::memory_order_acquire)) return j;
  if (c.use_count() < 2) return nullptr;  // this event's own: rendering it once is enough
  auto fresh = std::make_unique<asyncflow::detail::EventContext::Jsonl>();
  {
    JsonCursor head(fresh->head, 0);
    write_context_head(head, *c);
  }
  {
    JsonCursor tail(fresh->tail, 0);
    write_context_tail(tail, *c);
  }
  {
    JsonCursor head(fresh->span_head, 0);
    write_span_attributes_head(head, *c);
  }
  {
    JsonCursor tail(fresh->span_tail, 0);
    write_span_attributes_tail(tail, *c);
  }
  const asyncflow::detail::EventContext::Jsonl* expected = nullptr;
  if (c->jsonl.compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
    return fresh.release();
  }
  return expected;  // another writer (a second session given the same event) was first
}

}  // namespace detail

namespace {

/// `"<name><suffix>": ` (suffix: plain ASCII, so escaping the joined key escapes the name).
void write_suffixed_key(JsonCursor& w, std::string_view name, std::string_view suffix) {
  std::string key;
  key.reserve(name.size() + suffix.size());
  key.append(name).append(suffix);
  w.string(key);
  w.literal(": ");
}

// Python sums an OTel counter's int data points to an int; our points hold doubles, so a whole
// total of a counter is written without the ".0" to keep the column's type.
constexpr double kTwo63 = 9223372036854775808.0;

void write_total(JsonCursor& w, double total, bool integral_kind) {
  if (integral_kind && std::isfinite(total) && std::trunc(total) == total && total < kTwo63 &&
      total >= -kTwo63) {
    w.integer(static_cast<std::int64_t>(total));
  } else {
    w.real(total);
  }
}

}  // namespace

void append_id(std::string& out, std::uint64_t id) {
  JsonCursor w(out, 24);
  w.id(id);
}

void append_id(std::string& out, const TraceId& id) {
  JsonCursor w(out, 40);
  w.id(id);
}

void append_double(std::string& out, double value) {
  JsonCursor w(out, 32);
  w.real(value);
}

void append_string(std::string& out, std::string_view text) {
  JsonCursor w(out, text.size() + 2);
  w.string(text);
}

void append_event_line(std::string& out, const Event& event, const TraceId& trace_id,
                       std::uint64_t span_id) {
  JsonCursor w(out, detail::kExpectedLineSize);
  detail::write_event_line(w, event, trace_id, span_id);
}

void append_span_line(std::string& out, const SpanData& span) {
  JsonCursor w(out, detail::kExpectedLineSize);
  detail::write_span_line(w, span);
}

namespace detail {

void write_event_line(JsonCursor& w, const Event& event, const TraceId& trace_id,
                      std::uint64_t span_id) {
  const auto& pieces = asyncflow::detail::EventAccess::jsonl(*event.event_type());
  w.literal("{\"event_id\": ");
  if (asyncflow::detail::EventAccess::has_uuid4_id(event)) {
    w.plain_string(event.event_id());
  } else {
    w.string(event.event_id());
  }
  w.raw(pieces.type_and_time);
  const std::size_t time_at = w.mark();
  w.real(event.event_time());
  const std::size_t time_end = w.mark();
  w.literal(", \"emit_time\": ");
  if (event.emit_time() == event.event_time()) {
    // The usual case (make_event stamps both with one clock read): format once.
    w.repeat(time_at, time_end);
  } else {
    w.real(event.emit_time());
  }
  const auto& context = asyncflow::detail::EventAccess::context(event);
  if (const auto* j = detail::rendered(context)) {
    w.raw(j->head);
    w.optional_string(event.task_id());
    w.raw(j->tail);
  } else {
    static const asyncflow::detail::EventContext kNone;  // a moved-from event
    const asyncflow::detail::EventContext& c = context ? *context : kNone;
    write_context_head(w, c);
    w.optional_string(event.task_id());
    write_context_tail(w, c);
  }
  const auto& values = event.values();
  for (std::size_t i = 0; i < pieces.field_keys.size() && i < values.size(); ++i) {
    w.raw(pieces.field_keys[i]);
    w.value(values[i]);
  }
  w.literal(", \"trace_id\": ");
  w.id(trace_id);
  w.literal(", \"span_id\": ");
  w.id(span_id);
  w.raw(pieces.name_and_end);
}

void write_span_line_head(JsonCursor& w, std::string_view name, const TraceId& trace_id,
                          std::uint64_t span_id, std::uint64_t parent_span_id,
                          std::int64_t start_ns, std::int64_t end_ns, SpanStatus status,
                          const std::optional<std::string>& status_description) {
  w.literal("{\"name\": ");
  w.string(name);
  w.literal(", \"span_id\": ");
  w.id(span_id);
  w.literal(", \"trace_id\": ");
  w.id(trace_id);
  w.literal(", \"parent_span_id\": ");
  w.id(parent_span_id);
  w.literal(", \"start_ns\": ");
  w.integer(start_ns);
  w.literal(", \"end_ns\": ");
  w.integer(end_ns);
  w.literal(", \"start_time_s\": ");
  w.real(static_cast<double>(start_ns) / 1e9);
  w.literal(", \"end_time_s\": ");
  w.real(static_cast<double>(end_ns) / 1e9);
  w.literal(", \"duration_ms\": ");
  w.real(duration_ms(end_ns - start_ns));
  w.literal(", \"status_code\": ");
  w.string(to_string(status));
  w.literal(", \"status_description\": ");
  w.optional_string(status_description);
  w.literal(", \"attributes\": ");
}

void write_span_line_end(JsonCursor& w) { w.literal(", \"section\": \"span\"}\n"); }

void write_span_line(JsonCursor& w, const SpanData& span) {
  write_span_line_head(w, span.name, span.trace_id, span.span_id, span.parent_span_id,
                       span.start_ns, span.end_ns, span.status, span.status_description);
  w.attributes(span.attributes);
  write_span_line_end(w);
}

}  // namespace detail

void append_metric_line(std::string& out, double checkpoint_time, const MetricsSnapshot& metrics) {
  JsonCursor w(out, detail::kExpectedLineSize);
  detail::write_metric_line(w, checkpoint_time, metrics);
}

void detail::write_metric_line(JsonCursor& w, double checkpoint_time,
                               const MetricsSnapshot& metrics) {
  w.literal("{\"checkpoint_time\": ");
  w.real(checkpoint_time);
  for (const MetricData& m : metrics.metrics) {
    if (m.points.empty()) continue;
    w.literal(", ");
    if (m.kind == InstrumentKind::kHistogram) {
      std::uint64_t count = 0;
      double sum = 0;
      for (const MetricPoint& p : m.points) {
        count += p.count;
        sum += p.sum;
      }
      write_suffixed_key(w, m.name, "_count");
      w.unsigned_integer(count);
      w.literal(", ");
      write_suffixed_key(w, m.name, "_sum");
      w.real(sum);
    } else {
      double total = 0;
      for (const MetricPoint& p : m.points) total += p.value;
      w.string(m.name);
      w.literal(": ");
      write_total(w, total,
                  m.kind == InstrumentKind::kCounter || m.kind == InstrumentKind::kUpDownCounter);
    }
  }
  w.literal(", \"section\": \"metric\"}\n");
}

}  // namespace asyncflow::jsonl
