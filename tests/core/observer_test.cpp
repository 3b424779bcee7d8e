// Lifecycle points reported to the EngineObserver (the hook telemetry builds on).
#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>

#include "support/fake_backend.hpp"
#include "support/recording_observer.hpp"

namespace af = asyncflow;
using af::testing::FakeBackend;
using af::testing::RecordingObserver;

using Seq = std::vector<std::string>;

TEST(Observer, TaskLifecycleOrderOnTheThreadPool) {
  auto obs = std::make_shared<RecordingObserver>();
  auto flow = af::WorkflowEngine::create(
      {.backends = {af::ThreadPoolBackend::create()}, .work_dir = ::testing::TempDir()});
  flow->set_observer(obs);
  auto f = flow->function_task("f", [](int v) { return v; });
  auto a = f(1);
  auto b = f(a);
  b.get();
  EXPECT_EQ(obs->sequence(a.uid()),
            (Seq{"created", "resolved", "submitted", "queued", "started", "finished"}));
  EXPECT_EQ(obs->sequence(b.uid()),
            (Seq{"created", "resolved", "submitted", "queued", "started", "finished"}));
  EXPECT_EQ(obs->find(b.uid(), "created").depends_on, Seq{a.uid()});
  EXPECT_EQ(obs->find(b.uid(), "finished").state, af::TaskState::kDone);
  EXPECT_EQ(obs->find(b.uid(), "started").backend, "thread_pool");
}

TEST(Observer, ResolvedComesWhenTheLastDependencyFinishes) {
  auto obs = std::make_shared<RecordingObserver>();
  auto fake = FakeBackend::create("fake");
  auto flow = af::WorkflowEngine::create({.backends = {fake}, .work_dir = ::testing::TempDir()});
  flow->set_observer(obs);
  auto f = flow->function_task("f", [](int v) { return v; });
  auto g = flow->function_task("g", [](int a, int b) { return a + b; });
  auto a = f(1);
  auto b = f(2);
  auto c = g(a, b);
  EXPECT_EQ(obs->sequence(c.uid()), Seq{"created"});
  fake->run_next();
  EXPECT_EQ(obs->sequence(c.uid()), Seq{"created"});
  fake->run_next();
  EXPECT_EQ(obs->sequence(c.uid()), (Seq{"created", "resolved", "submitted"}));
  fake->run_all();
  EXPECT_EQ(c.get(), 3);
}

TEST(Observer, FailuresCancelsAndRealBackendNames) {
  auto obs = std::make_shared<RecordingObserver>();
  auto cpu = FakeBackend::create("cpu");
  auto gpu = FakeBackend::create("gpu");
  auto flow =
      af::WorkflowEngine::create({.backends = {cpu, gpu}, .work_dir = ::testing::TempDir()});
  flow->set_observer(obs);
  auto bad = flow->function_task("bad", []() -> int { throw std::runtime_error("x"); },
                                 {.backend = "gpu"});
  auto dep = flow->function_task("dep", [](int v) { return v; });
  auto b = bad();
  auto d = dep(b);
  auto pending = dep(d);
  gpu->run_all();
  EXPECT_EQ(obs->find(b.uid(), "started").backend, "gpu");
  auto fin = obs->find(b.uid(), "finished");
  EXPECT_EQ(fin.state, af::TaskState::kFailed);
  EXPECT_TRUE(fin.has_error);
  EXPECT_EQ(obs->sequence(d.uid()), (Seq{"created", "resolved", "finished"}))
      << "a dependency failure is reported as the task's own terminal point";
  EXPECT_EQ(obs->find(d.uid(), "finished").state, af::TaskState::kFailed);
  EXPECT_EQ(obs->find(pending.uid(), "finished").state, af::TaskState::kFailed);

  auto c = dep(5);
  c.cancel();
  cpu->run_all();
  EXPECT_EQ(obs->find(c.uid(), "finished").state, af::TaskState::kCanceled);
}

// Reference flaw §8.19: blocks emitted TaskCreated only, leaving spans open.
TEST(Observer, BlocksReportAFullLifecycle) {
  auto obs = std::make_shared<RecordingObserver>();
  auto flow = af::WorkflowEngine::create(
      {.backends = {af::ThreadPoolBackend::create()}, .work_dir = ::testing::TempDir()});
  flow->set_observer(obs);
  auto f = flow->function_task("f", [] { return 1; });
  auto blk = flow->block("blk", [&]() -> af::Task<int> { co_return co_await f(); });
  auto b = blk();
  b.get();
  EXPECT_EQ(obs->sequence(b.uid()), (Seq{"created", "resolved", "started", "finished"}));
  EXPECT_EQ(obs->find(b.uid(), "created").backend, "");
}

TEST(Observer, CanBeRemoved) {
  auto obs = std::make_shared<RecordingObserver>();
  auto flow = af::WorkflowEngine::create({.work_dir = ::testing::TempDir(), .dry_run = true});
  flow->set_observer(obs);
  auto f = flow->function_task("f", [] { return 1; });
  f().get();
  auto n = obs->events().size();
  flow->set_observer(nullptr);
  f().get();
  EXPECT_EQ(obs->events().size(), n);
}
