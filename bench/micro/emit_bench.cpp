// Sustained EventBus throughput: one producer emits n pre-built events into a kBlock bus with
// a trivial handler, then flush()es. The timed region covers every emit and the wait until
// the dispatcher has handled the last event, so the rate is end to end (claim, move in, wake,
// move out, handler call, destroy), not just the producer's side. Building the events is
// excluded (PauseTiming), since it costs more than emitting them (uuid, allocations).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "asyncflow/telemetry/event_bus.hpp"

namespace asyncflow::bench {
namespace {

void BM_Emit(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::uint64_t seen = 0;  // dispatcher thread only; read after stop()
  EventBus bus({.overflow = OverflowPolicy::kBlock},
               [&seen](std::span<Event> batch) { seen += batch.size(); });
  const Event prototype =
      make_event(events::TaskSubmitted(), {.session_id = "bench", .backend = "bench"});
  std::vector<Event> events;
  events.reserve(n);

  for (auto _ : state) {
    state.PauseTiming();
    events.clear();  // moved-from shells of the last round
    for (std::size_t i = 0; i < n; ++i) events.push_back(prototype);
    state.ResumeTiming();

    for (auto& e : events) {
      if (!bus.emit(std::move(e))) {
        state.SkipWithError("emit refused under kBlock");
        break;
      }
    }
    if (!bus.flush(std::chrono::seconds(60))) {
      state.SkipWithError("flush timed out");
      break;
    }
  }
  const bool stopped = bus.stop(std::chrono::seconds(60));
  if (!stopped || bus.dropped() != 0 ||
      seen != n * static_cast<std::uint64_t>(state.iterations())) {
    state.SkipWithError("events lost");
  }
  state.counters["events_per_second"] =
      benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}

// Real time: the producer spends the end of each round blocked in flush(). MinTime 2 s: a
// 1M-event round takes ~0.1-0.2 s, so a run averages 10+ rounds on the noisy shared machine.
BENCHMARK(BM_Emit)->Arg(1 << 20)->UseRealTime()->MinTime(2.0)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace asyncflow::bench
