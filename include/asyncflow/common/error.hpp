// asyncflow::Error, the base of every exception asyncflow throws itself. Dependency-free: every
// layer (engine, backends, telemetry, exporters) throws it or a type derived from it.
#pragma once

#include <stdexcept>

namespace asyncflow {

/// Base of every exception asyncflow throws itself. Catch it to handle any asyncflow error.
/// Thread-safety: an immutable value, like std::runtime_error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace asyncflow
