// Internal: the spin-wait hint used by short polling loops (thread pool, blocking waits).
#pragma once

namespace asyncflow::detail {

/// Tells the CPU this thread is spin-waiting (x86 `pause`, ARM `yield`); a no-op elsewhere.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace asyncflow::detail
