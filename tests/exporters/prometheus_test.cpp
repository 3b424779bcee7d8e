// The Prometheus endpoint: the exposition text (names, HELP/TYPE, _total, histogram buckets
// with le, escaping, target_info), `promtool check metrics` on what a real session serves,
// clear errors (port taken, bad options), one series per label set next to a periodic reader,
// and a real Prometheus server started by the test that scrapes us and answers PromQL queries
// — our task counters, and every query of the Grafana dashboard in docs/grafana.
#include <gtest/gtest.h>
#include <httplib.h>

#include <asyncflow/asyncflow.hpp>
#include <asyncflow/exporters/prometheus/prometheus_exporter.hpp>
#include <asyncflow/telemetry/periodic_metric_reader.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.hpp"
#include "support/engines.hpp"
#include "support/error_text.hpp"
#include "support/temp_path.hpp"

namespace asyncflow {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
using json = nlohmann::json;

MetricData instrument(std::string name, InstrumentKind kind, std::string help = "help") {
  MetricData m;
  m.name = std::move(name);
  m.kind = kind;
  m.description = std::move(help);
  return m;
}

MetricPoint point(Attributes a, double value) {
  MetricPoint p;
  p.attributes = std::move(a);
  p.value = value;
  return p;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text))
    if (l == line) return true;
  return false;
}

std::string scrape(int port, const std::string& path = "/metrics", int* status = nullptr) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10, 0);
  auto r = c.Get(path);
  if (status != nullptr) *status = r ? r->status : -1;
  return r ? r->body : std::string("no answer");
}

TEST(PrometheusText, CountersGaugesAndHistogramsInTheExpositionFormat) {
  MetricsSnapshot s;
  MetricData c = instrument("tasks_completed", InstrumentKind::kCounter, "Total tasks completed");
  c.points.push_back(
      point({{"session_id", std::string("s1")}, {"backend", std::string("pool")}}, 3));
  s.metrics.push_back(c);
  MetricData u = instrument("tasks_running", InstrumentKind::kUpDownCounter);
  u.points.push_back(point({{"backend", std::string("pool")}}, 2));
  s.metrics.push_back(u);
  MetricData h = instrument("task_duration_seconds", InstrumentKind::kHistogram, "Durations");
  h.bounds = {0, 5, 10};
  MetricPoint hp = point({{"backend", std::string("pool")}}, 0);
  hp.count = 4;
  hp.sum = 13.5;
  hp.bucket_counts = {1, 2, 0, 1};
  h.points.push_back(hp);
  s.metrics.push_back(h);
  s.metrics.push_back(instrument("tasks_canceled", InstrumentKind::kCounter));  // no points
  const std::string text = prometheus_text(s, {{"service.name", std::string("svc")}});

  EXPECT_TRUE(has_line(text, "# HELP tasks_completed_total Total tasks completed")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE tasks_completed_total counter")) << text;
  EXPECT_TRUE(has_line(text, "tasks_completed_total{backend=\"pool\",session_id=\"s1\"} 3"));
  EXPECT_TRUE(has_line(text, "# TYPE tasks_running gauge"));
  EXPECT_TRUE(has_line(text, "tasks_running{backend=\"pool\"} 2"));
  EXPECT_TRUE(has_line(text, "# TYPE task_duration_seconds histogram"));
  // Cumulative buckets, the last one the count.
  EXPECT_TRUE(has_line(text, "task_duration_seconds_bucket{backend=\"pool\",le=\"0\"} 1"));
  EXPECT_TRUE(has_line(text, "task_duration_seconds_bucket{backend=\"pool\",le=\"5\"} 3"));
  EXPECT_TRUE(has_line(text, "task_duration_seconds_bucket{backend=\"pool\",le=\"10\"} 3"));
  EXPECT_TRUE(has_line(text, "task_duration_seconds_bucket{backend=\"pool\",le=\"+Inf\"} 4"));
  EXPECT_TRUE(has_line(text, "task_duration_seconds_sum{backend=\"pool\"} 13.5"));
  EXPECT_TRUE(has_line(text, "task_duration_seconds_count{backend=\"pool\"} 4"));
  EXPECT_TRUE(has_line(text, "# TYPE target_info gauge"));
  EXPECT_TRUE(has_line(text, "target_info{service_name=\"svc\"} 1"));
  EXPECT_EQ(text.find("tasks_canceled"), std::string::npos) << "no points, no family";
}

TEST(PrometheusText, NamesAreMadeValidAndValuesEscaped) {
  EXPECT_EQ(prometheus_name("service.name", false), "service_name");
  EXPECT_EQ(prometheus_name("9lives", true), "_9lives");
  EXPECT_EQ(prometheus_name("a:b-c", true), "a:b_c");
  EXPECT_EQ(prometheus_name("a:b", false), "a_b");
  MetricsSnapshot s;
  MetricData g = instrument("node_cpu_utilization", InstrumentKind::kGauge, "line\\one\ntwo");
  g.points.push_back(point({{"node_id", std::string("a\"b\\c\nd")}}, 1.5));
  g.points.push_back(
      point({{"node_id", std::string("inf")}}, std::numeric_limits<double>::infinity()));
  g.points.push_back(point({{"node_id", std::string("nan")}}, std::nan("")));
  // Two attributes that clash once made valid: one label, values joined by ';'.
  g.points.push_back(point({{"x.y", std::string("1")}, {"x_y", std::string("2")}}, 0));
  g.points.push_back(point({{"flag", true}, {"n", std::int64_t{-7}}}, 0));
  s.metrics.push_back(g);
  const std::string text = prometheus_text(s, {});
  EXPECT_TRUE(has_line(text, "# HELP node_cpu_utilization line\\\\one\\ntwo")) << text;
  EXPECT_TRUE(has_line(text, "node_cpu_utilization{node_id=\"a\\\"b\\\\c\\nd\"} 1.5")) << text;
  EXPECT_TRUE(has_line(text, "node_cpu_utilization{node_id=\"inf\"} +Inf"));
  EXPECT_TRUE(has_line(text, "node_cpu_utilization{node_id=\"nan\"} NaN"));
  EXPECT_TRUE(has_line(text, "node_cpu_utilization{x_y=\"1;2\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "node_cpu_utilization{flag=\"true\",n=\"-7\"} 0")) << text;
  EXPECT_EQ(text.find("target_info"), std::string::npos) << "no resource, no target_info";
}

/// Whether the asyncflow::Error that `f` throws says `part`.
#define EXPECT_THAT_ERROR(expression, part)                                  \
  do {                                                                       \
    const std::string said = testing::error_of([&] { (void)(expression); }); \
    EXPECT_NE(said.find(part), std::string::npos) << "error: " << said;      \
  } while (false)

TEST(PrometheusExporter, BadPlacesAreClearErrors) {
  PrometheusExporter first({.port = 0});
  const int taken = first.port();
  EXPECT_THAT_ERROR(
      PrometheusExporter({.port = taken}),
      "cannot listen on 127.0.0.1:" + std::to_string(taken) + ": the port is already in use");
  EXPECT_THAT_ERROR(PrometheusExporter({.port = 70000}), "port 70000 is outside [0, 65535]");
  EXPECT_THAT_ERROR(PrometheusExporter({.port = 0, .path = "metrics"}),
                    "path 'metrics' must start with '/'");
  EXPECT_THAT_ERROR(PrometheusExporter({.host = "192.0.2.1", .port = 0}),
                    "cannot listen on 192.0.2.1:0");
}

/// A session of the engine with `readers`: 10 tasks done, 2 failed, node samples.
void run_tasks(WorkflowEngine& flow) {
  auto ok = flow.function_task("ok", [](int i) { return i; });
  auto bad = flow.function_task("bad", []() -> int { throw std::runtime_error("no"); });
  std::vector<TaskHandle<int>> done;
  for (int i = 0; i < 10; ++i) done.push_back(ok(i));
  for (auto& h : done) h.get();
  for (int i = 0; i < 2; ++i) EXPECT_THROW(bad().get(), std::runtime_error);
  EventBase node{"", "thread_pool"};
  node.node_id = "node-1";
  flow.telemetry()->emit(events::ResourceUpdate(), node,
                         {{"cpu_percent", 40.0}, {"memory_percent", 20.0}, {"gpu_percent", 10.0}});
}

TEST(PrometheusExporter, ServesTheSessionAndPromtoolFindsNothingWrong) {
  auto prom = std::make_shared<PrometheusExporter>(PrometheusExporterOptions{.port = 0});
  EXPECT_EQ(prom->url(), "http://127.0.0.1:" + std::to_string(prom->port()) + "/metrics");
  EXPECT_NE(scrape(prom->port()).find("target_info{"), std::string::npos)
      << "before a session: target_info only";
  int status = 0;
  EXPECT_NE(scrape(prom->port(), "/nothing", &status).find("the metrics are at /metrics"),
            std::string::npos);
  EXPECT_EQ(status, 404);

  auto flow = testing::pool_engine(2);
  flow->start_telemetry({.metric_readers = {prom}});
  run_tasks(*flow);
  ASSERT_TRUE(flow->telemetry()->flush(30));
  const std::string text = scrape(prom->port());
  EXPECT_NE(text.find("# TYPE tasks_completed_total counter"), std::string::npos) << text;
  EXPECT_NE(text.find("service_name=\"asyncflow\""), std::string::npos) << text;

  const fs::path dir = testing::fresh_temp_path("promtool");
  fs::create_directories(dir);
  { std::ofstream(dir / "metrics.txt") << text; }
  const testing::RunResult check = testing::run_program({"/usr/bin/promtool", "check", "metrics"},
                                                        dir / "metrics.txt", dir / "promtool.out");
  EXPECT_EQ(check.exit_code, 0) << check.output << "\n--- on ---\n" << text;
  EXPECT_EQ(check.output, "") << "no lint warnings";

  ASSERT_TRUE(flow->shutdown());
  // After the session: the final numbers are still served, for the last scrape.
  const std::string after = scrape(prom->port());
  EXPECT_NE(after.find("tasks_failed_total{"), std::string::npos) << after;
  EXPECT_GE(prom->scrapes(), 3u);
  prom->close();
  EXPECT_EQ(scrape(prom->port()), "no answer");
}

/// Every sample line's series (name and labels), to check none appears twice.
std::multiset<std::string> series_of(const std::string& text) {
  std::multiset<std::string> out;
  for (const auto& l : lines_of(text)) {
    if (l.empty() || l.front() == '#') continue;
    out.insert(l.substr(0, l.rfind(' ')));
  }
  return out;
}

TEST(PrometheusExporter, OneSeriesPerLabelSetBesideAPeriodicReader) {
  // opentelemetry-cpp's exporter repeated series when a periodic reader was also attached.
  auto prom = std::make_shared<PrometheusExporter>(PrometheusExporterOptions{.port = 0});
  auto memory = std::make_shared<InMemoryMetricReader>();
  struct Sink final : MetricExporter {
    std::string name() const override { return "sink"; }
    ExportResult export_metrics(const MetricsSnapshot&) noexcept override {
      return ExportResult::kSuccess;
    }
    bool force_flush(std::chrono::microseconds) noexcept override { return true; }
    bool shutdown(std::chrono::microseconds) noexcept override { return true; }
  };
  auto periodic = std::make_shared<PeriodicExportingMetricReader>(
      std::make_shared<Sink>(), PeriodicMetricReaderOptions{.export_interval = 5ms});
  auto flow = testing::pool_engine(2);
  flow->start_telemetry({.metric_readers = {periodic, prom, memory}});
  run_tasks(*flow);
  ASSERT_TRUE(flow->telemetry()->flush(30));
  ASSERT_TRUE(periodic->force_flush(30s));
  for (int i = 0; i < 3; ++i) {
    const std::multiset<std::string> series = series_of(scrape(prom->port()));
    ASSERT_FALSE(series.empty());
    for (const auto& s : series) EXPECT_EQ(series.count(s), 1u) << s;
  }
  ASSERT_TRUE(flow->shutdown());
}

/// A real Prometheus server, scraping `target_port` every second. Stopped when destroyed.
class PrometheusServer {
 public:
  explicit PrometheusServer(int target_port)
      : dir_(testing::fresh_temp_path("prometheus")), port_(testing::free_loopback_port()) {
    fs::create_directories(dir_ / "data");
    std::ofstream(dir_ / "prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
           "scrape_configs:\n  - job_name: asyncflow\n    static_configs:\n"
           "      - targets: ['127.0.0.1:"
        << target_port << "']\n";
    process_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{"/usr/bin/prometheus",
                                 "--config.file=" + (dir_ / "prometheus.yml").string(),
                                 "--storage.tsdb.path=" + (dir_ / "data").string(),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port_)},
        dir_ / "prometheus.log");
  }
  bool started() const { return process_->started(); }
  std::string log() const { return process_->log(); }
  /// The result vector of an instant query, or null when the query failed.
  json query(const std::string& promql) {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(10, 0);
    auto r = c.Get("/api/v1/query", httplib::Params{{"query", promql}}, httplib::Headers{});
    if (!r || r->status != 200) return nullptr;
    const json j = json::parse(r->body, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success") return nullptr;
    return j["data"]["result"];
  }
  /// Waits (polling the server: it is another process) until `promql` has a result that
  /// `good` accepts.
  template <class Good>
  bool wait_for(const std::string& promql, Good good, std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (!process_->running()) return false;
      const json r = query(promql);
      if (r.is_array() && !r.empty() && good(r)) return true;
      std::this_thread::sleep_for(200ms);
    }
    return false;
  }

 private:
  fs::path dir_;
  int port_;
  std::unique_ptr<testing::ChildProcess> process_;
};

double value_of(const json& result) {
  return std::stod(result[0]["value"][1].get<std::string>());
}

TEST(PrometheusExporter, ARealPrometheusScrapesItAndEveryDashboardQueryReturnsData) {
  auto prom = std::make_shared<PrometheusExporter>(PrometheusExporterOptions{.port = 0});
  auto flow = testing::pool_engine(2);
  flow->start_telemetry({.metric_readers = {prom}});
  run_tasks(*flow);
  ASSERT_TRUE(flow->telemetry()->flush(30));

  PrometheusServer server(prom->port());
  ASSERT_TRUE(server.started());
  ASSERT_TRUE(server.wait_for(
      "sum(tasks_completed_total)", [](const json& r) { return value_of(r) == 10; }, 90s))
      << server.log();
  const json failed = server.query("sum(tasks_failed_total)");
  ASSERT_TRUE(failed.is_array() && !failed.empty()) << server.log();
  EXPECT_EQ(value_of(failed), 2);
  const json up = server.query("up{job=\"asyncflow\"}");
  ASSERT_TRUE(up.is_array() && !up.empty());
  EXPECT_EQ(value_of(up), 1);
  // rate() needs two samples in its window.
  ASSERT_TRUE(server.wait_for(
      "count_over_time(tasks_completed_total[1m])", [](const json& r) { return value_of(r) >= 3; },
      60s));

  std::ifstream in(fs::path(ASYNCFLOW_SOURCE_DIR) / "docs/grafana/asyncflow-dashboard.json");
  const json dashboard = json::parse(in, nullptr, false);
  ASSERT_FALSE(dashboard.is_discarded());
  int queries = 0;
  for (const auto& panel : dashboard["panels"]) {
    for (const auto& target : panel["targets"]) {
      std::string expr = target["expr"].get<std::string>();
      // Grafana's interval variable, as Grafana would fill it in for a 1 s scrape interval.
      for (std::size_t at; (at = expr.find("$__rate_interval")) != std::string::npos;) {
        expr.replace(at, std::string("$__rate_interval").size(), "1m");
      }
      const json r = server.query(expr);
      EXPECT_TRUE(r.is_array() && !r.empty())
          << "panel '" << panel["title"].get<std::string>() << "': " << expr << " -> " << r;
      ++queries;
    }
  }
  EXPECT_EQ(queries, 15);
  ASSERT_TRUE(flow->shutdown());
}

}  // namespace
}  // namespace asyncflow
