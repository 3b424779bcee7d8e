// OutputSinks: files or memfds for a child's stdout and stderr.
#include "process_output.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <utility>

#include "asyncflow/common/error.hpp"

namespace asyncflow::detail {

namespace {

std::string errno_text(int e) {
  return std::error_code(e, std::generic_category()).message();
}

int open_file(const std::string& path) {
  // O_NOFOLLOW: a symbolic link planted under the file's name is refused, not written through.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int e = errno;
    throw Error("cannot create output file '" + path + "': " +
                (e == ELOOP ? "a symbolic link is in its place (not followed)" : errno_text(e)));
  }
  return fd;
}

int open_memory(const std::string& name) {
  int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) throw Error("cannot create memory file for " + name + ": " + errno_text(errno));
  return fd;
}

/// Reads [offset, offset + n) of `fd`.
std::string read_range(int fd, off_t offset, std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, out.data() + got, n - got, offset + static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  out.resize(got);
  return out;
}

off_t size_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_size : 0;
}

}  // namespace

OutputSinks OutputSinks::open(const BackendTask& task) {
  OutputSinks s;
  const std::string uid = task.uid();
  if (task.description().capture_stdio) {
    const std::string base = (task.work_dir() / uid).string();
    s.out_path_ = base + ".stdout";
    s.out_ = open_file(s.out_path_);
    s.err_ = open_file(base + ".stderr");
  } else {
    s.out_ = open_memory(uid + ".stdout");
    s.err_ = open_memory(uid + ".stderr");
  }
  return s;
}

OutputSinks::~OutputSinks() {
  if (out_ >= 0) ::close(out_);
  if (err_ >= 0) ::close(err_);
}

OutputSinks::OutputSinks(OutputSinks&& o) noexcept
    : out_(std::exchange(o.out_, -1)),
      err_(std::exchange(o.err_, -1)),
      out_path_(std::move(o.out_path_)) {}

OutputSinks& OutputSinks::operator=(OutputSinks&& o) noexcept {
  if (this != &o) {
    OutputSinks gone(std::move(*this));
    out_ = std::exchange(o.out_, -1);
    err_ = std::exchange(o.err_, -1);
    out_path_ = std::move(o.out_path_);
  }
  return *this;
}

std::string OutputSinks::result() const {
  if (!out_path_.empty()) return out_path_;
  return read_range(out_, 0, static_cast<std::size_t>(size_of(out_)));
}

std::string OutputSinks::stderr_tail(std::size_t max) const {
  const off_t size = size_of(err_);
  const std::size_t n = std::min(static_cast<std::size_t>(size), max);
  std::string tail = read_range(err_, size - static_cast<off_t>(n), n);
  if (static_cast<std::size_t>(size) > max) {  // cut: start at the first whole line, if any
    const auto nl = tail.find('\n');
    if (nl != std::string::npos && nl + 1 < tail.size()) tail.erase(0, nl + 1);
  }
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
  return tail;
}

}  // namespace asyncflow::detail
