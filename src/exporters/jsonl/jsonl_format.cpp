// JSONL line formatting (docs/checkpoint-format.md). Hand-written rather than built on a JSON
// library: the exporter formats every event on the telemetry hot path, and building a DOM
// per line costs several allocations per key. Here a line is written straight into the
// caller's reused buffer (through a JsonCursor), so a batch allocates nothing once the buffer
// has grown; BM_JsonlWrite keeps the figure.
//
// The output matches Python's json.dumps(obj) byte for byte (separators ", " and ": ", floats
// as repr(), NaN/Infinity as bare tokens), except that non-ASCII UTF-8 is passed through
// instead of being escaped as \uXXXX (ensure_ascii): both parse to the same strings.
#include "asyncflow/exporters/jsonl/jsonl_format.hpp"

#include <cmath>
#include <memory>

#include "json_cursor.hpp"
#include "line_writers.hpp"
#include "render_cache.hpp"

namespace asyncflow::jsonl {

namespace detail {

namespace {

/// `"session_id": …, "backend": …, "task_id": `: how both an event line and a task span's
/// attributes go on after their opening.
void write_session_and_backend(JsonCursor& w, const EventContext& c) {
  w.literal("\"session_id\": ");
  w.string(c.session_id);
  w.literal(", \"backend\": ");
  w.string(c.backend);
  w.literal(", \"task_id\": ");
}

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

void write_span_line_head(JsonCursor& w, std::string_view name, const TraceId& trace_id,
                          std::uint64_t span_id, std::uint64_t parent_span_id,
                          std::int64_t start_ns, std::int64_t end_ns, SpanStatus status,
                          const std::string* status_description) {
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
  if (status_description != nullptr) {
    w.string(*status_description);
  } else {
    w.literal("null");
  }
  w.literal(", \"attributes\": ");
}

void write_span_line_end(JsonCursor& w) {
  w.literal(", \"section\": \"span\"}\n");
}

/// The attributes after the context's ones: the block's parent workflow, then the outcome (in
/// to_span_data()'s order).
void write_task_span_outcome(JsonCursor& w, const TaskSpan& s) {
  if (s.outcome != TaskSpan::Outcome::kOpen) {
    w.literal(", \"status\": ");
    w.string(s.status());
    if (s.outcome == TaskSpan::Outcome::kFailed) {
      w.literal(", \"error_type\": ");
      w.string(s.error_type);
    }
    if (s.incomplete) w.literal(", \"incomplete_lifecycle\": true");
  }
  for (const auto& [key, value] : s.usage) {
    w.literal(", ");
    w.string(key);
    w.literal(": ");
    w.value(value);
  }
  if (s.unfinished) w.literal(", \"asyncflow.unfinished\": true");
}

}  // namespace

void write_context_head(JsonCursor& w, const EventContext& c) {
  w.literal(", ");
  write_session_and_backend(w, c);
}

void write_context_tail(JsonCursor& w, const EventContext& c) {
  w.literal(", \"node_id\": ");
  w.optional_string(c.node_id);
  w.literal(", \"attributes\": ");
  w.attributes(c.attributes);
}

void write_span_attributes_head(JsonCursor& w, const EventContext& c) {
  w.character('{');
  write_session_and_backend(w, c);
}

void write_span_attributes_tail(JsonCursor& w, const EventContext& c) {
  auto or_empty = [](const std::string* s) { return s != nullptr ? std::string_view(*s) : ""; };
  w.literal(", \"executable\": ");
  w.string(or_empty(c.string_attribute("executable")));
  w.literal(", \"task_type\": ");
  w.string(or_empty(c.string_attribute("task_type")));
  if (const std::string* workflow = c.string_attribute("asyncflow.workflow_id")) {
    w.literal(", \"asyncflow.workflow_id\": ");
    w.string(*workflow);
  }
}

void write_event_line(JsonCursor& w, const Event& event, const TraceId& trace_id,
                      std::uint64_t span_id, RenderCache* cache) {
  static const EventContext kNone;  // a moved-from event
  const auto& context = event.context();
  const EventContext& c = context ? *context : kNone;
  const RenderCache::TypePieces* pieces =
      cache != nullptr ? &cache->type(event.event_type()) : nullptr;
  w.literal("{\"event_id\": ");
  const std::string_view id = event.event_id();
  if (!event.has_generated_id()) {
    w.string(id);
  } else if (id.size() == 32) {  // a uuid4's hex digits, as generate_id() writes them
    w.plain_string_of_size<32>(id.data());
  } else {
    w.plain_string(id);
  }
  if (pieces != nullptr) {
    w.raw(pieces->type_and_time);
  } else {
    w.literal(", \"event_type\": ");
    w.string(event.type());
    w.literal(", \"event_time\": ");
  }
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
  if (const RenderCache::ContextPieces* j = cache != nullptr ? cache->context(context) : nullptr) {
    w.raw(j->head);
    w.optional_string(event.task_id());
    w.raw(j->tail);
  } else {
    write_context_head(w, c);
    w.optional_string(event.task_id());
    write_context_tail(w, c);
  }
  const auto& values = event.values();
  const auto& fields = event.event_type()->fields();
  for (std::size_t i = 0; i < fields.size() && i < values.size(); ++i) {
    if (pieces != nullptr) {
      w.raw(pieces->field_keys[i]);
    } else {
      w.literal(", ");
      w.string(fields[i].first);
      w.literal(": ");
    }
    w.value(values[i]);
  }
  w.literal(", \"trace_id\": ");
  w.id(trace_id);
  w.literal(", \"span_id\": ");
  w.id(span_id);
  if (pieces != nullptr) {
    w.raw(pieces->name_and_end);
  } else {
    w.literal(", \"name\": ");
    w.string(event.type());
    w.literal(", \"section\": \"event\"}\n");
  }
}

void write_span_line(JsonCursor& w, const SpanData& span) {
  write_span_line_head(w, span.name, span.trace_id, span.span_id, span.parent_span_id,
                       span.start_ns, span.end_ns, span.status,
                       span.status_description ? &*span.status_description : nullptr);
  w.attributes(span.attributes);
  write_span_line_end(w);
}

void write_span_line(JsonCursor& w, const TaskSpan& s, RenderCache* cache) {
  write_span_line_head(w, s.name(), s.trace_id, s.span_id, s.parent_span_id, s.start_ns, s.end_ns,
                       s.status_code(), s.status_description());
  // The attributes that come from the shared context, rendered once with it: valid while the
  // span's backend is the context's (TaskSubmitted may have changed it) and for task spans (a
  // block's workflow attribute is its own uid, not its context's).
  const RenderCache::ContextPieces* j =
      cache != nullptr && !s.block && s.context && s.context->backend == s.backend
          ? cache->context(s.context)
          : nullptr;
  if (j != nullptr) {
    w.raw(j->span_head);
    w.string(s.task_id);
    w.raw(j->span_tail);
  } else {
    auto text = [](const std::string* p) { return p != nullptr ? std::string_view(*p) : ""; };
    w.literal("{\"session_id\": ");
    w.string(s.session_id());
    w.literal(", \"backend\": ");
    w.string(s.backend);
    w.literal(", \"task_id\": ");
    w.string(s.task_id);
    w.literal(", \"executable\": ");
    w.string(text(s.executable));
    w.literal(", \"task_type\": ");
    w.string(text(s.task_type));
    if (const std::string* workflow = s.workflow_attribute()) {
      w.literal(", \"asyncflow.workflow_id\": ");
      w.string(*workflow);
    }
    if (s.block && s.workflow_id != nullptr) {
      w.literal(", \"asyncflow.parent_workflow_id\": ");
      w.string(*s.workflow_id);
    }
  }
  write_task_span_outcome(w, s);
  w.character('}');
  write_span_line_end(w);
}

void write_metric_line(JsonCursor& w, double checkpoint_time, const MetricsSnapshot& metrics) {
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

}  // namespace detail

void append_id(std::string& out, std::uint64_t id) {
  detail::JsonCursor w(out, 24);
  w.id(id);
}

void append_id(std::string& out, const TraceId& id) {
  detail::JsonCursor w(out, 40);
  w.id(id);
}

void append_double(std::string& out, double value) {
  detail::JsonCursor w(out, 32);
  w.real(value);
}

void append_string(std::string& out, std::string_view text) {
  detail::JsonCursor w(out, text.size() + 2);
  w.string(text);
}

void append_event_line(std::string& out, const Event& event, const TraceId& trace_id,
                       std::uint64_t span_id) {
  detail::JsonCursor w(out, detail::kExpectedLineSize);
  detail::write_event_line(w, event, trace_id, span_id, nullptr);
}

void append_event_line(std::string& out, const Event& event) {
  append_event_line(out, event, event.trace_id(), event.span_id());
}

void append_span_line(std::string& out, const SpanData& span) {
  detail::JsonCursor w(out, detail::kExpectedLineSize);
  detail::write_span_line(w, span);
}

void append_span_line(std::string& out, const TaskSpan& span) {
  detail::JsonCursor w(out, detail::kExpectedLineSize);
  detail::write_span_line(w, span, nullptr);
}

void append_metric_line(std::string& out, double checkpoint_time, const MetricsSnapshot& metrics) {
  detail::JsonCursor w(out, detail::kExpectedLineSize);
  detail::write_metric_line(w, checkpoint_time, metrics);
}

LineFormatter::LineFormatter() : cache_(std::make_unique<detail::RenderCache>()) {}
LineFormatter::~LineFormatter() = default;

void LineFormatter::append_event_line(std::string& out, const Event& event, const TraceId& trace_id,
                                      std::uint64_t span_id) {
  detail::JsonCursor w(out, detail::kExpectedLineSize);
  detail::write_event_line(w, event, trace_id, span_id, cache_.get());
}

void LineFormatter::append_event_line(std::string& out, const Event& event) {
  append_event_line(out, event, event.trace_id(), event.span_id());
}

void LineFormatter::append_span_line(std::string& out, const SpanRecord& span) {
  detail::JsonCursor w(out, detail::kExpectedLineSize);
  if (const auto* task = std::get_if<TaskSpan>(&span)) {
    detail::write_span_line(w, *task, cache_.get());
  } else {
    detail::write_span_line(w, std::get<SpanData>(span));
  }
}

}  // namespace asyncflow::jsonl
