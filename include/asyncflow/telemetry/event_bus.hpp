// EventBus: the bounded multi-producer queue between emit() and the one dispatcher thread
// that processes events in batches (reference rhapsody-telemetry.md §2.4, with a bound, an
// overflow policy and thread-safe emit added).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "asyncflow/telemetry/event.hpp"

namespace asyncflow {

/// What emit() does when the queue is full.
enum class OverflowPolicy {
  kDropNewest,  ///< drop the event being emitted and count it (emit never waits)
  kBlock,       ///< wait for space (lossless; a stalled dispatcher stalls producers)
};

/// Options of an EventBus.
struct BusOptions {
  /// Queue capacity in events (rounded up to a power of two, at least 2). The ring is
  /// allocated up front at about 290 bytes per event (~19 MB for the default).
  std::size_t capacity = std::size_t{1} << 16;
  OverflowPolicy overflow = OverflowPolicy::kDropNewest;
  /// Most events handed to the handler in one call (capped at the capacity).
  std::size_t max_batch = 512;
};

/// A bounded MPSC event queue with one dispatcher thread.
///
/// emit() is thread-safe and lock-free on its fast path. The dispatcher thread takes events in
/// emission order per producer (FIFO overall by claim order) and calls the handler with
/// batches of at most `max_batch` events; the handler may move from the events. Events the
/// handler itself emits are accepted only while there is room: on a full queue they are
/// dropped and counted even under kBlock, since waiting there would wait on itself.
class EventBus {
 public:
  /// Called on the dispatcher thread with each batch (never empty). Exceptions escaping it
  /// are caught and counted (handler_errors()); the bus keeps running.
  using BatchHandler = std::function<void(std::span<Event> batch)>;

  /// Starts the dispatcher thread. Throws asyncflow::Error on a zero max_batch or an empty
  /// handler.
  EventBus(BusOptions options, BatchHandler handler);
  /// stop() with a 5 s drain timeout.
  ~EventBus();
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  /// Queues `event`. Returns false when it was not queued: the queue was full under
  /// kDropNewest, or the bus is stopping/stopped; both count in dropped().
  bool emit(Event&& event);

  /// Waits until every event queued before the call has been handled. Returns false on
  /// timeout. Must not be called from the handler.
  bool flush(std::chrono::nanoseconds timeout);

  /// Stops accepting events, lets the dispatcher drain what is queued for up to `timeout`,
  /// then discards the rest (counted in dropped()) and joins the thread. Returns true when
  /// everything queued was handled. A handler call in progress is never interrupted, so stop()
  /// returns only after it ends, even past `timeout`. Idempotent and thread-safe: concurrent
  /// and later callers wait for the first one and return its result (the first caller's
  /// timeout applies). Must not be called from the handler (there it only refuses new events
  /// and returns false).
  bool stop(std::chrono::nanoseconds timeout);

  /// True until stop() began.
  bool running() const noexcept;
  /// Events refused (full queue under kDropNewest, emit after stop) or discarded at stop.
  std::uint64_t dropped() const noexcept;
  /// Events handed to the handler.
  std::uint64_t handled() const noexcept;
  /// Exceptions that escaped the handler.
  std::uint64_t handler_errors() const noexcept;
  /// True when called on this bus's dispatcher thread.
  bool on_dispatcher_thread() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace asyncflow
