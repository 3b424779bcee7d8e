// DurationStatistics (summary()'s task duration statistics): exact up to kExactLimit values,
// within kRelativeError past it on several distributions, and fixed memory however many values
// it has seen.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

// An internal header (src/ is on this suite's include path).
#include "telemetry/duration_stats.hpp"

namespace asyncflow::detail {
namespace {

using Stats = DurationStatistics;

// numpy's default percentile (linear between closest ranks), over a sorted copy.
double exact_percentile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (pos - static_cast<double>(lo));
}

double exact_sum(const std::vector<double>& values) {
  long double sum = 0;
  for (const double v : values) sum += v;
  return static_cast<double>(sum);
}

Stats fill(const std::vector<double>& values) {
  Stats s;
  for (const double v : values) s.add(v);
  return s;
}

// Checks everything a summary says against the values themselves: count, min and max exactly,
// total and mean to rounding, p50 and p95 within `relative` of the exact percentiles.
void expect_summary(const Stats& stats, const std::vector<double>& values, double relative) {
  const auto s = stats.summary();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->count, values.size());
  EXPECT_EQ(s->min, *std::min_element(values.begin(), values.end()));
  EXPECT_EQ(s->max, *std::max_element(values.begin(), values.end()));
  const double sum = exact_sum(values);
  EXPECT_NEAR(s->total, sum, 1e-12 * std::abs(sum));
  EXPECT_NEAR(s->mean, sum / static_cast<double>(values.size()), 1e-12 * std::abs(s->mean));
  for (const double q : {0.50, 0.95}) {
    const double want = exact_percentile(values, q);
    const double got = q == 0.50 ? s->p50 : s->p95;
    if (relative == 0) {
      EXPECT_EQ(got, want) << "q=" << q;
    } else {
      EXPECT_LE(std::abs(got - want), relative * want) << "q=" << q << " want " << want;
    }
  }
}

TEST(DurationStatistics, EmptyHasNoSummary) {
  EXPECT_FALSE(Stats{}.summary().has_value());
}

TEST(DurationStatistics, NaNIsNotCounted) {
  Stats s;
  s.add(std::nan(""));
  EXPECT_FALSE(s.summary().has_value());
  s.add(2.0);
  ASSERT_TRUE(s.summary().has_value());
  EXPECT_EQ(s.summary()->count, 1u);
  EXPECT_EQ(s.summary()->p95, 2.0);
}

TEST(DurationStatistics, ExactUpToTheLimit) {
  std::mt19937_64 rng(1);
  std::exponential_distribution<double> dist(1000.0);
  for (const std::size_t n :
       {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{100}, Stats::kExactLimit}) {
    std::vector<double> values(n);
    for (double& v : values) v = dist(rng);
    const Stats stats = fill(values);
    EXPECT_FALSE(stats.estimating()) << n;
    expect_summary(stats, values, 0);
  }
}

TEST(DurationStatistics, TheNextValuePastTheLimitStartsTheHistogram) {
  std::vector<double> values;
  for (std::size_t i = 0; i <= Stats::kExactLimit; ++i) values.push_back(1e-6 * double(i + 1));
  Stats stats;
  for (std::size_t i = 0; i < Stats::kExactLimit; ++i) stats.add(values[i]);
  EXPECT_FALSE(stats.estimating());
  stats.add(values.back());
  EXPECT_TRUE(stats.estimating());
  expect_summary(stats, values, Stats::kRelativeError);
}

// Past the limit, on the shapes task durations take, with the histogram in use (not a silent
// exact path): the bound holds.
TEST(DurationStatistics, WithinTheBoundPastTheLimitOnSeveralDistributions) {
  constexpr std::size_t kN = 200'000;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> uniform(1e-6, 2.0);
  std::exponential_distribution<double> exponential(1.0 / 0.003);  // mean 3 ms
  std::normal_distribution<double> fast(20e-6, 2e-6), slow(1.5, 0.1);
  std::bernoulli_distribution pick_slow(0.3);  // p50 in the fast mode, p95 in the slow one
  const struct {
    const char* name;
    std::function<double()> draw;
  } shapes[] = {
      {"uniform", [&] { return uniform(rng); }},
      {"exponential", [&] { return exponential(rng); }},
      {"bimodal", [&] { return pick_slow(rng) ? slow(rng) : std::abs(fast(rng)); }},
      {"log-uniform 1us..1h",
       [&] {
         return std::exp(
             std::uniform_real_distribution<double>(std::log(1e-6), std::log(3600.0))(rng));
       }},
  };
  for (const auto& shape : shapes) {
    SCOPED_TRACE(shape.name);
    std::vector<double> values(kN);
    for (double& v : values) v = shape.draw();
    const Stats stats = fill(values);
    ASSERT_TRUE(stats.estimating());
    expect_summary(stats, values, Stats::kRelativeError);
  }
}

TEST(DurationStatistics, AllEqualValuesComeBackExactly) {
  // min == max clamps every estimate to the one value.
  const std::vector<double> values(Stats::kExactLimit * 3, 0.0125);
  const Stats stats = fill(values);
  ASSERT_TRUE(stats.estimating());
  expect_summary(stats, values, 0);
}

TEST(DurationStatistics, TinyAndZeroDurationsAreWithinANanosecond) {
  // Below 2^kMinExponent s the bound is absolute; summary() rounds to microseconds anyway.
  std::vector<double> values;
  for (std::size_t i = 0; i < 3 * Stats::kExactLimit; ++i) values.push_back(i % 3 == 0 ? 0 : 1e-10);
  values.push_back(5e-3);
  const auto s = fill(values).summary();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->min, 0);
  EXPECT_EQ(s->max, 5e-3);
  EXPECT_NEAR(s->p50, exact_percentile(values, 0.50), 1e-9);
  EXPECT_NEAR(s->p95, exact_percentile(values, 0.95), 1e-9);
}

TEST(DurationStatistics, MemoryDoesNotGrowWithTenMillionValues) {
  Stats stats;
  std::mt19937_64 rng(3);
  std::exponential_distribution<double> dist(1.0 / 0.001);
  for (std::size_t i = 0; i <= Stats::kExactLimit; ++i) stats.add(dist(rng));
  ASSERT_TRUE(stats.estimating());
  const std::size_t after_spill = stats.memory_bytes();
  EXPECT_LT(after_spill, std::size_t{32} << 10);  // 30 KiB of buckets, the object; no values
  for (std::size_t i = 0; i < 10'000'000; ++i) stats.add(dist(rng));
  EXPECT_EQ(stats.memory_bytes(), after_spill);
  EXPECT_EQ(stats.count(), 10'000'000u + Stats::kExactLimit + 1);
  // An exponential's quantiles are known: p50 = ln 2 * mean, p95 = ln 20 * mean. The
  // sample's own quantiles are within 1% of those at this size; the estimate within 1/128.
  const auto s = stats.summary();
  ASSERT_TRUE(s.has_value());
  EXPECT_NEAR(s->p50, std::log(2.0) * 0.001, 0.02 * std::log(2.0) * 0.001);
  EXPECT_NEAR(s->p95, std::log(20.0) * 0.001, 0.02 * std::log(20.0) * 0.001);
  EXPECT_NEAR(s->mean, 0.001, 0.01 * 0.001);
}

}  // namespace
}  // namespace asyncflow::detail
