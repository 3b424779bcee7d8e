// Metric snapshot helpers.
#include "asyncflow/telemetry/metrics.hpp"

namespace asyncflow {

std::string_view to_string(InstrumentKind kind) noexcept {
  switch (kind) {
    case InstrumentKind::kCounter: return "counter";
    case InstrumentKind::kUpDownCounter: return "updowncounter";
    case InstrumentKind::kHistogram: return "histogram";
    case InstrumentKind::kGauge: return "gauge";
  }
  return "counter";
}

double MetricData::total() const noexcept {
  double sum = 0;
  for (const MetricPoint& p : points) sum += kind == InstrumentKind::kHistogram ? p.sum : p.value;
  return sum;
}

std::uint64_t MetricData::total_count() const noexcept {
  std::uint64_t n = 0;
  for (const MetricPoint& p : points) n += p.count;
  return n;
}

const MetricData* MetricsSnapshot::find(std::string_view name) const noexcept {
  for (const MetricData& m : metrics) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

double MetricsSnapshot::total(std::string_view name) const noexcept {
  const MetricData* m = find(name);
  return m != nullptr ? m->total() : 0.0;
}

}  // namespace asyncflow
