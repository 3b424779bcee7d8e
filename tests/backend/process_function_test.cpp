// Registered functions on ProcessBackend's worker pool (this test binary re-executed as the
// workers): structured arguments and results, errors, crashes, cancel, timeout, the pool.
#include <gtest/gtest.h>
#include <unistd.h>

#include <asyncflow/asyncflow.hpp>
#include <asyncflow/core/registered_function.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <set>
#include <stdexcept>
#include <thread>

#include "support/error_text.hpp"

namespace af = asyncflow;
using namespace std::chrono_literals;
using af::testing::error_of;

namespace geo {
struct Point {
  double x = 0;
  double y = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Point, x, y)

struct Summary {
  std::string label;
  double length = 0;
  std::vector<Point> corners;
  int pid = 0;  // which process computed it
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Summary, label, length, corners, pid)
}  // namespace geo

namespace {

// Registered at namespace scope: the workers (this binary) register the same functions.
const auto kPerimeter = af::register_function(
    "test.perimeter", [](const std::vector<geo::Point>& corners, const std::string& label) {
      double length = 0;
      for (std::size_t i = 0; i < corners.size(); ++i) {
        const auto& a = corners[i];
        const auto& b = corners[(i + 1) % corners.size()];
        length += std::hypot(b.x - a.x, b.y - a.y);
      }
      return geo::Summary{label, length, corners, static_cast<int>(::getpid())};
    });
const auto kPid =
    af::register_function("test.pid", [](int) { return static_cast<int>(::getpid()); });
const auto kCheck = af::register_function("test.check", [](int x) {
  if (x < 0) throw std::invalid_argument("x must not be negative, got " + std::to_string(x));
  return x * 2;
});
const auto kCrashOn = af::register_function("test.crash_on", [](int x, int bad) {
  if (x == bad) std::abort();
  return x;
});
const auto kEcho =
    af::register_function("test.size", [](const std::string& s) { return s.size(); });
const auto kSleep = af::register_function("test.sleep_ms", [](int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
});

std::unique_ptr<af::WorkflowEngine> engine_with(std::shared_ptr<af::ProcessBackend> procs) {
  return af::WorkflowEngine::create(
      {.backends = {af::ThreadPoolBackend::create({.threads = 2}), std::move(procs)},
       .work_dir = ::testing::TempDir()});
}

const af::TaskOptions kInWorkers{.backend = "process"};

TEST(ProcessFunction, StructuredArgumentsAndResultsCrossTheProcessBoundary) {
  auto flow = engine_with(af::ProcessBackend::create({.function_workers = 1}));
  auto corners = flow->function_task("corners", [] {
    return std::vector<geo::Point>{{0, 0}, {3, 0}, {3, 4}, {0, 4}};
  });
  auto perimeter = flow->function_task(kPerimeter, kInWorkers);
  const geo::Summary s = perimeter(corners(), std::string("rect")).get();  // a dependency, a value
  EXPECT_EQ(s.label, "rect");
  EXPECT_DOUBLE_EQ(s.length, 14.0);
  ASSERT_EQ(s.corners.size(), 4u);
  EXPECT_DOUBLE_EQ(s.corners[2].y, 4.0);
  EXPECT_NE(s.pid, ::getpid());  // computed in a worker
}

TEST(ProcessFunction, OnAnInProcessBackendTheFunctionIsCalledDirectly) {
  auto flow = engine_with(af::ProcessBackend::create());
  auto pid = flow->function_task(kPid);  // the default backend: the thread pool
  EXPECT_EQ(pid(0).get(), ::getpid());
}

TEST(ProcessFunction, AFixedPoolOfLongLivedWorkers) {
  auto procs = af::ProcessBackend::create({.function_workers = 2});
  auto flow = engine_with(procs);
  auto pid = flow->function_task(kPid, kInWorkers);
  std::vector<af::TaskHandle<int>> handles;
  for (int i = 0; i < 40; ++i) handles.push_back(pid(i));
  std::set<int> seen;
  for (auto& h : handles) seen.insert(h.get());
  const auto live = procs->function_worker_pids();
  EXPECT_LE(seen.size(), 2u);
  EXPECT_EQ(live.size(), seen.size());
  for (pid_t p : live) EXPECT_EQ(seen.count(p), 1u) << p;
  // The same workers serve later calls.
  EXPECT_EQ(seen.count(pid(99).get()), 1u);
}

TEST(ProcessFunction, AnExceptionInTheWorkerFailsTheTaskWithItsTypeAndMessage) {
  auto flow = engine_with(af::ProcessBackend::create({.function_workers = 1}));
  auto check = flow->function_task(kCheck, kInWorkers);
  auto bad = check(-5);
  try {
    bad.get();
    ADD_FAILURE() << "expected a RemoteFunctionError";
  } catch (const af::RemoteFunctionError& e) {
    EXPECT_EQ(e.error_type(), "std::invalid_argument");
    EXPECT_EQ(e.error_message(), "x must not be negative, got -5");
    EXPECT_NE(std::string(e.what()).find("registered function 'test.check' (" + bad.uid() + ")"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(check(21).get(), 42);  // the worker lives on
}

TEST(ProcessFunction, ACrashedWorkerFailsOnlyItsTaskAndIsReplaced) {
  auto procs = af::ProcessBackend::create({.function_workers = 2});
  auto flow = engine_with(procs);
  auto crash_on = flow->function_task(kCrashOn, kInWorkers);
  std::vector<af::TaskHandle<int>> handles;
  for (int i = 0; i < 12; ++i) handles.push_back(crash_on(i, 5));
  for (int i = 0; i < 12; ++i) {
    if (i == 5) {
      try {
        handles[i].get();
        ADD_FAILURE() << "task 5 should have failed";
      } catch (const af::ProcessError& e) {
        EXPECT_EQ(e.cause(), af::ProcessError::Cause::kSignal);
        EXPECT_EQ(e.signal(), SIGABRT);
        EXPECT_NE(std::string(e.what()).find("was killed by SIGABRT while running it"),
                  std::string::npos)
            << e.what();
      }
    } else {
      EXPECT_EQ(handles[i].get(), i);
    }
  }
  EXPECT_EQ(crash_on(7, 5).get(), 7);  // still served
  EXPECT_LE(procs->function_worker_pids().size(), 2u);
}

TEST(ProcessFunction, CancelKillsTheWorkerRunningTheCall) {
  auto procs = af::ProcessBackend::create({.kill_grace = 2s, .function_workers = 1});
  auto flow = engine_with(procs);
  auto sleep = flow->function_task(kSleep, kInWorkers);
  auto long_call = sleep(60000);
  auto queued = sleep(1);  // waits behind it, then runs on the replacement
  const auto start = std::chrono::steady_clock::now();
  while (long_call.state() != af::TaskState::kRunning &&
         std::chrono::steady_clock::now() - start < 10s) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(long_call.cancel());
  EXPECT_THROW(long_call.get(), af::TaskCanceledError);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);
  EXPECT_EQ(queued.get(), 1);
}

TEST(ProcessFunction, CancelingAQueuedCallMayStartMoreWorkAtOnce) {
  auto flow = engine_with(af::ProcessBackend::create({.kill_grace = 1s, .function_workers = 1}));
  auto sleep = flow->function_task(kSleep, kInWorkers);
  auto busy = sleep(60000);  // holds the only worker
  auto queued = sleep(1);
  // The block resumes when cancel() below has reported `queued` canceled, on the canceling
  // thread, and submits a new call to the same backend from there.
  auto fallback = flow->block("fallback", [&]() -> af::Task<int> {
    try {
      co_return co_await queued;
    } catch (const af::TaskCanceledError&) {
    }
    co_return co_await sleep(2);
  });
  auto result = fallback();
  EXPECT_TRUE(queued.cancel());
  EXPECT_TRUE(busy.cancel());  // frees the worker for the fallback call
  EXPECT_EQ(result.get(), 2);
}

TEST(ProcessFunction, TimeoutKillsTheWorker) {
  auto flow = engine_with(af::ProcessBackend::create({.kill_grace = 1s, .function_workers = 1}));
  auto sleep =
      flow->function_task(kSleep, {.backend = "process", .description = {.timeout = 200ms}});
  try {
    sleep(60000).get();
    ADD_FAILURE() << "expected a timeout";
  } catch (const af::ProcessError& e) {
    EXPECT_EQ(e.cause(), af::ProcessError::Cause::kTimeout);
  }
  // The replacement worker serves the next call. Its timeout covers the worker's start, which
  // takes longer than 200 ms in a sanitizer build on a busy machine.
  auto patient = sleep.with({.backend = "process", .description = {.timeout = 60s}});
  EXPECT_EQ(patient(1).get(), 1);
}

/// Runs `n` calls on `procs` and expects each to fail with a ProcessError that `check` accepts.
void expect_every_call_fails(std::shared_ptr<af::ProcessBackend> procs, int n,
                             const std::function<void(const af::ProcessError&)>& check) {
  auto flow = engine_with(std::move(procs));
  auto call = flow->function_task(kCheck, kInWorkers);
  std::vector<af::TaskHandle<int>> handles;
  for (int i = 0; i < n; ++i) handles.push_back(call(i));
  for (auto& h : handles) {
    try {
      h.get();
      ADD_FAILURE() << "the call should have failed";
    } catch (const af::ProcessError& e) {
      check(e);
    }
  }
}

TEST(ProcessFunction, WorkersThatDieAtOnceFailEachCallAndAreReplaced) {
  // A worker command that exits before reading anything: every call is being handed to a
  // worker that is dying (or dead) while the call is sent. Each call fails with the worker's
  // exit, a replacement starts for the next, and nothing hangs.
  expect_every_call_fails(
      af::ProcessBackend::create(
          {.function_workers = 2, .worker_command = af::Command{{"/bin/sh", "-c", "exit 7"}}}),
      40, [](const af::ProcessError& e) {
        EXPECT_EQ(e.cause(), af::ProcessError::Cause::kExitCode);
        EXPECT_EQ(e.exit_code(), 7);
        EXPECT_NE(std::string(e.what()).find("exited with status 7"), std::string::npos)
            << e.what();
      });
}

TEST(ProcessFunction, AWorkerCommandThatCannotStartFailsEveryCallNamingIt) {
  // More calls than workers: the queued ones get their own start attempt (and error) as each
  // failed start leaves the pool, so none is left waiting.
  auto procs = af::ProcessBackend::create(
      {.function_workers = 2, .worker_command = af::Command{{"/nonexistent/worker", "--serve"}}});
  expect_every_call_fails(procs, 30, [](const af::ProcessError& e) {
    EXPECT_EQ(e.cause(), af::ProcessError::Cause::kSpawn);
    EXPECT_NE(std::string(e.what()).find("cannot start a worker process "
                                         "(`/nonexistent/worker --serve`): no such program "
                                         "'/nonexistent/worker'"),
              std::string::npos)
        << e.what();
  });
  EXPECT_TRUE(procs->function_worker_pids().empty());
}

TEST(ProcessFunction, AWorkerThatStopsReadingCannotStallThePool) {
  // The request (4 MiB) is far larger than the socket buffer and the worker never reads it, so
  // sending it cannot finish. The call's timeout must still fire (and kill the worker).
  auto procs = af::ProcessBackend::create(
      {.kill_grace = 1s, .function_workers = 1, .worker_command = af::Command{{"sleep", "300"}}});
  auto flow = engine_with(procs);
  auto echo = flow->function_task(kEcho, {.backend = "process", .description = {.timeout = 300ms}});
  const auto start = std::chrono::steady_clock::now();
  try {
    echo(std::string(4 << 20, 'x')).get();
    ADD_FAILURE() << "expected a timeout";
  } catch (const af::ProcessError& e) {
    EXPECT_EQ(e.cause(), af::ProcessError::Cause::kTimeout) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST(ProcessFunction, ShutdownStopsRunningCalls) {
  auto flow = engine_with(af::ProcessBackend::create({.kill_grace = 1s, .function_workers = 1}));
  auto sleep = flow->function_task(kSleep, kInWorkers);
  auto h = sleep(60000);
  const auto start = std::chrono::steady_clock::now();
  while (h.state() != af::TaskState::kRunning && std::chrono::steady_clock::now() - start < 10s) {
    std::this_thread::sleep_for(5ms);
  }
  flow->shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);
  EXPECT_EQ(h.state(), af::TaskState::kCanceled);
}

TEST(ProcessFunction, ClosuresCannotBeRoutedToWorkers) {
  auto flow = engine_with(af::ProcessBackend::create());
  const std::string message = error_of([&] {
    flow->function_task(
        "lambda", [] { return 1; }, kInWorkers);
  });
  EXPECT_NE(message.find("function task 'lambda': backend 'process' runs work in other processes"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("register_function"), std::string::npos) << message;
}

TEST(ProcessFunction, NamesAreUnique) {
  EXPECT_NE(error_of([] {
              af::register_function("test.pid", [](int) { return 0; });
            }).find("'test.pid' is already registered"),
            std::string::npos);
}

}  // namespace
