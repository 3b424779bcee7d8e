// Cost of exporting every span over OTLP/HTTP per task (issue #14's target: <= 3 us per task
// added against telemetry off), measured alternately in the same run:
//  - BM_IndependentNoopOtlp: noop tasks with telemetry on and a BatchSpanProcessor feeding an
//    OtlpHttpSpanExporter (protobuf) that posts to a receiver on 127.0.0.1 in this process; the
//    run is timed until every span was posted and answered (flush of the session, then of the
//    processor). Reported: us_per_task_added, the mean spans per request (near the batch size
//    under load: the processor sends full batches, not a few spans each), requests, drops.
// The processor's queue holds a whole run (a queue of 2048 under a producer this fast would
// drop, counted; the point here is the cost of what is sent, not of what is dropped).
#include <benchmark/benchmark.h>
#include <httplib.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "asyncflow/exporters/otlp/otlp_http_exporter.hpp"
#include "asyncflow/telemetry/batch_span_processor.hpp"
#include "bench_support.hpp"

namespace asyncflow::bench {
namespace {

/// Answers every OTLP post with 200 and counts them. Thread-safe.
class LocalReceiver {
 public:
  LocalReceiver() {
    server_.Post("/v1/traces", [this](const httplib::Request& req, httplib::Response& res) {
      requests_.fetch_add(1, std::memory_order_relaxed);
      bytes_.fetch_add(req.body.size(), std::memory_order_relaxed);
      res.status = 200;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
  }
  ~LocalReceiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1/traces"; }
  std::uint64_t requests() const { return requests_.load(); }
  std::uint64_t bytes() const { return bytes_.load(); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> bytes_{0};
};

void BM_IndependentNoopOtlp(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  LocalReceiver receiver;
  double base_total = 0;
  double otlp_total = 0;
  std::uint64_t exported = 0;
  std::uint64_t exports = 0;
  std::uint64_t dropped = 0;
  const std::uint64_t requests_before = receiver.requests();
  for (auto _ : state) {
    {
      ScopedEngine engine(noop_options());
      base_total += run_noop_tasks(*engine, n);
    }
    OtlpExporterOptions o;
    o.endpoint = receiver.url();
    auto processor = std::make_shared<BatchSpanProcessor>(
        std::make_shared<OtlpHttpSpanExporter>(o),
        BatchSpanProcessorOptions{.max_queue_size = std::size_t{1} << 21,
                                  .max_export_batch_size = 512,
                                  .schedule_delay = std::chrono::milliseconds(5000),
                                  .export_timeout = std::chrono::milliseconds(30000)});
    ScopedEngine engine(noop_options());
    auto telemetry = engine->start_telemetry({.span_processors = {processor}});
    Stopwatch sw;
    run_noop_tasks(*engine, n);
    if (!telemetry->flush(600) || !processor->force_flush(std::chrono::seconds(600))) {
      state.SkipWithError("the spans did not drain");
      break;
    }
    const double seconds = sw.seconds();
    state.SetIterationTime(seconds);
    otlp_total += seconds;
    const BatchSpanProcessorStats st = processor->stats();
    exported += st.spans_exported;
    exports += st.exports;
    dropped += st.dropped_queue_full + st.dropped_export_failed;
    if (!telemetry->stop()) {
      state.SkipWithError(("telemetry lost data: " + telemetry->losses().to_string()).c_str());
      break;
    }
  }
  const double tasks = static_cast<double>(n) * static_cast<double>(state.iterations());
  state.counters["tasks_per_second"] = benchmark::Counter(tasks / otlp_total);
  state.counters["baseline_tasks_per_second"] = benchmark::Counter(tasks / base_total);
  state.counters["us_per_task_added"] = benchmark::Counter((otlp_total - base_total) / tasks * 1e6);
  state.counters["spans_per_request"] =
      benchmark::Counter(exports == 0 ? 0 : static_cast<double>(exported) / exports);
  state.counters["requests"] =
      benchmark::Counter(static_cast<double>(receiver.requests() - requests_before),
                         benchmark::Counter::kAvgIterations);
  state.counters["bytes_per_span"] =
      benchmark::Counter(exported == 0 ? 0 : static_cast<double>(receiver.bytes()) / exported);
  state.counters["spans_dropped"] = benchmark::Counter(static_cast<double>(dropped));
}

BENCHMARK(BM_IndependentNoopOtlp)
    ->Arg(100000)
    ->Arg(1000000)
    ->UseManualTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace asyncflow::bench
