// JSONL checkpoint throughput: formatting task lifecycle event lines (with trace/span ids and
// the attributes the engine sets, over the base fields the engine's events share) with the
// exporter's LineFormatter, and writing them to a real file with CheckpointWriter, a batch of
// 512 per append() as the dispatcher does (STYLE G9 max_batch). Target (issue #12): >= 2M
// lines/s, so the checkpoint never becomes the telemetry bottleneck. BM_JsonlFormat is the
// formatting alone.
//
// The file is truncated (a new writer) every 256 MiB, outside the timed region, so a long run
// does not fill the disk; page-cache writeback still happens in the background as in real use.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "asyncflow/exporters/jsonl/checkpoint_reader.hpp"
#include "asyncflow/exporters/jsonl/checkpoint_writer.hpp"
#include "asyncflow/exporters/jsonl/jsonl_format.hpp"
#include "bench_support.hpp"

namespace asyncflow::bench {
namespace {

constexpr std::size_t kBatch = 512;
constexpr std::uint64_t kTruncateBytes = 256ull << 20;

/// 512 events: the lifecycle of ~85 tasks in 8 workflows, as the engine emits them (one
/// shared context per factory and workflow).
std::vector<Event> lifecycle_batch() {
  const EventTypePtr types[] = {events::TaskCreated(), events::TaskResolved(),
                                events::TaskQueued(),  events::TaskSubmitted(),
                                events::TaskStarted(), events::TaskCompleted()};
  std::vector<std::shared_ptr<const EventContext>> contexts;
  for (int w = 0; w < 8; ++w) {
    auto c = std::make_shared<EventContext>();
    c->session_id = "asyncflow.session.5f3a9c0e";
    c->backend = "thread_pool";
    c->attributes = {{"executable", std::string("train_model")},
                     {"task_type", std::string("function")},
                     {"asyncflow.workflow_id", "workflow." + std::to_string(w)}};
    contexts.push_back(std::move(c));
  }
  std::vector<Event> batch;
  batch.reserve(kBatch);
  for (std::size_t i = 0; i < kBatch; ++i) {
    const std::size_t task = i / 6;
    const EventTypePtr& type = types[i % 6];
    std::vector<FieldValue> values;
    if (type == events::TaskCompleted()) values.emplace_back(0.0123456789);
    batch.push_back(make_event(type, contexts[task % 8], "task.00000" + std::to_string(task),
                               std::move(values)));
  }
  return batch;
}

void BM_JsonlFormat(benchmark::State& state) {
  const std::vector<Event> batch = lifecycle_batch();
  const TraceId trace{0x4bf92f3577b34da6ull, 0xa3ce929d0e0e4736ull};
  jsonl::LineFormatter formatter;
  std::string lines;
  for (auto _ : state) {
    lines.clear();
    std::uint64_t span_id = 0x00f067aa0ba902b7ull;
    for (const Event& e : batch) formatter.append_event_line(lines, e, trace, ++span_id);
    benchmark::DoNotOptimize(lines.data());
  }
  state.counters["events_per_second"] =
      benchmark::Counter(static_cast<double>(kBatch) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

BENCHMARK(BM_JsonlFormat)->UseRealTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);

void BM_JsonlWrite(benchmark::State& state) {
  const std::vector<Event> batch = lifecycle_batch();
  const std::filesystem::path dir = work_root() / ("jsonl_write." + uuid4_hex());
  const TraceId trace{0x4bf92f3577b34da6ull, 0xa3ce929d0e0e4736ull};
  auto writer = std::make_unique<CheckpointWriter>(dir, "asyncflow.session.5f3a9c0e", 1775068460);
  jsonl::LineFormatter formatter;
  std::string lines;
  std::uint64_t written = 0;
  for (auto _ : state) {
    lines.clear();
    std::uint64_t span_id = 0x00f067aa0ba902b7ull;
    for (const Event& e : batch) formatter.append_event_line(lines, e, trace, ++span_id);
    if (!writer->append(lines)) {
      state.SkipWithError(writer->last_error().c_str());
      break;
    }
    written += lines.size();
    if (writer->bytes_written() >= kTruncateBytes) {
      state.PauseTiming();
      const std::filesystem::path full = writer->path();
      writer.reset();  // closes (fdatasync); the next writer starts a fresh file of that name
      std::filesystem::remove(full);
      writer = std::make_unique<CheckpointWriter>(dir, "asyncflow.session.5f3a9c0e", 1775068460);
      state.ResumeTiming();
    }
  }
  state.counters["events_per_second"] =
      benchmark::Counter(static_cast<double>(kBatch) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
  state.counters["bytes_per_line"] =
      static_cast<double>(written) /
      (static_cast<double>(kBatch) *
       static_cast<double>(std::max<std::int64_t>(1, state.iterations())));
  state.SetBytesProcessed(static_cast<std::int64_t>(written));
  writer.reset();
  std::error_code ec;  // best effort, like ScopedEngine
  std::filesystem::remove_all(dir, ec);
  std::filesystem::remove(work_root(), ec);
}

BENCHMARK(BM_JsonlWrite)->UseRealTime()->MinTime(1.0)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace asyncflow::bench
