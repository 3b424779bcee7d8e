// Dependency detection, value substitution and failure propagation.
#include <gtest/gtest.h>

#include <malloc.h>

#include <algorithm>
#include <asyncflow/asyncflow.hpp>
#include <future>
#include <map>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <tuple>

#include "support/engines.hpp"
#include "support/fake_backend.hpp"

namespace af = asyncflow;
using af::testing::engine_with;
using af::testing::FakeBackend;
using af::testing::pool_engine;

TEST(Dependencies, PositionalValuesAreSubstituted) {
  auto flow = pool_engine();
  auto make = flow->function_task("make", [](int v) { return v; });
  auto add = flow->function_task("add", [](int a, int b) { return a + b; });
  EXPECT_EQ(add(make(42), make(24)).get(), 66);
  // A plain value mixed with a handle.
  EXPECT_EQ(add(make(1), 5).get(), 6);
}

TEST(Dependencies, DiamondRunsEachNodeOnce) {
  auto flow = pool_engine();
  std::atomic<int> root_runs{0};
  auto root = flow->function_task("root", [&] {
    ++root_runs;
    return 1;
  });
  auto left = flow->function_task("left", [](int v) { return v + 1; });
  auto right = flow->function_task("right", [](int v) { return v * 10; });
  auto join = flow->function_task("join", [](int a, int b) { return a + b; });
  auto r = root();
  EXPECT_EQ(join(left(r), right(r)).get(), 12);
  EXPECT_EQ(root_runs.load(), 1);
}

TEST(Dependencies, ChainOfFunctionsTotals) {
  auto flow = pool_engine();
  auto one = flow->function_task("one", [] { return 1; });
  auto two = flow->function_task("two", [](int v) { return v + 1; });
  auto six = flow->function_task("six", [](int v) { return v * 3; });
  auto total = flow->function_task("total", [](int a, int b, int c) { return a + b + c; });
  auto a = one();
  auto b = two(a);
  auto c = six(b);
  EXPECT_EQ(total(a, b, c).get(), 1 + 2 + 6);
}

TEST(Dependencies, VectorOfHandlesIsAFanIn) {
  auto flow = pool_engine();
  auto square = flow->function_task("square", [](int v) { return v * v; });
  auto sum = flow->function_task(
      "sum", [](const std::vector<int>& v) { return std::accumulate(v.begin(), v.end(), 0); });
  std::vector<af::TaskHandle<int>> parts;
  for (int i = 1; i <= 100; ++i) parts.push_back(square(i));
  EXPECT_EQ(sum(parts).get(), 338350);
}

// Reference flaw §8.2: futures passed by keyword were not dependencies and were read before
// they finished. Named dependencies here are a map of handles, and are always awaited.
TEST(Dependencies, NamedDependenciesWaitForTheirProducers) {
  auto fake = FakeBackend::create("fake");
  auto flow = engine_with({fake});
  auto produce = flow->function_task("produce", [](int v) { return v; });
  std::atomic<bool> consumer_ran{false};
  auto consume = flow->function_task("consume", [&](const std::map<std::string, int>& kw) {
    consumer_ran = true;
    return kw.at("train") * 100 + kw.at("test");
  });
  auto train = produce(7);
  auto test = produce(3);
  auto out = consume(std::map<std::string, af::TaskHandle<int>>{{"train", train}, {"test", test}});
  ASSERT_TRUE(fake->wait_held(2));
  EXPECT_EQ(out.state(), af::TaskState::kPending);
  fake->run_next();
  EXPECT_EQ(out.state(), af::TaskState::kPending) << "consumer must wait for every named dep";
  EXPECT_FALSE(consumer_ran);
  fake->run_all();
  EXPECT_EQ(out.get(), 703);
}

TEST(Dependencies, TuplesPairsArraysAndOptionalsCarryDependencies) {
  auto flow = pool_engine();
  auto make = flow->function_task("make", [](int v) { return v; });
  auto f =
      flow->function_task("f", [](const std::tuple<int, std::string>& t,
                                  const std::pair<int, int>& p, const std::array<int, 2>& a,
                                  const std::optional<int>& o, const std::optional<int>& none) {
        return std::get<0>(t) + p.first + p.second + a[0] + a[1] + o.value_or(0) +
               none.value_or(1000) + static_cast<int>(std::get<1>(t).size());
      });
  auto h = make(1);
  auto r = f(std::make_tuple(h, std::string("abc")), std::make_pair(make(2), 3),
             std::array<af::TaskHandle<int>, 2>{make(4), make(5)},
             std::optional<af::TaskHandle<int>>(make(6)), std::optional<af::TaskHandle<int>>());
  EXPECT_EQ(r.get(), 1 + 2 + 3 + 4 + 5 + 6 + 1000 + 3);
}

TEST(Dependencies, VoidHandlePassesUnit) {
  auto flow = pool_engine();
  std::atomic<int> order{0};
  int first_seen = -1;
  auto first = flow->function_task("first", [&] { first_seen = order++; });
  auto second = flow->function_task("second", [&](af::Unit, int v) { return order++ * 10 + v; });
  auto done = first();
  EXPECT_EQ(second(done, 5).get(), 15);
  EXPECT_EQ(first_seen, 0);
}

// Reference flaw §8.3: f(t1, t1) hung forever (counted twice, released once).
TEST(Dependencies, DuplicateDependencyCountsOnce) {
  auto fake = FakeBackend::create("fake");
  auto flow = engine_with({fake});
  auto produce = flow->function_task("produce", [] { return 21; });
  auto add = flow->function_task("add", [](int a, int b) { return a + b; });
  auto p = produce();
  auto sum = add(p, p);
  auto sum3 = flow->function_task("sum3", [](const std::vector<int>& v, int x) {
    return std::accumulate(v.begin(), v.end(), x);
  })(std::vector<af::TaskHandle<int>>{p, p, p}, p);
  fake->run_all();  // produce, then add and sum3
  fake->run_all();
  EXPECT_EQ(sum.get(), 42);
  EXPECT_EQ(sum3.get(), 84);
}

TEST(Dependencies, LargeFanInWithDuplicatesCompletes) {
  auto flow = pool_engine();
  auto make = flow->function_task("make", [](int v) { return v; });
  auto count = flow->function_task("count", [](const std::vector<int>& v) { return v.size(); });
  std::vector<af::TaskHandle<int>> parts;
  for (int i = 0; i < 500; ++i) parts.push_back(make(i));
  std::vector<af::TaskHandle<int>> doubled = parts;
  doubled.insert(doubled.end(), parts.begin(), parts.end());
  EXPECT_EQ(count(doubled).get(), 1000u);  // values are passed per argument slot
}

TEST(Dependencies, AlreadyFinishedDependencyWorks) {
  auto flow = pool_engine();
  auto make = flow->function_task("make", [](int v) { return v; });
  auto h = make(5);
  EXPECT_EQ(h.get(), 5);
  auto twice = flow->function_task("twice", [](int v) { return 2 * v; });
  EXPECT_EQ(twice(h).get(), 10);
}

TEST(Dependencies, MoveOnlyArgumentsAndResults) {
  auto flow = pool_engine();
  auto make = flow->function_task("make", [](int v) { return std::make_unique<int>(v); });
  auto read = flow->function_task(
      "read", [](const std::unique_ptr<int>& p, std::unique_ptr<int> q) { return *p + *q; });
  EXPECT_EQ(read(make(3), std::make_unique<int>(4)).get(), 7);
}

TEST(Failures, TaskExceptionIsRethrownWithItsType) {
  auto flow = pool_engine();
  auto bad = flow->function_task("bad", []() -> int { throw std::invalid_argument("nope"); });
  auto h = bad();
  EXPECT_THROW(h.get(), std::invalid_argument);
  EXPECT_EQ(h.state(), af::TaskState::kFailed);
  EXPECT_TRUE(h.error());
}

TEST(Failures, DependencyFailureNamesFailedDepsAndRootCause) {
  auto flow = pool_engine();
  auto ok = flow->function_task("ok", [] { return 1; });
  auto bad = flow->function_task("bad", []() -> int { throw std::runtime_error("disk full"); });
  auto worse = flow->function_task("worse", []() -> int { throw std::logic_error("second"); });
  auto use = flow->function_task("use", [](int a, int b, int c) { return a + b + c; });
  auto b1 = bad();
  auto b2 = worse();
  auto h = use(ok(), b1, b2);
  try {
    h.get();
    FAIL() << "expected DependencyFailure";
  } catch (const af::DependencyFailure& e) {
    ASSERT_EQ(e.failed_dependencies().size(), 2u);
    EXPECT_EQ(e.failed_dependencies()[0], "bad (" + b1.uid() + ")");
    EXPECT_EQ(e.failed_dependencies()[1], "worse (" + b2.uid() + ")");
    EXPECT_NE(std::string(e.what()).find("Cannot execute 'use'"), std::string::npos) << e.what();
    EXPECT_THROW(std::rethrow_exception(e.cause()), std::runtime_error);
    EXPECT_THROW(std::rethrow_exception(e.root_cause()), std::runtime_error);
  }
  EXPECT_EQ(h.state(), af::TaskState::kFailed);
}

TEST(Failures, PartialFailureListsOnlyTheFailedDependency) {
  auto flow = pool_engine();
  auto ok = flow->function_task("ok", [] { return 1; });
  auto bad = flow->function_task("bad", []() -> int { throw std::runtime_error("x"); });
  auto use = flow->function_task("use", [](int a, int b) { return a + b; });
  try {
    use(ok(), bad()).get();
    FAIL();
  } catch (const af::DependencyFailure& e) {
    ASSERT_EQ(e.failed_dependencies().size(), 1u);
    EXPECT_EQ(e.failed_dependencies()[0].rfind("bad (task.", 0), 0u);
  }
}

TEST(Failures, RootCauseReachesTheOriginalErrorThroughAChain) {
  auto flow = pool_engine();
  auto bad = flow->function_task("bad", []() -> int { throw std::out_of_range("original"); });
  auto step = flow->function_task("step", [](int v) { return v + 1; });
  std::atomic<int> runs{0};
  auto counted = flow->function_task("counted", [&](int v) {
    ++runs;
    return v;
  });
  auto h = counted(step(step(step(bad()))));
  try {
    h.get();
    FAIL();
  } catch (const af::DependencyFailure& e) {
    EXPECT_THROW(std::rethrow_exception(e.cause()), af::DependencyFailure);
    try {
      std::rethrow_exception(e.root_cause());
    } catch (const std::out_of_range& original) {
      EXPECT_STREQ(original.what(), "original");
    }
  }
  EXPECT_EQ(runs.load(), 0) << "a dependent of a failed task must never run";
}

TEST(Failures, IndependentWorkflowsAreIsolated) {
  auto flow = pool_engine();
  auto stage = flow->function_task("stage", [](int wf, int v) {
    if (wf == 2) throw std::runtime_error("wf 2 broke");
    return v + 1;
  });
  std::vector<af::TaskHandle<int>> ends;
  for (int wf = 0; wf < 5; ++wf) ends.push_back(stage(wf, stage(wf, stage(wf, 0))));
  for (int wf = 0; wf < 5; ++wf) {
    if (wf == 2) {
      EXPECT_THROW(ends[wf].get(), af::DependencyFailure);
    } else {
      EXPECT_EQ(ends[wf].get(), 3);
    }
  }
}

namespace {

/// A chain of `steps` "step" tasks after one that throws once `gate` opens; returns the last
/// handle (the engine holds nothing else of the chain once it has failed).
af::TaskHandle<int> failing_chain(af::WorkflowEngine& flow, int steps,
                                  std::shared_future<void> gate) {
  auto bad = flow.function_task("bad", [gate]() -> int {
    gate.wait();
    throw std::out_of_range("original");
  });
  auto step = flow.function_task("step", [](int v) { return v + 1; });
  af::TaskHandle<int> h = bad();
  for (int i = 0; i < steps; ++i) h = step(h);
  return h;
}

/// How many DependencyFailure levels `e`'s chain of causes holds before its original error.
int dependency_failure_depth(std::exception_ptr e) {
  int depth = 0;
  for (;;) {
    try {
      std::rethrow_exception(e);
    } catch (const af::DependencyFailure& df) {
      ++depth;
      e = df.cause();
    } catch (...) {
      return depth;
    }
  }
}

}  // namespace

TEST(Failures, ALongFailedChainKeepsTwoLevelsOfCausesAndIsDroppedWithoutACrash) {
  auto flow = pool_engine(1);
  std::promise<void> gate;
  // 300,000 levels: dropping the last handle used to recurse once per level through
  // ~DependencyFailure and overflowed the stack (from ~250,000 in release, 100,000 in ASan).
  af::TaskHandle<int> h = failing_chain(*flow, 300'000, gate.get_future().share());
  gate.set_value();
  try {
    h.get();
    FAIL() << "expected DependencyFailure";
  } catch (const af::DependencyFailure& e) {
    EXPECT_EQ(dependency_failure_depth(std::current_exception()), 2);
    EXPECT_THROW(std::rethrow_exception(e.cause()), af::DependencyFailure);
    try {
      std::rethrow_exception(e.root_cause());
    } catch (const std::out_of_range& original) {
      EXPECT_STREQ(original.what(), "original");
    }
  }
  EXPECT_EQ(h.state(), af::TaskState::kFailed);
  h = {};  // the last reference to the chain's errors
}

TEST(Failures, AFailedChainKeepsConstantMemory) {
  if (::mallinfo2().uordblks == 0) GTEST_SKIP() << "the allocator (a sanitizer's) reports no use";
  auto flow = pool_engine(1);
  std::promise<void> gate;
  const std::size_t before = ::mallinfo2().uordblks;
  af::TaskHandle<int> h = failing_chain(*flow, 200'000, gate.get_future().share());
  gate.set_value();
  EXPECT_THROW(h.get(), af::DependencyFailure);
  const std::size_t kept = ::mallinfo2().uordblks - std::min(before, ::mallinfo2().uordblks);
  // Every level's error kept alive was about 550 bytes (110 MB here); what stays now is the
  // engine's own caches and the last task.
  EXPECT_LT(kept, std::size_t{16} << 20) << kept << " bytes still allocated";
}
