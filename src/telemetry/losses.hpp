// Internal: a session's loss and error counters, and how they are said (STYLE G6, "nothing
// lost without a word"): a warning the first time each kind happens, a summary line at stop,
// the numbers in summary(), the metrics and stop()'s result.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/manager.hpp"

namespace asyncflow::detail {

/// "1 event", "3 events".
std::string count(std::uint64_t n, std::string_view what);
/// "0.2 s", "30 s": a duration in a message, without to_string's six decimals.
std::string seconds_text(double seconds);

/// Thread-safe: counted from any thread (producers, the dispatcher, the subscriber thread,
/// exporters' writer threads through ExporterLosses at stop).
class LossCounters {
 public:
  explicit LossCounters(std::string session_id) : session_id_(std::move(session_id)) {}

  /// An event the bus refused (full under kDropNewest) or discarded (stop_timeout); `why` is
  /// said the first time.
  void dropped(std::uint64_t n, std::string_view why) noexcept;
  /// The same, once the drop was said: a count only.
  void dropped(std::uint64_t n) noexcept {
    events_dropped_.fetch_add(n, std::memory_order_relaxed);
  }
  /// Whether a drop was said already.
  bool said_dropped() const noexcept { return said_dropped_.load(std::memory_order_relaxed); }
  /// An event emitted after the session stopped.
  void emitted_after_stop(std::string_view event_type) noexcept;
  /// Events the subscribers never got.
  void undelivered(std::uint64_t n, std::string_view why) noexcept;
  /// A subscriber threw (reported by the subscriber stage, once per subscription).
  void subscriber_error() noexcept { subscriber_errors_.fetch_add(1, std::memory_order_relaxed); }
  /// An export call failed: `records` were not taken.
  void export_failed(std::string_view exporter, ExportResult result, std::uint64_t records,
                     std::string_view what) noexcept;
  /// `records` that never reached `exporter` though no call of it failed (its call was still
  /// running when stop gave up, or the pipeline never got to it); `why` is said once per
  /// exporter. `failed_call` counts one export failure too (the call that did not return).
  void not_exported(std::string_view exporter, std::uint64_t records, std::string_view what,
                    std::string_view why, bool failed_call) noexcept;
  /// Records an exporter lost after accepting them (ExporterLosses), added once at stop.
  void exporter_lost(std::string_view exporter, const ExporterLosses& losses) noexcept;
  /// Something failed without losing data (a span processor's shutdown timed out, ...).
  void note_error(std::string_view message) noexcept;

  std::uint64_t events_dropped() const noexcept {
    return events_dropped_.load(std::memory_order_relaxed);
  }
  std::uint64_t subscriber_errors() const noexcept {
    return subscriber_errors_.load(std::memory_order_relaxed);
  }
  TelemetryLosses snapshot() const;

 private:
  void set_last_error(std::string message);
  /// Sets `message` as the last error and logs it the first time `exporter` has a problem.
  void exporter_problem(std::string_view exporter, std::string message);
  void warn_once(std::atomic<bool>& said, std::string_view message) noexcept;

  const std::string session_id_;
  std::atomic<std::uint64_t> events_dropped_{0};
  std::atomic<std::uint64_t> events_undelivered_{0};
  std::atomic<std::uint64_t> subscriber_errors_{0};
  std::atomic<std::uint64_t> export_failures_{0};
  std::atomic<std::uint64_t> records_not_exported_{0};
  std::atomic<bool> said_dropped_{false};
  std::atomic<bool> said_after_stop_{false};
  std::atomic<bool> said_undelivered_{false};
  mutable Mutex mu_;
  std::string last_error_ ASYNCFLOW_GUARDED_BY(mu_);
  std::string exporters_warned_
      ASYNCFLOW_GUARDED_BY(mu_);  // names already warned about, '\n'-separated
};

}  // namespace asyncflow::detail
