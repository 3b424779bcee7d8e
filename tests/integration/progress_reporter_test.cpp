// ProgressReporter: what a user watching a long run sees, on a log file and on a terminal.
#include <fcntl.h>
#include <pty.h>
#include <unistd.h>

#include <asyncflow/asyncflow.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace af = asyncflow;

namespace {

/// An engine with a 2-thread pool and telemetry, running `n` tasks of which `failing` throw.
void run_tasks(af::WorkflowEngine& engine, int n, int failing) {
  auto ok = engine.function_task("ok", [] { return 1; });
  auto bad = engine.function_task("bad", []() -> int { throw std::runtime_error("no"); });
  std::vector<af::TaskHandle<int>> handles;
  for (int i = 0; i < n; ++i) handles.push_back(i < failing ? bad() : ok());
  for (auto& h : handles) h.wait();
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace

TEST(ProgressReporter, ALogGetsPlainLinesAndTheFinalCounts) {
  auto engine =
      af::WorkflowEngine::create({.backends = {af::ThreadPoolBackend::create({.threads = 2})},
                                  .work_dir = ::testing::TempDir()});
  auto telemetry = engine->start_telemetry({.resource_poll_interval = 0});
  const auto path = std::filesystem::path(::testing::TempDir()) / "progress.log";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  auto progress = af::ProgressReporter::attach(*telemetry, {.fd = fd});
  run_tasks(*engine, 20, 3);
  ASSERT_TRUE(telemetry->flush());
  const af::ProgressCounts counts = progress->counts();
  EXPECT_EQ(counts.done, 17u);
  EXPECT_EQ(counts.failed, 3u);
  EXPECT_EQ(counts.canceled, 0u);
  EXPECT_EQ(counts.running, 0u);
  progress->finish();
  progress->finish();  // once only
  ::close(fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string log = text.str();
  EXPECT_EQ(log.find('\r'), std::string::npos) << "no terminal codes in a log";
  EXPECT_EQ(log.find("\x1b["), std::string::npos);
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back(), '\n');
  const std::string last = log.substr(log.rfind('\n', log.size() - 2) + 1);
  EXPECT_EQ(last.rfind("asyncflow: 17 done, 3 failed, 0 canceled, 0 running | ", 0), 0u) << log;
  EXPECT_TRUE(engine->shutdown());
}

TEST(ProgressReporter, ATerminalGetsOneLineRewrittenInPlace) {
  int master = -1;
  int slave = -1;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  auto engine =
      af::WorkflowEngine::create({.backends = {af::ThreadPoolBackend::create({.threads = 2})},
                                  .work_dir = ::testing::TempDir()});
  auto telemetry = engine->start_telemetry({.resource_poll_interval = 0});
  // No `terminal` option: the reporter finds out itself that the pty is a terminal.
  auto progress = af::ProgressReporter::attach(*telemetry, {.fd = slave, .interval_seconds = 0.05});
  run_tasks(*engine, 5, 0);
  ASSERT_TRUE(telemetry->flush());
  progress->finish();
  ::close(slave);
  const std::string screen = read_all(master);  // the pty keeps what was written
  ::close(master);
  ASSERT_FALSE(screen.empty());
  EXPECT_EQ(screen.rfind("\rasyncflow: ", 0), 0u) << "each update starts over the line";
  EXPECT_NE(screen.find("5 done, 0 failed, 0 canceled, 0 running"), std::string::npos) << screen;
  EXPECT_NE(screen.find("\x1b[K"), std::string::npos) << "the old line's tail is erased";
  // The final line ends the line (the pty turns \n into \r\n).
  EXPECT_EQ(screen.back(), '\n');
  EXPECT_TRUE(engine->shutdown());
}

TEST(ProgressReporter, ABadIntervalIsAClearError) {
  auto telemetry = af::TelemetryManager::start("s", {.resource_poll_interval = 0});
  try {
    af::ProgressReporter::attach(*telemetry, {.interval_seconds = -1});
    FAIL() << "no error";
  } catch (const af::Error& e) {
    EXPECT_NE(std::string(e.what()).find("interval_seconds"), std::string::npos) << e.what();
  }
  telemetry->stop();
}
