// Exporters for telemetry tests that need no exporter library: one that records what it gets
// (and can hold the dispatcher at a gate), one that always fails.
#pragma once

#include <asyncflow/telemetry/exporter.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "support/sync.hpp"

namespace asyncflow::testing {

/// Records every event, span and metric snapshot. With hold() set, its next export_events()
/// call opens `entered` and waits for `release` (the dispatcher stands still meanwhile).
/// Thread-safe.
class RecordingExporter final : public EventExporter, public SpanExporter, public MetricExporter {
 public:
  std::string name() const override { return "recording"; }
  ExportResult export_events(std::span<const Event> batch) noexcept override {
    {
      std::lock_guard lock(mu_);
      events_.insert(events_.end(), batch.begin(), batch.end());
    }
    cv_.notify_all();
    if (hold_.exchange(false)) {
      entered.open();
      release.wait();
    }
    return ExportResult::kSuccess;
  }
  ExportResult export_spans(std::span<const SpanRecord> batch) noexcept override {
    std::lock_guard lock(mu_);
    for (const SpanRecord& s : batch) spans_.push_back(to_span_data(s));
    return ExportResult::kSuccess;
  }
  ExportResult export_metrics(const MetricsSnapshot& snapshot) noexcept override {
    std::lock_guard lock(mu_);
    metrics_.push_back(snapshot);
    return ExportResult::kSuccess;
  }
  bool force_flush(std::chrono::microseconds) noexcept override {
    ++flushes_;
    return true;
  }
  bool shutdown(std::chrono::microseconds) noexcept override {
    ++shutdowns_;
    return true;
  }

  /// The next export_events() call waits at the gate.
  void hold() { hold_ = true; }
  Gate entered;
  Gate release;

  std::vector<Event> events() const {
    std::lock_guard lock(mu_);
    return events_;
  }
  std::size_t event_count() const {
    std::lock_guard lock(mu_);
    return events_.size();
  }
  /// Waits until `n` events were exported.
  bool wait_for_events(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return events_.size() >= n; });
  }
  std::vector<SpanData> spans() const {
    std::lock_guard lock(mu_);
    return spans_;
  }
  std::vector<MetricsSnapshot> metrics() const {
    std::lock_guard lock(mu_);
    return metrics_;
  }
  int shutdowns() const { return shutdowns_.load(); }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<Event> events_;             // guarded by mu_
  std::vector<SpanData> spans_;           // guarded by mu_
  std::vector<MetricsSnapshot> metrics_;  // guarded by mu_
  std::atomic<bool> hold_{false};
  std::atomic<int> flushes_{0};
  std::atomic<int> shutdowns_{0};
};

/// Takes nothing: every export fails with `result`. Thread-safe.
class FailingExporter final : public EventExporter, public SpanExporter {
 public:
  explicit FailingExporter(ExportResult result = ExportResult::kFailure) : result_(result) {}
  std::string name() const override { return "failing"; }
  ExportResult export_events(std::span<const Event>) noexcept override { return result_; }
  ExportResult export_spans(std::span<const SpanRecord>) noexcept override { return result_; }
  bool force_flush(std::chrono::microseconds) noexcept override { return false; }
  bool shutdown(std::chrono::microseconds) noexcept override { return false; }

 private:
  const ExportResult result_;
};

}  // namespace asyncflow::testing
