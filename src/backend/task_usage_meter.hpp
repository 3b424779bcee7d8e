// Private: exact resource usage of the processes the process backend starts — rusage from the
// reaping waitid, /proc/<pid>/io read from the zombie, and peak memory from a memory cgroup
// that holds the task's processes only (how and where: docs/checkpoint-format.md, "Task
// usage").
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "asyncflow/backend/task_usage.hpp"

namespace asyncflow::detail {

/// A memory cgroup that measures the peak memory of the processes started in it: one task's
/// at a time. Two ways in, by what the machine has (placement()):
///  - kThread (cgroup v1): the thread that spawns joins the group once, and every child it
///    clones starts in it, as its descendants do. Moving a process into a cgroup costs the
///    kernel tens of microseconds (a lock that every fork takes), a fifth of a /bin/true
///    task; a child born in it costs nothing. Between tasks, reset() restarts the peak from
///    what is charged now (kernel objects and page cache the earlier tasks left, and the
///    per-CPU batches of up to 256 KiB in which the kernel charges), the baseline that peak()
///    subtracts; a group whose baseline passes kMaxBaseline is replaced by a fresh one.
///  - kProcess (cgroup v2, where threads share their process's cgroup): a group per task that
///    the child joins before it execs (procs_fd()).
/// Not thread-safe.
class MemoryGroup {
 public:
  enum class Placement { kNone, kThread, kProcess };
  /// A group with more charged than this when a task is to start is replaced. Between
  /// /bin/true tasks the baseline wanders from 0.2 to 2 MiB (kernel objects freed after the
  /// reap, per-CPU charge batches); a 1 MiB limit replaced a group every 25 tasks or so, and
  /// moving the thread into the new one takes milliseconds: a fifth of the throughput. What
  /// of the baseline is freed while a task runs can hide as much of the task's own peak.
  static constexpr std::uint64_t kMaxBaseline = 4u << 20;

  /// How groups are entered here (kNone: peak memory is not measured).
  static Placement placement();
  /// "cgroup v2 memory.peak", "cgroup v1 memory.max_usage_in_bytes", or empty when peak
  /// memory is not measured here (then why_unavailable() says why).
  static const std::string& method();
  static const std::string& why_unavailable();

  /// A new group, or null when it cannot be made.
  static std::unique_ptr<MemoryGroup> make();
  ~MemoryGroup();
  MemoryGroup(const MemoryGroup&) = delete;
  MemoryGroup& operator=(const MemoryGroup&) = delete;

  /// kThread: moves the calling thread into the group (it leaves it on destruction, which
  /// must then run on the same thread). False when the kernel refused.
  bool join_this_thread();
  /// kProcess: its cgroup.procs, open for writing: a child writes "0" to it to join.
  int procs_fd() const noexcept { return procs_fd_; }
  /// kThread: starts a new measurement (peak := charged now, the baseline). False when the
  /// group cannot be reset or holds more than kMaxBaseline: replace it.
  bool reset();
  /// The most memory charged at once since the last reset (or since it was made), less the
  /// baseline, in bytes; nullopt when unreadable.
  std::optional<std::uint64_t> peak() const;

 private:
  MemoryGroup() = default;
  std::string dir_;
  int procs_fd_ = -1;  ///< cgroup.procs (kProcess) or tasks (kThread)
  int peak_fd_ = -1;
  int usage_fd_ = -1;
  std::uint64_t baseline_ = 0;
  bool thread_joined_ = false;
};

/// The kThread group of the calling spawner thread, kept ready for its next child: made and
/// joined at the first task, reset before each, replaced when it fills. Not thread-safe:
/// one per thread.
class ThreadMemoryGroup {
 public:
  /// The group for the next child, reset; null when none can be had (no peak measured).
  MemoryGroup* ready();

 private:
  std::unique_ptr<MemoryGroup> group_;
  bool failed_ = false;  ///< the kernel refused once: not tried again
};

/// Measures one child: construct when it is about to start, call spawned() once it runs,
/// read_zombie() when it has exited and finish() with the rusage of its reaping. Not
/// thread-safe.
class ProcessUsageMeter {
 public:
  ProcessUsageMeter() : started_(std::chrono::steady_clock::now()) {}
  ~ProcessUsageMeter();
  ProcessUsageMeter(const ProcessUsageMeter&) = delete;
  ProcessUsageMeter& operator=(const ProcessUsageMeter&) = delete;

  /// Opens the child's /proc/<pid>/io now, on the spawning thread: the reaper, which reads it
  /// for every child one after the other, then only reads (opening costs it about 20 us).
  void spawned(pid_t pid);
  /// Reads /proc/<pid>/io of the exited, not yet reaped child (its reaped descendants
  /// included) and the cgroup's peak.
  void read_zombie(pid_t pid, const MemoryGroup* group);
  /// The usage, with the rusage its reaping returned (`in_group`: the child was in the group
  /// whose peak read_zombie() read).
  TaskUsage finish(const struct rusage& usage, bool in_group);

 private:
  std::chrono::steady_clock::time_point started_;
  int io_fd_ = -1;  ///< the child's /proc/<pid>/io, from spawned()
  TaskUsage usage_;
};

/// The /proc/<pid>/io fields ("self" for this process) into `usage`; false when unreadable.
bool read_process_io(const std::string& pid, TaskUsage& usage);

}  // namespace asyncflow::detail
