// BM_OtlpEncode: task spans per second encoded into OTLP/protobuf (and JSON, for comparison)
// request bodies, in batches of the batch span processor's default export size (512). The
// spans look like the engine's: seven attributes and three lifecycle span events.
#include <benchmark/benchmark.h>

#include <asyncflow/exporters/otlp/otlp_encoder.hpp>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace asyncflow;

std::vector<SpanData> task_spans(std::size_t n) {
  std::vector<SpanData> spans(n);
  for (std::size_t i = 0; i < n; ++i) {
    SpanData& s = spans[i];
    s.name = "task";
    s.trace_id = {0x0102030405060708ULL, 0x090a0b0c0d0e0f10ULL};
    s.span_id = 0x1000 + i;
    s.parent_span_id = 0x42;
    s.start_ns = 1'700'000'000'000'000'000 + static_cast<std::int64_t>(i) * 1000;
    s.end_ns = s.start_ns + 250'000;
    s.status = SpanStatus::kOk;
    const std::string id = "task." + std::to_string(100000 + i);
    s.attributes = {{"session_id", std::string("asyncflow.session.3f2a9c1b")},
                    {"backend", std::string("threadpool")},
                    {"task_id", id},
                    {"executable", std::string("preprocess")},
                    {"task_type", std::string("function")},
                    {"asyncflow.workflow_id", std::string("pipeline.0003")},
                    {"status", std::string("completed")}};
    for (const char* name : {"TaskQueued", "asyncflow.TaskResolved", "TaskStarted"}) {
      s.events.push_back({name, s.start_ns + 1000, {{"task_id", id}}});
    }
  }
  return spans;
}

void encode(benchmark::State& state, OtlpProtocol protocol) {
  const auto spans = task_spans(static_cast<std::size_t>(state.range(0)));
  OtlpOrigin origin;
  origin.resource = {{"service.name", std::string("asyncflow")}};
  OtlpEncoder encoder(std::move(origin));
  std::string body;
  for (auto _ : state) {
    encoder.encode_traces(spans, protocol, body);
    benchmark::DoNotOptimize(body.data());
  }
  state.counters["spans_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(spans.size()),
      benchmark::Counter::kIsRate);
  state.counters["bytes_per_span"] =
      static_cast<double>(body.size()) / static_cast<double>(spans.size());
}

void BM_OtlpEncode(benchmark::State& state) {
  encode(state, OtlpProtocol::kHttpProtobuf);
}
void BM_OtlpEncodeJson(benchmark::State& state) {
  encode(state, OtlpProtocol::kHttpJson);
}

BENCHMARK(BM_OtlpEncode)->Arg(512);
BENCHMARK(BM_OtlpEncodeJson)->Arg(512);

}  // namespace
