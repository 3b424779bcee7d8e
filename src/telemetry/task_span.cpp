// Compact task spans (task_span.hpp).
#include "task_span.hpp"

#include "asyncflow/telemetry/jsonl.hpp"
#include "span_line.hpp"

namespace asyncflow::detail {

namespace {

SpanStatus status_code(const TaskSpan& s) {
  switch (s.outcome) {
    case TaskSpan::Outcome::kCompleted: return SpanStatus::kOk;
    case TaskSpan::Outcome::kFailed:
    case TaskSpan::Outcome::kCanceled: return SpanStatus::kError;
    case TaskSpan::Outcome::kOpen: break;
  }
  return SpanStatus::kUnset;
}

std::optional<std::string> status_description(const TaskSpan& s) {
  if (s.outcome == TaskSpan::Outcome::kFailed) return s.error_type;
  return std::nullopt;
}

std::string_view or_empty(const std::string* s) { return s != nullptr ? *s : std::string_view(); }

/// Calls `add(key, value)` for each attribute in order; `value` is a string_view or a bool.
template <class Add>
void for_each_attribute(const TaskSpan& s, std::string_view session_id, Add&& add) {
  add("session_id", session_id);
  add("backend", std::string_view(s.backend));
  add("task_id", std::string_view(s.task_id));
  add("executable", or_empty(s.executable));
  add("task_type", or_empty(s.task_type));
  if (s.workflow_id != nullptr) add("asyncflow.workflow_id", std::string_view(*s.workflow_id));
  if (s.outcome != TaskSpan::Outcome::kOpen) {
    add("status", s.status());
    if (s.outcome == TaskSpan::Outcome::kFailed) add("error_type", std::string_view(s.error_type));
    if (s.incomplete) add("incomplete_lifecycle", true);
  }
  if (s.unfinished) add("asyncflow.unfinished", true);
}

}  // namespace

std::string_view TaskSpan::status() const noexcept {
  switch (outcome) {
    case Outcome::kCompleted: return "completed";
    case Outcome::kFailed: return "failed";
    case Outcome::kCanceled: return "canceled";
    case Outcome::kOpen: break;
  }
  return {};
}

SpanData to_span_data(const TaskSpan& s, std::string_view session_id) {
  SpanData d;
  d.name = std::string(s.name());
  d.trace_id = s.trace_id;
  d.span_id = s.span_id;
  d.parent_span_id = s.parent_span_id;
  d.start_ns = s.start_ns;
  d.end_ns = s.end_ns;
  d.status = status_code(s);
  d.status_description = status_description(s);
  d.attributes.reserve(9);
  for_each_attribute(s, session_id, [&](std::string_view key, auto value) {
    if constexpr (std::is_same_v<decltype(value), bool>) {
      d.attributes.emplace_back(std::string(key), value);
    } else {
      d.attributes.emplace_back(std::string(key), std::string(value));
    }
  });
  if (s.queued_ns >= 0)
    d.events.push_back(SpanEvent{"TaskQueued", s.queued_ns, {{"task_id", s.task_id}}});
  return d;
}

void append_task_span_line(std::string& out, const TaskSpan& s, std::string_view session_id) {
  jsonl::detail::append_span_line_head(out, s.name(), s.trace_id, s.span_id, s.parent_span_id,
                                       s.start_ns, s.end_ns, status_code(s),
                                       status_description(s));
  out.push_back('{');
  bool first = true;
  for_each_attribute(s, session_id, [&](std::string_view key, auto value) {
    if (!first) out.append(", ");
    first = false;
    jsonl::append_string(out, key);
    out.append(": ");
    if constexpr (std::is_same_v<decltype(value), bool>) {
      out.append(value ? "true" : "false");
    } else {
      jsonl::append_string(out, value);
    }
  });
  out.push_back('}');
  jsonl::detail::append_span_line_end(out);
}

}  // namespace asyncflow::detail
