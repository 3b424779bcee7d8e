// The node resource poller: its values against /proc on this machine (CPU in [0, 100], memory
// within 2 points of /proc/meminfo), disk and network deltas that move when the test writes a
// file or sends loopback traffic and never go negative when a counter resets (a /proc tree of
// the test's own), and a session that gets ResourceUpdate events, the node gauges and
// summary()["resources"] from it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asyncflow/common/error.hpp>
#include <asyncflow/telemetry/manager.hpp>
#include <asyncflow/telemetry/resource_poller.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/log_capture.hpp"
#include "support/scoped_env.hpp"

#include "support/sync.hpp"
#include "support/temp_path.hpp"
#include "telemetry/node_sampler.hpp"

namespace asyncflow {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

double meminfo_percent() {
  std::ifstream in("/proc/meminfo");
  double total = 0, available = 0, v = 0;
  std::string key, unit;
  while (in >> key >> v) {
    std::getline(in, unit);
    if (key == "MemTotal:") total = v;
    if (key == "MemAvailable:") available = v;
  }
  return (total - available) / total * 100;
}

TEST(NodeSampler, ValuesAreSaneOnThisMachine) {
  detail::NodeSampler sampler;
  std::this_thread::sleep_for(50ms);  // a window for the CPU share (a measurement, not a sync)
  const detail::NodeSample s = sampler.sample();
  ASSERT_TRUE(s.cpu_percent.has_value());
  EXPECT_GE(*s.cpu_percent, 0);
  EXPECT_LE(*s.cpu_percent, 100);
  ASSERT_TRUE(s.memory_percent.has_value());
  EXPECT_NEAR(*s.memory_percent, meminfo_percent(), 2);
  for (const auto& d :
       {s.disk_read_bytes, s.disk_write_bytes, s.net_sent_bytes, s.net_recv_bytes}) {
    ASSERT_TRUE(d.has_value());
    EXPECT_GE(*d, 0);
  }
}

TEST(NodeSampler, NetworkDeltasMoveWithLoopbackTraffic) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len), 0);
  detail::NodeSampler sampler;
  constexpr std::size_t kBytes = 8 << 20;
  std::thread reader([&] {
    const int c = ::accept(listener, nullptr, nullptr);
    std::vector<char> buf(1 << 16);
    std::size_t got = 0;
    while (got < kBytes) {
      const ssize_t n = ::read(c, buf.data(), buf.size());
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    ::close(c);
  });
  const int out = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(out, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::vector<char> chunk(1 << 16, 'x');
  for (std::size_t sent = 0; sent < kBytes;) {
    const ssize_t n = ::write(out, chunk.data(), chunk.size());
    ASSERT_GT(n, 0);
    sent += static_cast<std::size_t>(n);
  }
  ::close(out);
  reader.join();
  ::close(listener);
  const detail::NodeSample s = sampler.sample();
  EXPECT_GE(*s.net_sent_bytes, kBytes);
  EXPECT_GE(*s.net_recv_bytes, kBytes);
}

TEST(NodeSampler, DiskWriteDeltasMoveWhenAFileIsWritten) {
  const fs::path file = testing::fresh_temp_path("disk") += ".bin";
  detail::NodeSampler sampler;
  constexpr std::size_t kBytes = 16 << 20;
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  const std::vector<char> chunk(1 << 20, 'y');
  for (std::size_t done = 0; done < kBytes; done += chunk.size()) {
    ASSERT_EQ(::write(fd, chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
  }
  ASSERT_EQ(::fsync(fd), 0);  // on the disk, not only in the page cache
  ::close(fd);
  const detail::NodeSample s = sampler.sample();
  fs::remove(file);
  EXPECT_GE(*s.disk_write_bytes, kBytes * 0.95);
}

/// A /proc and /sys of the test's own, with counters it sets.
struct FakeKernel {
  fs::path root = testing::fresh_temp_path("kernel");
  FakeKernel() {
    fs::create_directories(root / "proc/net");
    fs::create_directories(root / "sys/block/vda");  // vda1 is a partition: not in /sys/block
  }
  void write(std::uint64_t cpu, std::uint64_t sectors, std::uint64_t net) {
    std::ofstream(root / "proc/stat") << "cpu  " << cpu << " 0 " << cpu << " 1000 0 0 0 0 0 0\n";
    std::ofstream(root / "proc/meminfo") << "MemTotal: 1000 kB\nMemFree: 100 kB\n"
                                            "MemAvailable: 250 kB\n";
    std::ofstream(root / "proc/diskstats")
        << " 253 0 vda 1 0 " << sectors << " 0 1 0 " << sectors << " 0 0 0 0\n"
        << " 253 1 vda1 1 0 " << sectors << " 0 1 0 " << sectors << " 0 0 0 0\n";
    std::ofstream(root / "proc/net/dev")
        << "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n"
        << "    lo: " << net << " 1 0 0 0 0 0 0 " << net << " 1 0 0 0 0 0 0\n";
  }
  std::string proc() const { return (root / "proc").string(); }
  std::string sys() const { return (root / "sys").string(); }
};

TEST(NodeSampler, ACounterThatResetsGivesZeroNotANegativeDelta) {
  FakeKernel k;
  k.write(100, 10, 1000);
  detail::NodeSampler sampler(k.proc(), k.sys());
  k.write(150, 30, 4000);
  detail::NodeSample s = sampler.sample();
  EXPECT_DOUBLE_EQ(*s.memory_percent, 75);
  EXPECT_DOUBLE_EQ(*s.cpu_percent, 100);  // 100 busy jiffies of 100, idle unchanged
  EXPECT_DOUBLE_EQ(*s.disk_read_bytes, 20 * 512) << "the partition is not counted again";
  EXPECT_DOUBLE_EQ(*s.net_sent_bytes, 3000);
  k.write(10, 5, 7);  // counters reset (a reboot of a container, a device that went away)
  s = sampler.sample();
  EXPECT_DOUBLE_EQ(*s.disk_read_bytes, 0);
  EXPECT_DOUBLE_EQ(*s.disk_write_bytes, 0);
  EXPECT_DOUBLE_EQ(*s.net_sent_bytes, 0);
  EXPECT_DOUBLE_EQ(*s.net_recv_bytes, 0);
  EXPECT_FALSE(s.cpu_percent.has_value()) << "no elapsed jiffies: no share, not a wrong one";
  // No /proc at all: no values, no error.
  detail::NodeSampler none("/nonexistent/proc", "/nonexistent/sys");
  s = none.sample();
  EXPECT_FALSE(s.cpu_percent || s.memory_percent || s.disk_read_bytes || s.net_sent_bytes);
}

TEST(NodeResourcePoller, ASessionGetsSamplesTheNodeGaugesAndTheSummary) {
  testing::Latch three(3);
  auto fast = std::make_shared<NodeResourcePoller>(NodeResourcePollerOptions{.backend = "node"});
  auto tm2 = TelemetryManager::start("poll2", {.resource_poll_interval = 0.05, .adapters = {fast}});
  auto sub2 = tm2->subscribe([&](const Event& e) {
    if (e.type() == "ResourceUpdate") three.count_down();
  });
  ASSERT_TRUE(three.wait_for(30s));
  ASSERT_TRUE(tm2->stop());
  EXPECT_GE(fast->samples(), 3u);
  const TelemetrySummary s = tm2->summary();
  const std::string key = "node/" + fast->node_id();
  ASSERT_EQ(s.resources.count(key), 1u) << s.to_json();
  ASSERT_TRUE(s.resources.at(key).cpu_percent.has_value());
  EXPECT_GE(*s.resources.at(key).cpu_percent, 0);
  EXPECT_LE(*s.resources.at(key).cpu_percent, 100);
  const MetricsSnapshot m = tm2->read_metrics();
  EXPECT_GT(m.total("node_memory_utilization"), 0);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  EXPECT_EQ(NodeResourcePoller().node_id(), host);
}

TEST(NodeResourcePoller, ABadIntervalIsAClearError) {
  NodeResourcePoller p;
  auto tm = TelemetryManager::start("bad-interval");
  EXPECT_THROW(p.start(*tm, 0), Error);
  EXPECT_THROW(p.start(*tm, -1), Error);
  tm->stop();
}

}  // namespace
}  // namespace asyncflow

namespace asyncflow {
namespace {

/// The extra field `name` of `e`, or null.
const FieldValue* field_of(const Event& e, const char* name) {
  const auto i = e.event_type()->index_of(name);
  return i ? &e.values()[*i] : nullptr;
}

/// ResourceUpdate events of a session whose poller reads `library`, after `node_samples` node
/// samples.
struct GpuRun {
  std::vector<Event> per_gpu, per_node;
  std::vector<std::string> log;
};

GpuRun run_with_gpus(const std::string& library, std::size_t node_samples) {
  GpuRun out;
  testing::LogCapture log;
  auto poller = std::make_shared<NodeResourcePoller>(
      NodeResourcePollerOptions{.backend = "node", .node_id = "", .nvml_library = library});
  testing::Latch enough(node_samples);
  std::mutex mu;
  auto tm = TelemetryManager::start("gpu", {.resource_poll_interval = 0.02, .adapters = {poller}});
  auto sub = tm->subscribe([&](const Event& e) {
    if (e.type() != "ResourceUpdate") return;
    std::lock_guard lock(mu);
    const FieldValue* id = field_of(e, "gpu_id");
    if (id != nullptr && !std::holds_alternative<std::monostate>(*id)) {
      out.per_gpu.push_back(e);
    } else {
      out.per_node.push_back(e);
      enough.count_down();
    }
  });
  EXPECT_TRUE(enough.wait_for(30s));
  tm->stop();
  sub.unsubscribe();
  out.log = log.lines();
  return out;
}

double number(const Event& e, const char* name) {
  const FieldValue* v = field_of(e, name);
  if (v == nullptr) return -1;
  if (const auto* d = std::get_if<double>(v)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(v)) return static_cast<double>(*i);
  return -1;
}

TEST(NodeResourcePollerGpus, EachDeviceAndTheBusiestForTheNode) {
  testing::ScopedEnv mode("FAKE_NVML", "two");
  const GpuRun r = run_with_gpus(ASYNCFLOW_FAKE_NVML, 3);
  ASSERT_GE(r.per_node.size(), 3u);
  ASSERT_GE(r.per_gpu.size(), 6u);
  for (const Event& e : r.per_node) EXPECT_EQ(number(e, "gpu_percent"), 70) << "the busiest";
  for (const Event& e : r.per_gpu) {
    const double id = number(e, "gpu_id");
    EXPECT_EQ(number(e, "gpu_percent"), id == 0 ? 30 : 70);
    EXPECT_EQ(std::get<std::string>(*field_of(e, "resource_scope")), "per_gpu");
    const FieldValue* used = e.attribute("gpu_memory_used_bytes");
    ASSERT_NE(used, nullptr);
    EXPECT_EQ(std::get<std::int64_t>(*used), std::int64_t{1} << 30);
  }
  EXPECT_TRUE(r.log.empty());
}

TEST(NodeResourcePollerGpus, AFailingDeviceIsSaidOnceAndLeftOut) {
  for (const char* m : {"device1_fails", "disappears"}) {
    testing::ScopedEnv mode("FAKE_NVML", m);
    const GpuRun r = run_with_gpus(ASYNCFLOW_FAKE_NVML, 5);
    std::size_t warnings = 0;
    for (const auto& l : r.log)
      warnings += l.find("GPU 1 failed (GPU is lost)") != std::string::npos;
    EXPECT_EQ(warnings, 1u) << m;
    // The other device goes on; the node's share follows the devices still read.
    EXPECT_EQ(number(r.per_node.back(), "gpu_percent"), 30) << m;
    EXPECT_EQ(number(r.per_gpu.back(), "gpu_id"), 0) << m;
  }
}

TEST(NodeResourcePollerGpus, NoLibraryOrAFailedInitMeansNoGpuFields) {
  {
    const GpuRun r = run_with_gpus("/nonexistent/libnvidia-ml.so.1", 2);
    EXPECT_TRUE(r.per_gpu.empty());
    EXPECT_EQ(number(r.per_node.back(), "gpu_percent"), -1) << "null";
    EXPECT_TRUE(r.log.empty()) << "absent is not an error";
  }
  {
    testing::ScopedEnv mode("FAKE_NVML", "init_fails");
    const GpuRun r = run_with_gpus(ASYNCFLOW_FAKE_NVML, 2);
    EXPECT_TRUE(r.per_gpu.empty());
    ASSERT_EQ(r.log.size(), 1u);
    EXPECT_NE(r.log[0].find("nvmlInit failed (Driver Not Loaded)"), std::string::npos);
    EXPECT_GE(number(r.per_node.back(), "cpu_percent"), 0) << "the rest goes on";
  }
}

}  // namespace
}  // namespace asyncflow
