// In-memory exporters and reader, for tests and small runs: they keep what a session exports
// so a test can look at it (as OTel's InMemorySpanExporter / InMemoryMetricReader).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/exporter.hpp"
#include "asyncflow/telemetry/metrics.hpp"

namespace asyncflow {

/// Keeps every event it is given. Thread-safe.
class InMemoryEventExporter final : public EventExporter {
 public:
  std::string name() const override { return "in-memory events"; }
  ExportResult export_events(std::span<const Event> batch) noexcept override;
  bool force_flush(std::chrono::microseconds) noexcept override { return true; }
  bool shutdown(std::chrono::microseconds) noexcept override { return true; }

  /// Copies of the events so far, in export order.
  std::vector<Event> events() const;
  std::size_t size() const;
  /// Waits until at least `n` events were exported; false on timeout.
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout) const;

 private:
  mutable Mutex mu_;
  mutable CondVar cv_;
  std::vector<Event> events_ ASYNCFLOW_GUARDED_BY(mu_);
};

/// Keeps every finished span it is given. Thread-safe; readable after the session stopped.
class InMemorySpanExporter final : public SpanExporter {
 public:
  std::string name() const override { return "in-memory spans"; }
  ExportResult export_spans(std::span<const SpanRecord> batch) noexcept override;
  bool force_flush(std::chrono::microseconds) noexcept override { return true; }
  bool shutdown(std::chrono::microseconds) noexcept override { return true; }

  /// Finished spans in end order, optionally only those whose `session_id` / `task_id`
  /// attributes match (the reference's TelemetryReader.read_traces filter).
  std::vector<SpanData> spans(const std::optional<std::string>& session_id = std::nullopt,
                              const std::optional<std::string>& task_id = std::nullopt) const;
  std::size_t size() const;
  void clear();

 private:
  mutable Mutex mu_;
  std::vector<SpanData> spans_ ASYNCFLOW_GUARDED_BY(mu_);
};

/// A reader for tests and small runs: read() returns the current snapshot while the session
/// runs and the final one after it stopped. Thread-safe.
class InMemoryMetricReader final : public MetricReader {
 public:
  void attach(std::shared_ptr<const MetricProducer> producer) override;
  bool shutdown(std::chrono::microseconds timeout) noexcept override;
  MetricsSnapshot read() const;

 private:
  mutable Mutex mu_;
  std::shared_ptr<const MetricProducer> producer_ ASYNCFLOW_GUARDED_BY(mu_);
  MetricsSnapshot final_ ASYNCFLOW_GUARDED_BY(mu_);
  bool has_final_ ASYNCFLOW_GUARDED_BY(mu_) = false;
};

}  // namespace asyncflow
