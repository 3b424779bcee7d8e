// OtlpEncoder: what the protobuf and JSON bodies carry, read back with the generated messages,
// with `protoc --decode_raw` (field numbers as the OTLP specification gives them, decoded by
// protobuf's own parser without our definitions) and with a JSON parser.
#include <gtest/gtest.h>

#include <asyncflow/exporters/otlp/otlp_encoder.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "otlp_metrics.pb.h"
#include "otlp_trace.pb.h"
#include "support/temp_path.hpp"

namespace asyncflow {
namespace {

namespace pb = ::asyncflow::otlp::v1;
using nlohmann::json;

OtlpOrigin origin() {
  return OtlpOrigin{
      .resource = {{"service.name", std::string("svc")}, {"process.pid", std::int64_t{42}}},
      .scope_name = "asyncflow",
      .scope_version = "9.9.9"};
}

SpanData task_span(std::string session = "s1") {
  SpanData s;
  s.name = "task";
  s.trace_id = {0x0102030405060708ULL, 0x090a0b0c0d0e0f10ULL};
  s.span_id = 0x1112131415161718ULL;
  s.parent_span_id = 0x2122232425262728ULL;
  s.start_ns = 1'700'000'000'000'000'001;
  s.end_ns = 1'700'000'000'500'000'002;
  s.status = SpanStatus::kError;
  s.status_description = "RuntimeError";
  s.attributes = {{"session_id", std::move(session)},
                  {"task_id", std::string("task.000001")},
                  {"ranks", std::int64_t{4}},
                  {"ok", false},
                  {"ratio", 0.5},
                  {"none", std::monostate{}}};
  s.events = {{"TaskQueued", 1'700'000'000'100'000'000, {{"task_id", std::string("task.000001")}}}};
  return s;
}

TEST(OtlpEncoder, ProtobufCarriesTheSpanItsIdsAttributesEventsAndStatus) {
  OtlpEncoder enc(origin());
  std::string body;
  const std::vector<SpanData> spans = {task_span()};
  enc.encode_traces(spans, OtlpProtocol::kHttpProtobuf, body);
  pb::ExportTraceServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(body));
  ASSERT_EQ(req.resource_spans_size(), 1);
  const auto& rs = req.resource_spans(0);
  ASSERT_EQ(rs.resource().attributes_size(), 3);  // the origin's two, then the session's id
  EXPECT_EQ(rs.resource().attributes(0).key(), "service.name");
  EXPECT_EQ(rs.resource().attributes(0).value().string_value(), "svc");
  EXPECT_EQ(rs.resource().attributes(1).value().int_value(), 42);
  EXPECT_EQ(rs.resource().attributes(2).key(), "session_id");
  EXPECT_EQ(rs.resource().attributes(2).value().string_value(), "s1");
  ASSERT_EQ(rs.scope_spans_size(), 1);
  EXPECT_EQ(rs.scope_spans(0).scope().name(), "asyncflow");
  EXPECT_EQ(rs.scope_spans(0).scope().version(), "9.9.9");
  ASSERT_EQ(rs.scope_spans(0).spans_size(), 1);
  const pb::Span& s = rs.scope_spans(0).spans(0);
  EXPECT_EQ(s.trace_id(),
            std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10", 16));
  EXPECT_EQ(s.span_id(), std::string("\x11\x12\x13\x14\x15\x16\x17\x18", 8));
  EXPECT_EQ(s.parent_span_id(), std::string("\x21\x22\x23\x24\x25\x26\x27\x28", 8));
  EXPECT_EQ(s.name(), "task");
  EXPECT_EQ(s.kind(), pb::Span::SPAN_KIND_INTERNAL);
  EXPECT_EQ(s.start_time_unix_nano(), 1'700'000'000'000'000'001ULL);
  EXPECT_EQ(s.end_time_unix_nano(), 1'700'000'000'500'000'002ULL);
  ASSERT_EQ(s.attributes_size(), 6);
  EXPECT_EQ(s.attributes(2).value().int_value(), 4);
  EXPECT_TRUE(s.attributes(3).value().has_bool_value());
  EXPECT_FALSE(s.attributes(3).value().bool_value());
  EXPECT_DOUBLE_EQ(s.attributes(4).value().double_value(), 0.5);
  EXPECT_EQ(s.attributes(5).value().value_case(), pb::AnyValue::VALUE_NOT_SET);  // null
  ASSERT_EQ(s.events_size(), 1);
  EXPECT_EQ(s.events(0).name(), "TaskQueued");
  EXPECT_EQ(s.events(0).time_unix_nano(), 1'700'000'000'100'000'000ULL);
  EXPECT_EQ(s.status().code(), pb::Status::STATUS_CODE_ERROR);
  EXPECT_EQ(s.status().message(), "RuntimeError");
}

TEST(OtlpEncoder, ARootSpanHasNoParentAndAnUnsetStatusIsLeftOut) {
  OtlpEncoder enc(origin());
  SpanData root = task_span();
  root.parent_span_id = 0;
  root.status = SpanStatus::kUnset;
  root.status_description.reset();
  std::string body;
  enc.encode_traces(std::vector<SpanData>{root}, OtlpProtocol::kHttpProtobuf, body);
  pb::ExportTraceServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(body));
  const pb::Span& s = req.resource_spans(0).scope_spans(0).spans(0);
  EXPECT_TRUE(s.parent_span_id().empty());
  EXPECT_FALSE(s.has_status());
}

TEST(OtlpEncoder, SpansOfTwoSessionsGoToTwoResources) {
  OtlpEncoder enc(origin());
  std::string body;
  enc.encode_traces(std::vector<SpanData>{task_span("a"), task_span("b"), task_span("a")},
                    OtlpProtocol::kHttpProtobuf, body);
  pb::ExportTraceServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(body));
  ASSERT_EQ(req.resource_spans_size(), 2);
  EXPECT_EQ(req.resource_spans(0).resource().attributes(2).value().string_value(), "a");
  EXPECT_EQ(req.resource_spans(0).scope_spans(0).spans_size(), 2);
  EXPECT_EQ(req.resource_spans(1).resource().attributes(2).value().string_value(), "b");
  EXPECT_EQ(req.resource_spans(1).scope_spans(0).spans_size(), 1);
}

// The encoder keeps its trace request between calls and overwrites it in place; nothing of an
// earlier batch may show in a later one. Each body must be byte for byte the one a fresh
// encoder writes for the same batch, across batches that shrink and grow, change attribute
// types, drop parents, statuses, descriptions and events, and mix full and compact spans.
TEST(OtlpEncoder, AnEncoderReusedAcrossCallsWritesWhatAFreshOneWrites) {
  SpanData retyped = task_span("a");
  retyped.parent_span_id = 0;
  retyped.status = SpanStatus::kUnset;
  retyped.status_description.reset();
  retyped.events.clear();
  retyped.attributes = {{"session_id", std::string("a")},
                        {"task_id", std::int64_t{7}},  // was a string
                        {"ranks", std::string("four")},
                        {"ok", std::monostate{}},
                        {"ratio", true}};
  SpanData more_events = task_span("c");
  more_events.status = SpanStatus::kOk;
  more_events.status_description.reset();
  more_events.events.push_back({"TaskStarted", 5, {{"n", 1.5}, {"flag", true}}});
  more_events.attributes.emplace_back("extra", std::string("x"));
  auto context = std::make_shared<EventContext>();
  context->session_id = "b";
  const std::string executable = "preprocess";
  const std::string task_type = "function";
  TaskSpan compact;
  compact.context = context;
  compact.executable = &executable;
  compact.task_type = &task_type;
  compact.task_id = "task.000002";
  compact.backend = "threadpool";
  compact.trace_id = {1, 2};
  compact.span_id = 3;
  compact.parent_span_id = 4;
  compact.start_ns = 10;
  compact.end_ns = 20;
  compact.queued_ns = 12;
  compact.outcome = TaskSpan::Outcome::kFailed;
  compact.error_type = "ValueError";

  const std::vector<std::vector<SpanData>> batches = {
      {task_span("a"), task_span("b"), task_span("a")},
      {more_events, task_span("c")},
      {retyped},
      {},
      {task_span("a"), task_span("b"), task_span("a")}};
  OtlpEncoder reused(origin());
  std::string body;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    reused.encode_traces(batches[i], OtlpProtocol::kHttpProtobuf, body);
    std::string fresh;
    OtlpEncoder(origin()).encode_traces(batches[i], OtlpProtocol::kHttpProtobuf, fresh);
    EXPECT_EQ(body, fresh) << "batch " << i;
  }
  const std::vector<SpanRecord> records = {compact, retyped, compact, task_span("b")};
  reused.encode_traces(records, OtlpProtocol::kHttpProtobuf, body);
  std::string fresh;
  OtlpEncoder(origin()).encode_traces(records, OtlpProtocol::kHttpProtobuf, fresh);
  EXPECT_EQ(body, fresh);
  pb::ExportTraceServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(body));
  ASSERT_EQ(req.resource_spans_size(), 2);  // sessions "b" and "a"
  EXPECT_EQ(req.resource_spans(0).scope_spans(0).spans_size(), 3);
  EXPECT_EQ(req.resource_spans(0).scope_spans(0).spans(0).status().message(), "ValueError");
}

// protoc's raw decoder knows no message definitions: it shows the field numbers and wire
// types actually sent, which must be the specification's (trace.proto: Span.name = 5,
// kind = 6, start/end = 7/8 as fixed64, status = 15 with code = 3 and message = 2).
TEST(OtlpEncoder, TheWireCarriesTheSpecificationsFieldNumbers) {
  OtlpEncoder enc(origin());
  std::string body;
  enc.encode_traces(std::vector<SpanData>{task_span()}, OtlpProtocol::kHttpProtobuf, body);
  const std::string in = testing::fresh_temp_path("otlp_body.bin").string();
  std::ofstream(in, std::ios::binary) << body;
  const std::string cmd = "protoc --decode_raw < '" + in + "'";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string raw;
  char buf[4096];
  for (std::size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) raw.append(buf, n);
  ASSERT_EQ(pclose(p), 0) << raw;
  // resource_spans = 1 { scope_spans = 2 { spans = 2 { ... } } }
  EXPECT_NE(raw.find("1 {\n  1 {\n    1 {\n      1: \"service.name\""), std::string::npos) << raw;
  EXPECT_NE(raw.find("5: \"task\""), std::string::npos) << raw;
  EXPECT_NE(raw.find("6: 1\n"), std::string::npos) << raw;                 // SPAN_KIND_INTERNAL
  EXPECT_NE(raw.find("7: 0x17979cfe362a0001"), std::string::npos) << raw;  // fixed64 start
  EXPECT_NE(raw.find("8: 0x17979cfe53f76502"), std::string::npos) << raw;
  EXPECT_NE(raw.find("15 {\n        2: \"RuntimeError\"\n        3: 2\n"), std::string::npos)
      << raw;
}

TEST(OtlpEncoder, JsonHasHexIdsStringNanosAndNumericEnums) {
  OtlpEncoder enc(origin());
  std::string body;
  SpanData s = task_span();
  s.attributes.emplace_back("nan", std::numeric_limits<double>::quiet_NaN());
  enc.encode_traces(std::vector<SpanData>{s}, OtlpProtocol::kHttpJson, body);
  const json j = json::parse(body);
  const json& rs = j.at("resourceSpans").at(0);
  EXPECT_EQ(rs.at("resource").at("attributes").at(2).at("value").at("stringValue"), "s1");
  EXPECT_EQ(rs.at("scopeSpans").at(0).at("scope").at("name"), "asyncflow");
  const json& span = rs.at("scopeSpans").at(0).at("spans").at(0);
  EXPECT_EQ(span.at("traceId"), "0102030405060708090a0b0c0d0e0f10");
  EXPECT_EQ(span.at("spanId"), "1112131415161718");
  EXPECT_EQ(span.at("parentSpanId"), "2122232425262728");
  EXPECT_EQ(span.at("kind"), 1);
  EXPECT_EQ(span.at("startTimeUnixNano"), "1700000000000000001");
  EXPECT_EQ(span.at("attributes").at(2).at("value").at("intValue"), "4");
  EXPECT_EQ(span.at("attributes").at(6).at("value").at("doubleValue"), "NaN");
  EXPECT_EQ(span.at("events").at(0).at("timeUnixNano"), "1700000000100000000");
  EXPECT_EQ(span.at("status").at("code"), 2);
  EXPECT_EQ(span.at("status").at("message"), "RuntimeError");
}

MetricPoint point(const Attributes& a, double value) {
  MetricPoint p;
  p.attributes = a;
  p.value = value;
  return p;
}

MetricsSnapshot snapshot() {
  MetricsSnapshot s;
  s.start_ns = 1'000;
  s.time_ns = 2'000;
  const Attributes a = {{"session_id", std::string("s1")}, {"backend", std::string("pool")}};
  s.metrics.push_back({.name = "tasks_completed",
                       .description = "Total tasks completed",
                       .unit = "{task}",
                       .kind = InstrumentKind::kCounter,
                       .bounds = {},
                       .points = {point(a, 7)}});
  s.metrics.push_back({.name = "tasks_running",
                       .description = "Tasks currently running",
                       .unit = "{task}",
                       .kind = InstrumentKind::kUpDownCounter,
                       .bounds = {},
                       .points = {point(a, 2)}});
  s.metrics.push_back({.name = "task_duration_seconds",
                       .description = "Task execution duration in seconds",
                       .unit = "s",
                       .kind = InstrumentKind::kHistogram,
                       .bounds = {0.1, 1},
                       .points = {{.attributes = a,
                                   .count = 3,
                                   .sum = 1.5,
                                   .min = 0.05,
                                   .max = 1.2,
                                   .bucket_counts = {1, 1, 1}}}});
  s.metrics.push_back({.name = "node_cpu_utilization",
                       .description = "Node CPU utilization percent",
                       .unit = "%",
                       .kind = InstrumentKind::kGauge,
                       .bounds = {},
                       .points = {point(a, 12.5)}});
  return s;
}

TEST(OtlpEncoder, MetricsAreCumulativeSumsHistogramsAndGaugesWithTheirTimes) {
  OtlpEncoder enc(origin());
  std::string body;
  enc.encode_metrics(snapshot(), OtlpProtocol::kHttpProtobuf, body);
  pb::ExportMetricsServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(body));
  ASSERT_EQ(req.resource_metrics_size(), 1);
  const auto& sm = req.resource_metrics(0).scope_metrics(0);
  ASSERT_EQ(sm.metrics_size(), 4);
  const pb::Metric& counter = sm.metrics(0);
  EXPECT_EQ(counter.name(), "tasks_completed");
  EXPECT_EQ(counter.unit(), "{task}");
  ASSERT_TRUE(counter.has_sum());
  EXPECT_TRUE(counter.sum().is_monotonic());
  EXPECT_EQ(counter.sum().aggregation_temporality(), pb::AGGREGATION_TEMPORALITY_CUMULATIVE);
  EXPECT_EQ(counter.sum().data_points(0).as_double(), 7);
  EXPECT_EQ(counter.sum().data_points(0).start_time_unix_nano(), 1'000u);
  EXPECT_EQ(counter.sum().data_points(0).time_unix_nano(), 2'000u);
  EXPECT_EQ(counter.sum().data_points(0).attributes(1).value().string_value(), "pool");
  ASSERT_TRUE(sm.metrics(1).has_sum());
  EXPECT_FALSE(sm.metrics(1).sum().is_monotonic());
  const pb::Metric& h = sm.metrics(2);
  ASSERT_TRUE(h.has_histogram());
  EXPECT_EQ(h.histogram().aggregation_temporality(), pb::AGGREGATION_TEMPORALITY_CUMULATIVE);
  const pb::HistogramDataPoint& dp = h.histogram().data_points(0);
  EXPECT_EQ(dp.count(), 3u);
  EXPECT_DOUBLE_EQ(dp.sum(), 1.5);
  EXPECT_EQ(std::vector<double>(dp.explicit_bounds().begin(), dp.explicit_bounds().end()),
            (std::vector<double>{0.1, 1}));
  EXPECT_EQ(std::vector<std::uint64_t>(dp.bucket_counts().begin(), dp.bucket_counts().end()),
            (std::vector<std::uint64_t>{1, 1, 1}));
  EXPECT_DOUBLE_EQ(dp.min(), 0.05);
  EXPECT_DOUBLE_EQ(dp.max(), 1.2);
  ASSERT_TRUE(sm.metrics(3).has_gauge());
  EXPECT_EQ(sm.metrics(3).gauge().data_points(0).as_double(), 12.5);
}

TEST(OtlpEncoder, MetricsJsonFollowsTheMapping) {
  OtlpEncoder enc(origin());
  std::string body;
  enc.encode_metrics(snapshot(), OtlpProtocol::kHttpJson, body);
  const json j = json::parse(body);
  const json& metrics = j.at("resourceMetrics").at(0).at("scopeMetrics").at(0).at("metrics");
  EXPECT_EQ(metrics.at(0).at("sum").at("aggregationTemporality"), 2);
  EXPECT_EQ(metrics.at(0).at("sum").at("isMonotonic"), true);
  EXPECT_EQ(metrics.at(0).at("sum").at("dataPoints").at(0).at("timeUnixNano"), "2000");
  EXPECT_EQ(metrics.at(2).at("histogram").at("dataPoints").at(0).at("count"), "3");
  EXPECT_EQ(metrics.at(2).at("histogram").at("dataPoints").at(0).at("bucketCounts"),
            json::array({"1", "1", "1"}));
  EXPECT_EQ(metrics.at(3).at("gauge").at("dataPoints").at(0).at("asDouble"), 12.5);
}

}  // namespace
}  // namespace asyncflow
