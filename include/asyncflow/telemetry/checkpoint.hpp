// The JSONL checkpoint file: CheckpointWriter appends formatted lines to
// `<dir>/<session_id>.<epoch>.telemetry.jsonl`; read_checkpoint() loads one back.
// Format: docs/checkpoint-format.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/span.hpp"

namespace asyncflow {

/// Writes a checkpoint file. Not thread-safe: the telemetry dispatcher thread owns it.
///
/// Durability: every append() is handed to the OS with write() before it returns (a reader
/// or `tail -f` sees whole batches at once; a crash of the process loses nothing appended);
/// close() also calls fdatasync().
class CheckpointWriter {
 public:
  /// Creates `dir` (and its parents) and creates/truncates
  /// `<dir>/<session_id>.<epoch_seconds>.telemetry.jsonl`.
  /// Throws asyncflow::Error naming the path and the OS reason when either fails, or when
  /// `session_id` contains '/'.
  CheckpointWriter(const std::filesystem::path& dir, std::string_view session_id,
                   std::int64_t epoch_seconds);
  ~CheckpointWriter();  // close()
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  /// Writes whole lines. Returns false when the OS refused (disk full, I/O error): the
  /// error is kept in last_error() and the lost bytes counted; never throws. A failure is
  /// final: later appends (and appends after close()) write nothing and count as lost, so a
  /// torn line can only be the last line of the file.
  bool append(std::string_view lines) noexcept;
  /// Gives back disk blocks reserved ahead, fdatasync() and close; idempotent.
  void close() noexcept;
  bool is_open() const noexcept { return fd_ >= 0; }
  std::uint64_t bytes_written() const noexcept { return bytes_written_; }
  std::uint64_t bytes_lost() const noexcept { return bytes_lost_; }
  const std::string& last_error() const noexcept { return last_error_; }

 private:
  /// Reserves disk blocks past the end (fallocate, size unchanged) before `more` bytes are
  /// written, when the file system supports it.
  void reserve(std::size_t more) noexcept;

  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t reserved_ = 0;  // blocks are allocated up to this offset
  bool reserving_ = true;       // false once the file system said it cannot
  std::uint64_t bytes_written_ = 0;
  std::uint64_t bytes_lost_ = 0;
  std::string last_error_;
};

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
/// from the line's extra keys. Throws asyncflow::Error naming the file and line number when
/// the file cannot be read or a line other than the last is not a valid checkpoint line.
Checkpoint read_checkpoint(const std::filesystem::path& file);

}  // namespace asyncflow
