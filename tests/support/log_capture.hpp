// LogCapture: collects what telemetry logs (asyncflow/telemetry/log.hpp) while it lives,
// instead of stderr, so tests can check that a loss was said, and said once.
#pragma once

#include <asyncflow/telemetry/log.hpp>

#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace asyncflow::testing {

/// Thread-safe (telemetry logs from its own threads).
class LogCapture {
 public:
  LogCapture() {
    previous_ = set_log_handler([this](LogLevel, std::string_view m) {
      std::lock_guard lock(mu_);
      lines_.emplace_back(m);
    });
  }
  ~LogCapture() { set_log_handler(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::vector<std::string> lines() {
    std::lock_guard lock(mu_);
    return lines_;
  }
  /// How many lines contain `needle`.
  std::size_t count(std::string_view needle) {
    std::size_t n = 0;
    for (const auto& l : lines()) n += l.find(needle) != std::string::npos;
    return n;
  }
  /// Every line, one per line, for failure messages.
  std::string all() {
    std::string out;
    for (const auto& l : lines()) out += l + "\n";
    return out;
  }

 private:
  LogHandler previous_;
  std::mutex mu_;
  std::vector<std::string> lines_;  // guarded by mu_
};

}  // namespace asyncflow::testing
