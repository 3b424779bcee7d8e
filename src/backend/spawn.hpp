// Private: starting one program with posix_spawn in a process group of its own.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
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
};

/// A started child, or why it could not start.
struct Spawned {
  pid_t pid = -1;  ///< the child, leader of process group `pid`; -1 on failure
  int pidfd = -1;  ///< a pidfd for the child (the caller closes it)
  int error = 0;  ///< errno of the failed start (ENOENT: no such program, EACCES: not executable…)
};

/// Starts `command` (and opens its pidfd) in a new process group, with the default
/// signal dispositions and an empty signal mask. A program name without '/' is looked up in
/// the parent's PATH. Exec failures are reported in `error` (glibc's posix_spawn waits for the
/// exec), so a missing program never yields a child.
Spawned spawn_process(const Command& command, const SpawnSettings& settings);

/// Describes a failed start for a message: "no such program 'x' (not found in PATH)", …
std::string spawn_error_text(const Command& command, const std::string& cwd, int error);

}  // namespace asyncflow::detail
