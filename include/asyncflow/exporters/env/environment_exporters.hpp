// The exporters the OTel SDK's environment variables ask for, built: OTEL_SDK_DISABLED,
// OTEL_TRACES_EXPORTER (otlp, console, none) and OTEL_METRICS_EXPORTER (otlp, prometheus,
// console, none), each a comma-separated list, with the OTLP exporters configured by
// OTEL_EXPORTER_OTLP_* and the Prometheus endpoint by OTEL_EXPORTER_PROMETHEUS_HOST/_PORT.
//
// One deviation from the specification, on purpose: when OTEL_TRACES_EXPORTER (or
// OTEL_METRICS_EXPORTER) is unset, OTLP is chosen only if an OTLP endpoint variable is set,
// so a program run where no collector listens does not retry http://localhost:4318 at every
// export. Set the variable to "otlp" to get the specification's default.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "asyncflow/telemetry/metrics.hpp"
#include "asyncflow/telemetry/options.hpp"
#include "asyncflow/telemetry/resource.hpp"
#include "asyncflow/telemetry/span.hpp"

namespace asyncflow {

/// What the environment asked for: processors and readers ready for TelemetryOptions.
struct EnvironmentExporters {
  std::vector<std::shared_ptr<SpanProcessor>> span_processors;
  std::vector<std::shared_ptr<MetricReader>> metric_readers;
  /// One line per exporter, for a program to print: "traces: otlp http/protobuf to
  /// https://otlp.example/v1/traces", "metrics: prometheus at http://127.0.0.1:9464/metrics".
  std::vector<std::string> described;
};

/// Reads the variables through `env` and builds what they name: OTLP spans through a
/// BatchSpanProcessor, OTLP and console metrics through a PeriodicExportingMetricReader, console
/// spans through a BatchSpanProcessor, Prometheus as its pull endpoint. An unknown name or a
/// malformed value is one warning naming the variable, and is left out (or its default used);
/// nothing else is affected. Throws asyncflow::Error when an exporter asked for cannot be made
/// (the Prometheus port is taken). `resource`: attributes every exporter's resource gets
/// (winning over OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME). Thread-safe as getenv is.
EnvironmentExporters exporters_from_environment(const EnvLookup& env = process_environment(),
                                                const Attributes& resource = {});

/// exporters_from_environment() with `options.resource`, appended to `options`' span
/// processors and metric readers; returns what it added, described.
std::vector<std::string> add_exporters_from_environment(
    TelemetryOptions& options, const EnvLookup& env = process_environment());

}  // namespace asyncflow
