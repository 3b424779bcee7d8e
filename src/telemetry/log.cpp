// The telemetry log handler (log.hpp).
#include "asyncflow/telemetry/log.hpp"

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include "asyncflow/common/thread_annotations.hpp"

namespace asyncflow {

namespace {

void to_stderr(LogLevel level, std::string_view message) {
  std::fprintf(stderr, "asyncflow telemetry: %s%.*s\n", level == LogLevel::kError ? "error: " : "",
               static_cast<int>(message.size()), message.data());
}

struct Handler {
  Mutex mu;
  std::shared_ptr<const LogHandler> current ASYNCFLOW_GUARDED_BY(mu);  // null: stderr
};

Handler& handler() {
  static Handler* h = new Handler;  // immortal: threads may log while statics are destroyed
  return *h;
}

}  // namespace

LogHandler set_log_handler(LogHandler next) {
  auto fresh = next ? std::make_shared<const LogHandler>(std::move(next)) : nullptr;
  Handler& h = handler();
  MutexLock lock(h.mu);
  std::shared_ptr<const LogHandler> previous = std::exchange(h.current, std::move(fresh));
  return previous ? *previous : LogHandler{};
}

void log_message(LogLevel level, std::string_view message) noexcept {
  std::shared_ptr<const LogHandler> current;
  {
    Handler& h = handler();
    MutexLock lock(h.mu);
    current = h.current;
  }
  try {
    if (current) {
      (*current)(level, message);
      return;
    }
  } catch (...) {  // NOLINT(bugprone-empty-catch): a throwing handler falls back to stderr
  }
  to_stderr(level, message);
}

}  // namespace asyncflow
