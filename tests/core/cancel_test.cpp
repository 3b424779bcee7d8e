// Cancellation: pending, queued, running, cascades, blocks, and routing to the owning backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <asyncflow/asyncflow.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <span>
#include <string>
#include <thread>

#include "support/engines.hpp"
#include "support/fake_backend.hpp"
#include "support/sync.hpp"

namespace af = asyncflow;
using af::testing::engine_with;
using af::testing::FakeBackend;
using af::testing::pool_engine;
using namespace std::chrono_literals;

namespace {

// Calls `hook` when the task named `name` is reported resolved: on the resolving thread, from
// inside the scheduler, just before the task is submitted.
class ResolvedHook final : public af::EngineObserver {
 public:
  ResolvedHook(std::string name, std::function<void()> hook)
      : name_(std::move(name)), hook_(std::move(hook)) {}
  void on_task_created(const af::TaskInfo&, std::span<const std::string>) noexcept override {}
  void on_task_resolved(const af::TaskInfo& t) noexcept override {
    if (t.name == name_) hook_();
  }
  void on_task_submitted(const af::TaskInfo&) noexcept override {}
  void on_task_queued(const af::TaskInfo&) noexcept override {}
  void on_task_started(const af::TaskInfo&) noexcept override {}
  void on_task_finished(const af::TaskInfo&, af::TaskState,
                        const std::exception_ptr&) noexcept override {}
  void on_workflow_begin(std::string_view, std::string_view) noexcept override {}
  void on_workflow_end(std::string_view) noexcept override {}

 private:
  std::string name_;
  std::function<void()> hook_;
};

}  // namespace

TEST(Cancel, ACancelWhileTheTaskIsBeingStartedIsNeitherRacyNorLost) {
  // The resolving thread is between reading the task's state and reading its dependencies
  // (it reports the task resolved there) when another thread cancels it. That cancel must not
  // finish the task and drop its upstream references under the resolving thread, and must
  // not be lost: the task ends canceled without running.
  auto fake = FakeBackend::create("fake");
  auto flow = engine_with({fake});
  af::TaskHandle<int> target;
  std::atomic<bool> ran{false};
  flow->set_observer(std::make_shared<ResolvedHook>(
      "target", [&] { std::thread([&] { EXPECT_TRUE(target.cancel()); }).join(); }));
  auto src = flow->function_task("src", [] { return 1; });
  auto t = flow->function_task("target", [&](int v) {
    ran = true;
    return v;
  });
  target = t(src());
  fake->run_all();  // runs src; target resolves on this thread and is canceled meanwhile
  EXPECT_EQ(target.state(), af::TaskState::kCanceled);
  EXPECT_THROW(target.get(), af::TaskCanceledError);
  EXPECT_FALSE(ran);
}

// Reference flaw §8.8: a task canceled early kept state PENDING.
TEST(Cancel, PendingTaskIsCanceledAtOnceWithItsDependents) {
  auto fake = FakeBackend::create("fake");
  auto flow = engine_with({fake});
  auto f = flow->function_task("f", [](int v) { return v; });
  auto head = f(1);
  auto mid = f(head);
  auto tail = f(mid);
  auto other = f(head);
  EXPECT_TRUE(mid.cancel());
  EXPECT_EQ(mid.state(), af::TaskState::kCanceled);
  EXPECT_THROW(mid.get(), af::TaskCanceledError);
  EXPECT_EQ(tail.state(), af::TaskState::kCanceled) << "cancel cascades to dependents";
  EXPECT_THROW(tail.get(), af::DependencyFailure);
  EXPECT_FALSE(mid.cancel()) << "already finished";
  fake->run_all();
  EXPECT_EQ(head.get(), 1);
  EXPECT_EQ(other.get(), 1) << "siblings are unaffected";
  EXPECT_TRUE(fake->canceled().empty()) << "a pending task never reached a backend";
}

// Reference flaw §8.6: canceling a running task always targeted the default backend.
TEST(Cancel, SubmittedTaskIsCanceledThroughItsOwningBackend) {
  auto cpu = FakeBackend::create("cpu");
  auto gpu = FakeBackend::create("gpu");
  auto flow = engine_with({cpu, gpu});
  auto g = flow->function_task("g", [] { return 1; }, {.backend = "gpu"});
  auto h = g();
  ASSERT_EQ(h.state(), af::TaskState::kSubmitted);
  EXPECT_TRUE(h.cancel());
  EXPECT_EQ(gpu->canceled(), std::vector<std::string>{h.uid()});
  EXPECT_TRUE(cpu->canceled().empty());
  gpu->run_all();  // the fake now runs it: a stop-requested task is reported canceled
  EXPECT_EQ(h.state(), af::TaskState::kCanceled);
}

TEST(Cancel, RunningThreadPoolTaskStopsCooperatively) {
  auto flow = engine_with({af::ThreadPoolBackend::create()});
  af::testing::Gate started;
  auto loop = flow->function_task("loop", [&] {
    started.open();
    // The cooperative pattern users write: poll the stop flag between pieces of work.
    while (!af::this_task::stop_requested()) std::this_thread::sleep_for(1ms);
    return 1;
  });
  auto h = loop();
  ASSERT_TRUE(started.wait_for(30s));
  EXPECT_TRUE(h.cancel());
  EXPECT_TRUE(h.wait_for(5s));
  EXPECT_EQ(h.state(), af::TaskState::kCanceled);
  EXPECT_THROW(h.get(), af::TaskCanceledError);
}

TEST(Cancel, QueuedThreadPoolTaskNeverRuns) {
  auto flow = engine_with({af::ThreadPoolBackend::create({.threads = 1})});
  af::testing::Gate release, started;
  std::atomic<bool> second_ran{false};
  auto busy = flow->function_task("busy", [&] {
    started.open();
    release.wait();
  });
  auto second = flow->function_task("second", [&] { second_ran = true; });
  auto b = busy();
  ASSERT_TRUE(started.wait_for(30s));
  auto s = second();
  EXPECT_EQ(s.state(), af::TaskState::kSubmitted);
  EXPECT_TRUE(s.cancel());
  release.open();
  b.get();
  EXPECT_TRUE(s.wait_for(5s));
  EXPECT_EQ(s.state(), af::TaskState::kCanceled);
  EXPECT_FALSE(second_ran);
}

TEST(Cancel, BlockCancelsItsMembersRecursively) {
  auto fake = FakeBackend::create("fake");
  auto flow = engine_with({fake});
  auto work = flow->function_task("work", [](int v) { return v; });
  std::vector<af::TaskHandle<int>> members;
  af::TaskHandle<int> inner_task;
  auto inner = flow->block("inner", [&]() -> af::Task<int> {
    inner_task = work(99);
    co_return co_await inner_task;
  });
  af::TaskHandle<int> inner_handle;
  auto outer = flow->block("outer", [&]() -> af::Task<int> {
    for (int i = 0; i < 3; ++i) members.push_back(work(i));
    inner_handle = inner();
    int sum = 0;
    for (auto& m : members) sum += co_await m;
    co_return sum + co_await inner_handle;
  });
  auto o = outer();
  ASSERT_TRUE(fake->wait_held(4));
  EXPECT_TRUE(o.cancel());
  auto canceled = fake->canceled();  // the submitted members went to their backend's cancel()
  for (auto& m : members)
    EXPECT_NE(std::find(canceled.begin(), canceled.end(), m.uid()), canceled.end()) << m.uid();
  EXPECT_NE(std::find(canceled.begin(), canceled.end(), inner_task.uid()), canceled.end());
  fake->run_all();  // the fake reports each stop-requested task canceled
  EXPECT_TRUE(o.wait_for(5s));
  EXPECT_EQ(o.state(), af::TaskState::kCanceled);
  for (auto& m : members) EXPECT_EQ(m.state(), af::TaskState::kCanceled);
  EXPECT_EQ(inner_task.state(), af::TaskState::kCanceled);
  EXPECT_EQ(inner_handle.state(), af::TaskState::kCanceled);
  EXPECT_THROW(o.get(), af::TaskCanceledError);
}

TEST(Cancel, TasksCreatedInACanceledBlockAreCanceled) {
  auto fake = FakeBackend::create("fake");
  auto flow = engine_with({fake});
  auto work = flow->function_task("work", [](int v) { return v; });
  af::TaskHandle<int> late;
  auto blk = flow->block("blk", [&]() -> af::Task<int> {
    try {
      co_await work(1);
    } catch (...) {
    }
    late = work(2);  // created after the block was canceled
    co_return 0;
  });
  auto b = blk();
  ASSERT_TRUE(fake->wait_held(1));
  b.cancel();
  fake->run_all();
  EXPECT_TRUE(b.wait_for(5s));
  ASSERT_TRUE(late.valid());
  EXPECT_EQ(late.state(), af::TaskState::kCanceled);
  EXPECT_EQ(b.state(), af::TaskState::kCanceled);
}

TEST(Cancel, FinishedTaskCannotBeCanceled) {
  auto flow = engine_with({af::ThreadPoolBackend::create()});
  auto h = flow->function_task("f", [] { return 1; })();
  EXPECT_EQ(h.get(), 1);
  EXPECT_FALSE(h.cancel());
  EXPECT_EQ(h.state(), af::TaskState::kDone);
}

TEST(Cancel, CancelRacesWithCompletionSafely) {
  auto flow = engine_with({af::ThreadPoolBackend::create()});
  auto f = flow->function_task("f", [](int v) { return v; });
  for (int round = 0; round < 200; ++round) {
    auto a = f(round);
    auto b = f(a);
    std::thread t([&] { a.cancel(); });
    b.cancel();
    t.join();
    b.wait();
    a.wait();
    EXPECT_TRUE(af::is_terminal(a.state()));
    EXPECT_TRUE(af::is_terminal(b.state()));
  }
}
