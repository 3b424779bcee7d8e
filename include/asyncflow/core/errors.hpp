// Exception types of asyncflow. Task failures travel inside TaskHandle and are rethrown by
// get()/co_await; misuse of the API (unknown backend, work after shutdown) throws at the call.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace asyncflow {

/// Base of every exception asyncflow throws itself.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown when work is given to an engine that has been shut down.
class EngineShutdownError : public Error {
 public:
  using Error::Error;
};

/// Thrown by get()/co_await of a task that was canceled (by cancel(), a canceled block or
/// engine shutdown).
class TaskCanceledError : public Error {
 public:
  using Error::Error;
};

/// An executable task's program did not succeed. The message names the task, the command
/// and the cause, and ends with the tail of the program's stderr when it wrote any.
class ProcessError : public Error {
 public:
  enum class Cause {
    kExitCode,  ///< exited with a non-zero status: exit_code()
    kSignal,    ///< killed by a signal it did not expect: signal()
    kTimeout,   ///< ran past TaskDescription::timeout and was killed
    kSpawn,     ///< could not be started (missing or non-executable program, bad cwd): errno_value()
  };
  ProcessError(std::string message, Cause cause, int code, std::string stderr_tail)
      : Error(std::move(message)), cause_(cause), code_(code), stderr_tail_(std::move(stderr_tail)) {}

  Cause cause() const noexcept { return cause_; }
  /// The exit status for kExitCode, else -1.
  int exit_code() const noexcept { return cause_ == Cause::kExitCode ? code_ : -1; }
  /// The terminating signal for kSignal and kTimeout (0 when it exited on its own), else 0.
  int signal() const noexcept { return cause_ == Cause::kSignal || cause_ == Cause::kTimeout ? code_ : 0; }
  /// The errno of the failed start for kSpawn, else 0.
  int errno_value() const noexcept { return cause_ == Cause::kSpawn ? code_ : 0; }
  /// The last lines of stderr (at most a few KiB), empty when none was written.
  const std::string& stderr_tail() const noexcept { return stderr_tail_; }

 private:
  Cause cause_;
  int code_;
  std::string stderr_tail_;
};

/// A registered function threw inside a worker process (ProcessBackend). The exception itself
/// stayed in the worker; its type name and message came back.
class RemoteFunctionError : public Error {
 public:
  RemoteFunctionError(std::string message, std::string error_type, std::string error_message)
      : Error(std::move(message)),
        error_type_(std::move(error_type)),
        error_message_(std::move(error_message)) {}
  /// The exception's type in the worker, e.g. "std::invalid_argument".
  const std::string& error_type() const noexcept { return error_type_; }
  /// Its what() in the worker.
  const std::string& error_message() const noexcept { return error_message_; }

 private:
  std::string error_type_;
  std::string error_message_;
};

/// A task could not run because one or more of its direct dependencies failed or were
/// canceled.
///
/// `failed_dependencies()` names every failed or canceled direct dependency ("name (uid)").
/// `cause()` is the first such dependency's own error; `root_cause()` follows the chain of
/// DependencyFailure causes down to the original error, so callers need no unwrapping loop.
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
