// Private: what one in-process function call used, measured on the thread that ran it.
#pragma once

#include <sys/resource.h>

#include <chrono>

#include "asyncflow/backend/task_usage.hpp"
#include "common/proc_fields.hpp"

namespace asyncflow::detail {

/// The wall time, CPU time (user and system) and context switches of the calling thread
/// between its construction and end(): a thread-pool task's own, since the thread runs one
/// task at a time. Threads the function starts are not counted; memory and I/O are the
/// process's and are not attributed.
///
/// getrusage(RUSAGE_THREAD) rather than CLOCK_THREAD_CPUTIME_ID: it splits user from system
/// time, has the switches, and is the cheaper call here (0.65 us against 1.4 us, measured on
/// this machine's kernel), which is still more than a no-op task costs. So back-to-back tasks
/// share a reading: a call that starts within kReuseWithin of the thread's last end() starts
/// from that reading. The thread cannot have used more CPU time in between than wall time,
/// so a task is charged at most that much of what ran before it.
/// Not thread-safe: use it on one thread.
class ThreadCallMeter {
 public:
  static constexpr std::chrono::microseconds kReuseWithin{20};

  ThreadCallMeter() noexcept : started_(Clock::now()) {
    const Reading& last = last_reading();
    if (last.valid && started_ - last.taken <= kReuseWithin) {
      before_ = last.usage;
      measured_ = true;
    } else {
      measured_ = ::getrusage(RUSAGE_THREAD, &before_) == 0;
    }
  }

  TaskUsage end() const noexcept {
    const auto now = Clock::now();  // before the reading: the gap to the next call is not less
    TaskUsage usage;
    usage.wall_seconds = std::chrono::duration<double>(now - started_).count();
    Reading& last = last_reading();
    last.valid = measured_ && ::getrusage(RUSAGE_THREAD, &last.usage) == 0;
    last.taken = now;
    if (last.valid) rusage_difference(before_, last.usage, usage);
    return usage;
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Reading {
    struct rusage usage {};
    Clock::time_point taken{};
    bool valid = false;
  };
  static Reading& last_reading() noexcept {
    thread_local Reading reading;
    return reading;
  }

  struct rusage before_ {};
  Clock::time_point started_;
  bool measured_ = false;
};

}  // namespace asyncflow::detail
