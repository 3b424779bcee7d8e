// CheckpointWriter: POSIX file I/O for the JSONL checkpoint (docs/checkpoint-format.md).
//
// No buffer of its own: the exporter hands over whole lines (about 1 MiB, at least every
// 100 ms, at flush() and at stop), so readers and `tail -f` never see a torn line while the
// session runs. The reference buffered 128 KiB and flushed only on its checkpoint timer
// (reference rhapsody-telemetry.md §3.1).
#include "asyncflow/exporters/jsonl/checkpoint_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "asyncflow/common/error.hpp"
#include "asyncflow/telemetry/log.hpp"

namespace asyncflow {

namespace {

// Built with append, not "'" + s + "'": GCC 12 reports a false -Wrestrict on the latter
// (GCC bug 105651).
std::string quoted(const std::filesystem::path& p) {
  std::string out;
  out.reserve(p.native().size() + 2);
  out.append(1, '\'').append(p.native()).append(1, '\'');
  return out;
}

}  // namespace

CheckpointWriter::CheckpointWriter(const std::filesystem::path& dir, std::string_view session_id,
                                   std::int64_t epoch_seconds) {
  // The id becomes part of a file name; a '/' would put the file somewhere else.
  if (session_id.find('/') != std::string_view::npos ||
      session_id.find('\0') != std::string_view::npos) {
    throw Error("checkpoint: session id '" + std::string(session_id) +
                "' cannot be used in a file name");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    throw Error("checkpoint: cannot create directory " + quoted(dir) + ": " + ec.message());
  }
  // O_EXCL: a file of the same name (the same session id started twice in one second, or a
  // planted link: O_EXCL does not follow links either) is never truncated or appended to.
  const std::string stem = std::string(session_id) + "." + std::to_string(epoch_seconds);
  constexpr int kMaxTries = 1000;
  for (int n = 1; n <= kMaxTries; ++n) {
    std::string name = stem;
    if (n > 1) name.append(1, '-').append(std::to_string(n));  // (append: GCC bug 105651)
    name.append(".telemetry.jsonl");
    path_ = dir / name;
    do {
      fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ >= 0 || errno != EEXIST) break;
  }
  if (fd_ < 0) {
    throw Error("checkpoint: cannot create " + quoted(path_) + ": " + std::strerror(errno));
  }
}

void CheckpointWriter::lose(std::string_view lines) noexcept {
  bytes_lost_ += lines.size();
  // Whole lines, as the exporter hands them over; blank lines are page padding.
  std::size_t start = 0;
  while (start < lines.size()) {
    std::size_t end = lines.find('\n', start);
    if (end == std::string_view::npos) end = lines.size();
    if (lines.substr(start, end - start).find_first_not_of(' ') != std::string_view::npos)
      ++lines_lost_;
    start = end + 1;
  }
}

CheckpointWriter::~CheckpointWriter() {
  close();
}

bool CheckpointWriter::append(std::string_view lines) noexcept {
  // Sticky failure (STYLE G15): after one failed or short write the file may end in a torn
  // line. Writing more after it would put that torn line in the middle, where readers reject
  // the file, so everything later is counted as lost instead.
  if (fd_ < 0 || !last_error_.empty()) {
    lose(lines);
    if (last_error_.empty()) {
      try {
        last_error_ = "checkpoint " + quoted(path_) + " is closed";
      } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the count still tells
      }
    }
    return false;
  }
  reserve(lines.size());
  append_start_ = bytes_written_;
  const char* p = lines.data();
  std::size_t left = lines.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n > 0) {
      p += n;
      left -= static_cast<std::size_t>(n);
      bytes_written_ += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    const int err = n < 0 ? errno : ENOSPC;  // write() of 0 bytes to a regular file: no room
    fail(lines, err);
    return false;
  }
  return true;
}

void CheckpointWriter::fail(std::string_view lines, int err) noexcept {
  // The part of `lines` that was written may end inside a line: cut the file back to where
  // this append began (the end of the last whole line), so readers such as pandas, which
  // reject a file with a torn line, still read everything before it.
  const std::uint64_t written_here = bytes_written_ - append_start_;
  int rc = 0;
  do {
    rc = ::ftruncate(fd_, static_cast<off_t>(append_start_));
  } while (rc != 0 && errno == EINTR);
  const bool cut = rc == 0;
  if (cut) bytes_written_ = append_start_;
  lose(cut ? lines : lines.substr(static_cast<std::size_t>(written_here)));
  try {
    last_error_ = "checkpoint: write to " + quoted(path_) + " failed: " + std::strerror(err);
    log_message(LogLevel::kError, last_error_ +
                                      (cut ? "; the file was cut back to its last whole line (" +
                                                 std::to_string(append_start_) + " bytes)"
                                           : "; cutting the torn line failed too") +
                                      ", and nothing more is written to it (" +
                                      std::to_string(lines_lost_) +
                                      " lines lost so far; the session reports the total at stop)");
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; bytes_lost_ still counts
  }
}

void CheckpointWriter::reserve(std::size_t more) noexcept {
  if (!reserving_ || bytes_written_ + more <= reserved_) return;
  // As much again as the file holds, between 1 and 64 MiB: allocating disk blocks ahead,
  // rather than page by page as the writes arrive, took a quarter off the kernel's time per
  // write (290 MB in 256 KiB writes: 0.085 s of system time without, 0.064 s with, ext4).
  // KEEP_SIZE leaves the file's size alone: readers never see the reserved blocks.
  constexpr std::uint64_t kMin = std::uint64_t{1} << 20;
  constexpr std::uint64_t kMax = std::uint64_t{64} << 20;
  const std::uint64_t step =
      std::max<std::uint64_t>(more, std::clamp<std::uint64_t>(bytes_written_, kMin, kMax));
  const std::uint64_t from = std::max(reserved_, bytes_written_);
  if (::fallocate(fd_, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(from),
                  static_cast<off_t>(bytes_written_ + more + step - from)) == 0) {
    reserved_ = bytes_written_ + more + step;
  } else if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL || errno == ENODEV) {
    reserving_ = false;  // the file system cannot: write as usual
  }
  // Out of space (ENOSPC) or interrupted: the writes themselves say whether the lines fit.
}

void CheckpointWriter::lose_if_removed() noexcept {
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || st.st_nlink != 0) return;
  // Removed (the file, or its directory) while written: what it holds goes with the last
  // descriptor, ours. Still readable through it (opened O_RDWR for this), so the lines are
  // counted as lost.
  char chunk[1 << 16];
  std::uint64_t offset = 0;
  bool line_has_text = false;  // blank lines are page padding, not records
  while (offset < bytes_written_) {
    const ssize_t n = ::pread(fd_, chunk, sizeof chunk, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (chunk[i] == '\n') {
        if (line_has_text) ++lines_lost_;
        line_has_text = false;
      } else if (chunk[i] != ' ') {
        line_has_text = true;
      }
    }
    offset += static_cast<std::uint64_t>(n);
  }
  bytes_lost_ += bytes_written_;
  try {
    if (last_error_.empty()) {
      last_error_ = "checkpoint: " + quoted(path_) +
                    " was removed (it or its directory) while the session wrote it: its " +
                    std::to_string(lines_lost_) + " lines are lost";
      log_message(LogLevel::kError, last_error_);
    }
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; lines_lost_ still counts
  }
}

void CheckpointWriter::close() noexcept {
  if (fd_ < 0) return;
  lose_if_removed();
  // Gives back the blocks reserved past the end (a crash before this leaves them allocated,
  // at most 64 MiB, but not part of the file's contents).
  if (reserved_ > bytes_written_) {
    int rc = 0;
    do {
      rc = ::ftruncate(fd_, static_cast<off_t>(bytes_written_));
    } while (rc != 0 && errno == EINTR);
  }
  // EINVAL/EROFS: the file does not support syncing (a pipe or a device); nothing to lose.
  if (::fdatasync(fd_) != 0 && errno != EINVAL && errno != EROFS && last_error_.empty()) {
    try {
      last_error_ =
          "checkpoint: fdatasync of " + quoted(path_) + " failed: " + std::strerror(errno);
    } catch (...) {  // NOLINT(bugprone-empty-catch)
    }
  }
  // No retry on EINTR: Linux releases the descriptor before reporting it.
  if (::close(fd_) != 0 && errno != EINTR && last_error_.empty()) {
    try {
      last_error_ = "checkpoint: close of " + quoted(path_) + " failed: " + std::strerror(errno);
    } catch (...) {  // NOLINT(bugprone-empty-catch)
    }
  }
  fd_ = -1;
}

}  // namespace asyncflow
