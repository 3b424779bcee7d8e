// Internal: what the dispatcher does with each batch of events — spans and metrics, then the
// exports (events, the spans that ended, metric snapshots), the read-side record, and the
// hand-over to the subscribers — and the end of it all at stop().
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/exporter.hpp"
#include "asyncflow/telemetry/manager.hpp"
#include "losses.hpp"
#include "metrics_store.hpp"
#include "session_record.hpp"
#include "span_tracker.hpp"
#include "subscribers.hpp"

namespace asyncflow::detail {

/// The internal tick that asks the dispatcher for a metric snapshot (checkpoint_interval);
/// never exported nor shown to subscribers.
const EventTypePtr& metrics_tick();

/// Not thread-safe: handle() runs on the dispatcher thread, finish() and shutdown() on the
/// thread that stops the session once the dispatcher has ended. force_flush() and the counters
/// may be called from any thread.
class Pipeline {
 public:
  using Clock = std::chrono::steady_clock;

  Pipeline(const std::string& session_id, std::shared_ptr<MetricsStore> metrics,
           SessionRecord& record, SubscriberStage& subscribers,
           std::shared_ptr<LossCounters> losses);

  /// Adds an exporter for the signals it implements (before the dispatcher starts).
  /// Throws asyncflow::Error when it implements none.
  void add_exporter(std::shared_ptr<TelemetryExporter> exporter);
  void add_processor(std::shared_ptr<SpanProcessor> processor);

  /// Opens the session span at `start_time` (epoch seconds).
  void open_session(double start_time) { tracker_.open_session(start_time); }

  /// The dispatcher's handler: one batch.
  void handle(std::vector<Event>& batch) noexcept;
  /// Ends the spans left open at `end_time` and exports them and the final metric snapshot.
  void finish(double end_time) noexcept;
  /// Every exporter's and processor's force_flush(), within `deadline`. Any thread.
  bool force_flush(Clock::time_point deadline) noexcept;
  /// Shuts exporters and processors down within `deadline`, adds what they lost to the
  /// losses, and releases them.
  void shutdown(Clock::time_point deadline) noexcept;

  std::uint64_t processed() const noexcept { return processed_.load(std::memory_order_relaxed); }

 private:
  struct Exporter {
    std::shared_ptr<TelemetryExporter> exporter;
    std::string name;
  };
  void export_spans() noexcept;
  void export_metrics() noexcept;

  std::shared_ptr<MetricsStore> metrics_;
  SessionRecord& record_;
  SubscriberStage& subscribers_;
  std::shared_ptr<LossCounters> losses_;
  SpanTracker tracker_;

  std::deque<Exporter> exporters_;  // every exporter, for flush / shutdown / losses (stable)
  std::vector<std::pair<EventExporter*, const std::string*>> event_exporters_;
  std::vector<std::pair<SpanExporter*, const std::string*>> span_exporters_;
  std::vector<std::pair<MetricExporter*, const std::string*>> metric_exporters_;
  std::vector<std::shared_ptr<SpanProcessor>> processors_;

  // force_flush() (any thread) against shutdown(), which releases the exporters.
  Mutex flush_mu_;
  std::vector<SpanRecord> finished_;  // spans that ended in the batch being handled
  std::atomic<std::uint64_t> processed_{0};
};

}  // namespace asyncflow::detail
