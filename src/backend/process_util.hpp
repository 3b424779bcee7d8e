// Private: small helpers shared by the process backend's children and function workers.
#pragma once

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>

namespace asyncflow::detail {

inline std::string errno_text(int e) {
  return std::error_code(e, std::generic_category()).message();
}

/// "SIGKILL", or "signal 42" for signals without a name.
inline std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev != nullptr ? "SIG" + std::string(abbrev) : "signal " + std::to_string(sig);
}

/// "0.2 s", "30 s".
inline std::string seconds_text(std::chrono::milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g s", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

/// A pidfd for our child `pid`, or -1 (errno set). glibc 2.36's <sys/pidfd.h> lacks extern "C"
/// for C++, so the system call is made directly.
inline int open_pidfd(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

}  // namespace asyncflow::detail
