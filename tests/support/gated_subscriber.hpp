// GatedSubscriber: a telemetry subscriber that stops at the first event of a type until the
// test lets it go — a slow or stuck subscriber on demand, without sleeping — and counts what
// it saw.
#pragma once

#include <asyncflow/telemetry/event.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "support/sync.hpp"

namespace asyncflow::testing {

/// Pass subscriber() to TelemetryManager::subscribe(); `entered` opens when the callback stops,
/// `release` lets it go on. Thread-safe.
class GatedSubscriber {
 public:
  /// Stops at the first event of type `stop_at`; counts the events of that type.
  explicit GatedSubscriber(std::string stop_at) : state_(std::make_shared<State>()) {
    state_->type = std::move(stop_at);
  }
  std::function<void(const Event&)> subscriber() const {
    return [state = state_](const Event& e) {
      if (e.type() != state->type) return;
      if (state->seen.fetch_add(1) == 0) {
        state->entered.open();
        state->release.wait();
      }
    };
  }
  Gate& entered() const { return state_->entered; }
  Gate& release() const { return state_->release; }
  int seen() const { return state_->seen.load(); }

 private:
  struct State {
    std::string type;
    std::atomic<int> seen{0};
    Gate entered;
    Gate release;
  };
  std::shared_ptr<State> state_;  // shared with the callback, which may outlive this object
};

}  // namespace asyncflow::testing
