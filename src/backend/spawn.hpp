// Private: starting one program in a process group of its own that dies with this process.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "asyncflow/backend/command.hpp"

namespace asyncflow::detail {

/// What the child gets besides its command.
struct SpawnSettings {
  std::string cwd;                                          ///< empty: the parent's
  const std::map<std::string, std::string>* env = nullptr;  ///< entries to add or replace
  bool replace_env = false;  ///< true: `env` is the whole environment
  int stdin_fd = -1;         ///< becomes fd 0 (-1: /dev/null)
  int stdout_fd = -1;        ///< becomes fd 1 (-1: /dev/null)
  int stderr_fd = -1;        ///< becomes fd 2 (-1: /dev/null)
  int fd3 = -1;              ///< becomes fd 3 (-1: none); a function worker's protocol socket
  /// Sent to the child when the thread that started it ends (with this process, or a backend's
  /// spawning thread, which lives as long as the backend). 0: none.
  int parent_death_signal = SIGKILL;
  /// A cgroup's cgroup.procs open for writing (-1: none): the child joins that cgroup before
  /// it execs, so everything the program does is counted there (task_usage_meter.hpp).
  int cgroup_procs_fd = -1;
};

/// A started child, or why it could not start.
struct Spawned {
  pid_t pid = -1;  ///< the child, leader of process group `pid`; -1 on failure
  int pidfd = -1;  ///< a pidfd for the child (the caller closes it)
  int error = 0;  ///< errno of the failed start (ENOENT: no such program, EACCES: not executable…)
  bool joined_cgroup = false;  ///< it joined SpawnSettings::cgroup_procs_fd's cgroup
};

/// Throws asyncflow::Error, its message starting with `who`, naming what cannot be passed to a
/// program: an empty argv or program name, a NUL byte inside an argument (the kernel would cut
/// it there), an environment key that is empty or holds '=' or NUL, a value holding NUL (the
/// value itself is never quoted: it may be a secret). Run before spawn_process.
void check_spawn_input(std::string_view who, const Command& command,
                       const std::map<std::string, std::string>* env);

/// Starts `command` (and opens its pidfd) in a new process group, with the default signal
/// dispositions and an empty signal mask, and with settings.parent_death_signal set, so that
/// nothing we start outlives us (a program that moves itself to a new session and ignores the
/// signal can: docs/reliability.md). A program name without '/' is looked up in the child's
/// PATH when its environment sets one, else in ours. Exec failures are reported in `error`:
/// the parent waits for the exec, so a missing program never yields a child.
Spawned spawn_process(const Command& command, const SpawnSettings& settings);

/// Describes a failed start for a message: "no such program 'x' (not found in PATH)", …
std::string spawn_error_text(const Command& command, const std::string& cwd, int error);

}  // namespace asyncflow::detail
