// Spans: the in-process trace model (OTel-shaped ids and fields) that the TelemetryManager
// builds from lifecycle events, and the SpanProcessor interface exporters implement.
// Shapes: reference rhapsody-telemetry.md §4.2; JSONL form: docs/checkpoint-format.md.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "asyncflow/telemetry/event.hpp"

namespace asyncflow {

/// A 128-bit trace id. Zero is invalid (no trace).
struct TraceId {
  std::uint64_t high = 0;
  std::uint64_t low = 0;
  bool valid() const noexcept { return high != 0 || low != 0; }
  friend bool operator==(const TraceId&, const TraceId&) = default;
};

/// Span outcome, as OTel's StatusCode.
enum class SpanStatus { kUnset, kOk, kError };

/// "UNSET", "OK", "ERROR" (the JSONL `status_code`).
std::string_view to_string(SpanStatus status) noexcept;

/// An event recorded on a span (e.g. TaskQueued on a task span).
struct SpanEvent {
  std::string name;
  std::int64_t time_ns = 0;  ///< epoch nanoseconds
  Attributes attributes;
};

/// A finished span: name, ids, parent, epoch-ns start/end, status, attributes.
struct SpanData {
  std::string name;                 ///< "session", "workflow", "block" or "task"
  TraceId trace_id;
  std::uint64_t span_id = 0;        ///< never 0 for a real span
  std::uint64_t parent_span_id = 0; ///< 0 = root (the session span)
  std::int64_t start_ns = 0;        ///< epoch nanoseconds
  std::int64_t end_ns = 0;
  SpanStatus status = SpanStatus::kUnset;
  std::optional<std::string> status_description;
  Attributes attributes;
  std::vector<SpanEvent> events;

  /// The attribute `key`, or null when absent.
  const FieldValue* attribute(std::string_view key) const noexcept;
  /// The attribute `key` when it is a string, else empty.
  std::string_view text(std::string_view key) const noexcept;
  double duration_seconds() const noexcept { return static_cast<double>(end_ns - start_ns) / 1e9; }
};

/// Receives every span when it ends, on the telemetry dispatcher thread (so an implementation
/// that does slow I/O should hand spans to its own thread). Must not throw; exceptions are
/// caught, counted and reported by the manager.
class SpanProcessor {
 public:
  virtual ~SpanProcessor() = default;
  virtual void on_end(const SpanData& span) = 0;
  /// Called once when the manager stops, after the last on_end().
  virtual void shutdown() {}
};

/// Keeps every finished span in memory (tests, small runs). Thread-safe; readable after the
/// manager stopped.
class InMemorySpanExporter final : public SpanProcessor {
 public:
  void on_end(const SpanData& span) override;
  /// Finished spans in end order, optionally only those whose `session_id` / `task_id`
  /// attributes match (the reference's TelemetryReader.read_traces filter).
  std::vector<SpanData> spans(const std::optional<std::string>& session_id = std::nullopt,
                              const std::optional<std::string>& task_id = std::nullopt) const;
  std::size_t size() const;
  void clear();

 private:
  mutable std::mutex mu_;
  std::vector<SpanData> spans_;
};

}  // namespace asyncflow
