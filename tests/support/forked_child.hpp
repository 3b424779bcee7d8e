// For tests of what happens when the process that runs an engine dies or gets a signal: the
// engine runs in a forked child that reports pids back through a pipe.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace asyncflow::testing {

/// A forked child and the read end of the pipe it reports on.
struct ForkedChild {
  pid_t pid = -1;
  int reports = -1;
};

/// Forks; the child runs `body(write_fd)` and then waits until it is killed (a body whose
/// engine must keep running pauses itself: its locals die when it returns). It never returns
/// to the test. Call from a single-threaded test process (a fresh gtest process is one):
/// threads do not survive a fork. Returns pid -1 when the pipe or fork failed.
inline ForkedChild fork_child(const std::function<void(int write_fd)>& body) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid < 0) return {};
  if (pid == 0) {
    ::close(fds[0]);
    body(fds[1]);
    for (;;) ::pause();
  }
  ::close(fds[1]);
  return {.pid = pid, .reports = fds[0]};
}

/// A shell program that writes its pid to `fd`, then sleeps for five minutes (exec keeps the
/// pid). The descriptor goes by path: dash's ">&N" takes one digit, and under ctest N may be 10.
inline std::vector<std::string> sleeper_writing_pid_to(int fd) {
  return {"/bin/sh", "-c", "echo $$ > /proc/self/fd/" + std::to_string(fd) + "; exec sleep 300"};
}

/// Writes `pid` as a line to `fd` (from the child).
inline void report_pid(int fd, pid_t pid) {
  const std::string line = std::to_string(pid) + "\n";
  if (::write(fd, line.data(), line.size()) < 0) std::_Exit(2);
}

/// Up to `n` pids (one per line) read from `fd`, waiting at most 60 s for each; fewer when
/// the writers are gone. Closes `fd` when `close_after`.
inline std::vector<pid_t> read_pids(int fd, std::size_t n, bool close_after = true) {
  std::vector<pid_t> pids;
  std::string pending;
  while (pids.size() < n) {
    if (const auto nl = pending.find('\n'); nl != std::string::npos) {
      pids.push_back(static_cast<pid_t>(std::atoi(pending.substr(0, nl).c_str())));
      pending.erase(0, nl + 1);
      continue;
    }
    pollfd ready{.fd = fd, .events = POLLIN, .revents = 0};
    if (::poll(&ready, 1, 60000) != 1) break;
    char buf[256];
    const ssize_t got = ::read(fd, buf, sizeof buf);
    if (got <= 0) break;
    pending.append(buf, static_cast<std::size_t>(got));
  }
  if (close_after) ::close(fd);
  return pids;
}

/// Has exited: no such process, or a zombie that only its parent (PID 1 for an orphan) has not
/// collected.
inline bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

/// Waits up to `limit` for `pid` to be gone (polls: it is not our child, nothing signals it).
inline bool wait_gone(pid_t pid, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!process_gone(pid)) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

/// SIGKILLs `child` and collects it.
inline void kill_child(pid_t child) {
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

}  // namespace asyncflow::testing
