// OTLP request bodies (otlp_encoder.hpp): protobuf through the messages generated from
// proto/*.proto (the trace request kept and overwritten in place from call to call, the
// metrics request built in an arena that each call resets); JSON through nlohmann::json.
#include "asyncflow/exporters/otlp/otlp_encoder.hpp"

#include <google/protobuf/arena.h>

#include <cmath>
#include <cstdlib>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "asyncflow/common/error.hpp"
#include "asyncflow/version.hpp"
#include "common/hex.hpp"
#include "otlp_metrics.pb.h"
#include "otlp_trace.pb.h"

namespace asyncflow {

namespace pb = ::asyncflow::otlp::v1;
using nlohmann::json;

std::string_view to_string(OtlpProtocol protocol) noexcept {
  return protocol == OtlpProtocol::kHttpJson ? "http/json" : "http/protobuf";
}

namespace {

constexpr std::string_view kSessionKey = "session_id";

// W3C / OTLP byte order: the hex form of the id, two digits per byte, most significant first.
void write_id_bytes(char* out, std::uint64_t v) noexcept {
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xFF);
}

std::string hex16(std::uint64_t v) {
  std::string out(16, '0');
  detail::write_hex16(out.data(), v);
  return out;
}

std::string_view session_of(const Attributes& attributes) {
  for (const auto& [k, v] : attributes) {
    if (k == kSessionKey) {
      if (const auto* s = std::get_if<std::string>(&v)) return *s;
    }
  }
  return {};
}

// --- protobuf --------------------------------------------------------------------------------
//
// The setters below overwrite a message in place instead of assuming it empty: the trace
// request is kept from one call to the next (OtlpEncoder::Proto), so its elements and strings
// keep their memory and a warm call allocates nothing (see encode_span_list for the numbers).
// On a fresh message (the metrics request, built in the arena) they simply add.

// Element `i` of `field`: the one kept from an earlier call, or a new one.
template <class T>
T* element(google::protobuf::RepeatedPtrField<T>* field, int i) {
  return i < field->size() ? field->Mutable(i) : field->Add();
}

// Drops the elements past `n`; RemoveLast() keeps them (cleared) for a later Add().
template <class T>
void truncate(google::protobuf::RepeatedPtrField<T>* field, int n) {
  while (field->size() > n) field->RemoveLast();
}

void set_value(pb::AnyValue* out, const FieldValue& v) {
  std::visit(
      [out](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          out->set_bool_value(x);
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          out->set_int_value(x);
        } else if constexpr (std::is_same_v<T, double>) {
          out->set_double_value(x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          out->set_string_value(x);  // assigns into the string already there, if any
        } else {
          out->clear_value();  // null: an empty AnyValue
        }
      },
      v);
}

void set_attribute(pb::KeyValue* kv, const std::string& key, const FieldValue& v) {
  kv->set_key(key);
  set_value(kv->mutable_value(), v);
}

void set_attributes(google::protobuf::RepeatedPtrField<pb::KeyValue>* out,
                    const Attributes& attributes) {
  int n = 0;
  for (const auto& [k, v] : attributes) set_attribute(element(out, n++), k, v);
  truncate(out, n);
}

void set_resource(pb::Resource* out, const OtlpOrigin& origin, std::string_view session) {
  google::protobuf::RepeatedPtrField<pb::KeyValue>* attrs = out->mutable_attributes();
  int n = 0;
  for (const auto& [k, v] : origin.resource) set_attribute(element(attrs, n++), k, v);
  if (!session.empty() && session_of(origin.resource).empty()) {
    pb::KeyValue* kv = element(attrs, n++);
    kv->mutable_key()->assign(kSessionKey);
    kv->mutable_value()->mutable_string_value()->assign(session);
  }
  truncate(attrs, n);
}

void set_scope(pb::InstrumentationScope* out, const OtlpOrigin& origin) {
  out->set_name(origin.scope_name);
  out->set_version(origin.scope_version.empty() ? ASYNCFLOW_VERSION : origin.scope_version);
}

pb::Status::StatusCode status_code(SpanStatus s) {
  switch (s) {
    case SpanStatus::kOk: return pb::Status::STATUS_CODE_OK;
    case SpanStatus::kError: return pb::Status::STATUS_CODE_ERROR;
    case SpanStatus::kUnset: break;
  }
  return pb::Status::STATUS_CODE_UNSET;
}

// The id bytes are assigned into the field's own string: set_x(ptr, n) would build a temporary
// std::string first (protobuf 3.21), a heap one for the 16-byte trace id.
void set_span(pb::Span* out, const SpanData& s) {
  char id[16];
  write_id_bytes(id, s.trace_id.high);
  write_id_bytes(id + 8, s.trace_id.low);
  out->mutable_trace_id()->assign(id, 16);
  write_id_bytes(id, s.span_id);
  out->mutable_span_id()->assign(id, 8);
  if (s.parent_span_id != 0) {
    write_id_bytes(id, s.parent_span_id);
    out->mutable_parent_span_id()->assign(id, 8);
  } else {
    out->clear_parent_span_id();
  }
  out->set_name(s.name);
  out->set_kind(pb::Span::SPAN_KIND_INTERNAL);
  out->set_start_time_unix_nano(static_cast<std::uint64_t>(s.start_ns));
  out->set_end_time_unix_nano(static_cast<std::uint64_t>(s.end_ns));
  set_attributes(out->mutable_attributes(), s.attributes);
  google::protobuf::RepeatedPtrField<pb::Span::Event>* events = out->mutable_events();
  int n = 0;
  for (const SpanEvent& e : s.events) {
    pb::Span::Event* pe = element(events, n++);
    pe->set_time_unix_nano(static_cast<std::uint64_t>(e.time_ns));
    pe->set_name(e.name);
    set_attributes(pe->mutable_attributes(), e.attributes);
  }
  truncate(events, n);
  if (s.status != SpanStatus::kUnset) {
    pb::Status* st = out->mutable_status();
    st->set_code(status_code(s.status));
    if (s.status_description) {
      st->set_message(*s.status_description);
    } else {
      st->clear_message();
    }
  } else {
    out->clear_status();
  }
}

void set_number_point(pb::NumberDataPoint* out, const MetricPoint& p,
                      const MetricsSnapshot& snapshot) {
  set_attributes(out->mutable_attributes(), p.attributes);
  out->set_start_time_unix_nano(static_cast<std::uint64_t>(snapshot.start_ns));
  out->set_time_unix_nano(static_cast<std::uint64_t>(snapshot.time_ns));
  out->set_as_double(p.value);
}

void set_metric(pb::Metric* out, const MetricData& m, const std::vector<const MetricPoint*>& points,
                const MetricsSnapshot& snapshot) {
  out->set_name(m.name);
  out->set_description(m.description);
  out->set_unit(m.unit);
  switch (m.kind) {
    case InstrumentKind::kCounter:
    case InstrumentKind::kUpDownCounter: {
      pb::Sum* sum = out->mutable_sum();
      sum->set_aggregation_temporality(pb::AGGREGATION_TEMPORALITY_CUMULATIVE);
      sum->set_is_monotonic(m.kind == InstrumentKind::kCounter);
      for (const MetricPoint* p : points) set_number_point(sum->add_data_points(), *p, snapshot);
      break;
    }
    case InstrumentKind::kGauge: {
      pb::Gauge* gauge = out->mutable_gauge();
      for (const MetricPoint* p : points) set_number_point(gauge->add_data_points(), *p, snapshot);
      break;
    }
    case InstrumentKind::kHistogram: {
      pb::Histogram* h = out->mutable_histogram();
      h->set_aggregation_temporality(pb::AGGREGATION_TEMPORALITY_CUMULATIVE);
      for (const MetricPoint* p : points) {
        pb::HistogramDataPoint* dp = h->add_data_points();
        set_attributes(dp->mutable_attributes(), p->attributes);
        dp->set_start_time_unix_nano(static_cast<std::uint64_t>(snapshot.start_ns));
        dp->set_time_unix_nano(static_cast<std::uint64_t>(snapshot.time_ns));
        dp->set_count(p->count);
        dp->set_sum(p->sum);
        for (std::uint64_t c : p->bucket_counts) dp->add_bucket_counts(c);
        for (double b : m.bounds) dp->add_explicit_bounds(b);
        if (p->count > 0) {
          dp->set_min(p->min);
          dp->set_max(p->max);
        }
      }
      break;
    }
  }
}

// --- JSON ------------------------------------------------------------------------------------

// The protobuf JSON mapping writes non-finite doubles as strings.
json number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}

json any_value(const FieldValue& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          return {{"boolValue", x}};
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          return {{"intValue", std::to_string(x)}};
        } else if constexpr (std::is_same_v<T, double>) {
          return {{"doubleValue", number(x)}};
        } else if constexpr (std::is_same_v<T, std::string>) {
          return {{"stringValue", x}};
        } else {
          return json::object();
        }
      },
      v);
}

json attributes_json(const Attributes& attributes) {
  json out = json::array();
  for (const auto& [k, v] : attributes) out.push_back({{"key", k}, {"value", any_value(v)}});
  return out;
}

json resource_json(const OtlpOrigin& origin, std::string_view session) {
  json attrs = attributes_json(origin.resource);
  if (!session.empty() && session_of(origin.resource).empty()) {
    attrs.push_back({{"key", kSessionKey}, {"value", {{"stringValue", session}}}});
  }
  return {{"attributes", std::move(attrs)}};
}

json scope_json(const OtlpOrigin& origin) {
  return {{"name", origin.scope_name},
          {"version", origin.scope_version.empty() ? ASYNCFLOW_VERSION : origin.scope_version}};
}

std::string nanos(std::int64_t ns) {
  return std::to_string(static_cast<std::uint64_t>(ns));
}

json span_json(const SpanData& s) {
  json j = {{"traceId", hex16(s.trace_id.high) + hex16(s.trace_id.low)},
            {"spanId", hex16(s.span_id)},
            {"name", s.name},
            {"kind", static_cast<int>(pb::Span::SPAN_KIND_INTERNAL)},
            {"startTimeUnixNano", nanos(s.start_ns)},
            {"endTimeUnixNano", nanos(s.end_ns)},
            {"attributes", attributes_json(s.attributes)}};
  if (s.parent_span_id != 0) j["parentSpanId"] = hex16(s.parent_span_id);
  if (!s.events.empty()) {
    json events = json::array();
    for (const SpanEvent& e : s.events) {
      events.push_back({{"timeUnixNano", nanos(e.time_ns)},
                        {"name", e.name},
                        {"attributes", attributes_json(e.attributes)}});
    }
    j["events"] = std::move(events);
  }
  if (s.status != SpanStatus::kUnset) {
    json st = {{"code", static_cast<int>(status_code(s.status))}};
    if (s.status_description) st["message"] = *s.status_description;
    j["status"] = std::move(st);
  }
  return j;
}

json number_point_json(const MetricPoint& p, const MetricsSnapshot& snapshot) {
  return {{"attributes", attributes_json(p.attributes)},
          {"startTimeUnixNano", nanos(snapshot.start_ns)},
          {"timeUnixNano", nanos(snapshot.time_ns)},
          {"asDouble", number(p.value)}};
}

json metric_json(const MetricData& m, const std::vector<const MetricPoint*>& points,
                 const MetricsSnapshot& snapshot) {
  json j = {{"name", m.name}, {"description", m.description}, {"unit", m.unit}};
  json data_points = json::array();
  switch (m.kind) {
    case InstrumentKind::kCounter:
    case InstrumentKind::kUpDownCounter:
      for (const MetricPoint* p : points) data_points.push_back(number_point_json(*p, snapshot));
      j["sum"] = {
          {"dataPoints", std::move(data_points)},
          {"aggregationTemporality", static_cast<int>(pb::AGGREGATION_TEMPORALITY_CUMULATIVE)},
          {"isMonotonic", m.kind == InstrumentKind::kCounter}};
      break;
    case InstrumentKind::kGauge:
      for (const MetricPoint* p : points) data_points.push_back(number_point_json(*p, snapshot));
      j["gauge"] = {{"dataPoints", std::move(data_points)}};
      break;
    case InstrumentKind::kHistogram: {
      for (const MetricPoint* p : points) {
        json counts = json::array();
        for (std::uint64_t c : p->bucket_counts) counts.push_back(std::to_string(c));
        json bounds = json::array();
        for (double b : m.bounds) bounds.push_back(number(b));
        json dp = {{"attributes", attributes_json(p->attributes)},
                   {"startTimeUnixNano", nanos(snapshot.start_ns)},
                   {"timeUnixNano", nanos(snapshot.time_ns)},
                   {"count", std::to_string(p->count)},
                   {"sum", number(p->sum)},
                   {"bucketCounts", std::move(counts)},
                   {"explicitBounds", std::move(bounds)}};
        if (p->count > 0) {
          dp["min"] = number(p->min);
          dp["max"] = number(p->max);
        }
        data_points.push_back(std::move(dp));
      }
      j["histogram"] = {
          {"dataPoints", std::move(data_points)},
          {"aggregationTemporality", static_cast<int>(pb::AGGREGATION_TEMPORALITY_CUMULATIVE)}};
      break;
    }
  }
  return j;
}

/// Groups items by session: the distinct session ids in first-seen order, and for each item
/// the index of its group. One session per request is the common case (a linear scan).
template <class Item, class SessionOf>
std::vector<std::string_view> group_by_session(std::span<const Item> items,
                                               SessionOf session_of_item,
                                               std::vector<std::size_t>& group_of) {
  std::vector<std::string_view> sessions;
  group_of.clear();
  group_of.reserve(items.size());
  for (const Item& item : items) {
    const std::string_view s = session_of_item(item);
    std::size_t g = 0;
    while (g < sessions.size() && sessions[g] != s) ++g;
    if (g == sessions.size()) sessions.push_back(s);
    group_of.push_back(g);
  }
  return sessions;
}

}  // namespace

struct OtlpEncoder::Proto {
  google::protobuf::Arena arena;  // the metrics request, rebuilt by each call
  // The trace request, kept between calls and overwritten in place (not on the arena, whose
  // Reset() would free what we want to keep), with the scope of each session and how many of
  // its spans one call has filled.
  pb::ExportTraceServiceRequest traces;
  std::vector<pb::ScopeSpans*> scopes;
  std::vector<int> filled;
  std::vector<std::size_t> group_of;
  std::vector<const SpanData*> spans;  // what one encode_traces() call encodes
  std::deque<SpanData> expanded;       // task spans given compact, in full (stable addresses)
};

OtlpEncoder::OtlpEncoder(OtlpOrigin origin)
    : origin_(std::move(origin)), proto_(std::make_unique<Proto>()) {}

OtlpEncoder::~OtlpEncoder() = default;

void OtlpEncoder::encode_traces(std::span<const SpanData> spans, OtlpProtocol protocol,
                                std::string& out) {
  proto_->spans.clear();
  for (const SpanData& s : spans) proto_->spans.push_back(&s);
  encode_span_list(protocol, out);
}

void OtlpEncoder::encode_traces(std::span<const SpanRecord> spans, OtlpProtocol protocol,
                                std::string& out) {
  // Spans in full form are encoded where they are; only compact task spans are expanded.
  proto_->spans.clear();
  proto_->expanded.clear();
  for (const SpanRecord& r : spans) {
    if (const auto* full = std::get_if<SpanData>(&r)) {
      proto_->spans.push_back(full);
    } else {
      proto_->spans.push_back(&proto_->expanded.emplace_back(to_span_data(r)));
    }
  }
  encode_span_list(protocol, out);
}

void OtlpEncoder::encode_span_list(OtlpProtocol protocol, std::string& out) {
  const std::vector<const SpanData*>& spans = proto_->spans;
  const std::vector<std::string_view> sessions = group_by_session(
      std::span<const SpanData* const>(spans),
      [](const SpanData* s) { return session_of(s->attributes); }, proto_->group_of);
  const std::vector<std::size_t>& group_of = proto_->group_of;
  if (protocol == OtlpProtocol::kHttpJson) {
    json resource_spans = json::array();
    for (std::size_t g = 0; g < sessions.size(); ++g) {
      json list = json::array();
      for (std::size_t i = 0; i < spans.size(); ++i) {
        if (group_of[i] == g) list.push_back(span_json(*spans[i]));
      }
      resource_spans.push_back({{"resource", resource_json(origin_, sessions[g])},
                                {"scopeSpans", json::array({{{"scope", scope_json(origin_)},
                                                             {"spans", std::move(list)}}})}});
    }
    out = json{{"resourceSpans", std::move(resource_spans)}}.dump();
    return;
  }
  // The request from the previous call is overwritten in place rather than rebuilt. Building
  // it afresh in the arena cost ~50 arena allocations per span (each a thread-cache lookup
  // through libprotobuf.so's TLS), string destructors registered and run at Reset(), and the
  // byte strings of the ids: BM_OtlpEncode/512 went from 0.70M to 1.23M spans/s (medians of
  // 4 alternating runs, 2 shared cores). What is left is copying the strings in, protobuf's
  // UTF-8 check of each string field and the serialization itself.
  pb::ExportTraceServiceRequest& request = proto_->traces;
  google::protobuf::RepeatedPtrField<pb::ResourceSpans>* resource_spans =
      request.mutable_resource_spans();
  std::vector<pb::ScopeSpans*>& scopes = proto_->scopes;
  std::vector<int>& filled = proto_->filled;
  scopes.clear();
  filled.assign(sessions.size(), 0);
  for (std::size_t g = 0; g < sessions.size(); ++g) {
    pb::ResourceSpans* rs = element(resource_spans, static_cast<int>(g));
    set_resource(rs->mutable_resource(), origin_, sessions[g]);
    pb::ScopeSpans* ss = element(rs->mutable_scope_spans(), 0);
    truncate(rs->mutable_scope_spans(), 1);
    set_scope(ss->mutable_scope(), origin_);
    scopes.push_back(ss);
  }
  truncate(resource_spans, static_cast<int>(sessions.size()));
  for (std::size_t i = 0; i < spans.size(); ++i) {
    const std::size_t g = group_of[i];
    set_span(element(scopes[g]->mutable_spans(), filled[g]++), *spans[i]);
  }
  for (std::size_t g = 0; g < scopes.size(); ++g) truncate(scopes[g]->mutable_spans(), filled[g]);
  out.clear();
  if (!request.SerializeToString(&out)) throw Error("OTLP: encoding the trace request failed");
}

void OtlpEncoder::encode_metrics(const MetricsSnapshot& snapshot, OtlpProtocol protocol,
                                 std::string& out) {
  // Points grouped by session; each instrument appears in each session that has points of it.
  std::vector<const MetricPoint*> all;
  for (const MetricData& m : snapshot.metrics)
    for (const MetricPoint& p : m.points) all.push_back(&p);
  const std::vector<std::string_view> sessions = group_by_session(
      std::span<const MetricPoint* const>(all),
      [](const MetricPoint* p) { return session_of(p->attributes); }, proto_->group_of);
  const std::vector<std::size_t>& group_of = proto_->group_of;
  // The points of instrument m in group g.
  auto points_of = [&](std::size_t g, const MetricData& m) {
    std::vector<const MetricPoint*> points;
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (group_of[i] == g && all[i] >= m.points.data() &&
          all[i] < m.points.data() + m.points.size())
        points.push_back(all[i]);
    }
    return points;
  };
  if (protocol == OtlpProtocol::kHttpJson) {
    json resource_metrics = json::array();
    for (std::size_t g = 0; g < sessions.size(); ++g) {
      json metrics = json::array();
      for (const MetricData& m : snapshot.metrics) {
        const auto points = points_of(g, m);
        if (!points.empty()) metrics.push_back(metric_json(m, points, snapshot));
      }
      resource_metrics.push_back(
          {{"resource", resource_json(origin_, sessions[g])},
           {"scopeMetrics",
            json::array({{{"scope", scope_json(origin_)}, {"metrics", std::move(metrics)}}})}});
    }
    out = json{{"resourceMetrics", std::move(resource_metrics)}}.dump();
    return;
  }
  proto_->arena.Reset();
  auto* request =
      google::protobuf::Arena::CreateMessage<pb::ExportMetricsServiceRequest>(&proto_->arena);
  for (std::size_t g = 0; g < sessions.size(); ++g) {
    pb::ResourceMetrics* rm = request->add_resource_metrics();
    set_resource(rm->mutable_resource(), origin_, sessions[g]);
    pb::ScopeMetrics* sm = rm->add_scope_metrics();
    set_scope(sm->mutable_scope(), origin_);
    for (const MetricData& m : snapshot.metrics) {
      const auto points = points_of(g, m);
      if (!points.empty()) set_metric(sm->add_metrics(), m, points, snapshot);
    }
  }
  out.clear();
  if (!request->SerializeToString(&out)) throw Error("OTLP: encoding the metrics request failed");
}

namespace {

/// The partial_success of a JSON response: {"partialSuccess": {"<count>": "3", "errorMessage"}}
/// (an int64 may come as a string or a number).
std::optional<OtlpPartialSuccess> json_partial_success(std::string_view body, const char* count) {
  const nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("partialSuccess")) return std::nullopt;
  const nlohmann::json& p = doc["partialSuccess"];
  if (!p.is_object()) return std::nullopt;
  OtlpPartialSuccess out;
  if (const auto it = p.find(count); it != p.end()) {
    if (it->is_number_integer()) out.rejected = it->get<std::int64_t>();
    if (it->is_string()) out.rejected = std::strtoll(it->get<std::string>().c_str(), nullptr, 10);
  }
  if (const auto it = p.find("errorMessage"); it != p.end() && it->is_string()) {
    out.error_message = it->get<std::string>();
  }
  if (out.rejected == 0 && out.error_message.empty()) return std::nullopt;
  return out;
}

template <class Response>
std::optional<OtlpPartialSuccess> proto_partial_success(std::string_view body) {
  Response r;
  if (!r.ParseFromArray(body.data(), static_cast<int>(body.size())) || !r.has_partial_success()) {
    return std::nullopt;
  }
  OtlpPartialSuccess out;
  if constexpr (std::is_same_v<Response, pb::ExportTraceServiceResponse>) {
    out.rejected = r.partial_success().rejected_spans();
  } else {
    out.rejected = r.partial_success().rejected_data_points();
  }
  out.error_message = r.partial_success().error_message();
  if (out.rejected == 0 && out.error_message.empty()) return std::nullopt;
  return out;
}

}  // namespace

std::optional<OtlpPartialSuccess> read_trace_response(std::string_view body,
                                                      OtlpProtocol protocol) {
  if (body.empty()) return std::nullopt;
  try {
    if (protocol == OtlpProtocol::kHttpJson) return json_partial_success(body, "rejectedSpans");
    return proto_partial_success<pb::ExportTraceServiceResponse>(body);
  } catch (...) {  // an answer we cannot read is not a loss we can count
    return std::nullopt;
  }
}

std::optional<OtlpPartialSuccess> read_metrics_response(std::string_view body,
                                                        OtlpProtocol protocol) {
  if (body.empty()) return std::nullopt;
  try {
    if (protocol == OtlpProtocol::kHttpJson) {
      return json_partial_success(body, "rejectedDataPoints");
    }
    return proto_partial_success<pb::ExportMetricsServiceResponse>(body);
  } catch (...) {  // an answer we cannot read is not a loss we can count
    return std::nullopt;
  }
}

}  // namespace asyncflow
