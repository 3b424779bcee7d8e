// read_checkpoint(): loads a JSONL checkpoint back into events, metric snapshots and spans.
// Format: docs/checkpoint-format.md. Reads what our writer writes, and the reference's files.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/span.hpp"

namespace asyncflow {

/// An event line read back, with its correlation ids.
struct CheckpointEvent {
  Event event;
  std::optional<std::string> trace_id;  ///< as written ("0x…"), or nullopt for null
  std::optional<std::string> span_id;
};

/// A metric line read back: checkpoint_time and the values in file order.
struct CheckpointMetrics {
  double checkpoint_time = 0;
  std::vector<std::pair<std::string, double>> values;
  /// The value `key`, or nullopt.
  std::optional<double> value(std::string_view key) const noexcept;
};

/// A whole checkpoint file.
struct Checkpoint {
  std::vector<CheckpointEvent> events;     ///< in file order
  std::vector<CheckpointMetrics> metrics;  ///< in file order; the last is the final snapshot
  std::vector<SpanData> spans;             ///< deduplicated on span_id (the last copy wins)
  /// True when the last line was incomplete or not valid JSON (a write cut short by a crash)
  /// and was skipped.
  bool torn_tail = false;
};

/// Loads a checkpoint. Built-in event types map to events::*; other event types are rebuilt
/// from the line's extra keys, and so is a line whose fields do not fit the type its name
/// suggests (a custom type named like a built-in, or two definitions of one name in a file
/// that other tools wrote): each such layout gets a type of its own, so the reader never
/// rejects a file the writer wrote. Blank lines are skipped. Throws asyncflow::Error naming
/// the file and line number when the file cannot be read or a line other than the last is not
/// valid JSON or not a checkpoint line. Thread-safe.
Checkpoint read_checkpoint(const std::filesystem::path& file);

}  // namespace asyncflow
