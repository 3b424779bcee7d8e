// The SDK's numeric environment variables (env_settings.hpp).
#include "env_settings.hpp"

#include <cerrno>
#include <cstdlib>
#include <string>

#include "asyncflow/telemetry/log.hpp"

namespace asyncflow::detail {

std::int64_t env_positive_integer(const char* name, std::int64_t fallback,
                                  std::string_view who) noexcept {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || n <= 0) {
    try {
      log_message(LogLevel::kWarning, std::string(who) + ": " + name +
                                          " is not a positive integer; the default (" +
                                          std::to_string(fallback) + ") is used");
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the default still holds
    }
    return fallback;
  }
  return n;
}

}  // namespace asyncflow::detail
