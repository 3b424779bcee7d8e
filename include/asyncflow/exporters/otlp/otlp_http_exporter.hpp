// OTLP/HTTP exporters for spans and metric snapshots: encode (protobuf by default, or JSON) and
// POST to the receiver's /v1/traces or /v1/metrics, with the retries, timeout, gzip and
// headers of their OtlpConfig. An export call blocks for up to the export timeout, so give the
// span exporter to a BatchSpanProcessor and the metric exporter to a
// PeriodicExportingMetricReader: both call it on a thread of their own, never the engine's.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "asyncflow/exporters/otlp/otlp_config.hpp"
#include "asyncflow/exporters/otlp/otlp_encoder.hpp"
#include "asyncflow/telemetry/exporter.hpp"

namespace asyncflow {

namespace detail {
class OtlpHttpSender;
}

/// What an OTLP exporter sent and lost. Thread-safe counters.
struct OtlpExportStats {
  std::uint64_t requests = 0;  ///< export calls that reached the receiver (2xx)
  std::uint64_t failed_requests = 0;
  std::uint64_t records_sent = 0;  ///< spans, or metric data points
  std::uint64_t records_failed = 0;
  std::uint64_t retries = 0;
  std::uint64_t bytes_sent = 0;  ///< request bodies (before gzip)
  /// Records a receiver answered with success but rejected (its partial_success): lost, and
  /// in losses().
  std::uint64_t records_rejected = 0;
};

/// Sends spans. Thread-safety: export_spans() from one thread at a time (the processor's);
/// force_flush(), shutdown(), stats() and losses() from any thread.
class OtlpHttpSpanExporter final : public SpanExporter {
 public:
  /// Configuration from `options` and the environment (resolve_otlp_config). Throws
  /// asyncflow::Error for a bad option.
  explicit OtlpHttpSpanExporter(const OtlpExporterOptions& options = {});
  explicit OtlpHttpSpanExporter(OtlpConfig config);
  ~OtlpHttpSpanExporter() override;

  std::string name() const override;
  ExportResult export_spans(std::span<const SpanRecord> batch) noexcept override;
  /// The same for spans already in full form (what a span processor holds).
  ExportResult export_span_data(std::span<const SpanData> batch) noexcept;
  bool force_flush(std::chrono::microseconds) noexcept override { return true; }
  bool shutdown(std::chrono::microseconds timeout) noexcept override;
  OtlpExportStats stats() const;
  /// What receivers rejected after accepting a request (partial_success).
  ExporterLosses losses() const override;
  const OtlpConfig& config() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Sends metric snapshots (cumulative). Thread-safety: as OtlpHttpSpanExporter.
class OtlpHttpMetricExporter final : public MetricExporter {
 public:
  explicit OtlpHttpMetricExporter(const OtlpExporterOptions& options = {});
  explicit OtlpHttpMetricExporter(OtlpConfig config);
  ~OtlpHttpMetricExporter() override;

  std::string name() const override;
  ExportResult export_metrics(const MetricsSnapshot& snapshot) noexcept override;
  bool force_flush(std::chrono::microseconds) noexcept override { return true; }
  bool shutdown(std::chrono::microseconds timeout) noexcept override;
  OtlpExportStats stats() const;
  /// What receivers rejected after accepting a request (partial_success).
  ExporterLosses losses() const override;
  const OtlpConfig& config() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace asyncflow
