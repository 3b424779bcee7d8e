// Internal: what is left of a deadline, for the timeouts of flush and shutdown calls.
#pragma once

#include <algorithm>
#include <chrono>

namespace asyncflow::detail {

/// The time from now until `deadline` (steady clock) in `Duration`, 0 once it has passed.
template <class Duration = std::chrono::nanoseconds>
Duration time_left(std::chrono::steady_clock::time_point deadline) noexcept {
  return std::max(Duration(0), std::chrono::duration_cast<Duration>(
                                   deadline - std::chrono::steady_clock::now()));
}

}  // namespace asyncflow::detail
