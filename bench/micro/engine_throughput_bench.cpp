// Throughput of independent tasks: per-task cost of creating, scheduling, completing and
// waiting for n trivial function tasks, on the noop backend (pure orchestration) and on the
// thread pool. Compare with BM_BareThreadPool (bare_pool_bench.cpp), the floor.
//
// Each iteration does what a user would: create n tasks keeping their handles in a reserved
// vector, get() every one, then drop the handles. Dropping is timed too: freeing a finished
// task is part of its cost. The engine (and its pool) is built once per run, outside the loop.
#include <benchmark/benchmark.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "bench_support.hpp"

namespace asyncflow::bench {
namespace {

/// Creates n tasks, keeps the handles, gets every value. `expect(i)` is task i's value.
template <std::invocable<int> Expect>
void run_independent(benchmark::State& state, EngineOptions options, Expect expect) {
  const auto n = static_cast<std::size_t>(state.range(0));
  ScopedEngine engine(std::move(options));
  auto task = engine->function_task("plus_one", [](int x) { return x + 1; });
  std::vector<TaskHandle<int>> handles;
  handles.reserve(n);
  std::int64_t expected = 0;
  for (std::size_t i = 0; i < n; ++i) expected += expect(static_cast<int>(i));

  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) handles.push_back(task(static_cast<int>(i)));
    std::int64_t sum = 0;
    for (const auto& h : handles) sum += h.get();
    handles.clear();
    if (sum != expected) {
      state.SkipWithError("wrong task results");
      break;
    }
  }
  set_throughput(state, n);
}

void BM_IndependentNoop(benchmark::State& state) {
  // Dry run: bodies never run, every task yields int{}.
  run_independent(state, noop_options(), [](int) { return 0; });
}

void BM_IndependentThreadPool(benchmark::State& state) {
  run_independent(state, thread_pool_options(), [](int i) { return i + 1; });
}

/// Variant without a handle vector: each handle is dropped as soon as the task is created, so
/// a noop task is freed before the next one is allocated (hot cache, no 1M live nodes). The
/// gap to BM_IndependentNoop is the cost of holding the graph in memory.
void BM_IndependentNoopNoHandles(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  ScopedEngine engine(noop_options());
  auto task = engine->function_task("plus_one", [](int x) { return x + 1; });
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) benchmark::DoNotOptimize(task(static_cast<int>(i)));
    if (engine->active_tasks() != 0) {  // noop completes every task inside its creation
      state.SkipWithError("noop tasks still active after creation");
      break;
    }
  }
  set_throughput(state, n);
}

BENCHMARK(BM_IndependentNoop)->Apply(throughput_sizes);
BENCHMARK(BM_IndependentNoopNoHandles)->Apply(throughput_sizes);
BENCHMARK(BM_IndependentThreadPool)->Apply(throughput_sizes);

}  // namespace
}  // namespace asyncflow::bench
