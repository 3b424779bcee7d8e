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

/// Thread-safety: handle() runs on the dispatcher thread; finish() and shutdown() on the
/// thread that stops the session, once the dispatcher has ended or after abandon() (then the
/// dispatcher may still be inside handle(): they skip what it holds and count it). abandon(),
/// force_flush() and the counters may be called from any thread.
class Pipeline {
 public:
  using Clock = std::chrono::steady_clock;

  Pipeline(const std::string& session_id, std::shared_ptr<MetricsStore> metrics,
           SessionRecord& record, SubscriberStage& subscribers,
           std::shared_ptr<LossCounters> losses, const SessionTrace& trace);

  /// Adds an exporter for the signals it implements (before the dispatcher starts).
  /// Throws asyncflow::Error when it implements none.
  void add_exporter(std::shared_ptr<TelemetryExporter> exporter);
  void add_processor(std::shared_ptr<SpanProcessor> processor);

  /// Opens the session span at `start_time` (epoch seconds).
  void open_session(double start_time) { tracker_.open_session(start_time); }

  /// The dispatcher's handler: one batch.
  void handle(std::vector<Event>& batch) noexcept;
  /// stop() gave up on the dispatcher inside handle() (a call that had not returned when
  /// stop_timeout ran out). Counts what the batch in flight will not reach — the call in
  /// progress included, though it may still return — and makes handle() return before its
  /// next call. Idempotent.
  void abandon(double stop_timeout) noexcept;
  /// Ends the spans left open at `end_time` and exports them and the final metric snapshot
  /// (to each exporter not still in a call; the others' share is counted).
  void finish(double end_time) noexcept;
  /// Every exporter's and processor's force_flush(), within `deadline`. Any thread.
  bool force_flush(Clock::time_point deadline) noexcept;
  /// Shuts exporters and processors down within `deadline` (but not one still in a call: that
  /// is said), adds what they lost to the losses, and releases them.
  void shutdown(Clock::time_point deadline) noexcept;

  std::uint64_t processed() const noexcept { return processed_.load(std::memory_order_relaxed); }

 private:
  /// One exporter, or the span processors as a whole, with the lock each call to it holds: a
  /// call still running is seen (try_lock) rather than waited for, and nothing calls it once
  /// it is shut down.
  struct Target {
    std::string name;
    std::shared_ptr<TelemetryExporter> exporter;  // null for the processors
    Mutex call_mu;
    bool closed ASYNCFLOW_GUARDED_BY(call_mu) = false;
  };
  /// A call the batch in flight has to make: to whom (null: the subscribers), what, how many.
  struct Step {
    Target* target;
    const char* what;
    std::uint64_t records;
  };

  /// Lists the batch's calls; false (everything counted) when abandon() came first.
  bool plan(std::size_t events, std::size_t spans, bool snapshot, bool to_subscribers) noexcept;
  /// Before step `i` (`hand_over`: the subscribers' step); false once abandon() came.
  bool begin_step(std::size_t i, bool hand_over = false) noexcept;
  void end_batch() noexcept;
  /// Counts what the batch in flight will not reach, `begun` of its steps having begun: the
  /// last begun one (a call that may never return, so counted though it may have just ended),
  /// unless it is the hand-over to the subscribers (which counts its own outcome), and every
  /// later one.
  void count_unfinished(std::size_t begun) noexcept ASYNCFLOW_REQUIRES(progress_mu_);
  /// One export call, its failure counted (both in handle() and at stop).
  void send_spans(SpanExporter& exporter, const Target& target,
                  const std::vector<SpanRecord>& spans) noexcept;
  void send_metrics(MetricExporter& exporter, const Target& target,
                    const MetricsSnapshot& snapshot) noexcept;
  /// Every processor's on_end() for each of `spans`.
  void feed_processors(const std::vector<SpanRecord>& spans) noexcept;
  /// A snapshot for the metric exporters; none without one (or when collecting failed: said).
  std::optional<MetricsSnapshot> collect_snapshot() noexcept;
  /// Sends `spans` to the span exporters and processors and `snapshot` to the metric
  /// exporters, at stop: a target still in a call is skipped and its share counted.
  void export_at_stop(std::vector<SpanRecord>& spans, const MetricsSnapshot* snapshot) noexcept;

  std::shared_ptr<MetricsStore> metrics_;
  SessionRecord& record_;
  SubscriberStage& subscribers_;
  std::shared_ptr<LossCounters> losses_;
  SpanTracker tracker_;

  std::deque<Target> exporters_;  // every exporter, for flush / shutdown / losses (stable)
  std::vector<std::pair<EventExporter*, Target*>> event_exporters_;
  std::vector<std::pair<SpanExporter*, Target*>> span_exporters_;
  std::vector<std::pair<MetricExporter*, Target*>> metric_exporters_;
  std::vector<std::shared_ptr<SpanProcessor>> processors_;
  Target processors_target_;  // "the span processors"

  // force_flush() (any thread) against shutdown(), which releases the exporters.
  Mutex flush_mu_;
  std::vector<SpanRecord> finished_;  // spans that ended in the batch being handled
  std::atomic<std::uint64_t> processed_{0};

  // The batch in flight, for abandon(). steps_ and begun_ are written by the dispatcher
  // under progress_mu_ and read by abandon().
  Mutex progress_mu_;
  bool abandoned_ ASYNCFLOW_GUARDED_BY(progress_mu_) = false;
  bool planned_ ASYNCFLOW_GUARDED_BY(progress_mu_) = false;  // steps_ describe a batch
  std::vector<Step> steps_ ASYNCFLOW_GUARDED_BY(progress_mu_);
  std::size_t begun_ ASYNCFLOW_GUARDED_BY(progress_mu_) = 0;               // steps of steps_ begun
  double stop_timeout_ ASYNCFLOW_GUARDED_BY(progress_mu_) = 0;             // given to abandon()
  std::uint64_t hand_overs_begun_ ASYNCFLOW_GUARDED_BY(progress_mu_) = 0;  // deliver() calls
};

}  // namespace asyncflow::detail
