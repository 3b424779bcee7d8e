// Internal: fast random numbers for identifiers (engine uids, workflow ids, event ids, span and
// trace ids). Ids need uniqueness, not secrecy.
#pragma once

#include <cstdint>
#include <string>

namespace asyncflow::detail {

/// A random 64-bit word from this thread's generator: a Weyl sequence (a counter stepped by an
/// odd constant) through the SplitMix64 output mix, seeded once per thread from the OS. A few
/// instructions per word, where mt19937_64 regenerated its 312-word state every 156 ids (a few
/// per cent of the telemetry producer's time in perf). Thread-safe (per-thread state).
std::uint64_t random_u64() noexcept;

/// Eight random lowercase hex digits ("3a1b9c2d"). Thread-safe.
std::string random_hex8();

}  // namespace asyncflow::detail
