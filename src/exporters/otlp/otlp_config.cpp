// OTLP exporter configuration from the environment and code (otlp_config.hpp).
#include "asyncflow/exporters/otlp/otlp_config.hpp"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>

#include "asyncflow/common/error.hpp"
#include "asyncflow/telemetry/log.hpp"
#include "asyncflow/version.hpp"

namespace asyncflow {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    const int hi = i + 1 < s.size() ? hex_digit(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? hex_digit(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

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
  if (auto v = env(specific); v && !trim(*v).empty()) return std::pair{specific, *v};
  const std::string general = "OTEL_EXPORTER_OTLP_" + std::string(suffix);
  if (auto v = env(general); v && !trim(*v).empty()) return std::pair{general, *v};
  return std::nullopt;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

std::string host_name() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf) != 0) return "unknown";
  buf[HOST_NAME_MAX] = '\0';
  return buf;
}

void put(Attributes& attributes, std::string key, FieldValue value) {
  for (auto& [k, v] : attributes) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  attributes.emplace_back(std::move(key), std::move(value));
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

EnvLookup process_environment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::vector<std::pair<std::string, std::string>> parse_key_value_list(std::string_view text,
                                                                      int* bad_entries) {
  std::vector<std::pair<std::string, std::string>> out;
  int bad = 0;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view entry = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (entry.empty()) continue;
    const std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos) {
      ++bad;
      continue;
    }
    auto key = percent_decode(trim(entry.substr(0, eq)));
    auto value = percent_decode(trim(entry.substr(eq + 1)));
    if (!key || !value || key->empty()) {
      ++bad;
      continue;
    }
    out.emplace_back(std::move(*key), std::move(*value));
  }
  if (bad_entries != nullptr) *bad_entries = bad;
  return out;
}

Attributes otlp_resource(const OtlpExporterOptions& options, const EnvLookup& env) {
  Attributes resource;
  std::optional<std::string> service;
  if (auto v = env("OTEL_RESOURCE_ATTRIBUTES"); v && !trim(*v).empty()) {
    int bad = 0;
    for (auto& [k, val] : parse_key_value_list(*v, &bad)) {
      if (k == "service.name") {
        service = val;
      } else {
        put(resource, k, val);
      }
    }
    if (bad != 0) {
      log_message(LogLevel::kWarning, "OTLP: OTEL_RESOURCE_ATTRIBUTES has " + std::to_string(bad) +
                                          " malformed entries (skipped)");
    }
  }
  if (auto v = env("OTEL_SERVICE_NAME"); v && !trim(*v).empty()) service = std::string(trim(*v));
  if (options.service_name) service = *options.service_name;
  Attributes out;
  out.emplace_back("service.name", service.value_or("asyncflow"));
  for (auto& [k, v] : resource) put(out, k, v);
  for (const auto& [k, v] : options.resource) put(out, k, v);
  put(out, "host.name", host_name());
  put(out, "process.pid", static_cast<std::int64_t>(getpid()));
  put(out, "telemetry.sdk.name", std::string("asyncflow"));
  put(out, "telemetry.sdk.language", std::string("cpp"));
  put(out, "telemetry.sdk.version", std::string(ASYNCFLOW_VERSION));
  return out;
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
    if (auto v = env(specific); v && !trim(*v).empty()) {
      if (http_url(trim(*v))) {
        c.url = std::string(trim(*v));
        found = true;
      } else {
        warn(specific, "is not an http:// or https:// URL");
      }
    }
    if (!found) {
      if (auto v = env("OTEL_EXPORTER_OTLP_ENDPOINT"); v && !trim(*v).empty()) {
        if (http_url(trim(*v))) {
          base = std::string(trim(*v));
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
      if (lower(hk) == lower(k)) {
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
    const std::string p = lower(trim(v->second));
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
    const std::string t(trim(v->second));
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
    const std::string z = lower(trim(v->second));
    if (z == "gzip") {
      c.gzip = true;
    } else if (z != "none") {
      warn(v->first, "is neither gzip nor none");
    }
  }
  check_retry(options.retry);
  c.retry = options.retry;
  c.origin.resource = otlp_resource(options, env);
  return c;
}

}  // namespace asyncflow
