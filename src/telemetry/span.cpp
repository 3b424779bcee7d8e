// Span helpers and the in-memory span exporter.
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

void InMemorySpanExporter::on_end(const SpanData& span) {
  std::lock_guard lock(mu_);
  spans_.push_back(span);
}

std::vector<SpanData> InMemorySpanExporter::spans(const std::optional<std::string>& session_id,
                                                  const std::optional<std::string>& task_id) const {
  std::lock_guard lock(mu_);
  std::vector<SpanData> out;
  for (const SpanData& s : spans_) {
    if (session_id && s.text("session_id") != *session_id) continue;
    if (task_id && s.text("task_id") != *task_id) continue;
    out.push_back(s);
  }
  return out;
}

std::size_t InMemorySpanExporter::size() const {
  std::lock_guard lock(mu_);
  return spans_.size();
}

void InMemorySpanExporter::clear() {
  std::lock_guard lock(mu_);
  spans_.clear();
}

}  // namespace asyncflow
