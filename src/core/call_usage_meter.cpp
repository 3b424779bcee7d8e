#include "call_usage_meter.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "common/proc_fields.hpp"

namespace asyncflow::detail {

namespace {

/// The text of an open /proc file, read again from its start (the kernel makes it anew),
/// into `buf`; empty when it cannot be read.
std::string_view reread(int fd, char (&buf)[4096]) {
  if (fd < 0) return {};
  ssize_t n;
  do {
    n = ::pread(fd, buf, sizeof buf, 0);
  } while (n < 0 && errno == EINTR);
  return n > 0 ? std::string_view(buf, static_cast<std::size_t>(n)) : std::string_view{};
}

TaskUsage read_io(int fd) {
  char buf[4096];
  TaskUsage io;
  parse_process_io(reread(fd, buf), io);
  return io;
}

std::optional<std::uint64_t> grown(const std::optional<std::uint64_t>& before,
                                   const std::optional<std::uint64_t>& after) {
  if (!before || !after || *after < *before) return std::nullopt;
  return *after - *before;
}

}  // namespace

CallUsageMeter::CallUsageMeter(bool peak_memory)
    : io_fd_(::open("/proc/self/io", O_RDONLY | O_CLOEXEC)),
      status_fd_(peak_memory ? ::open("/proc/self/status", O_RDONLY | O_CLOEXEC) : -1),
      clear_refs_fd_(peak_memory ? ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC) : -1) {}

CallUsageMeter::~CallUsageMeter() {
  for (int fd : {io_fd_, status_fd_, clear_refs_fd_})
    if (fd >= 0) ::close(fd);
}

void CallUsageMeter::begin() {
  // 5: reset the resident high-water mark to what is resident now (proc(5), clear_refs).
  peak_reset_ = clear_refs_fd_ >= 0 && ::pwrite(clear_refs_fd_, "5", 1, 0) == 1;
  start_io_ = read_io(io_fd_);
  ::getrusage(RUSAGE_SELF, &start_rusage_);
  started_ = std::chrono::steady_clock::now();
}

TaskUsage CallUsageMeter::end() const {
  TaskUsage u;
  u.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  struct rusage now {};
  if (::getrusage(RUSAGE_SELF, &now) == 0) rusage_difference(start_rusage_, now, u);
  const TaskUsage io = read_io(io_fd_);
  u.read_chars = grown(start_io_.read_chars, io.read_chars);
  u.write_chars = grown(start_io_.write_chars, io.write_chars);
  u.read_bytes = grown(start_io_.read_bytes, io.read_bytes);
  u.write_bytes = grown(start_io_.write_bytes, io.write_bytes);
  if (peak_reset_) {
    char buf[4096];
    u.peak_memory_bytes = proc_field(reread(status_fd_, buf), "VmHWM");
  }
  return u;
}

}  // namespace asyncflow::detail
