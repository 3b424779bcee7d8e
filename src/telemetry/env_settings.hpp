// Internal: the OTel SDK's numeric environment variables (OTEL_BSP_*, OTEL_METRIC_EXPORT_*), read
// the same way by every processor and reader: a malformed value is one warning naming the
// variable (never its value), and the default is used.
#pragma once

#include <cstdint>
#include <string_view>

namespace asyncflow::detail {

/// The variable `name` as a positive integer; `fallback` when unset or empty, and also when
/// malformed (not a whole number, <= 0, out of range), then with a warning that starts with
/// `who` ("batch span processor: ...").
std::int64_t env_positive_integer(const char* name, std::int64_t fallback,
                                  std::string_view who) noexcept;

}  // namespace asyncflow::detail
