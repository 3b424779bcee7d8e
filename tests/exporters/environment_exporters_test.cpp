// The exporters the OTel variables name (OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER,
// OTEL_METRICS_EXPORTER, with OTEL_EXPORTER_OTLP_* and OTEL_EXPORTER_PROMETHEUS_*), a session
// exporting through them to a receiver the test starts, and the console exporters' lines.
#include <gtest/gtest.h>

#include <asyncflow/exporters/env/environment_exporters.hpp>
#include <asyncflow/exporters/ostream/ostream_exporter.hpp>
#include <asyncflow/exporters/prometheus/prometheus_exporter.hpp>
#include <asyncflow/telemetry/manager.hpp>
#include <chrono>
#include <map>
#include <sstream>
#include <string>

#include "support/child_process.hpp"
#include "support/env_lookup.hpp"
#include "support/log_capture.hpp"
#include "support/otlp_receiver.hpp"

namespace asyncflow {
namespace {

using namespace std::chrono_literals;
using testing::LogCapture;

EnvLookup env(std::map<std::string, std::string> vars) {
  return testing::env_of(std::move(vars));
}

TEST(EnvironmentExporters, NothingSetMeansNothingExported) {
  const EnvironmentExporters e = exporters_from_environment(env({}));
  EXPECT_TRUE(e.span_processors.empty());
  EXPECT_TRUE(e.metric_readers.empty());
}

TEST(EnvironmentExporters, AnOtlpEndpointSendsBothSignalsThere) {
  testing::Receiver rx;
  TelemetryOptions options;
  options.resource = {{"service.name", std::string("from-options")}};
  const std::vector<std::string> described =
      add_exporters_from_environment(options, env({{"OTEL_EXPORTER_OTLP_ENDPOINT", rx.url("")},
                                                   {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
                                                   {"OTEL_SERVICE_NAME", "from-env"}}));
  ASSERT_EQ(described.size(), 2u);
  EXPECT_EQ(described[0], "traces: otlp http/json to " + rx.url("/v1/traces"));
  EXPECT_EQ(described[1], "metrics: otlp http/json to " + rx.url("/v1/metrics"));
  ASSERT_EQ(options.span_processors.size(), 1u);
  ASSERT_EQ(options.metric_readers.size(), 1u);
  auto tm = TelemetryManager::start("env-session", std::move(options));
  EXPECT_TRUE(tm->stop()) << tm->losses().to_string();
  ASSERT_TRUE(rx.wait_for_requests(2, 30s));
  std::map<std::string, int> paths;
  for (const auto& r : rx.requests()) {
    ++paths[r.path];
    EXPECT_EQ(r.get_header_value("Content-Type"), "application/json");
    EXPECT_NE(r.body.find("env-session"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("from-options"), std::string::npos) << "TelemetryOptions::resource wins";
    EXPECT_EQ(r.body.find("from-env"), std::string::npos);
  }
  EXPECT_EQ(paths["/v1/traces"], 1);
  EXPECT_EQ(paths["/v1/metrics"], 1) << "the final snapshot at stop";
}

TEST(EnvironmentExporters, DisabledMeansNothingWhateverElseIsSet) {
  const EnvironmentExporters e =
      exporters_from_environment(env({{"OTEL_SDK_DISABLED", " TRUE "},
                                      {"OTEL_TRACES_EXPORTER", "otlp"},
                                      {"OTEL_METRICS_EXPORTER", "console"}}));
  EXPECT_TRUE(e.span_processors.empty());
  EXPECT_TRUE(e.metric_readers.empty());
  LogCapture log;
  const EnvironmentExporters f = exporters_from_environment(
      env({{"OTEL_SDK_DISABLED", "maybe"}, {"OTEL_METRICS_EXPORTER", "console"}}));
  EXPECT_EQ(f.metric_readers.size(), 1u);
  EXPECT_EQ(log.count("OTEL_SDK_DISABLED is neither true nor false; taken as false"), 1u)
      << log.all();
}

TEST(EnvironmentExporters, ListsAreReadAndUnknownNamesSaidByVariable) {
  LogCapture log;
  const EnvironmentExporters e = exporters_from_environment(
      env({{"OTEL_TRACES_EXPORTER", "console, zipkin"}, {"OTEL_METRICS_EXPORTER", "none"}}));
  EXPECT_EQ(e.span_processors.size(), 1u);
  EXPECT_TRUE(e.metric_readers.empty());
  EXPECT_EQ(e.described, (std::vector<std::string>{"traces: console (stdout)"}));
  EXPECT_EQ(log.count("OTEL_TRACES_EXPORTER: unknown exporter 'zipkin' (known: otlp, console, "
                      "none); left out"),
            1u)
      << log.all();
  // "none" wins over an endpoint; unset with no endpoint is none too.
  const EnvironmentExporters g = exporters_from_environment(env(
      {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"}, {"OTEL_TRACES_EXPORTER", "none"}}));
  EXPECT_TRUE(g.span_processors.empty());
  EXPECT_EQ(g.metric_readers.size(), 1u);
}

TEST(EnvironmentExporters, PrometheusOnTheHostAndPortAskedFor) {
  const int port = testing::free_loopback_port();
  const EnvironmentExporters e =
      exporters_from_environment(env({{"OTEL_METRICS_EXPORTER", "prometheus"},
                                      {"OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1"},
                                      {"OTEL_EXPORTER_PROMETHEUS_PORT", std::to_string(port)}}));
  ASSERT_EQ(e.metric_readers.size(), 1u);
  auto prometheus = std::dynamic_pointer_cast<PrometheusExporter>(e.metric_readers[0]);
  ASSERT_NE(prometheus, nullptr);
  EXPECT_EQ(prometheus->port(), port);
  EXPECT_EQ(e.described, (std::vector<std::string>{"metrics: prometheus at " + prometheus->url()}));
}

TEST(OstreamExporters, OneReadableLinePerSpanAndPerPoint) {
  SpanData s;
  s.name = "task";
  s.trace_id = {0x4bf92f3577b34da6, 0xa3ce929d0e0e4736};
  s.span_id = 0x00f067aa0ba902b7;
  s.parent_span_id = 0x53995c3f42cd8ad8;
  s.start_ns = 1'796'655'845'123'456'000;
  s.end_ns = s.start_ns + 12'345'000;
  s.status = SpanStatus::kError;
  s.status_description = "ValueError";
  s.attributes = {{"task_id", std::string("task.000001")}, {"ranks", std::int64_t{2}}};
  s.events = {{"TaskQueued", s.start_ns + 10'000, {}}, {"TaskStarted", s.start_ns + 20'000, {}}};
  std::ostringstream out;
  OstreamSpanExporter spans(out);
  const SpanRecord record(s);
  EXPECT_EQ(spans.export_spans(std::span<const SpanRecord>(&record, 1)), ExportResult::kSuccess);
  EXPECT_EQ(out.str(),
            "span task 4bf92f3577b34da6a3ce929d0e0e4736/00f067aa0ba902b7 parent 53995c3f42cd8ad8 "
            "2026-12-07T15:04:05.123456Z +0.012345s ERROR (ValueError) "
            "{task_id=\"task.000001\", ranks=2}\n"
            "  events [TaskQueued +0.000010s, TaskStarted +0.000020s]\n");
  EXPECT_TRUE(spans.shutdown(1s));
  EXPECT_EQ(spans.export_spans(std::span<const SpanRecord>(&record, 1)), ExportResult::kFailure)
      << "shut down";

  MetricsSnapshot m;
  MetricData c;
  c.name = "tasks_completed";
  c.points.push_back({});
  c.points.back().attributes = {{"backend", std::string("pool")}};
  c.points.back().value = 10;
  m.metrics.push_back(c);
  std::ostringstream mout;
  OstreamMetricExporter metrics(mout);
  EXPECT_EQ(metrics.export_metrics(m), ExportResult::kSuccess);
  EXPECT_EQ(mout.str(), "metric tasks_completed counter {backend=\"pool\"} 10\n");
}

}  // namespace
}  // namespace asyncflow
