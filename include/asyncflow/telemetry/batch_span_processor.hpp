// Span processors that hand finished spans to a SpanExporter, as the OTel SDK's: the batch one
// (a queue and an export thread of its own, OTEL_BSP_* variables) for any exporter that does
// I/O, and the simple one (exports each span as it ends, on the telemetry thread) for tests.
//
// Lessons from opentelemetry-cpp's reports, built in: a full queue is counted and said (once,
// then at stop, and in the session's losses), never silent; the export thread is woken only
// when a whole batch is ready (or by the schedule delay, a flush or the shutdown), so batches
// under load are full, not a few spans each; force_flush() and shutdown() always return
// within their timeout, even when the exporter hangs (its thread is then left to finish the
// call, and what it held is counted).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "asyncflow/telemetry/exporter.hpp"
#include "asyncflow/telemetry/span.hpp"

namespace asyncflow {

/// The batch span processor's settings (OTel SDK defaults). Unset fields come from
/// OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_SCHEDULE_DELAY and
/// OTEL_BSP_EXPORT_TIMEOUT (milliseconds), then these defaults; a malformed variable is one
/// warning naming it, and its default is used.
struct BatchSpanProcessorOptions {
  std::size_t max_queue_size = 0;               ///< 0 = environment, else 2048
  std::size_t max_export_batch_size = 0;        ///< 0 = environment, else 512 (<= max_queue_size)
  std::chrono::milliseconds schedule_delay{0};  ///< 0 = environment, else 5000 ms
  std::chrono::milliseconds export_timeout{0};  ///< 0 = environment, else 30000 ms
};

/// What a batch span processor did. Thread-safe snapshot.
struct BatchSpanProcessorStats {
  std::uint64_t spans_received = 0;
  std::uint64_t spans_exported = 0;
  std::uint64_t exports = 0;  ///< export calls that succeeded
  std::uint64_t dropped_queue_full = 0;
  std::uint64_t dropped_export_failed = 0;
  std::uint64_t dropped_at_shutdown = 0;  ///< still queued (or in a hung call) when it ended
  /// Mean spans per export call: near max_export_batch_size under load.
  double mean_batch() const noexcept {
    return exports == 0 ? 0 : static_cast<double>(spans_exported) / static_cast<double>(exports);
  }
};

/// Thread-safety: on_end() from one thread at a time (the telemetry dispatcher);
/// force_flush(), shutdown(), stats() and losses() from any thread.
class BatchSpanProcessor final : public SpanProcessor {
 public:
  /// Starts the export thread ("af-span-export"). Throws asyncflow::Error for a null exporter
  /// or a batch size above the queue size.
  explicit BatchSpanProcessor(std::shared_ptr<SpanExporter> exporter,
                              BatchSpanProcessorOptions options = {});
  ~BatchSpanProcessor() override;

  void on_end(const SpanData& span) noexcept override;
  bool force_flush(std::chrono::microseconds timeout) noexcept override;
  /// Exports what is queued, then shuts the exporter down, within `timeout`; what is left is
  /// counted (dropped_at_shutdown). False when it could not finish in time or the exporter's
  /// shutdown failed; spans lost are losses()' to say. Idempotent.
  bool shutdown(std::chrono::microseconds timeout) noexcept override;
  SpanLosses losses() const noexcept override;
  BatchSpanProcessorStats stats() const;
  /// The settings in use (options resolved against the environment).
  const BatchSpanProcessorOptions& options() const noexcept;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the export thread, which may outlive us
};

/// Exports each span as it ends, on the thread that ends it (the telemetry dispatcher): for
/// tests and debugging, never for an exporter that does I/O. Failed exports are counted.
/// Thread-safety: as SpanProcessor.
class SimpleSpanProcessor final : public SpanProcessor {
 public:
  explicit SimpleSpanProcessor(std::shared_ptr<SpanExporter> exporter);
  void on_end(const SpanData& span) noexcept override;
  bool force_flush(std::chrono::microseconds timeout) noexcept override;
  bool shutdown(std::chrono::microseconds timeout) noexcept override;
  SpanLosses losses() const noexcept override;

 private:
  std::shared_ptr<SpanExporter> exporter_;
  std::atomic<std::uint64_t> failed_{0};
};

}  // namespace asyncflow
