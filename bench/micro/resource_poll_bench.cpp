// The node resource poller's cost (issue #15's targets):
//  - BM_ResourcePoll: one sample (< 200 us): /proc/stat, /proc/meminfo, /proc/diskstats (whole
//    disks from /sys/block) and /proc/net/dev read and turned into percentages and deltas.
//  - BM_ResourcePollerCpuShare: the real poller of a telemetry session at a 1 s interval, for
//    kSeconds of an idle engine: the CPU time of its thread ("af-resources") and of the whole
//    process (the dispatcher handling its ResourceUpdate events and gauges included) as a share
//    of the wall time (target < 0.5 %).
#include <benchmark/benchmark.h>

#include <atomic>
#include <memory>
#include <thread>

#include "bench_support.hpp"
#include "telemetry/node_sampler.hpp"

namespace asyncflow::bench {
namespace {

void BM_ResourcePoll(benchmark::State& state) {
  detail::NodeSampler sampler;
  for (auto _ : state) {
    detail::NodeSample s = sampler.sample();
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_ResourcePoll)->Unit(benchmark::kMicrosecond);

constexpr double kSeconds = 10;

void BM_ResourcePollerCpuShare(benchmark::State& state) {
  for (auto _ : state) {
    ScopedEngine engine(noop_options());
    const double process_before = process_cpu_seconds();
    Stopwatch sw;
    auto telemetry = engine->start_telemetry({.resource_poll_interval = 1.0});
    auto updates = std::make_shared<std::atomic<int>>(0);
    telemetry->subscribe([updates](const Event& e) {
      if (e.type() == "ResourceUpdate") updates->fetch_add(1, std::memory_order_relaxed);
    });
    std::this_thread::sleep_for(std::chrono::duration<double>(kSeconds));
    const double poller = thread_cpu_seconds("af-resources");  // read while it runs
    if (!telemetry->flush(60)) {
      state.SkipWithError("telemetry did not drain");
      break;
    }
    const double wall = sw.seconds();
    const double process = process_cpu_seconds() - process_before;
    telemetry->stop();
    state.SetIterationTime(wall);
    state.counters["poller_cpu_percent"] = benchmark::Counter(100 * poller / wall);
    state.counters["process_cpu_percent"] = benchmark::Counter(100 * process / wall);
    state.counters["resource_updates"] = benchmark::Counter(updates->load());
  }
}
BENCHMARK(BM_ResourcePollerCpuShare)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace asyncflow::bench
