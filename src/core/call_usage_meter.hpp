// Private: what one registered-function call used, measured inside its worker process.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <optional>

#include "asyncflow/backend/task_usage.hpp"

namespace asyncflow::detail {

/// Measures the calls a worker serves, one after the other: begin() before a call, end()
/// after it gives the difference. The worker serves one call at a time, so the process's
/// counters over the call are the call's: CPU and context switches (getrusage), I/O
/// (/proc/self/io), wall time, and peak memory as the process's resident high-water mark,
/// reset at begin() (writing 5 to /proc/self/clear_refs) and read at end() (VmHWM). What
/// cannot be read is absent. Not thread-safe (the serving thread's).
class CallUsageMeter {
 public:
  /// `peak_memory`: also the peak (a clear_refs write and a /proc/self/status read a call,
  /// the status read costing more than the rest of the measurement).
  explicit CallUsageMeter(bool peak_memory);
  ~CallUsageMeter();
  CallUsageMeter(const CallUsageMeter&) = delete;
  CallUsageMeter& operator=(const CallUsageMeter&) = delete;

  void begin();
  TaskUsage end() const;

 private:
  int io_fd_;          // /proc/self/io, read again for each call
  int status_fd_;      // /proc/self/status
  int clear_refs_fd_;  // /proc/self/clear_refs
  std::chrono::steady_clock::time_point started_{};
  struct rusage start_rusage_ {};
  TaskUsage start_io_;
  bool peak_reset_ = false;
};

}  // namespace asyncflow::detail
