// An environment of the test's own for the configuration readers that take an EnvLookup
// (OTLP config, the exporters the OTel variables name): nothing is read from or written to the
// process environment.
#pragma once

#include <asyncflow/telemetry/resource.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace asyncflow::testing {

/// Looks names up in `vars` only. The lookup is thread-safe (it reads a copy).
inline EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace asyncflow::testing
