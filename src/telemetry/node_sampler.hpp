// Internal: one sample of this node's CPU, memory, disk and network use, read from /proc and
// /sys with no dependency (the resource poller's source). Deltas are against the previous
// sample of the same sampler; a counter that went backwards (a reset, a device that went away)
// gives 0 for that interval, never a negative number.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace asyncflow::detail {

/// The kernel's counters at one moment. Fields the kernel did not give are unset.
struct NodeCounters {
  std::optional<std::uint64_t> cpu_busy;         ///< jiffies not idle nor iowait, all CPUs
  std::optional<std::uint64_t> cpu_total;        ///< all jiffies, all CPUs
  std::optional<double> memory_percent;          ///< (MemTotal - MemAvailable) / MemTotal * 100
  std::optional<std::uint64_t> disk_read_bytes;  ///< whole disks (/sys/block), sectors * 512
  std::optional<std::uint64_t> disk_write_bytes;
  std::optional<std::uint64_t> net_recv_bytes;  ///< every interface, loopback included
  std::optional<std::uint64_t> net_sent_bytes;
};

/// Reads the counters; `proc` and `sys` are the roots (tests pass a tree of their own).
NodeCounters read_node_counters(const std::string& proc = "/proc", const std::string& sys = "/sys");

/// One ResourceUpdate's worth: percentages and byte deltas since the previous sample.
struct NodeSample {
  std::optional<double> cpu_percent;
  std::optional<double> memory_percent;
  std::optional<double> disk_read_bytes, disk_write_bytes;
  std::optional<double> net_sent_bytes, net_recv_bytes;
};

/// Turns successive counters into samples. Not thread-safe (the poller's thread owns it).
class NodeSampler {
 public:
  /// Takes the baseline now.
  explicit NodeSampler(std::string proc = "/proc", std::string sys = "/sys");
  /// The sample since the previous call (or the baseline).
  NodeSample sample();

 private:
  std::string proc_, sys_;
  NodeCounters previous_;
};

}  // namespace asyncflow::detail
