// JsonlExporter: the JSONL checkpoint as an exporter — every event, every span and the metric
// snapshots of a session, in one file that pandas and the reference's plotting scripts read.
// TelemetryOptions::checkpoint_path builds one; including this header (asyncflow/asyncflow.hpp
// does) makes that shortcut available. Format and durability: docs/checkpoint-format.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "asyncflow/telemetry/exporter.hpp"

namespace asyncflow {

/// Options of a JsonlExporter.
struct JsonlExporterOptions {
  /// Directory of the file (created with its parents when missing).
  std::filesystem::path dir;
  /// The session id, for the file name `<session_id>.<epoch>.telemetry.jsonl`.
  std::string session_id;
  /// Epoch seconds for the file name; 0 = now.
  std::int64_t epoch_seconds = 0;
  /// Keeps every line within one 4 KiB page of the file by padding with a blank line where a
  /// line would cross a page boundary (about 6% more bytes). A process killed with SIGKILL
  /// while writing can then leave only whole lines (Linux stops a write at a page boundary),
  /// so pandas reads the file; without it, a torn last line makes pandas reject the file.
  bool whole_lines_on_kill = true;
};

/// Writes events, spans and metric snapshots as JSONL lines. Lines are formatted on the
/// calling (dispatcher) thread into a buffer and written by a thread of its own
/// ("af-checkpoint") when 1 MiB has accumulated, at least every 100 ms, at force_flush() and
/// at shutdown(). A failed write (disk full) cuts the file back to its last whole line, is
/// logged at once, and makes every later export fail (kFailure): the session counts and
/// reports what was lost.
/// Thread-safety: the export_* calls come from one thread at a time; force_flush(), losses()
/// and name() are thread-safe; shutdown() is called once.
class JsonlExporter final : public EventExporter, public SpanExporter, public MetricExporter {
 public:
  /// Creates the file. Throws asyncflow::Error naming the path and the OS reason when the
  /// directory or the file cannot be created, or the session id cannot be part of a name.
  static std::shared_ptr<JsonlExporter> create(JsonlExporterOptions options);
  /// shutdown() with a 5 s timeout, unless it ran.
  ~JsonlExporter() override;

  /// The file written.
  const std::filesystem::path& path() const noexcept;

  std::string name() const override;
  ExportResult export_events(std::span<const Event> batch) noexcept override;
  ExportResult export_spans(std::span<const SpanRecord> batch) noexcept override;
  ExportResult export_metrics(const MetricsSnapshot& snapshot) noexcept override;
  bool force_flush(std::chrono::microseconds timeout) noexcept override;
  bool shutdown(std::chrono::microseconds timeout) noexcept override;
  /// Lines lost to a failed write, and why.
  ExporterLosses losses() const override;

 private:
  struct Impl;
  explicit JsonlExporter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

namespace detail {
/// Installs the JSONL exporter as the factory of TelemetryOptions::checkpoint_path.
void install_jsonl_checkpoint() noexcept;
// Every program that includes this header gets the shortcut (and links the exporter).
[[maybe_unused]] static const bool kJsonlCheckpointInstalled = (install_jsonl_checkpoint(), true);
}  // namespace detail

}  // namespace asyncflow
