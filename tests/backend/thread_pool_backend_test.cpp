// ThreadPoolBackend through the engine: worker threads, many submitters, continuation slot.
#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>
#include <set>
#include <thread>

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
  std::atomic<int> inside{0};
  auto f = flow->function_task("f", [&] {
    ++inside;
    // Wait (bounded) until both workers are inside: proves two tasks ran concurrently.
    for (int i = 0; i < 2000 && inside.load() < 2; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
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

TEST(ThreadPool, DestructorJoinsAfterQueuedWork) {
  std::atomic<int> ran{0};
  {
    auto pool = af::ThreadPoolBackend::create({.threads = 1});
    auto flow = af::WorkflowEngine::create({.backends = {pool}, .work_dir = ::testing::TempDir()});
    auto f = flow->function_task("f", [&] { ++ran; });
    for (int i = 0; i < 50; ++i) f();
    flow->shutdown();  // tasks not yet started are canceled, never left dangling
    EXPECT_EQ(flow->active_tasks(), 0u);
  }
  EXPECT_LE(ran.load(), 50);
}
