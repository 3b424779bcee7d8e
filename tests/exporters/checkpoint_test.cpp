// The JSONL checkpoint file: CheckpointWriter's naming, errors and durability rules, and
// read_checkpoint() round trips, torn tails, corrupt lines and span dedup
// (docs/checkpoint-format.md).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asyncflow/common/error.hpp>
#include <asyncflow/exporters/jsonl/checkpoint_reader.hpp>
#include <asyncflow/exporters/jsonl/checkpoint_writer.hpp>
#include <asyncflow/exporters/jsonl/jsonl_format.hpp>
#include <asyncflow/telemetry/log.hpp>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/error_text.hpp"
#include "support/file_size_limit.hpp"

namespace af = asyncflow;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kEpoch = 1775068460;
const af::TraceId kTrace{0x0af1b2c3d4e5f607ull, 0x0011223344556677ull};

/// A fresh directory per test (ctest runs tests in parallel), removed afterwards.
class Checkpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("asyncflow_checkpoint_test." + std::to_string(::getpid()) + "." + info->name());
    fs::remove_all(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  /// Writes `text` verbatim as a checkpoint file and returns its path.
  fs::path write_file(const std::string& text) {
    fs::create_directories(dir_);
    fs::path p = dir_ / "manual.telemetry.jsonl";
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }

  fs::path dir_;
};

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

using asyncflow::testing::error_of;

af::Attributes task_attributes(const std::string& workflow) {
  return {{"executable", std::string("train")},
          {"task_type", std::string("function")},
          {"asyncflow.workflow_id", workflow}};
}

af::Event lifecycle(const af::EventTypePtr& type, const std::string& id, double t,
                    std::vector<af::FieldValue> values = {}) {
  return af::restore_event(type, id, t, t + 1e-6,
                           {.session_id = "asyncflow.session.0001",
                            .backend = "thread_pool",
                            .task_id = "task.000001",
                            .attributes = task_attributes("exp-1")},
                           std::move(values));
}

af::SpanData span(std::string name, std::uint64_t id, std::uint64_t parent, std::int64_t end_ns) {
  af::SpanData s;
  s.name = std::move(name);
  s.trace_id = kTrace;
  s.span_id = id;
  s.parent_span_id = parent;
  s.start_ns = 1775068460000000000;
  s.end_ns = end_ns;
  return s;
}

af::MetricsSnapshot counters(double submitted) {
  af::MetricPoint p;
  p.value = submitted;
  af::MetricPoint h;
  h.count = 2;
  h.sum = 0.5;
  af::MetricsSnapshot snap;
  snap.metrics.resize(2);
  snap.metrics[0].name = "tasks_submitted";
  snap.metrics[0].kind = af::InstrumentKind::kCounter;
  snap.metrics[0].points = {p};
  snap.metrics[1].name = "task_duration_seconds";
  snap.metrics[1].kind = af::InstrumentKind::kHistogram;
  snap.metrics[1].points = {h};
  return snap;
}

}  // namespace

TEST_F(Checkpoint, WriterCreatesTheDirectoryAndNamesTheFile) {
  af::CheckpointWriter w(dir_ / "a" / "b", "asyncflow.session.0001", kEpoch);
  EXPECT_EQ(w.path(), dir_ / "a" / "b" / "asyncflow.session.0001.1775068460.telemetry.jsonl");
  EXPECT_TRUE(w.is_open());
  EXPECT_TRUE(fs::exists(w.path()));
  EXPECT_TRUE(w.append("{\"x\": 1}\n"));
  EXPECT_TRUE(w.append(""));
  EXPECT_EQ(w.bytes_written(), 9u);
  w.close();
  w.close();  // idempotent
  EXPECT_FALSE(w.is_open());
  EXPECT_EQ(w.last_error(), "");
  EXPECT_EQ(read_all(w.path()), "{\"x\": 1}\n");
}

TEST_F(Checkpoint, ATakenNameGetsASuffixAndTheEarlierFileIsKept) {
  // The same session id started twice within one second: the earlier file is neither
  // truncated nor interleaved.
  af::CheckpointWriter first(dir_, "asyncflow.session.0001", kEpoch);
  ASSERT_TRUE(first.append("{\"first\": 1}\n"));
  af::CheckpointWriter second(dir_, "asyncflow.session.0001", kEpoch);
  af::CheckpointWriter third(dir_, "asyncflow.session.0001", kEpoch);
  EXPECT_EQ(second.path(), dir_ / "asyncflow.session.0001.1775068460-2.telemetry.jsonl");
  EXPECT_EQ(third.path(), dir_ / "asyncflow.session.0001.1775068460-3.telemetry.jsonl");
  ASSERT_TRUE(second.append("{\"second\": 2}\n"));
  first.close();
  second.close();
  third.close();
  EXPECT_EQ(read_all(first.path()), "{\"first\": 1}\n");
  EXPECT_EQ(read_all(second.path()), "{\"second\": 2}\n");
  EXPECT_EQ(read_all(third.path()), "");
}

TEST_F(Checkpoint, APlantedLinkIsNeitherFollowedNorOverwritten) {
  fs::create_directories(dir_);
  const fs::path target = dir_ / "precious.txt";
  std::ofstream(target) << "keep me";
  fs::create_symlink(target, dir_ / "s.1.telemetry.jsonl");
  af::CheckpointWriter w(dir_, "s", 1);
  EXPECT_EQ(w.path(), dir_ / "s.1-2.telemetry.jsonl");
  ASSERT_TRUE(w.append("{\"a\": 1}\n"));
  w.close();
  EXPECT_EQ(read_all(target), "keep me");
  EXPECT_TRUE(fs::is_symlink(dir_ / "s.1.telemetry.jsonl"));
}

TEST_F(Checkpoint, WriterErrorsNameThePathAndTheReason) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "regular") << "x";
  // The directory would have to be created under a regular file.
  const std::string under_file =
      error_of([&] { af::CheckpointWriter w(dir_ / "regular" / "sub", "s", kEpoch); });
  EXPECT_NE(under_file.find((dir_ / "regular" / "sub").string()), std::string::npos) << under_file;
  EXPECT_NE(under_file.find("Not a directory"), std::string::npos) << under_file;

  // The directory is a regular file.
  const std::string is_file =
      error_of([&] { af::CheckpointWriter w(dir_ / "regular", "s", kEpoch); });
  EXPECT_NE(is_file.find((dir_ / "regular").string()), std::string::npos) << is_file;

  // /proc refuses new entries, even to root (the tests run as root, so a chmod-ed directory
  // would not fail).
  const std::string proc = error_of([] { af::CheckpointWriter w("/proc/asyncflow", "s", kEpoch); });
  EXPECT_NE(proc.find("'/proc/asyncflow'"), std::string::npos) << proc;

  // The file itself cannot be created: /proc/self exists but takes no new files.
  const std::string open = error_of([&] { af::CheckpointWriter w("/proc/self", "s", 1); });
  EXPECT_NE(open.find("cannot create '/proc/self/s.1.telemetry.jsonl'"), std::string::npos) << open;

  EXPECT_NE(error_of([&] { af::CheckpointWriter w(dir_, "../escape", kEpoch); }), "(no error)");
}

using asyncflow::testing::FileSizeLimit;

TEST_F(Checkpoint, AFailedWriteCutsTheFileBackToItsLastWholeLineAndIsSticky) {
  af::CheckpointWriter w(dir_, "s", 1);
  std::string line = "{\"n\": " + std::string(92, '7') + "}\n";  // 100 bytes
  std::string two = line + line;
  std::vector<std::string> logged;
  auto previous = af::set_log_handler(
      [&](af::LogLevel, std::string_view message) { logged.emplace_back(message); });
  {
    FileSizeLimit limit(250);
    ASSERT_TRUE(w.append(two));   // 200 bytes
    EXPECT_FALSE(w.append(two));  // 50 bytes fit: the kernel writes a torn half line, then fails
  }
  af::set_log_handler(previous);
  EXPECT_NE(w.last_error().find("File too large"), std::string::npos) << w.last_error();
  EXPECT_NE(w.last_error().find(w.path().string()), std::string::npos) << w.last_error();
  EXPECT_EQ(w.bytes_written(), 200u);
  EXPECT_EQ(w.bytes_lost(), 200u);
  EXPECT_EQ(w.lines_lost(), 2u);
  // Said at once, not only at stop.
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("cut back to its last whole line"), std::string::npos) << logged[0];
  // Once failed, nothing more is written, so the file stays whole.
  EXPECT_FALSE(w.append(line));
  EXPECT_EQ(w.bytes_lost(), 300u);
  EXPECT_EQ(w.lines_lost(), 3u);
  w.close();
  EXPECT_EQ(read_all(w.path()), two);  // whole lines only: no torn half line at the end
  EXPECT_FALSE(w.append("x\n"));
}

TEST_F(Checkpoint, BlocksReservedAheadNeverShowAndAreGivenBackAtClose) {
  af::CheckpointWriter w(dir_, "s", kEpoch);
  const std::string line(999, 'x');
  std::string expected;
  for (int i = 0; i < 3000; ++i) {  // about 3 MB: several reservations
    ASSERT_TRUE(w.append(line + "\n"));
    expected += line + "\n";
    if (i % 500 == 0) {
      // Readers see exactly what was written: the reservation does not change the size.
      EXPECT_EQ(fs::file_size(w.path()), w.bytes_written());
    }
  }
  w.close();
  EXPECT_EQ(w.last_error(), "");
  EXPECT_EQ(fs::file_size(w.path()), expected.size());
  EXPECT_EQ(read_all(w.path()), expected);
  // After close, the file holds no blocks beyond its data (one 1 MiB reservation would show).
  struct stat st {};
  ASSERT_EQ(::stat(w.path().c_str(), &st), 0);
  EXPECT_LT(static_cast<std::uint64_t>(st.st_blocks) * 512, expected.size() + (256u << 10));
}

TEST_F(Checkpoint, AppendAfterCloseFails) {
  af::CheckpointWriter w(dir_, "s", kEpoch);
  w.close();
  EXPECT_FALSE(w.append("{}\n"));
  EXPECT_EQ(w.bytes_lost(), 3u);
  EXPECT_NE(w.last_error().find("closed"), std::string::npos) << w.last_error();
}

TEST_F(Checkpoint, RoundTripsEventsSpansAndMetrics) {
  auto result_type = af::define_event("experiment.Result", {{"accuracy", af::FieldType::kDouble},
                                                            {"model", af::FieldType::kString},
                                                            {"epochs", af::FieldType::kInt},
                                                            {"ok", af::FieldType::kBool}});
  std::vector<af::Event> events = {
      af::restore_event(af::events::SessionStarted(), "e0", 1775068460.0, 1775068460.0000005,
                        {.session_id = "asyncflow.session.0001", .backend = "asyncflow"}, {}),
      lifecycle(af::events::TaskCreated(), "e1", 1775068460.25),
      lifecycle(af::events::TaskResolved(), "e2", 1775068460.5),
      lifecycle(af::events::TaskFailed(), "e3", 1775068461.125, {1.5, std::string("ValueError")}),
      af::restore_event(
          af::events::ResourceUpdate(), "e4", 1775068461.5, 1775068461.5,
          {.session_id = "asyncflow.session.0001", .backend = "thread_pool", .node_id = "node-a"},
          {12.5, 40.0, std::monostate{}, std::monostate{}, 1024.0, 0.0, std::monostate{},
           std::monostate{}, std::string("per_node")}),
      af::restore_event(result_type, "e5", 1775068462.0, 1775068462.0,
                        {.session_id = "asyncflow.session.0001",
                         .backend = "pipeline",
                         .task_id = "exp-1",
                         .attributes = {{"n", std::int64_t{-3}}, {"x", std::monostate{}}}},
                        {0.93, std::string("caf\xc3\xa9 \"v2\"\n"), std::int64_t{12}, true}),
  };
  af::SpanData task = span("task", 0x2, 0x1, 1775068461125000000);
  task.status = af::SpanStatus::kError;
  task.status_description = "ValueError";
  task.attributes = {{"task_id", std::string("task.000001")}, {"attempt", std::int64_t{1}}};
  af::SpanData session = span("session", 0x1, 0, 1775068463000000000);

  af::CheckpointWriter w(dir_, "asyncflow.session.0001", kEpoch);
  std::string batch;
  for (std::size_t i = 0; i < events.size(); ++i) {
    af::jsonl::append_event_line(batch, events[i], i == 0 ? kTrace : af::TraceId{},
                                 i == 0 ? 0x1 : 0);
  }
  ASSERT_TRUE(w.append(batch));
  batch.clear();
  af::jsonl::append_metric_line(batch, 1775068463.5, counters(3));
  af::jsonl::append_span_line(batch, task);
  af::jsonl::append_span_line(batch, session);
  ASSERT_TRUE(w.append(batch));
  w.close();

  const af::Checkpoint cp = af::read_checkpoint(w.path());
  EXPECT_FALSE(cp.torn_tail);
  ASSERT_EQ(cp.events.size(), events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    const af::Event& got = cp.events[i].event;
    const af::Event& want = events[i];
    SCOPED_TRACE(want.type());
    EXPECT_EQ(got.event_id(), want.event_id());
    EXPECT_EQ(got.type(), want.type());
    EXPECT_EQ(got.event_time(), want.event_time());
    EXPECT_EQ(got.emit_time(), want.emit_time());
    EXPECT_EQ(got.session_id(), want.session_id());
    EXPECT_EQ(got.backend(), want.backend());
    EXPECT_EQ(got.task_id(), want.task_id());
    EXPECT_EQ(got.node_id(), want.node_id());
    EXPECT_EQ(got.attributes(), want.attributes());
    EXPECT_EQ(got.values(), want.values());
  }
  // Built-in types come back as the shared singletons.
  EXPECT_EQ(cp.events[1].event.event_type(), af::events::TaskCreated());
  EXPECT_EQ(cp.events[2].event.event_type(), af::events::TaskResolved());
  EXPECT_EQ(cp.events[4].event.text("resource_scope"), "per_node");
  // An unknown type is rebuilt from the line, its fields in file order.
  const auto& rebuilt = cp.events[5].event.event_type()->fields();
  ASSERT_EQ(rebuilt.size(), 4u);
  EXPECT_EQ(rebuilt[0].first, "accuracy");
  EXPECT_EQ(rebuilt[0].second.type, af::FieldType::kDouble);
  EXPECT_EQ(rebuilt[2].second.type, af::FieldType::kInt);
  EXPECT_EQ(rebuilt[3].second.type, af::FieldType::kBool);
  EXPECT_EQ(cp.events[0].trace_id, "0xaf1b2c3d4e5f6070011223344556677");
  EXPECT_EQ(cp.events[0].span_id, "0x1");
  EXPECT_EQ(cp.events[1].trace_id, std::nullopt);
  EXPECT_EQ(cp.events[1].span_id, std::nullopt);

  ASSERT_EQ(cp.metrics.size(), 1u);
  EXPECT_EQ(cp.metrics[0].checkpoint_time, 1775068463.5);
  EXPECT_EQ(cp.metrics[0].value("tasks_submitted"), 3.0);
  EXPECT_EQ(cp.metrics[0].value("task_duration_seconds_count"), 2.0);
  EXPECT_EQ(cp.metrics[0].value("task_duration_seconds_sum"), 0.5);
  EXPECT_EQ(cp.metrics[0].value("tasks_failed"), std::nullopt);
  EXPECT_EQ(cp.metrics[0].values.size(), 3u);

  ASSERT_EQ(cp.spans.size(), 2u);
  EXPECT_EQ(cp.spans[0].name, "task");
  EXPECT_EQ(cp.spans[0].trace_id, kTrace);
  EXPECT_EQ(cp.spans[0].span_id, 0x2u);
  EXPECT_EQ(cp.spans[0].parent_span_id, 0x1u);
  EXPECT_EQ(cp.spans[0].start_ns, task.start_ns);
  EXPECT_EQ(cp.spans[0].end_ns, task.end_ns);
  EXPECT_EQ(cp.spans[0].status, af::SpanStatus::kError);
  EXPECT_EQ(cp.spans[0].status_description, "ValueError");
  EXPECT_EQ(cp.spans[0].attributes, task.attributes);
  EXPECT_EQ(cp.spans[1].parent_span_id, 0u);
  EXPECT_EQ(cp.spans[1].status, af::SpanStatus::kUnset);
  EXPECT_EQ(cp.spans[1].status_description, std::nullopt);
}

TEST_F(Checkpoint, NonFiniteNumbersRoundTrip) {
  af::CheckpointWriter w(dir_, "s", kEpoch);
  std::string batch;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  af::Event e = af::restore_event(
      af::events::ResourceUpdate(), "e", 1.0, 1.0,
      {.session_id = "s", .attributes = {{"text", std::string("NaN Infinity -Infinity")}}},
      {nan, inf, -inf, std::monostate{}, std::monostate{}, std::monostate{}, std::monostate{},
       std::monostate{}, std::string("per_node")});
  af::jsonl::append_event_line(batch, e, af::TraceId{}, 0);
  ASSERT_NE(batch.find("\"cpu_percent\": NaN, \"memory_percent\": Infinity, "
                       "\"gpu_percent\": -Infinity"),
            std::string::npos)
      << batch;
  ASSERT_TRUE(w.append(batch));
  w.close();
  const af::Checkpoint cp = af::read_checkpoint(w.path());
  ASSERT_EQ(cp.events.size(), 1u);
  EXPECT_TRUE(std::isnan(cp.events[0].event.number("cpu_percent")));
  EXPECT_EQ(cp.events[0].event.number("memory_percent"), inf);
  EXPECT_EQ(cp.events[0].event.number("gpu_percent"), -inf);
  // Tokens inside strings are text.
  EXPECT_EQ(std::get<std::string>(*cp.events[0].event.attribute("text")), "NaN Infinity -Infinity");
}

TEST_F(Checkpoint, TornLastLineIsSkipped) {
  af::Event e = lifecycle(af::events::TaskStarted(), "e1", 1775068460.5);
  std::string lines;
  af::jsonl::append_event_line(lines, e, kTrace, 2);
  af::jsonl::append_event_line(lines, e, kTrace, 2);
  // A crash in the middle of the last write leaves half a line and no newline.
  const std::string torn = lines.substr(0, lines.size() - lines.size() / 4);
  const af::Checkpoint cp = af::read_checkpoint(write_file(torn));
  EXPECT_TRUE(cp.torn_tail);
  EXPECT_EQ(cp.events.size(), 1u);

  // Whole lines are not torn, with or without the final newline, and blank lines are fine.
  EXPECT_FALSE(af::read_checkpoint(write_file(lines)).torn_tail);
  EXPECT_FALSE(af::read_checkpoint(write_file(lines.substr(0, lines.size() - 1))).torn_tail);
  const af::Checkpoint blank = af::read_checkpoint(write_file("\n" + lines + "\n\n"));
  EXPECT_FALSE(blank.torn_tail);
  EXPECT_EQ(blank.events.size(), 2u);
  EXPECT_TRUE(af::read_checkpoint(write_file("")).events.empty());
}

TEST_F(Checkpoint, CorruptMiddleLineIsAnErrorWithItsLineNumber) {
  af::Event e = lifecycle(af::events::TaskStarted(), "e1", 1775068460.5);
  std::string line;
  af::jsonl::append_event_line(line, e, kTrace, 2);
  const fs::path p = write_file(line + "\n" + line.substr(0, 40) + "\n" + line);
  const std::string msg = error_of([&] { af::read_checkpoint(p); });
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;  // 1-based, blank lines counted

  // Valid JSON that is not a checkpoint line is an error too, even at the end.
  const std::string wrong = error_of(
      [&] { af::read_checkpoint(write_file(line + R"({"section": "span", "name": "x"})")); });
  EXPECT_NE(wrong.find("line 2"), std::string::npos) << wrong;
  EXPECT_NE(wrong.find("span_id"), std::string::npos) << wrong;
  const std::string no_type =
      error_of([&] { af::read_checkpoint(write_file(R"({"event_id": "a", "event_time": 1.0})")); });
  EXPECT_NE(no_type.find("line 1"), std::string::npos) << no_type;
  EXPECT_NE(no_type.find("event_type"), std::string::npos) << no_type;
  EXPECT_NE(error_of([&] {
              af::read_checkpoint(write_file(R"({"section": "other"})"));
            }).find("unknown section"),
            std::string::npos);
  EXPECT_NE(error_of([&] { af::read_checkpoint(dir_ / "missing.jsonl"); }).find("cannot open"),
            std::string::npos);
}

TEST_F(Checkpoint, RepeatedSpanSnapshotsAreDeduplicated) {
  af::SpanData a = span("task", 0x10, 0x1, 1775068461000000000);
  af::SpanData b = span("task", 0x11, 0x1, 1775068462000000000);
  std::string lines;
  af::jsonl::append_metric_line(lines, 1.0, counters(1));
  af::jsonl::append_span_line(lines, a);
  af::jsonl::append_metric_line(lines, 2.0, counters(2));
  af::jsonl::append_span_line(lines, a);
  af::jsonl::append_span_line(lines, b);
  a.attributes = {{"late", true}};  // a later snapshot carries more
  af::jsonl::append_metric_line(lines, 3.0, counters(2));
  af::jsonl::append_span_line(lines, a);
  af::jsonl::append_span_line(lines, b);
  const af::Checkpoint cp = af::read_checkpoint(write_file(lines));
  ASSERT_EQ(cp.spans.size(), 2u);
  EXPECT_EQ(cp.spans[0].span_id, 0x10u);
  EXPECT_EQ(cp.spans[0].attributes, a.attributes);
  EXPECT_EQ(cp.spans[1].span_id, 0x11u);
  ASSERT_EQ(cp.metrics.size(), 3u);
  EXPECT_EQ(cp.metrics.back().value("tasks_submitted"), 2.0);
}

TEST_F(Checkpoint, LinesWithoutSectionAreEventsAndUnknownTypesWiden) {
  // Hand-written lines as another producer might write them: no section, no ids, a backend of
  // null (the reference's TaskCreated), a custom field that is null first and int later.
  const af::Checkpoint cp = af::read_checkpoint(write_file(
      R"({"event_id": "a", "event_type": "TaskCreated", "event_time": 1.0, "emit_time": 1.5, )"
      R"("session_id": "s", "backend": null, "task_id": "t", "node_id": null, "attributes": {}})"
      "\n"
      R"({"event_id": "b", "event_type": "user.Note", "event_time": 2.0, "step": null, "w": 1})"
      "\n"
      R"({"event_id": "c", "event_type": "user.Note", "event_time": 3.0, "step": 4, "w": 1.5})"
      "\n"));
  ASSERT_EQ(cp.events.size(), 3u);
  EXPECT_EQ(cp.events[0].event.backend(), "");
  EXPECT_EQ(cp.events[0].event.emit_time(), 1.5);
  EXPECT_EQ(cp.events[1].event.emit_time(), 2.0);  // missing: event_time
  EXPECT_TRUE(std::holds_alternative<std::monostate>(cp.events[1].event.field("step")));
  EXPECT_EQ(std::get<std::int64_t>(cp.events[2].event.field("step")), 4);
  EXPECT_EQ(cp.events[2].event.number("w"), 1.5);
  const auto& widened = cp.events[2].event.event_type()->fields();
  EXPECT_EQ(widened[0].second.type, af::FieldType::kInt);
  EXPECT_TRUE(widened[0].second.nullable);
  EXPECT_EQ(widened[1].second.type, af::FieldType::kDouble);
}

TEST_F(Checkpoint, TwoLayoutsOfOneNameReadAsTwoTypes) {
  // Written by a process that defined "app.Step" twice with different field types (our
  // define_event refuses that, other tools may not): the reader keeps both.
  const af::Checkpoint cp = af::read_checkpoint(write_file(
      R"({"event_id": "b", "event_type": "app.Step", "event_time": 2.0, "s": "x", "n": 1})"
      "\n"
      R"({"event_id": "c", "event_type": "app.Step", "event_time": 3.0, "s": 1, "n": 2})"
      "\n"
      R"({"event_id": "d", "event_type": "app.Step", "event_time": 4.0, "s": "y", "n": 2.5})"
      "\n"));
  ASSERT_EQ(cp.events.size(), 3u);
  EXPECT_EQ(cp.events[0].event.text("s"), "x");
  EXPECT_EQ(std::get<std::int64_t>(cp.events[1].event.field("s")), 1);
  EXPECT_EQ(cp.events[2].event.text("s"), "y");
  EXPECT_EQ(cp.events[2].event.number("n"), 2.5);
  EXPECT_NE(cp.events[0].event.event_type(), cp.events[1].event.event_type());
  EXPECT_EQ(cp.events[0].event.type(), "app.Step");
  EXPECT_EQ(cp.events[1].event.type(), "app.Step");
}

TEST_F(Checkpoint, ACustomEventNamedLikeABuiltinIsRead) {
  // asyncflow.TaskResolved with a field of its own (our define_event refuses the name; other
  // writers may not), next to a real one.
  const af::Checkpoint cp = af::read_checkpoint(write_file(
      R"({"event_id": "a", "event_type": "asyncflow.TaskResolved", "event_time": 1.0, "task_id": "t"})"
      "\n"
      R"({"event_id": "b", "event_type": "asyncflow.TaskResolved", "event_time": 2.0, "why": "deps"})"
      "\n"
      R"({"event_id": "c", "event_type": "TaskFailed", "event_time": 3.0, "error_type": 3})"
      "\n"));
  ASSERT_EQ(cp.events.size(), 3u);
  EXPECT_EQ(cp.events[0].event.event_type(), af::events::TaskResolved());
  EXPECT_NE(cp.events[1].event.event_type(), af::events::TaskResolved());
  EXPECT_EQ(cp.events[1].event.text("why"), "deps");
  EXPECT_EQ(std::get<std::int64_t>(cp.events[2].event.field("error_type")), 3);
}

TEST_F(Checkpoint, EveryWrittenLineParsesWithNlohmann) {
  af::CheckpointWriter w(dir_, "s", kEpoch);
  std::string batch;
  af::jsonl::append_event_line(batch, lifecycle(af::events::TaskCompleted(), "e", 1.5, {0.25}),
                               kTrace, 2);
  af::Event odd =
      af::restore_event(af::events::TaskFailed(), "f", 0.0, -0.0,
                        {.session_id = std::string("\x01\"\\\n\x7f\xff", 6),
                         .attributes = {{"big", 1.7976931348623157e308},
                                        {"tiny", 5e-324},
                                        {"i", std::numeric_limits<std::int64_t>::min()}}},
                        {1e-5, std::string("caf\xc3\xa9")});
  af::jsonl::append_event_line(batch, odd, af::TraceId{~0ull, ~0ull}, ~0ull);
  af::jsonl::append_span_line(batch, span("task", 2, 1, 1775068461000000000));
  af::jsonl::append_metric_line(batch, 3.0, counters(1));
  ASSERT_TRUE(w.append(batch));
  w.close();

  std::ifstream in(w.path());
  std::string line;
  std::vector<nlohmann::ordered_json> parsed;
  while (std::getline(in, line)) {
    ASSERT_TRUE(nlohmann::ordered_json::accept(line)) << line;
    parsed.push_back(nlohmann::ordered_json::parse(line));
  }
  ASSERT_EQ(parsed.size(), 4u);
  EXPECT_EQ(parsed[0].begin().key(), "event_id");
  EXPECT_EQ(parsed[0]["section"], "event");
  EXPECT_EQ(parsed[1]["session_id"], "\x01\"\\\n\x7f\xef\xbf\xbd");  // invalid byte: U+FFFD
  EXPECT_EQ(parsed[1]["trace_id"], "0xffffffffffffffffffffffffffffffff");
  EXPECT_EQ(parsed[1]["attributes"]["big"].get<double>(), 1.7976931348623157e308);
  EXPECT_EQ(parsed[1]["attributes"]["i"].get<std::int64_t>(),
            std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(parsed[2]["section"], "span");
  EXPECT_EQ(parsed[3]["tasks_submitted"], 1);
  EXPECT_EQ(parsed[3]["section"], "metric");
}

namespace {

/// `depth` arrays, each the only element of the one around it: "[[[]]]" for 3.
std::string nested_arrays(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

/// A custom event line whose attribute "v" holds `value` (the line's own object is level 1 of
/// nesting, the attributes object level 2, so `value`'s outermost bracket is level 3).
std::string line_with_attribute(const std::string& value) {
  return R"({"event_id": "d", "event_type": "user.Deep", "event_time": 2.0, "attributes": {"v": )" +
         value + "}}";
}

}  // namespace

TEST_F(Checkpoint, ADeeplyNestedLineIsAnErrorWithItsLineNumberNotACrash) {
  // 200,000 levels once overflowed the stack: the reader rendered the value back to text
  // recursively. Each place a value can sit is tried: an attribute, an extra field, a base
  // key (whose error message quotes the value), a metric value, the line itself.
  af::Event e = lifecycle(af::events::TaskStarted(), "e1", 1775068460.5);
  std::string good;
  af::jsonl::append_event_line(good, e, kTrace, 2);
  const std::string deep = nested_arrays(200'000);
  const std::vector<std::string> deep_lines = {
      line_with_attribute(deep),
      R"({"event_id": "d", "event_type": "user.Deep", "event_time": 2.0, "attrs": )" + deep + "}",
      R"({"event_id": "d", "event_type": )" + deep + "}",
      R"({"checkpoint_time": 1.0, "tasks_submitted": )" + deep + R"(, "section": "metric"})",
      deep,
  };
  for (const std::string& bad : deep_lines) {
    SCOPED_TRACE(bad.substr(0, 80));
    const fs::path p = write_file(good + bad + "\n" + good);
    const std::string msg = error_of([&] { af::read_checkpoint(p); });
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 2: nested deeper than 256 levels"), std::string::npos) << msg;
  }
}

TEST_F(Checkpoint, NestingUpToTheLimitReadsAndOneLevelMoreIsAnError) {
  // 254 arrays inside the attributes object inside the line: 256 levels, the limit.
  const af::Checkpoint cp =
      af::read_checkpoint(write_file(line_with_attribute(nested_arrays(254)) + "\n"));
  ASSERT_EQ(cp.events.size(), 1u);
  const af::FieldValue* v = cp.events[0].event.attribute("v");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(std::get<std::string>(*v), nested_arrays(254));  // arrays are kept as JSON text

  // One more is refused, also on the last line: it is whole, valid JSON, not a torn write.
  const std::string msg = error_of(
      [&] { af::read_checkpoint(write_file(line_with_attribute(nested_arrays(255)) + "\n")); });
  EXPECT_NE(msg.find("line 1: nested deeper than 256 levels"), std::string::npos) << msg;
}

TEST_F(Checkpoint, ATornDeeplyNestedLastLineIsATornTail) {
  // A crash cut the deep last line short: like any torn tail it is skipped, and the lines
  // before it are kept.
  af::Event e = lifecycle(af::events::TaskStarted(), "e1", 1775068460.5);
  std::string good;
  af::jsonl::append_event_line(good, e, kTrace, 2);
  const std::string torn = line_with_attribute(nested_arrays(200'000)).substr(0, 300'000);
  const af::Checkpoint cp = af::read_checkpoint(write_file(good + good + torn));
  EXPECT_TRUE(cp.torn_tail);
  EXPECT_EQ(cp.events.size(), 2u);
}
