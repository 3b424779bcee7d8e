// Metrics: the instruments the TelemetryManager records (reference rhapsody-telemetry.md §4.3,
// without its per-task attribute and negative gauge), the snapshot readers get, and the
// MetricReader interface exporters implement.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "asyncflow/telemetry/event.hpp"

namespace asyncflow {

/// How an instrument aggregates, as its OTel kind.
enum class InstrumentKind { kCounter, kUpDownCounter, kHistogram, kGauge };

/// "counter", "updowncounter", "histogram", "gauge".
std::string_view to_string(InstrumentKind kind) noexcept;

/// One time series of an instrument (one attribute set). Cumulative since the session start.
struct MetricPoint {
  Attributes attributes;
  double value = 0;                          ///< counters, up-down counters, gauges
  std::uint64_t count = 0;                   ///< histogram: number of samples
  double sum = 0;                            ///< histogram: sum of samples
  double min = 0;                            ///< histogram: smallest sample (count > 0)
  double max = 0;                            ///< histogram: largest sample (count > 0)
  std::vector<std::uint64_t> bucket_counts;  ///< histogram: bounds.size() + 1 buckets
};

/// One instrument and its series.
struct MetricData {
  std::string name;
  std::string description;
  std::string unit;                 ///< UCUM-style: "{task}", "s", "%", "{event}"
  InstrumentKind kind = InstrumentKind::kCounter;
  std::vector<double> bounds;       ///< histogram bucket upper bounds (explicit buckets)
  std::vector<MetricPoint> points;  ///< empty until the instrument has data

  /// Sum of the values of all points (histograms: sum of `sum`) — the JSONL metric line value.
  double total() const noexcept;
  /// Sum of the counts of all points (histograms only).
  std::uint64_t total_count() const noexcept;
};

/// All instruments at one moment.
struct MetricsSnapshot {
  std::int64_t start_ns = 0;  ///< epoch ns the series started (session start)
  std::int64_t time_ns = 0;   ///< epoch ns of the snapshot
  std::vector<MetricData> metrics;

  /// The instrument `name`, or null.
  const MetricData* find(std::string_view name) const noexcept;
  /// find(name)->total(), or 0 when absent.
  double total(std::string_view name) const noexcept;
};

/// Something that can produce a metrics snapshot on demand (the TelemetryManager).
/// collect() is thread-safe.
class MetricProducer {
 public:
  virtual ~MetricProducer() = default;
  virtual MetricsSnapshot collect() const = 0;
};

/// A metric exporter. The manager calls attach() at start; a pull exporter (Prometheus)
/// calls producer.collect() when scraped, a push exporter on its own timer. shutdown() is
/// called once at stop, after which the producer must not be used: a reader that wants the
/// final numbers collects them in shutdown().
class MetricReader {
 public:
  virtual ~MetricReader() = default;
  virtual void attach(std::shared_ptr<const MetricProducer> producer) = 0;
  virtual void shutdown() {}
};

/// A reader for tests and small runs: read() returns the current snapshot while the manager
/// runs and the final one after it stopped.
class InMemoryMetricReader final : public MetricReader {
 public:
  void attach(std::shared_ptr<const MetricProducer> producer) override;
  void shutdown() override;
  MetricsSnapshot read() const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const MetricProducer> producer_;
  MetricsSnapshot final_;
  bool has_final_ = false;
};

}  // namespace asyncflow
