// Per-thread random words for identifiers (random.hpp).
#include "common/random.hpp"

#include <random>

#include "common/hex.hpp"

namespace asyncflow::detail {

namespace {

class SplitMix64 {
 public:
  SplitMix64() {
    std::random_device rd;
    state_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_;
};

}  // namespace

std::uint64_t random_u64() noexcept {
  thread_local SplitMix64 generator;
  return generator.next();
}

std::string random_hex8() {
  char digits[16];
  write_hex16(digits, random_u64());
  return std::string(digits, 8);
}

}  // namespace asyncflow::detail
