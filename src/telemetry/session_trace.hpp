// Internal: a session's trace — its trace id (the caller's when TRACEPARENT joined it to one),
// the caller's span as the session span's parent, and the task span ids, which are a function
// of the task id so that the engine can give a program its task's span id before the telemetry
// thread has seen the task.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/options.hpp"

namespace asyncflow::detail {

/// Thread-safety: immutable once made.
struct SessionTrace {
  TraceId trace_id;
  std::uint64_t remote_parent = 0;  ///< the caller's span; 0: the session span is the root
  std::uint64_t salt = 0;           ///< random per session: task span ids differ across sessions
  std::string tracestate;           ///< the caller's, passed on as it came

  /// The span id of task (or block) `task_id` in this session; never 0.
  std::uint64_t task_span_id(std::string_view task_id) const noexcept;

  /// A new trace, or the caller's: options.traceparent, else the TRACEPARENT environment
  /// variable (and TRACESTATE with it). Throws asyncflow::Error for an invalid
  /// options.traceparent; an invalid TRACEPARENT is one warning and a trace of its own.
  static SessionTrace begin(const TelemetryOptions& options);
};

}  // namespace asyncflow::detail
