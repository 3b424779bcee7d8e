// The periodic exporting metric reader, as the OTel SDK's: a thread of its own collects the
// session's metrics every export interval and hands the snapshot to a MetricExporter (OTLP,
// console, ...), and once more at shutdown with the final numbers. Exporting never runs on
// the engine's threads nor on the telemetry dispatcher.
//
// Every snapshot collected is exported or counted (a failed export, a shutdown that ran out of
// time): the session adds the count to its losses at stop. force_flush() and shutdown() return
// within their timeout even when the exporter hangs (its call is then left to finish on the
// reader's thread, and the snapshot it held is counted).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "asyncflow/telemetry/exporter.hpp"
#include "asyncflow/telemetry/metrics.hpp"

namespace asyncflow {

/// The reader's settings (OTel SDK defaults). Unset fields come from
/// OTEL_METRIC_EXPORT_INTERVAL and OTEL_METRIC_EXPORT_TIMEOUT (milliseconds), then these
/// defaults; a malformed variable is one warning naming it, and its default is used.
struct PeriodicMetricReaderOptions {
  std::chrono::milliseconds export_interval{0};  ///< 0 = environment, else 60000 ms
  /// The longest the final export at shutdown (and a flush) waits for its export call, within
  /// their own timeout; 0 = environment, else 30000 ms. An exporter bounds its own calls too
  /// (the OTLP exporters: OTEL_EXPORTER_OTLP_TIMEOUT).
  std::chrono::milliseconds export_timeout{0};
};

/// What the reader did. A snapshot.
struct PeriodicMetricReaderStats {
  std::uint64_t collections = 0;       ///< snapshots collected (timer, flushes and the final one)
  std::uint64_t exports = 0;           ///< export calls that succeeded
  std::uint64_t failed_exports = 0;    ///< export calls that failed (the snapshot is counted lost)
  std::uint64_t collect_failures = 0;  ///< collect() threw (said; nothing to export)
  std::uint64_t lost_at_shutdown = 0;  ///< the snapshot in a call that outlived shutdown
};

/// Thread-safety: attach() and shutdown() from the thread that starts / stops the session (the
/// manager); force_flush(), stats() and losses() from any thread.
class PeriodicExportingMetricReader final : public MetricReader {
 public:
  /// Throws asyncflow::Error for a null exporter. Exports never overlap: one that takes longer
  /// than the interval delays the next.
  explicit PeriodicExportingMetricReader(std::shared_ptr<MetricExporter> exporter,
                                         PeriodicMetricReaderOptions options = {});
  ~PeriodicExportingMetricReader() override;

  /// Starts the reader's thread ("af-metric-export"): the first export one interval from now.
  /// Attached twice is an asyncflow::Error (one reader serves one session).
  void attach(std::shared_ptr<const MetricProducer> producer) override;
  /// Collects and exports now; true when that export succeeded within `timeout`.
  bool force_flush(std::chrono::microseconds timeout) noexcept;
  /// Collects and exports the final numbers, then shuts the exporter down, within `timeout`.
  /// Idempotent; false when something did not finish cleanly (losses() says what was lost).
  bool shutdown(std::chrono::microseconds timeout) noexcept override;
  MetricLosses losses() const noexcept override;
  PeriodicMetricReaderStats stats() const;
  /// The settings in use (options resolved against the environment).
  const PeriodicMetricReaderOptions& options() const noexcept;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the reader's thread, which may outlive us
};

}  // namespace asyncflow
