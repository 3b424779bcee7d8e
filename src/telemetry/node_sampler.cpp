// This node's counters from /proc and /sys (node_sampler.hpp).
#include "node_sampler.hpp"

#include <dirent.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

namespace asyncflow::detail {

namespace {

/// The first line of /proc/stat: "cpu  user nice system idle iowait irq softirq steal ...".
void read_cpu(const std::string& proc, NodeCounters& c) {
  std::ifstream in(proc + "/stat");
  std::string label;
  if (!(in >> label) || label != "cpu") return;
  std::uint64_t v[8] = {};
  std::uint64_t total = 0;
  int n = 0;
  // guest and guest_nice (fields 9, 10) are already inside user and nice: not added again.
  for (; n < 8 && (in >> v[n]); ++n) total += v[n];
  if (n < 4) return;
  const std::uint64_t idle = v[3] + (n > 4 ? v[4] : 0);
  c.cpu_total = total;
  c.cpu_busy = total - idle;
}

void read_memory(const std::string& proc, NodeCounters& c) {
  std::ifstream in(proc + "/meminfo");
  std::optional<double> total, available;
  std::string key;
  double kib = 0;
  std::string unit;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "MemTotal:") total = kib;
    if (key == "MemAvailable:") available = kib;
    if (total && available) break;
  }
  if (total && available && *total > 0) c.memory_percent = (*total - *available) / *total * 100;
}

/// Whole disks, as /sys/block lists them (partitions would count their disk's bytes twice).
std::set<std::string> whole_disks(const std::string& sys) {
  std::set<std::string> out;
  if (DIR* d = ::opendir((sys + "/block").c_str())) {
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') out.insert(e->d_name);
    }
    ::closedir(d);
  }
  return out;
}

/// /proc/diskstats: "major minor name reads merged sectors_read ms writes merged sectors_written".
void read_disks(const std::string& proc, const std::string& sys, NodeCounters& c) {
  const std::set<std::string> disks = whole_disks(sys);
  std::ifstream in(proc + "/diskstats");
  if (!in) return;
  std::uint64_t read = 0, written = 0;
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::uint64_t major = 0, minor = 0, reads = 0, merged = 0, sectors_read = 0, ms = 0, writes = 0,
                  wmerged = 0, sectors_written = 0;
    std::string name;
    if (!(f >> major >> minor >> name >> reads >> merged >> sectors_read >> ms >> writes >>
          wmerged >> sectors_written)) {
      continue;
    }
    if (!disks.empty() && disks.count(name) == 0) continue;
    read += sectors_read * 512;  // the kernel counts 512-byte sectors whatever the device's
    written += sectors_written * 512;
  }
  c.disk_read_bytes = read;
  c.disk_write_bytes = written;
}

/// /proc/net/dev: "iface: rx_bytes rx_packets ... (8 fields) tx_bytes ...".
void read_network(const std::string& proc, NodeCounters& c) {
  std::ifstream in(proc + "/net/dev");
  if (!in) return;
  std::uint64_t recv = 0, sent = 0;
  for (std::string line; std::getline(in, line);) {
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;  // the two header lines
    std::istringstream f(line.substr(colon + 1));
    std::uint64_t v[9] = {};
    int n = 0;
    for (; n < 9 && (f >> v[n]); ++n) {
    }
    if (n < 9) continue;
    recv += v[0];
    sent += v[8];
  }
  c.net_recv_bytes = recv;
  c.net_sent_bytes = sent;
}

std::optional<double> delta(const std::optional<std::uint64_t>& now,
                            const std::optional<std::uint64_t>& before) {
  if (!now || !before) return std::nullopt;
  return *now >= *before ? static_cast<double>(*now - *before) : 0.0;
}

}  // namespace

NodeCounters read_node_counters(const std::string& proc, const std::string& sys) {
  NodeCounters c;
  read_cpu(proc, c);
  read_memory(proc, c);
  read_disks(proc, sys, c);
  read_network(proc, c);
  return c;
}

NodeSampler::NodeSampler(std::string proc, std::string sys)
    : proc_(std::move(proc)), sys_(std::move(sys)), previous_(read_node_counters(proc_, sys_)) {}

NodeSample NodeSampler::sample() {
  const NodeCounters now = read_node_counters(proc_, sys_);
  NodeSample s;
  if (const auto total = delta(now.cpu_total, previous_.cpu_total); total && *total > 0) {
    const auto busy = delta(now.cpu_busy, previous_.cpu_busy);
    if (busy) s.cpu_percent = std::min(100.0, *busy / *total * 100);
  }
  s.memory_percent = now.memory_percent;
  s.disk_read_bytes = delta(now.disk_read_bytes, previous_.disk_read_bytes);
  s.disk_write_bytes = delta(now.disk_write_bytes, previous_.disk_write_bytes);
  s.net_sent_bytes = delta(now.net_sent_bytes, previous_.net_sent_bytes);
  s.net_recv_bytes = delta(now.net_recv_bytes, previous_.net_recv_bytes);
  previous_ = now;
  return s;
}

}  // namespace asyncflow::detail
