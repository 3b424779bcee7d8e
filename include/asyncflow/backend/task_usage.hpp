// TaskUsage: what one task's process used, as the backend that ran it measured it.
#pragma once

#include <cstdint>
#include <optional>

namespace asyncflow {

/// Resources one task used, measured (never sampled, never estimated) by its backend when the
/// task ended. A field the backend could not measure exactly is absent. Names of the event
/// attributes and their Nextflow counterparts: docs/checkpoint-format.md ("Task usage").
/// Plain data; copyable.
struct TaskUsage {
  /// From the start of its process (or call) to its end.
  std::optional<double> wall_seconds;
  /// CPU time in user and kernel mode, the processes it started and waited for included.
  std::optional<double> cpu_user_seconds;
  std::optional<double> cpu_system_seconds;
  /// The most memory charged at once to the task's own memory cgroup: the resident memory of
  /// its process and of every process it started, plus the page cache their file I/O filled.
  std::optional<std::uint64_t> peak_memory_bytes;
  /// Bytes fetched from and sent to storage (/proc/<pid>/io read_bytes, write_bytes).
  std::optional<std::uint64_t> read_bytes;
  std::optional<std::uint64_t> write_bytes;
  /// Bytes through read-like and write-like system calls, pipes and cache hits included
  /// (/proc/<pid>/io rchar, wchar: Nextflow's rchar/wchar).
  std::optional<std::uint64_t> read_chars;
  std::optional<std::uint64_t> write_chars;
  /// Context switches: waits (voluntary) and preemptions (involuntary).
  std::optional<std::uint64_t> voluntary_switches;
  std::optional<std::uint64_t> involuntary_switches;

  /// True when no field is set.
  bool empty() const noexcept {
    return !wall_seconds && !cpu_user_seconds && !cpu_system_seconds && !peak_memory_bytes &&
           !read_bytes && !write_bytes && !read_chars && !write_chars && !voluntary_switches &&
           !involuntary_switches;
  }
};

/// Calls `visit(name, field)` for each field of `usage` (TaskUsage or const TaskUsage), with
/// the member's name: how the function-worker protocol carries a call's usage.
template <class Usage, class Visit>
void visit_usage_fields(Usage& usage, Visit visit) {
  visit("wall_seconds", usage.wall_seconds);
  visit("cpu_user_seconds", usage.cpu_user_seconds);
  visit("cpu_system_seconds", usage.cpu_system_seconds);
  visit("peak_memory_bytes", usage.peak_memory_bytes);
  visit("read_bytes", usage.read_bytes);
  visit("write_bytes", usage.write_bytes);
  visit("read_chars", usage.read_chars);
  visit("write_chars", usage.write_chars);
  visit("voluntary_switches", usage.voluntary_switches);
  visit("involuntary_switches", usage.involuntary_switches);
}

}  // namespace asyncflow
