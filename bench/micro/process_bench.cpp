// Executable tasks against the floor: BM_ExecTrue runs n `/bin/true` tasks through the engine
// and ProcessBackend; BM_RawSpawn runs the same n programs with a bare posix_spawn + waitpid
// loop, at the same concurrency (kConcurrency children alive at most). Target (issue #4):
// ExecTrue >= 2,000 tasks/s and >= 0.8x RawSpawn, read from one run. BM_ExecTrueNoUsage is
// BM_ExecTrue without per-task usage measurement (issue #15: usage costs <= 5 %).
//
// BM_ProcessFunction: n calls of a registered no-op function through kConcurrency worker
// processes (this binary, see main.cpp): JSON both ways over a Unix socket per call; with the
// per-call usage measured by the worker, and without it (BM_ProcessFunctionNoUsage).
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstddef>
#include <string>
#include <vector>

#include "asyncflow/core/registered_function.hpp"
#include "bench_support.hpp"

extern char** environ;

namespace asyncflow::bench {
namespace {

constexpr std::size_t kConcurrency = 4;

/// n /bin/true tasks, measuring their usage (and peak memory) or not.
void exec_true(benchmark::State& state, bool measure_usage, bool measure_peak = true) {
  const auto n = static_cast<std::size_t>(state.range(0));
  ScopedEngine engine(
      EngineOptions{.backends = {ProcessBackend::create({.max_processes = kConcurrency,
                                                         .measure_usage = measure_usage,
                                                         .measure_peak_memory = measure_peak})},
                    .work_dir = work_root()});
  auto task = engine->executable_task("true", [] { return std::vector<std::string>{"/bin/true"}; });
  std::vector<TaskHandle<std::string>> handles;
  handles.reserve(n);
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) handles.push_back(task());
    for (const auto& h : handles) benchmark::DoNotOptimize(h.get());
    handles.clear();
  }
  set_throughput(state, n);
}

void BM_ExecTrue(benchmark::State& state) {
  exec_true(state, /*measure_usage=*/true);
}
BENCHMARK(BM_ExecTrue)->Arg(2000)->Unit(benchmark::kMillisecond)->UseRealTime();

// Issue #15's cost of per-task usage: BM_ExecTrue at most 5 % slower than this, one run.
void BM_ExecTrueNoUsage(benchmark::State& state) {
  exec_true(state, /*measure_usage=*/false);
}
BENCHMARK(BM_ExecTrueNoUsage)->Arg(2000)->Unit(benchmark::kMillisecond)->UseRealTime();

// Usage without peak memory: no cgroup per task.
void BM_ExecTrueNoPeakMemory(benchmark::State& state) {
  exec_true(state, /*measure_usage=*/true, /*measure_peak=*/false);
}
BENCHMARK(BM_ExecTrueNoPeakMemory)->Arg(2000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_RawSpawn(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  char program[] = "/bin/true";
  char* argv[] = {program, nullptr};
  for (auto _ : state) {
    std::size_t started = 0;
    std::size_t alive = 0;
    while (started < n || alive > 0) {
      if (started < n && alive < kConcurrency) {
        pid_t pid;
        if (::posix_spawn(&pid, program, nullptr, nullptr, argv, environ) != 0) {
          state.SkipWithError("posix_spawn failed");
          return;
        }
        ++started;
        ++alive;
        continue;
      }
      int status;
      if (::waitpid(-1, &status, 0) > 0) --alive;
    }
  }
  set_throughput(state, n);
}
BENCHMARK(BM_RawSpawn)->Arg(2000)->Unit(benchmark::kMillisecond)->UseRealTime();

const auto kNoop = register_function("bench.noop", [](int x) { return x; });

/// n calls of kNoop through kConcurrency workers, each call measured by its worker or not.
void process_function(benchmark::State& state, bool measure_usage, bool measure_peak = true) {
  const auto n = static_cast<std::size_t>(state.range(0));
  ScopedEngine engine(
      EngineOptions{.backends = {ProcessBackend::create({.function_workers = kConcurrency,
                                                         .measure_usage = measure_usage,
                                                         .measure_peak_memory = measure_peak})},
                    .work_dir = work_root()});
  auto task = engine->function_task(kNoop);
  std::vector<TaskHandle<int>> handles;
  handles.reserve(n);
  // Start every worker outside the timed loop.
  for (std::size_t i = 0; i < 4 * kConcurrency; ++i) handles.push_back(task(0));
  for (const auto& h : handles) h.get();
  handles.clear();
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) handles.push_back(task(static_cast<int>(i)));
    for (const auto& h : handles) benchmark::DoNotOptimize(h.get());
    handles.clear();
  }
  set_throughput(state, n);
}

void BM_ProcessFunction(benchmark::State& state) {
  process_function(state, /*measure_usage=*/true);
}
BENCHMARK(BM_ProcessFunction)->Arg(2000)->Unit(benchmark::kMillisecond)->UseRealTime();

// Issue #15: the per-call usage (getrusage, /proc/self/io, clear_refs and VmHWM in the worker)
// against none, one run.
void BM_ProcessFunctionNoUsage(benchmark::State& state) {
  process_function(state, /*measure_usage=*/false);
}
BENCHMARK(BM_ProcessFunctionNoUsage)->Arg(2000)->Unit(benchmark::kMillisecond)->UseRealTime();

// Usage without the peak: no clear_refs write and /proc/self/status read per call.
void BM_ProcessFunctionNoPeakMemory(benchmark::State& state) {
  process_function(state, /*measure_usage=*/true, /*measure_peak=*/false);
}
BENCHMARK(BM_ProcessFunctionNoPeakMemory)->Arg(2000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace asyncflow::bench
