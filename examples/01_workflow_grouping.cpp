// Workflow grouping with telemetry: six ML pipelines (load → preprocess → train → evaluate)
// run concurrently, each in its own workflow_scope, with a custom `experiment.Result` event
// per pipeline. Writes the JSONL checkpoint that the dashboards read (the seed's
// examples/telemetry/01-workflow_grouping.py).
//
//   01_workflow_grouping [--out DIR] [--prometheus HOST:PORT]   (default DIR: telemetry-output)
//
// Spans and metrics also go where the OTel variables say: OTEL_EXPORTER_OTLP_ENDPOINT (OTLP/HTTP
// to Jaeger, Tempo, a collector), OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER=console, ...
// (docs/exporters.md). --prometheus serves /metrics there while the demo runs.
#include <asyncflow/asyncflow.hpp>
#include <asyncflow/exporters/env/environment_exporters.hpp>
#include <asyncflow/exporters/prometheus/prometheus_exporter.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

/// Sleeps a + b·size seconds: the stage's simulated work.
void work(double a, double b, int size) {
  std::this_thread::sleep_for(std::chrono::duration<double>(a + b * size));
}

struct Experiment {
  int size;
  double lr;
};

}  // namespace

int main(int argc, char** argv) {
  std::string out = "telemetry-output";
  std::string prometheus_at;  // HOST:PORT
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--out" && i + 1 < argc) {
      out = argv[++i];
    } else if (std::string_view(argv[i]) == "--prometheus" && i + 1 < argc) {
      prometheus_at = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--out DIR] [--prometheus HOST:PORT]\n", argv[0]);
      return 2;
    }
  }
  // Node CPU, memory, disk and network every 0.5 s: ResourceUpdate lines, the node gauges.
  asyncflow::TelemetryOptions options{.resource_poll_interval = 0.5, .checkpoint_path = out};
  for (const std::string& line : asyncflow::add_exporters_from_environment(options)) {
    std::printf("exporting %s\n", line.c_str());
  }
  if (!prometheus_at.empty()) {
    const std::size_t colon = prometheus_at.rfind(':');
    int port = -1;
    if (colon != std::string::npos) {
      try {
        port = std::stoi(prometheus_at.substr(colon + 1));
      } catch (const std::exception&) {  // not a number: said below
      }
    }
    if (colon == std::string::npos || port < 0) {
      std::fprintf(stderr, "--prometheus wants HOST:PORT (e.g. 127.0.0.1:9464), got '%s'\n",
                   prometheus_at.c_str());
      return 2;
    }
    auto prometheus = std::make_shared<asyncflow::PrometheusExporter>(
        asyncflow::PrometheusExporterOptions{.host = prometheus_at.substr(0, colon), .port = port});
    std::printf("serving metrics at %s\n", prometheus->url().c_str());
    options.metric_readers.push_back(std::move(prometheus));
  }

  // Four workers for six pipelines, like the seed's ProcessPoolExecutor(max_workers=4).
  auto flow = asyncflow::WorkflowEngine::create(
      {.backends = {asyncflow::ThreadPoolBackend::create({.threads = 4})}});
  auto telemetry = flow->start_telemetry(std::move(options));
  // Tasks done / failed / running on stderr: one rewritten line on a terminal.
  auto progress = asyncflow::ProgressReporter::attach(*telemetry);

  static const auto Result = asyncflow::define_event(
      "experiment.Result", {{"experiment_id", asyncflow::FieldType::kString},
                            {"dataset_size", asyncflow::FieldType::kInt},
                            {"learning_rate", asyncflow::FieldType::kDouble},
                            {"loss", asyncflow::FieldType::kDouble},
                            {"accuracy", asyncflow::FieldType::kDouble},
                            {"elapsed_s", asyncflow::FieldType::kDouble}});

  auto load_data = flow->function_task("load_data", [](std::string, int size) {
    work(0.05, 0.0008, size);
    return size;
  });
  auto preprocess = flow->function_task("preprocess", [](int size) {
    work(0.08, 0.0006, size);
    return size;
  });
  auto train = flow->function_task("train", [](int size, double lr) {
    work(0.20, 0.0010, size);
    return 0.5 / (1 + size * lr * 10);  // loss
  });
  auto evaluate = flow->function_task("evaluate", [](double loss, int size) {
    work(0.04, 0.0003, size);
    return std::min(0.99, 0.75 + 0.24 * (1 - loss));  // accuracy
  });

  // One thread per experiment, as the seed's asyncio tasks: it opens the workflow scope,
  // creates its chain and waits for it, so the tree is session → workflow → task and the
  // Result event, emitted inside the scope, carries the workflow's id.
  auto pipeline = [&](const std::string& id, Experiment x) {
    auto scope = flow->workflow_scope(id);
    const auto t0 = std::chrono::steady_clock::now();
    auto data = load_data(id, x.size);
    auto prep = preprocess(data);
    auto loss = train(prep, x.lr);
    const double accuracy = evaluate(loss, x.size).get();
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    telemetry->emit(Result, {.backend = "pipeline", .task_id = id},
                    {{"experiment_id", id},
                     {"dataset_size", std::int64_t{x.size}},
                     {"learning_rate", x.lr},
                     {"loss", loss.get()},
                     {"accuracy", accuracy},
                     {"elapsed_s", elapsed}});
    std::printf("%s  size=%-4d lr=%.3f  loss=%.4f  accuracy=%.4f  %.0f ms\n", id.c_str(), x.size,
                x.lr, loss.get(), accuracy, elapsed * 1000);
  };

  const std::vector<Experiment> experiments = {{100, 0.010}, {200, 0.005}, {150, 0.020},
                                               {80, 0.050},  {250, 0.001}, {120, 0.010}};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> runs;
  for (std::size_t i = 0; i < experiments.size(); ++i)
    runs.emplace_back(pipeline, "exp-" + std::to_string(i), experiments[i]);
  for (auto& r : runs) r.join();
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  telemetry->flush();
  progress->finish();  // its final line, with every task's end counted
  flow->shutdown();    // also stops telemetry: final metric snapshot, file closed
  const auto counts = telemetry->task_count();
  std::printf("%zu experiments · %lld tasks completed in %.0f ms\n", experiments.size(),
              static_cast<long long>(counts.completed), ms);
  std::printf("summary: %s\n", telemetry->summary().to_json().c_str());
  std::printf("checkpoint: %s\n", telemetry->checkpoint_file()->c_str());
  return counts.failed == 0 && telemetry->dropped_events() == 0 ? 0 : 1;
}
