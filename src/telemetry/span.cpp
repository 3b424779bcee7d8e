// Span helpers: status names, attribute lookup, and the expansion of a compact task span.
#include "asyncflow/telemetry/span.hpp"

namespace asyncflow {

std::string_view to_string(SpanStatus status) noexcept {
  switch (status) {
    case SpanStatus::kUnset: return "UNSET";
    case SpanStatus::kOk: return "OK";
    case SpanStatus::kError: return "ERROR";
  }
  return "UNSET";
}

const FieldValue* SpanData::attribute(std::string_view key) const noexcept {
  for (const auto& [k, v] : attributes) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::string_view SpanData::text(std::string_view key) const noexcept {
  const FieldValue* v = attribute(key);
  if (v == nullptr) return {};
  if (const auto* s = std::get_if<std::string>(v)) return *s;
  return {};
}

std::string_view TaskSpan::status() const noexcept {
  switch (outcome) {
    case Outcome::kCompleted: return "completed";
    case Outcome::kFailed: return "failed";
    case Outcome::kCanceled: return "canceled";
    case Outcome::kOpen: break;
  }
  return {};
}

SpanStatus TaskSpan::status_code() const noexcept {
  switch (outcome) {
    case Outcome::kCompleted: return SpanStatus::kOk;
    case Outcome::kFailed:
    case Outcome::kCanceled: return SpanStatus::kError;
    case Outcome::kOpen: break;
  }
  return SpanStatus::kUnset;
}

SpanData to_span_data(const TaskSpan& s) {
  auto text = [](const std::string* p) { return p != nullptr ? *p : std::string(); };
  SpanData d;
  d.name = std::string(s.name());
  d.trace_id = s.trace_id;
  d.span_id = s.span_id;
  d.parent_span_id = s.parent_span_id;
  d.start_ns = s.start_ns;
  d.end_ns = s.end_ns;
  d.status = s.status_code();
  if (const std::string* description = s.status_description()) d.status_description = *description;
  d.attributes.reserve(10);
  d.attributes.emplace_back("session_id", std::string(s.session_id()));
  d.attributes.emplace_back("backend", s.backend);
  d.attributes.emplace_back("task_id", s.task_id);
  d.attributes.emplace_back("executable", text(s.executable));
  d.attributes.emplace_back("task_type", text(s.task_type));
  if (const std::string* workflow = s.workflow_attribute())
    d.attributes.emplace_back("asyncflow.workflow_id", *workflow);
  if (s.block && s.workflow_id != nullptr)
    d.attributes.emplace_back("asyncflow.parent_workflow_id", *s.workflow_id);
  if (s.outcome != TaskSpan::Outcome::kOpen) {
    d.attributes.emplace_back("status", std::string(s.status()));
    if (s.outcome == TaskSpan::Outcome::kFailed)
      d.attributes.emplace_back("error_type", s.error_type);
    if (s.incomplete) d.attributes.emplace_back("incomplete_lifecycle", true);
  }
  d.attributes.insert(d.attributes.end(), s.usage.begin(), s.usage.end());
  if (s.unfinished) d.attributes.emplace_back("asyncflow.unfinished", true);
  // In lifecycle order: Resolved, then Queued (after the submission), then Started.
  const std::pair<const char*, std::int64_t> moments[] = {{"asyncflow.TaskResolved", s.resolved_ns},
                                                          {"TaskQueued", s.queued_ns},
                                                          {"TaskStarted", s.started_ns}};
  for (const auto& [name, ns] : moments) {
    if (ns >= 0) d.events.push_back(SpanEvent{name, ns, {{"task_id", s.task_id}}});
  }
  return d;
}

SpanData to_span_data(const SpanRecord& span) {
  if (const auto* task = std::get_if<TaskSpan>(&span)) return to_span_data(*task);
  return std::get<SpanData>(span);
}

}  // namespace asyncflow
