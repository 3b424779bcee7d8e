// TaskDescription: the typed resource and execution request a task carries to its backend.
// The engine only forwards it; each backend documents which fields it honours.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace asyncflow {

/// What a task asks of the backend that runs it. Plain data; copyable.
///
/// In-process backends (noop, thread pool) ignore the resource fields; the process backend
/// honours cwd, env, timeout and capture_stdio. Unknown backend-specific settings go in `extra`.
struct TaskDescription {
  int cores = 1;                             ///< CPU cores per rank.
  int gpus = 0;                              ///< GPUs per rank.
  int ranks = 1;                             ///< Ranks (processes) for multi-rank tasks.
  std::string cwd{};                         ///< Working directory; empty = backend default.
  std::map<std::string, std::string> env{};  ///< Environment entries to add (or replace).
  bool replace_env = false;                  ///< true: `env` is the whole environment.
  std::optional<std::chrono::milliseconds> timeout{};  ///< Wall-clock limit, if any.
  bool capture_stdio = false;  ///< Write stdout/stderr to `{work_dir}/{uid}.stdout|.stderr`.
  bool shell = false;          ///< Executable tasks: run a command string through /bin/sh.
  std::map<std::string, std::string> extra{};  ///< Backend-specific keys, passed through.
};

}  // namespace asyncflow
