// A session's trace ids (session_trace.hpp).
#include "session_trace.hpp"

#include <cstdlib>

#include "asyncflow/common/error.hpp"
#include "asyncflow/telemetry/log.hpp"
#include "asyncflow/telemetry/trace_context.hpp"
#include "common/random.hpp"

namespace asyncflow::detail {

std::uint64_t SessionTrace::task_span_id(std::string_view task_id) const noexcept {
  // FNV-1a over the id from a salted basis, then a 64-bit finalizer (splitmix64's) so that
  // ids one character apart differ in every bit: unique for practical purposes (2^-64 per
  // pair), as random span ids are.
  std::uint64_t h = 0xcbf29ce484222325ULL ^ salt;
  for (const char c : task_id) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h == 0 ? 1 : h;
}

SessionTrace SessionTrace::begin(const TelemetryOptions& options) {
  SessionTrace t;
  while (t.salt == 0) t.salt = random_u64();
  std::optional<TraceParent> parent;
  if (!options.traceparent.empty()) {
    parent = parse_traceparent(options.traceparent);
    if (!parent) {
      throw Error("start_telemetry: traceparent '" + options.traceparent +
                  "' is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)");
    }
    t.tracestate = options.tracestate;
  } else if (const char* env = std::getenv("TRACEPARENT"); env != nullptr && *env != '\0') {
    parent = parse_traceparent(env);
    if (parent) {
      if (const char* state = std::getenv("TRACESTATE")) t.tracestate = state;
    } else {
      log_message(LogLevel::kWarning,
                  "TRACEPARENT is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>); the "
                  "session starts a trace of its own");
    }
  }
  if (parent) {
    t.trace_id = parent->trace_id;
    t.remote_parent = parent->span_id;
  }
  while (!t.trace_id.valid()) t.trace_id = TraceId{random_u64(), random_u64()};
  return t;
}

}  // namespace asyncflow::detail
