// Streaming duration statistics (duration_stats.hpp).
//
// The histogram is log-linear, as HDR histograms are: a bucket is a power of two [2^e, 2^(e+1))
// cut into 64 equal parts, so its index is the double's exponent and top 6 mantissa bits —
// one shift of the bit pattern, no log() on the per-task path. A bucket spans 2^e/64 and its
// values are at least 2^e, so its midpoint is within 2^e/128 of any of them: a relative error
// of at most 1/128. The histogram's counts are exact, so the bucket holding rank r is the one
// holding the r-th smallest value; a percentile interpolates between two ranks with weights
// in [0, 1], and so keeps the 1/128 bound of each. Clamping an estimate to [min, max] (which
// are exact) only moves it towards the true value.
#include "duration_stats.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace asyncflow::detail {

namespace {

constexpr int kMantissaBits = 52;
constexpr std::uint64_t kExponentBias = 1023;
// The bucket key (biased exponent and top mantissa bits) of 2^kMinExponent.
constexpr std::uint64_t kFirstKey = (kExponentBias + DurationStatistics::kMinExponent)
                                    << DurationStatistics::kSubBucketBits;
const double kLowest = std::ldexp(1.0, DurationStatistics::kMinExponent);

double interpolate(double lo, double hi, double fraction) {
  return lo + (hi - lo) * fraction;
}

// Linear interpolation between closest ranks (numpy's default) over `n` values, reading the
// value at a rank through `at`.
template <class At>
double percentile(std::uint64_t n, double q, At&& at) {
  const double pos = q * static_cast<double>(n - 1);
  const auto lo = static_cast<std::uint64_t>(pos);
  const std::uint64_t hi = std::min(lo + 1, n - 1);
  return interpolate(at(lo), at(hi), pos - static_cast<double>(lo));
}

}  // namespace

void DurationStatistics::add(double seconds) {
  if (std::isnan(seconds)) return;
  if (count_ == 0) {
    min_ = max_ = seconds;
  } else {
    min_ = std::min(min_, seconds);
    max_ = std::max(max_, seconds);
  }
  ++count_;
  // Neumaier's compensated sum: 10M additions of microsecond durations to a growing total
  // would otherwise lose their low digits.
  const double t = total_ + seconds;
  compensation_ +=
      std::abs(total_) >= std::abs(seconds) ? (total_ - t) + seconds : (seconds - t) + total_;
  total_ = t;
  if (!histogram_.empty()) {
    add_to_histogram(seconds);
    return;
  }
  if (exact_.size() == kExactLimit) {
    spill();
    add_to_histogram(seconds);
    return;
  }
  if (exact_.empty()) exact_.reserve(kExactLimit);  // one allocation, never a regrowth
  exact_.push_back(seconds);
}

void DurationStatistics::spill() {
  histogram_.assign(kBuckets + 2, 0);
  for (const double v : exact_) add_to_histogram(v);
  std::vector<double>().swap(exact_);  // frees the block (assigning {} would keep it)
}

void DurationStatistics::add_to_histogram(double seconds) {
  std::size_t index = 0;  // below range (zero and negatives too)
  if (seconds >= kLowest) {
    const std::uint64_t key =
        std::bit_cast<std::uint64_t>(seconds) >> (kMantissaBits - kSubBucketBits);
    index = std::min<std::uint64_t>(key - kFirstKey, kBuckets) + 1;  // kBuckets + 1: above
  }
  ++histogram_[index];
}

double DurationStatistics::value_at(std::uint64_t rank) const {
  std::uint64_t seen = 0;
  std::size_t index = 0;
  for (; index + 1 < histogram_.size(); ++index) {
    seen += histogram_[index];
    if (seen > rank) break;
  }
  double estimate = max_;  // above range: only max is known
  if (index == 0) {
    estimate = kLowest / 2;
  } else if (index <= kBuckets) {
    const std::size_t i = index - 1;
    const int exponent = kMinExponent + static_cast<int>(i >> kSubBucketBits);
    const double sub = static_cast<double>(i & ((std::size_t{1} << kSubBucketBits) - 1));
    // The bucket's midpoint: 2^e * (1 + (sub + 0.5) / 64).
    estimate = std::ldexp(1.0 + (sub + 0.5) / (1 << kSubBucketBits), exponent);
  }
  return std::clamp(estimate, min_, max_);
}

std::optional<DurationSummary> DurationStatistics::summary() const {
  if (count_ == 0) return std::nullopt;
  DurationSummary s;
  s.count = count_;
  s.total = total_ + compensation_;
  s.mean = s.total / static_cast<double>(count_);
  s.min = min_;
  s.max = max_;
  if (histogram_.empty()) {
    std::vector<double> sorted = exact_;
    std::sort(sorted.begin(), sorted.end());
    const auto at = [&](std::uint64_t r) { return sorted[static_cast<std::size_t>(r)]; };
    s.p50 = percentile(count_, 0.50, at);
    s.p95 = percentile(count_, 0.95, at);
  } else {
    const auto at = [&](std::uint64_t r) { return value_at(r); };
    s.p50 = percentile(count_, 0.50, at);
    s.p95 = percentile(count_, 0.95, at);
  }
  return s;
}

std::size_t DurationStatistics::memory_bytes() const noexcept {
  return sizeof(*this) + exact_.capacity() * sizeof(double) +
         histogram_.capacity() * sizeof(std::uint64_t);
}

}  // namespace asyncflow::detail
