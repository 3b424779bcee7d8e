// Internal: decimal digits two at a time, for the numbers written on every checkpoint line
// (epoch times, durations, ns timestamps) and the task uids every lifecycle event carries.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

namespace asyncflow::detail {

// "00".."99": two decimal digits per lookup.
inline constexpr std::array<char, 200> kDigitPairs = [] {
  std::array<char, 200> t{};
  for (std::size_t i = 0; i < 100; ++i) {
    t[2 * i] = static_cast<char>('0' + i / 10);
    t[2 * i + 1] = static_cast<char>('0' + i % 10);
  }
  return t;
}();

/// The 8 decimal digits of x < 10^8. Its four pairs come from two independent divisions
/// (multiplies), not a chain of eight.
inline void write8(char* w, std::uint32_t x) noexcept {
  const std::uint32_t high = x / 10000;
  const std::uint32_t low = x % 10000;
  std::memcpy(w, &kDigitPairs[2 * (high / 100)], 2);
  std::memcpy(w + 2, &kDigitPairs[2 * (high % 100)], 2);
  std::memcpy(w + 4, &kDigitPairs[2 * (low / 100)], 2);
  std::memcpy(w + 6, &kDigitPairs[2 * (low % 100)], 2);
}

/// Writes the last `width` decimal digits of `v`, zero-padded; returns the end. Eight digits
/// per step of the chain of divisions: libstdc++'s to_chars, two digits per step, spent as
/// long on the 17 digits of an epoch time as on the rest of its formatting (perf).
inline char* write_digits(char* w, std::uint64_t v, int width) noexcept {
  char* const end = w + width;
  char* p = end;
  while (p - w >= 8) {
    p -= 8;
    write8(p, static_cast<std::uint32_t>(v % 100000000));
    v /= 100000000;
  }
  while (p - w >= 2) {
    p -= 2;
    std::memcpy(p, &kDigitPairs[2 * (v % 100)], 2);
    v /= 100;
  }
  if (p != w) *w = static_cast<char>('0' + v % 10);
  return end;
}

}  // namespace asyncflow::detail
