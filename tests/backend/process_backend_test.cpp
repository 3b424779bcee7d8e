// ProcessBackend through the engine, with real child processes: argv and shell modes, cwd and
// env, stdout/stderr capture, the failure causes, cancel and shutdown killing process groups,
// the process limit, lifecycle events.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <asyncflow/asyncflow.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "support/error_text.hpp"
#include "support/forked_child.hpp"
#include "support/temp_path.hpp"

namespace af = asyncflow;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using af::testing::error_of;

namespace {

using Argv = std::vector<std::string>;

std::unique_ptr<af::WorkflowEngine> process_engine(af::ProcessBackendOptions options = {}) {
  return af::WorkflowEngine::create({.backends = {af::ThreadPoolBackend::create({.threads = 2}),
                                                  af::ProcessBackend::create(std::move(options))},
                                     .work_dir = ::testing::TempDir()});
}

af::TaskOptions with_description(af::TaskDescription d) {
  return {.description = std::move(d)};
}

/// The ProcessError a handle's get() throws (fails the test when it throws something else).
template <class H>
af::ProcessError process_error_of(const H& handle) {
  try {
    handle.get();
  } catch (const af::ProcessError& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected a ProcessError, got: " << e.what();
  }
  ADD_FAILURE() << "expected a ProcessError, the task succeeded";
  return af::ProcessError("", af::ProcessError::Cause::kExitCode, -1, "");
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Alive or a zombie (a zombie has exited; only its parent has not collected it yet).
bool process_running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(ProcessBackend, ArgvIsPassedAsIsWithoutAShell) {
  auto flow = process_engine();
  auto show = flow->executable_task("show", [] {
    return Argv{"printf", "[%s]", "two words", "it's", "\"quoted\"", "$HOME", "*"};
  });
  EXPECT_EQ(show().get(), "[two words][it's][\"quoted\"][$HOME][*]");
}

TEST(ProcessBackend, ShellStringsNeedTheShellFlag) {
  auto flow = process_engine();
  auto line = [] { return std::string("echo $((40 + 2)) | tr 4 x"); };
  auto without = flow->executable_task("no_shell", line);
  const std::string message = error_of([&] { without().get(); });
  EXPECT_NE(message.find("set TaskDescription::shell = true"), std::string::npos) << message;
  EXPECT_NE(message.find("echo $((40 + 2))"), std::string::npos) << message;
  auto with = flow->executable_task("shell", line, with_description({.shell = true}));
  EXPECT_EQ(with().get(), "x2\n");
  // Quoting inside the line is the shell's: kept as written.
  auto quoted = flow->executable_task(
      "quoted", [] { return std::string("printf '[%s]' 'a  b' \"c d\""); },
      with_description({.shell = true}));
  EXPECT_EQ(quoted().get(), "[a  b][c d]");
}

TEST(ProcessBackend, BuilderRunsAfterDependenciesWithTheirValues) {
  auto flow = process_engine();
  auto word = flow->function_task("word", [] { return std::string("upstream value"); });
  auto echo = flow->executable_task("echo", [](const std::string& w, int n) {
    return Argv{"echo", w, std::to_string(n)};
  });
  auto count = flow->executable_task("count", [](const std::string& text) {
    return Argv{"printf", "%s", std::to_string(text.size())};
  });
  // Both an upstream function and an upstream executable feed a command.
  EXPECT_EQ(count(echo(word(), 7)).get(), "17");
}

TEST(ProcessBackend, CwdAndEnvironment) {
  auto flow = process_engine();
  const fs::path dir = af::testing::fresh_temp_path("cwd");
  fs::create_directories(dir);
  ::setenv("ASYNCFLOW_TEST_PARENT", "inherited", 1);
  auto where = flow->executable_task(
      "where",
      [] {
        return Argv{"/bin/sh", "-c", "pwd; echo $AF_ONE $ASYNCFLOW_TEST_PARENT"};
      },
      with_description({.cwd = dir.string(), .env = {{"AF_ONE", "1"}}}));
  EXPECT_EQ(where().get(), fs::canonical(dir).string() + "\n1 inherited\n");
  // replace_env: the given entries are the whole environment.
  auto only = flow->executable_task(
      "only", [] { return Argv{"env"}; },
      with_description({.env = {{"ONLY", "this"}}, .replace_env = true}));
  EXPECT_EQ(only().get(), "ONLY=this\n");
  fs::remove_all(dir);
}

TEST(ProcessBackend, CaptureStdioWritesFilesAndReturnsThePath) {
  auto flow = process_engine();
  auto both = flow->executable_task(
      "both",
      [] {
        return Argv{"/bin/sh", "-c", "echo to-out; echo to-err >&2"};
      },
      with_description({.capture_stdio = true}));
  auto h = both();
  const std::string path = h.get();
  EXPECT_EQ(path, (flow->work_dir() / (h.uid() + ".stdout")).string());
  EXPECT_EQ(read_file(path), "to-out\n");
  EXPECT_EQ(read_file(flow->work_dir() / (h.uid() + ".stderr")), "to-err\n");
  // Without capture the result is the text and no file is left.
  auto plain = flow->executable_task("plain", [] { return Argv{"echo", "text"}; });
  auto p = plain();
  EXPECT_EQ(p.get(), "text\n");
  EXPECT_FALSE(fs::exists(flow->work_dir() / (p.uid() + ".stdout")));
}

TEST(ProcessBackend, NonZeroExitCarriesTheCodeAndTheStderrTail) {
  auto flow = process_engine();
  auto fail = flow->executable_task("fail", [] {
    return Argv{"/bin/sh", "-c", "echo first line >&2; echo 'last words' >&2; exit 3"};
  });
  auto h = fail();
  const af::ProcessError e = process_error_of(h);
  EXPECT_EQ(e.cause(), af::ProcessError::Cause::kExitCode);
  EXPECT_EQ(e.exit_code(), 3);
  EXPECT_EQ(e.stderr_tail(), "first line\nlast words");
  const std::string what = e.what();
  EXPECT_NE(what.find("executable task 'fail' (" + h.uid() + ")"), std::string::npos) << what;
  EXPECT_NE(what.find("exited with status 3"), std::string::npos) << what;
  EXPECT_NE(what.find("last words"), std::string::npos) << what;
  EXPECT_EQ(h.state(), af::TaskState::kFailed);
}

TEST(ProcessBackend, LongStderrKeepsOnlyItsTail) {
  auto flow = process_engine();
  auto noisy = flow->executable_task("noisy", [] {
    return Argv{"/bin/sh", "-c",
                "i=0; while [ $i -lt 2000 ]; do echo line $i >&2; i=$((i+1)); done; exit 1"};
  });
  const af::ProcessError e = process_error_of(noisy());
  EXPECT_LE(e.stderr_tail().size(), 4096u);
  EXPECT_EQ(e.stderr_tail().substr(0, 5), "line ");  // starts at a whole line
  EXPECT_EQ(e.stderr_tail().substr(e.stderr_tail().size() - 9), "line 1999");
}

TEST(ProcessBackend, DeathBySignalIsNamed) {
  auto flow = process_engine();
  auto die = flow->executable_task("die", [] { return Argv{"/bin/sh", "-c", "kill -KILL $$"}; });
  const af::ProcessError e = process_error_of(die());
  EXPECT_EQ(e.cause(), af::ProcessError::Cause::kSignal);
  EXPECT_EQ(e.signal(), SIGKILL);
  EXPECT_EQ(e.exit_code(), -1);
  EXPECT_NE(std::string(e.what()).find("was killed by SIGKILL"), std::string::npos) << e.what();
}

TEST(ProcessBackend, TimeoutKillsAndSaysSo) {
  auto flow = process_engine({.kill_grace = 2s});
  auto slow = flow->executable_task(
      "slow",
      [] {
        return Argv{"sleep", "30"};
      },
      with_description({.timeout = 200ms}));
  const auto start = std::chrono::steady_clock::now();
  const af::ProcessError e = process_error_of(slow());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(e.cause(), af::ProcessError::Cause::kTimeout);
  EXPECT_EQ(e.signal(), SIGTERM);
  EXPECT_NE(std::string(e.what()).find("timed out after 0.2 s"), std::string::npos) << e.what();
}

TEST(ProcessBackend, TimeoutEscalatesToSigkillAfterTheGracePeriod) {
  auto flow = process_engine({.kill_grace = 300ms});
  auto stubborn = flow->executable_task(
      "stubborn",
      [] {
        return Argv{"/bin/sh", "-c", "trap '' TERM; sleep 30 & wait; sleep 30"};
      },
      with_description({.timeout = 100ms}));
  const auto start = std::chrono::steady_clock::now();
  const af::ProcessError e = process_error_of(stubborn());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(e.cause(), af::ProcessError::Cause::kTimeout);
  EXPECT_EQ(e.signal(), SIGKILL);
}

TEST(ProcessBackend, ProgramsThatCannotStartAreNamed) {
  auto flow = process_engine();
  auto missing = flow->executable_task("missing", [] { return Argv{"no-such-program-af"}; });
  af::ProcessError e = process_error_of(missing());
  EXPECT_EQ(e.cause(), af::ProcessError::Cause::kSpawn);
  EXPECT_EQ(e.errno_value(), ENOENT);
  EXPECT_NE(std::string(e.what()).find("no such program 'no-such-program-af' (not found in PATH)"),
            std::string::npos)
      << e.what();

  const fs::path dir = af::testing::fresh_temp_path("noexec");
  fs::create_directories(dir);
  const fs::path script = dir / "script.sh";
  std::ofstream(script) << "#!/bin/sh\necho hi\n";
  fs::permissions(script, fs::perms::owner_read | fs::perms::owner_write);
  auto noexec = flow->executable_task("noexec", [script] { return Argv{script.string()}; });
  e = process_error_of(noexec());
  EXPECT_EQ(e.errno_value(), EACCES);
  EXPECT_NE(std::string(e.what()).find("'" + script.string() + "' is not executable"),
            std::string::npos)
      << e.what();

  auto bad_cwd = flow->executable_task(
      "bad_cwd", [] { return Argv{"true"}; }, with_description({.cwd = (dir / "absent").string()}));
  e = process_error_of(bad_cwd());
  EXPECT_NE(std::string(e.what()).find("working directory '" + (dir / "absent").string() +
                                       "' does not exist"),
            std::string::npos)
      << e.what();
  fs::remove_all(dir);
}

TEST(ProcessBackend, BuilderErrorsFailTheTaskWithoutAProcess) {
  auto flow = process_engine();
  auto bad = flow->executable_task("bad", []() -> Argv { throw std::runtime_error("no input"); });
  EXPECT_THROW(
      {
        try {
          bad().get();
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "no input");
          throw;
        }
      },
      std::runtime_error);
  auto empty = flow->executable_task("empty", [] { return Argv{}; });
  EXPECT_NE(error_of([&] { empty().get(); }).find("returned an empty command"), std::string::npos);
}

TEST(ProcessBackend, CancelKillsTheWholeProcessGroup) {
  auto flow = process_engine({.kill_grace = 2s});
  const fs::path pid_file = af::testing::fresh_temp_path("grandchild.pid");
  // The child starts a grandchild and waits: both must be gone after cancel.
  auto parent = flow->executable_task("parent", [&] {
    return Argv{"/bin/sh", "-c", "sleep 300 & echo $! > " + pid_file.string() + "; wait"};
  });
  auto h = parent();
  ASSERT_TRUE(wait_for([&] { return fs::exists(pid_file) && fs::file_size(pid_file) > 0; }, 10s));
  const pid_t grandchild = std::stoi(read_file(pid_file));
  ASSERT_TRUE(process_running(grandchild));
  EXPECT_TRUE(h.cancel());
  EXPECT_THROW(h.get(), af::TaskCanceledError);
  EXPECT_EQ(h.state(), af::TaskState::kCanceled);
  EXPECT_TRUE(wait_for([&] { return !process_running(grandchild); }, 5s)) << grandchild;
  fs::remove(pid_file);
}

TEST(ProcessBackend, StraysLeftInTheGroupAreKilledWhenTheTaskExits) {
  auto flow = process_engine();
  auto leaves = flow->executable_task("leaves", [] {
    return Argv{"/bin/sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"};
  });
  const pid_t stray = std::stoi(leaves().get());
  EXPECT_TRUE(wait_for([&] { return !process_running(stray); }, 5s)) << stray;
}

TEST(ProcessBackend, ShutdownStopsRunningPrograms) {
  auto flow = process_engine({.kill_grace = 1s});
  auto sleeper = flow->executable_task("sleeper", [] { return Argv{"sleep", "300"}; });
  auto running = sleeper();
  ASSERT_TRUE(wait_for([&] { return running.state() == af::TaskState::kRunning; }, 10s));
  const auto start = std::chrono::steady_clock::now();
  flow->shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(running.state(), af::TaskState::kCanceled);
  EXPECT_NE(error_of([&] { running.get(); }).find("by engine shutdown while running"),
            std::string::npos);
}

TEST(ProcessBackend, ManyShortTasksNeverExceedTheProcessLimit) {
  constexpr std::size_t kLimit = 4;
  constexpr int kTasks = 2000;
  auto backend = af::ProcessBackend::create({.max_processes = kLimit});
  auto flow = af::WorkflowEngine::create(
      {.backends = {af::ThreadPoolBackend::create({.threads = 1}), backend},
       .work_dir = ::testing::TempDir()});
  auto tm = flow->start_telemetry();
  // Per task: TaskStarted is stamped before its spawn, TaskCompleted after its child was
  // reaped, so [started, completed] covers the child's whole life. At most kLimit such spans
  // may overlap at any moment.
  std::mutex mu;
  std::vector<std::pair<double, int>> edges;  // (time, +1 start / -1 end)
  int queued = 0;
  tm->subscribe([&](const af::Event& e) {
    if (e.backend() != "process") return;  // not the gate
    std::lock_guard lock(mu);
    if (e.type() == "TaskQueued") ++queued;
    if (e.type() == "TaskStarted") edges.emplace_back(e.event_time(), +1);
    if (e.type() == "TaskCompleted") edges.emplace_back(e.event_time(), -1);
  });
  // All tasks wait on one gate, so they reach the backend in one batch and most must queue.
  std::promise<void> open;
  auto gate = flow->function_task("gate", [f = open.get_future().share()] {
    f.wait();
    return 0;
  });
  auto g = gate();
  auto t = flow->executable_task("true", [](int) { return Argv{"/bin/true"}; });
  std::vector<af::TaskHandle<std::string>> handles;
  for (int i = 0; i < kTasks; ++i) handles.push_back(t(g));
  open.set_value();
  for (auto& h : handles) EXPECT_EQ(h.get(), "");
  EXPECT_EQ(backend->running(), 0u);
  ASSERT_TRUE(tm->flush(30));
  std::lock_guard lock(mu);
  EXPECT_GE(queued, kTasks - static_cast<int>(kLimit));
  // At equal times an end (-1) sorts first: the slot was freed before it was reused.
  std::sort(edges.begin(), edges.end());
  int alive = 0;
  int most = 0;
  for (const auto& [time, step] : edges) {
    alive += step;
    most = std::max(most, alive);
  }
  EXPECT_EQ(alive, 0);
  EXPECT_LE(most, static_cast<int>(kLimit));
  EXPECT_GE(most, 2);  // and they did run side by side
}

TEST(ProcessBackend, SpawnThreadsAreBoundedByTheProcessLimit) {
  EXPECT_EQ(af::ProcessBackend::create({.max_processes = 1})->spawn_threads(), 1u);
  EXPECT_EQ(af::ProcessBackend::create(
                {.max_processes = 4, .spawn_threads = 16, .measure_peak_memory = false})
                ->spawn_threads(),
            4u);
  const std::size_t by_default =
      af::ProcessBackend::create({.max_processes = 64, .measure_peak_memory = false})
          ->spawn_threads();
  EXPECT_GE(by_default, 2u);
  EXPECT_LE(by_default, 8u);
  // On cgroup v1 a spawning thread's children are born in its memory cgroup, so each slot has
  // a thread of its own; elsewhere peak memory does not change the number.
  const std::size_t measuring = af::ProcessBackend::create({.max_processes = 64})->spawn_threads();
  if (af::ProcessBackend::peak_memory_method().find("v1") != std::string::npos)
    EXPECT_EQ(measuring, 64u);
  else
    EXPECT_EQ(measuring, by_default);
  // Three spawners sharing one queue start every task exactly once.
  auto backend = af::ProcessBackend::create({.max_processes = 3, .spawn_threads = 3});
  ASSERT_EQ(backend->spawn_threads(), 3u);
  auto flow = af::WorkflowEngine::create({.backends = {backend}, .work_dir = ::testing::TempDir()});
  auto t = flow->executable_task("echo", [](int i) { return Argv{"echo", std::to_string(i)}; });
  std::vector<af::TaskHandle<std::string>> handles;
  for (int i = 0; i < 60; ++i) handles.push_back(t(i));
  for (int i = 0; i < 60; ++i)
    EXPECT_EQ(handles[static_cast<std::size_t>(i)].get(), std::to_string(i) + "\n");
}

TEST(ProcessBackend, LifecycleEventsAtTheRealMoments) {
  auto flow = af::WorkflowEngine::create(
      {.backends = {af::ProcessBackend::create({.name = "procs", .max_processes = 1})},
       .work_dir = ::testing::TempDir()});
  auto tm = flow->start_telemetry();
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> types;
  tm->subscribe([&](const af::Event& e) {
    if (!e.task_id()) return;
    std::lock_guard lock(mu);
    types[std::string(*e.task_id())].push_back(e.type());
    EXPECT_EQ(e.backend(), "procs");
  });
  auto hold = flow->executable_task("hold", [] { return Argv{"sleep", "0.2"}; });
  auto first = hold();
  auto second = hold();  // waits for the one slot
  first.get();
  second.get();
  ASSERT_TRUE(tm->flush(10));
  std::lock_guard lock(mu);
  const std::vector<std::string> direct{"TaskCreated", "asyncflow.TaskResolved", "TaskSubmitted",
                                        "TaskStarted", "TaskCompleted"};
  const std::vector<std::string> waited{"TaskCreated",   "asyncflow.TaskResolved",
                                        "TaskSubmitted", "TaskQueued",
                                        "TaskStarted",   "TaskCompleted"};
  EXPECT_EQ(types[first.uid()], direct);
  EXPECT_EQ(types[second.uid()], waited);
}

TEST(ProcessBackend, RoutingNeedsABackendThatRunsPrograms) {
  auto pool_only = af::WorkflowEngine::create({.work_dir = ::testing::TempDir()});
  std::string message =
      error_of([&] { pool_only->executable_task("ls", [] { return Argv{"ls"}; }); });
  EXPECT_NE(message.find("executable task 'ls'"), std::string::npos) << message;
  EXPECT_NE(message.find("ProcessBackend::create()"), std::string::npos) << message;
  auto flow = process_engine();
  message = error_of(
      [&] { flow->executable_task("ls", [] { return Argv{"ls"}; }, {.backend = "thread_pool"}); });
  EXPECT_NE(message.find("backend 'thread_pool' runs only in-process functions"), std::string::npos)
      << message;
  // Unset: the first backend that runs programs, though the default is the pool.
  auto ok = flow->executable_task("ok", [] { return Argv{"echo", "ok"}; });
  EXPECT_EQ(ok().get(), "ok\n");
}

TEST(ProcessBackend, DryRunNeitherBuildsNorRuns) {
  auto flow = af::WorkflowEngine::create(
      {.backends = {af::ThreadPoolBackend::create(), af::ProcessBackend::create()},
       .work_dir = ::testing::TempDir(),
       .dry_run = true});
  std::atomic<int> built{0};
  auto t = flow->executable_task("t", [&] {
    ++built;
    return Argv{"false"};
  });
  EXPECT_EQ(t().get(), "");
  EXPECT_EQ(built.load(), 0);
  EXPECT_NE(error_of([&] {
              flow->executable_task("x", [] { return Argv{"ls"}; }, {.backend = "thread_pool"});
            }),
            "(no error)");  // routing is checked as in the real run
}

}  // namespace

// An argument with a NUL, or an environment name with '=' (or empty), used to reach the program
// cut or as another variable; now the task fails before anything starts, saying which.
TEST(ProcessBackend, ArgumentsAndEnvironmentThatCannotBePassedFailTheTaskNamingWhy) {
  auto flow = process_engine();
  auto failure = [&](Argv argv, std::map<std::string, std::string> env) {
    auto task = flow->executable_task(
        "odd", [argv] { return argv; }, with_description({.env = std::move(env)}));
    auto handle = task();
    return error_of([&] { handle.get(); });
  };
  using namespace std::string_literals;
  const std::string nul = failure({"/bin/echo", "a\0b"s}, {});
  EXPECT_NE(nul.find("executable task 'odd'"), std::string::npos) << nul;
  EXPECT_NE(nul.find("argument 1 of its command (program '/bin/echo')"), std::string::npos) << nul;
  EXPECT_NE(nul.find("contains a NUL byte"), std::string::npos) << nul;
  const std::string eq = failure({"/bin/true"}, {{"A=B", "c"}});
  EXPECT_NE(eq.find("environment variable name 'A=B' contains '='"), std::string::npos) << eq;
  const std::string empty = failure({"/bin/true"}, {{"", "c"}});
  EXPECT_NE(empty.find("empty variable name"), std::string::npos) << empty;
  const std::string secret = failure({"/bin/true"}, {{"TOKEN", "s3cr3t\0x"s}});
  EXPECT_NE(secret.find("value of its environment variable 'TOKEN' contains a NUL"),
            std::string::npos)
      << secret;
  EXPECT_EQ(secret.find("s3cr3t"), std::string::npos) << "a value may be secret: " << secret;
}

// A task's own PATH is where its program is looked up (it used to be ours, always).
TEST(ProcessBackend, AProgramIsLookedUpInTheTasksOwnPath) {
  auto flow = process_engine();
  const fs::path bin = af::testing::fresh_temp_path("bin");
  fs::create_directories(bin);
  {
    std::ofstream script(bin / "af-only-here");
    script << "#!/bin/sh\necho found \"$@\"\n";
  }
  fs::permissions(bin / "af-only-here", fs::perms::owner_all);
  auto only_here = [](std::map<std::string, std::string> env) {
    return with_description({.env = std::move(env)});
  };
  auto found = flow->executable_task(
      "found",
      [] {
        return Argv{"af-only-here", "it"};
      },
      only_here({{"PATH", "/nonexistent:" + bin.string() + ":/usr/bin:/bin"}}));
  EXPECT_EQ(found().get(), "found it\n");
  // Without it in the task's PATH, the usual error names the program.
  auto missing = flow->executable_task(
      "missing", [] { return Argv{"af-only-here"}; }, only_here({{"PATH", "/usr/bin:/bin"}}));
  auto handle = missing();
  EXPECT_NE(
      error_of([&] { handle.get(); }).find("no such program 'af-only-here' (not found in PATH)"),
      std::string::npos);
  fs::remove_all(bin);
}

// SIGKILL of the process that runs the engine used to leave every running program alive under
// PID 1 (each child has its own process group, and nothing else stops them): now they get a
// parent-death signal. The engine runs in a forked child of this (single-threaded) test process.
TEST(ProcessBackend, ProgramsDieWithTheProcessThatStartedThem) {
  const af::testing::ForkedChild engine_process = af::testing::fork_child([](int reports) {
    auto flow = process_engine({.max_processes = 3});
    auto sleeper = flow->executable_task(
        "sleeper", [reports] { return af::testing::sleeper_writing_pid_to(reports); });
    for (int i = 0; i < 3; ++i) sleeper();
    for (;;) ::pause();  // the engine lives until the test kills this process
  });
  ASSERT_GT(engine_process.pid, 0);
  const std::vector<pid_t> sleepers = af::testing::read_pids(engine_process.reports, 3);
  ASSERT_EQ(sleepers.size(), 3u);
  for (pid_t p : sleepers) EXPECT_TRUE(process_running(p)) << p;
  af::testing::kill_child(engine_process.pid);
  for (pid_t p : sleepers) {
    EXPECT_TRUE(af::testing::wait_gone(p, 10s)) << "orphan " << p << " lives";
    ::kill(p, SIGKILL);  // when it does, it must not outlive the test
  }
}

// A negative timeout used to be accepted (and to fire at once).
TEST(ProcessBackend, ANegativeTimeoutIsAnError) {
  auto flow = process_engine();
  const std::string e = error_of([&] {
    flow->executable_task(
        "negative", [] { return Argv{"/bin/true"}; }, with_description({.timeout = -1ms}));
  });
  EXPECT_NE(e.find("timeout"), std::string::npos) << e;
  EXPECT_NE(e.find("-1 ms"), std::string::npos) << e;
}

// A symbolic link planted under a captured output file's (predictable) name was written
// through; now it is refused and the file it points to is left alone.
TEST(ProcessBackend, CapturedOutputNeverWritesThroughAPlantedSymbolicLink) {
  auto flow = process_engine();
  const fs::path target = af::testing::fresh_temp_path("target");
  { std::ofstream(target) << "precious\n"; }
  fs::create_symlink(target, flow->work_dir() / "task.000001.stdout");
  auto echo = flow->executable_task(
      "echo",
      [] {
        return Argv{"/bin/echo", "overwritten"};
      },
      with_description({.capture_stdio = true}));
  auto handle = echo();
  ASSERT_EQ(handle.uid(), "task.000001");
  const std::string e = error_of([&] { handle.get(); });
  EXPECT_NE(e.find("a symbolic link is in its place (not followed)"), std::string::npos) << e;
  EXPECT_EQ(read_file(target), "precious\n");
}
