// Backend faults (support/fault_backend.hpp): a submit() that throws, tasks a backend never
// runs, reports twice or out of order, reports from threads the engine never saw. Under each
// the engine keeps running, every task ends in exactly one terminal state (handle, observer
// and telemetry agree), and telemetry loses nothing.
#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fault/fault_rig.hpp"
#include "fault/terminal_states.hpp"
#include "support/fake_backend.hpp"
#include "support/fault_backend.hpp"
#include "support/sync.hpp"

namespace asyncflow {
namespace {

using namespace std::chrono_literals;
using testing::FaultRig;
using testing::HangingBackend;
using testing::Script;
using testing::ScriptedBackend;
using testing::ThrowingSubmitBackend;
using testing::Where;

std::shared_ptr<ThreadPoolBackend> pool(const char* name, std::size_t threads = 2) {
  return ThreadPoolBackend::create({.name = name, .threads = threads});
}

std::vector<std::string> echo(int i) {
  return {"echo", std::to_string(i)};
}

TEST(BackendFaults, ASubmitThatThrowsFailsExactlyTheTasksOfThatCall) {
  auto throwing = std::make_shared<ThrowingSubmitBackend>(pool("pool"), 3, "the queue is full");
  FaultRig rig({throwing, pool("plain", 1)});
  auto f = rig.flow->function_task("f", [](int i) { return i; });
  auto g = rig.flow->function_task("g", [](int i) { return i + 1; }, {.backend = "plain"});
  std::vector<TaskHandle<int>> fs, gs;
  // Each task created on this thread with nothing pending is one submit() call: calls 3, 6,
  // ... throw. The dependents run on the other backend.
  for (int i = 1; i <= 30; ++i) {
    fs.push_back(f(i));
    gs.push_back(g(fs.back()));
  }
  for (int i = 1; i <= 30; ++i) {
    const auto& fh = fs[static_cast<std::size_t>(i - 1)];
    const auto& gh = gs[static_cast<std::size_t>(i - 1)];
    fh.wait();
    gh.wait();
    if (i % 3 == 0) {
      EXPECT_EQ(fh.state(), TaskState::kFailed) << i;
      EXPECT_EQ(testing::what_of(fh.error()), "the queue is full") << i;
      EXPECT_EQ(gh.state(), TaskState::kFailed) << i;
      EXPECT_THROW(gh.get(), DependencyFailure);
      EXPECT_EQ(testing::root_what_of(gh.error()), "the queue is full") << i;
    } else {
      EXPECT_EQ(fh.get(), i);
      EXPECT_EQ(gh.get(), i + 1);
    }
  }
  EXPECT_EQ(throwing->calls(), 30);
  EXPECT_EQ(throwing->refused_tasks(), 10u);
  EXPECT_EQ(f(31).get(), 31);  // the engine keeps running on that backend (call 31 is taken)
  EXPECT_TRUE(rig.flow->shutdown());
  const TaskCounts c = rig.telemetry->task_count();
  EXPECT_EQ(c.failed, 20);  // ten refused, and their dependents
  EXPECT_EQ(c.completed, 41);
  EXPECT_EQ(c.canceled, 0);
  EXPECT_EQ(c.submitted, 61);
  EXPECT_FALSE(rig.telemetry->losses().lost_data()) << rig.telemetry->losses().to_string();
  std::vector<AnyTask> all(fs.begin(), fs.end());
  all.insert(all.end(), gs.begin(), gs.end());
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(all, *rig.observer, &events);
}

// The engine reads a throwing submit() as "took none of the batch" and fails every task in it.
// A backend that took part of the batch first (a queue that filled up half way) still holds
// those tasks and runs them later: that run must not be a second outcome.
TEST(BackendFaults, ASubmitThatThrowsAfterTakingPartOfItsBatchEndsEachTaskOnce) {
  auto fake = testing::FakeBackend::create("held");
  auto throwing = std::make_shared<ThrowingSubmitBackend>(fake, 2, "the queue filled up", 2);
  FaultRig rig({throwing});
  std::atomic<int> ran{0};
  auto f = rig.flow->function_task("f", [&](int i) {
    ++ran;
    return i;
  });
  auto root = f(0);  // call 1: taken
  std::vector<TaskHandle<int>> dependents;
  for (int i = 0; i < 4; ++i) dependents.push_back(f(root));
  ASSERT_TRUE(fake->run_next());  // root runs; its four dependents are one batch: call 2
  EXPECT_EQ(throwing->calls(), 2);
  EXPECT_EQ(fake->held(), 2u);  // taken before the throw
  for (const auto& d : dependents) {
    EXPECT_EQ(d.state(), TaskState::kFailed);
    EXPECT_EQ(testing::what_of(d.error()), "the queue filled up");
  }
  fake->run_all();  // the backend runs what it took: the engine ignores it
  EXPECT_EQ(ran.load(), 1);
  EXPECT_TRUE(rig.flow->shutdown());
  EXPECT_EQ(rig.telemetry->task_count().failed, 4);
  EXPECT_EQ(rig.telemetry->task_count().completed, 1);
  std::vector<AnyTask> all(dependents.begin(), dependents.end());
  all.push_back(root);
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(all, *rig.observer, &events);
}

// The same fault with the handles dropped. The engine fails every task of the refused batch,
// including the two the backend had already taken; it used to free them too, and the
// backend's later run() was a heap-use-after-free (a segfault in release). The engine now
// keeps a refused batch's tasks alive until shutdown() has released the backends.
TEST(BackendFaults, ASubmitThatThrowsAfterTakingPartOfItsBatchNeverTouchesFreedTasks) {
  auto fake = testing::FakeBackend::create("held");
  auto throwing = std::make_shared<ThrowingSubmitBackend>(fake, 2, "the queue filled up", 2);
  FaultRig rig({throwing});
  auto f = rig.flow->function_task("f", [](int i) { return i; });
  auto root = f(0);
  for (int i = 0; i < 4; ++i) (void)f(root);  // fire and forget
  ASSERT_TRUE(fake->run_next());
  ASSERT_EQ(fake->held(), 2u);
  fake->run_all();  // run() on the two tasks the engine failed (and freed) meanwhile
  EXPECT_TRUE(rig.flow->shutdown());
  EXPECT_EQ(rig.telemetry->task_count().failed, 4);
  EXPECT_EQ(rig.telemetry->task_count().completed, 1);
}

TEST(BackendFaults, TasksAHungBackendHoldsEndCanceledWhenCanceled) {
  auto hang = std::make_shared<HangingBackend>(pool("pool"), "stuck", /*drop_on_shutdown=*/false);
  FaultRig rig({hang});
  auto ok = rig.flow->function_task("ok", [](int i) { return i; });
  auto stuck = rig.flow->function_task("stuck", [](int i) { return i; });
  auto after = rig.flow->function_task("after", [](int i) { return i; });
  std::vector<TaskHandle<int>> oks, stucks, afters;
  for (int i = 0; i < 5; ++i) {
    stucks.push_back(stuck(i));
    afters.push_back(after(stucks.back()));
  }
  for (int i = 0; i < 10; ++i) oks.push_back(ok(i));
  ASSERT_TRUE(hang->wait_held(5, 30s));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(oks[static_cast<std::size_t>(i)].get(), i);
  for (const auto& s : stucks) EXPECT_EQ(s.state(), TaskState::kSubmitted);
  for (const auto& s : stucks) EXPECT_TRUE(s.cancel());
  EXPECT_EQ(hang->held(), 0u);
  for (const auto& s : stucks) {
    EXPECT_EQ(s.state(), TaskState::kCanceled);
    EXPECT_THROW(s.get(), TaskCanceledError);
  }
  for (const auto& a : afters) {
    EXPECT_EQ(a.state(), TaskState::kCanceled);
    EXPECT_THROW(a.get(), DependencyFailure);
  }
  EXPECT_TRUE(rig.flow->shutdown());
  const TaskCounts c = rig.telemetry->task_count();
  EXPECT_EQ(c.completed, 10);
  EXPECT_EQ(c.canceled, 10);
  EXPECT_EQ(c.failed, 0);
  EXPECT_EQ(c.running, 0);
  std::vector<AnyTask> all(oks.begin(), oks.end());
  all.insert(all.end(), stucks.begin(), stucks.end());
  all.insert(all.end(), afters.begin(), afters.end());
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(all, *rig.observer, &events);
}

TEST(BackendFaults, ShutdownCancelsTheTasksAHungBackendDrops) {
  auto hang = std::make_shared<HangingBackend>(pool("pool"), "stuck", /*drop_on_shutdown=*/true);
  FaultRig rig({hang});
  auto stuck = rig.flow->function_task("stuck", [](int i) { return i; });
  auto ok = rig.flow->function_task("ok", [](int i) { return i; });
  std::vector<TaskHandle<int>> stucks;
  for (int i = 0; i < 5; ++i) stucks.push_back(stuck(i));
  auto fine = ok(1);
  ASSERT_TRUE(hang->wait_held(5, 30s));
  EXPECT_EQ(fine.get(), 1);
  EXPECT_TRUE(rig.flow->shutdown());
  for (const auto& s : stucks) {
    EXPECT_EQ(s.state(), TaskState::kCanceled);
    EXPECT_NE(testing::what_of(s.error()).find("by engine shutdown"), std::string::npos)
        << testing::what_of(s.error());
  }
  EXPECT_EQ(rig.telemetry->task_count().canceled, 5);
  EXPECT_EQ(rig.telemetry->task_count().completed, 1);
  std::vector<AnyTask> all(stucks.begin(), stucks.end());
  all.push_back(fine);
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(all, *rig.observer, &events);
}

// shutdown() has no timeout: it waits for every task a backend holds (Backend's contract says
// each submitted task is eventually completed). A hung backend that lets its tasks go later
// (here: release()) sees them end canceled, since the shutdown began before they started.
TEST(BackendFaults, ShutdownWaitsForAHungBackendAndItsTasksEndCanceled) {
  auto hang = std::make_shared<HangingBackend>(pool("pool"), "stuck", /*drop_on_shutdown=*/false);
  FaultRig rig({hang});
  auto stuck = rig.flow->function_task("stuck", [](int i) { return i; });
  std::vector<TaskHandle<int>> stucks;
  for (int i = 0; i < 5; ++i) stucks.push_back(stuck(i));
  ASSERT_TRUE(hang->wait_held(5, 30s));
  testing::Gate done;
  bool result = false;
  std::thread stopper([&] {
    result = rig.flow->shutdown();
    done.open();
  });
  ASSERT_TRUE(hang->shutdown_begun.wait_for(30s));
  // It cannot have returned: five tasks are still held.
  EXPECT_FALSE(done.is_open());
  EXPECT_EQ(rig.flow->active_tasks(), 5u);
  for (const auto& s : stucks) EXPECT_EQ(s.state(), TaskState::kSubmitted);
  hang->release();
  stopper.join();
  EXPECT_TRUE(result);
  for (const auto& s : stucks) {
    EXPECT_EQ(s.state(), TaskState::kCanceled);
    EXPECT_NE(testing::what_of(s.error()).find("by engine shutdown before it started"),
              std::string::npos)
        << testing::what_of(s.error());
  }
  EXPECT_EQ(rig.telemetry->task_count().canceled, 5);
  std::vector<AnyTask> all(stucks.begin(), stucks.end());
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(all, *rig.observer, &events);
}

TEST(BackendFaults, AFunctionTaskRunTwiceEndsOnceAndRunsOnce) {
  auto scripted =
      std::make_shared<ScriptedBackend>(pool("pool"), Script::kReportTwice, Where::kInnerPool);
  FaultRig rig({scripted});
  std::atomic<int> calls{0};
  auto f = rig.flow->function_task("f", [&](int i) {
    ++calls;
    return i * 2;
  });
  std::vector<TaskHandle<int>> hs;
  for (int i = 0; i < 20; ++i) hs.push_back(f(i));
  ASSERT_TRUE(scripted->wait_scripts(20, 30s));  // both run() calls of each task are over
  for (int i = 0; i < 20; ++i) EXPECT_EQ(hs[static_cast<std::size_t>(i)].get(), 2 * i);
  EXPECT_EQ(calls.load(), 20);
  EXPECT_TRUE(rig.flow->shutdown());
  EXPECT_EQ(rig.telemetry->task_count().completed, 20);
  std::vector<AnyTask> all(hs.begin(), hs.end());
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(all, *rig.observer, &events);
}

TEST(BackendFaults, ATaskReportedCompletedThenFailedStaysCompleted) {
  auto scripted = std::make_shared<ScriptedBackend>(pool("pool"), Script::kCompletedThenFailed,
                                                    Where::kInnerPool);
  FaultRig rig({scripted});
  auto f = rig.flow->function_task("f", [](int i) { return i; });
  auto run = rig.flow->executable_task("run", [](int i) { return echo(i); });
  std::vector<TaskHandle<int>> fs;
  std::vector<TaskHandle<std::string>> runs;
  for (int i = 0; i < 10; ++i) {
    fs.push_back(f(i));
    runs.push_back(run(i));
  }
  ASSERT_TRUE(scripted->wait_scripts(20, 30s));
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(fs[static_cast<std::size_t>(i)].get(), i);
    EXPECT_EQ(runs[static_cast<std::size_t>(i)].get(), "echo " + std::to_string(i) + "#1");
  }
  EXPECT_TRUE(rig.flow->shutdown());
  EXPECT_EQ(rig.telemetry->task_count().completed, 20);
  EXPECT_EQ(rig.telemetry->task_count().failed, 0);
  std::vector<AnyTask> all(fs.begin(), fs.end());
  all.insert(all.end(), runs.begin(), runs.end());
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(all, *rig.observer, &events);
}

// A second report_completed() on a finished task used to store its output anyway (before the
// finished check): get() returned "#2", and a reader of the first result read a destroyed
// string. The first report that finishes a task now claims it before its output is stored.
TEST(BackendFaults, AnExecutableReportedCompletedTwiceKeepsItsFirstResult) {
  auto scripted =
      std::make_shared<ScriptedBackend>(pool("pool"), Script::kReportTwice, Where::kInnerPool);
  FaultRig rig({scripted});
  auto run = rig.flow->executable_task("run", [](int i) { return echo(i); });
  std::vector<TaskHandle<std::string>> runs;
  for (int i = 0; i < 10; ++i) runs.push_back(run(i));
  ASSERT_TRUE(scripted->wait_scripts(10, 30s));
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(runs[static_cast<std::size_t>(i)].get(), "echo " + std::to_string(i) + "#1");
  EXPECT_TRUE(rig.flow->shutdown());
  EXPECT_EQ(rig.telemetry->task_count().completed, 10);
  std::vector<AnyTask> all(runs.begin(), runs.end());
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(all, *rig.observer, &events);
}

TEST(BackendFaults, ACompletionReportedBeforeTheStartEndsTheTaskOnce) {
  auto scripted = std::make_shared<ScriptedBackend>(pool("pool"), Script::kCompletedBeforeStarted,
                                                    Where::kInnerPool);
  FaultRig rig({scripted});
  auto run = rig.flow->executable_task("run", [](int i) { return echo(i); });
  std::vector<TaskHandle<std::string>> runs;
  for (int i = 0; i < 10; ++i) runs.push_back(run(i));
  ASSERT_TRUE(scripted->wait_scripts(10, 30s));
  for (const auto& r : runs) EXPECT_EQ(r.state(), TaskState::kDone);
  EXPECT_TRUE(rig.flow->shutdown());
  EXPECT_EQ(rig.telemetry->task_count().completed, 10);
  std::vector<AnyTask> all(runs.begin(), runs.end());
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(all, *rig.observer, &events);
}

// report_completed() on a task never reported started used to be dropped without a word: the
// task stayed SUBMITTED for ever, its get() and shutdown() waiting for it. The start is now
// reported then, and the task ends DONE. (cancel_leftovers() keeps a regression from hanging.)
TEST(BackendFaults, ACompletionReportedWithoutAStartStillEndsTheTask) {
  auto scripted = std::make_shared<ScriptedBackend>(pool("pool"), Script::kCompletedNeverStarted,
                                                    Where::kInnerPool);
  FaultRig rig({scripted});
  auto run = rig.flow->executable_task("run", [](int i) { return echo(i); });
  std::vector<TaskHandle<std::string>> runs;
  for (int i = 0; i < 5; ++i) runs.push_back(run(i));
  ASSERT_TRUE(scripted->wait_scripts(5, 30s));  // every report was made and has returned
  for (const auto& r : runs) EXPECT_TRUE(r.done()) << r.uid() << " " << static_cast<int>(r.state());
  scripted->cancel_leftovers();
  EXPECT_TRUE(rig.flow->shutdown());
  EXPECT_EQ(rig.telemetry->task_count().canceled, 0);
}

TEST(BackendFaults, AFailureReportedBeforeTheStartFailsTheTask) {
  auto scripted = std::make_shared<ScriptedBackend>(pool("pool"), Script::kFailedBeforeStarted,
                                                    Where::kThreadPerTask);
  FaultRig rig({scripted});
  auto run = rig.flow->executable_task("run", [](int i) { return echo(i); });
  std::vector<TaskHandle<std::string>> runs;
  for (int i = 0; i < 10; ++i) runs.push_back(run(i));
  for (int i = 0; i < 10; ++i) {
    const auto& r = runs[static_cast<std::size_t>(i)];
    r.wait();
    EXPECT_EQ(r.state(), TaskState::kFailed);
    EXPECT_EQ(testing::what_of(r.error()), "could not start echo " + std::to_string(i));
  }
  ASSERT_TRUE(scripted->wait_scripts(10, 30s));
  EXPECT_TRUE(rig.flow->shutdown());
  EXPECT_EQ(rig.telemetry->task_count().failed, 10);
  std::vector<AnyTask> all(runs.begin(), runs.end());
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(all, *rig.observer, &events);
}

// Every task runs and reports on a std::thread the backend made for it, so dependents are
// resolved, submitted and block bodies resumed on threads the engine has never seen.
TEST(BackendFaults, ReportsFromAThreadPerTaskKeepEveryTasksOrder) {
  auto scripted =
      std::make_shared<ScriptedBackend>(pool("pool", 1), Script::kNormal, Where::kThreadPerTask);
  FaultRig rig({scripted});
  auto leaf = rig.flow->function_task("leaf", [](int i) { return i; });
  auto add = rig.flow->function_task("add", [](int a, int b) { return a + b; });
  auto run = rig.flow->executable_task("run", [](int i) { return echo(i); });
  auto blk = rig.flow->block("blk", [&](int i) -> Task<int> {
    const int a = co_await leaf(i);
    co_return co_await add(a, co_await leaf(i));
  });
  std::vector<AnyTask> all;
  std::vector<TaskHandle<int>> sums, blocks;
  std::vector<TaskHandle<std::string>> runs;
  for (int i = 0; i < 10; ++i) {
    auto a = leaf(i);
    auto b = leaf(i + 1);
    sums.push_back(add(a, b));
    blocks.push_back(blk(i));
    runs.push_back(run(i));
    all.insert(all.end(), {a, b, sums.back(), blocks.back(), runs.back()});
  }
  for (int i = 0; i < 10; ++i) {
    const auto k = static_cast<std::size_t>(i);
    EXPECT_EQ(sums[k].get(), 2 * i + 1);
    EXPECT_EQ(blocks[k].get(), 2 * i);
    EXPECT_EQ(runs[k].get(), "echo " + std::to_string(i) + "#1");
  }
  // Per i: two leaves, an add, a run, and the block's two leaves and add.
  ASSERT_TRUE(scripted->wait_scripts(70, 30s));
  EXPECT_EQ(scripted->threads_started(), 70u);
  EXPECT_TRUE(rig.flow->shutdown());
  scripted->join_all();
  EXPECT_EQ(rig.telemetry->task_count().completed, 70);
  EXPECT_FALSE(rig.telemetry->losses().lost_data());
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(all, *rig.observer, &events);
  // Each task's events reach telemetry in causal order, whatever thread emitted them.
  std::map<std::string, std::vector<std::string>> by_task;
  for (const Event& e : events)
    if (e.task_id() && e.task_id()->rfind("task.", 0) == 0)
      by_task[*e.task_id()].push_back(e.type());
  ASSERT_EQ(by_task.size(), 70u);
  const std::vector<std::string> lifecycle = {"TaskCreated", "asyncflow.TaskResolved",
                                              "TaskSubmitted", "TaskStarted", "TaskCompleted"};
  for (const auto& [uid, types] : by_task) EXPECT_EQ(types, lifecycle) << uid;
}

}  // namespace
}  // namespace asyncflow
