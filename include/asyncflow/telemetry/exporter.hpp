// The export interface, shaped like the OTel SDK's exporters (a batch in, an ExportResult out,
// force_flush and shutdown with a timeout), for the three signals a session produces: the event
// stream, spans and metric snapshots. An exporter implements the signals it takes; the JSONL
// checkpoint (asyncflow/exporters/jsonl) takes all three. Telemetry knows exporters only
// through this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/metrics.hpp"
#include "asyncflow/telemetry/span.hpp"

namespace asyncflow {

/// What an export call achieved (OTel's ExportResult).
enum class ExportResult {
  kSuccess,                 ///< the records were taken
  kFailure,                 ///< not taken (the destination refused or is gone)
  kFailureFull,             ///< not taken: the exporter's buffer is full
  kFailureInvalidArgument,  ///< not taken: the exporter cannot represent them
};

/// "success", "failure", "failure (full)", "failure (invalid argument)".
std::string_view to_string(ExportResult result) noexcept;

/// What an exporter lost after it had accepted records (a failed write of buffered lines):
/// the session adds it to its losses and reports it.
struct ExporterLosses {
  std::uint64_t records = 0;  ///< events, spans and metric snapshots not delivered
  std::string last_error;     ///< why, e.g. "write to '/x.jsonl' failed: No space left on device"
};

/// Base of every exporter.
///
/// Contract (as the OTel SDK's): the export_* calls of one exporter are never concurrent (the
/// telemetry dispatcher makes them) and never throw; force_flush() may be called from any
/// thread, also while an export call runs; shutdown() is called once, after the last export
/// call, and ends the exporter (later calls fail). Implementations state their thread-safety.
class TelemetryExporter {
 public:
  virtual ~TelemetryExporter() = default;
  /// A short name for messages: "jsonl checkpoint '/run/x.jsonl'".
  virtual std::string name() const = 0;
  /// Hands over everything accepted so far (e.g. writes buffered lines). False when that
  /// failed or did not finish within `timeout`.
  virtual bool force_flush(std::chrono::microseconds timeout) noexcept = 0;
  /// Flushes and releases the destination. False on failure or timeout.
  virtual bool shutdown(std::chrono::microseconds timeout) noexcept = 0;
  /// Records lost after they were accepted (default: none). Thread-safe.
  virtual ExporterLosses losses() const { return {}; }

 protected:
  TelemetryExporter() = default;
  TelemetryExporter(const TelemetryExporter&) = delete;
  TelemetryExporter& operator=(const TelemetryExporter&) = delete;
};

/// Takes the event stream: every event the session processed, in dispatch order, with its
/// span correlation set (Event::trace_id() / span_id()).
/// Thread-safety: as TelemetryExporter (export_events() from one thread at a time).
class EventExporter : public virtual TelemetryExporter {
 public:
  virtual ExportResult export_events(std::span<const Event> batch) noexcept = 0;
};

/// Takes finished spans, in the order they ended, after the events of the batch that ended them.
/// Thread-safety: as TelemetryExporter (export_spans() from one thread at a time).
class SpanExporter : public virtual TelemetryExporter {
 public:
  virtual ExportResult export_spans(std::span<const SpanRecord> batch) noexcept = 0;
};

/// Takes metric snapshots: one every TelemetryOptions::checkpoint_interval (when set) and a
/// final one at stop, after the last events and spans.
/// Thread-safety: as TelemetryExporter (export_metrics() from one thread at a time).
class MetricExporter : public virtual TelemetryExporter {
 public:
  virtual ExportResult export_metrics(const MetricsSnapshot& snapshot) noexcept = 0;
};

}  // namespace asyncflow
