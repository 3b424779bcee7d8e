// OtlpHttpSpanExporter / OtlpHttpMetricExporter against a real HTTP receiver started by the
// test (cpp-httplib on 127.0.0.1, an ephemeral port), decoding what arrives with the
// generated messages: the body, its content type and headers, gzip, a 503 answered by a retry
// (Retry-After honoured), a 400 not retried, a receiver that is down (the export fails within
// its timeout), and a shutdown that ends a retry wait at once.
#include <gtest/gtest.h>
#include <httplib.h>

#include <asyncflow/common/error.hpp>
#include <asyncflow/exporters/otlp/otlp_http_exporter.hpp>
#include <asyncflow/telemetry/batch_span_processor.hpp>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "otlp_metrics.pb.h"
#include "otlp_trace.pb.h"
#include "support/log_capture.hpp"
#include "support/otlp_receiver.hpp"
#include "support/sync.hpp"

namespace asyncflow {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace pb = ::asyncflow::otlp::v1;
using testing::Receiver;

OtlpConfig config(std::string url) {
  OtlpConfig c;
  c.url = std::move(url);
  c.timeout = 10;
  c.retry = {.max_attempts = 3, .initial_backoff = 0.01, .max_backoff = 0.05, .multiplier = 2};
  c.origin.resource = {{"service.name", std::string("test-svc")}};
  return c;
}

SpanData span() {
  SpanData s;
  s.name = "task";
  s.trace_id = {1, 2};
  s.span_id = 3;
  s.start_ns = 10;
  s.end_ns = 20;
  s.attributes = {{"session_id", std::string("s")}, {"task_id", std::string("task.000001")}};
  return s;
}

TEST(OtlpHttpExporter, PostsProtobufSpansWithItsHeadersAndContentType) {
  Receiver rx;
  OtlpConfig c = config(rx.url("/v1/traces"));
  c.headers = {{"x-api-key", "tok"}};
  OtlpHttpSpanExporter exporter(c);
  const std::vector<SpanRecord> batch = {span(), span()};
  ASSERT_EQ(exporter.export_spans(batch), ExportResult::kSuccess);
  const auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].get_header_value("Content-Type"), "application/x-protobuf");
  EXPECT_EQ(reqs[0].get_header_value("x-api-key"), "tok");
  pb::ExportTraceServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(reqs[0].body));
  ASSERT_EQ(req.resource_spans(0).scope_spans(0).spans_size(), 2);
  EXPECT_EQ(req.resource_spans(0).resource().attributes(0).value().string_value(), "test-svc");
  const OtlpExportStats st = exporter.stats();
  EXPECT_EQ(st.requests, 1u);
  EXPECT_EQ(st.records_sent, 2u);
  EXPECT_EQ(st.retries, 0u);
}

TEST(OtlpHttpExporter, JsonAndGzipReachTheReceiverDecoded) {
  Receiver rx;
  OtlpConfig c = config(rx.url("/v1/traces"));
  c.protocol = OtlpProtocol::kHttpJson;
  c.gzip = true;
  OtlpHttpSpanExporter exporter(c);
  ASSERT_EQ(exporter.export_spans(std::vector<SpanRecord>{span()}), ExportResult::kSuccess);
  const auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(reqs[0].get_header_value("Content-Encoding"), "gzip");
  // httplib's server inflates a gzip body before the handler sees it.
  EXPECT_NE(reqs[0].body.find("\"spanId\":\"0000000000000003\""), std::string::npos)
      << reqs[0].body;
}

TEST(OtlpHttpExporter, A503IsRetriedAfterItsRetryAfterAndThenSucceeds) {
  Receiver rx({503, 503}, "0");
  OtlpHttpMetricExporter exporter(config(rx.url("/v1/metrics")));
  MetricsSnapshot snap;
  snap.metrics.push_back({});
  snap.metrics[0].name = "tasks_completed";
  snap.metrics[0].points.push_back({});
  snap.metrics[0].points[0].value = 3;
  ASSERT_EQ(exporter.export_metrics(snap), ExportResult::kSuccess);
  EXPECT_EQ(rx.requests().size(), 3u);
  EXPECT_EQ(exporter.stats().retries, 2u);
  pb::ExportMetricsServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(rx.requests().back().body));
  EXPECT_EQ(req.resource_metrics(0).scope_metrics(0).metrics(0).sum().data_points(0).as_double(),
            3);
}

TEST(OtlpHttpExporter, A400IsNotRetriedAndIsSaidOnceWithoutHeaderValues) {
  testing::LogCapture log;
  Receiver rx({400, 400});
  OtlpConfig c = config(rx.url("/v1/traces"));
  c.headers = {{"authorization", "Bearer s3cr3t"}};
  OtlpHttpSpanExporter exporter(c);
  EXPECT_EQ(exporter.export_spans(std::vector<SpanRecord>{span()}), ExportResult::kFailure);
  EXPECT_EQ(exporter.export_spans(std::vector<SpanRecord>{span()}), ExportResult::kFailure);
  EXPECT_EQ(rx.requests().size(), 2u);  // one attempt each
  EXPECT_EQ(exporter.stats().failed_requests, 2u);
  EXPECT_EQ(exporter.stats().records_failed, 2u);
  EXPECT_EQ(log.count("HTTP 400: bad request body"), 1u) << log.all();
  EXPECT_EQ(log.all().find("s3cr3t"), std::string::npos) << log.all();
}

TEST(OtlpHttpExporter, AReceiverThatIsDownFailsTheExportWithinItsTimeout) {
  int port = 0;
  {
    Receiver gone;  // a port that was just free: nothing listens on it now
    port = std::stoi(gone.url("").substr(std::string("http://127.0.0.1:").size()));
  }
  OtlpConfig c = config("http://127.0.0.1:" + std::to_string(port) + "/v1/traces");
  c.timeout = 2;
  c.retry = {.max_attempts = 100, .initial_backoff = 0.05, .max_backoff = 0.2, .multiplier = 2};
  OtlpHttpSpanExporter exporter(c);
  const auto t0 = Clock::now();
  EXPECT_EQ(exporter.export_spans(std::vector<SpanRecord>{span()}), ExportResult::kFailure);
  EXPECT_LT(Clock::now() - t0, 10s);  // bounded by the 2 s export timeout, not 100 attempts
  EXPECT_GE(exporter.stats().retries, 1u);
}

TEST(OtlpHttpExporter, ShutdownEndsARetryWaitAtOnce) {
  Receiver rx({503, 503, 503}, "60");  // the receiver asks for a minute
  OtlpConfig c = config(rx.url("/v1/traces"));
  c.timeout = 120;
  c.retry = {.max_attempts = 5, .initial_backoff = 30, .max_backoff = 60, .multiplier = 2};
  OtlpHttpSpanExporter exporter(c);
  testing::Gate done;
  ExportResult result = ExportResult::kSuccess;
  std::thread t([&] {
    result = exporter.export_spans(std::vector<SpanRecord>{span()});
    done.open();
  });
  while (rx.requests().empty()) std::this_thread::yield();
  EXPECT_FALSE(done.wait_for(100ms));  // waiting to retry
  exporter.shutdown(std::chrono::seconds(1));
  EXPECT_TRUE(done.wait_for(30s));
  t.join();
  EXPECT_EQ(result, ExportResult::kFailure);
  EXPECT_EQ(exporter.export_spans(std::vector<SpanRecord>{span()}), ExportResult::kFailure);
}

TEST(OtlpHttpExporter, SpansAReceiverRejectsInAPartialSuccessAreCountedAndSaidOnce) {
  for (const OtlpProtocol protocol : {OtlpProtocol::kHttpProtobuf, OtlpProtocol::kHttpJson}) {
    Receiver rx;
    if (protocol == OtlpProtocol::kHttpProtobuf) {
      pb::ExportTraceServiceResponse answer;
      answer.mutable_partial_success()->set_rejected_spans(2);
      answer.mutable_partial_success()->set_error_message("span too old");
      rx.answer_with(answer.SerializeAsString(), "application/x-protobuf");
    } else {
      rx.answer_with(R"({"partialSuccess":{"rejectedSpans":"2","errorMessage":"span too old"}})",
                     "application/json");
    }
    OtlpConfig c = config(rx.url("/v1/traces"));
    c.protocol = protocol;
    auto exporter = std::make_shared<OtlpHttpSpanExporter>(c);
    const std::vector<SpanRecord> batch = {span(), span(), span()};
    testing::LogCapture log;
    ASSERT_EQ(exporter->export_spans(batch), ExportResult::kSuccess);
    ASSERT_EQ(exporter->export_spans(batch), ExportResult::kSuccess);
    EXPECT_EQ(exporter->stats().records_rejected, 4u);
    EXPECT_EQ(exporter->losses().records, 4u);
    EXPECT_NE(exporter->losses().last_error.find("rejected 2 of 3 spans: span too old"),
              std::string::npos)
        << exporter->losses().last_error;
    EXPECT_EQ(log.count("the receiver rejected"), 1u) << log.all();
    // Through a batch processor, the rejection is the processor's loss, and so the session's.
    BatchSpanProcessor processor(exporter);
    processor.on_end(span());
    ASSERT_TRUE(processor.force_flush(10s));
    EXPECT_EQ(processor.losses().spans, 5u) << "1 span rejected of 1, plus the exporter's 4";
  }
  // An answer with nothing rejected is no loss.
  Receiver rx;
  rx.answer_with(R"({"partialSuccess":{}})", "application/json");
  OtlpConfig c = config(rx.url("/v1/traces"));
  c.protocol = OtlpProtocol::kHttpJson;
  OtlpHttpSpanExporter exporter(c);
  const std::vector<SpanRecord> batch = {span()};
  ASSERT_EQ(exporter.export_spans(batch), ExportResult::kSuccess);
  EXPECT_EQ(exporter.losses().records, 0u);
}

TEST(OtlpHttpExporter, DataPointsAReceiverRejectsAreCounted) {
  Receiver rx;
  pb::ExportMetricsServiceResponse answer;
  answer.mutable_partial_success()->set_rejected_data_points(1);
  rx.answer_with(answer.SerializeAsString(), "application/x-protobuf");
  OtlpHttpMetricExporter exporter(config(rx.url("/v1/metrics")));
  MetricsSnapshot s;
  MetricData m;
  m.name = "tasks_completed";
  m.points.emplace_back();
  m.points.back().value = 3;
  s.metrics.push_back(m);
  ASSERT_EQ(exporter.export_metrics(s), ExportResult::kSuccess);
  EXPECT_EQ(exporter.losses().records, 1u);
}

/// A PEM certificate and key for 127.0.0.1, made with the openssl command for one test.
struct SelfSignedCertificate {
  std::string cert, key;
  bool made = false;
  SelfSignedCertificate() {
    const std::string dir = ::testing::TempDir() + "/tls-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
    const std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
        " -addext subjectAltName=IP:127.0.0.1 -keyout " +
        key + " -out " + cert + " > " + dir + "/openssl.log 2>&1";
    made = std::system(cmd.c_str()) == 0;
  }
};

TEST(OtlpHttpExporter, HttpsWorksAndTheReceiversCertificateIsChecked) {
  SelfSignedCertificate tls;
  ASSERT_TRUE(tls.made) << "openssl could not make a certificate";
  httplib::SSLServer server(tls.cert.c_str(), tls.key.c_str());
  ASSERT_TRUE(server.is_valid());
  std::atomic<int> posts{0};
  server.Post("/v1/traces", [&](const httplib::Request&, httplib::Response& res) {
    ++posts;
    res.status = 200;
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::yield();
  const std::string url = "https://127.0.0.1:" + std::to_string(port) + "/v1/traces";
  const std::vector<SpanRecord> batch = {span()};
  {
    // Trusting the receiver's certificate: the spans go through TLS.
    OtlpExporterOptions o;
    o.endpoint = url;
    o.certificate = tls.cert;
    OtlpHttpSpanExporter exporter(o);
    EXPECT_EQ(exporter.export_spans(batch), ExportResult::kSuccess);
    EXPECT_EQ(posts.load(), 1);
  }
  {
    // Not trusting it (the system's CAs do not know it): refused, never sent in the clear.
    OtlpConfig c = config(url);
    c.retry.max_attempts = 1;
    testing::LogCapture log;
    OtlpHttpSpanExporter exporter(c);
    EXPECT_EQ(exporter.export_spans(batch), ExportResult::kFailure);
    EXPECT_EQ(posts.load(), 1);
    EXPECT_EQ(log.count("export failed"), 1u) << log.all();
  }
  {
    OtlpExporterOptions o;
    o.endpoint = url;
    o.certificate = "/nonexistent/ca.pem";
    EXPECT_THROW(OtlpHttpSpanExporter{o}, Error);
  }
  server.stop();
  serving.join();
}

}  // namespace
}  // namespace asyncflow
