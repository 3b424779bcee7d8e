// Fuzzes the event model (define_event, make_event, restore_event) with fuzzed names, fields
// and values, then the JSONL event line of every event that was accepted. Invalid input must
// throw asyncflow::Error (the documented type) and nothing else; an accepted event must render
// to one line that nlohmann parses, with the keys and values docs/checkpoint-format.md lists,
// and the caching LineFormatter must write the same bytes as the plain writer.
#include <fuzzer/FuzzedDataProvider.h>

#include <asyncflow/common/error.hpp>
#include <asyncflow/exporters/jsonl/jsonl_format.hpp>
#include <asyncflow/telemetry/event.hpp>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace af = asyncflow;
using Json = nlohmann::ordered_json;

namespace {

/// Stops the run with a message: libFuzzer reports the abort as a crash and keeps the input.
[[noreturn]] void fail(const std::string& what, const std::string& line) {
  std::fprintf(stderr, "event_fuzzer: %s\nline: %s\n", what.c_str(), line.c_str());
  std::abort();
}

double fuzzed_double(FuzzedDataProvider& in) {
  // Any bit pattern (NaN, infinities, subnormals, every exponent), or a value of the size the
  // writer meets most (epoch seconds, durations), where its fixed-notation path runs.
  if (in.ConsumeBool()) return std::bit_cast<double>(in.ConsumeIntegral<std::uint64_t>());
  return in.ConsumeFloatingPointInRange<double>(-1e17, 1e17);
}

af::FieldValue fuzzed_value(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0: return std::monostate{};
    case 1: return in.ConsumeBool();
    case 2: return in.ConsumeIntegral<std::int64_t>();
    case 3: return fuzzed_double(in);
    default: return in.ConsumeRandomLengthString(48);
  }
}

af::FieldType fuzzed_type(FuzzedDataProvider& in) {
  constexpr af::FieldType kTypes[] = {af::FieldType::kBool, af::FieldType::kInt,
                                      af::FieldType::kDouble, af::FieldType::kString};
  return kTypes[in.ConsumeIntegralInRange<std::size_t>(0, 3)];
}

/// A custom type from fuzzed pieces, or a built-in one; null when define_event refused it.
af::EventTypePtr fuzzed_event_type(FuzzedDataProvider& in) {
  if (in.ConsumeIntegralInRange<int>(0, 3) == 0) {
    const af::EventTypePtr* builtins[] = {
        &af::events::SessionStarted(), &af::events::SessionEnded(), &af::events::TaskCreated(),
        &af::events::TaskSubmitted(),  &af::events::TaskQueued(),   &af::events::TaskStarted(),
        &af::events::TaskCompleted(),  &af::events::TaskFailed(),   &af::events::TaskCanceled(),
        &af::events::ResourceUpdate(), &af::events::TaskResolved(), &af::events::WorkflowStarted(),
        &af::events::WorkflowEnded()};
    return *builtins[in.ConsumeIntegralInRange<std::size_t>(0, std::size(builtins) - 1)];
  }
  std::string name = in.ConsumeRandomLengthString(48);
  std::vector<std::pair<std::string, af::FieldSpec>> fields;
  const auto count = in.ConsumeIntegralInRange<std::size_t>(0, 6);
  try {
    for (std::size_t i = 0; i < count; ++i) {
      std::string field = in.ConsumeRandomLengthString(24);
      const af::FieldType type = fuzzed_type(in);
      switch (in.ConsumeIntegralInRange<int>(0, 2)) {
        case 0: fields.emplace_back(std::move(field), af::FieldSpec(type)); break;
        case 1: fields.emplace_back(std::move(field), af::FieldSpec::optional(type)); break;
        default: fields.emplace_back(std::move(field), af::FieldSpec(type, fuzzed_value(in)));
      }
    }
    return af::define_event(std::move(name), std::move(fields));
  } catch (const af::Error&) {
    return nullptr;  // a default that does not fit its type, a bad name or field: documented
  }
}

af::EventBase fuzzed_base(FuzzedDataProvider& in) {
  af::EventBase base;
  base.session_id = in.ConsumeRandomLengthString(32);
  base.backend = in.ConsumeRandomLengthString(16);
  if (in.ConsumeBool()) base.task_id = in.ConsumeRandomLengthString(16);
  if (in.ConsumeBool()) base.node_id = in.ConsumeRandomLengthString(16);
  const auto attributes = in.ConsumeIntegralInRange<std::size_t>(0, 4);
  for (std::size_t i = 0; i < attributes; ++i) {
    std::string key = in.ConsumeRandomLengthString(32);
    base.attributes.emplace_back(std::move(key), fuzzed_value(in));
  }
  if (in.ConsumeBool()) base.event_time = fuzzed_double(in);
  return base;
}

/// An event of `type` built from fuzzed values, or nullopt when the library refused them.
std::optional<af::Event> fuzzed_event(FuzzedDataProvider& in, const af::EventTypePtr& type) {
  const auto& fields = type->fields();
  const bool restore = in.ConsumeBool();
  std::string event_id = restore ? in.ConsumeRandomLengthString(56) : std::string();
  const double event_time = restore ? fuzzed_double(in) : 0;
  const double emit_time = restore ? fuzzed_double(in) : 0;
  af::EventBase base = fuzzed_base(in);
  try {
    if (restore) {  // positional values, one per field (or a wrong count)
      std::vector<af::FieldValue> values;
      const auto count = in.ConsumeIntegralInRange<std::size_t>(0, fields.size() + 1);
      for (std::size_t i = 0; i < count; ++i) values.push_back(fuzzed_value(in));
      return af::restore_event(type, std::move(event_id), event_time, emit_time, std::move(base),
                               std::move(values));
    }
    // Named values: mostly the type's own field names, sometimes any name.
    std::vector<std::pair<std::string, af::FieldValue>> values;
    const auto count = in.ConsumeIntegralInRange<std::size_t>(0, fields.size() + 1);
    for (std::size_t i = 0; i < count; ++i) {
      std::string field;
      if (!fields.empty() && in.ConsumeIntegralInRange<int>(0, 3) != 0) {
        field = fields[in.ConsumeIntegralInRange<std::size_t>(0, fields.size() - 1)].first;
      } else {
        field = in.ConsumeRandomLengthString(24);
      }
      values.emplace_back(std::move(field), fuzzed_value(in));
    }
    return af::make_event(type, std::move(base), std::move(values));
  } catch (const af::Error&) {
    return std::nullopt;
  }
}

bool is_utf8(const std::string& text) {
  try {
    (void)Json(text).dump();  // nlohmann refuses to write invalid UTF-8
    return true;
  } catch (const Json::type_error&) {
    return false;
  }
}

bool is_finite(const af::FieldValue& v) {
  const double* d = std::get_if<double>(&v);
  return d == nullptr || std::isfinite(*d);
}

/// Strict JSON has no NaN or infinities; the line writes them as bare tokens, which only
/// Python-style readers accept, so only lines without them go to nlohmann.
bool all_finite(const af::Event& e) {
  if (!std::isfinite(e.event_time()) || !std::isfinite(e.emit_time())) return false;
  for (const auto& [key, value] : e.attributes()) {
    if (!is_finite(value)) return false;
  }
  for (const auto& value : e.values()) {
    if (!is_finite(value)) return false;
  }
  return true;
}

/// `parsed` holds `want` as the line format writes it (invalid UTF-8 becomes U+FFFD, so such
/// strings are only checked for being strings).
void check_value(const Json& parsed, const af::FieldValue& want, const std::string& what,
                 const std::string& line) {
  bool ok = false;
  switch (want.index()) {
    case 0: ok = parsed.is_null(); break;
    case 1: ok = parsed.is_boolean() && parsed.get<bool>() == std::get<bool>(want); break;
    case 2:
      ok = parsed.is_number_integer() && parsed.get<std::int64_t>() == std::get<std::int64_t>(want);
      break;
    case 3:  // repr's shortest digits read back as the same double
      ok = parsed.is_number_float() && parsed.get<double>() == std::get<double>(want);
      break;
    default: {
      const auto& s = std::get<std::string>(want);
      ok = parsed.is_string() && (!is_utf8(s) || parsed.get<std::string>() == s);
    }
  }
  if (!ok) fail(what + " does not read back as written: " + parsed.dump(), line);
}

void check_line(const af::Event& e, const std::string& line) {
  if (line.empty() || line.back() != '\n' || line.find('\n') != line.size() - 1) {
    fail("not one line ending in a newline", line);
  }
  if (!all_finite(e)) return;
  const Json parsed = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) fail("not a JSON object", line);

  // Keys in the documented order; field names are never base keys or columns (define_event
  // refuses them), so the line has no duplicate keys unless two invalid names both became
  // U+FFFD.
  std::vector<std::string> keys = {"event_id",  "event_type", "event_time",
                                   "emit_time", "session_id", "backend",
                                   "task_id",   "node_id",    "attributes"};
  bool comparable = true;
  for (const auto& [name, spec] : e.event_type()->fields()) {
    keys.push_back(name);
    comparable = comparable && is_utf8(name);
  }
  for (const char* key : {"trace_id", "span_id", "name", "section"}) keys.emplace_back(key);
  if (comparable) {
    std::vector<std::string> got;
    for (const auto& item : parsed.items()) got.push_back(item.key());
    if (got != keys) fail("keys are not in the documented order", line);
  }
  if (parsed.at("section") != "event") fail("section is not \"event\"", line);
  if (is_utf8(e.type())) {
    if (parsed.at("event_type") != e.type() || parsed.at("name") != e.type()) {
      fail("event_type or name is not the type's name", line);
    }
  }
  const std::string id(e.event_id());
  if (is_utf8(id) && parsed.at("event_id") != id) fail("event_id changed", line);
  check_value(parsed.at("event_time"), e.event_time(), "event_time", line);
  check_value(parsed.at("emit_time"), e.emit_time(), "emit_time", line);
  check_value(parsed.at("session_id"), e.session_id(), "session_id", line);
  check_value(parsed.at("backend"), e.backend(), "backend", line);
  const auto optional_text = [](const std::optional<std::string>& s) -> af::FieldValue {
    if (s) return *s;
    return std::monostate{};
  };
  check_value(parsed.at("task_id"), optional_text(e.task_id()), "task_id", line);
  check_value(parsed.at("node_id"), optional_text(e.node_id()), "node_id", line);

  // Attribute keys may repeat (a JSON object keeps one of them): values are checked when not.
  std::set<std::string> attribute_keys;
  bool unique = true;
  for (const auto& [key, value] : e.attributes()) {
    unique = unique && is_utf8(key) && attribute_keys.insert(key).second;
  }
  const Json& attributes = parsed.at("attributes");
  if (!attributes.is_object()) fail("attributes is not an object", line);
  if (unique) {
    if (attributes.size() != e.attributes().size()) fail("attributes were lost", line);
    for (const auto& [key, value] : e.attributes()) {
      check_value(attributes.at(key), value, "attribute '" + key + "'", line);
    }
  }
  if (comparable) {
    const auto& fields = e.event_type()->fields();
    for (std::size_t i = 0; i < fields.size(); ++i) {
      check_value(parsed.at(fields[i].first), e.values()[i], "field '" + fields[i].first + "'",
                  line);
    }
  }
}

/// The event's line from the plain writer, checked against the cached formatter's (twice: the
/// second call reads the cache the first one filled).
void write_and_check(const af::Event& e, af::jsonl::LineFormatter& formatter,
                     const af::TraceId& trace_id, std::uint64_t span_id) {
  std::string plain;
  af::jsonl::append_event_line(plain, e, trace_id, span_id);
  for (int round = 0; round < 2; ++round) {
    std::string cached;
    formatter.append_event_line(cached, e, trace_id, span_id);
    if (cached != plain) fail("LineFormatter wrote other bytes:\n" + cached, plain);
  }
  check_line(e, plain);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const af::EventTypePtr type = fuzzed_event_type(in);
  if (!type) return 0;
  std::optional<af::Event> event = fuzzed_event(in, type);
  if (!event) return 0;
  const af::TraceId trace_id{in.ConsumeIntegral<std::uint64_t>(),
                             in.ConsumeIntegral<std::uint64_t>()};
  const std::uint64_t span_id = in.ConsumeIntegral<std::uint64_t>();

  af::jsonl::LineFormatter formatter;  // per input: its caches keep every type they saw alive
  write_and_check(*event, formatter, trace_id, span_id);
  // A second event over the same context, as the engine builds them: the formatter caches a
  // shared context's JSON, which must not change the bytes either.
  const af::Event sibling =
      af::make_event(type, event->context(), event->task_id().value_or(""), event->values());
  write_and_check(sibling, formatter, trace_id, span_id);
  return 0;
}
