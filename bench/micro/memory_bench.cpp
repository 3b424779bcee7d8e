// Memory per task with telemetry off (no observer): heap bytes a finished task keeps alive
// while its handle is held and after it is dropped (heap_tracking.cpp counts every C++
// allocation of the binary), and the peak RSS of a 1M-task noop run in a fresh process.
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "heap_tracking.hpp"

extern char** environ;

namespace asyncflow::bench {

namespace {

/// A field of /proc/self/status in kB ("VmHWM", "VmRSS"), or -1.
std::int64_t status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size(), field) == 0 && line.size() > field.size() &&
        line[field.size()] == ':') {
      return std::stoll(line.substr(field.size() + 1));
    }
  }
  return -1;
}

/// Sanity check of the new/delete replacement: plain, array and over-aligned forms.
bool heap_tracking_works() {
  const HeapStats before = heap_stats();
  auto* bytes = new char[1000];
  auto* aligned = new (std::align_val_t{256}) char[3000];
  benchmark::DoNotOptimize(bytes);
  benchmark::DoNotOptimize(aligned);
  const HeapStats during = heap_stats();
  const bool aligned_ok = reinterpret_cast<std::uintptr_t>(aligned) % 256 == 0;
  ::operator delete[](aligned, std::align_val_t{256});
  delete[] bytes;
  const HeapStats after = heap_stats();
  return aligned_ok && during.live_bytes - before.live_bytes >= 4000 &&
         during.live_blocks - before.live_blocks == 2 && after.live_bytes == before.live_bytes &&
         after.live_blocks == before.live_blocks;
}

void BM_RetainedBytesPerTask(benchmark::State& state) {
  if (!heap_tracking_works()) {
    state.SkipWithError("operator new/delete replacement is not counting correctly");
    return;
  }
  const auto n = static_cast<std::size_t>(state.range(0));
  const HeapStats at_start = heap_stats();
  double held = 0, released = 0, blocks = 0, allocs = 0;
  std::size_t created = 0;
  {
    ScopedEngine engine(noop_options());
    auto task = engine->function_task("plus_one", [](int x) { return x + 1; });
    std::vector<TaskHandle<int>> handles;  // the user's vector is not the engine's cost
    handles.reserve(n);
    task(0).wait();  // warm-up: per-thread dispatcher buffers are allocated once
    ++created;
    for (auto _ : state) {
      const HeapStats before = heap_stats();
      for (std::size_t i = 0; i < n; ++i) handles.push_back(task(static_cast<int>(i)));
      for (const auto& h : handles) h.wait();
      const HeapStats after_wait = heap_stats();
      handles.clear();
      const HeapStats after_drop = heap_stats();
      created += n;
      held += static_cast<double>(after_wait.live_bytes - before.live_bytes);
      blocks += static_cast<double>(after_wait.live_blocks - before.live_blocks);
      allocs += static_cast<double>(after_wait.allocations - before.allocations);
      released += static_cast<double>(after_drop.live_bytes - before.live_bytes);
    }
  }
  const HeapStats at_end = heap_stats();
  const double tasks = static_cast<double>(n) * static_cast<double>(state.iterations());
  state.counters["bytes_per_task_held"] = held / tasks;
  state.counters["bytes_per_task_released"] = released / tasks;
  state.counters["blocks_per_task_held"] = blocks / tasks;
  state.counters["allocs_per_task"] = allocs / tasks;
  // Everything the engine allocated, net of what it freed by the end of shutdown: a leak
  // detector. Expected 0, or a few hundred bytes when this is the first engine on the thread
  // (the scheduler's thread-local buffers outlive the engine).
  state.counters["bytes_left_after_shutdown"] =
      static_cast<double>(at_end.live_bytes - at_start.live_bytes);
}

/// A noop chain with only the last handle held: finished ancestors must be freed as the chain
/// advances (the engine drops inputs and upstream references at completion).
void BM_RetainedBytesChain(benchmark::State& state) {
  const auto depth = static_cast<std::size_t>(state.range(0));
  ScopedEngine engine(noop_options());
  auto inc = engine->function_task("inc", [](int x) { return x + 1; });
  inc(0).wait();  // warm-up
  double held = 0;
  for (auto _ : state) {
    const HeapStats before = heap_stats();
    TaskHandle<int> h = inc(0);
    for (std::size_t i = 1; i < depth; ++i) h = inc(h);
    h.wait();
    held += static_cast<double>(heap_stats().live_bytes - before.live_bytes);
  }
  state.counters["bytes_per_level_held"] =
      held / (static_cast<double>(depth) * static_cast<double>(state.iterations()));
}

/// Peak RSS of a 1M-task noop run (handles held, as in BM_IndependentNoop). VmHWM is a
/// process-wide high-water mark, so the workload runs in a fresh exec of this binary (a fork
/// would inherit this process's heap and RSS); the child prints its VmHWM before and after.
void BM_PeakRss1M(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::int64_t base_kb = -1, peak_kb = -1;
  for (auto _ : state) {
    int fds[2];
    if (pipe(fds) != 0) {
      state.SkipWithError("pipe() failed");
      return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::string flag(kPeakRssChildFlag), count = std::to_string(n);
    char name[] = "asyncflow_bench";
    char* argv[] = {name, flag.data(), count.data(), nullptr};
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    std::string out;
    char buf[256];
    for (ssize_t got; rc == 0 && (got = read(fds[0], buf, sizeof buf)) > 0;) {
      out.append(buf, static_cast<std::size_t>(got));
    }
    close(fds[0]);
    int status = 0;
    if (rc != 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0 || std::sscanf(out.c_str(), "%ld %ld", &base_kb, &peak_kb) != 2) {
      state.SkipWithError("peak-RSS child failed");
      return;
    }
  }
  state.counters["peak_rss_mb"] = static_cast<double>(peak_kb) / 1024.0;
  state.counters["baseline_rss_mb"] = static_cast<double>(base_kb) / 1024.0;
  state.counters["rss_bytes_per_task"] =
      static_cast<double>(peak_kb - base_kb) * 1024.0 / static_cast<double>(n);
}

BENCHMARK(BM_RetainedBytesPerTask)->Arg(100000)->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RetainedBytesChain)->Arg(100000)->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PeakRss1M)->Arg(1000000)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int run_peak_rss_child(std::size_t n) {
  const std::int64_t base_kb = status_kb("VmHWM");
  {
    ScopedEngine engine(noop_options());
    auto task = engine->function_task("plus_one", [](int x) { return x + 1; });
    std::vector<TaskHandle<int>> handles;
    handles.reserve(n);
    for (std::size_t i = 0; i < n; ++i) handles.push_back(task(static_cast<int>(i)));
    for (const auto& h : handles) h.wait();
  }
  const std::int64_t peak_kb = status_kb("VmHWM");
  std::printf("%ld %ld\n", static_cast<long>(base_kb), static_cast<long>(peak_kb));
  return base_kb > 0 && peak_kb > 0 ? 0 : 1;
}

}  // namespace asyncflow::bench
