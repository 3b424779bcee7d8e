// Chain latency: `depth` tasks, each depending on the previous (h = inc(h)); counter
// us_per_level = measured microseconds / depth. Manual timing of the measured region:
//  - BM_ChainLatency/noop/<depth>: a noop task completes inside its creation, so building the
//    chain *is* resolving it; measured from the first creation to the last wait.
//  - BM_ChainLatency/thread_pool/<depth>: the whole chain is built first behind a gate task
//    that holds a pool worker; measured from the gate task's return to the last task's
//    completion being seen by the waiting thread: pure resolution latency (plus one wake-up
//    of the waiter). Counter build_us_per_level reports the (untimed) creation cost.
//  - BM_ChainLatency/noop_gated/<depth>: extra; as thread_pool, but the chain runs on a
//    NoopBackend (gate on a 1-thread pool): resolution latency without task bodies or pool.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <utility>

#include "bench_support.hpp"

namespace asyncflow::bench {
namespace {

/// Holds one pool worker inside a task until opened. The holder blocks (it does not spin: on
/// a loaded machine the scheduler penalises a spinning thread, which then starts late) and
/// stamps the time it resumes, so the measurement starts when the gate task returns and the
/// wake-up of the holder is not part of it.
/// Thread-safe: hold() runs on a pool worker, the rest on the benchmark thread.
class Gate {
 public:
  using Clock = std::chrono::steady_clock;

  int hold() noexcept {
    started_.store(true, std::memory_order_release);
    started_.notify_one();
    open_.wait(false, std::memory_order_acquire);
    opened_at_ = Clock::now();
    return 0;
  }
  void reset() noexcept {
    started_.store(false, std::memory_order_relaxed);
    open_.store(false, std::memory_order_relaxed);
  }
  void wait_started() const noexcept { started_.wait(false, std::memory_order_acquire); }
  void open() noexcept {
    open_.store(true, std::memory_order_release);
    open_.notify_one();
  }
  /// When hold() resumed. Read it only after a task depending on the gate finished: that
  /// completion orders the write before the read.
  Clock::time_point opened_at() const noexcept { return opened_at_; }

 private:
  std::atomic<bool> started_{false};
  std::atomic<bool> open_{false};
  Clock::time_point opened_at_;
};

void set_latency(benchmark::State& state, double measured_s, double build_s) {
  const double levels =
      static_cast<double>(state.range(0)) * static_cast<double>(state.iterations());
  state.counters["us_per_level"] = measured_s * 1e6 / levels;
  if (build_s > 0) state.counters["build_us_per_level"] = build_s * 1e6 / levels;
}

void BM_ChainLatencyNoop(benchmark::State& state) {
  const auto depth = static_cast<std::size_t>(state.range(0));
  ScopedEngine engine(noop_options());
  auto inc = engine->function_task("inc", [](int x) { return x + 1; });
  double total = 0;
  for (auto _ : state) {
    Stopwatch clock;
    TaskHandle<int> h = inc(0);
    for (std::size_t i = 1; i < depth; ++i) h = inc(h);
    h.wait();
    const double s = clock.seconds();
    state.SetIterationTime(s);
    total += s;
    if (h.get() != 0) {  // dry run: every task yields int{}
      state.SkipWithError("wrong chain result");
      break;
    }
  }
  set_latency(state, total, 0);
}

/// Builds gate -> depth x inc, opens the gate, times from the gate task's return until the
/// waiting thread sees the last task finished.
/// `inc` runs on the engine's default backend, the gate on `gate_options.backend`.
void run_gated_chain(benchmark::State& state, EngineOptions options,
                     const TaskOptions& gate_options, int expected_last) {
  const auto depth = static_cast<std::size_t>(state.range(0));
  ScopedEngine engine(std::move(options));
  Gate gate;
  auto hold = engine->function_task(
      "gate", [&gate] { return gate.hold(); }, gate_options);
  auto inc = engine->function_task("inc", [](int x) { return x + 1; });
  double total = 0;
  double build = 0;
  for (auto _ : state) {
    gate.reset();
    Stopwatch build_clock;
    TaskHandle<int> h = hold();
    for (std::size_t i = 0; i < depth; ++i) h = inc(h);
    build += build_clock.seconds();
    gate.wait_started();

    gate.open();
    h.wait();
    const double s = std::chrono::duration<double>(Gate::Clock::now() - gate.opened_at()).count();
    state.SetIterationTime(s);
    total += s;
    if (h.get() != expected_last) {
      state.SkipWithError("wrong chain result");
      break;
    }
  }
  set_latency(state, total, build);
}

void BM_ChainLatencyThreadPool(benchmark::State& state) {
  run_gated_chain(state, thread_pool_options(), TaskOptions{}, static_cast<int>(state.range(0)));
}

void BM_ChainLatencyNoopGated(benchmark::State& state) {
  EngineOptions options{.backends = {NoopBackend::create("noop"),
                                     ThreadPoolBackend::create({.name = "gate", .threads = 1})},
                        .work_dir = work_root()};
  run_gated_chain(state, std::move(options), TaskOptions{.backend = "gate"}, 0);
}

BENCHMARK(BM_ChainLatencyNoop)
    ->Name("BM_ChainLatency/noop")
    ->Arg(100)
    ->Arg(1000)
    ->Arg(10000)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ChainLatencyThreadPool)
    ->Name("BM_ChainLatency/thread_pool")
    ->Arg(100)
    ->Arg(1000)
    ->Arg(10000)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ChainLatencyNoopGated)
    ->Name("BM_ChainLatency/noop_gated")
    ->Arg(100)
    ->Arg(1000)
    ->Arg(10000)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace asyncflow::bench
