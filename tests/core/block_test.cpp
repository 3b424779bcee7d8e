// Blocks: coroutine sub-workflows, nesting, dependencies, membership and thread use.
#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>
#include <atomic>
#include <chrono>
#include <latch>
#include <thread>

#include "support/engines.hpp"
#include "support/fake_backend.hpp"
#include "support/recording_observer.hpp"
#include "support/sync.hpp"

namespace af = asyncflow;
using af::testing::engine_with;
using af::testing::FakeBackend;
using af::testing::pool_engine;
using af::testing::RecordingObserver;
using namespace std::chrono_literals;

TEST(Blocks, BodyAwaitsAChainAndReturnsItsValue) {
  auto flow = pool_engine();
  auto load = flow->function_task("load", [](int seed) { return seed * 2; });
  auto train = flow->function_task("train", [](int d) { return d + 1; });
  auto pipeline = flow->block("pipeline", [&](int seed) -> af::Task<int> {
    int model = co_await train(load(seed));
    co_return model * 10;
  });
  auto h = pipeline(4);
  EXPECT_EQ(h.uid(), "block.000001");
  EXPECT_EQ(h.get(), 90);
  EXPECT_EQ(h.state(), af::TaskState::kDone);
}

TEST(Blocks, BlockHandleIsADependencyAndTakesDependencies) {
  auto flow = pool_engine();
  auto make = flow->function_task("make", [](int v) { return v; });
  auto sub =
      flow->block("sub", [&](int base) -> af::Task<int> { co_return co_await make(base + 1); });
  auto add = flow->function_task("add", [](int a, int b) { return a + b; });
  auto b = sub(make(10));                    // block depends on a task
  EXPECT_EQ(add(b, sub(b)).get(), 11 + 12);  // task depends on blocks, block on a block
}

TEST(Blocks, NestedBlocksAndHelperCoroutines) {
  auto flow = pool_engine();
  auto inc = flow->function_task("inc", [](int v) { return v + 1; });
  auto twice = [&](int v) -> af::Task<int> {  // a helper coroutine, not a block
    int a = co_await inc(v);
    co_return co_await inc(a);
  };
  auto inner = flow->block("inner", [&](int v) -> af::Task<int> { co_return co_await twice(v); });
  auto outer = flow->block("outer", [&](int v) -> af::Task<int> {
    int a = co_await inner(v);
    int b = co_await inner(a);
    co_return b;
  });
  EXPECT_EQ(outer(0).get(), 4);
}

// A block waiting for children must not hold a worker: more nested blocks than workers, and
// many concurrent blocks all waiting on one gate, must complete.
TEST(Blocks, MoreWaitingBlocksThanWorkersCannotDeadlock) {
  for (std::size_t workers : {1u, 2u}) {
    auto flow = pool_engine(workers);
    af::testing::Gate open;
    auto gate = flow->function_task("gate", [&] {
      open.wait();
      return 1;
    });
    auto leaf = flow->function_task("leaf", [](int v) { return v + 1; });
    af::TaskHandle<int> g = gate();
    std::function<af::Task<int>(int)> nest;
    auto level = flow->block("level", [&](int depth) -> af::Task<int> {
      if (depth == 0) co_return co_await leaf(g);
      co_return co_await nest(depth - 1);
    });
    nest = [&](int depth) -> af::Task<int> { co_return co_await level(depth); };
    std::vector<af::TaskHandle<int>> blocks;
    for (int i = 0; i < 20; ++i) blocks.push_back(level(static_cast<int>(workers) + 3));
    open.open();
    for (auto& b : blocks) EXPECT_EQ(b.get(), 2);
  }
}

TEST(Blocks, FinishOnlyAfterAllMembersFinish) {
  auto fake = FakeBackend::create("fake");
  auto flow = af::WorkflowEngine::create({.backends = {fake}, .work_dir = ::testing::TempDir()});
  auto work = flow->function_task("work", [](int v) { return v; });
  af::TaskHandle<int> orphan;
  auto blk = flow->block("fire_and_forget", [&]() -> af::Task<int> {
    orphan = work(1);  // never awaited
    co_return 5;
  });
  auto h = blk();
  EXPECT_EQ(h.state(), af::TaskState::kRunning) << "body returned but a member is unfinished";
  fake->run_all();
  EXPECT_EQ(h.get(), 5);
  EXPECT_EQ(orphan.get(), 1);
}

TEST(Blocks, BodyExceptionFailsTheBlock) {
  auto flow = pool_engine();
  auto blk = flow->block("blk", []() -> af::Task<int> {
    throw std::domain_error("bad body");
    co_return 1;
  });
  auto h = blk();
  EXPECT_THROW(h.get(), std::domain_error);
  EXPECT_EQ(h.state(), af::TaskState::kFailed);
  auto after = flow->function_task("after", [](int v) { return v; })(h);
  EXPECT_THROW(after.get(), af::DependencyFailure);
}

TEST(Blocks, AwaitedFailureCanBeCaughtInTheBody) {
  auto flow = pool_engine();
  auto bad = flow->function_task("bad", []() -> int { throw std::runtime_error("x"); });
  auto blk = flow->block("recover", [&]() -> af::Task<int> {
    try {
      co_await bad();
    } catch (const std::runtime_error&) {
      co_return -1;
    }
    co_return 0;
  });
  EXPECT_EQ(blk().get(), -1);
}

TEST(Blocks, BlockingGetInsideABodyIsAnError) {
  auto fake = FakeBackend::create("fake");
  auto flow = af::WorkflowEngine::create({.backends = {fake}, .work_dir = ::testing::TempDir()});
  auto work = flow->function_task("work", [] { return 1; });
  auto blk = flow->block("blocking", [&]() -> af::Task<int> {
    auto h = work();
    co_return h.get();  // would hold a thread while waiting
  });
  auto b = blk();
  fake->run_all();
  try {
    b.get();
    FAIL();
  } catch (const af::Error& e) {
    EXPECT_NE(std::string(e.what()).find("use co_await"), std::string::npos) << e.what();
  }
}

// Reference flaw §8.7: a block depending on a canceled component crashed the engine.
TEST(Blocks, BlockDependingOnCanceledTaskIsCanceledCleanly) {
  auto fake = FakeBackend::create("fake");
  auto flow = af::WorkflowEngine::create({.backends = {fake}, .work_dir = ::testing::TempDir()});
  auto work = flow->function_task("work", [] { return 1; });
  auto first = work();
  auto gate = flow->function_task("gate", [](int v) { return v; })(first);
  std::atomic<bool> body_ran{false};
  auto blk = flow->block("blk", [&](int v) -> af::Task<int> {
    body_ran = true;
    co_return v;
  });
  auto b = blk(gate);
  EXPECT_TRUE(gate.cancel());
  EXPECT_EQ(b.state(), af::TaskState::kCanceled);
  EXPECT_THROW(b.get(), af::DependencyFailure);
  EXPECT_FALSE(body_ran);
  fake->run_all();
  EXPECT_EQ(first.get(), 1);
  EXPECT_FALSE(flow->is_shut_down());
}

TEST(Blocks, MembersCarryTheInnermostBlockUid) {
  auto obs = std::make_shared<RecordingObserver>();
  auto flow = pool_engine();
  flow->set_observer(obs);
  auto leaf = flow->function_task("leaf", [] { return 1; });
  af::TaskHandle<int> in_outer, in_inner;
  auto inner = flow->block("inner", [&]() -> af::Task<int> {
    in_inner = leaf();
    co_return co_await in_inner;
  });
  af::TaskHandle<int> inner_handle;
  auto outer = flow->block("outer", [&]() -> af::Task<int> {
    in_outer = leaf();
    inner_handle = inner();
    co_return co_await in_outer + co_await inner_handle;
  });
  auto o = outer();
  EXPECT_EQ(o.get(), 2);
  EXPECT_EQ(obs->find(in_outer.uid(), "created").workflow_id, o.uid());
  EXPECT_EQ(obs->find(in_outer.uid(), "created").parent_block, o.uid());
  EXPECT_EQ(obs->find(inner_handle.uid(), "created").workflow_id, o.uid());
  EXPECT_EQ(obs->find(in_inner.uid(), "created").workflow_id, inner_handle.uid());
}

TEST(Blocks, CannotBeRoutedToABackend) {
  auto flow = pool_engine();
  EXPECT_THROW(flow->block("b", []() -> af::Task<int> { co_return 1; }, {.backend = "thread_pool"}),
               af::Error);
}

TEST(Blocks, VoidBlocks) {
  auto flow = pool_engine();
  std::atomic<int> n{0};
  auto bump = flow->function_task("bump", [&] { ++n; });
  auto blk = flow->block("void_block", [&]() -> af::Task<void> {
    co_await bump();
    co_await bump();
  });
  blk().get();
  EXPECT_EQ(n.load(), 2);
}
