// TelemetryManager: one per engine session. Owns the event bus and its dispatcher, turns
// lifecycle events into spans and metrics, hands events, spans and metric snapshots to the
// exporters, fans events out to subscribers on a thread of their own, and answers summary
// queries. Reference rhapsody-telemetry.md §2; DESIGN.md "Telemetry".
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/exporter.hpp"
#include "asyncflow/telemetry/metrics.hpp"
#include "asyncflow/telemetry/options.hpp"
#include "asyncflow/telemetry/span.hpp"

namespace asyncflow {

class TelemetryManager;

namespace detail {
class SubscriberStage;
}  // namespace detail

/// A source of ResourceUpdate events (the resource poller). The manager starts it after the
/// session started and stops it before the session ends.
/// Thread-safety: start() and stop() come from the thread that starts / stops the session.
class ResourceAdapter {
 public:
  virtual ~ResourceAdapter() = default;
  /// Begin emitting ResourceUpdate events through `manager.emit()` every `interval_seconds`.
  /// May throw; start_telemetry() then fails cleanly (nothing left running).
  virtual void start(TelemetryManager& manager, double interval_seconds) = 0;
  /// Stop emitting; joins any thread.
  virtual void stop() noexcept = 0;

 protected:
  ResourceAdapter() = default;
  ResourceAdapter(const ResourceAdapter&) = delete;
  ResourceAdapter& operator=(const ResourceAdapter&) = delete;
};

/// Task counters: the reference's task_count() dict. `submitted` counts every task that left
/// the graph: handed to a backend, or ended before that (a failed or canceled dependency, a
/// cancel, shutdown). So once nothing waits in a backend, submitted = completed + failed +
/// canceled + running.
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

/// What a session lost, failed to deliver or saw fail. All zero for a healthy session.
struct TelemetryLosses {
  /// Events refused by a full bus (kDropNewest), emitted after stop, or still queued when
  /// stop_timeout ran out.
  std::uint64_t events_dropped = 0;
  /// Events the subscribers never got (stop_timeout ran out while they were behind).
  std::uint64_t events_undelivered = 0;
  /// Exceptions thrown by subscribers (the event still reached the other subscribers and
  /// every exporter, so no data is lost).
  std::uint64_t subscriber_errors = 0;
  /// Export calls that failed (an ExportResult other than kSuccess).
  std::uint64_t export_failures = 0;
  /// Events, spans and metric snapshots of failed export calls, plus what exporters lost after
  /// accepting it (e.g. checkpoint lines whose write failed).
  std::uint64_t records_not_exported = 0;
  /// The latest problem, in words; empty when there was none.
  std::string last_error;

  /// True when data was lost: dropped, undelivered or not exported.
  bool lost_data() const noexcept;
  /// "1000 events dropped, 2 subscriber errors (last: …)", or "nothing lost".
  std::string to_string() const;
};

/// summary(): the reference's structure (§2.3), plus what the session lost.
/// summary()'s "usage": the measured resource usage of the tasks that ended (completed or
/// failed) with some (TaskUsage: executable and registered-function tasks of the process
/// backend, thread-pool function tasks' CPU time), summed over them.
struct UsageTotals {
  std::uint64_t tasks = 0;        ///< tasks whose usage was measured
  double cpu_seconds = 0;         ///< user + system CPU seconds
  std::uint64_t read_bytes = 0;   ///< from storage
  std::uint64_t write_bytes = 0;  ///< to storage
  /// The largest task's peak memory; unset when no task's was measured.
  std::optional<std::uint64_t> max_peak_memory_bytes;
};

struct TelemetrySummary {
  std::string session_id;
  double duration_seconds = 0;
  TaskCounts tasks;
  std::optional<DurationStats> duration;  ///< unset when no task finished a full lifecycle
  std::map<std::string, ResourceSample> resources;  ///< keyed "<backend>/<node_id>"
  std::optional<UsageTotals> usage;                 ///< unset when no task's usage was measured
  TelemetryLosses losses;
  /// The summary as a JSON object with the reference's keys, "usage" and "losses".
  std::string to_json() const;
};

/// One finished task span, flattened (the reference's task_spans() dicts).
struct TaskSpanInfo {
  std::string task_id, backend, executable, task_type, status;
  std::string workflow_id;                 ///< asyncflow.workflow_id, empty when ungrouped
  std::optional<double> duration_seconds;  ///< span end - start
  std::string span_id, trace_id;           ///< "0x…" as in the checkpoint
  std::optional<std::string> error_type;
  bool incomplete_lifecycle = false;
};

/// What the code that emits an event is running in, for events that do not say: the task
/// whose body is running on this thread, and the workflow (scope or block) it belongs to.
struct EmitContext {
  std::string task_id;      ///< empty: not inside a task
  std::string workflow_id;  ///< empty: not inside a workflow scope or block
};

/// Handle returned by subscribe(). Copyable; unsubscribe() is idempotent. Dropping the handle
/// does not unsubscribe (like the reference, subscriptions last for the session; stop()
/// releases every callback). Thread-safe.
class Subscription {
 public:
  Subscription() = default;
  /// Removes the callback. When it returns, the callback is not running (unless called from
  /// inside that very callback) and will not be called again.
  void unsubscribe();
  bool active() const;

 private:
  friend class detail::SubscriberStage;
  struct Registry;
  Subscription(std::weak_ptr<Registry> registry, std::uint64_t id)
      : registry_(std::move(registry)), id_(id) {}
  std::weak_ptr<Registry> registry_;
  std::uint64_t id_ = 0;
};

/// The telemetry session. Created running by start() (or WorkflowEngine::start_telemetry());
/// stopped by stop() or the engine's shutdown().
///
/// Per batch of events the dispatcher thread updates spans and metrics, then exports the
/// events and the spans that ended (in that order), then hands the events to the subscribers'
/// thread — so a subscriber sees an event after its effects, and a slow subscriber never holds
/// up an exporter (until TelemetryOptions::subscriber_queue events wait for it).
///
/// Nothing is lost by default (the bus waits for room). Whatever is lost (an explicit
/// kDropNewest bus, a failed export or write, a stop_timeout that ran out) is counted, warned
/// about the first time (log.hpp), summed up at stop, and shown by losses(), summary() and
/// stop()'s result.
/// Thread-safety: every method is thread-safe.
class TelemetryManager {
 public:
  /// Says, for an event emitted without a task id or workflow id, what the emitting code runs
  /// in (installed by the engine). Called on the emitting thread.
  using EmitContextFn = std::function<EmitContext()>;

  /// Starts a session: builds the exporters (the JSONL checkpoint when `checkpoint_path` is
  /// set: throws asyncflow::Error naming the path when it cannot be created — nothing is left
  /// running), starts the dispatcher, the session span and the adapters, then emits
  /// SessionStarted. Throws asyncflow::Error naming the option on a bad option.
  static std::shared_ptr<TelemetryManager> start(std::string session_id,
                                                 TelemetryOptions options = {},
                                                 EmitContextFn emit_context = nullptr);
  /// stop().
  ~TelemetryManager();
  TelemetryManager(const TelemetryManager&) = delete;
  TelemetryManager& operator=(const TelemetryManager&) = delete;

  const std::string& session_id() const noexcept;
  /// The W3C traceparent of the span of task (or block) `task_id` in this session, for
  /// programs the task runs (TRACEPARENT): "00-<trace id>-<task span id>-01". Valid before the
  /// task's events are processed: a task's span id follows from its id. Thread-safe.
  std::string traceparent(std::string_view task_id) const;
  /// The caller's tracestate when TRACEPARENT / TelemetryOptions::traceparent joined the
  /// session to a trace, else empty. Thread-safe.
  const std::string& tracestate() const noexcept;
  /// The options the session was started with (its processors, readers, exporters and
  /// adapters are released at stop, so the vectors are empty then).
  const TelemetryOptions& options() const noexcept;
  bool running() const noexcept;

  /// Queues `event` for processing. Waits while the bus is full (the default kBlock policy;
  /// a subscriber or the dispatcher never waits, see EventBus::emit_deferred); returns false
  /// when it was dropped (kDropNewest on a full bus, or the session stopped), which is counted
  /// and reported. A custom event without task id emitted from inside a running task gets that
  /// task's id (and so its span); one without asyncflow.workflow_id emitted inside a workflow
  /// scope or a task of one gets the workflow's id. Callable from subscribers and task bodies.
  bool emit(Event event);
  /// Builds (make_event, with this session's id filled in when `base.session_id` is empty)
  /// and emits. Throws what make_event throws.
  bool emit(const EventTypePtr& type, EventBase base,
            std::initializer_list<std::pair<std::string_view, FieldValue>> values = {});
  /// Builds, like make_event(type, context, task_id, values), and emits an event over base
  /// fields shared with other events (the engine's lifecycle events). Its event_id is
  /// assigned when the session processes it, off the emitting thread; exporters and
  /// subscribers see it set. Empty `values` for a type whose fields are all doubles mean NaN
  /// for each (a terminal task event's duration_seconds, filled by the session: see
  /// make_event). Throws what make_event throws.
  bool emit(const EventTypePtr& type, std::shared_ptr<const EventContext> context,
            std::string task_id, std::vector<FieldValue> values = {});

  /// Calls `callback(event)` on the subscribers' thread for every event processed from now
  /// on, in dispatch order. An exception from the callback is caught, counted and reported
  /// once per subscription; other subscribers still run. Throws asyncflow::Error on an empty
  /// callback.
  Subscription subscribe(std::function<void(const Event&)> callback);

  /// Waits until every event emitted before the call was processed, exported (its checkpoint
  /// lines handed to the OS) and delivered to the subscribers. False on timeout, when an
  /// exporter failed, or when called from a subscriber or exporter (it would wait on itself).
  bool flush(double timeout_seconds = 5.0);

  /// Ends the session: stops the adapters, emits SessionEnded, drains the bus, ends spans left
  /// open, exports the final metric snapshot, delivers what the subscribers are owed, shuts
  /// the exporters and processors down — all within options().stop_timeout — then releases
  /// every subscriber callback, processor, reader, exporter and adapter. An exporter or
  /// subscriber call still running at the deadline is not waited for: its thread is left to
  /// finish it (and then ends), and what it kept from being recorded is counted. Idempotent;
  /// concurrent callers wait for the first. Returns false when data was lost (losses()).
  /// Throws asyncflow::Error when called from a subscriber or on the dispatcher thread,
  /// which the stop would have to wait for.
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
  /// What was lost so far (see TelemetryLosses).
  TelemetryLosses losses() const;
  /// Events lost: refused by a full bus, emitted after stop, or not drained at stop.
  std::uint64_t dropped_events() const noexcept;
  /// Exceptions thrown by subscribers.
  std::uint64_t subscriber_errors() const noexcept;
  /// Events processed so far.
  std::uint64_t processed_events() const noexcept;
  /// True on this session's dispatcher or subscriber thread (where stop() and a blocking
  /// wait for the session are refused).
  bool on_telemetry_thread() const noexcept;

 private:
  struct Impl;
  explicit TelemetryManager(std::shared_ptr<Impl> impl);
  // Co-owned by the dispatcher thread, which stop() may leave in a hung exporter call.
  std::shared_ptr<Impl> impl_;
};

}  // namespace asyncflow
