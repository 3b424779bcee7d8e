// OTLP/HTTP to a receiver written in Python (Debian's python3-protobuf, with classes generated
// by protoc --python_out from our .proto files): a decoder that shares no code with ours reads
// what a session sends, in both encodings, configured only through the OTel variables (endpoint,
// protocol, headers, gzip, service name), after a 503 it must retry. It checks the span tree,
// ids, attributes, span events, status, resource, metric points and temporality.
#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>
#include <asyncflow/exporters/env/environment_exporters.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.hpp"
#include "support/engines.hpp"
#include "support/env_lookup.hpp"
#include "support/temp_path.hpp"

namespace asyncflow {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
namespace fs = std::filesystem;

/// The Python receiver, started for one test and stopped with it.
class PythonReceiver {
 public:
  explicit PythonReceiver(int fail_first) : dir_(testing::fresh_temp_path("pyrx")) {
    fs::create_directories(dir_);
    process_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{"/usr/bin/python3", ASYNCFLOW_PY_RECEIVER, "--proto-py",
                                 ASYNCFLOW_PROTO_PY, "--out", (dir_ / "out.jsonl").string(),
                                 "--port-file", (dir_ / "port").string(), "--fail-first",
                                 std::to_string(fail_first)},
        dir_ / "receiver.log");
    // Another process: wait (polling, bounded) for it to say its port.
    const auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline && process_->running()) {
      std::ifstream in(dir_ / "port");
      if (in >> port_) break;
      std::this_thread::sleep_for(20ms);
    }
  }
  int port() const { return port_; }
  std::string log() const { return process_->log(); }
  /// The requests it accepted, once it has `paths` distinct paths (or the timeout passed).
  std::vector<json> records(std::size_t paths, std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::vector<json> out;
    for (;;) {
      out.clear();
      std::map<std::string, int> seen;
      std::ifstream in(dir_ / "out.jsonl");
      for (std::string line; std::getline(in, line);) {
        out.push_back(json::parse(line));
        ++seen[out.back().value("path", "")];
      }
      if (seen.size() >= paths || Clock::now() > deadline) return out;
      std::this_thread::sleep_for(50ms);
    }
  }

 private:
  fs::path dir_;
  int port_ = 0;
  std::unique_ptr<testing::ChildProcess> process_;
};

EnvLookup env(std::map<std::string, std::string> vars) {
  return testing::env_of(std::move(vars));
}

class PythonReceiverTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PythonReceiverTest, DecodesTheSessionsSpansAndMetrics) {
  const std::string protocol = GetParam();
  PythonReceiver rx(/*fail_first=*/1);
  ASSERT_GT(rx.port(), 0) << rx.log();
  TelemetryOptions options;
  const auto described = add_exporters_from_environment(
      options,
      env({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:" + std::to_string(rx.port())},
           {"OTEL_EXPORTER_OTLP_PROTOCOL", protocol},
           {"OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20secret-token"},
           {"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"},
           {"OTEL_SERVICE_NAME", "python-receiver-test"}}));
  ASSERT_EQ(described.size(), 2u);
  auto flow = testing::pool_engine(2);
  auto tm = flow->start_telemetry(std::move(options));
  auto step = flow->function_task("step", [](int i) { return i + 1; });
  auto boom = flow->function_task("boom", []() -> int { throw std::runtime_error("no"); });
  {
    auto scope = flow->workflow_scope("pipeline");
    EXPECT_EQ(step(step(1)).get(), 3);
  }
  EXPECT_THROW(boom().get(), std::runtime_error);
  ASSERT_TRUE(flow->shutdown()) << tm->losses().to_string();

  const std::vector<json> records = rx.records(2, 60s);
  std::vector<json> spans, metrics;
  bool retried = false;
  for (const json& r : records) {
    ASSERT_FALSE(r.contains("error")) << r.dump() << "\n" << rx.log();
    EXPECT_EQ(r["content_type"],
              protocol == "http/json" ? "application/json" : "application/x-protobuf");
    EXPECT_EQ(r["content_encoding"], "gzip");
    EXPECT_EQ(r["authorization"], "Bearer secret-token");
    retried |= r["refused_before"] == 1;
    for (const json& s : r.value("spans", json::array())) spans.push_back(s);
    for (const json& m : r.value("metrics", json::array())) metrics.push_back(m);
  }
  EXPECT_TRUE(retried) << "the 503 was retried";

  // The span tree: session -> workflow -> the two steps; the failing task under the session.
  ASSERT_EQ(spans.size(), 5u);
  std::map<std::string, json> by_name_first;
  const json* session = nullptr;
  const json* workflow = nullptr;
  for (const json& s : spans) {
    EXPECT_EQ(s["trace_id"], spans[0]["trace_id"]) << "one trace";
    EXPECT_EQ(s["trace_id"].get<std::string>().size(), 32u);
    EXPECT_EQ(s["span_id"].get<std::string>().size(), 16u);
    EXPECT_EQ(s["kind"], 1) << "SPAN_KIND_INTERNAL";
    EXPECT_EQ(s["resource"]["service.name"], "python-receiver-test");
    EXPECT_EQ(s["resource"]["session_id"], tm->session_id());
    EXPECT_EQ(s["scope"], "asyncflow");
    if (s["name"] == "session") session = &s;
    if (s["name"] == "workflow") workflow = &s;
  }
  ASSERT_NE(session, nullptr);
  ASSERT_NE(workflow, nullptr);
  EXPECT_EQ((*session)["parent_span_id"], "");
  EXPECT_EQ((*workflow)["parent_span_id"], (*session)["span_id"]);
  int steps = 0;
  for (const json& s : spans) {
    if (s["name"] != "task") continue;
    const json& a = s["attributes"];
    EXPECT_EQ(a["session_id"], tm->session_id());
    EXPECT_EQ(s["events"].front()["name"], "asyncflow.TaskResolved");
    EXPECT_EQ(s["events"].back()["name"], "TaskStarted");
    EXPECT_EQ(s["events"].back()["attributes"]["task_id"], a["task_id"]);
    if (a["executable"] == "step") {
      ++steps;
      EXPECT_EQ(s["parent_span_id"], (*workflow)["span_id"]);
      EXPECT_EQ(a["asyncflow.workflow_id"], "pipeline");
      EXPECT_EQ(s["status"]["code"], 1) << "OK";
    } else {
      EXPECT_EQ(s["parent_span_id"], (*session)["span_id"]);
      EXPECT_EQ(s["status"]["code"], 2) << "ERROR";
      EXPECT_NE(s["status"]["message"].get<std::string>(), "");
      EXPECT_EQ(a["status"], "failed");
    }
    EXPECT_GE(s["end"].get<std::uint64_t>(), s["start"].get<std::uint64_t>());
  }
  EXPECT_EQ(steps, 2);

  // Metrics: counters as monotonic cumulative sums, the up-down counter non-monotonic, the
  // histogram cumulative with its bounds; the final snapshot holds the session's numbers.
  std::map<std::string, json> last;
  for (const json& m : metrics) last[m["name"]] = m;
  auto total = [&](const std::string& name) {
    double t = 0;
    for (const json& p : last.at(name)["points"]) t += p["value"].get<double>();
    return t;
  };
  ASSERT_TRUE(last.count("tasks_completed")) << rx.log();
  EXPECT_EQ(last["tasks_completed"]["kind"], "sum");
  EXPECT_EQ(last["tasks_completed"]["monotonic"], true);
  EXPECT_EQ(last["tasks_completed"]["temporality"], 2) << "CUMULATIVE";
  EXPECT_EQ(total("tasks_completed"), 2);
  EXPECT_EQ(total("tasks_failed"), 1);
  EXPECT_EQ(last["tasks_running"]["kind"], "sum");
  EXPECT_EQ(last["tasks_running"]["monotonic"], false);
  EXPECT_EQ(total("tasks_running"), 0);
  const json& h = last.at("task_duration_seconds");
  EXPECT_EQ(h["kind"], "histogram");
  EXPECT_EQ(h["temporality"], 2);
  std::uint64_t count = 0;
  for (const json& p : h["points"]) {
    count += p["count"].get<std::uint64_t>();
    EXPECT_EQ(p["bucket_counts"].size(), p["bounds"].size() + 1);
    EXPECT_GT(p["time"].get<std::uint64_t>(), p["start"].get<std::uint64_t>());
  }
  EXPECT_EQ(count, 3u);
  for (const json& p : last["tasks_completed"]["points"]) {
    EXPECT_EQ(p["attributes"]["session_id"], tm->session_id());
  }
}

INSTANTIATE_TEST_SUITE_P(BothEncodings, PythonReceiverTest,
                         ::testing::Values("http/protobuf", "http/json"),
                         [](const auto& param_info) {
                           return param_info.param == "http/json" ? "Json" : "Protobuf";
                         });

}  // namespace
}  // namespace asyncflow
