// Where and how OTLP exporters send: the standard OTEL_EXPORTER_OTLP_* variables, the resource
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) and the options given in code, which win. A
// malformed variable gives one warning naming it (never its value: headers carry tokens) and
// its default is used; nothing else is affected.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "asyncflow/exporters/otlp/otlp_encoder.hpp"
#include "asyncflow/telemetry/resource.hpp"

namespace asyncflow {

/// The two signals an OTLP/HTTP exporter sends, to /v1/traces and /v1/metrics.
enum class OtlpSignal { kTraces, kMetrics };

/// Retries of a failed export (HTTP 429, 502, 503, 504 or no connection), with exponential
/// backoff and jitter; a Retry-After the receiver sends is honoured (within max_backoff).
struct OtlpRetryOptions {
  int max_attempts = 5;          ///< the first try included; 1 = no retry
  double initial_backoff = 1.0;  ///< seconds before the first retry
  double max_backoff = 5.0;      ///< seconds, the most any wait lasts
  double multiplier = 1.5;       ///< each wait is at most this times the previous one
};

/// What code sets; unset fields come from the environment, then the defaults.
struct OtlpExporterOptions {
  /// The full URL of this signal's endpoint (used as is), e.g. "https://otlp.example/v1/traces".
  std::optional<std::string> endpoint{};
  /// Added to the headers from the environment; a key given here wins.
  std::vector<std::pair<std::string, std::string>> headers{};
  std::optional<OtlpProtocol> protocol{};
  /// Seconds one export (all its attempts) may take; > 0.
  std::optional<double> timeout{};
  /// gzip request bodies.
  std::optional<bool> gzip{};
  /// PEM file of the CA certificates an https endpoint is checked against (a private CA, a
  /// self-signed receiver); unset: OTEL_EXPORTER_OTLP_CERTIFICATE, else the system's.
  std::optional<std::string> certificate{};
  OtlpRetryOptions retry{};
  /// service.name; beats OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
  std::optional<std::string> service_name{};
  /// Resource attributes added to (and winning over) OTEL_RESOURCE_ATTRIBUTES.
  Attributes resource{};
};

/// An exporter's resolved configuration. Headers may hold secrets: never log them.
struct OtlpConfig {
  std::string url;  ///< "http://localhost:4318/v1/traces" by default
  std::vector<std::pair<std::string, std::string>> headers;
  OtlpProtocol protocol = OtlpProtocol::kHttpProtobuf;
  double timeout = 10.0;  ///< seconds
  bool gzip = false;
  std::string certificate;  ///< CA file for https; empty = the system's CA certificates
  OtlpRetryOptions retry;
  OtlpOrigin origin;
};

/// Resolves `options` for `signal` against `env`, as the OTLP exporter specification says:
/// OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT is used as is; else OTEL_EXPORTER_OTLP_ENDPOINT gets
/// "v1/traces" or "v1/metrics" appended (after a '/'); else http://localhost:4318. The
/// signal-specific _HEADERS, _PROTOCOL ("http/protobuf", "http/json"), _TIMEOUT
/// (milliseconds), _COMPRESSION ("gzip", "none") and _CERTIFICATE (a CA file) beat the
/// general ones. Throws
/// asyncflow::Error for a bad value given in code (an empty or non-http(s) endpoint, a timeout
/// <= 0, retry options out of range).
OtlpConfig resolve_otlp_config(OtlpSignal signal, const OtlpExporterOptions& options = {},
                               const EnvLookup& env = process_environment());

/// The resource every request carries: resolve_resource() of the options' service_name and
/// resource attributes.
Attributes otlp_resource(const OtlpExporterOptions& options = {},
                         const EnvLookup& env = process_environment());

}  // namespace asyncflow
