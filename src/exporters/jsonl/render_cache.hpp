// Internal: the JSONL exporter's caches — the constant pieces of the event lines of each event
// type, and the JSON of the base fields that events share (EventContext) — so that most of a
// line is copied, not formatted. The event model itself keeps no rendering (DESIGN "Layers").
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "asyncflow/telemetry/event.hpp"

namespace asyncflow::jsonl::detail {

/// Not thread-safe: owned by the one thread that formats (the exporter's caller).
class RenderCache {
 public:
  /// An event type's constant pieces of an event line.
  struct TypePieces {
    EventTypePtr type;                    // kept alive: its address is the key
    std::string type_and_time;            // , "event_type": "<name>", "event_time":
    std::string name_and_end;             // , "name": "<name>", "section": "event"}\n
    std::vector<std::string> field_keys;  // , "<field>":
  };
  /// A shared context's fields as JSON.
  struct ContextPieces {
    std::shared_ptr<const EventContext> context;  // kept alive: its address is the key
    std::string head;                             // , "session_id": …, "backend": …, "task_id":
    std::string tail;                             // , "node_id": …, "attributes": {…}
    std::string span_head;                        // {"session_id": …, "backend": …, "task_id":
    std::string span_tail;  // , "executable": …, "task_type": …[, "asyncflow.workflow_id": …]
  };

  const TypePieces& type(const EventTypePtr& type);
  /// The rendering of `context`, or null when no other event or span shares it (it is then
  /// written as it is: caching it would only push out a context that is shared).
  const ContextPieces* context(const std::shared_ptr<const EventContext>& context);

 private:
  static constexpr std::size_t kTypeSlots = 32;
  static constexpr std::size_t kContextSlots = 64;

  // Types: a direct-mapped front (a task's five event types alternate, so one "last type"
  // would miss every time) over a map that owns the pieces.
  std::array<const TypePieces*, kTypeSlots> type_front_{};
  std::unordered_map<const EventType*, TypePieces> types_;
  // Contexts: direct-mapped; a newcomer replaces the slot's occupant. The engine's contexts
  // (one per task factory, kind and group per producing thread) mostly fit.
  std::array<ContextPieces, kContextSlots> contexts_{};
};

}  // namespace asyncflow::jsonl::detail
