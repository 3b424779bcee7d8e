// One sample of the node resource poller (issue #15's target: < 200 us): /proc/stat,
// /proc/meminfo, /proc/diskstats (whole disks from /sys/block) and /proc/net/dev read and
// turned into percentages and deltas. cpu_share_at_1s_percent is what the poller's thread
// costs at a 1 s interval: one sample's CPU time per second (target < 0.5 %).
#include <benchmark/benchmark.h>

#include "telemetry/node_sampler.hpp"

namespace asyncflow::bench {
namespace {

void BM_ResourcePoll(benchmark::State& state) {
  detail::NodeSampler sampler;
  for (auto _ : state) {
    detail::NodeSample s = sampler.sample();
    benchmark::DoNotOptimize(s);
  }
  state.counters["cpu_share_at_1s_percent"] =
      benchmark::Counter(static_cast<double>(state.iterations()) / 100,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_ResourcePoll)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace asyncflow::bench
