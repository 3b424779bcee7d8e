// Internal: bounded spin-waiting, used before blocking where the wait is usually short
// (idle thread-pool workers, TaskHandle waits).
#pragma once

#include <thread>

namespace asyncflow::detail {

/// Tells the CPU this thread is spin-waiting (x86 `pause`, ARM `yield`); a no-op elsewhere.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Polls `done()` up to `pause_rounds` times with cpu_relax(), then up to `yield_rounds` times
/// yielding the core (so a producer on a small machine can run). Returns done()'s last value.
template <class Pred>
bool spin_until(Pred done, int pause_rounds, int yield_rounds) {
  for (int i = 0; i < pause_rounds + yield_rounds; ++i) {
    if (done()) return true;
    if (i < pause_rounds) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  return done();
}

}  // namespace asyncflow::detail
