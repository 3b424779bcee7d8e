// The exporters the OTel environment variables name (environment_exporters.hpp).
#include "asyncflow/exporters/env/environment_exporters.hpp"

#include <cerrno>
#include <cstdlib>

#include "asyncflow/exporters/ostream/ostream_exporter.hpp"
#include "asyncflow/exporters/otlp/otlp_config.hpp"
#include "asyncflow/exporters/otlp/otlp_http_exporter.hpp"
#include "asyncflow/exporters/prometheus/prometheus_exporter.hpp"
#include "asyncflow/telemetry/batch_span_processor.hpp"
#include "asyncflow/telemetry/log.hpp"
#include "asyncflow/telemetry/periodic_metric_reader.hpp"
#include "common/text.hpp"

namespace asyncflow {

namespace {

std::string trimmed_lower(std::string_view s) {
  return detail::ascii_lower(detail::trim_blanks(s));
}

bool is_set(const EnvLookup& env, const char* name) {
  const auto v = env(name);
  return v && !trimmed_lower(*v).empty();
}

/// The names listed in `variable` (lowercase, trimmed), `fallback` when it is unset or empty.
std::vector<std::string> names_in(const EnvLookup& env, const char* variable,
                                  const char* fallback) {
  std::string text = fallback;
  if (const auto v = env(variable); v && !trimmed_lower(*v).empty()) text = *v;
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    const std::size_t comma = std::min(text.find(',', at), text.size());
    std::string name = trimmed_lower(std::string_view(text).substr(at, comma - at));
    if (!name.empty()) out.push_back(std::move(name));
    at = comma + 1;
  }
  return out;
}

void unknown(const char* variable, const std::string& name, const char* known) {
  log_message(LogLevel::kWarning, std::string(variable) + ": unknown exporter '" + name +
                                      "' (known: " + known + "); left out");
}

PrometheusExporterOptions prometheus_options(const EnvLookup& env) {
  PrometheusExporterOptions o;
  if (const auto host = env("OTEL_EXPORTER_PROMETHEUS_HOST"); host && !host->empty()) {
    o.host = *host;
  }
  if (const auto port = env("OTEL_EXPORTER_PROMETHEUS_PORT"); port && !port->empty()) {
    char* end = nullptr;
    errno = 0;
    const long p = std::strtol(port->c_str(), &end, 10);
    if (errno != 0 || end == port->c_str() || *end != '\0' || p < 1 || p > 65535) {
      log_message(LogLevel::kWarning,
                  "OTEL_EXPORTER_PROMETHEUS_PORT is not a port in [1, 65535]; 9464 is used");
    } else {
      o.port = static_cast<int>(p);
    }
  }
  return o;
}

}  // namespace

EnvironmentExporters exporters_from_environment(const EnvLookup& env, const Attributes& resource) {
  OtlpExporterOptions otlp;
  otlp.resource = resource;
  EnvironmentExporters out;
  if (const auto disabled = env("OTEL_SDK_DISABLED")) {
    const std::string v = trimmed_lower(*disabled);
    if (v == "true") return out;
    if (!v.empty() && v != "false") {
      log_message(LogLevel::kWarning,
                  "OTEL_SDK_DISABLED is neither true nor false; taken as false");
    }
  }
  const bool traces_endpoint = is_set(env, "OTEL_EXPORTER_OTLP_ENDPOINT") ||
                               is_set(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const bool metrics_endpoint = is_set(env, "OTEL_EXPORTER_OTLP_ENDPOINT") ||
                                is_set(env, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
  for (const std::string& name :
       names_in(env, "OTEL_TRACES_EXPORTER", traces_endpoint ? "otlp" : "none")) {
    if (name == "none") continue;
    if (name == "otlp") {
      OtlpConfig config = resolve_otlp_config(OtlpSignal::kTraces, otlp, env);
      out.described.push_back("traces: otlp " + std::string(to_string(config.protocol)) + " to " +
                              config.url);
      out.span_processors.push_back(std::make_shared<BatchSpanProcessor>(
          std::make_shared<OtlpHttpSpanExporter>(std::move(config))));
    } else if (name == "console") {
      out.described.emplace_back("traces: console (stdout)");
      out.span_processors.push_back(
          std::make_shared<BatchSpanProcessor>(std::make_shared<OstreamSpanExporter>()));
    } else {
      unknown("OTEL_TRACES_EXPORTER", name, "otlp, console, none");
    }
  }
  for (const std::string& name :
       names_in(env, "OTEL_METRICS_EXPORTER", metrics_endpoint ? "otlp" : "none")) {
    if (name == "none") continue;
    if (name == "otlp") {
      OtlpConfig config = resolve_otlp_config(OtlpSignal::kMetrics, otlp, env);
      out.described.push_back("metrics: otlp " + std::string(to_string(config.protocol)) + " to " +
                              config.url);
      out.metric_readers.push_back(std::make_shared<PeriodicExportingMetricReader>(
          std::make_shared<OtlpHttpMetricExporter>(std::move(config))));
    } else if (name == "prometheus") {
      PrometheusExporterOptions p = prometheus_options(env);
      p.resource = resource;
      auto prometheus = std::make_shared<PrometheusExporter>(std::move(p));
      out.described.push_back("metrics: prometheus at " + prometheus->url());
      out.metric_readers.push_back(std::move(prometheus));
    } else if (name == "console") {
      out.described.emplace_back("metrics: console (stdout)");
      out.metric_readers.push_back(std::make_shared<PeriodicExportingMetricReader>(
          std::make_shared<OstreamMetricExporter>()));
    } else {
      unknown("OTEL_METRICS_EXPORTER", name, "otlp, prometheus, console, none");
    }
  }
  return out;
}

std::vector<std::string> add_exporters_from_environment(TelemetryOptions& options,
                                                        const EnvLookup& env) {
  EnvironmentExporters e = exporters_from_environment(env, options.resource);
  for (auto& p : e.span_processors) options.span_processors.push_back(std::move(p));
  for (auto& r : e.metric_readers) options.metric_readers.push_back(std::move(r));
  return std::move(e.described);
}

}  // namespace asyncflow
