// ThreadPoolBackend through the engine: worker threads, many submitters, continuation slot.
#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>
#include <set>
#include <thread>

#include "support/fake_backend.hpp"
#include "support/sync.hpp"

namespace af = asyncflow;

TEST(ThreadPool, ThreadCountAndWorkerIdentity) {
  auto pool = af::ThreadPoolBackend::create({.name = "p", .threads = 3});
  EXPECT_EQ(pool->thread_count(), 3u);
  EXPECT_EQ(pool->name(), "p");
  EXPECT_FALSE(pool->on_worker_thread());
  auto flow = af::WorkflowEngine::create({.backends = {pool}, .work_dir = ::testing::TempDir()});
  auto where = flow->function_task("where", [&] { return pool->on_worker_thread(); });
  EXPECT_TRUE(where().get());
  auto defaults = af::ThreadPoolBackend::create();
  EXPECT_EQ(defaults->thread_count(), std::max(1u, std::thread::hardware_concurrency()));
}

TEST(ThreadPool, UsesAllWorkers) {
  auto pool = af::ThreadPoolBackend::create({.threads = 2});
  auto flow = af::WorkflowEngine::create({.backends = {pool}, .work_dir = ::testing::TempDir()});
  std::mutex mu;
  std::set<std::thread::id> seen;
  af::testing::Latch inside(2);
  auto f = flow->function_task("f", [&] {
    inside.count_down();
    // Both workers inside at once proves two tasks ran concurrently (bounded: a pool that ran
    // them one after the other fails the test instead of hanging it).
    EXPECT_TRUE(inside.wait_for(std::chrono::seconds(30)));
    std::lock_guard lock(mu);
    seen.insert(std::this_thread::get_id());
  });
  auto a = f();
  auto b = f();
  a.get();
  b.get();
  EXPECT_EQ(seen.size(), 2u);
}

TEST(ThreadPool, ManySubmittersManyTasks) {
  auto flow = af::WorkflowEngine::create(
      {.backends = {af::ThreadPoolBackend::create()}, .work_dir = ::testing::TempDir()});
  auto sq = flow->function_task("sq", [](long v) { return v * v; });
  std::vector<std::thread> threads;
  std::atomic<long> total{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<af::TaskHandle<long>> hs;
      for (long i = 0; i < 2000; ++i) hs.push_back(sq(i + t));
      long s = 0;
      for (auto& h : hs) s += h.get();
      total += s;
    });
  }
  for (auto& th : threads) th.join();
  long expect = 0;
  for (int t = 0; t < 4; ++t)
    for (long i = 0; i < 2000; ++i) expect += (i + t) * (i + t);
  EXPECT_EQ(total.load(), expect);
}

TEST(ThreadPool, ChainStaysOnOneWorker) {
  auto pool = af::ThreadPoolBackend::create({.threads = 2});
  auto flow = af::WorkflowEngine::create({.backends = {pool}, .work_dir = ::testing::TempDir()});
  std::mutex mu;
  std::set<std::thread::id> seen;
  auto step = flow->function_task("step", [&](int v) {
    std::lock_guard lock(mu);
    seen.insert(std::this_thread::get_id());
    return v + 1;
  });
  std::atomic<bool> open{false};
  auto gate = flow->function_task("gate", [&] {
    while (!open) std::this_thread::yield();
    return 0;
  });
  auto h = gate();
  for (int i = 0; i < 100; ++i) h = step(h);
  open = true;
  EXPECT_EQ(h.get(), 100);
  EXPECT_EQ(seen.size(), 1u) << "each successor runs in the finishing worker's continuation slot";
}

TEST(ThreadPool, ShutdownFinishesTheRunningTaskCancelsTheQueuedOnesAndJoins) {
  std::atomic<int> ran{0};
  std::vector<af::TaskHandle<void>> handles;
  std::weak_ptr<af::Backend> weak_pool;
  {
    auto pool = std::make_shared<af::testing::ShutdownSignalingBackend>(
        af::ThreadPoolBackend::create({.threads = 1}));
    weak_pool = pool;
    auto flow = af::WorkflowEngine::create({.backends = {pool}, .work_dir = ::testing::TempDir()});
    af::testing::Gate first_started;
    auto first = flow->function_task("first", [&, raw = pool.get()] {
      first_started.open();
      raw->shutdown_begun.wait();  // still running when shutdown() begins
      ++ran;
    });
    auto f = flow->function_task("f", [&] { ++ran; });
    handles.push_back(first());
    ASSERT_TRUE(first_started.wait_for(std::chrono::seconds(30)));
    for (int i = 0; i < 49; ++i) handles.push_back(f());  // queued behind `first`
    pool.reset();
    flow->shutdown();  // waits for `first`; the queued ones are canceled, never left dangling
    EXPECT_EQ(flow->active_tasks(), 0u);
  }
  EXPECT_TRUE(weak_pool.expired());  // the engine released the pool, which joined its worker
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(handles[0].state(), af::TaskState::kDone);
  for (std::size_t i = 1; i < handles.size(); ++i)
    EXPECT_EQ(handles[i].state(), af::TaskState::kCanceled) << i;
}
