// Console exporters (OTel's "console" exporter, OTEL_TRACES_EXPORTER=console): one readable
// line per span or metric point on an ostream, std::cout by default. For debugging and for
// seeing what an OTLP backend would get; not a file format (the JSONL checkpoint is that).
//
//   span task 4bf92f3577b34da6a3ce929d0e0e4736/00f067aa0ba902b7 parent 53995c3f42cd8ad8
//     2026-12-07T15:04:05.123456Z +0.012345s OK {task_id="task.000001", backend="pool", ...}
//     events [TaskQueued +0.000010s, asyncflow.TaskResolved +0.000012s, TaskStarted ...]
//   metric tasks_completed counter {backend="pool"} 10
#pragma once

#include <iosfwd>
#include <span>
#include <string>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/exporter.hpp"

namespace asyncflow {

namespace detail {
/// The stream both console exporters write to, whole texts at a time. Thread-safe.
class ConsoleStream {
 public:
  explicit ConsoleStream(std::ostream& out) : out_(&out) {}
  ExportResult write(const std::string& text) noexcept;
  bool flush() noexcept;
  /// Flushes; later writes fail.
  bool close() noexcept;

 private:
  Mutex mu_;
  std::ostream* out_ ASYNCFLOW_GUARDED_BY(mu_);
  bool closed_ ASYNCFLOW_GUARDED_BY(mu_) = false;
};
}  // namespace detail

/// Thread-safety: thread-safe (a mutex per exporter); the stream must outlive it and should
/// not be written by others at the same time.
class OstreamSpanExporter final : public SpanExporter {
 public:
  explicit OstreamSpanExporter(std::ostream& out);
  OstreamSpanExporter();  ///< std::cout
  std::string name() const override { return "console span exporter"; }
  ExportResult export_spans(std::span<const SpanRecord> batch) noexcept override;
  bool force_flush(std::chrono::microseconds timeout) noexcept override;
  bool shutdown(std::chrono::microseconds timeout) noexcept override;

 private:
  detail::ConsoleStream stream_;
};

/// Thread-safety: as OstreamSpanExporter.
class OstreamMetricExporter final : public MetricExporter {
 public:
  explicit OstreamMetricExporter(std::ostream& out);
  OstreamMetricExporter();  ///< std::cout
  std::string name() const override { return "console metric exporter"; }
  ExportResult export_metrics(const MetricsSnapshot& snapshot) noexcept override;
  bool force_flush(std::chrono::microseconds timeout) noexcept override;
  bool shutdown(std::chrono::microseconds timeout) noexcept override;

 private:
  detail::ConsoleStream stream_;
};

/// The line (or lines, for a span with events) the console exporter writes, without the
/// final newline.
std::string console_text(const SpanData& span);
/// One line per point of `snapshot`, each ending in a newline.
std::string console_text(const MetricsSnapshot& snapshot);

}  // namespace asyncflow
