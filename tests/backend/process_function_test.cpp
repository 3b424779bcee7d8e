// Registered functions on ProcessBackend's worker pool (this test binary re-executed as the
// workers): structured arguments and results, errors, crashes, cancel, timeout, the pool.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asyncflow/asyncflow.hpp>
#include <asyncflow/core/registered_function.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <set>
#include <stdexcept>
#include <thread>

#include "support/error_text.hpp"
#include "support/forked_child.hpp"

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

const auto kReadStdin = af::register_function("test.read_stdin", [](int) {
  std::string all;
  for (std::string line; std::getline(std::cin, line);) all += line;
  return all;
});
const auto kBytes =
    af::register_function("test.bytes", [](int) { return std::string("ok\xff\xfe"); });
const auto kSameDouble = af::register_function("test.same_double", [](double x) { return x; });
const auto kSameDoubles =
    af::register_function("test.same_doubles", [](std::vector<double> v) { return v; });
const auto kSameJson = af::register_function("test.same_json", [](nlohmann::json v) { return v; });
const auto kDeep = af::register_function("test.deep", [](int depth) {
  nlohmann::json v = 0;
  for (int i = 0; i < depth; ++i) v = nlohmann::json::array({std::move(v)});
  return v;
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

// The worker's stdin was its protocol socket: a function (or a program it ran) that read stdin
// took the requests meant for the worker, which then hung. Now stdin is /dev/null.
TEST(ProcessFunction, AFunctionThatReadsStdinGetsNothingAndTheWorkerServesOn) {
  auto procs = af::ProcessBackend::create({.function_workers = 1});
  auto flow = engine_with(procs);
  auto read_stdin = flow->function_task(kReadStdin, kInWorkers);
  auto pid = flow->function_task(kPid, kInWorkers);
  auto first = read_stdin(1);
  auto after = pid(2);  // sent to the same worker while the first call runs
  ASSERT_TRUE(first.wait_for(30s)) << "the worker hangs";
  EXPECT_EQ(first.get(), "");
  ASSERT_TRUE(after.wait_for(30s)) << "the worker hangs";
  EXPECT_EQ(after.get(), procs->function_worker_pids().at(0));
}

// A result string that is not UTF-8 made the worker abort (the task was told "killed by
// SIGABRT" and the worker was replaced). Now the call fails saying why; the worker lives on.
TEST(ProcessFunction, TextThatIsNotUtf8FailsTheCallNamingWhyAndTheWorkerLivesOn) {
  auto procs = af::ProcessBackend::create({.function_workers = 1});
  auto flow = engine_with(procs);
  auto bytes = flow->function_task(kBytes, kInWorkers);
  auto pid = flow->function_task(kPid, kInWorkers);
  const int worker = pid(0).get();
  try {
    bytes(1).get();
    ADD_FAILURE() << "expected a RemoteFunctionError";
  } catch (const af::RemoteFunctionError& e) {
    EXPECT_NE(e.error_message().find("the result of 'test.bytes' holds a string that is not "
                                     "valid UTF-8"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(pid(1).get(), worker);  // the same worker
  // An argument that is not UTF-8 fails in this process, before any worker sees it.
  auto size = flow->function_task(kEcho, kInWorkers);
  auto bad = size(std::string("\xc3("));
  const std::string e = error_of([&] { bad.get(); });
  EXPECT_NE(e.find("an argument of 'test.size' holds a string that is not valid UTF-8"),
            std::string::npos)
      << e;
}

// NaN and infinities became null on the way (JSON has no such numbers), and the call failed
// reading null as a double. They now travel tagged, in arguments and results, nested too.
TEST(ProcessFunction, NonFiniteNumbersCrossTheProcessBoundary) {
  auto flow = engine_with(af::ProcessBackend::create({.function_workers = 1}));
  auto same = flow->function_task(kSameDouble, kInWorkers);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(std::isnan(same(std::nan("")).get()));
  EXPECT_EQ(same(kInf).get(), kInf);
  EXPECT_EQ(same(-kInf).get(), -kInf);
  EXPECT_EQ(same(2.5).get(), 2.5);
  auto same_all = flow->function_task(kSameDoubles, kInWorkers);
  const std::vector<double> back = same_all(std::vector<double>{1.0, kInf, -0.0, -kInf}).get();
  ASSERT_EQ(back.size(), 4u);
  EXPECT_EQ(back[1], kInf);
  EXPECT_TRUE(std::signbit(back[2]));
  EXPECT_EQ(back[3], -kInf);
  // A string that looks like the tag's value, or an object that looks like a tag but is not
  // one, stays what it was.
  auto same_json = flow->function_task(kSameJson, kInWorkers);
  const nlohmann::json odd = {{"s", "nan"}, {"t", {{"$asyncflow.float", "pi"}}}, {"n", nullptr}};
  EXPECT_EQ(same_json(odd).get(), odd);
}

// A result nested beyond what the protocol carries fails the call with a message; it does not
// crash the worker (or this process reading the answer).
TEST(ProcessFunction, ResultsNestedTooDeepFailTheCallNamingTheLimit) {
  auto procs = af::ProcessBackend::create({.function_workers = 1});
  auto flow = engine_with(procs);
  auto deep = flow->function_task(kDeep, kInWorkers);
  EXPECT_EQ(deep(3).get(), nlohmann::json::parse("[[[0]]]"));
  try {
    deep(5000).get();
    ADD_FAILURE() << "expected a RemoteFunctionError";
  } catch (const af::RemoteFunctionError& e) {
    EXPECT_NE(e.error_message().find("nested deeper than 1000 levels"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(deep(1).get(), nlohmann::json::parse("[0]"));
}

// What a worker program whose main() does not call serve_if_worker() runs: the program (here
// this test body) reaches a ProcessBackend, which used to start workers of its own, each of them
// again (57 copies in 4 s). Disabled: only UnservedWorkerProgram below runs it, as a worker.
TEST(ProcessFunction, DISABLED_BodyOfAProgramThatForgetsServeIfWorker) {
  auto flow = engine_with(af::ProcessBackend::create({.function_workers = 1}));
  auto pid = flow->function_task(kPid, kInWorkers);
  std::printf("%d\n", pid(0).get());  // not reached in a worker: it exits first
}

TEST(ProcessFunction, AWorkerProgramThatForgetsServeIfWorkerFailsTheCallsSayingSo) {
  // serve_if_worker() in this binary's main() only serves when argv[1] is the worker flag, so
  // this command is a program that forgets it.
  auto procs = af::ProcessBackend::create(
      {.function_workers = 2,
       .worker_command = af::Command{{"/proc/self/exe", "--gtest_also_run_disabled_tests",
                                      "--gtest_filter=ProcessFunction.DISABLED_"
                                      "BodyOfAProgramThatForgetsServeIfWorker"}}});
  expect_every_call_fails(procs, 4, [](const af::ProcessError& e) {
    EXPECT_EQ(e.cause(), af::ProcessError::Cause::kExitCode);
    EXPECT_EQ(e.exit_code(), af::kUnservedWorkerStatus);
    EXPECT_NE(std::string(e.what()).find("the worker program did not call "
                                         "asyncflow::serve_if_worker(argc, argv) first"),
              std::string::npos)
        << e.what();
  });
}

// SIGKILL of the process that runs the engine used to leave its function workers alive under
// PID 1. The engine runs in a forked child of this (single-threaded) test process.
TEST(ProcessFunction, WorkersDieWithTheProcessThatStartedThem) {
  const af::testing::ForkedChild engine_process = af::testing::fork_child([](int reports) {
    auto procs = af::ProcessBackend::create({.function_workers = 2});
    auto flow = engine_with(procs);
    auto sleep = flow->function_task(kSleep, kInWorkers);
    auto a = sleep(300000);
    auto b = sleep(300000);
    while (procs->function_worker_pids().size() < 2) std::this_thread::sleep_for(1ms);
    for (pid_t p : procs->function_worker_pids()) af::testing::report_pid(reports, p);
    for (;;) ::pause();  // keeps the calls' handles
  });
  ASSERT_GT(engine_process.pid, 0);
  const std::vector<pid_t> workers = af::testing::read_pids(engine_process.reports, 2);
  ASSERT_EQ(workers.size(), 2u);
  af::testing::kill_child(engine_process.pid);
  for (pid_t p : workers) {
    EXPECT_TRUE(af::testing::wait_gone(p, 10s)) << "orphaned worker " << p << " lives";
    ::kill(p, SIGKILL);
  }
}

// nlohmann's get<int>() casts: a double out of range was undefined behaviour in the worker, and
// 3000000000 arrived as -1294967296, 2.9 as 2, true as 1. Arguments are now checked (inside
// vectors too: the wire-protocol fuzzer drives that) and a bad one fails the call naming what
// was expected. The parent sends each argument as its own type's JSON: a double given for an
// int parameter travels as 2.9.
TEST(ProcessFunction, ArgumentsOfTheWrongKindFailTheCallInsteadOfBeingConverted) {
  auto flow = engine_with(af::ProcessBackend::create({.function_workers = 1}));
  auto message_of = [](const auto& handle) {
    try {
      handle.get();
    } catch (const af::RemoteFunctionError& e) {
      return e.error_message();
    }
    return std::string("(no error)");
  };
  auto check = flow->function_task(kCheck, kInWorkers);  // (int x) -> 2x
  EXPECT_EQ(message_of(check(2.9)),
            "[json.exception.type_error.302] expected an integer, got number 2.9");
  EXPECT_EQ(message_of(check(1e300)),
            "[json.exception.type_error.302] expected an integer, got number 1e+300");
  EXPECT_EQ(message_of(check(3000000000LL)),
            "[json.exception.type_error.302] expected an integer in the parameter's range, got "
            "number 3000000000");
  EXPECT_EQ(message_of(check(true)),
            "[json.exception.type_error.302] expected an integer, got boolean true");
  EXPECT_EQ(check(21).get(), 42);
}
