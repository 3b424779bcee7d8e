// CheckpointWriter: the JSONL checkpoint file, `<dir>/<session_id>.<epoch>.telemetry.jsonl`
// (`…<epoch>-2.telemetry.jsonl` and so on when the name is taken). Lines in, durability and
// failure handling out; the JSONL exporter (jsonl_exporter.hpp) feeds it. Format and
// durability: docs/checkpoint-format.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace asyncflow {

/// Writes a checkpoint file. Not thread-safe: one thread at a time (the exporter's writer).
///
/// Durability: every append() is handed to the OS with write() before it returns; a crash of
/// the process loses nothing appended. close() also calls fdatasync(). A failed or short
/// write never leaves a torn line: the file is cut back to the end of the last whole line and
/// the failure is logged at once (log.hpp). The writer then stays failed (STYLE G15): later
/// appends are counted as lost, not written.
class CheckpointWriter {
 public:
  /// Creates `dir` (and its parents) and a new file in it: opened with O_EXCL and
  /// O_NOFOLLOW, so an existing file (or a planted symbolic link) is never overwritten or
  /// followed — a taken name gets a "-2", "-3", … suffix instead.
  /// Throws asyncflow::Error naming the path and the OS reason when either fails, or when
  /// `session_id` cannot be part of a file name.
  CheckpointWriter(const std::filesystem::path& dir, std::string_view session_id,
                   std::int64_t epoch_seconds);
  ~CheckpointWriter();  // close()
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  /// Writes whole lines. Returns false when the OS refused (disk full, I/O error): the file
  /// is cut back to its last whole line, the error kept in last_error() and the lost bytes
  /// and lines counted; never throws.
  bool append(std::string_view lines) noexcept;
  /// Gives back disk blocks reserved ahead, fdatasync() and close; idempotent. A file that
  /// was removed meanwhile (it or its directory) fails the writer: its lines are counted lost.
  void close() noexcept;
  bool is_open() const noexcept { return fd_ >= 0; }
  bool failed() const noexcept { return !last_error_.empty(); }
  std::uint64_t bytes_written() const noexcept { return bytes_written_; }
  std::uint64_t bytes_lost() const noexcept { return bytes_lost_; }
  /// Lines (not counting blank ones) in the lost bytes.
  std::uint64_t lines_lost() const noexcept { return lines_lost_; }
  const std::string& last_error() const noexcept { return last_error_; }

 private:
  /// Reserves disk blocks past the end (fallocate, size unchanged) before `more` bytes are
  /// written, when the file system supports it.
  void reserve(std::size_t more) noexcept;
  void lose(std::string_view lines) noexcept;
  /// At close: when the file was removed while open (st_nlink 0), counts its lines as lost and
  /// says so; they vanish with the descriptor.
  void lose_if_removed() noexcept;
  /// A write of `lines` failed with `err`: cut the torn part off, count, say so.
  void fail(std::string_view lines, int err) noexcept;

  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t reserved_ = 0;  // blocks are allocated up to this offset
  bool reserving_ = true;       // false once the file system said it cannot
  std::uint64_t bytes_written_ = 0;
  std::uint64_t append_start_ = 0;  // bytes_written_ when the append in progress began
  std::uint64_t bytes_lost_ = 0;
  std::uint64_t lines_lost_ = 0;
  std::string last_error_;
};

}  // namespace asyncflow
