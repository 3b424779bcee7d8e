// Private: exact resource usage of the processes the process backend starts — rusage from the
// reaping waitid, /proc/<pid>/io read from the zombie, and peak memory from a memory cgroup
// of the task's own (how and where: docs/checkpoint-format.md, "Task usage").
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "asyncflow/backend/task_usage.hpp"

namespace asyncflow::detail {

/// One task's memory cgroup: made before its process starts, which joins it before it execs
/// (through procs_fd()), read when it has exited, removed on destruction. Empty (no fd) when
/// the machine gives us no memory cgroups. Not thread-safe; movable.
class TaskCgroup {
 public:
  TaskCgroup() = default;
  TaskCgroup(TaskCgroup&& other) noexcept;
  TaskCgroup& operator=(TaskCgroup&& other) noexcept;
  TaskCgroup(const TaskCgroup&) = delete;
  TaskCgroup& operator=(const TaskCgroup&) = delete;
  ~TaskCgroup();

  /// A new group, or an empty one when memory cgroups are unavailable (once per process, the
  /// first call says why at debug level) or this one could not be made.
  static TaskCgroup make();
  /// How peak memory is measured here: "cgroup v2 memory.peak", "cgroup v1
  /// memory.max_usage_in_bytes", or empty when it is not (then why_unavailable() says why).
  static const std::string& method();
  static const std::string& why_unavailable();

  /// Its cgroup.procs, open for writing: the child writes "0" to it to join (-1: none).
  int procs_fd() const noexcept { return procs_fd_; }
  /// The most memory charged to the group at once, in bytes; nullopt when unreadable.
  std::optional<std::uint64_t> peak() const;

 private:
  void remove() noexcept;
  std::string dir_;
  int procs_fd_ = -1;
};

/// Measures one child: construct when it is about to start, call exited() with the rusage of
/// its reaping (and before it, read() while it is a zombie). Not thread-safe.
class ProcessUsageMeter {
 public:
  ProcessUsageMeter() : started_(std::chrono::steady_clock::now()) {}

  /// Reads /proc/<pid>/io of the exited, not yet reaped child (its reaped descendants
  /// included) and the cgroup's peak.
  void read_zombie(pid_t pid, const TaskCgroup& cgroup);
  /// The usage, with the rusage its reaping returned (`joined`: the child joined `cgroup`).
  TaskUsage finish(const struct rusage& usage, bool joined);

 private:
  std::chrono::steady_clock::time_point started_;
  TaskUsage usage_;
};

/// The /proc/<pid>/io fields ("self" for this process) into `usage`; false when unreadable.
bool read_process_io(const std::string& pid, TaskUsage& usage);

}  // namespace asyncflow::detail
