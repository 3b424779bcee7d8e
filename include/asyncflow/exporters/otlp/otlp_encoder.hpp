// OTLP encoding of spans and metric snapshots: the bodies of OTLP/HTTP requests to /v1/traces
// and /v1/metrics, as protobuf (ExportTraceServiceRequest / ExportMetricsServiceRequest) or as
// OTLP/JSON. The protobuf messages are asyncflow's own definitions of the specification's
// fields (src/exporters/otlp/proto); the JSON follows the specification's JSON mapping: ids in
// lowercase hex, 64-bit integers and nanosecond times as decimal strings, enums as numbers.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/metrics.hpp"
#include "asyncflow/telemetry/span.hpp"

namespace asyncflow {

/// OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" (the default) or "http/json".
enum class OtlpProtocol { kHttpProtobuf, kHttpJson };

/// "http/protobuf", "http/json".
std::string_view to_string(OtlpProtocol protocol) noexcept;

/// What every request says about its origin: the resource (service.name, host.name, ...) and
/// the instrumentation scope ("asyncflow" and the library's version). Spans and points are
/// grouped per `session_id` attribute into one resource each, the resource then carrying that
/// `session_id` too, so one exporter serves several sessions.
struct OtlpOrigin {
  Attributes resource;
  std::string scope_name = "asyncflow";
  std::string scope_version;  ///< empty: the library's version
};

/// What a receiver that answered with success refused of the request (the response's
/// partial_success): the spans or data points it rejected, and why.
struct OtlpPartialSuccess {
  std::int64_t rejected = 0;  ///< rejected_spans / rejected_data_points
  std::string error_message;
};

/// Reads an ExportTraceServiceResponse / ExportMetricsServiceResponse body in `protocol`'s
/// encoding; nullopt when it holds no partial success (empty, unreadable, or all accepted).
std::optional<OtlpPartialSuccess> read_trace_response(std::string_view body, OtlpProtocol protocol);
std::optional<OtlpPartialSuccess> read_metrics_response(std::string_view body,
                                                        OtlpProtocol protocol);

/// Encodes requests; keeps its buffers between calls, so encoding allocates little once warm
/// (the trace request of the largest batch so far stays allocated for reuse).
/// Thread-safety: none (one exporter thread uses one encoder).
class OtlpEncoder {
 public:
  explicit OtlpEncoder(OtlpOrigin origin);
  ~OtlpEncoder();
  OtlpEncoder(const OtlpEncoder&) = delete;
  OtlpEncoder& operator=(const OtlpEncoder&) = delete;

  /// The ExportTraceServiceRequest body for `spans` (all kind INTERNAL), replacing `out`.
  void encode_traces(std::span<const SpanData> spans, OtlpProtocol protocol, std::string& out);
  /// The same for records as exporters receive them: spans in full form are encoded in place,
  /// compact task spans expanded (to_span_data) first.
  void encode_traces(std::span<const SpanRecord> spans, OtlpProtocol protocol, std::string& out);
  /// The ExportMetricsServiceRequest body for `snapshot`, replacing `out`: counters as
  /// monotonic cumulative sums, up-down counters as non-monotonic cumulative sums, histograms
  /// with their explicit bounds (cumulative), gauges; start time = the session start.
  void encode_metrics(const MetricsSnapshot& snapshot, OtlpProtocol protocol, std::string& out);

  const OtlpOrigin& origin() const noexcept { return origin_; }

 private:
  struct Proto;
  /// Encodes proto_->spans.
  void encode_span_list(OtlpProtocol protocol, std::string& out);
  OtlpOrigin origin_;
  std::unique_ptr<Proto> proto_;
};

}  // namespace asyncflow
