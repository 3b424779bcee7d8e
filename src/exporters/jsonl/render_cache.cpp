// The JSONL exporter's rendering caches (render_cache.hpp).
#include "render_cache.hpp"

#include "json_cursor.hpp"
#include "line_writers.hpp"

namespace asyncflow::jsonl::detail {

namespace {

std::size_t slot_of(const void* p, std::size_t slots) {
  const auto v = reinterpret_cast<std::uintptr_t>(p);
  return static_cast<std::size_t>((v >> 4) ^ (v >> 12)) & (slots - 1);
}

}  // namespace

const RenderCache::TypePieces& RenderCache::type(const EventTypePtr& type) {
  const std::size_t slot = slot_of(type.get(), kTypeSlots);
  if (const TypePieces* p = type_front_[slot]; p != nullptr && p->type.get() == type.get())
    return *p;
  auto [it, inserted] = types_.try_emplace(type.get());
  TypePieces& pieces = it->second;
  if (inserted) {
    pieces.type = type;
    {
      JsonCursor w(pieces.type_and_time, 0);
      w.literal(", \"event_type\": ");
      w.string(type->name());
      w.literal(", \"event_time\": ");
    }
    {
      JsonCursor w(pieces.name_and_end, 0);
      w.literal(", \"name\": ");
      w.string(type->name());
      w.literal(", \"section\": \"event\"}\n");
    }
    for (const auto& [field, spec] : type->fields()) {
      std::string key;
      {
        JsonCursor w(key, 0);  // sets the string's size when it ends: before the move
        w.literal(", ");
        w.string(field);
        w.literal(": ");
      }
      pieces.field_keys.push_back(std::move(key));
    }
  }
  type_front_[slot] = &pieces;
  return pieces;
}

const RenderCache::ContextPieces* RenderCache::context(
    const std::shared_ptr<const EventContext>& context) {
  if (!context) return nullptr;
  ContextPieces& slot = contexts_[slot_of(context.get(), kContextSlots)];
  if (slot.context == context) return &slot;
  if (context.use_count() < 2) return nullptr;
  slot.context = context;
  slot.head.clear();
  slot.tail.clear();
  slot.span_head.clear();
  slot.span_tail.clear();
  {
    JsonCursor w(slot.head, 0);
    write_context_head(w, *context);
  }
  {
    JsonCursor w(slot.tail, 0);
    write_context_tail(w, *context);
  }
  {
    JsonCursor w(slot.span_head, 0);
    write_span_attributes_head(w, *context);
  }
  {
    JsonCursor w(slot.span_tail, 0);
    write_span_attributes_tail(w, *context);
  }
  return &slot;
}

}  // namespace asyncflow::jsonl::detail
