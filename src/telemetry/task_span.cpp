// Compact task spans (task_span.hpp).
#include "task_span.hpp"

#include "line_writers.hpp"

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

/// An attribute key as the JSONL line writes it ("\"key\": "); name() is the plain key.
struct Key {
  std::string_view json;
  std::string_view name() const { return json.substr(1, json.size() - 4); }
};

/// Calls `add(key, value)` for the attributes after the context's ones (the outcome), in
/// order; `value` is a string_view or a bool.
template <class Add>
void for_each_outcome_attribute(const TaskSpan& s, Add&& add) {
  if (s.outcome != TaskSpan::Outcome::kOpen) {
    add(Key{"\"status\": "}, s.status());
    if (s.outcome == TaskSpan::Outcome::kFailed)
      add(Key{"\"error_type\": "}, std::string_view(s.error_type));
    if (s.incomplete) add(Key{"\"incomplete_lifecycle\": "}, true);
  }
  if (s.unfinished) add(Key{"\"asyncflow.unfinished\": "}, true);
}

/// Calls `add(key, value)` for each attribute in order; `value` is a string_view or a bool.
template <class Add>
void for_each_attribute(const TaskSpan& s, std::string_view session_id, Add&& add) {
  add(Key{"\"session_id\": "}, session_id);
  add(Key{"\"backend\": "}, std::string_view(s.backend));
  add(Key{"\"task_id\": "}, std::string_view(s.task_id));
  add(Key{"\"executable\": "}, or_empty(s.executable));
  add(Key{"\"task_type\": "}, or_empty(s.task_type));
  if (s.workflow_id != nullptr)
    add(Key{"\"asyncflow.workflow_id\": "}, std::string_view(*s.workflow_id));
  for_each_outcome_attribute(s, add);
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
  for_each_attribute(s, session_id, [&](Key key, auto value) {
    if constexpr (std::is_same_v<decltype(value), bool>) {
      d.attributes.emplace_back(std::string(key.name()), value);
    } else {
      d.attributes.emplace_back(std::string(key.name()), std::string(value));
    }
  });
  if (s.queued_ns >= 0)
    d.events.push_back(SpanEvent{"TaskQueued", s.queued_ns, {{"task_id", s.task_id}}});
  return d;
}

void write_task_span_line(jsonl::detail::JsonCursor& w, const TaskSpan& s,
                          std::string_view session_id) {
  jsonl::detail::write_span_line_head(w, s.name(), s.trace_id, s.span_id, s.parent_span_id,
                                      s.start_ns, s.end_ns, status_code(s),
                                      status_description(s));
  auto write_value = [&](auto value) {
    if constexpr (std::is_same_v<decltype(value), bool>) {
      if (value) {
        w.literal("true");
      } else {
        w.literal("false");
      }
    } else {
      w.string(value);
    }
  };
  const auto* rendered = jsonl::detail::rendered(s.context);
  if (rendered != nullptr && s.context->session_id == session_id &&
      s.context->backend == s.backend) {
    // The attributes that come from the shared context were rendered with it (the span's
    // string pointers point into that context: task_span() takes them from it).
    w.raw(rendered->span_head);
    w.string(s.task_id);
    w.raw(rendered->span_tail);
    for_each_outcome_attribute(s, [&](Key key, auto value) {
      w.literal(", ");
      w.raw(key.json);
      write_value(value);
    });
  } else {
    w.character('{');
    bool first = true;
    for_each_attribute(s, session_id, [&](Key key, auto value) {
      if (!first) w.literal(", ");
      first = false;
      w.raw(key.json);
      write_value(value);
    });
  }
  w.character('}');
  jsonl::detail::write_span_line_end(w);
}

}  // namespace asyncflow::detail
