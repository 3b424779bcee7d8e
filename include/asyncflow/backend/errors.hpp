// The errors backends put into failed tasks: a program that did not succeed (ProcessError) and
// a registered function that threw in a worker process (RemoteFunctionError). get()/co_await of
// the task's handle rethrows them.
#pragma once

#include <string>
#include <utility>

#include "asyncflow/common/error.hpp"

namespace asyncflow {

/// An executable task's program did not succeed. The message names the task, the command
/// and the cause, and ends with the tail of the program's stderr when it wrote any.
/// Thread-safety: an immutable value.
class ProcessError : public Error {
 public:
  enum class Cause {
    kExitCode,  ///< exited with a non-zero status: exit_code()
    kSignal,    ///< killed by a signal it did not expect: signal()
    kTimeout,   ///< ran past TaskDescription::timeout and was killed
    kSpawn,  ///< could not be started (missing or non-executable program, bad cwd): errno_value()
  };
  ProcessError(std::string message, Cause cause, int code, std::string stderr_tail)
      : Error(std::move(message)),
        cause_(cause),
        code_(code),
        stderr_tail_(std::move(stderr_tail)) {}

  Cause cause() const noexcept { return cause_; }
  /// The exit status for kExitCode, else -1.
  int exit_code() const noexcept { return cause_ == Cause::kExitCode ? code_ : -1; }
  /// The terminating signal for kSignal and kTimeout (0 when it exited on its own), else 0.
  int signal() const noexcept {
    return cause_ == Cause::kSignal || cause_ == Cause::kTimeout ? code_ : 0;
  }
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
/// Thread-safety: an immutable value.
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

}  // namespace asyncflow
