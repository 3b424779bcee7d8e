// A busy run under default telemetry options, and a scan of its checkpoint: the checks of
// "nothing lost without a word" at 20k tasks (integration) and 1M tasks (stress).
#pragma once

#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "support/log_capture.hpp"
#include "support/temp_path.hpp"

namespace asyncflow::testing {

/// Lines of a checkpoint by kind: event lines by type, span lines by name, metric lines.
struct LineCounts {
  std::map<std::string, std::uint64_t> events;
  std::map<std::string, std::uint64_t> spans;
  std::uint64_t metrics = 0;
  std::uint64_t other = 0;
  bool ends_whole = true;
};

/// Scans a checkpoint in chunks (a 1M-task file is about 3 GB): the event type of an event line
/// sits at a fixed place after the 32-digit event id.
inline LineCounts count_lines(const std::filesystem::path& file) {
  constexpr std::string_view kEvent = "{\"event_id\": \"";
  constexpr std::size_t kTypeAt = 14 + 32 + 18;  // {"event_id": "<32 hex>", "event_type": "
  constexpr std::string_view kSpan = "{\"name\": \"";
  constexpr std::string_view kMetric = "{\"checkpoint_time\": ";
  LineCounts c;
  std::ifstream in(file, std::ios::binary);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) c.ends_whole = false;  // the last line had no newline
    if (line.rfind(kEvent, 0) == 0) {
      const std::size_t end = line.find('"', kTypeAt);
      ++c.events[line.substr(kTypeAt, end - kTypeAt)];
    } else if (line.rfind(kSpan, 0) == 0) {
      const std::size_t end = line.find('"', kSpan.size());
      ++c.spans[line.substr(kSpan.size(), end - kSpan.size())];
    } else if (line.rfind(kMetric, 0) == 0) {
      ++c.metrics;
    } else if (line.find_first_not_of(' ') != std::string::npos) {
      ++c.other;
    }
  }
  return c;
}

/// N no-op tasks under default telemetry options with a checkpoint: every task's five events
/// and its span are in the file, and summary() counts them exactly.
inline void run_and_count_everything(std::size_t n) {
  LogCapture log;
  const auto dir = testing::fresh_temp_path("busy");
  auto flow = WorkflowEngine::create({.work_dir = ::testing::TempDir(), .dry_run = true});
  auto tm = flow->start_telemetry({.checkpoint_path = dir});
  auto noop = flow->function_task("noop", [](std::size_t i) { return i; });
  {
    std::vector<TaskHandle<std::size_t>> handles;
    handles.reserve(n);
    for (std::size_t i = 0; i < n; ++i) handles.push_back(noop(i));
    for (const auto& h : handles) ASSERT_EQ(h.state(), TaskState::kDone);
  }
  EXPECT_TRUE(flow->shutdown());
  const TelemetrySummary s = tm->summary();
  EXPECT_FALSE(s.losses.lost_data()) << s.losses.to_string();
  EXPECT_EQ(s.losses.events_dropped, 0u);
  const auto count = static_cast<std::int64_t>(n);
  EXPECT_EQ(s.tasks.submitted, count);
  EXPECT_EQ(s.tasks.completed, count);
  EXPECT_EQ(s.tasks.failed, 0);
  EXPECT_EQ(s.tasks.canceled, 0);
  EXPECT_EQ(s.tasks.running, 0);
  ASSERT_TRUE(s.duration.has_value());
  EXPECT_EQ(s.duration->count, n);
  const LineCounts lines = count_lines(*tm->checkpoint_file());
  // The node poller runs by default: its samples are the only other events.
  const auto polled = lines.events.count("ResourceUpdate") ? lines.events.at("ResourceUpdate") : 0;
  EXPECT_EQ(tm->processed_events(), 5 * n + 2 + polled);
  EXPECT_TRUE(lines.ends_whole);
  for (const char* type :
       {"TaskCreated", "asyncflow.TaskResolved", "TaskSubmitted", "TaskStarted", "TaskCompleted"}) {
    EXPECT_EQ(lines.events.at(type), n) << type;
  }
  EXPECT_EQ(lines.events.at("SessionStarted"), 1u);
  EXPECT_EQ(lines.events.at("SessionEnded"), 1u);
  EXPECT_EQ(lines.events.size(), polled != 0 ? 8u : 7u);
  EXPECT_EQ(lines.spans.at("task"), n);  // no task span left "unfinished"
  EXPECT_EQ(lines.spans.at("session"), 1u);
  EXPECT_EQ(lines.metrics, 1u);
  EXPECT_EQ(lines.other, 0u);
  EXPECT_TRUE(log.lines().empty()) << log.all();
  std::filesystem::remove_all(dir);
}

}  // namespace asyncflow::testing
