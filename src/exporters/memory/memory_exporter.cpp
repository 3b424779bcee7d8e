// In-memory exporters and reader (memory_exporter.hpp).
#include "asyncflow/exporters/memory/memory_exporter.hpp"

namespace asyncflow {

ExportResult InMemoryEventExporter::export_events(std::span<const Event> batch) noexcept {
  try {
    {
      MutexLock lock(mu_);
      events_.insert(events_.end(), batch.begin(), batch.end());
    }
    cv_.notify_all();
  } catch (...) {
    return ExportResult::kFailure;
  }
  return ExportResult::kSuccess;
}

std::vector<Event> InMemoryEventExporter::events() const {
  MutexLock lock(mu_);
  return events_;
}

std::size_t InMemoryEventExporter::size() const {
  MutexLock lock(mu_);
  return events_.size();
}

bool InMemoryEventExporter::wait_for(std::size_t n, std::chrono::milliseconds timeout) const {
  MutexLock lock(mu_);
  return cv_.wait_for(mu_, timeout, [&]() ASYNCFLOW_REQUIRES(mu_) { return events_.size() >= n; });
}

ExportResult InMemorySpanExporter::export_spans(std::span<const SpanRecord> batch) noexcept {
  try {
    std::vector<SpanData> converted;
    converted.reserve(batch.size());
    for (const SpanRecord& s : batch) converted.push_back(to_span_data(s));
    MutexLock lock(mu_);
    spans_.insert(spans_.end(), std::make_move_iterator(converted.begin()),
                  std::make_move_iterator(converted.end()));
  } catch (...) {
    return ExportResult::kFailure;
  }
  return ExportResult::kSuccess;
}

std::vector<SpanData> InMemorySpanExporter::spans(const std::optional<std::string>& session_id,
                                                  const std::optional<std::string>& task_id) const {
  MutexLock lock(mu_);
  std::vector<SpanData> out;
  for (const SpanData& s : spans_) {
    if (session_id && s.text("session_id") != *session_id) continue;
    if (task_id && s.text("task_id") != *task_id) continue;
    out.push_back(s);
  }
  return out;
}

std::size_t InMemorySpanExporter::size() const {
  MutexLock lock(mu_);
  return spans_.size();
}

void InMemorySpanExporter::clear() {
  MutexLock lock(mu_);
  spans_.clear();
}

void InMemoryMetricReader::attach(std::shared_ptr<const MetricProducer> producer) {
  MutexLock lock(mu_);
  producer_ = std::move(producer);
  has_final_ = false;
}

bool InMemoryMetricReader::shutdown(std::chrono::microseconds /*timeout*/) noexcept {
  std::shared_ptr<const MetricProducer> producer;
  {
    MutexLock lock(mu_);
    producer = std::move(producer_);
  }
  if (!producer) return true;
  try {
    MetricsSnapshot final_snapshot = producer->collect();
    MutexLock lock(mu_);
    final_ = std::move(final_snapshot);
    has_final_ = true;
  } catch (...) {  // out of memory; read() returns what it has
    return false;
  }
  return true;
}

MetricsSnapshot InMemoryMetricReader::read() const {
  std::shared_ptr<const MetricProducer> producer;
  {
    MutexLock lock(mu_);
    if (has_final_ || !producer_) return final_;
    producer = producer_;
  }
  return producer->collect();
}

}  // namespace asyncflow
