// workflow_scope: ids, stamping, isolation between engines, threads and coroutines.
#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>
#include <memory>
#include <regex>
#include <thread>

#include "support/recording_observer.hpp"

namespace af = asyncflow;
using af::testing::RecordingObserver;

namespace {
struct Fixture {
  std::shared_ptr<RecordingObserver> obs = std::make_shared<RecordingObserver>();
  std::unique_ptr<af::WorkflowEngine> flow;
  Fixture() {
    flow = af::WorkflowEngine::create(
        {.backends = {af::ThreadPoolBackend::create()}, .work_dir = ::testing::TempDir()});
    flow->set_observer(obs);
  }
  std::string wid(const af::AnyTask& h) const { return obs->find(h.uid(), "created").workflow_id; }
};
}  // namespace

TEST(Scopes, AutoIdFormat) {
  Fixture fx;
  auto scope = fx.flow->workflow_scope();
  EXPECT_TRUE(std::regex_match(scope.id(), std::regex("wf-[0-9a-f]{8}"))) << scope.id();
}

TEST(Scopes, StampsTasksInsideAndResetsAfterExit) {
  Fixture fx;
  auto f = fx.flow->function_task("f", [](int v) { return v; });
  af::TaskHandle<int> inside, nested, after;
  {
    auto scope = fx.flow->workflow_scope("etl-run-42");
    inside = f(1);
    {
      auto inner = fx.flow->workflow_scope("inner");
      nested = f(inside);
    }
    after = f(2);
  }
  auto outside = f(3);
  EXPECT_EQ(fx.wid(inside), "etl-run-42");
  EXPECT_EQ(fx.wid(nested), "inner");
  EXPECT_EQ(fx.wid(after), "etl-run-42");
  EXPECT_EQ(fx.wid(outside), "");
  outside.get();
  EXPECT_EQ(fx.obs->scopes(), (std::vector<std::string>{"begin:etl-run-42", "begin:inner",
                                                        "end:inner", "end:etl-run-42"}));
}

TEST(Scopes, ExplicitWorkflowIdBeatsTheScope) {
  Fixture fx;
  auto f = fx.flow->function_task("f", [] { return 1; });
  auto scope = fx.flow->workflow_scope("scope-id");
  auto h = f.with({.workflow_id = "explicit"})();
  auto g = f();
  EXPECT_EQ(fx.wid(h), "explicit");
  EXPECT_EQ(fx.wid(g), "scope-id");
}

TEST(Scopes, DoNotLeakToAnotherEngine) {
  Fixture a;
  Fixture b;
  auto fa = a.flow->function_task("f", [] { return 1; });
  auto fb = b.flow->function_task("f", [] { return 1; });
  auto scope = a.flow->workflow_scope("only-a");
  auto ha = fa();
  auto hb = fb();
  EXPECT_EQ(a.wid(ha), "only-a");
  EXPECT_EQ(b.wid(hb), "");
}

TEST(Scopes, AreThreadLocalOutsideCoroutines) {
  Fixture fx;
  auto f = fx.flow->function_task("f", [] { return 1; });
  auto scope = fx.flow->workflow_scope("main-thread");
  af::TaskHandle<int> from_other;
  std::thread([&] { from_other = f(); }).join();
  EXPECT_EQ(fx.wid(from_other), "");
}

// The scope follows the coroutine across suspensions and threads (task-local), and
// concurrent blocks with different scopes do not bleed into each other.
TEST(Scopes, FollowBlockBodiesAcrossSuspensions) {
  Fixture fx;
  auto f = fx.flow->function_task("f", [](int v) {
    std::this_thread::sleep_for(std::chrono::milliseconds(v % 3));
    return v;
  });
  std::vector<af::TaskHandle<int>> before(8), after(8);
  af::TaskHandle<int> block_member;
  auto blk = fx.flow->block("blk", [&](int i) -> af::Task<int> {
    auto scope = fx.flow->workflow_scope("wf-" + std::to_string(i));
    before[i] = f(i);
    co_await before[i];
    after[i] = f(i + 100);  // resumed on whichever thread finished `before`
    co_return co_await after[i];
  });
  std::vector<af::TaskHandle<int>> blocks;
  for (int i = 0; i < 8; ++i) blocks.push_back(blk(i));
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(blocks[i].get(), i + 100);
    EXPECT_EQ(fx.wid(before[i]), "wf-" + std::to_string(i));
    EXPECT_EQ(fx.wid(after[i]), "wf-" + std::to_string(i));
    // A scope inside a block keeps block membership.
    EXPECT_EQ(fx.obs->find(after[i].uid(), "created").parent_block, blocks[i].uid());
  }
}

TEST(Scopes, BlockCreatedInsideAScopeIsStampedWithIt) {
  Fixture fx;
  auto f = fx.flow->function_task("f", [] { return 1; });
  af::TaskHandle<int> member;
  auto blk = fx.flow->block("blk", [&]() -> af::Task<int> {
    member = f();
    co_return co_await member;
  });
  auto scope = fx.flow->workflow_scope("outer-scope");
  auto b = blk();
  b.get();
  EXPECT_EQ(fx.wid(b), "outer-scope");
  EXPECT_EQ(fx.wid(member), b.uid());
}

TEST(Scopes, AScopeMayOutliveItsEngine) {
  auto flow = af::WorkflowEngine::create(
      {.backends = {af::ThreadPoolBackend::create()}, .work_dir = ::testing::TempDir()});
  auto telemetry = flow->start_telemetry({});
  // On the heap, to end it after the engine (a scope is not movable: the prvalue is elided).
  std::unique_ptr<af::WorkflowScope> scope(new af::WorkflowScope(flow->workflow_scope("wf-1")));
  {
    auto f = flow->function_task("f", [](int v) { return v; });  // (holds the engine's core)
    EXPECT_EQ(f(1).get(), 1);
  }
  flow.reset();   // shuts down: the session ends with the workflow still open
  scope.reset();  // used to read the freed engine (heap-use-after-free; a crash in release)
  EXPECT_EQ(telemetry->dropped_events(), 0u) << "a scope ending late must not emit into a "
                                                "stopped session: "
                                             << telemetry->losses().to_string();
}
