// Telemetry events: immutable records with the reference's 9 base fields, the built-in event
// types, and user-defined types (define_event / make_event). Schema: reference
// rhapsody-telemetry.md §1. The model knows no output format: exporters (asyncflow/exporters/)
// render events, and keep any caches of their own.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace asyncflow {

namespace detail {
struct EventAccess;  // the telemetry dispatcher's completion of engine events
}  // namespace detail

/// A 128-bit trace id. Zero is invalid (no trace).
struct TraceId {
  std::uint64_t high = 0;
  std::uint64_t low = 0;
  bool valid() const noexcept { return high != 0 || low != 0; }
  friend bool operator==(const TraceId&, const TraceId&) = default;
};

/// The type of a custom event field.
enum class FieldType { kBool, kInt, kDouble, kString };

/// "bool", "int", "double", "string".
std::string_view to_string(FieldType type) noexcept;

/// A field or attribute value; std::monostate is JSON null.
using FieldValue = std::variant<std::monostate, bool, std::int64_t, double, std::string>;

/// One field of an event type: its type, whether it may be null, and its default.
struct FieldSpec {
  FieldType type = FieldType::kString;
  bool nullable = false;
  FieldValue default_value;

  /// A required-typed field whose default is the type's zero (false, 0, 0.0, ""), as the
  /// reference does for bare types.
  FieldSpec(FieldType t);  // NOLINT(google-explicit-constructor): {"name", FieldType::kInt}
  /// A field with an explicit default (converted to `t`; std::monostate makes it nullable).
  FieldSpec(FieldType t, FieldValue default_value);
  /// A nullable field (default null), e.g. ResourceUpdate's cpu_percent.
  static FieldSpec optional(FieldType t);
};

/// A named event schema. Created by define_event() (or built in); shared by its events.
/// Thread-safety: immutable once created.
class EventType {
 public:
  const std::string& name() const noexcept { return name_; }
  /// Extra fields in declaration order (their JSONL order, after the base fields).
  const std::vector<std::pair<std::string, FieldSpec>>& fields() const noexcept { return fields_; }
  /// Index of `field` among fields(), or nullopt.
  std::optional<std::size_t> index_of(std::string_view field) const noexcept;

  EventType(std::string name, std::vector<std::pair<std::string, FieldSpec>> fields);

 private:
  friend struct detail::EventAccess;
  std::string name_;
  std::vector<std::pair<std::string, FieldSpec>> fields_;
  // Built-in types live until exit: their events point at them without reference counting
  // (an atomic increment per event, on a line shared by every producer, otherwise).
  bool immortal_ = false;
};

using EventTypePtr = std::shared_ptr<const EventType>;

/// Free-form attributes, in insertion order (the JSONL `attributes` object).
using Attributes = std::vector<std::pair<std::string, FieldValue>>;

/// The base fields a producer sets; make_event() fills event_id, event_type and emit_time.
struct EventBase {
  std::string session_id{};
  std::string backend{};
  std::optional<std::string> task_id{};
  std::optional<std::string> node_id{};
  Attributes attributes{};
  /// When the event happened (epoch seconds); unset = now.
  std::optional<double> event_time{};
};

/// The base fields that several events share: the engine makes one per task factory and
/// group, so its lifecycle events carry no strings of their own, and an exporter can render a
/// shared context once for all of them (Event::context()).
/// Thread-safety: immutable once shared (events hold it as shared_ptr<const EventContext>).
struct EventContext {
  EventContext() = default;
  explicit EventContext(EventBase&& base)
      : session_id(std::move(base.session_id)),
        backend(std::move(base.backend)),
        node_id(std::move(base.node_id)),
        attributes(std::move(base.attributes)) {}

  /// The attribute `key` (the first of that name), or null when absent.
  const FieldValue* attribute(std::string_view key) const noexcept;
  /// The attribute `key` when it is a string, or null.
  const std::string* string_attribute(std::string_view key) const noexcept;

  std::string session_id;
  std::string backend;
  std::optional<std::string> node_id;
  Attributes attributes;
};

/// An immutable telemetry event. Copies share nothing mutable; cheap to move.
/// Thread-safety: a value; concurrent reads of one event are safe.
class Event {
 public:
  /// 32 lowercase hex digits for events made here; as recorded for restored ones.
  std::string_view event_id() const noexcept {
    return {reinterpret_cast<const char*>(event_id_.data()), event_id_size_};
  }
  /// The event_type field: the class name for built-ins, the dotted name for custom events.
  const std::string& type() const noexcept { return type_->name(); }
  const EventTypePtr& event_type() const noexcept { return type_; }
  double event_time() const noexcept { return event_time_; }
  double emit_time() const noexcept { return emit_time_; }
  const std::string& session_id() const noexcept { return fields().session_id; }
  const std::string& backend() const noexcept { return fields().backend; }
  const std::optional<std::string>& task_id() const noexcept { return task_id_; }
  const std::optional<std::string>& node_id() const noexcept { return fields().node_id; }
  const Attributes& attributes() const noexcept { return fields().attributes; }
  /// The base fields this event shares with others (null only for a moved-from event).
  const std::shared_ptr<const EventContext>& context() const noexcept { return context_; }
  /// True when the event_id was generated here: 32 lowercase hex digits, nothing to escape.
  bool has_generated_id() const noexcept { return event_id_is_uuid4_; }

  /// The span the telemetry session correlated this event with when it processed it (the
  /// task's span, the workflow's or the session's); invalid / 0 before processing or when
  /// there is none. Exporters write these as the event's trace_id / span_id.
  const TraceId& trace_id() const noexcept { return trace_id_; }
  std::uint64_t span_id() const noexcept { return span_id_; }
  /// The attribute `key`, or null when absent.
  const FieldValue* attribute(std::string_view key) const noexcept;

  /// Extra field values, aligned with event_type()->fields().
  const std::vector<FieldValue>& values() const noexcept { return values_; }
  /// The extra field `name`. Throws asyncflow::Error when the type has no such field.
  const FieldValue& field(std::string_view name) const;
  /// The extra field as a number (int fields widen). Throws when it is not numeric or null.
  double number(std::string_view name) const;
  /// The extra field as a string. Throws when it is not a string.
  const std::string& text(std::string_view name) const;

 private:
  friend Event make_event(const EventTypePtr&, EventBase,
                          std::vector<std::pair<std::string, FieldValue>>);
  friend Event restore_event(const EventTypePtr&, std::string, double, double, EventBase,
                             std::vector<FieldValue>);
  friend struct detail::EventAccess;
  Event() = default;
  /// Longest event_id restore_event() accepts.
  static constexpr std::size_t kMaxEventIdSize = 48;

  /// The shared base fields (empty ones for a moved-from event).
  const EventContext& fields() const noexcept { return context_ ? *context_ : empty_context(); }
  static const EventContext& empty_context() noexcept;

  EventTypePtr type_;
  std::shared_ptr<const EventContext> context_;
  std::optional<std::string> task_id_;
  std::vector<FieldValue> values_;
  double event_time_ = 0;
  double emit_time_ = 0;
  TraceId trace_id_;
  std::uint64_t span_id_ = 0;
  char* event_id_chars() noexcept { return reinterpret_cast<char*>(event_id_.data()); }

  // Inline (no allocation per event) and left uninitialized past event_id_size_: zeroing it
  // made the compiler clear the whole event with `rep stos`, the costliest step of building
  // an engine event (perf). Unsigned char, so that copying the unset bytes is defined.
  std::array<unsigned char, kMaxEventIdSize> event_id_;
  std::uint8_t event_id_size_ = 0;
  bool event_id_is_uuid4_ = false;  // made here (hex digits): written without escaping checks
  bool event_id_pending_ = false;   // an engine event: the dispatcher assigns its uuid4
};

/// Defines a custom event type.
///
/// @param name dotted, namespaced name ("myframework.DataQualityChecked").
/// @param fields extra fields in order: {"score", FieldType::kDouble},
///        {"step", {FieldType::kInt, std::int64_t{-1}}}, {"note", FieldSpec::optional(...)}.
/// @return the shared type, to pass to make_event().
/// Throws asyncflow::Error when the name has no dot, a field name is empty or repeated, or a
/// field shadows a base field (event_id, event_type, event_time, emit_time, session_id,
/// backend, task_id, node_id, attributes) or a JSONL column (trace_id, span_id, name,
/// section). Thread-safe.
/// @code
///   static const auto Result = asyncflow::define_event("experiment.Result",
///       {{"accuracy", asyncflow::FieldType::kDouble},
///        {"model", {asyncflow::FieldType::kString, "baseline"}}});
/// @endcode
EventTypePtr define_event(std::string name,
                          std::vector<std::pair<std::string, FieldSpec>> fields = {});

/// Builds an event of `type`: a fresh event_id (uuid4, 32 lowercase hex digits), event_time
/// from `base` or now, emit_time now, `values` checked against the type's fields (missing
/// fields take their defaults; ints are accepted for double fields).
/// Throws asyncflow::Error naming the event and field on an unknown field, a wrong type, or a
/// null for a non-nullable field; and for an event_time that is not finite.
Event make_event(const EventTypePtr& type, EventBase base,
                 std::initializer_list<std::pair<std::string_view, FieldValue>> values = {});
Event make_event(const EventTypePtr& type, EventBase base,
                 std::vector<std::pair<std::string, FieldValue>> values);

/// Builds an event over base fields shared with other events: the engine's lifecycle events
/// (one context per task factory and group), so an event copies no strings. `values` are the
/// type's extra fields in declaration order, checked like make_event()'s; event_time and
/// emit_time are now. A terminal task event (TaskCompleted/Failed/Canceled) whose
/// duration_seconds is NaN gets its duration from the session that processes it (the time
/// since the TaskStarted it saw), and incomplete_lifecycle when it saw none.
/// Throws asyncflow::Error on a null type or context, or values that do not fit. Thread-safe.
Event make_event(const EventTypePtr& type, std::shared_ptr<const EventContext> context,
                 std::string task_id, std::vector<FieldValue> values = {});

/// Rebuilds a recorded event with its original id and times, for checkpoint readers.
///
/// @param values the extra field values, one per `type->fields()` entry, in order; checked
///        like make_event()'s (ints are accepted for double fields). ResourceUpdate's
///        resource_scope is derived from gpu_id again, whatever value is passed.
/// @return the event; `base.event_time` is ignored in favour of `event_time`.
/// Throws asyncflow::Error naming the event and field when a value does not fit, or when the
/// number of values differs from the number of fields. Thread-safe.
Event restore_event(const EventTypePtr& type, std::string event_id, double event_time,
                    double emit_time, EventBase base, std::vector<FieldValue> values);

/// The built-in event types (reference §1.2), shared singletons.
namespace events {
const EventTypePtr& SessionStarted();
const EventTypePtr& SessionEnded();  ///< duration_seconds
const EventTypePtr& TaskCreated();
const EventTypePtr& TaskSubmitted();
const EventTypePtr& TaskQueued();
const EventTypePtr& TaskStarted();
const EventTypePtr& TaskCompleted();  ///< duration_seconds
const EventTypePtr& TaskFailed();     ///< duration_seconds, error_type ("unknown")
const EventTypePtr& TaskCanceled();   ///< duration_seconds
/// cpu_percent, memory_percent, gpu_percent, gpu_id, disk_read_bytes, disk_write_bytes,
/// net_sent_bytes, net_recv_bytes (all nullable), resource_scope (derived: "per_gpu" when
/// gpu_id is set, else "per_node"; callers cannot set it).
const EventTypePtr& ResourceUpdate();
/// asyncflow.TaskResolved, defined through define_event() like any custom event.
const EventTypePtr& TaskResolved();
/// asyncflow.WorkflowStarted: a workflow_scope opened; attributes asyncflow.workflow_id and,
/// when nested, asyncflow.parent_workflow_id. Opens the "workflow" span.
const EventTypePtr& WorkflowStarted();
/// asyncflow.WorkflowEnded: a workflow_scope closed. Ends the "workflow" span.
const EventTypePtr& WorkflowEnded();
/// The built-in type named `name` (the names above), or null. A name of a built-in type
/// cannot be given to define_event().
const EventTypePtr* builtin_event_type(std::string_view name) noexcept;
}  // namespace events

/// Current wall-clock time as epoch seconds (the reference's time.time()).
double epoch_seconds() noexcept;

/// A random uuid4 as 32 lowercase hex digits (the reference's uuid.uuid4().hex).
std::string uuid4_hex();

}  // namespace asyncflow
