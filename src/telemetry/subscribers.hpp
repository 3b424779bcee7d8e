// Internal: the subscribers of a session and the thread that calls them. The dispatcher hands
// each processed batch over (moving the events) and goes on with the next one, so a slow
// subscriber holds up the exporters only once `max_queued` events wait for it — then the
// dispatcher waits too (nothing is lost), until stop()'s deadline.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "asyncflow/telemetry/manager.hpp"
#include "losses.hpp"

namespace asyncflow::detail {

/// Thread-safety: subscribe(), flush(), stop() and on_delivery_thread() from any thread;
/// deliver() from the dispatcher thread only.
class SubscriberStage {
 public:
  using Clock = std::chrono::steady_clock;

  SubscriberStage(std::size_t max_queued, std::shared_ptr<LossCounters> losses);
  /// stop() with a deadline of now.
  ~SubscriberStage();
  SubscriberStage(const SubscriberStage&) = delete;
  SubscriberStage& operator=(const SubscriberStage&) = delete;

  /// Adds a subscriber; the first one starts the thread ("af-subscribers").
  Subscription subscribe(std::function<void(const Event&)> callback);
  /// Hands the batch's events to the subscribers' thread, leaving `batch` empty. Waits while
  /// `max_queued` events wait already, unless the stop deadline passed (then the events are
  /// counted undelivered). Does nothing without subscribers.
  void deliver(std::vector<Event>& batch) noexcept;
  /// Waits until every event handed over before the call was delivered (or discarded).
  /// True when all were delivered by `deadline`.
  bool flush(Clock::time_point deadline);
  /// From now on waits end and deliveries stop at `deadline` (stop() is on its way).
  void set_deadline(Clock::time_point deadline) noexcept;
  /// Delivers what is queued until `deadline`, discards (and counts) the rest, ends the thread
  /// and releases every callback. A callback still running at the deadline is not
  /// interrupted: its thread is left to finish it (and then ends), and stop() says so.
  /// Idempotent.
  void stop(Clock::time_point deadline) noexcept;
  bool on_delivery_thread() const noexcept;
  /// From now on deliver() hands nothing over and counts nothing, and one waiting for room
  /// returns: the caller counts what it kept (stop() gave up on the dispatcher). Returns how
  /// many deliver() calls had an outcome (queued or counted) before. Idempotent.
  std::uint64_t refuse_hand_overs() noexcept;
  /// True while anyone is subscribed (deliver() then hands events over).
  bool has_subscribers() const noexcept;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the delivery thread, which may outlive us
};

}  // namespace asyncflow::detail
