// Live-heap accounting for the memory benchmarks. heap_tracking.cpp replaces the global
// operator new/delete family of the whole bench binary (all sized, aligned, array and nothrow
// forms), so every C++ allocation of the engine and of the benchmarks is counted.
#pragma once

#include <cstdint>

namespace asyncflow::bench {

/// A snapshot of the process's C++ heap.
struct HeapStats {
  /// Bytes in live blocks, as malloc_usable_size() reports them (what the allocator reserved
  /// for each block, excluding glibc's 8-byte per-chunk header).
  std::int64_t live_bytes = 0;
  /// Live blocks (operator new results not yet deleted).
  std::int64_t live_blocks = 0;
  /// operator new calls since the program started.
  std::int64_t allocations = 0;
};

/// Sums the per-thread counters. Exact when no other thread allocates concurrently (call it
/// at a quiescent point, e.g. after waiting for the tasks being measured).
/// Thread-safe.
HeapStats heap_stats() noexcept;

}  // namespace asyncflow::bench
