// ShutdownOnSignal: an opt-in, removable SIGINT/SIGTERM handler that shuts an engine down
// gracefully (running programs stopped, telemetry flushed) before the process ends.
#pragma once

#include <signal.h>

#include <chrono>
#include <memory>
#include <vector>

namespace asyncflow {

class WorkflowEngine;

/// Options of ShutdownOnSignal.
struct ShutdownOnSignalOptions {
  /// The signals handled. Each must be one that can be caught (not SIGKILL or SIGSTOP).
  std::vector<int> signals{SIGINT, SIGTERM};
  /// After the shutdown, end the process by the signal itself (its default action, so a shell
  /// sees 130 for Ctrl-C), as the signal would have without this handler. false: the program
  /// goes on (tasks that were running are canceled; the engine refuses new work).
  bool end_process = true;
};

/// While alive, the first of the given signals shuts `engine` down from a thread of its own:
/// tasks not yet started are canceled, running programs and function workers get SIGTERM
/// (SIGKILL after the backend's kill_grace), running in-process functions finish, telemetry
/// stops with every event written and the checkpoint closed; a line on stderr says so. A
/// second signal during that shutdown ends the process at once (its default action).
///
/// Without it, SIGINT/SIGTERM end the process at once, as for any program: the engine's child
/// processes still die with it (parent-death signal), but telemetry is not flushed beyond its
/// last write.
///
/// Declare it after the engine (it must be destroyed first). Destroying it restores the
/// handlers that were there before. One at a time per process: a second throws.
/// Thread-safety: construct and destroy on one thread; received() and wait_shutdown() are
/// thread-safe.
class ShutdownOnSignal {
 public:
  /// Throws asyncflow::Error when another ShutdownOnSignal is alive, a signal cannot be
  /// handled, or the watching thread cannot be started.
  explicit ShutdownOnSignal(WorkflowEngine& engine, ShutdownOnSignalOptions options = {});
  ~ShutdownOnSignal();
  ShutdownOnSignal(const ShutdownOnSignal&) = delete;
  ShutdownOnSignal& operator=(const ShutdownOnSignal&) = delete;

  /// The signal that started a shutdown; 0 while none did.
  int received() const noexcept;
  /// Waits until a shutdown started by a signal has finished: true, or false on timeout.
  bool wait_shutdown(std::chrono::milliseconds timeout) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace asyncflow
