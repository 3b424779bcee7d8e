// Telemetry subscribers that misbehave on purpose, for the fault-injection suite
// (tests/fault/): one that throws, one that blocks until the test lets it go. Both count every
// event they are called with; their state is shared with the callback, which a session that
// gave up on a blocked subscriber leaves running on its own thread past stop().
#pragma once

#include <asyncflow/telemetry/event.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "support/sync.hpp"

namespace asyncflow::testing {

/// Throws std::runtime_error("subscriber bug") on every event of type `throw_on`. Pass
/// subscriber() to TelemetryManager::subscribe(). Thread-safe.
class ThrowingSubscriber {
 public:
  explicit ThrowingSubscriber(std::string throw_on) : state_(std::make_shared<State>()) {
    state_->type = std::move(throw_on);
  }
  std::function<void(const Event&)> subscriber() const {
    return [state = state_](const Event& e) {
      ++state->seen;
      if (e.type() != state->type) return;
      ++state->thrown;
      throw std::runtime_error("subscriber bug");
    };
  }
  std::uint64_t seen() const { return state_->seen.load(); }
  std::uint64_t thrown() const { return state_->thrown.load(); }

 private:
  struct State {
    std::string type;
    std::atomic<std::uint64_t> seen{0};
    std::atomic<std::uint64_t> thrown{0};
  };
  std::shared_ptr<State> state_;
};

/// Blocks at the first event of type `block_at`: opens `entered`, waits for `release`, then
/// opens `returned` once that call is over. Counts every event it is called with (the one it
/// blocked on included). Thread-safe.
class BlockingSubscriber {
 public:
  explicit BlockingSubscriber(std::string block_at) : state_(std::make_shared<State>()) {
    state_->type = std::move(block_at);
  }
  std::function<void(const Event&)> subscriber() const {
    return [state = state_](const Event& e) {
      ++state->seen;
      if (e.type() != state->type || state->blocked.exchange(true)) return;
      state->entered.open();
      state->release.wait();
      state->returned.open();
    };
  }
  Gate& entered() const { return state_->entered; }
  Gate& release() const { return state_->release; }
  Gate& returned() const { return state_->returned; }
  std::uint64_t seen() const { return state_->seen.load(); }

 private:
  struct State {
    std::string type;
    std::atomic<std::uint64_t> seen{0};
    std::atomic<bool> blocked{false};
    Gate entered;
    Gate release;
    Gate returned;
  };
  std::shared_ptr<State> state_;  // shared with the callback, which may outlive this object
};

}  // namespace asyncflow::testing
