// Internal: lowercase hex digits a byte at a time, for ids (uuid4 event ids, span and trace
// ids) that are written on every checkpoint line.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

namespace asyncflow::detail {

// "000102…ff": the two hex digits of each byte value.
inline constexpr std::array<char, 512> kHexPairs = [] {
  constexpr char kHex[] = "0123456789abcdef";
  std::array<char, 512> t{};
  for (std::size_t b = 0; b < 256; ++b) {
    t[2 * b] = kHex[b >> 4];
    t[2 * b + 1] = kHex[b & 0xF];
  }
  return t;
}();

/// Writes the 16 hex digits of `v`, most significant first, zero-padded (no terminator).
inline void write_hex16(char* out, std::uint64_t v) noexcept {
  for (int i = 14; i >= 0; i -= 2, v >>= 8) std::memcpy(out + i, &kHexPairs[2 * (v & 0xFF)], 2);
}

}  // namespace asyncflow::detail
