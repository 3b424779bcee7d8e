// ShutdownOnSignal with real signals, real child processes and a real checkpoint: Ctrl-C used to
// leave running programs alive and telemetry unflushed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <asyncflow/asyncflow.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "support/error_text.hpp"
#include "support/forked_child.hpp"
#include "support/temp_path.hpp"

namespace af = asyncflow;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<af::WorkflowEngine> process_engine() {
  return af::WorkflowEngine::create(
      {.backends = {af::ThreadPoolBackend::create({.threads = 2}),
                    af::ProcessBackend::create({.max_processes = 2, .kill_grace = 2s})},
       .work_dir = ::testing::TempDir()});
}

/// The types of the checkpoint's events for task `uid`, in order.
std::vector<std::string> lifecycle_of(const af::Checkpoint& cp, const std::string& uid) {
  std::vector<std::string> types;
  for (const auto& ce : cp.events) {
    if (ce.event.task_id() == uid) types.push_back(ce.event.type());
  }
  return types;
}

}  // namespace

TEST(ShutdownOnSignal, SigintStopsRunningProgramsAndFlushesTelemetry) {
  const auto dir = af::testing::fresh_temp_path("sigint");
  auto flow = process_engine();
  auto tm = flow->start_telemetry({.checkpoint_path = dir});
  af::ShutdownOnSignal on_signal(*flow, {.end_process = false});
  int pids[2];
  ASSERT_EQ(::pipe(pids), 0);
  auto sleeper = flow->executable_task(
      "sleeper", [fd = pids[1]] { return af::testing::sleeper_writing_pid_to(fd); });
  auto running = sleeper();
  auto done = flow->function_task("quick", [] { return 1; })();
  ASSERT_EQ(done.get(), 1);
  const std::vector<pid_t> read = af::testing::read_pids(pids[0], 1);
  const pid_t program = read.empty() ? -1 : read.front();
  ::close(pids[1]);
  ASSERT_GT(program, 0) << (running.done() ? af::testing::error_of([&] { running.get(); }) : "");
  EXPECT_EQ(on_signal.received(), 0);

  ASSERT_EQ(::kill(::getpid(), SIGINT), 0);
  ASSERT_TRUE(on_signal.wait_shutdown(60s));
  EXPECT_EQ(on_signal.received(), SIGINT);
  EXPECT_TRUE(flow->is_shut_down());
  EXPECT_EQ(running.state(), af::TaskState::kCanceled);
  EXPECT_TRUE(af::testing::process_gone(program)) << "the program " << program << " still runs";
  // Telemetry was stopped by the shutdown: the checkpoint holds the whole story.
  const af::Checkpoint cp = af::read_checkpoint(*tm->checkpoint_file());
  EXPECT_FALSE(cp.torn_tail);
  EXPECT_EQ(lifecycle_of(cp, running.uid()).back(), "TaskCanceled");
  EXPECT_EQ(lifecycle_of(cp, done.uid()).back(), "TaskCompleted");
  EXPECT_FALSE(cp.metrics.empty());
  EXPECT_FALSE(tm->losses().lost_data()) << tm->losses().to_string();
}

// The default: after the shutdown, the process ends by the signal itself, as it would have
// without the handler (a shell sees 128 + 15), its programs stopped and its checkpoint whole.
// The engine runs in a forked child of this (single-threaded) test process.
TEST(ShutdownOnSignal, SigtermEndsTheProcessByTheSignalAfterAGracefulShutdown) {
  const auto dir = af::testing::fresh_temp_path("sigterm");
  const af::testing::ForkedChild child = af::testing::fork_child([&dir](int reports) {
    auto flow = process_engine();
    auto tm = flow->start_telemetry({.checkpoint_path = dir});
    af::ShutdownOnSignal on_signal(*flow);
    auto sleeper = flow->executable_task(
        "sleeper", [reports] { return af::testing::sleeper_writing_pid_to(reports); });
    auto running = sleeper();
    running.wait();  // ended by the shutdown; then the watcher raises SIGTERM
    for (;;) ::pause();
  });
  ASSERT_GT(child.pid, 0);
  const pid_t engine_process = child.pid;
  const std::vector<pid_t> read = af::testing::read_pids(child.reports, 1);
  ASSERT_EQ(read.size(), 1u);
  const pid_t program = read.front();
  ASSERT_EQ(::kill(engine_process, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(engine_process, &status, 0), engine_process);
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_TRUE(af::testing::process_gone(program)) << "the program " << program << " still runs";
  ::kill(program, SIGKILL);
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) files.push_back(entry.path());
  ASSERT_EQ(files.size(), 1u);
  const af::Checkpoint cp = af::read_checkpoint(files.front());
  EXPECT_FALSE(cp.torn_tail);
  ASSERT_FALSE(cp.events.empty());
  EXPECT_EQ(cp.events.back().event.type(), "SessionEnded");
  const auto canceled = std::count_if(cp.events.begin(), cp.events.end(), [](const auto& ce) {
    return ce.event.type() == "TaskCanceled";
  });
  EXPECT_EQ(canceled, 1);
  EXPECT_FALSE(cp.metrics.empty()) << "the final metrics snapshot was not written";
}

void count_usr1(int) {
  static volatile sig_atomic_t count = 0;
  count = count + 1;
}

TEST(ShutdownOnSignal, IsOneAtATimeChecksItsSignalsAndRestoresThePreviousHandlers) {
  struct sigaction mine {};
  mine.sa_handler = count_usr1;
  ASSERT_EQ(::sigaction(SIGUSR1, &mine, nullptr), 0);
  auto flow = af::WorkflowEngine::create({.work_dir = ::testing::TempDir()});
  EXPECT_NE(af::testing::error_of([&] {
              af::ShutdownOnSignal bad(*flow, {.signals = {SIGKILL}});
            }).find("signal 9 cannot be handled"),
            std::string::npos);
  {
    af::ShutdownOnSignal on_signal(*flow, {.signals = {SIGUSR1}, .end_process = false});
    struct sigaction now {};
    ::sigaction(SIGUSR1, nullptr, &now);
    EXPECT_NE(now.sa_handler, &count_usr1);
    EXPECT_NE(af::testing::error_of([&] {
                af::ShutdownOnSignal second(*flow);
              }).find("another one is alive"),
              std::string::npos);
  }
  struct sigaction after {};
  ::sigaction(SIGUSR1, nullptr, &after);
  EXPECT_EQ(after.sa_handler, &count_usr1);
  EXPECT_FALSE(flow->is_shut_down());
  af::ShutdownOnSignal again(*flow, {.signals = {SIGUSR1}, .end_process = false});  // slot free
}
