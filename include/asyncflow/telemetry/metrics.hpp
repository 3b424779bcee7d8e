// Metrics: the instruments the TelemetryManager records (reference rhapsody-telemetry.md §4.3,
// without its per-task attribute and negative gauge), the snapshot readers get, and the
// MetricReader interface exporters implement.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
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
  std::string unit;  ///< UCUM-style: "{task}", "s", "%", "{event}"
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
/// Thread-safety: collect() is thread-safe.
class MetricProducer {
 public:
  virtual ~MetricProducer() = default;
  virtual MetricsSnapshot collect() const = 0;
};

/// What a metric reader lost: snapshots it collected but could not hand over (a failed
/// export, a shutdown that ran out of time), plus data points a receiver rejected from a
/// request it otherwise took. The session adds them to its losses at stop.
struct MetricLosses {
  std::uint64_t records = 0;
  std::string last_error;  ///< why, e.g. "periodic metric reader: the exporter failed (failure)"
};

/// A metric reader. The manager calls attach() at start; a pull reader (Prometheus) calls
/// producer.collect() when scraped, a push reader on its own timer. shutdown() is called once
/// at stop, after the session's last events were counted; the producer stays valid after it
/// and keeps answering with the final numbers.
/// Thread-safety: attach() and shutdown() come from the thread that starts / stops the session;
/// losses() may be called from any thread.
class MetricReader {
 public:
  virtual ~MetricReader() = default;
  virtual void attach(std::shared_ptr<const MetricProducer> producer) = 0;
  /// Hands over the final numbers and releases the destination; true when that finished
  /// cleanly within `timeout` (what was lost is losses()' to say).
  virtual bool shutdown(std::chrono::microseconds timeout) noexcept {
    (void)timeout;
    return true;
  }
  /// Snapshots lost so far (default: none). Thread-safe.
  virtual MetricLosses losses() const noexcept { return {}; }

 protected:
  MetricReader() = default;
  MetricReader(const MetricReader&) = delete;
  MetricReader& operator=(const MetricReader&) = delete;
};

}  // namespace asyncflow
