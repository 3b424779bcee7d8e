// The OTel resource every exporter describes its origin with (service.name, host.name,
// process.pid, telemetry.sdk.*, and what OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES add),
// and the environment reading it shares with the exporters' own variables.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "asyncflow/telemetry/event.hpp"

namespace asyncflow {

/// Reads one environment variable (tests pass their own); nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

/// The process environment (getenv). Thread-safe as getenv is: not against setenv.
EnvLookup process_environment();

/// This machine's host name (gethostname), the node id of its events and samples; "localhost"
/// when it has none.
std::string host_name();

/// Parses a "k1=v1,k2=v2" list with percent-encoded keys and values (W3C baggage style, as
/// OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES use); an entry without '=' or with
/// a bad %-escape is skipped and `bad_entries` counts it.
std::vector<std::pair<std::string, std::string>> parse_key_value_list(std::string_view text,
                                                                      int* bad_entries = nullptr);

/// The resource: service.name (`service_name`, else OTEL_SERVICE_NAME, else
/// OTEL_RESOURCE_ATTRIBUTES', else "asyncflow") first, then the other OTEL_RESOURCE_ATTRIBUTES,
/// then `attributes` (winning over them), then host.name, process.pid and
/// telemetry.sdk.{name,language,version}. Malformed entries of OTEL_RESOURCE_ATTRIBUTES are
/// skipped with one warning that counts them (never their values).
Attributes resolve_resource(const std::optional<std::string>& service_name,
                            const Attributes& attributes,
                            const EnvLookup& env = process_environment());

}  // namespace asyncflow
