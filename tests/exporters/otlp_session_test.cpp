// A workflow engine's telemetry over OTLP/HTTP to a receiver the test starts: the batch span
// processor with the OTLP span exporter sends the whole span tree (session -> workflow -> task,
// parent ids, one trace), with the resource and status; and with the receiver down the engine
// still finishes on time and the session counts and says what it could not send.
#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>
#include <asyncflow/exporters/otlp/otlp_http_exporter.hpp>
#include <asyncflow/telemetry/batch_span_processor.hpp>
#include <chrono>
#include <map>
#include <string>

#include "otlp_trace.pb.h"
#include "support/engines.hpp"
#include "support/log_capture.hpp"
#include "support/otlp_receiver.hpp"

namespace asyncflow {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace pb = ::asyncflow::otlp::v1;

std::string attr(const pb::Span& s, const std::string& key) {
  for (const auto& kv : s.attributes())
    if (kv.key() == key) return kv.value().string_value();
  return "";
}

OtlpExporterOptions to(const std::string& url) {
  OtlpExporterOptions o;
  o.endpoint = url;
  o.service_name = "otlp-session-test";
  o.timeout = 5;
  o.retry = {.max_attempts = 2, .initial_backoff = 0.01, .max_backoff = 0.05, .multiplier = 2};
  return o;
}

TEST(OtlpSession, TheWholeSpanTreeReachesTheReceiver) {
  testing::Receiver rx;
  auto exporter = std::make_shared<OtlpHttpSpanExporter>(to(rx.url("/v1/traces")));
  auto processor = std::make_shared<BatchSpanProcessor>(exporter);
  auto flow = testing::pool_engine(2);
  auto tm = flow->start_telemetry({.span_processors = {processor}});
  auto f = flow->function_task("step", [](int i) { return i + 1; });
  {
    auto scope = flow->workflow_scope("pipeline");
    auto a = f(1);
    auto b = f(a);
    EXPECT_EQ(b.get(), 3);
  }
  auto failing = flow->function_task("boom", []() -> int { throw std::runtime_error("no"); });
  EXPECT_THROW(failing().get(), std::runtime_error);
  ASSERT_TRUE(flow->shutdown());
  ASSERT_TRUE(rx.wait_for_requests(1, 30s));
  std::vector<pb::Span> spans;
  for (const auto& r : rx.requests()) {
    pb::ExportTraceServiceRequest req;
    ASSERT_TRUE(req.ParseFromString(r.body));
    for (const auto& rs : req.resource_spans()) {
      bool service = false;
      for (const auto& kv : rs.resource().attributes())
        service |= kv.key() == "service.name" && kv.value().string_value() == "otlp-session-test";
      EXPECT_TRUE(service);
      for (const auto& ss : rs.scope_spans()) {
        EXPECT_EQ(ss.scope().name(), "asyncflow");
        for (const auto& s : ss.spans()) spans.push_back(s);
      }
    }
  }
  std::map<std::string, const pb::Span*> by_id;
  const pb::Span* session = nullptr;
  const pb::Span* workflow = nullptr;
  int tasks = 0;
  for (const auto& s : spans) {
    by_id[s.span_id()] = &s;
    EXPECT_EQ(s.trace_id().size(), 16u);
    EXPECT_EQ(s.span_id().size(), 8u);
    EXPECT_EQ(s.trace_id(), spans[0].trace_id()) << "one trace per session";
    EXPECT_EQ(s.kind(), pb::Span::SPAN_KIND_INTERNAL);
    if (s.name() == "session") session = &s;
    if (s.name() == "workflow") workflow = &s;
    tasks += s.name() == "task";
  }
  ASSERT_NE(session, nullptr);
  ASSERT_NE(workflow, nullptr);
  EXPECT_TRUE(session->parent_span_id().empty());
  EXPECT_EQ(workflow->parent_span_id(), session->span_id());
  EXPECT_EQ(tasks, 3);
  for (const auto& s : spans) {
    if (s.name() != "task") continue;
    ASSERT_TRUE(by_id.count(s.parent_span_id())) << "a task's parent is in the trace";
    if (attr(s, "executable") == "step") {
      EXPECT_EQ(s.parent_span_id(), workflow->span_id());
      EXPECT_EQ(s.status().code(), pb::Status::STATUS_CODE_OK);
    } else {
      EXPECT_EQ(s.parent_span_id(), session->span_id());
      EXPECT_EQ(s.status().code(), pb::Status::STATUS_CODE_ERROR);
    }
    EXPECT_GE(s.end_time_unix_nano(), s.start_time_unix_nano());
    // Lifecycle moments as span events, in order, inside the span, each naming the task.
    std::vector<std::string> names;
    std::uint64_t last = s.start_time_unix_nano();
    for (const auto& ev : s.events()) {
      names.push_back(ev.name());
      EXPECT_GE(ev.time_unix_nano(), last) << ev.name();
      EXPECT_LE(ev.time_unix_nano(), s.end_time_unix_nano()) << ev.name();
      last = ev.time_unix_nano();
      ASSERT_EQ(ev.attributes_size(), 1);
      EXPECT_EQ(ev.attributes(0).key(), "task_id");
      EXPECT_EQ(ev.attributes(0).value().string_value(), attr(s, "task_id"));
    }
    ASSERT_GE(names.size(), 2u) << attr(s, "task_id");
    EXPECT_EQ(names.front(), "asyncflow.TaskResolved");
    EXPECT_EQ(names.back(), "TaskStarted");
    if (names.size() == 3) {
      EXPECT_EQ(names[1], "TaskQueued");
    }
  }
  EXPECT_EQ(processor->stats().spans_exported, spans.size());
  EXPECT_EQ(processor->losses().spans, 0u);
}

TEST(OtlpSession, WithTheReceiverDownTheEngineFinishesOnTimeAndTheLossIsCounted) {
  testing::LogCapture log;
  int port = 0;
  {
    testing::Receiver gone;  // a port that was just free: nothing listens on it now
    port = std::stoi(gone.url("").substr(std::string("http://127.0.0.1:").size()));
  }
  auto exporter = std::make_shared<OtlpHttpSpanExporter>(
      to("http://127.0.0.1:" + std::to_string(port) + "/v1/traces"));
  auto processor = std::make_shared<BatchSpanProcessor>(exporter);
  auto flow = testing::pool_engine(2);
  auto tm = flow->start_telemetry({.span_processors = {processor}, .stop_timeout = 10});
  auto f = flow->function_task("step", [](int i) { return i; });
  const auto t0 = Clock::now();
  std::vector<TaskHandle<int>> hs;
  for (int i = 0; i < 200; ++i) hs.push_back(f(i));
  for (auto& h : hs) h.get();
  const auto ran = Clock::now() - t0;
  EXPECT_FALSE(flow->shutdown());           // spans were lost, and it says so
  EXPECT_LT(Clock::now() - t0, ran + 20s);  // within stop_timeout plus the export timeout
  const TelemetryLosses l = tm->losses();
  EXPECT_EQ(l.records_not_exported, 201u) << l.to_string();  // 200 tasks + the session
  EXPECT_GE(log.count("export failed"), 1u) << log.all();
  EXPECT_EQ(log.count(" ended: "), 1u) << log.all();
}

}  // namespace
}  // namespace asyncflow
