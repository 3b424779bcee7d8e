// OTLP exporter configuration from the environment and code (otlp_config.hpp).
#include "asyncflow/exporters/otlp/otlp_config.hpp"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>

#include "asyncflow/common/error.hpp"
#include "asyncflow/telemetry/log.hpp"
#include "common/text.hpp"

namespace asyncflow {

namespace {

using detail::ascii_lower;
using detail::trim_blanks;

void warn(std::string_view variable, std::string_view what) {
  log_message(LogLevel::kWarning,
              "OTLP: " + std::string(variable) + " " + std::string(what) + "; the default is used");
}

std::string_view signal_name(OtlpSignal s) {
  return s == OtlpSignal::kTraces ? "TRACES" : "METRICS";
}

std::string_view signal_path(OtlpSignal s) {
  return s == OtlpSignal::kTraces ? "v1/traces" : "v1/metrics";
}

bool http_url(std::string_view url) {
  return url.starts_with("http://") || url.starts_with("https://");
}

/// The signal-specific variable if set, else the general one: (name, value).
std::optional<std::pair<std::string, std::string>> lookup(const EnvLookup& env, OtlpSignal s,
                                                          std::string_view suffix) {
  const std::string specific =
      "OTEL_EXPORTER_OTLP_" + std::string(signal_name(s)) + "_" + std::string(suffix);
  if (auto v = env(specific); v && !trim_blanks(*v).empty()) return std::pair{specific, *v};
  const std::string general = "OTEL_EXPORTER_OTLP_" + std::string(suffix);
  if (auto v = env(general); v && !trim_blanks(*v).empty()) return std::pair{general, *v};
  return std::nullopt;
}

void check_retry(const OtlpRetryOptions& r) {
  if (r.max_attempts < 1) {
    throw Error("OTLP exporter: retry.max_attempts must be at least 1, got " +
                std::to_string(r.max_attempts));
  }
  if (!(r.initial_backoff >= 0) || !(r.max_backoff >= r.initial_backoff) ||
      !std::isfinite(r.max_backoff) || !(r.multiplier >= 1) || !std::isfinite(r.multiplier)) {
    throw Error(
        "OTLP exporter: retry needs 0 <= initial_backoff <= max_backoff (finite) and a finite "
        "multiplier >= 1");
  }
}

}  // namespace

Attributes otlp_resource(const OtlpExporterOptions& options, const EnvLookup& env) {
  return resolve_resource(options.service_name, options.resource, env);
}

OtlpConfig resolve_otlp_config(OtlpSignal signal, const OtlpExporterOptions& options,
                               const EnvLookup& env) {
  OtlpConfig c;
  // Endpoint.
  if (options.endpoint) {
    if (!http_url(*options.endpoint)) {
      throw Error("OTLP exporter: endpoint must be an http:// or https:// URL, got '" +
                  *options.endpoint + "'");
    }
    c.url = *options.endpoint;
  } else {
    const std::string specific =
        "OTEL_EXPORTER_OTLP_" + std::string(signal_name(signal)) + "_ENDPOINT";
    std::string base = "http://localhost:4318";
    bool found = false;
    if (auto v = env(specific); v && !trim_blanks(*v).empty()) {
      if (http_url(trim_blanks(*v))) {
        c.url = std::string(trim_blanks(*v));
        found = true;
      } else {
        warn(specific, "is not an http:// or https:// URL");
      }
    }
    if (!found) {
      if (auto v = env("OTEL_EXPORTER_OTLP_ENDPOINT"); v && !trim_blanks(*v).empty()) {
        if (http_url(trim_blanks(*v))) {
          base = std::string(trim_blanks(*v));
        } else {
          warn("OTEL_EXPORTER_OTLP_ENDPOINT", "is not an http:// or https:// URL");
        }
      }
      if (!base.ends_with('/')) base += '/';
      c.url = base + std::string(signal_path(signal));
    }
  }
  // Headers: the environment's, then the options' (winning per key).
  if (auto v = lookup(env, signal, "HEADERS")) {
    int bad = 0;
    c.headers = parse_key_value_list(v->second, &bad);
    if (bad != 0) {
      log_message(LogLevel::kWarning, "OTLP: " + v->first + " has " + std::to_string(bad) +
                                          " malformed entries (skipped)");
    }
  }
  for (const auto& [k, val] : options.headers) {
    bool replaced = false;
    for (auto& [hk, hv] : c.headers) {
      if (ascii_lower(hk) == ascii_lower(k)) {
        hv = val;
        replaced = true;
      }
    }
    if (!replaced) c.headers.emplace_back(k, val);
  }
  // Protocol.
  if (options.protocol) {
    c.protocol = *options.protocol;
  } else if (auto v = lookup(env, signal, "PROTOCOL")) {
    const std::string p = ascii_lower(trim_blanks(v->second));
    if (p == "http/protobuf") {
      c.protocol = OtlpProtocol::kHttpProtobuf;
    } else if (p == "http/json") {
      c.protocol = OtlpProtocol::kHttpJson;
    } else {
      warn(v->first,
           "names a protocol other than http/protobuf and http/json (" + p + " is not supported)");
    }
  }
  // Timeout.
  if (options.timeout) {
    if (!(*options.timeout > 0) || !std::isfinite(*options.timeout)) {
      throw Error("OTLP exporter: timeout must be a positive number of seconds, got " +
                  std::to_string(*options.timeout));
    }
    c.timeout = *options.timeout;
  } else if (auto v = lookup(env, signal, "TIMEOUT")) {
    const std::string t(trim_blanks(v->second));
    char* end = nullptr;
    errno = 0;
    const double ms = std::strtod(t.c_str(), &end);
    if (errno != 0 || end == t.c_str() || *end != '\0' || !(ms > 0) || !std::isfinite(ms)) {
      warn(v->first, "is not a positive number of milliseconds");
    } else {
      c.timeout = ms / 1000.0;
    }
  }
  // Compression.
  if (options.gzip) {
    c.gzip = *options.gzip;
  } else if (auto v = lookup(env, signal, "COMPRESSION")) {
    const std::string z = ascii_lower(trim_blanks(v->second));
    if (z == "gzip") {
      c.gzip = true;
    } else if (z != "none") {
      warn(v->first, "is neither gzip nor none");
    }
  }
  // The CA certificates an https endpoint's certificate is checked against (PEM file); unset:
  // the system's.
  if (options.certificate) {
    if (::access(options.certificate->c_str(), R_OK) != 0) {
      throw Error("OTLP exporter: certificate file '" + *options.certificate + "' cannot be read");
    }
    c.certificate = *options.certificate;
  } else if (auto v = lookup(env, signal, "CERTIFICATE")) {
    const std::string path(trim_blanks(v->second));
    if (::access(path.c_str(), R_OK) != 0) {
      warn(v->first, "names a file that cannot be read; the system's CA certificates are used");
    } else {
      c.certificate = path;
    }
  }
  check_retry(options.retry);
  c.retry = options.retry;
  c.origin.resource = otlp_resource(options, env);
  return c;
}

}  // namespace asyncflow
