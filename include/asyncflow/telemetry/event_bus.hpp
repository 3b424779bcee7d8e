// EventBus: the bounded multi-producer queue between emit() and the one dispatcher thread
// that processes events in batches (reference rhapsody-telemetry.md §2.4, with a bound, an
// overflow policy and thread-safe emit added).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/options.hpp"

namespace asyncflow {

/// What EventBus::stop() does about a handler call still running when its timeout is over.
enum class HandlerAtStop {
  /// Waits for it, however long it takes (the handler may refer to anything the caller owns).
  kWait,
  /// Leaves it: stop() returns, the thread finishes that call on its own and then ends without
  /// touching another event. The handler must own what it uses (hold it by shared_ptr): it may
  /// run after the bus is gone. The events of the batch in that call are the handler's to
  /// account for; the bus counts the others it never handed over.
  kAbandon,
};

/// A bounded MPSC event queue with one dispatcher thread.
///
/// emit() is thread-safe and lock-free on its fast path. The dispatcher thread takes events in
/// emission order per producer (FIFO overall by claim order) and calls the handler with
/// batches of at most `max_batch` events. A thread that must not wait for room — the
/// dispatcher itself, or a thread the handler may be waiting on — emits with emit_deferred():
/// when the ring is full its events wait in an overflow list the dispatcher takes next, so
/// nothing is lost and nothing waits on itself.
/// Thread-safety: every member is thread-safe unless it says otherwise.
class EventBus {
 public:
  /// Called on the dispatcher thread with each batch (never empty). It may move the events
  /// out or swap the vector's contents; the bus clears the vector afterwards. Exceptions
  /// escaping it are caught and counted (handler_errors()); the bus keeps running.
  using BatchHandler = std::function<void(std::vector<Event>& batch)>;

  /// Starts the dispatcher thread. Throws asyncflow::Error naming the option on a zero
  /// capacity or max_batch, a capacity above 2^40, or an empty handler.
  EventBus(BusOptions options, BatchHandler handler);
  /// stop() with a 5 s drain timeout.
  ~EventBus();
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  /// Queues `event`. Returns false when it was not queued: the queue was full under
  /// kDropNewest, or the bus is stopping/stopped; both count in dropped(). Under kBlock it
  /// waits for room; on the dispatcher thread it never waits (see emit_deferred()).
  bool emit(Event&& event);
  /// Queues `event` without ever waiting: when the ring is full the event goes to the overflow
  /// list (counted in deferred()), which the dispatcher takes before the ring. Returns false
  /// only when the bus is stopping/stopped, or the overflow list holds max(4 × capacity, 2^16)
  /// events (a thread emitting far more than it lets the dispatcher take); both count in
  /// dropped().
  bool emit_deferred(Event&& event);

  /// Waits until every event queued before the call has been handled. Returns false on
  /// timeout. Must not be called from the handler.
  bool flush(std::chrono::nanoseconds timeout);

  /// Stops accepting events, lets the dispatcher drain what is queued for up to `timeout`,
  /// then discards the rest (counted in dropped()) and joins the thread. Returns true when
  /// everything queued was handled. A handler call in progress is never interrupted: under
  /// HandlerAtStop::kWait stop() returns only after it ends, even past `timeout`; under kAbandon
  /// it returns at `timeout` and leaves the thread to finish that call (abandoned()).
  /// Idempotent and thread-safe: concurrent and later callers wait for the first one and
  /// return its result (the first caller's timeout and mode apply). Must not be called from
  /// the handler (there it only refuses new events and returns false).
  bool stop(std::chrono::nanoseconds timeout, HandlerAtStop at_timeout = HandlerAtStop::kWait);
  /// True when stop() left the dispatcher inside a handler call (HandlerAtStop::kAbandon).
  bool abandoned() const noexcept;

  /// True until stop() began.
  bool running() const noexcept;
  /// Events refused (full queue under kDropNewest, emit after stop) or discarded at stop.
  std::uint64_t dropped() const noexcept;
  /// Of those, the events still queued when stop()'s timeout ran out (discarded unhandled).
  std::uint64_t discarded() const noexcept;
  /// Events handed to the handler.
  std::uint64_t handled() const noexcept;
  /// Events that went through the overflow list (emit_deferred() on a full ring).
  std::uint64_t deferred() const noexcept;
  /// Exceptions that escaped the handler.
  std::uint64_t handler_errors() const noexcept;
  /// True when called on this bus's dispatcher thread.
  bool on_dispatcher_thread() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // co-owned by the dispatcher thread, which may outlive the bus
};

}  // namespace asyncflow
