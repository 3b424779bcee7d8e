// Cost of full telemetry (events, spans, metrics, JSONL checkpoint) per task, against the
// same workload with telemetry off, measured alternately in the same run.
//
// Each iteration runs n independent noop tasks twice: once on an engine without telemetry
// (the baseline, BM_IndependentNoop's workload) and once on an engine whose telemetry writes
// a checkpoint to a temp dir. The telemetry run is timed until every event of the batch has
// been processed and written (flush), so a dispatcher that falls behind shows. The bus uses
// the blocking overflow policy: nothing may be dropped, and a drop fails the benchmark.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <filesystem>
#include <vector>

#include "bench_support.hpp"

namespace asyncflow::bench {
namespace {

/// Creates n noop tasks, gets every value; returns the elapsed seconds.
double run_noop_tasks(WorkflowEngine& engine, std::size_t n) {
  auto task = engine.function_task("plus_one", [](int x) { return x + 1; });
  std::vector<TaskHandle<int>> handles;
  handles.reserve(n);
  Stopwatch sw;
  for (std::size_t i = 0; i < n; ++i) handles.push_back(task(static_cast<int>(i)));
  for (const auto& h : handles) benchmark::DoNotOptimize(h.get());
  handles.clear();
  return sw.seconds();
}

void BM_IndependentNoopTelemetry(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto dir = work_root() / "telemetry";
  double base_total = 0;
  double telemetry_total = 0;
  std::uint64_t events = 0;
  for (auto _ : state) {
    {
      ScopedEngine engine(noop_options());
      base_total += run_noop_tasks(*engine, n);
    }
    ScopedEngine engine(noop_options());
    TelemetryOptions options;
    options.checkpoint_path = dir;
    options.bus.overflow = OverflowPolicy::kBlock;
    auto telemetry = engine->start_telemetry(options);
    Stopwatch sw;
    run_noop_tasks(*engine, n);
    if (!telemetry->flush(600)) {
      state.SkipWithError("telemetry did not drain");
      break;
    }
    const double elapsed = sw.seconds();
    state.SetIterationTime(elapsed);
    telemetry_total += elapsed;
    events += telemetry->processed_events();
    telemetry->stop();
    if (telemetry->dropped_events() != 0) {
      state.SkipWithError("telemetry dropped events");
      break;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  const auto iters = static_cast<double>(state.iterations());
  const double tasks = static_cast<double>(n) * iters;
  state.counters["tasks_per_second"] = benchmark::Counter(tasks / telemetry_total);
  state.counters["baseline_tasks_per_second"] = benchmark::Counter(tasks / base_total);
  state.counters["us_per_task_added"] =
      benchmark::Counter((telemetry_total - base_total) / tasks * 1e6);
  state.counters["events_per_task"] = benchmark::Counter(static_cast<double>(events) / tasks);
}

BENCHMARK(BM_IndependentNoopTelemetry)
    ->Arg(1000)
    ->Arg(100000)
    ->Arg(1000000)
    ->UseManualTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace asyncflow::bench
