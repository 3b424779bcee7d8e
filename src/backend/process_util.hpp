// Private: small helpers shared by the process backend's children and function workers.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>  // sigabbrev_np
#include <deque>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "asyncflow/backend/backend.hpp"

namespace asyncflow::detail {

inline std::string errno_text(int e) {
  return std::error_code(e, std::generic_category()).message();
}

/// Blocks until `fd` is readable (a pidfd: its process has ended) or in error.
inline void wait_readable(int fd) noexcept {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
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
inline int open_pidfd(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

/// Removes `task` from a FIFO of waiting tasks; true when it was there.
inline bool take_task(std::deque<BackendTask*>& queue, const BackendTask* task) {
  for (auto it = queue.begin(); it != queue.end(); ++it) {
    if (*it == task) {
      queue.erase(it);
      return true;
    }
  }
  return false;
}

/// Removes the waiting tasks of engine `owner` from a FIFO, keeping the others in order, and
/// returns them (to be reported canceled once the caller's lock is released).
inline std::vector<BackendTask*> take_tasks_of(std::deque<BackendTask*>& queue, const void* owner) {
  auto theirs = std::stable_partition(queue.begin(), queue.end(),
                                      [owner](BackendTask* t) { return t->owner() != owner; });
  std::vector<BackendTask*> taken(theirs, queue.end());
  queue.erase(theirs, queue.end());
  return taken;
}

using SteadyClock = std::chrono::steady_clock;

/// A child's process group as cancel, timeouts and shutdown see it: stop requests and the two
/// deadlines. Not thread-safe: guarded by its owner's mutex.
struct GroupControl {
  pid_t pid = -1;                  ///< leader and group id; -1 until spawned
  const char* stop_how = nullptr;  ///< set once by cancel or shutdown: how it was stopped
  bool timed_out = false;
  std::optional<SteadyClock::time_point> deadline;  ///< the task's timeout
  std::optional<SteadyClock::time_point> kill_at;   ///< SIGKILL due (SIGTERM was sent)

  /// Records a stop request; signals the group when it exists (else the spawner does once it
  /// does). Returns true when a deadline changed (the waiting thread must recompute).
  bool request_stop(const char* how, std::chrono::milliseconds grace) {
    if (stop_how != nullptr) return false;
    stop_how = how;
    if (pid <= 0) return false;
    terminate(grace);
    return true;
  }

  /// SIGTERM to the whole group now, SIGKILL due after `grace`.
  void terminate(std::chrono::milliseconds grace) {
    ::kill(-pid, SIGTERM);
    kill_at = SteadyClock::now() + grace;
  }

  /// Fires what is due at `now`: a passed timeout (only while `busy`) marks it timed out and
  /// terminates it; a passed grace period sends SIGKILL.
  void fire(SteadyClock::time_point now, std::chrono::milliseconds grace, bool busy) {
    if (pid <= 0) return;
    if (deadline && *deadline <= now && busy && stop_how == nullptr && !timed_out) {
      timed_out = true;
      deadline.reset();
      terminate(grace);
    }
    if (kill_at && *kill_at <= now) {
      ::kill(-pid, SIGKILL);
      kill_at.reset();
    }
  }

  /// Lowers `next` to this group's earliest deadline.
  void earliest(std::optional<SteadyClock::time_point>& next) const {
    for (const auto& t : {deadline, kill_at}) {
      if (t && (!next || *t < *next)) next = t;
    }
  }
};

/// epoll_wait's timeout until `next` (-1: none), rounded up to whole milliseconds.
inline int epoll_timeout_ms(const std::optional<SteadyClock::time_point>& next) {
  if (!next) return -1;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*next - SteadyClock::now()).count();
  return static_cast<int>(std::clamp<std::int64_t>(ms, 0, 1 << 30));
}

}  // namespace asyncflow::detail
