// Shared helpers of the micro-benchmarks: engines that clean up their work directory, the
// option sets every benchmark uses, and a wall-clock stopwatch for manually timed regions.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "asyncflow/asyncflow.hpp"

namespace asyncflow::bench {

/// Sets the `tasks_per_second` counter: n tasks per iteration, over the benchmark's time.
inline void set_throughput(benchmark::State& state, std::size_t n) {
  state.counters["tasks_per_second"] =
      benchmark::Counter(static_cast<double>(n) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

/// The sizes and timing of the throughput benchmarks (1k, 100k and 1M tasks, wall clock, at
/// least 1 s each): the 1M case runs a few iterations of a few hundred ms (1 when the machine
/// is loaded); smaller n repeat more. Use as `BENCHMARK(f)->Apply(throughput_sizes)`.
inline void throughput_sizes(benchmark::internal::Benchmark* b) {
  b->Arg(1000)->Arg(100000)->Arg(1000000)->UseRealTime()->MinTime(1.0);
  b->Unit(benchmark::kMillisecond);
}

/// Parent of every benchmark engine's work dir. An engine creates `{root}/{uid}` at once;
/// keeping them out of the cwd means a benchmark run leaves nothing behind.
inline std::filesystem::path work_root() {
  return std::filesystem::temp_directory_path() / "asyncflow_bench";
}

/// Engine options with telemetry off (no observer is ever installed) and every task on a
/// NoopBackend: measures pure orchestration.
inline EngineOptions noop_options() {
  return EngineOptions{.work_dir = work_root(), .dry_run = true};
}

/// Engine options with one ThreadPoolBackend of `threads` workers (0 = hardware concurrency).
inline EngineOptions thread_pool_options(std::size_t threads = 0) {
  return EngineOptions{.backends = {ThreadPoolBackend::create({.threads = threads})},
                       .work_dir = work_root()};
}

/// CPU seconds used so far by this process's threads named `name` (the kernel's schedstat:
/// time on a CPU, in ns), read while they run; 0 when there is none.
inline double thread_cpu_seconds(std::string_view name) {
  double total = 0;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream comm(task.path() / "comm");
    std::string thread_name;
    if (!std::getline(comm, thread_name) || thread_name != name) continue;
    std::ifstream schedstat(task.path() / "schedstat");
    double ns = 0;
    if (schedstat >> ns) total += ns / 1e9;
  }
  return total;
}

/// CPU seconds (user and system) this process has used so far, all threads.
inline double process_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

/// Owns a WorkflowEngine; on destruction shuts it down and removes its work dir.
/// Not thread-safe (one benchmark thread owns it).
class ScopedEngine {
 public:
  explicit ScopedEngine(EngineOptions options)
      : engine_(WorkflowEngine::create(std::move(options))) {}
  ~ScopedEngine() {
    std::filesystem::path dir = engine_->work_dir();
    engine_->shutdown();
    engine_.reset();
    std::error_code ec;  // best effort: a leftover empty dir is harmless
    std::filesystem::remove_all(dir, ec);
    std::filesystem::remove(work_root(), ec);  // fails (fine) while other runs use it
  }
  ScopedEngine(const ScopedEngine&) = delete;
  ScopedEngine& operator=(const ScopedEngine&) = delete;

  WorkflowEngine* operator->() const noexcept { return engine_.get(); }
  WorkflowEngine& operator*() const noexcept { return *engine_; }

 private:
  std::unique_ptr<WorkflowEngine> engine_;
};

/// Monotonic wall clock, in seconds.
class Stopwatch {
 public:
  Stopwatch() noexcept : start_(Clock::now()) {}
  void restart() noexcept { start_ = Clock::now(); }
  double seconds() const noexcept {
    return std::chrono::duration<double>(Clock::now() - start_).count();
  }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point start_;
};

/// Creates n independent noop tasks ("plus_one") on `engine`, gets every value; returns the
/// elapsed seconds. The workload of BM_IndependentNoop and of the telemetry overhead benchmarks.
inline double run_noop_tasks(WorkflowEngine& engine, std::size_t n) {
  auto task = engine.function_task("plus_one", [](int x) { return x + 1; });
  std::vector<TaskHandle<int>> handles;
  handles.reserve(n);
  Stopwatch sw;
  for (std::size_t i = 0; i < n; ++i) handles.push_back(task(static_cast<int>(i)));
  for (const auto& h : handles) benchmark::DoNotOptimize(h.get());
  handles.clear();
  return sw.seconds();
}

/// argv[1] that makes the binary run the peak-RSS workload as a child (see memory_bench.cpp).
inline constexpr std::string_view kPeakRssChildFlag = "--asyncflow-peak-rss-child";
/// The child's entry point: runs `n` noop tasks, prints "<VmHWM before kB> <VmHWM after kB>".
int run_peak_rss_child(std::size_t n);

}  // namespace asyncflow::bench
