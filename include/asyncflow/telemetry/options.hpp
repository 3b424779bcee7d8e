// The options of a telemetry session (WorkflowEngine::start_telemetry / TelemetryManager::start)
// and of its event bus. Light on purpose: the engine's public header includes it, not the
// manager.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asyncflow/telemetry/event.hpp"

namespace asyncflow {

class MetricReader;
class ResourceAdapter;
class SpanProcessor;
class TelemetryExporter;

/// What emit() does when the bus is full.
enum class OverflowPolicy {
  kBlock,  ///< wait for room: nothing is lost (the default); a stalled pipeline stalls producers
  kDropNewest,  ///< drop the event being emitted, count it and warn (emit never waits)
};

/// Options of an EventBus. Checked when the bus is built: a zero capacity or max_batch, a
/// capacity above 2^40, or a linger outside [0, 60] seconds is an asyncflow::Error.
struct BusOptions {
  /// Queue capacity in events, rounded up to a power of two. The ring is allocated up front at
  /// about 210 bytes per event (~1.7 MB for the default). The default keeps the ring within a
  /// core's L2 cache: a 2^16-event ring (14 MB) cost 10-20% more per task in
  /// BM_IndependentNoopTelemetry/100000 and ...NoCheckpoint/1000000, measured side by side. A
  /// larger ring only absorbs longer bursts before kBlock producers wait.
  std::size_t capacity = std::size_t{1} << 13;
  OverflowPolicy overflow = OverflowPolicy::kBlock;
  /// Most events handed to the dispatcher's handler in one call (capped at the capacity).
  std::size_t max_batch = 512;
  /// Seconds the dispatcher waits for a batch to fill before it hands over a smaller one: an
  /// event reaches exporters and subscribers at most this much later (flush() and stop() do
  /// not wait for it). 0 hands events over as they arrive, at a cost: on a busy run the
  /// dispatcher then chases the producers event by event, and the per-task cost of telemetry
  /// was measured 2.4x higher (BM_IndependentNoopTelemetryNoCheckpoint).
  double linger = 0.001;
};

/// Options of WorkflowEngine::start_telemetry() / TelemetryManager::start(). Checked at start:
/// a bad value is an asyncflow::Error naming the option.
struct TelemetryOptions {
  /// Seconds between resource samples (per node CPU, memory, disk, network): the session runs
  /// a NodeResourcePoller of its own (unless `adapters` holds one) and starts `adapters` with
  /// it; the first sample comes at once. 0 = off (then `adapters` must be empty); >= 0.
  double resource_poll_interval = 5.0;
  /// Directory of the JSONL checkpoint (created if missing); empty = no file. The seed's
  /// shortcut for adding the JSONL exporter (asyncflow/exporters/jsonl) to `exporters`.
  std::filesystem::path checkpoint_path{};
  /// Seconds between metric snapshots sent to the metric exporters (the checkpoint's metric
  /// lines) while running; unset = only the final snapshot at stop.
  std::optional<double> checkpoint_interval{};
  /// Span processors, called on the dispatcher thread as spans end.
  std::vector<std::shared_ptr<SpanProcessor>> span_processors{};
  /// Metric readers, attached at start and shut down at stop.
  std::vector<std::shared_ptr<MetricReader>> metric_readers{};
  /// Exporters (EventExporter / SpanExporter / MetricExporter, any of the three): each gets
  /// the signals it implements.
  std::vector<std::shared_ptr<TelemetryExporter>> exporters{};
  /// Resource adapters (ResourceUpdate sources), started with the session.
  std::vector<std::shared_ptr<ResourceAdapter>> adapters{};
  /// OTel resource attributes (e.g. {"service.name", "ml-pipelines"}) for the exporters that
  /// add_exporters_from_environment() builds, winning over OTEL_RESOURCE_ATTRIBUTES and
  /// OTEL_SERVICE_NAME. Exporters built in code take theirs from their own options
  /// (OtlpExporterOptions::resource, PrometheusExporterOptions::resource). Every resource gets
  /// "session_id"; "service.name" defaults to "asyncflow".
  Attributes resource{};
  /// The event bus: capacity, overflow policy, batch size.
  BusOptions bus{};
  /// Events that may wait for the subscribers (they run on a thread of their own, so a slow
  /// one never holds up the exporters until this many are waiting); > 0.
  std::size_t subscriber_queue = std::size_t{1} << 16;
  /// How long stop() waits for queued events to be processed, exported and delivered before
  /// it discards the rest (counted and reported); >= 0 seconds. It bounds stop() even when an
  /// exporter or subscriber call never returns: that call is left to finish on its thread.
  double stop_timeout = 5.0;
  /// The caller's W3C trace context ("00-<trace id>-<span id>-<flags>"): the session's spans
  /// join that trace, the session span a child of that span. Empty = the TRACEPARENT and
  /// TRACESTATE environment variables (the OTel environment-carrier convention); an invalid
  /// TRACEPARENT is one warning and a trace of the session's own. An invalid value here is an
  /// asyncflow::Error.
  std::string traceparent{};
  /// The caller's tracestate, passed on to the programs tasks run (with traceparent only).
  std::string tracestate{};
  /// Finished spans kept in memory for read_traces() / task_spans() (oldest dropped first;
  /// exporters and span processors get every span regardless).
  std::size_t span_history = 100'000;
};

/// What TelemetryOptions::checkpoint_path asks the checkpoint exporter for.
struct CheckpointRequest {
  std::filesystem::path dir;
  std::string session_id;
  std::int64_t epoch_seconds = 0;  ///< the session's start, for the file name
};

/// The checkpoint exporter and the file it writes.
struct CheckpointExporter {
  std::shared_ptr<TelemetryExporter> exporter;
  std::filesystem::path file;
};

/// Builds the exporter behind TelemetryOptions::checkpoint_path; throws asyncflow::Error
/// naming the path when it cannot be created.
using CheckpointExporterFactory = CheckpointExporter (*)(const CheckpointRequest& request);

/// Installs the factory that TelemetryOptions::checkpoint_path uses. The JSONL exporter
/// installs itself when its header (asyncflow/exporters/jsonl/jsonl_exporter.hpp, included by
/// asyncflow/asyncflow.hpp) is part of the program; without it a checkpoint_path is refused
/// with an error that says so. Thread-safe.
void set_checkpoint_exporter_factory(CheckpointExporterFactory factory) noexcept;

}  // namespace asyncflow
