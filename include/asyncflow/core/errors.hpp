// The engine's exception types. Task failures travel inside TaskHandle and are rethrown by
// get()/co_await; misuse of the API (unknown backend, work after shutdown) throws at the call.
// Includes the base (asyncflow::Error) and the backends' errors, so one include names them all.
#pragma once

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "asyncflow/backend/errors.hpp"
#include "asyncflow/common/error.hpp"

namespace asyncflow {

/// Thrown when work is given to an engine that has been shut down.
/// Thread-safety: an immutable value.
class EngineShutdownError : public Error {
 public:
  using Error::Error;
};

/// Thrown by get()/co_await of a task that was canceled (by cancel(), a canceled block or
/// engine shutdown).
/// Thread-safety: an immutable value.
class TaskCanceledError : public Error {
 public:
  using Error::Error;
};

/// A task could not run because one or more of its direct dependencies failed or were
/// canceled.
///
/// `failed_dependencies()` names every failed or canceled direct dependency ("name (uid)").
/// `cause()` is the first such dependency's own error. When that dependency failed for its
/// own dependencies, cause() is its DependencyFailure (same message and names) with cause()
/// equal to root_cause(): a chain of failures keeps two levels and the root, not every level,
/// so a failed chain of a million steps costs constant memory and a constant-depth destructor.
/// `root_cause()` is the original error at the start of the chain (never a
/// DependencyFailure), so callers need no unwrapping loop.
/// Thread-safety: an immutable value (shared by every dependent that reports it).
class DependencyFailure : public Error {
 public:
  DependencyFailure(std::string message, std::vector<std::string> failed_dependencies,
                    std::exception_ptr cause, std::exception_ptr root_cause)
      : Error(std::move(message)),
        failed_dependencies_(std::move(failed_dependencies)),
        cause_(std::move(cause)),
        root_cause_(std::move(root_cause)) {}

  /// Names of the failed/canceled direct dependencies, in argument order.
  const std::vector<std::string>& failed_dependencies() const noexcept {
    return failed_dependencies_;
  }
  /// The first failed dependency's error (may itself be a DependencyFailure).
  const std::exception_ptr& cause() const noexcept { return cause_; }
  /// The original error at the start of the failure chain (never a DependencyFailure).
  const std::exception_ptr& root_cause() const noexcept { return root_cause_; }

 private:
  std::vector<std::string> failed_dependencies_;
  std::exception_ptr cause_;
  std::exception_ptr root_cause_;
};

}  // namespace asyncflow
