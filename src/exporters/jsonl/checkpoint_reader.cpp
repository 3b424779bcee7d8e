// read_checkpoint(): loads a JSONL checkpoint back into events, metric snapshots and spans
// (docs/checkpoint-format.md). Not a hot path, so each line is parsed into an nlohmann
// ordered_json (key order matters: attributes and custom fields keep the file's order).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "asyncflow/common/error.hpp"
#include "asyncflow/exporters/jsonl/checkpoint_reader.hpp"

namespace asyncflow {

namespace {

using Json = nlohmann::ordered_json;

/// A line that is valid JSON but not a valid checkpoint line; read_checkpoint adds the place.
struct LineError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Deepest nesting a line may have, the line's own object counting as level 1 (a checkpoint
// line needs 2: its attributes object). nlohmann parses any depth without recursion, but
// copying and dump() recurse once per level, and the reader dumps arrays and objects to keep
// them as text and to quote values in its errors: 200,000 levels overflowed the stack.
constexpr int kMaxNesting = 256;

// json.dumps writes NaN, Infinity and -Infinity as bare tokens, which nlohmann rejects (and
// 1e999 is a parse error too). They are swapped for these strings before parsing and mapped
// back wherever a number is expected. The leading NUL keeps them apart from real text, which
// the writer would have escaped as \u0000 and which no producer has a reason to send.
constexpr std::string_view kNaN = std::string_view("\0NaN", 4);
constexpr std::string_view kInf = std::string_view("\0Infinity", 9);
constexpr std::string_view kNegInf = std::string_view("\0-Infinity", 10);

/// `line` with its bare non-finite tokens (outside strings) replaced by sentinel strings, or
/// nullopt when it has none.
std::optional<std::string> replace_non_finite(std::string_view line) {
  std::optional<std::string> out;
  std::size_t copied = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    std::string_view token;
    const char* replacement = nullptr;
    const std::string_view rest = line.substr(i);
    if (rest.starts_with("NaN")) {
      token = "NaN";
      replacement = "\"\\u0000NaN\"";
    } else if (rest.starts_with("Infinity")) {
      token = "Infinity";
      replacement = "\"\\u0000Infinity\"";
    } else if (rest.starts_with("-Infinity")) {
      token = "-Infinity";
      replacement = "\"\\u0000-Infinity\"";
    } else {
      continue;
    }
    if (!out) out.emplace();
    out->append(line.substr(copied, i - copied));
    out->append(replacement);
    i += token.size() - 1;
    copied = i + 1;
  }
  if (out) out->append(line.substr(copied));
  return out;
}

std::string describe(const Json& j) {
  std::string text = j.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

std::optional<double> non_finite(const Json& j) {
  if (!j.is_string()) return std::nullopt;
  const auto& s = j.get_ref<const std::string&>();
  if (s == kNaN) return std::numeric_limits<double>::quiet_NaN();
  if (s == kInf) return std::numeric_limits<double>::infinity();
  if (s == kNegInf) return -std::numeric_limits<double>::infinity();
  return std::nullopt;
}

const Json& require(const Json& line, const char* key) {
  auto it = line.find(key);
  if (it == line.end()) throw LineError(std::string("missing key '") + key + "'");
  return *it;
}

double number_of(const Json& j, std::string_view key) {
  if (j.is_number()) return j.get<double>();
  if (auto v = non_finite(j)) return *v;
  throw LineError("'" + std::string(key) + "' is " + describe(j) + ", not a number");
}

std::int64_t integer_of(const Json& j, std::string_view key) {
  if (j.is_number_integer()) {
    if (j.is_number_unsigned() &&
        j.get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw LineError("'" + std::string(key) + "' is out of range");
    }
    return j.get<std::int64_t>();
  }
  throw LineError("'" + std::string(key) + "' is " + describe(j) + ", not an integer");
}

const std::string& string_of(const Json& j, std::string_view key) {
  if (j.is_string() && !non_finite(j)) return j.get_ref<const std::string&>();
  throw LineError("'" + std::string(key) + "' is " + describe(j) + ", not a string");
}

std::optional<std::string> optional_string_of(const Json& j, std::string_view key) {
  if (j.is_null()) return std::nullopt;
  return string_of(j, key);
}

FieldValue field_value_of(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return std::monostate{};
    case Json::value_t::boolean: return j.get<bool>();
    case Json::value_t::number_integer: return j.get<std::int64_t>();
    case Json::value_t::number_unsigned: {
      const auto u = j.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return static_cast<std::int64_t>(u);
      }
      return static_cast<double>(u);
    }
    case Json::value_t::number_float: return j.get<double>();
    case Json::value_t::string:
      if (auto v = non_finite(j)) return *v;
      return j.get<std::string>();
    default:  // objects and arrays have no FieldValue; keep their JSON text
      return j.dump();
  }
}

Attributes attributes_of(const Json& line) {
  Attributes out;
  auto it = line.find("attributes");
  if (it == line.end() || it->is_null()) return out;
  if (!it->is_object()) throw LineError("'attributes' is " + describe(*it) + ", not an object");
  out.reserve(it->size());
  for (const auto& [key, value] : it->items()) out.emplace_back(key, field_value_of(value));
  return out;
}

/// Parses a Python hex(int) id: "0x" and 1..max_digits hex digits.
template <typename Out>
Out hex_id_of(const Json& j, std::string_view key, std::size_t max_digits) {
  if (j.is_null()) return Out{};
  const std::string& s = string_of(j, key);
  if (s.size() < 3 || s.size() - 2 > max_digits || (s[0] != '0') || (s[1] != 'x' && s[1] != 'X')) {
    throw LineError("'" + std::string(key) + "' is \"" + s + "\", not a 0x… id");
  }
  std::uint64_t high = 0;
  std::uint64_t low = 0;
  for (std::size_t i = 2; i < s.size(); ++i) {
    const char c = s[i];
    int d = 0;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      throw LineError("'" + std::string(key) + "' is \"" + s + "\", not a 0x… id");
    }
    high = (high << 4) | (low >> 60);
    low = (low << 4) | static_cast<std::uint64_t>(d);
  }
  if constexpr (std::is_same_v<Out, TraceId>) {
    return TraceId{high, low};
  } else {
    return low;
  }
}

SpanStatus status_of(const Json& j) {
  const std::string& s = string_of(j, "status_code");
  if (s == "UNSET") return SpanStatus::kUnset;
  if (s == "OK") return SpanStatus::kOk;
  if (s == "ERROR") return SpanStatus::kError;
  throw LineError("'status_code' is \"" + s + "\", not UNSET, OK or ERROR");
}

// Keys of an event line that are not extra fields of its type.
bool is_event_column(std::string_view key) {
  static constexpr std::string_view kColumns[] = {
      "event_id", "event_type", "event_time", "emit_time", "session_id", "backend", "task_id",
      "node_id",  "attributes", "trace_id",   "span_id",   "name",       "section"};
  for (std::string_view c : kColumns) {
    if (c == key) return true;
  }
  return false;
}

FieldType type_of(const FieldValue& v) {
  switch (v.index()) {
    case 1: return FieldType::kBool;
    case 2: return FieldType::kInt;
    case 3: return FieldType::kDouble;
    default: return FieldType::kString;
  }
}

/// The schema of an event type the reader does not know, inferred from its lines: keys in
/// first-seen order; a key that is null or missing on some line becomes nullable; int and
/// double mix to double. When a line widens the schema, later events get a new EventType
/// (earlier ones keep the narrower one, which fits their values).
class InferredType {
 public:
  /// The type for a line with these extra fields, widened as needed. Throws LineError (and
  /// changes nothing) when a field's value conflicts with this layout (a string where the
  /// layout has a number, say).
  EventTypePtr fit(const std::string& name,
                   const std::vector<std::pair<std::string, FieldValue>>& extras) {
    check_fits(name, extras);
    bool changed = !type_;
    std::vector<bool> seen(fields_.size(), false);
    for (const auto& [key, value] : extras) {
      std::size_t i = 0;
      while (i < fields_.size() && fields_[i].name != key) ++i;
      const bool is_null = std::holds_alternative<std::monostate>(value);
      if (i == fields_.size()) {
        // A key that earlier lines lacked was null there.
        fields_.push_back({key, is_null ? std::nullopt : std::optional(type_of(value)),
                           is_null || type_ != nullptr});
        seen.push_back(true);
        changed = true;
        continue;
      }
      seen[i] = true;
      Field& f = fields_[i];
      if (is_null) {
        changed |= !f.nullable;
        f.nullable = true;
      } else if (!f.type) {
        f.type = type_of(value);
        changed = true;
      } else if (*f.type != type_of(value)) {  // int and double (check_fits let only those mix)
        changed |= *f.type != FieldType::kDouble;
        f.type = FieldType::kDouble;
      }
    }
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      if (!seen[i] && !fields_[i].nullable) {
        fields_[i].nullable = true;
        changed = true;
      }
    }
    if (changed) {
      std::vector<std::pair<std::string, FieldSpec>> specs;
      specs.reserve(fields_.size());
      for (const Field& f : fields_) {
        // A field only ever seen as null has no known type; string is as good as any.
        const FieldType t = f.type.value_or(FieldType::kString);
        specs.emplace_back(f.name, f.nullable ? FieldSpec::optional(t) : FieldSpec(t));
      }
      type_ = std::make_shared<const EventType>(name, std::move(specs));
    }
    return type_;
  }

 private:
  void check_fits(const std::string& name,
                  const std::vector<std::pair<std::string, FieldValue>>& extras) const {
    for (const auto& [key, value] : extras) {
      if (std::holds_alternative<std::monostate>(value)) continue;
      const std::string& name_of_field = key;  // (clang 14 cannot capture a structured binding)
      auto f = std::find_if(fields_.begin(), fields_.end(),
                            [&](const Field& field) { return field.name == name_of_field; });
      if (f == fields_.end() || !f->type) continue;
      const FieldType t = type_of(value);
      const auto numeric = [](FieldType x) {
        return x == FieldType::kInt || x == FieldType::kDouble;
      };
      if (t != *f->type && !(numeric(t) && numeric(*f->type))) {
        throw LineError("field '" + key + "' of event '" + name + "' is " +
                        std::string(to_string(t)) + " here but " +
                        std::string(to_string(*f->type)) + " on an earlier line");
      }
    }
  }

  struct Field {
    std::string name;
    std::optional<FieldType> type;
    bool nullable = false;
  };
  std::vector<Field> fields_;
  EventTypePtr type_;
};

class Reader {
 public:
  void read_line(const Json& line) {
    if (!line.is_object()) throw LineError("not a JSON object");
    auto section = line.find("section");
    if (section == line.end()) {
      read_event(line);  // lines without a section are events (reference plotting scripts)
      return;
    }
    const std::string& s = string_of(*section, "section");
    if (s == "event") {
      read_event(line);
    } else if (s == "span") {
      read_span(line);
    } else if (s == "metric") {
      read_metric(line);
    } else {
      throw LineError("unknown section \"" + s + "\"");
    }
  }

  Checkpoint take() && { return std::move(out_); }
  Checkpoint& checkpoint() { return out_; }

 private:
  void read_event(const Json& line) {
    const std::string& type_name = string_of(require(line, "event_type"), "event_type");
    std::string event_id = string_of(require(line, "event_id"), "event_id");
    const double event_time = number_of(require(line, "event_time"), "event_time");
    auto emit = line.find("emit_time");
    const double emit_time = emit == line.end() ? event_time : number_of(*emit, "emit_time");

    EventBase base;
    auto optional_key = [&](const char* key) -> std::optional<std::string> {
      auto it = line.find(key);
      return it == line.end() ? std::nullopt : optional_string_of(*it, key);
    };
    base.session_id = optional_key("session_id").value_or("");
    base.backend = optional_key("backend").value_or("");  // the reference may write null
    base.task_id = optional_key("task_id");
    base.node_id = optional_key("node_id");
    base.attributes = attributes_of(line);

    extras_.clear();
    for (const auto& [key, value] : line.items()) {
      if (!is_event_column(key)) extras_.emplace_back(key, field_value_of(value));
    }

    std::optional<Event> restored;
    if (const EventTypePtr* builtin = events::builtin_event_type(type_name)) {
      restored = restore_builtin(*builtin, event_id, event_time, emit_time, base);
    }
    // Not a built-in, or a line that does not fit the built-in of its name (a custom type that
    // other tools named like one): the line's own layout.
    if (!restored) restored = restore_custom(type_name, event_id, event_time, emit_time, base);

    CheckpointEvent event{std::move(*restored), {}, {}};
    if (auto it = line.find("trace_id"); it != line.end()) {
      event.trace_id = optional_string_of(*it, "trace_id");
    }
    if (auto it = line.find("span_id"); it != line.end()) {
      event.span_id = optional_string_of(*it, "span_id");
    }
    out_.events.push_back(std::move(event));
  }

  /// The event as the built-in `type`, or nullopt when the line's fields do not fit it.
  std::optional<Event> restore_builtin(const EventTypePtr& type, const std::string& event_id,
                                       double event_time, double emit_time, const EventBase& base) {
    std::vector<FieldValue> values;
    values.reserve(type->fields().size());
    for (const auto& [field, spec] : type->fields()) values.push_back(spec.default_value);
    for (const auto& [key, value] : extras_) {
      auto idx = type->index_of(key);
      if (!idx) return std::nullopt;
      values[*idx] = value;
    }
    try {
      return restore_event(type, event_id, event_time, emit_time, base, std::move(values));
    } catch (const Error&) {
      return std::nullopt;  // a value of the wrong type
    }
  }

  /// The event under the first layout seen for `name` that its fields fit (widening int to
  /// double and fields to nullable as needed), or a new layout when they fit none: a file with
  /// two definitions of one name reads as two types of that name.
  Event restore_custom(const std::string& name, const std::string& event_id, double event_time,
                       double emit_time, const EventBase& base) {
    std::vector<InferredType>& layouts = custom_[name];
    for (std::size_t i = 0; i <= layouts.size(); ++i) {
      if (i == layouts.size()) layouts.emplace_back();
      EventTypePtr type;
      try {
        type = layouts[i].fit(name, extras_);
      } catch (const LineError&) {
        continue;  // conflicts with this layout: try the next
      }
      std::vector<FieldValue> values(type->fields().size());
      for (const auto& [key, value] : extras_) values[*type->index_of(key)] = value;
      return restore_event(type, event_id, event_time, emit_time, base, std::move(values));
    }
    throw LineError("event '" + name + "' fits no layout");  // unreachable: a new one fits
  }

  void read_span(const Json& line) {
    SpanData span;
    span.name = string_of(require(line, "name"), "name");
    span.span_id = hex_id_of<std::uint64_t>(require(line, "span_id"), "span_id", 16);
    if (span.span_id == 0) throw LineError("span without a span_id");
    span.trace_id = hex_id_of<TraceId>(require(line, "trace_id"), "trace_id", 32);
    if (auto it = line.find("parent_span_id"); it != line.end()) {
      span.parent_span_id = hex_id_of<std::uint64_t>(*it, "parent_span_id", 16);
    }
    span.start_ns = integer_of(require(line, "start_ns"), "start_ns");
    span.end_ns = integer_of(require(line, "end_ns"), "end_ns");
    span.status = status_of(require(line, "status_code"));
    if (auto it = line.find("status_description"); it != line.end()) {
      span.status_description = optional_string_of(*it, "status_description");
    }
    span.attributes = attributes_of(line);
    // Every snapshot repeats the spans finished so far: keep the first position, last copy.
    auto [it, inserted] = span_index_.try_emplace(span.span_id, out_.spans.size());
    if (inserted) {
      out_.spans.push_back(std::move(span));
    } else {
      out_.spans[it->second] = std::move(span);
    }
  }

  void read_metric(const Json& line) {
    CheckpointMetrics m;
    m.checkpoint_time = number_of(require(line, "checkpoint_time"), "checkpoint_time");
    for (const auto& [key, value] : line.items()) {
      if (key == "checkpoint_time" || key == "section") continue;
      m.values.emplace_back(key, number_of(value, key));
    }
    out_.metrics.push_back(std::move(m));
  }

  Checkpoint out_;
  std::unordered_map<std::uint64_t, std::size_t> span_index_;
  std::unordered_map<std::string, std::vector<InferredType>> custom_;
  std::vector<std::pair<std::string, FieldValue>> extras_;
};

}  // namespace

std::optional<double> CheckpointMetrics::value(std::string_view key) const noexcept {
  for (const auto& [k, v] : values) {
    if (k == key) return v;
  }
  return std::nullopt;
}

Checkpoint read_checkpoint(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw Error("checkpoint: cannot open '" + file.string() + "': " + std::strerror(errno));
  }
  Reader reader;
  // A line is parsed once the next non-empty line has been seen, so the last one (the only
  // one a crash can tear) is known when it is parsed.
  std::string pending;
  std::size_t pending_number = 0;
  bool too_deep = false;
  // nlohmann's depth counts the containers around a value: the line's object is at 0. Values
  // beyond the limit are dropped as they are parsed, so a deep line is never built.
  const Json::parser_callback_t limit_depth = [&](int depth, Json::parse_event_t event, Json&) {
    if (depth < kMaxNesting) return true;
    if (event != Json::parse_event_t::object_start && event != Json::parse_event_t::array_start) {
      return true;
    }
    too_deep = true;
    return false;
  };
  auto parse = [&](const std::string& text, std::size_t number, bool last) {
    auto fixed = replace_non_finite(text);
    too_deep = false;
    Json line = Json::parse(fixed ? *fixed : text, limit_depth, /*allow_exceptions=*/false);
    if (line.is_discarded()) {
      if (last) {
        reader.checkpoint().torn_tail = true;
        return;
      }
      throw Error("checkpoint '" + file.string() + "' line " + std::to_string(number) +
                  ": not valid JSON");
    }
    if (too_deep) {  // whole and valid, so not a torn tail even when last
      throw Error("checkpoint '" + file.string() + "' line " + std::to_string(number) +
                  ": nested deeper than " + std::to_string(kMaxNesting) + " levels");
    }
    try {
      reader.read_line(line);
    } catch (const std::exception& e) {  // LineError, or asyncflow::Error from restore_event
      throw Error("checkpoint '" + file.string() + "' line " + std::to_string(number) + ": " +
                  e.what());
    }
  };
  std::string text;
  std::size_t number = 0;
  while (std::getline(in, text)) {
    ++number;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    if (pending_number != 0) parse(pending, pending_number, false);
    pending.swap(text);
    pending_number = number;
  }
  if (in.bad()) {
    throw Error("checkpoint: cannot read '" + file.string() + "': " + std::strerror(errno));
  }
  if (pending_number != 0) parse(pending, pending_number, true);
  return std::move(reader).take();
}

}  // namespace asyncflow
