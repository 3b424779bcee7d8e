// Checkpoint faults: the directory removed mid-run, a disk full from the start or filling up
// mid-run (a 1 MiB tmpfs), a disk asked to become read-only mid-run. The run completes, the
// lines already written stay whole (read back with read_checkpoint()), and every record the
// file does not hold is counted: lines in the file + records_not_exported = records offered.
//
// /dev/full cannot stand in for a full disk here: the checkpoint is always a new file, created
// with O_EXCL | O_NOFOLLOW in its directory, so no path can point it at a device.
#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>
#include <cerrno>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "fault/fault_rig.hpp"
#include "fault/terminal_states.hpp"
#include "support/busy_run.hpp"
#include "support/log_capture.hpp"
#include "support/temp_path.hpp"
#include "support/tmpfs_mount.hpp"

namespace asyncflow {
namespace {

using testing::FaultRig;
using testing::LogCapture;
using testing::run_tasks;
using testing::TmpfsMount;
using testing::two_threads;

constexpr std::size_t kDiskBytes = 1 << 20;

std::uint64_t records_offered(const testing::RecordingExporter& e) {
  return e.events().size() + e.spans().size() + e.metrics().size();
}

/// Checkpoint lines (events, spans, metric snapshots) in `file`; every line must be one.
std::uint64_t lines_in(const std::filesystem::path& file) {
  const testing::LineCounts c = testing::count_lines(file);
  EXPECT_TRUE(c.ends_whole) << file;
  EXPECT_EQ(c.other, 0u) << file;
  std::uint64_t n = c.metrics;
  for (const auto& [type, count] : c.events) n += count;
  for (const auto& [name, count] : c.spans) n += count;
  return n;
}

// A checkpoint whose directory is removed while the session runs was written on to the
// unlinked file and vanished at close without a word (shutdown() true, "nothing lost"). The
// writer now sees st_nlink 0 at close and counts every line of it as lost, naming the file.
TEST(CheckpointFaults, ACheckpointWhoseDirectoryIsRemovedMidRunIsReportedLost) {
  LogCapture log;
  const auto dir = testing::fresh_temp_path("removed");
  FaultRig rig(two_threads(), {.checkpoint_path = dir});
  const std::filesystem::path file = *rig.telemetry->checkpoint_file();
  auto tasks = run_tasks(*rig.flow, 20);
  ASSERT_TRUE(rig.telemetry->flush());
  ASSERT_TRUE(std::filesystem::exists(file));
  std::filesystem::remove_all(dir);
  const auto more = run_tasks(*rig.flow, 20);
  tasks.insert(tasks.end(), more.begin(), more.end());
  const bool kept = rig.flow->shutdown();
  testing::expect_one_terminal_state_each(tasks, *rig.observer);
  ASSERT_FALSE(std::filesystem::exists(file));
  const TelemetryLosses l = rig.telemetry->losses();
  EXPECT_FALSE(kept);
  EXPECT_TRUE(l.lost_data()) << l.to_string();
  EXPECT_EQ(l.records_not_exported, records_offered(*rig.exporter));
  EXPECT_NE(l.last_error.find(file.filename().string()), std::string::npos) << l.last_error;
  EXPECT_GE(log.lines().size(), 1u);
}

TEST(CheckpointFaults, ADiskFullFromTheStartLosesEveryLineAndSaysSo) {
  const auto dir = testing::fresh_temp_path("full_disk");
  TmpfsMount disk(dir, kDiskBytes);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  ASSERT_GT(disk.fill(), kDiskBytes / 2);
  LogCapture log;
  FaultRig rig(two_threads(), {.checkpoint_path = dir});
  const auto tasks = run_tasks(*rig.flow, 100);
  EXPECT_FALSE(rig.flow->shutdown());
  const TelemetryLosses l = rig.telemetry->losses();
  EXPECT_EQ(l.records_not_exported, records_offered(*rig.exporter));
  EXPECT_NE(l.last_error.find("No space left on device"), std::string::npos) << l.last_error;
  EXPECT_EQ(rig.telemetry->summary().losses.records_not_exported, l.records_not_exported);
  EXPECT_GE(log.count("No space left on device"), 1u) << log.all();
  EXPECT_EQ(log.count(" ended: "), 1u) << log.all();
  const std::filesystem::path file = *rig.telemetry->checkpoint_file();
  EXPECT_EQ(std::filesystem::file_size(file), 0u);
  const Checkpoint cp = read_checkpoint(file);
  EXPECT_TRUE(cp.events.empty());
  EXPECT_FALSE(cp.torn_tail);
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(tasks, *rig.observer, &events);
}

TEST(CheckpointFaults, ADiskThatFillsMidRunKeepsTheWrittenLinesWholeAndCountsTheRest) {
  const auto dir = testing::fresh_temp_path("filling_disk");
  TmpfsMount disk(dir, kDiskBytes);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  LogCapture log;
  FaultRig rig(two_threads(), {.checkpoint_path = dir});
  const std::filesystem::path file = *rig.telemetry->checkpoint_file();
  auto tasks = run_tasks(*rig.flow, 30);
  ASSERT_TRUE(rig.telemetry->flush());  // about 100 KB, on the disk
  const std::uint64_t before = lines_in(file);
  ASSERT_GT(before, 150u);
  ASSERT_GT(disk.fill(), 0u);                   // another program takes the rest of the disk
  const auto more = run_tasks(*rig.flow, 200);  // about 700 KB more
  tasks.insert(tasks.end(), more.begin(), more.end());
  EXPECT_FALSE(rig.flow->shutdown());
  const TelemetryLosses l = rig.telemetry->losses();
  const std::uint64_t kept = lines_in(file);
  EXPECT_GE(kept, before);  // what was written stays
  EXPECT_GT(l.records_not_exported, 0u);
  EXPECT_EQ(kept + l.records_not_exported, records_offered(*rig.exporter));
  EXPECT_NE(l.last_error.find("No space left on device"), std::string::npos) << l.last_error;
  EXPECT_GE(log.count("No space left on device; the file was cut back to its last whole line"), 1u)
      << log.all();
  const Checkpoint cp = read_checkpoint(file);  // throws on a torn line in the middle
  EXPECT_FALSE(cp.torn_tail);
  EXPECT_GE(cp.events.size(), before - 30);  // at most the 30 span lines were not events
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(tasks, *rig.observer, &events);
}

// "Read-only mid-run" cannot happen to an open checkpoint: Linux refuses to remount a file
// system read-only (EBUSY) while a file on it is open for writing, and root's writes ignore a
// chmod 0555 of the directory. So the run loses nothing; once the file is closed the remount
// works, and a session that wants a new checkpoint there is refused at start, the engine
// untouched.
TEST(CheckpointFaults, ADiskMadeReadOnlyMidRunIsRefusedByTheKernelAndLosesNothing) {
  const auto dir = testing::fresh_temp_path("read_only_disk");
  TmpfsMount disk(dir, kDiskBytes);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  LogCapture log;
  FaultRig rig(two_threads(), {.checkpoint_path = dir});
  const std::filesystem::path file = *rig.telemetry->checkpoint_file();
  auto tasks = run_tasks(*rig.flow, 20);
  ASSERT_TRUE(rig.telemetry->flush());
  EXPECT_EQ(disk.remount_read_only(), EBUSY);
  const auto more = run_tasks(*rig.flow, 20);
  tasks.insert(tasks.end(), more.begin(), more.end());
  EXPECT_TRUE(rig.flow->shutdown());
  EXPECT_FALSE(rig.telemetry->losses().lost_data()) << rig.telemetry->losses().to_string();
  EXPECT_EQ(lines_in(file), records_offered(*rig.exporter));
  EXPECT_TRUE(log.lines().empty()) << log.all();
  const auto events = rig.exporter->events();
  testing::expect_one_terminal_state_each(tasks, *rig.observer, &events);

  ASSERT_EQ(disk.remount_read_only(), 0);  // the checkpoint is closed now
  auto next = testing::pool_engine(1);
  try {
    next->start_telemetry({.checkpoint_path = dir});
    ADD_FAILURE() << "a checkpoint was created on a read-only file system";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Read-only file system"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(dir.string()), std::string::npos) << e.what();
  }
  auto f = next->function_task("f", [](int i) { return i; });
  EXPECT_EQ(f(3).get(), 3);
  EXPECT_TRUE(next->shutdown());
}

}  // namespace
}  // namespace asyncflow
