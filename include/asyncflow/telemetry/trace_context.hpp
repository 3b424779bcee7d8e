// W3C Trace Context: the `traceparent` value ("00-<trace id>-<parent id>-<flags>") that joins a
// session to its caller's trace (TRACEPARENT given to the engine) and each program an executable
// task runs to that task's span (TRACEPARENT in the program's environment, the OTel
// environment-carrier convention).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "asyncflow/telemetry/event.hpp"

namespace asyncflow {

/// A parsed traceparent. Thread-safety: a value.
struct TraceParent {
  TraceId trace_id;
  std::uint64_t span_id = 0;  ///< the parent span (the caller's, or the task's)
  std::uint8_t flags = 1;     ///< trace-flags; bit 0 = sampled
};

/// Parses a traceparent as the W3C Trace Context (level 1) specification says: version "00"
/// is exactly 55 characters; a later version may carry more after a '-'; "ff" is invalid; the
/// trace id (32) and parent id (16) are lowercase hex and not all zeros. nullopt otherwise.
std::optional<TraceParent> parse_traceparent(std::string_view text) noexcept;

/// "00-<32 hex>-<16 hex>-<2 hex>".
std::string to_traceparent(const TraceParent& parent);

}  // namespace asyncflow
