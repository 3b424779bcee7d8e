// Internal: the session's metric instruments (reference §4.3 names and descriptions), updated
// by the dispatcher thread and collected by readers from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/metrics.hpp"

namespace asyncflow::detail {

class LossCounters;

/// The instruments, in snapshot (and JSONL metric line) order.
enum class Instrument : std::size_t {
  kTasksSubmitted,
  kTasksStarted,
  kTasksCompleted,
  kTasksFailed,
  kTasksCanceled,
  kTasksRunning,
  kTaskDuration,
  kNodeCpu,
  kNodeMemory,
  kNodeGpu,
  kEventsDropped,
  kEventsUndelivered,
  kRecordsNotExported,
  kSubscriberErrors,
  kCount
};

/// The series every task updates, resolved once per (backend, executable, task_type) so the
/// per-event cost is a pointer write (tasks_submitted is keyed on the backend alone).
struct TaskSeries {
  MetricPoint* submitted = nullptr;
  MetricPoint* started = nullptr;
  MetricPoint* completed = nullptr;
  MetricPoint* failed = nullptr;
  MetricPoint* canceled = nullptr;
  MetricPoint* running = nullptr;
  MetricPoint* duration = nullptr;
};

/// Writers (the dispatcher) hold lock() around their updates — once per batch, not per
/// event; readers go through collect(), which takes the same lock.
class MetricsStore final : public MetricProducer {
 public:
  /// `session_id` is stamped on every series.
  MetricsStore(std::string session_id, std::int64_t start_ns);

  /// The lock writers hold around a batch of updates (MutexLock lock(store.mutex())).
  Mutex& mutex() const noexcept { return mu_; }

  // --- updates: the caller holds mutex(). The dispatcher takes it in Pipeline and updates
  // through SpanTracker, a chain the analysis cannot follow (it would need the two objects'
  // paths to the store to be the same expression): these opt out, the readers are checked. ---
  /// The task series for these attributes (stable for the store's life).
  const TaskSeries* task_series(const std::string& backend, const std::string& executable,
                                const std::string& task_type) ASYNCFLOW_NO_THREAD_SAFETY_ANALYSIS;
  static void add(MetricPoint* point, double delta) noexcept { point->value += delta; }
  /// Records one histogram sample into a task_duration_seconds series.
  void record(MetricPoint* point, double value) noexcept ASYNCFLOW_NO_THREAD_SAFETY_ANALYSIS;
  /// Sets a gauge series.
  void set(Instrument instrument, const Attributes& attributes,
           double value) ASYNCFLOW_NO_THREAD_SAFETY_ANALYSIS;
  /// The session's loss counters, read at each collect (the telemetry_* instruments); set
  /// once before any reader runs.
  void set_losses(std::shared_ptr<const LossCounters> losses);

  MetricsSnapshot collect() const override;
  /// Sum of every series of `instrument`.
  double total(Instrument instrument) const;

 private:
  struct Slot {
    MetricData meta;
    std::map<std::string, MetricPoint> series;  // keyed by the encoded attribute set
  };
  MetricPoint& series(Instrument instrument, const Attributes& attributes) ASYNCFLOW_REQUIRES(mu_);
  /// The count behind a telemetry_* instrument, nullopt for other instruments.
  std::optional<std::uint64_t> loss_count(Instrument instrument) const ASYNCFLOW_REQUIRES(mu_);

  std::string session_id_;
  std::int64_t start_ns_;
  mutable Mutex mu_;
  // keyed backend \x1f executable \x1f type
  std::map<std::string, TaskSeries> task_series_ ASYNCFLOW_GUARDED_BY(mu_);
  std::string key_ ASYNCFLOW_GUARDED_BY(mu_);  // scratch for task_series()
  std::string last_key_ ASYNCFLOW_GUARDED_BY(mu_);
  const TaskSeries* last_ ASYNCFLOW_GUARDED_BY(mu_) = nullptr;
  std::array<Slot, static_cast<std::size_t>(Instrument::kCount)> slots_ ASYNCFLOW_GUARDED_BY(mu_);
  std::shared_ptr<const LossCounters> losses_ ASYNCFLOW_GUARDED_BY(mu_);
};

}  // namespace asyncflow::detail
