// Where telemetry says what went wrong: losses (dropped events, failed exports or writes),
// subscriber errors, misuse found on a background thread. By default one line on stderr,
// "asyncflow telemetry: …"; a program can route the lines elsewhere (its own logger, a test).
#pragma once

#include <functional>
#include <string_view>

namespace asyncflow {

/// How serious a telemetry message is.
enum class LogLevel {
  kWarning,  ///< something was lost or failed, the session goes on
  kError,    ///< a part of the session stopped working (an exporter gave up, a file failed)
};

/// Receives telemetry's messages. Called from any thread (the dispatcher, a writer thread, the
/// thread that stops a session); must be thread-safe and must not throw.
using LogHandler = std::function<void(LogLevel level, std::string_view message)>;

/// Replaces the handler (an empty one restores the default: stderr) and returns the previous
/// one. Thread-safe; messages in flight go to either.
LogHandler set_log_handler(LogHandler handler);

/// Sends `message` to the handler. For exporters and adapters, which report their own
/// failures; never throws. Thread-safe.
void log_message(LogLevel level, std::string_view message) noexcept;

}  // namespace asyncflow
