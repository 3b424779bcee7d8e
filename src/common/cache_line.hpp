// Internal: the cache line size that hot atomics are aligned to, so that what producers write
// and what a consumer thread writes never share a line (false sharing).
#pragma once

#include <cstddef>

namespace asyncflow::detail {

/// x86-64 and most AArch64 cores. (std::hardware_destructive_interference_size would make GCC
/// warn that the value may differ between compilers, which matters for ABI, not for us.)
inline constexpr std::size_t kCacheLine = 64;

}  // namespace asyncflow::detail
