// Internal: streaming statistics of task durations for summary() in bounded memory.
//
// Invariants:
//  1. count, total, min and max are exact (total is a compensated sum), whatever the count.
//  2. Up to kExactLimit values, every value is kept: p50 and p95 are exact (linear
//     interpolation between closest ranks, numpy's default).
//  3. Past kExactLimit the kept values move into a log-linear histogram and are dropped:
//     from then on memory is fixed (memory_bytes() does not change) and each percentile is
//     within kRelativeError of the exact one (see add() and percentile() in the .cpp).
//  4. add() is O(1): a few bit operations and an increment, no allocation once the histogram
//     exists (one 30 KiB allocation when the kept values spill, once per session).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace asyncflow::detail {

/// Count, total, mean, min, max (exact) and p50, p95 (exact up to kExactLimit values, within
/// kRelativeError beyond) of a stream of durations in seconds. Values are not rounded.
struct DurationSummary {
  std::uint64_t count = 0;
  double total = 0;
  double mean = 0;
  double min = 0;
  double max = 0;
  double p50 = 0;
  double p95 = 0;
};

/// Not thread-safe: the owner (SessionRecord) guards it with its mutex. Copyable, so a reader
/// can copy it under the lock and compute percentiles outside it.
class DurationStatistics {
 public:
  /// Values kept exactly before the histogram takes over (32 KiB of doubles).
  static constexpr std::size_t kExactLimit = 4096;
  /// Histogram buckets: each power of two is split into 2^kSubBucketBits equal parts.
  static constexpr int kSubBucketBits = 6;
  /// Bound on a percentile's relative error once the histogram is in use: half a bucket's
  /// width over the bucket's lower edge, 2^-(kSubBucketBits+1) = 1/128 (0.78%).
  static constexpr double kRelativeError = 1.0 / (2 << kSubBucketBits);
  /// Range the relative bound covers, in seconds: [2^kMinExponent, 2^kMaxExponent), about
  /// 0.93 ns to 34 years. Below it (zero included) the error is under 2^kMinExponent seconds
  /// absolute; above it the value is clamped to max.
  static constexpr int kMinExponent = -30;
  static constexpr int kMaxExponent = 30;
  static constexpr std::size_t kBuckets = static_cast<std::size_t>(kMaxExponent - kMinExponent)
                                          << kSubBucketBits;

  /// Records one duration; a NaN is ignored (not counted).
  void add(double seconds);
  /// nullopt when nothing was added.
  std::optional<DurationSummary> summary() const;
  std::uint64_t count() const noexcept { return count_; }
  /// True once the values went into the histogram (percentiles are estimates).
  bool estimating() const noexcept { return !histogram_.empty(); }
  /// Bytes this object holds, itself and its heap blocks.
  std::size_t memory_bytes() const noexcept;

 private:
  void spill();
  void add_to_histogram(double seconds);
  /// The value at 0-based rank `rank` of the histogram's values, estimated.
  double value_at(std::uint64_t rank) const;

  std::uint64_t count_ = 0;
  double total_ = 0;
  double compensation_ = 0;  // Neumaier's running correction of total_
  double min_ = 0;
  double max_ = 0;
  std::vector<double> exact_;  // the first values, until they spill (invariant 2)
  // histogram_[0]: below range; [1, kBuckets]: in range; kBuckets + 1: at or above range.
  std::vector<std::uint64_t> histogram_;
};

}  // namespace asyncflow::detail
