// FileSizeLimit: for its scope, this process may not write files past a size (RLIMIT_FSIZE):
// writes beyond it fail with EFBIG, as a full disk fails them with ENOSPC — a write failure on
// demand, without a special file system. (ctest runs each test in its own process.)
#pragma once

#include <sys/resource.h>

#include <csignal>

namespace asyncflow::testing {

/// Not thread-safe: set and restored by the test's thread; SIGXFSZ is ignored meanwhile.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    previous_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, previous_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit saved_{};
  void (*previous_)(int) = nullptr;
};

}  // namespace asyncflow::testing
