// Events, event types and their validation (reference rhapsody-telemetry.md §1).
#include "asyncflow/telemetry/event.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <mutex>
#include <set>

#include "asyncflow/common/error.hpp"
#include "asyncflow/common/thread_annotations.hpp"
#include "event_access.hpp"

namespace asyncflow {

namespace {

// The 9 base fields (reference §1.1) and the keys the JSONL writer adds to every event line
// (§3.2). The reference let custom fields overwrite the latter silently; we refuse them.
constexpr std::array<std::string_view, 9> kBaseFields = {"event_id",  "event_type", "event_time",
                                                         "emit_time", "session_id", "backend",
                                                         "task_id",   "node_id",    "attributes"};
constexpr std::array<std::string_view, 4> kJsonlColumns = {"trace_id", "span_id", "name",
                                                           "section"};

FieldValue zero_of(FieldType t) {
  switch (t) {
    case FieldType::kBool: return false;
    case FieldType::kInt: return std::int64_t{0};
    case FieldType::kDouble: return 0.0;
    case FieldType::kString: return std::string();
  }
  return {};
}

std::string_view value_kind(const FieldValue& v) {
  switch (v.index()) {
    case 0: return "null";
    case 1: return "bool";
    case 2: return "int";
    case 3: return "double";
    default: return "string";
  }
}

/// Converts `v` to field type `t` (int widens to double); nullopt when it does not fit.
std::optional<FieldValue> coerce(const FieldValue& v, FieldType t) {
  switch (t) {
    case FieldType::kBool:
      if (std::holds_alternative<bool>(v)) return v;
      break;
    case FieldType::kInt:
      if (std::holds_alternative<std::int64_t>(v)) return v;
      break;
    case FieldType::kDouble:
      if (std::holds_alternative<double>(v)) return v;
      if (auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
      break;
    case FieldType::kString:
      if (std::holds_alternative<std::string>(v)) return v;
      break;
  }
  return std::nullopt;
}

FieldValue checked_value(const EventType& type, const std::string& field, const FieldSpec& spec,
                         const FieldValue& v) {
  if (std::holds_alternative<std::monostate>(v)) {
    if (spec.nullable) return v;
    throw Error("event '" + type.name() + "': field '" + field + "' is not nullable");
  }
  if (auto c = coerce(v, spec.type)) return *std::move(c);
  throw Error("event '" + type.name() + "': field '" + field + "' expects " +
              std::string(to_string(spec.type)) + ", got " + std::string(value_kind(v)));
}

std::string known_fields(const EventType& type) {
  std::string out;
  for (const auto& [name, spec] : type.fields()) out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "(none)" : out;
}

bool is_resource_update(const EventType& type) {
  // By identity: its name cannot be defined again (define_event refuses built-in names).
  return &type == events::ResourceUpdate().get();
}

/// ResourceUpdate's resource_scope is derived, never set by callers (reference §1.4).
void derive_resource_scope(const EventType& type, std::vector<FieldValue>& values) {
  if (!is_resource_update(type)) return;
  const bool per_gpu = !std::holds_alternative<std::monostate>(values[*type.index_of("gpu_id")]);
  values[*type.index_of("resource_scope")] = std::string(per_gpu ? "per_gpu" : "per_node");
}

bool same_schema(const std::vector<std::pair<std::string, FieldSpec>>& a,
                 const std::vector<std::pair<std::string, FieldSpec>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto& [name_a, spec_a] = a[i];
    const auto& [name_b, spec_b] = b[i];
    if (name_a != name_b || spec_a.type != spec_b.type || spec_a.nullable != spec_b.nullable ||
        spec_a.default_value != spec_b.default_value) {
      return false;
    }
  }
  return true;
}

std::string describe_fields(const std::vector<std::pair<std::string, FieldSpec>>& fields) {
  std::string out;
  for (const auto& [name, spec] : fields) {
    out += (out.empty() ? "" : ", ") + name + ": " + std::string(to_string(spec.type));
    if (spec.nullable) out += " (nullable)";
  }
  return out.empty() ? "(none)" : out;
}

/// The custom types alive in this process, by name: one name means one schema, so a reader
/// of a checkpoint never meets two layouts under one event_type.
class DefinedTypes {
 public:
  EventTypePtr define(std::string name, std::vector<std::pair<std::string, FieldSpec>> fields) {
    MutexLock lock(mu_);
    auto it = types_.find(name);
    if (it != types_.end()) {
      if (EventTypePtr existing = it->second.lock()) {
        if (same_schema(existing->fields(), fields)) return existing;
        throw Error("define_event: '" + name + "' is already defined with other fields (" +
                    describe_fields(existing->fields()) + "; now " + describe_fields(fields) +
                    "); one event name means one schema");
      }
    }
    auto type = std::make_shared<const EventType>(name, std::move(fields));
    types_[std::move(name)] = type;
    return type;
  }

 private:
  Mutex mu_;
  std::map<std::string, std::weak_ptr<const EventType>, std::less<>> types_
      ASYNCFLOW_GUARDED_BY(mu_);
};

DefinedTypes& defined_types() {
  static DefinedTypes* types = new DefinedTypes;  // immortal: types may be defined at exit
  return *types;
}

}  // namespace

std::string_view to_string(FieldType type) noexcept {
  switch (type) {
    case FieldType::kBool: return "bool";
    case FieldType::kInt: return "int";
    case FieldType::kDouble: return "double";
    case FieldType::kString: return "string";
  }
  return "unknown";
}

FieldSpec::FieldSpec(FieldType t) : type(t), default_value(zero_of(t)) {}

FieldSpec::FieldSpec(FieldType t, FieldValue def) : type(t) {
  if (std::holds_alternative<std::monostate>(def)) {
    nullable = true;
    default_value = std::monostate{};
    return;
  }
  auto c = coerce(def, t);
  if (!c) {
    throw Error("field default of type " + std::string(value_kind(def)) + " does not fit " +
                std::string(to_string(t)));
  }
  default_value = *std::move(c);
}

FieldSpec FieldSpec::optional(FieldType t) {
  return FieldSpec(t, std::monostate{});
}

EventType::EventType(std::string name, std::vector<std::pair<std::string, FieldSpec>> fields)
    : name_(std::move(name)), fields_(std::move(fields)) {}

std::optional<std::size_t> EventType::index_of(std::string_view field) const noexcept {
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].first == field) return i;
  }
  return std::nullopt;
}

EventTypePtr define_event(std::string name, std::vector<std::pair<std::string, FieldSpec>> fields) {
  if (name.find('.') == std::string::npos || name.front() == '.' || name.back() == '.') {
    throw Error("define_event: name '" + name +
                "' must be namespaced (e.g. 'asyncflow.X'). Flat names risk collisions "
                "across systems.");
  }
  std::vector<std::string> shadowing;
  std::set<std::string> seen;
  for (const auto& [field, spec] : fields) {
    if (field.empty()) throw Error("define_event '" + name + "': empty field name");
    if (!seen.insert(field).second) {
      throw Error("define_event '" + name + "': field '" + field + "' is declared twice");
    }
    if (std::find(kBaseFields.begin(), kBaseFields.end(), field) != kBaseFields.end() ||
        std::find(kJsonlColumns.begin(), kJsonlColumns.end(), field) != kJsonlColumns.end()) {
      shadowing.push_back(field);
    }
  }
  if (!shadowing.empty()) {
    std::sort(shadowing.begin(), shadowing.end());
    std::string list;
    for (const auto& f : shadowing) list += (list.empty() ? "'" : ", '") + f + "'";
    throw Error("define_event '" + name + "': fields [" + list +
                "] shadow core event fields or JSONL columns. Custom events must not redefine "
                "the base schema.");
  }
  if (events::builtin_event_type(name) != nullptr) {
    throw Error("define_event: '" + name +
                "' is a built-in event type; choose another name "
                "(a custom type of the same name would make its events indistinguishable)");
  }
  return defined_types().define(std::move(name), std::move(fields));
}

Event make_event(const EventTypePtr& type, EventBase base,
                 std::initializer_list<std::pair<std::string_view, FieldValue>> values) {
  std::vector<std::pair<std::string, FieldValue>> v;
  v.reserve(values.size());
  for (const auto& [key, value] : values) v.emplace_back(std::string(key), value);
  return make_event(type, std::move(base), std::move(v));
}

Event make_event(const EventTypePtr& type, EventBase base,
                 std::vector<std::pair<std::string, FieldValue>> values) {
  if (!type) throw Error("make_event: null event type");
  // NaN or an infinity would reach the checkpoint as a bare token that pandas' recipe
  // (to_datetime on event_time) cannot take.
  if (base.event_time && !std::isfinite(*base.event_time)) {
    throw Error("event '" + type->name() + "': event_time must be a finite number of seconds " +
                "since the epoch, got " + std::to_string(*base.event_time));
  }
  const double now = epoch_seconds();
  Event e;
  // Immortal (built-in) types: an alias without a control block, so copying the event's
  // type pointer costs no atomic operation.
  e.type_ = detail::EventAccess::type_ref(type);
  e.values_.reserve(type->fields().size());
  for (const auto& [name, spec] : type->fields()) e.values_.push_back(spec.default_value);
  for (auto& [field, value] : values) {
    auto idx = type->index_of(field);
    if (!idx || (is_resource_update(*type) && field == "resource_scope")) {
      throw Error("event '" + type->name() + "': unknown field '" + field +
                  "' (fields: " + known_fields(*type) + ")");
    }
    e.values_[*idx] = checked_value(*type, field, type->fields()[*idx].second, value);
  }
  derive_resource_scope(*type, e.values_);
  detail::EventAccess::generate_id(e);
  e.event_time_ = base.event_time.value_or(now);
  e.emit_time_ = now;
  e.task_id_ = std::move(base.task_id);
  e.context_ = std::make_shared<const EventContext>(std::move(base));
  return e;
}

Event make_event(const EventTypePtr& type, std::shared_ptr<const EventContext> context,
                 std::string task_id, std::vector<FieldValue> values) {
  return detail::EventAccess::context_event(type, std::move(context), std::move(task_id),
                                            std::move(values), /*pending=*/false);
}

Event detail::EventAccess::context_event(const EventTypePtr& type,
                                         std::shared_ptr<const EventContext> context,
                                         std::string task_id, std::vector<FieldValue> values,
                                         bool pending) {
  if (!type) throw Error("make_event: null event type");
  if (!context) throw Error("make_event '" + type->name() + "': null context");
  const auto& fields = type->fields();
  const bool nan_values =
      pending && values.empty() && std::all_of(fields.begin(), fields.end(), [](const auto& f) {
        return f.second.type == FieldType::kDouble;
      });
  if (values.size() != fields.size() && !nan_values) {
    throw Error("event '" + type->name() + "': " + std::to_string(values.size()) + " values for " +
                std::to_string(fields.size()) + " fields (" + known_fields(*type) + ")");
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    const FieldSpec& spec = fields[i].second;
    // The usual case (a value of the field's own type) is checked without a copy.
    const bool fits =
        (spec.type == FieldType::kDouble && std::holds_alternative<double>(values[i])) ||
        (spec.type == FieldType::kString && std::holds_alternative<std::string>(values[i]));
    if (!fits) values[i] = checked_value(*type, fields[i].first, spec, values[i]);
  }
  if (!nan_values) derive_resource_scope(*type, values);  // (ResourceUpdate has an int field)
  Event e;
  e.type_ = detail::EventAccess::type_ref(type);
  e.context_ = std::move(context);
  e.task_id_ = std::move(task_id);
  e.values_ = std::move(values);
  e.event_time_ = e.emit_time_ = epoch_seconds();
  if (pending) {
    e.event_id_pending_ = true;
  } else {
    generate_id(e);
  }
  return e;
}

Event restore_event(const EventTypePtr& type, std::string event_id, double event_time,
                    double emit_time, EventBase base, std::vector<FieldValue> values) {
  if (!type) throw Error("restore_event: null event type");
  const auto& fields = type->fields();
  if (values.size() != fields.size()) {
    throw Error("event '" + type->name() + "': " + std::to_string(values.size()) + " values for " +
                std::to_string(fields.size()) + " fields (" + known_fields(*type) + ")");
  }
  if (event_id.size() > Event::kMaxEventIdSize) {
    throw Error("event '" + type->name() + "': event_id '" + event_id + "' is longer than " +
                std::to_string(Event::kMaxEventIdSize) + " characters");
  }
  Event e;
  e.type_ = detail::EventAccess::type_ref(type);
  e.values_.reserve(fields.size());
  for (std::size_t i = 0; i < fields.size(); ++i) {
    e.values_.push_back(checked_value(*type, fields[i].first, fields[i].second, values[i]));
  }
  derive_resource_scope(*type, e.values_);
  std::copy(event_id.begin(), event_id.end(), e.event_id_chars());
  e.event_id_size_ = static_cast<std::uint8_t>(event_id.size());
  e.event_time_ = event_time;
  e.emit_time_ = emit_time;
  e.task_id_ = std::move(base.task_id);
  e.context_ = std::make_shared<const EventContext>(std::move(base));
  return e;
}

const EventContext& Event::empty_context() noexcept {
  static const EventContext empty;
  return empty;
}

const FieldValue* EventContext::attribute(std::string_view key) const noexcept {
  for (const auto& [k, v] : attributes) {
    if (k == key) return &v;
  }
  return nullptr;
}

const std::string* EventContext::string_attribute(std::string_view key) const noexcept {
  const FieldValue* v = attribute(key);
  return v != nullptr ? std::get_if<std::string>(v) : nullptr;
}

const FieldValue* Event::attribute(std::string_view key) const noexcept {
  return fields().attribute(key);
}

const FieldValue& Event::field(std::string_view name) const {
  auto idx = type_->index_of(name);
  if (!idx) {
    throw Error("event '" + type_->name() + "' has no field '" + std::string(name) +
                "' (fields: " + known_fields(*type_) + ")");
  }
  return values_[*idx];
}

double Event::number(std::string_view name) const {
  const FieldValue& v = field(name);
  if (auto* d = std::get_if<double>(&v)) return *d;
  if (auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  throw Error("event '" + type_->name() + "': field '" + std::string(name) + "' is " +
              std::string(value_kind(v)) + ", not a number");
}

const std::string& Event::text(std::string_view name) const {
  const FieldValue& v = field(name);
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  throw Error("event '" + type_->name() + "': field '" + std::string(name) + "' is " +
              std::string(value_kind(v)) + ", not a string");
}

}  // namespace asyncflow
