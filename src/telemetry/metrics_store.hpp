// Internal: the session's metric instruments (reference §4.3 names and descriptions), updated
// by the dispatcher thread and collected by readers from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "asyncflow/telemetry/metrics.hpp"

namespace asyncflow::detail {

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
  kSubscriberErrors,
  kCount
};

class MetricsStore final : public MetricProducer {
 public:
  /// `session_id` is stamped on every series.
  MetricsStore(std::string session_id, std::int64_t start_ns);

  /// Adds `delta` to a counter / up-down counter series.
  void add(Instrument instrument, const Attributes& attributes, double delta);
  /// Records one histogram sample.
  void record(Instrument instrument, const Attributes& attributes, double value);
  /// Sets a gauge series.
  void set(Instrument instrument, const Attributes& attributes, double value);
  /// Reads the value of one series (0 when absent).
  double value(Instrument instrument, const Attributes& attributes) const;
  /// Counts kept outside the store (bus drops, subscriber errors), read at each collect;
  /// set once before any reader runs.
  void set_sources(std::function<std::uint64_t()> dropped,
                   std::function<std::uint64_t()> subscriber_errors);

  MetricsSnapshot collect() const override;
  /// Sum of every series of `instrument`.
  double total(Instrument instrument) const;

 private:
  struct Slot {
    MetricData meta;
    std::map<std::string, MetricPoint> series;  // keyed by the encoded attribute set
  };
  MetricPoint& series(Instrument instrument, const Attributes& attributes);

  std::string session_id_;
  std::int64_t start_ns_;
  mutable std::mutex mu_;
  std::array<Slot, static_cast<std::size_t>(Instrument::kCount)> slots_;
  std::function<std::uint64_t()> dropped_;
  std::function<std::uint64_t()> subscriber_errors_;
};

}  // namespace asyncflow::detail
