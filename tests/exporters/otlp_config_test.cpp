// resolve_otlp_config / otlp_resource: the OTLP exporter specification's variables and path
// rules, code winning over the environment, and malformed values warned about by name only.
#include <gtest/gtest.h>
#include <unistd.h>

#include <asyncflow/common/error.hpp>
#include <asyncflow/exporters/otlp/otlp_config.hpp>
#include <map>
#include <string>

#include "support/env_lookup.hpp"
#include "support/log_capture.hpp"

namespace asyncflow {
namespace {

EnvLookup env(std::map<std::string, std::string> vars) {
  return testing::env_of(std::move(vars));
}

const FieldValue* find(const Attributes& a, std::string_view key) {
  for (const auto& [k, v] : a)
    if (k == key) return &v;
  return nullptr;
}

std::string text(const Attributes& a, std::string_view key) {
  const FieldValue* v = find(a, key);
  return v != nullptr && std::holds_alternative<std::string>(*v) ? std::get<std::string>(*v) : "";
}

TEST(OtlpConfig, DefaultsAreLocalhost4318ProtobufTenSecondsNoGzip) {
  const OtlpConfig t = resolve_otlp_config(OtlpSignal::kTraces, {}, env({}));
  EXPECT_EQ(t.url, "http://localhost:4318/v1/traces");
  EXPECT_EQ(t.protocol, OtlpProtocol::kHttpProtobuf);
  EXPECT_DOUBLE_EQ(t.timeout, 10.0);
  EXPECT_FALSE(t.gzip);
  EXPECT_TRUE(t.headers.empty());
  EXPECT_EQ(resolve_otlp_config(OtlpSignal::kMetrics, {}, env({})).url,
            "http://localhost:4318/v1/metrics");
}

TEST(OtlpConfig, TheGeneralEndpointGetsTheSignalPathTheSpecificOneIsUsedAsIs) {
  auto e = env({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318"},
                {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:9090/custom/path"}});
  EXPECT_EQ(resolve_otlp_config(OtlpSignal::kTraces, {}, e).url,
            "https://collector:4318/v1/traces");
  EXPECT_EQ(resolve_otlp_config(OtlpSignal::kMetrics, {}, e).url, "http://m:9090/custom/path");
  // A base with a path keeps it, with one '/' before v1/...
  EXPECT_EQ(resolve_otlp_config(OtlpSignal::kTraces, {},
                                env({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:1/otlp/"}}))
                .url,
            "http://h:1/otlp/v1/traces");
}

TEST(OtlpConfig, HeadersArePercentDecodedAndCodeWinsPerKey) {
  OtlpExporterOptions o;
  o.headers = {{"X-Team", "from-code"}};
  const OtlpConfig c = resolve_otlp_config(
      OtlpSignal::kTraces, o,
      env({{"OTEL_EXPORTER_OTLP_HEADERS", " x-team = abc%3D%3D , authorization=Bearer%20tok "}}));
  ASSERT_EQ(c.headers.size(), 2u);
  EXPECT_EQ(c.headers[0].first, "x-team");
  EXPECT_EQ(c.headers[0].second, "from-code");
  EXPECT_EQ(c.headers[1].first, "authorization");
  EXPECT_EQ(c.headers[1].second, "Bearer tok");
}

TEST(OtlpConfig, SignalSpecificVariablesBeatTheGeneralOnes) {
  auto e = env({{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
                {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"},
                {"OTEL_EXPORTER_OTLP_TIMEOUT", "2500"},
                {"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "500"},
                {"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"},
                {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"}});
  const OtlpConfig t = resolve_otlp_config(OtlpSignal::kTraces, {}, e);
  const OtlpConfig m = resolve_otlp_config(OtlpSignal::kMetrics, {}, e);
  EXPECT_EQ(t.protocol, OtlpProtocol::kHttpProtobuf);
  EXPECT_EQ(m.protocol, OtlpProtocol::kHttpJson);
  EXPECT_DOUBLE_EQ(t.timeout, 2.5);
  EXPECT_DOUBLE_EQ(m.timeout, 0.5);
  EXPECT_FALSE(t.gzip);
  EXPECT_TRUE(m.gzip);
}

TEST(OtlpConfig, MalformedVariablesWarnByNameNeverShowTheValueAndKeepTheDefault) {
  testing::LogCapture log;
  auto e = env({{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"},
                {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
                {"OTEL_EXPORTER_OTLP_TIMEOUT", "ten"},
                {"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"},
                {"OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cr3t-token,broken,bad=%zz"}});
  const OtlpConfig c = resolve_otlp_config(OtlpSignal::kTraces, {}, e);
  EXPECT_EQ(c.url, "http://localhost:4318/v1/traces");
  EXPECT_EQ(c.protocol, OtlpProtocol::kHttpProtobuf);
  EXPECT_DOUBLE_EQ(c.timeout, 10.0);
  EXPECT_FALSE(c.gzip);
  ASSERT_EQ(c.headers.size(), 1u);  // the good entry kept
  EXPECT_EQ(log.count("OTEL_EXPORTER_OTLP_ENDPOINT"), 1u) << log.all();
  EXPECT_EQ(log.count("OTEL_EXPORTER_OTLP_PROTOCOL"), 1u) << log.all();
  EXPECT_EQ(log.count("OTEL_EXPORTER_OTLP_TIMEOUT"), 1u) << log.all();
  EXPECT_EQ(log.count("OTEL_EXPORTER_OTLP_COMPRESSION"), 1u) << log.all();
  EXPECT_EQ(log.count("OTEL_EXPORTER_OTLP_HEADERS has 2 malformed entries"), 1u) << log.all();
  EXPECT_EQ(log.all().find("s3cr3t"), std::string::npos) << log.all();
}

TEST(OtlpConfig, BadValuesInCodeAreClearErrors) {
  EXPECT_THROW(resolve_otlp_config(OtlpSignal::kTraces, {.endpoint = "localhost:4318"}, env({})),
               Error);
  EXPECT_THROW(resolve_otlp_config(OtlpSignal::kTraces, {.timeout = 0.0}, env({})), Error);
  OtlpExporterOptions o;
  o.retry.max_attempts = 0;
  EXPECT_THROW(resolve_otlp_config(OtlpSignal::kTraces, o, env({})), Error);
  o.retry = {.max_attempts = 3, .initial_backoff = 2, .max_backoff = 1, .multiplier = 2};
  EXPECT_THROW(resolve_otlp_config(OtlpSignal::kTraces, o, env({})), Error);
}

TEST(OtlpResource, ServiceNameFromCodeThenEnvThenResourceAttributesThenDefault) {
  EXPECT_EQ(text(otlp_resource({}, env({})), "service.name"), "asyncflow");
  EXPECT_EQ(text(otlp_resource({}, env({{"OTEL_RESOURCE_ATTRIBUTES", "service.name=ra"}})),
                 "service.name"),
            "ra");
  EXPECT_EQ(text(otlp_resource({}, env({{"OTEL_RESOURCE_ATTRIBUTES", "service.name=ra"},
                                        {"OTEL_SERVICE_NAME", "sn"}})),
                 "service.name"),
            "sn");
  EXPECT_EQ(text(otlp_resource({.service_name = "code"}, env({{"OTEL_SERVICE_NAME", "sn"}})),
                 "service.name"),
            "code");
}

TEST(OtlpResource, CarriesTheEnvironmentsAttributesHostPidAndTheSdk) {
  OtlpExporterOptions o;
  o.resource = {{"deployment.environment", std::string("code")}};
  const Attributes r = otlp_resource(
      o, env({{"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=env,team=hpc%20ml"}}));
  EXPECT_EQ(text(r, "deployment.environment"), "code");
  EXPECT_EQ(text(r, "team"), "hpc ml");
  EXPECT_FALSE(text(r, "host.name").empty());
  ASSERT_NE(find(r, "process.pid"), nullptr);
  EXPECT_EQ(std::get<std::int64_t>(*find(r, "process.pid")), getpid());
  EXPECT_EQ(text(r, "telemetry.sdk.name"), "asyncflow");
  EXPECT_EQ(text(r, "telemetry.sdk.language"), "cpp");
  EXPECT_FALSE(text(r, "telemetry.sdk.version").empty());
}

}  // namespace
}  // namespace asyncflow
