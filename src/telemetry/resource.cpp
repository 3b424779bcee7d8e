// The OTel resource and the environment reading exporters share (resource.hpp).
#include "asyncflow/telemetry/resource.hpp"

#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "asyncflow/telemetry/log.hpp"
#include "asyncflow/version.hpp"
#include "common/text.hpp"

namespace asyncflow {

namespace {

using detail::trim_blanks;

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

void put(Attributes& attributes, std::string key, FieldValue value) {
  for (auto& [k, v] : attributes) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  attributes.emplace_back(std::move(key), std::move(value));
}

}  // namespace

std::string host_name() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof buf) != 0) return "localhost";
  buf[HOST_NAME_MAX] = '\0';
  return buf;
}

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
    const std::string_view entry = trim_blanks(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (entry.empty()) continue;
    const std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos) {
      ++bad;
      continue;
    }
    auto key = percent_decode(trim_blanks(entry.substr(0, eq)));
    auto value = percent_decode(trim_blanks(entry.substr(eq + 1)));
    if (!key || !value || key->empty()) {
      ++bad;
      continue;
    }
    out.emplace_back(std::move(*key), std::move(*value));
  }
  if (bad_entries != nullptr) *bad_entries = bad;
  return out;
}

Attributes resolve_resource(const std::optional<std::string>& service_name,
                            const Attributes& attributes, const EnvLookup& env) {
  Attributes resource;
  std::optional<std::string> service;
  if (auto v = env("OTEL_RESOURCE_ATTRIBUTES"); v && !trim_blanks(*v).empty()) {
    int bad = 0;
    for (auto& [k, val] : parse_key_value_list(*v, &bad)) {
      if (k == "service.name") {
        service = val;
      } else {
        put(resource, k, val);
      }
    }
    if (bad != 0) {
      log_message(LogLevel::kWarning, "telemetry resource: OTEL_RESOURCE_ATTRIBUTES has " +
                                          std::to_string(bad) + " malformed entries (skipped)");
    }
  }
  if (auto v = env("OTEL_SERVICE_NAME"); v && !trim_blanks(*v).empty())
    service = std::string(trim_blanks(*v));
  if (service_name) service = *service_name;
  Attributes out;
  out.emplace_back("service.name", service.value_or("asyncflow"));
  for (auto& [k, v] : resource) put(out, k, v);
  for (const auto& [k, v] : attributes) put(out, k, v);
  put(out, "host.name", host_name());
  put(out, "process.pid", static_cast<std::int64_t>(getpid()));
  put(out, "telemetry.sdk.name", std::string("asyncflow"));
  put(out, "telemetry.sdk.language", std::string("cpp"));
  put(out, "telemetry.sdk.version", std::string(ASYNCFLOW_VERSION));
  return out;
}

}  // namespace asyncflow
