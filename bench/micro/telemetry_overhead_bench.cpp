// Cost of full telemetry per task, against the same workload with telemetry off, measured
// alternately in the same run (issue #12's targets):
//  - BM_IndependentNoopTelemetry: events, spans, metrics and the JSONL checkpoint;
//  - BM_IndependentNoopTelemetryNoCheckpoint: the same without a file (and ...NoLinger: with a
//    dispatcher that does not wait for batches to fill);
//  - BM_ThreadPoolTelemetry and ...NoUsage: no-op tasks on a thread pool with telemetry, with
//    and without the per-task usage (thread CPU time) of thread-pool tasks;
//  - BM_CheckpointBound: the checkpoint case beside what its bytes cost anyway on this machine
//    in the same iteration: the JSONL formatter alone on the same lines, and dd writing the
//    same number of bytes (the page cache's copy). Its ratio_to_bound is the checkpoint run's
//    added time per task over the larger of the two.
//
// Each iteration runs n independent noop tasks on an engine without telemetry (the baseline,
// BM_IndependentNoop's workload) and on an engine with telemetry, under default options (the
// bus waits for room: nothing may be dropped, and a drop fails the benchmark). The telemetry
// run is timed until every event of the batch has been processed and written (flush), so a
// dispatcher that falls behind shows.
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "asyncflow/exporters/jsonl/jsonl_format.hpp"
#include "bench_support.hpp"

extern char** environ;

namespace asyncflow::bench {
namespace {

/// One telemetry run of n tasks on a fresh engine: the seconds until everything emitted was
/// processed and written, the events processed and the checkpoint's size. False when telemetry
/// lost anything or did not drain.
struct TelemetryRun {
  double seconds = 0;
  double engine_seconds = 0;  // of which until the last task was done (the rest: draining)
  std::uint64_t events = 0;
  std::uint64_t file_bytes = 0;
  double dispatcher_cpu = 0;  // CPU seconds of the dispatcher ("af-telemetry")
  double writer_cpu = 0;      // and of the checkpoint's writer ("af-checkpoint")
  double process_cpu = 0;     // all threads, from the first task to the flush
};

bool run_with_telemetry(std::size_t n, const std::filesystem::path& checkpoint_dir,
                        TelemetryRun& out, benchmark::State& state,
                        double linger = BusOptions{}.linger,
                        EngineOptions engine_options = noop_options()) {
  ScopedEngine engine(std::move(engine_options));
  TelemetryOptions options;
  options.checkpoint_path = checkpoint_dir;  // empty: no file
  options.bus.linger = linger;
  auto telemetry = engine->start_telemetry(options);
  const double cpu_before = process_cpu_seconds();
  Stopwatch sw;
  out.engine_seconds = run_noop_tasks(*engine, n);
  if (!telemetry->flush(600)) {
    state.SkipWithError("telemetry did not drain");
    return false;
  }
  out.seconds = sw.seconds();
  out.process_cpu = process_cpu_seconds() - cpu_before;
  out.dispatcher_cpu = thread_cpu_seconds("af-telemetry");
  out.writer_cpu = thread_cpu_seconds("af-checkpoint");
  out.events = telemetry->processed_events();
  if (!telemetry->stop() || telemetry->dropped_events() != 0) {
    state.SkipWithError(("telemetry lost data: " + telemetry->losses().to_string()).c_str());
    return false;
  }
  if (auto file = telemetry->checkpoint_file()) out.file_bytes = std::filesystem::file_size(*file);
  return true;
}

/// Runs BM_IndependentNoopTelemetry's loop with or without a checkpoint.
void telemetry_overhead(benchmark::State& state, bool checkpoint,
                        double linger = BusOptions{}.linger) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto dir = work_root() / "telemetry";
  double base_total = 0;
  double telemetry_total = 0;
  double engine_total = 0;
  double dispatcher_total = 0;
  double writer_total = 0;
  double process_total = 0;
  std::uint64_t events = 0;
  for (auto _ : state) {
    {
      ScopedEngine engine(noop_options());
      base_total += run_noop_tasks(*engine, n);
    }
    TelemetryRun run;
    if (!run_with_telemetry(n, checkpoint ? dir : std::filesystem::path(), run, state, linger))
      break;
    state.SetIterationTime(run.seconds);
    telemetry_total += run.seconds;
    engine_total += run.engine_seconds;
    dispatcher_total += run.dispatcher_cpu;
    writer_total += run.writer_cpu;
    process_total += run.process_cpu;
    events += run.events;
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  const auto iters = static_cast<double>(state.iterations());
  const double tasks = static_cast<double>(n) * iters;
  state.counters["tasks_per_second"] = benchmark::Counter(tasks / telemetry_total);
  state.counters["baseline_tasks_per_second"] = benchmark::Counter(tasks / base_total);
  state.counters["us_per_task_added"] =
      benchmark::Counter((telemetry_total - base_total) / tasks * 1e6);
  // How much of the added time the engine's own threads spent; the rest is the dispatcher
  // finishing behind them.
  state.counters["us_per_task_added_in_engine"] =
      benchmark::Counter((engine_total - base_total) / tasks * 1e6);
  state.counters["events_per_task"] = benchmark::Counter(static_cast<double>(events) / tasks);
  // Where the telemetry threads' time goes, steadier than the wall clock on a loaded machine:
  // the dispatcher (events, spans, metrics, formatting) and the checkpoint's writer (write()).
  state.counters["dispatcher_cpu_us_per_task"] = benchmark::Counter(dispatcher_total / tasks * 1e6);
  // All threads together: on a machine with few cores their sum, not one thread, can be what
  // bounds the wall time (2 cores: wall >= cpu / 2).
  state.counters["cpu_us_per_task"] = benchmark::Counter(process_total / tasks * 1e6);
  if (checkpoint) {
    state.counters["writer_cpu_us_per_task"] = benchmark::Counter(writer_total / tasks * 1e6);
  }
}

void BM_IndependentNoopTelemetry(benchmark::State& state) {
  telemetry_overhead(state, true);
}
void BM_IndependentNoopTelemetryNoCheckpoint(benchmark::State& state) {
  telemetry_overhead(state, false);
}
// The same with BusOptions::linger = 0: the dispatcher takes events as they arrive, chasing
// the producers slot by slot (the cost that lingering removes).
void BM_IndependentNoopTelemetryNoCheckpointNoLinger(benchmark::State& state) {
  telemetry_overhead(state, false, 0.0);
}

BENCHMARK(BM_IndependentNoopTelemetry)
    ->Arg(1000)
    ->Arg(100000)
    ->Arg(1000000)
    ->UseManualTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IndependentNoopTelemetryNoCheckpoint)
    ->Arg(100000)
    ->Arg(1000000)
    ->UseManualTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IndependentNoopTelemetryNoCheckpointNoLinger)
    ->Arg(1000000)
    ->UseManualTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMillisecond);

/// n no-op function tasks on a 2-thread pool with telemetry (no file), timed until every event
/// was processed: with the per-task usage of thread-pool tasks (a getrusage call or two a task)
/// and without, to read its cost in one run.
void thread_pool_telemetry(benchmark::State& state, bool measure_usage) {
  const auto n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    TelemetryRun run;
    if (!run_with_telemetry(n, {}, run, state, BusOptions{}.linger,
                            EngineOptions{.backends = {ThreadPoolBackend::create(
                                              {.threads = 2, .measure_usage = measure_usage})},
                                          .work_dir = work_root()})) {
      break;
    }
    state.SetIterationTime(run.seconds);
  }
  set_throughput(state, n);
}
void BM_ThreadPoolTelemetry(benchmark::State& state) {
  thread_pool_telemetry(state, true);
}
void BM_ThreadPoolTelemetryNoUsage(benchmark::State& state) {
  thread_pool_telemetry(state, false);
}
BENCHMARK(BM_ThreadPoolTelemetry)
    ->Arg(100000)
    ->UseManualTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ThreadPoolTelemetryNoUsage)
    ->Arg(100000)
    ->UseManualTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMillisecond);

/// The lines of `tasks` tasks as the engine's telemetry writes them: five lifecycle events
/// over one shared context (one factory), and a finished task span.
struct TaskLines {
  std::vector<Event> events;
  std::vector<SpanRecord> spans;
};

TaskLines task_lines(std::size_t tasks, const std::string& session_id) {
  auto context = std::make_shared<EventContext>();
  context->session_id = session_id;
  context->backend = "thread_pool";
  context->attributes = {{"executable", std::string("plus_one")},
                         {"task_type", std::string("function")}};
  TaskLines out;
  const double now = epoch_seconds();
  for (std::size_t i = 0; i < tasks; ++i) {
    std::string uid = "task." + std::to_string(1000000 + i);
    out.events.push_back(make_event(events::TaskCreated(), context, uid));
    out.events.push_back(make_event(events::TaskResolved(), context, uid));
    out.events.push_back(make_event(events::TaskSubmitted(), context, uid));
    out.events.push_back(make_event(events::TaskStarted(), context, uid));
    out.events.push_back(make_event(events::TaskCompleted(), context, uid, {2.5e-7}));
    TaskSpan span;
    span.context = context;
    span.executable = context->string_attribute("executable");
    span.task_type = context->string_attribute("task_type");
    span.task_id = uid;
    span.backend = "thread_pool";
    span.trace_id = TraceId{0x4bf92f3577b34da6ull, 0xa3ce929d0e0e4736ull};
    span.span_id = 0x00f067aa0ba902b7ull + i;
    span.parent_span_id = 0x00f067aa0ba90001ull;
    span.start_ns = static_cast<std::int64_t>(now * 1e9);
    span.end_ns = span.start_ns + 1234;
    span.outcome = TaskSpan::Outcome::kCompleted;
    out.spans.emplace_back(std::move(span));
  }
  return out;
}

/// The formatter alone: the lines of n tasks, a batch of 512 tasks' records formatted over
/// and over into a reused 1 MiB buffer. Returns the seconds.
double format_lines(std::size_t n) {
  constexpr std::size_t kTasks = 512;
  const TaskLines lines = task_lines(kTasks, "asyncflow.session.5f3a9c0e");
  jsonl::LineFormatter formatter;
  const TraceId trace{0x4bf92f3577b34da6ull, 0xa3ce929d0e0e4736ull};
  std::string out;
  out.reserve(2 << 20);
  Stopwatch sw;
  for (std::size_t done = 0; done < n; done += kTasks) {
    for (std::size_t t = 0; t < kTasks; ++t) {
      for (std::size_t k = 0; k < 5; ++k) {
        formatter.append_event_line(out, lines.events[5 * t + k], trace, lines.spans.size() + t);
      }
      formatter.append_span_line(out, lines.spans[t]);
      if (out.size() >= (1u << 20)) {
        benchmark::DoNotOptimize(out.data());
        out.clear();
      }
    }
  }
  return sw.seconds();
}

/// `dd if=/dev/zero of=<file> bs=1M count=<bytes in MiB>`, timed as a whole process.
double dd_seconds(const std::filesystem::path& file, std::uint64_t bytes) {
  const std::string of = "of=" + file.string();
  const std::string count = "count=" + std::to_string((bytes + (1 << 20) - 1) >> 20);
  const char* argv[] = {"dd",          "if=/dev/zero", of.c_str(), "bs=1M",
                        count.c_str(), "status=none",  nullptr};
  Stopwatch sw;
  pid_t pid = 0;
  if (::posix_spawnp(&pid, "dd", nullptr, nullptr, const_cast<char**>(argv), environ) != 0)
    return -1;
  int status = 0;
  ::waitpid(pid, &status, 0);
  const double seconds = sw.seconds();
  std::error_code ec;
  std::filesystem::remove(file, ec);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? seconds : -1;
}

void BM_CheckpointBound(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto dir = work_root() / "telemetry_bound";
  double base = 0, telemetry = 0, format = 0, dd = 0;
  double bytes = 0;
  for (auto _ : state) {
    {
      ScopedEngine engine(noop_options());
      base += run_noop_tasks(*engine, n);
    }
    TelemetryRun run;
    if (!run_with_telemetry(n, dir, run, state)) break;
    state.SetIterationTime(run.seconds);
    telemetry += run.seconds;
    bytes += static_cast<double>(run.file_bytes);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    format += format_lines(n);
    std::filesystem::create_directories(dir, ec);
    const double d = dd_seconds(dir / "dd.out", run.file_bytes);
    if (d < 0) {
      state.SkipWithError("dd failed");
      break;
    }
    dd += d;
    std::filesystem::remove_all(dir, ec);
  }
  const double tasks = static_cast<double>(n) * static_cast<double>(state.iterations());
  const double added = (telemetry - base) / tasks * 1e6;
  const double format_us = format / tasks * 1e6;
  const double dd_us = dd / tasks * 1e6;
  state.counters["us_per_task_added"] = benchmark::Counter(added);
  state.counters["format_us_per_task"] = benchmark::Counter(format_us);
  state.counters["dd_us_per_task"] = benchmark::Counter(dd_us);
  state.counters["ratio_to_bound"] = benchmark::Counter(added / std::max(format_us, dd_us));
  state.counters["bytes_per_task"] = benchmark::Counter(bytes / tasks);
}

BENCHMARK(BM_CheckpointBound)
    ->Arg(100000)
    ->Arg(1000000)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace asyncflow::bench
