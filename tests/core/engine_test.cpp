// Engine creation, uids, routing, dry run, shutdown, states and latency regressions.
#include <gtest/gtest.h>

#include <algorithm>
#include <asyncflow/asyncflow.hpp>
#include <atomic>
#include <chrono>
#include <iterator>
#include <regex>
#include <span>
#include <thread>

#include "support/engines.hpp"
#include "support/error_text.hpp"
#include "support/fake_backend.hpp"
#include "support/sync.hpp"
#include "support/temp_path.hpp"

namespace af = asyncflow;
using af::testing::engine_with;
using af::testing::FakeBackend;
using af::testing::pool_engine;
using namespace std::chrono_literals;

TEST(Engine, DefaultUidAndWorkDir) {
  auto flow = af::WorkflowEngine::create({.work_dir = ::testing::TempDir()});
  EXPECT_TRUE(std::regex_match(flow->uid(), std::regex("asyncflow\\.session\\.[0-9a-f]{8}")))
      << flow->uid();
  EXPECT_EQ(flow->work_dir(), std::filesystem::path(::testing::TempDir()) / flow->uid());
  EXPECT_TRUE(std::filesystem::is_directory(flow->work_dir()));
  EXPECT_EQ(flow->backend_names(), std::vector<std::string>{"thread_pool"});
}

TEST(Engine, GivenUidAndUnwritableWorkDir) {
  auto flow = af::WorkflowEngine::create({.uid = "my-run", .work_dir = ::testing::TempDir()});
  EXPECT_EQ(flow->uid(), "my-run");
  // Creating it works (nothing is made yet); asking for the directory says why it cannot be.
  auto unwritable = af::WorkflowEngine::create({.work_dir = "/proc/definitely/not/writable"});
  const std::string e = af::testing::error_of([&] { unwritable->work_dir(); });
  EXPECT_NE(e.find("cannot make its work dir '/proc/definitely/not/writable/asyncflow.session."),
            std::string::npos)
      << e;
}

// Every engine made `{cwd}/asyncflow.session.*` at once: create() threw in a read-only cwd (the
// hello-world example aborted), threw std::filesystem_error in a deleted one, and left an empty
// directory behind each time. Now the directory is made when first needed.
TEST(Engine, InProcessWorkNeedsNoDirectoryAndLeavesNone) {
  const std::filesystem::path dir = af::testing::fresh_temp_path("cwd");
  std::filesystem::create_directories(dir);
  const std::filesystem::path before = std::filesystem::current_path();
  auto run_here = [] {
    auto flow = af::WorkflowEngine::create();
    auto add = flow->function_task("add", [](int a, int b) { return a + b; });
    EXPECT_EQ(add(2, 3).get(), 5);
    flow->shutdown();
    return flow;
  };
  std::filesystem::current_path(dir);
  run_here();
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "an engine left a directory behind";
  // Read-only for root too: /proc.
  std::filesystem::current_path("/proc");
  const auto in_proc = run_here();
  EXPECT_NE(af::testing::error_of([&] { in_proc->work_dir(); }).find("cannot make its work dir"),
            std::string::npos);
  // Deleted.
  std::filesystem::current_path(dir);
  std::filesystem::remove(dir);
  const auto in_deleted = run_here();
  const std::string e = af::testing::error_of([&] { in_deleted->work_dir(); });
  EXPECT_NE(e.find("the current directory cannot be read"), std::string::npos) << e;
  EXPECT_NE(e.find("EngineOptions::work_dir was not given"), std::string::npos) << e;
  std::filesystem::current_path(before);
}

// "../../escape" made a directory outside work_dir.
TEST(Engine, AUidMustBeAPlainName) {
  const std::vector<std::string> bad_uids = {
      "../../escape", "a/b", "..", ".", std::string("a\0b", 3), std::string(256, 'x')};
  for (const std::string& bad : bad_uids) {
    const std::string e = af::testing::error_of(
        [&] { af::WorkflowEngine::create({.uid = bad, .work_dir = ::testing::TempDir()}); });
    EXPECT_NE(e.find("is not a plain name"), std::string::npos) << e;
  }
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(::testing::TempDir()) / "escape"));
  EXPECT_EQ(
      af::WorkflowEngine::create({.uid = "run-1.a_b", .work_dir = ::testing::TempDir()})->uid(),
      "run-1.a_b");
}

// A symbolic link planted where the engine's directory goes would send task output elsewhere.
TEST(Engine, ASymbolicLinkInPlaceOfTheWorkDirIsRefused) {
  const std::filesystem::path base = af::testing::fresh_temp_path("base");
  const std::filesystem::path elsewhere = af::testing::fresh_temp_path("elsewhere");
  std::filesystem::create_directories(base);
  std::filesystem::create_directories(elsewhere);
  std::filesystem::create_directory_symlink(elsewhere, base / "planted");
  auto flow = af::WorkflowEngine::create({.uid = "planted", .work_dir = base});
  const std::string e = af::testing::error_of([&] { flow->work_dir(); });
  EXPECT_NE(e.find("something other than a directory is in its place"), std::string::npos) << e;
}

TEST(Engine, RejectsDuplicateAndNullBackends) {
  EXPECT_THROW(engine_with({FakeBackend::create("a"), FakeBackend::create("a")}), af::Error);
  EXPECT_THROW(engine_with({nullptr}), af::Error);
}

// Reference flaw §8.13: the uid counter was global and reset by any engine's shutdown.
TEST(Engine, UidsArePerEngineAndPerKind) {
  auto a = af::WorkflowEngine::create({.work_dir = ::testing::TempDir(), .dry_run = true});
  auto b = af::WorkflowEngine::create({.work_dir = ::testing::TempDir(), .dry_run = true});
  auto fa = a->function_task("f", [] { return 1; });
  auto fb = b->function_task("f", [] { return 1; });
  auto blk = a->block("blk", []() -> af::Task<int> { co_return 1; });
  EXPECT_EQ(fa().uid(), "task.000001");
  EXPECT_EQ(blk().uid(), "block.000001");
  EXPECT_EQ(fa().uid(), "task.000002");
  EXPECT_EQ(fb().uid(), "task.000001");
  b->shutdown();
  EXPECT_EQ(fa().uid(), "task.000003") << "another engine's shutdown must not reset counters";
}

// Reference flaw §8.10: an unknown backend name shut the whole engine down.
TEST(Engine, UidNumbersArePaddedToSixDigitsAndNeverCut) {
  // Also checks that nothing is written past the length, the longest within the capacity.
  auto written = [](bool block, std::uint64_t n) {
    char buf[asyncflow::detail::kUidCapacity + 8];
    std::fill(std::begin(buf), std::end(buf), '#');
    const std::size_t len = asyncflow::detail::write_uid(buf, block, n);
    EXPECT_LE(len, asyncflow::detail::kUidCapacity);
    EXPECT_EQ(buf[len], '#') << "wrote past its length";
    return std::string(buf, len);
  };
  EXPECT_EQ(written(false, 0), "task.000000");
  EXPECT_EQ(written(false, 1), "task.000001");
  EXPECT_EQ(written(true, 42), "block.000042");
  EXPECT_EQ(written(false, 99999), "task.099999");
  EXPECT_EQ(written(false, 999999), "task.999999");
  EXPECT_EQ(written(false, 1000000), "task.1000000");
  EXPECT_EQ(written(false, 1234567), "task.1234567");
  EXPECT_EQ(written(false, 123456789), "task.123456789");
  EXPECT_EQ(written(false, 18446744073709551615ull), "task.18446744073709551615");
  EXPECT_EQ(written(true, 18446744073709551615ull), "block.18446744073709551615");
}

TEST(Engine, UnknownBackendIsAClearErrorAtDefinition) {
  auto flow = engine_with({FakeBackend::create("cpu"), FakeBackend::create("gpu")});
  try {
    flow->function_task("f", [] { return 1; }, {.backend = "tpu"});
    FAIL();
  } catch (const af::Error& e) {
    EXPECT_STREQ(e.what(),
                 ("unknown backend 'tpu'; engine '" + flow->uid() + "' has: cpu, gpu").c_str());
  }
  auto f = flow->function_task("f", [] { return 1; });
  EXPECT_THROW(f.with({.backend = "nope"}), af::Error);
  EXPECT_FALSE(flow->is_shut_down());
}

TEST(Engine, TasksRouteToTheirNamedBackend) {
  auto cpu = FakeBackend::create("cpu");
  auto gpu = FakeBackend::create("gpu");
  auto flow = engine_with({cpu, gpu});
  auto on_cpu = flow->function_task("c", [] { return 1; });
  auto on_gpu = flow->function_task("g", [] { return 2; }, {.backend = "gpu"});
  auto h1 = on_cpu();
  auto h2 = on_gpu();
  auto h3 = on_cpu.with({.backend = "gpu"})();
  EXPECT_EQ(cpu->submitted(), std::vector<std::string>{h1.uid()});
  EXPECT_EQ(gpu->submitted(), (std::vector<std::string>{h2.uid(), h3.uid()}));
  cpu->run_all();
  gpu->run_all();
  EXPECT_EQ(h1.get() + h2.get() + h3.get(), 4);
}

TEST(Engine, DryRunRunsNoBodiesButChecksRouting) {
  auto flow =
      af::WorkflowEngine::create({.backends = {af::ThreadPoolBackend::create({.name = "gpu"})},
                                  .work_dir = ::testing::TempDir(),
                                  .dry_run = true});
  std::atomic<int> ran{0};
  auto f = flow->function_task("f",
                               [&](int v) {
                                 ++ran;
                                 return v + 1;
                               },
                               {.backend = "gpu"});
  auto s = flow->function_task("s", [&] {
    ++ran;
    return std::string("x");
  });
  EXPECT_EQ(f(f(1)).get(), 0);  // value-initialized int
  EXPECT_EQ(s().get(), "");
  EXPECT_EQ(ran.load(), 0);
  EXPECT_THROW(flow->function_task("g", [] { return 1; }, {.backend = "cpu"}), af::Error);

  struct NoDefault {
    explicit NoDefault(int) {}
  };
  auto nd = flow->function_task("nd", [] { return NoDefault(1); });
  try {
    nd().get();
    FAIL();
  } catch (const af::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be value-initialized"), std::string::npos);
  }
}

TEST(Engine, StatesMoveForwardAndAreReadableAnytime) {
  auto fake = FakeBackend::create("fake");
  auto flow = engine_with({fake});
  auto gate = flow->function_task("gate", [] { return 1; });
  auto g = gate();
  auto next = flow->function_task("next", [](int v) { return v; })(g);
  EXPECT_EQ(g.state(), af::TaskState::kSubmitted);
  EXPECT_EQ(next.state(), af::TaskState::kPending);
  EXPECT_FALSE(g.done());
  EXPECT_FALSE(g.wait_for(10ms));
  fake->run_next();
  EXPECT_EQ(g.state(), af::TaskState::kDone);
  EXPECT_EQ(next.state(), af::TaskState::kSubmitted);
  fake->run_next();
  EXPECT_TRUE(next.wait_for(1s));
  EXPECT_EQ(next.state(), af::TaskState::kDone);
  EXPECT_EQ(af::to_string(next.state()), "DONE");
}

TEST(Engine, RunningStateVisibleInsideTheBody) {
  auto flow = engine_with({af::ThreadPoolBackend::create()});
  af::testing::Gate started, release;
  auto slow = flow->function_task("slow", [&] {
    started.open();
    release.wait();
    return af::this_task::uid();
  });
  auto h = slow();
  ASSERT_TRUE(started.wait_for(30s));
  EXPECT_EQ(h.state(), af::TaskState::kRunning);
  release.open();
  EXPECT_EQ(h.get(), h.uid());
}

// Reference flaw §8.1: completions did not wake the run loop; each level of a chain waited
// for a 1 s poll (5 x 50 ms took 4.15 s). Here the whole chain must take about its work time.
TEST(Engine, ChainIsNotPollBound) {
  auto flow = engine_with({af::ThreadPoolBackend::create()});
  auto stage = flow->function_task("stage", [](int v) {
    std::this_thread::sleep_for(50ms);
    return v + 1;
  });
  auto t0 = std::chrono::steady_clock::now();
  auto h = stage(stage(stage(stage(stage(0)))));
  EXPECT_EQ(h.get(), 5);
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(elapsed, 1000ms)
      << "5 x 50 ms took " << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
      << " ms";
}

TEST(Engine, NoopChainOfAMillionLevelsUsesConstantStack) {
  auto flow = af::WorkflowEngine::create({.work_dir = ::testing::TempDir(), .dry_run = true});
  auto inc = flow->function_task("inc", [](int v) { return v + 1; });
  // Built while the head is pending, so completing it resolves the whole chain at once.
  auto fake = FakeBackend::create("held");
  auto gated = af::WorkflowEngine::create(
      {.backends = {fake}, .work_dir = ::testing::TempDir(), .dry_run = false});
  auto ginc = gated->function_task("inc", [](int v) { return v + 1; });
  auto head = ginc(0);
  auto h = head;
  for (int i = 0; i < 200000; ++i) h = ginc(h);
  fake->run_all();  // every level runs on this thread through the trampoline
  EXPECT_EQ(h.get(), 200001);
  auto n = inc(0);
  for (int i = 0; i < 1000; ++i) n = inc(n);
  EXPECT_EQ(n.get(), 0);  // dry run: value-initialized
}

// Reference flaw §8.14: a task created after shutdown never resolved.
TEST(Engine, WorkAfterShutdownIsRefusedNotHung) {
  auto flow = engine_with({af::ThreadPoolBackend::create()});
  auto f = flow->function_task("f", [] { return 1; });
  EXPECT_EQ(f().get(), 1);
  flow->shutdown();
  EXPECT_TRUE(flow->is_shut_down());
  EXPECT_THROW(f(), af::EngineShutdownError);
  EXPECT_THROW(flow->function_task("g", [] { return 1; }), af::EngineShutdownError);
  flow->shutdown();  // idempotent
}

TEST(Engine, FactoryOutlivingItsEngineIsRefused) {
  auto flow = engine_with({af::ThreadPoolBackend::create()});
  auto f = flow->function_task("f", [] { return 1; });
  auto blk = flow->block("b", []() -> af::Task<int> { co_return 1; });
  flow.reset();
  EXPECT_THROW(f(), af::EngineShutdownError);
  EXPECT_THROW(blk(), af::EngineShutdownError);
}

TEST(Engine, ConcurrentShutdownIsSafe) {
  auto flow = engine_with({af::ThreadPoolBackend::create()});
  auto f = flow->function_task("f", [] { return 1; });
  for (int i = 0; i < 100; ++i) f();
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back([&] { flow->shutdown(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(flow->active_tasks(), 0u);
}

TEST(Engine, ShutdownWaitsForRunningAndCancelsWhatHasNotStarted) {
  auto pool = std::make_shared<af::testing::ShutdownSignalingBackend>(
      af::ThreadPoolBackend::create({.threads = 1}));
  auto flow = engine_with({pool});
  af::testing::Gate started;
  auto slow = flow->function_task("slow", [&] {
    started.open();
    pool->shutdown_begun.wait();  // still running when shutdown() begins
    return 7;
  });
  auto quick = flow->function_task("quick", [](int v) { return v; });
  auto running = slow();
  auto queued = quick(1);           // behind `slow` on the single worker
  auto dependent = quick(running);  // pending until `slow` finishes
  ASSERT_TRUE(started.wait_for(30s));
  flow->shutdown();
  EXPECT_EQ(running.state(), af::TaskState::kDone);
  EXPECT_EQ(running.get(), 7);
  EXPECT_EQ(queued.state(), af::TaskState::kCanceled);
  EXPECT_THROW(queued.get(), af::TaskCanceledError);
  EXPECT_EQ(dependent.state(), af::TaskState::kCanceled);
}

// Threads inside a LingeringBackend call right now (outside the object: it may be gone).
std::atomic<int> g_inside_backend{0};

// A backend that lingers in its calls after it has finished the task they were about, as a
// real backend may touch its own state after handing work over. submit() runs each task to
// completion on a thread of its own (or, with `hold`, keeps it); cancel() reports the task
// canceled.
class LingeringBackend final : public af::Backend {
 public:
  explicit LingeringBackend(bool hold = false) : hold_(hold) {}
  ~LingeringBackend() override {
    EXPECT_EQ(g_inside_backend.load(), 0) << "the engine released a backend while a thread was "
                                             "still inside one of its calls";
  }
  const std::string& name() const noexcept override { return name_; }
  void submit(std::span<af::BackendTask* const> batch) override {
    if (hold_) return;
    ++g_inside_backend;
    for (af::BackendTask* t : batch) std::thread([t] { t->run(); }).join();
    linger();
  }
  void cancel(af::BackendTask& task) noexcept override {
    ++g_inside_backend;
    task.report_canceled("");
    linger();
  }

 private:
  static void linger() {
    std::this_thread::sleep_for(50ms);  // the task's get() has returned by now
    --g_inside_backend;
  }
  std::string name_ = "lingering";
  bool hold_;
};

TEST(Engine, ShutdownWaitsForThreadsStillInsideABackendCall) {
  // The task reaches the lingering backend from a pool thread (once `gate` is done), so the
  // test thread can shut down while that pool thread is still inside submit(). The lingering
  // backend comes first: shutdown releases it before the pool (whose destructor would join the
  // thread inside submit()).
  auto flow = engine_with(
      {std::make_shared<LingeringBackend>(), af::ThreadPoolBackend::create({.threads = 1})});
  auto gate = flow->function_task("gate", [] { return 1; }, {.backend = "thread_pool"});
  auto inc = flow->function_task("inc", [](int v) { return v + 1; });
  EXPECT_EQ(inc(gate()).get(), 2);
  flow->shutdown();  // releases the only reference to the lingering backend
  EXPECT_EQ(g_inside_backend.load(), 0);
}

TEST(Engine, ShutdownWaitsForThreadsStillInsideABackendCancel) {
  auto flow = engine_with({std::make_shared<LingeringBackend>(/*hold=*/true)});
  auto h = flow->function_task("held", [] { return 1; })();
  std::thread canceler([&] { h.cancel(); });
  h.wait();          // canceled: the canceling thread lingers in the backend's cancel()
  flow->shutdown();  // and shutdown must wait for it
  EXPECT_EQ(g_inside_backend.load(), 0);
  canceler.join();
}

TEST(Engine, DestructorShutsDown) {
  af::TaskHandle<int> running, never_started;
  af::testing::Gate started;
  {
    auto pool = std::make_shared<af::testing::ShutdownSignalingBackend>(
        af::ThreadPoolBackend::create({.threads = 1}));
    auto flow = engine_with({pool});
    running = flow->function_task("f", [&, raw = pool.get()] {
      started.open();
      raw->shutdown_begun.wait();  // running until the destructor's shutdown has begun
      return 3;
    })();
    ASSERT_TRUE(started.wait_for(30s));
    never_started = flow->function_task("g", [] { return 4; })();  // queued behind `f`
  }
  EXPECT_TRUE(running.done());
  EXPECT_EQ(running.get(), 3);  // handles outlive the engine
  EXPECT_EQ(never_started.state(), af::TaskState::kCanceled);
}

TEST(Engine, CreatesTasksFromManyThreads) {
  auto flow = engine_with({af::ThreadPoolBackend::create()});
  auto inc = flow->function_task("inc", [](int v) { return v + 1; });
  std::vector<std::thread> threads;
  std::atomic<long> total{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      std::vector<af::TaskHandle<int>> hs;
      for (int i = 0; i < 500; ++i) hs.push_back(inc(inc(i)));
      long sum = 0;
      for (auto& h : hs) sum += h.get();
      total += sum;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(total.load(), 8L * (499L * 500L / 2 + 2L * 500L));
}

TEST(Engine, BackendFailureOnSubmitFailsTheTask) {
  struct Refusing final : af::Backend {
    std::string n = "refusing";
    const std::string& name() const noexcept override { return n; }
    void submit(std::span<af::BackendTask* const>) override {
      throw std::runtime_error("backend refused the batch");
    }
    void cancel(af::BackendTask&) noexcept override {}
  };
  auto flow = engine_with({std::make_shared<Refusing>()});
  auto h = flow->function_task("f", [] { return 1; })();
  EXPECT_EQ(h.state(), af::TaskState::kFailed);
  EXPECT_THROW(h.get(), std::runtime_error);
}

TEST(Engine, AnEmptyHandleIsAClearErrorNotACrash) {
  af::TaskHandle<int> empty;  // get() on it used to segfault
  af::TaskHandle<void> empty_void;
  EXPECT_FALSE(empty.valid());
  auto says = [](auto&& call, const std::string& member) {
    try {
      call();
      ADD_FAILURE() << member << " did not throw";
    } catch (const af::Error& e) {
      EXPECT_NE(std::string(e.what()).find("TaskHandle::" + member + "() called on an empty"),
                std::string::npos)
          << e.what();
    }
  };
  says([&] { (void)empty.get(); }, "get");
  says([&] { empty_void.get(); }, "get");
  says([&] { empty.wait(); }, "wait");
  says([&] { (void)empty.uid(); }, "uid");
  says([&] { (void)empty.name(); }, "name");
  says([&] { (void)empty.state(); }, "state");
  says([&] { (void)empty.done(); }, "done");
  says([&] { (void)empty.wait_for(std::chrono::milliseconds(1)); }, "wait_for");
  says([&] { (void)empty.cancel(); }, "cancel");
  says([&] { (void)empty.error(); }, "error");
  says([&] { (void)empty.operator co_await(); }, "operator co_await");

  // A moved-from handle is empty too, and an empty handle is no dependency.
  auto flow = af::testing::pool_engine();
  auto one = flow->function_task("one", [] { return 1; });
  auto plus = flow->function_task("plus", [](int v) { return v + 1; });
  af::TaskHandle<int> h = one();
  af::TaskHandle<int> moved = std::move(h);
  EXPECT_FALSE(h.valid());  // NOLINT(bugprone-use-after-move): the point of the test
  try {
    (void)plus(h);
    ADD_FAILURE() << "an empty dependency was accepted";
  } catch (const af::Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty TaskHandle"), std::string::npos) << e.what();
  }
  EXPECT_EQ(plus(moved).get(), 2);  // the engine goes on
}

TEST(Engine, ShutdownFromInsideItsOwnTaskOrBlockIsRefused) {
  auto flow = pool_engine();
  af::WorkflowEngine* engine = flow.get();
  // Used to deadlock forever: shutdown() waited for the very task that called it.
  auto stop_from_task =
      flow->function_task("stop_from_task", [engine] { return engine->shutdown(); });
  auto h = stop_from_task();
  try {
    (void)h.get();
    FAIL() << "shutdown() inside a task returned";
  } catch (const af::Error& e) {
    EXPECT_NE(std::string(e.what()).find("called from inside task 'stop_from_task' (" + h.uid()),
              std::string::npos)
        << e.what();
  }
  auto stop_from_block = flow->block(
      "stop_from_block", [engine]() -> af::Task<bool> { co_return engine->shutdown(); });
  auto b = stop_from_block();
  try {
    (void)b.get();
    FAIL() << "shutdown() inside a block returned";
  } catch (const af::Error& e) {
    EXPECT_NE(std::string(e.what()).find("called from inside block 'stop_from_block' (" + b.uid()),
              std::string::npos)
        << e.what();
  }
  // Refused means nothing happened: the engine still works, and shuts down from outside.
  auto one = flow->function_task("one", [] { return 1; });
  EXPECT_EQ(one().get(), 1);
  EXPECT_TRUE(flow->shutdown());
}
