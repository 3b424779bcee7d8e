// TelemetryManager: one per engine session. Owns the event bus and its dispatcher, turns
// lifecycle events into spans and metrics, writes the JSONL checkpoint, fans events out to
// subscribers, and answers summary queries. Reference rhapsody-telemetry.md §2; DESIGN.md
// "Telemetry"; the JSONL form: docs/checkpoint-format.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/event_bus.hpp"
#include "asyncflow/telemetry/metrics.hpp"
#include "asyncflow/telemetry/span.hpp"

namespace asyncflow {

class TelemetryManager;

/// A source of ResourceUpdate events (the resource poller, issue #6). The manager starts it
/// after the session started and stops it before the session ends.
class ResourceAdapter {
 public:
  virtual ~ResourceAdapter() = default;
  /// Begin emitting ResourceUpdate events through `manager.emit()` every `interval_seconds`.
  /// May throw; start_telemetry() then fails cleanly (nothing left running).
  virtual void start(TelemetryManager& manager, double interval_seconds) = 0;
  /// Stop emitting; joins any thread. Must not throw.
  virtual void stop() noexcept = 0;
};

/// Options of WorkflowEngine::start_telemetry() / TelemetryManager::start().
struct TelemetryOptions {
  /// Seconds between resource samples (per node CPU/memory/GPU), for the adapters; > 0.
  double resource_poll_interval = 5.0;
  /// Directory of the JSONL checkpoint (created if missing); empty = no file.
  std::filesystem::path checkpoint_path{};
  /// Seconds between metric snapshots written to the checkpoint while running; unset = only
  /// the final snapshot at stop. Span lines are written as spans end either way.
  std::optional<double> checkpoint_interval{};
  /// Extra span processors (exporters), called on the dispatcher thread as spans end.
  std::vector<std::shared_ptr<SpanProcessor>> span_processors{};
  /// Extra metric readers (exporters), attached at start and shut down at stop.
  std::vector<std::shared_ptr<MetricReader>> metric_readers{};
  /// Resource adapters (ResourceUpdate sources), started with the session.
  std::vector<std::shared_ptr<ResourceAdapter>> adapters{};
  /// OTel resource attributes for exporters; "service.name" defaults to "asyncflow" and
  /// "session_id" is always added.
  Attributes resource{};
  /// The event bus: capacity, overflow policy, batch size.
  BusOptions bus{};
  /// How long stop() waits for queued events to be processed before discarding the rest.
  double stop_timeout = 5.0;
  /// Finished spans kept in memory for read_traces() / task_spans() (oldest dropped first;
  /// the checkpoint and span processors get every span regardless).
  std::size_t span_history = 100'000;
};

/// Task counters: the reference's task_count() dict.
struct TaskCounts {
  std::int64_t submitted = 0;
  std::int64_t completed = 0;
  std::int64_t failed = 0;
  std::int64_t canceled = 0;
  std::int64_t running = 0;
};

/// Task span lifetime statistics (seconds), over tasks with a complete lifecycle.
struct DurationStats {
  std::uint64_t count = 0;
  double total_seconds = 0;
  double mean_seconds = 0;
  double min_seconds = 0;
  double max_seconds = 0;
  double p50_seconds = 0;
  double p95_seconds = 0;
};

/// The last per-node ResourceUpdate of one backend/node.
struct ResourceSample {
  std::string backend;
  std::string node_id;
  std::optional<double> cpu_percent, memory_percent, gpu_percent;
  std::optional<double> disk_read_bytes, disk_write_bytes, net_sent_bytes, net_recv_bytes;
};

/// summary(): the reference's structure (§2.3).
struct TelemetrySummary {
  std::string session_id;
  double duration_seconds = 0;
  TaskCounts tasks;
  std::optional<DurationStats> duration;  ///< unset when no task finished a full lifecycle
  std::map<std::string, ResourceSample> resources;  ///< keyed "<backend>/<node_id>"
  /// The summary as a JSON object with the reference's keys.
  std::string to_json() const;
};

/// One finished task span, flattened (the reference's task_spans() dicts).
struct TaskSpanInfo {
  std::string task_id, backend, executable, task_type, status;
  std::string workflow_id;                  ///< asyncflow.workflow_id, empty when ungrouped
  std::optional<double> duration_seconds;   ///< span end - start
  std::string span_id, trace_id;            ///< "0x…" as in the checkpoint
  std::optional<std::string> error_type;
  bool incomplete_lifecycle = false;
};

/// Handle returned by subscribe(). Copyable; unsubscribe() is idempotent. Dropping the handle
/// does not unsubscribe (like the reference, subscriptions last for the session).
class Subscription {
 public:
  Subscription() = default;
  /// Removes the callback. When it returns, the callback is not running (unless called from
  /// inside that very callback) and will not be called again.
  void unsubscribe();
  bool active() const;

 private:
  friend class TelemetryManager;
  struct Registry;
  Subscription(std::weak_ptr<Registry> registry, std::uint64_t id)
      : registry_(std::move(registry)), id_(id) {}
  std::weak_ptr<Registry> registry_;
  std::uint64_t id_ = 0;
};

/// The telemetry session. Created running by start() (or WorkflowEngine::start_telemetry());
/// stopped by stop() or the engine's shutdown(). All methods are thread-safe.
///
/// Processing order per batch, as the reference: spans and metrics, then the checkpoint
/// write, then every subscriber — so a subscriber sees an event after its effects.
class TelemetryManager {
 public:
  /// Resolves the uid of the function task running on the calling thread ("" when none), so
  /// events emitted from inside a task are correlated to it. Installed by the engine.
  using CurrentTaskFn = std::string (*)();

  /// Starts a session: opens the checkpoint (throws asyncflow::Error naming the path if it
  /// cannot be created — nothing is left running), starts the dispatcher, the session span
  /// and the adapters, then emits SessionStarted.
  static std::shared_ptr<TelemetryManager> start(std::string session_id,
                                                 TelemetryOptions options = {},
                                                 CurrentTaskFn current_task = nullptr);
  /// stop().
  ~TelemetryManager();
  TelemetryManager(const TelemetryManager&) = delete;
  TelemetryManager& operator=(const TelemetryManager&) = delete;

  const std::string& session_id() const noexcept;
  const TelemetryOptions& options() const noexcept;
  bool running() const noexcept;

  /// Queues `event` for processing; never blocks under the default drop-newest policy.
  /// Returns false when dropped (full queue, or not running). An event without task_id
  /// emitted from inside a running function task gets that task's id (and so its span).
  /// Thread-safe; callable from subscribers and task bodies.
  bool emit(Event event);
  /// Builds (make_event, with this session's id filled in when `base.session_id` is empty)
  /// and emits. Throws what make_event throws.
  bool emit(const EventTypePtr& type, EventBase base,
            std::initializer_list<std::pair<std::string_view, FieldValue>> values = {});

  /// Calls `callback(event)` on the dispatcher thread for every event processed from now
  /// on. An exception from the callback is caught, counted (subscriber_errors()) and
  /// reported once per subscription on stderr; other subscribers still run.
  Subscription subscribe(std::function<void(const Event&)> callback);

  /// Waits until every event emitted before the call was processed and its checkpoint lines
  /// were handed to the OS. False on timeout.
  bool flush(double timeout_seconds = 5.0);

  /// Ends the session: emits SessionEnded, stops the adapters, drains the bus (up to
  /// options().stop_timeout), ends spans left open, writes the final metric snapshot,
  /// closes the checkpoint, shuts the exporters down. Idempotent; concurrent callers wait
  /// for the first. Returns false when events were lost (dropped or not drained).
  bool stop();

  // --- reading (any time, also after stop) ---
  /// Finished spans kept in memory (see TelemetryOptions::span_history), optionally filtered
  /// on the span attributes session_id / task_id.
  std::vector<SpanData> read_traces(const std::optional<std::string>& session_id = std::nullopt,
                                    const std::optional<std::string>& task_id = std::nullopt) const;
  /// The current (cumulative) metrics.
  MetricsSnapshot read_metrics() const;
  TelemetrySummary summary() const;
  TaskCounts task_count() const;
  std::vector<TaskSpanInfo> task_spans() const;
  /// SessionEnded's duration once stopped, else time since start.
  double session_duration() const;
  /// The checkpoint file, when one is written.
  std::optional<std::filesystem::path> checkpoint_file() const;
  /// Events lost: refused by a full bus, emitted after stop, or not drained at stop.
  std::uint64_t dropped_events() const noexcept;
  /// Exceptions thrown by subscribers and span processors.
  std::uint64_t subscriber_errors() const noexcept;
  /// Events processed so far.
  std::uint64_t processed_events() const noexcept;

  struct Impl;

 private:
  explicit TelemetryManager(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Telemetry's own event types (besides events::*).
namespace events {
/// A workflow_scope opened: attributes asyncflow.workflow_id and, when nested,
/// asyncflow.parent_workflow_id. Opens the "workflow" span.
const EventTypePtr& WorkflowStarted();
/// A workflow_scope closed. Ends the "workflow" span.
const EventTypePtr& WorkflowEnded();
}  // namespace events

}  // namespace asyncflow
