// The whole pipeline as a user runs it: nothing lost under default options on a busy run,
// losses said where users look (log, summary, shutdown's result), shutdown refused from a
// subscriber, no cycle through a subscriber, a disk that fills up, and what events and spans
// mean (summary counts, workflow ids of custom events, block spans, observers beside
// telemetry).
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <asyncflow/asyncflow.hpp>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "support/busy_run.hpp"
#include "support/engines.hpp"
#include "support/fake_backend.hpp"
#include "support/fake_exporters.hpp"
#include "support/log_capture.hpp"
#include "support/recording_observer.hpp"
#include "support/sync.hpp"
#include "support/temp_path.hpp"

namespace asyncflow {
namespace {

using namespace std::chrono_literals;
using testing::LogCapture;

using testing::count_lines;

// The 1M version runs in the stress suite (release builds).
TEST(Pipeline, DefaultOptionsRecordEveryEventOfABusyRun) {
  testing::run_and_count_everything(20'000);
}

TEST(Pipeline, ShutdownSaysWhatTelemetryLost) {
  LogCapture log;
  auto flow = testing::pool_engine(2);
  auto failing = std::make_shared<testing::FailingExporter>();
  auto tm = flow->start_telemetry({.exporters = {failing}});
  auto t = flow->function_task("t", [](int x) { return x; });
  for (int i = 0; i < 10; ++i) t(i).get();
  EXPECT_FALSE(flow->shutdown());
  EXPECT_FALSE(flow->shutdown());  // idempotent, same answer
  const TelemetryLosses l = tm->losses();
  EXPECT_TRUE(l.lost_data());
  EXPECT_GE(l.records_not_exported, 50u);
  EXPECT_EQ(log.count("exporter failing failed"), 1u) << log.all();
  EXPECT_EQ(log.count("ended: "), 1u) << log.all();
  // Without telemetry there is nothing to lose.
  auto plain = testing::pool_engine(1);
  EXPECT_TRUE(plain->shutdown());
}

TEST(Pipeline, ShutdownFromASubscriberIsRefused) {
  LogCapture log;
  auto flow = testing::pool_engine(1);
  auto tm = flow->start_telemetry();
  testing::Gate tried;
  tm->subscribe([&, engine = flow.get()](const Event& e) {
    if (e.type() != "TaskCompleted") return;
    struct Open {
      testing::Gate& gate;
      ~Open() { gate.open(); }
    } open{tried};
    engine->shutdown();  // throws: it would wait for this very subscriber
  });
  auto t = flow->function_task("t", [] { return 1; });
  t().get();
  ASSERT_TRUE(tried.wait_for(30s));
  EXPECT_FALSE(flow->is_shut_down());
  EXPECT_TRUE(flow->shutdown());  // from an ordinary thread it works: an error is not a loss
  EXPECT_EQ(tm->subscriber_errors(), 1u);
  EXPECT_EQ(log.count("WorkflowEngine::shutdown() called from a telemetry subscriber"), 1u)
      << log.all();
}

TEST(Pipeline, ASubscriberHoldingAFactoryKeepsNeitherTheSessionNorTheEngineAlive) {
  std::weak_ptr<TelemetryManager> weak;
  {
    auto flow = testing::pool_engine(1);
    auto tm = flow->start_telemetry();
    weak = tm;
    auto t = flow->function_task("t", [] { return 1; });
    // subscriber -> factory -> engine -> session -> subscriber
    tm->subscribe([t](const Event&) { (void)t.name(); });
    t().get();
    EXPECT_TRUE(flow->shutdown());
  }
  EXPECT_TRUE(weak.expired());
}

TEST(Pipeline, AnObserverOfYourOwnSitsBesideTelemetry) {
  const auto dir = testing::fresh_temp_path("observer_beside");
  auto flow = testing::pool_engine(2);
  auto tm = flow->start_telemetry({.checkpoint_path = dir});
  auto mine = std::make_shared<testing::RecordingObserver>();
  flow->set_observer(mine);  // used to disconnect telemetry silently
  auto t = flow->function_task("t", [](int x) { return x; });
  std::vector<TaskHandle<int>> hs;
  for (int i = 0; i < 20; ++i) hs.push_back(t(i));
  for (auto& h : hs) h.get();
  EXPECT_TRUE(flow->shutdown());
  EXPECT_EQ(tm->task_count().completed, 20);
  std::size_t finished = 0;
  for (const auto& r : mine->events()) finished += r.event == "finished";
  EXPECT_EQ(finished, 20u);
  EXPECT_EQ(count_lines(*tm->checkpoint_file()).events.at("TaskCompleted"), 20u);
}

TEST(Pipeline, CustomEventsInAScopeATaskOrABlockCarryItsWorkflowId) {
  static const auto Note = define_event("test.Where", {{"where", FieldType::kString}});
  auto flow = testing::pool_engine(2);
  auto exporter = std::make_shared<testing::RecordingExporter>();
  auto tm = flow->start_telemetry({.exporters = {exporter}});
  auto note = [tm](const char* where) {
    tm->emit(Note, EventBase{.backend = "app"}, {{"where", std::string(where)}});
  };
  auto task = flow->function_task("task", [&] { note("task"); });
  auto blk = flow->block("blk", [&]() -> Task<int> {
    note("block");
    co_return 1;
  });
  std::string task_uid, block_uid;
  {
    auto scope = flow->workflow_scope("wf-x");
    note("scope");
    auto h = task();
    h.get();
    task_uid = h.uid();
    auto b = blk();
    b.get();
    block_uid = b.uid();
  }
  note("outside");
  EXPECT_TRUE(flow->shutdown());
  std::map<std::string, const Event*> by_where;
  const auto all = exporter->events();
  for (const Event& e : all)
    if (e.type() == "test.Where") by_where[e.text("where")] = &e;
  auto workflow = [](const Event& e) {
    const FieldValue* v = e.attribute("asyncflow.workflow_id");
    return v != nullptr ? std::get<std::string>(*v) : std::string("(none)");
  };
  ASSERT_EQ(by_where.size(), 4u);
  EXPECT_EQ(workflow(*by_where.at("scope")), "wf-x");
  EXPECT_EQ(by_where.at("scope")->task_id(), std::nullopt);
  EXPECT_EQ(workflow(*by_where.at("task")), "wf-x");
  EXPECT_EQ(by_where.at("task")->task_id(), task_uid);
  EXPECT_EQ(workflow(*by_where.at("block")), block_uid);  // a block body is its own workflow
  EXPECT_EQ(workflow(*by_where.at("outside")), "(none)");
}

TEST(Pipeline, ABlockSpanCarriesItsOwnUidAndItsScopeAsParent) {
  auto flow = testing::pool_engine(2);
  auto exporter = std::make_shared<testing::RecordingExporter>();
  auto tm = flow->start_telemetry({.exporters = {exporter}});
  auto inner = flow->function_task("inner", [](int x) { return x; });
  auto blk = flow->block("blk", [&](int x) -> Task<int> { co_return co_await inner(x); });
  std::string block_uid;
  {
    auto scope = flow->workflow_scope("outer");
    auto b = blk(3);
    EXPECT_EQ(b.get(), 3);
    block_uid = b.uid();
  }
  EXPECT_TRUE(flow->shutdown());
  const SpanData* block = nullptr;
  const SpanData* task = nullptr;
  const SpanData* workflow = nullptr;
  const auto spans = exporter->spans();
  for (const SpanData& s : spans) {
    if (s.name == "block") block = &s;
    if (s.name == "task") task = &s;
    if (s.name == "workflow") workflow = &s;
  }
  ASSERT_NE(block, nullptr);
  ASSERT_NE(task, nullptr);
  ASSERT_NE(workflow, nullptr);
  EXPECT_EQ(block->text("asyncflow.workflow_id"), block_uid);  // as the reference
  EXPECT_EQ(block->text("asyncflow.parent_workflow_id"), "outer");
  EXPECT_EQ(block->parent_span_id, workflow->span_id);
  EXPECT_EQ(task->text("asyncflow.workflow_id"), block_uid);
  EXPECT_EQ(task->parent_span_id, block->span_id);
}

TEST(Pipeline, ABackendThatFailsEveryTaskIsRecordedAsSuch) {
  auto failing = std::make_shared<testing::FailingBackend>("flaky", "the node went away");
  auto flow = testing::engine_with({failing});
  auto tm = flow->start_telemetry();
  auto f = flow->function_task("f", [](int x) { return x; });
  auto g = flow->function_task("g", [](int x) { return x; });
  std::vector<TaskHandle<int>> dependents;
  for (int i = 0; i < 5; ++i) dependents.push_back(g(f(i)));
  for (auto& d : dependents) EXPECT_THROW(d.get(), DependencyFailure);
  EXPECT_TRUE(flow->shutdown());
  const TaskCounts c = tm->task_count();
  EXPECT_EQ(c.failed, 10);  // the five f, and their dependents
  EXPECT_EQ(c.submitted, 10);
  int failed_f = 0;
  for (const TaskSpanInfo& t : tm->task_spans()) {
    if (t.executable != "f") continue;
    EXPECT_EQ(t.error_type, "std::runtime_error");
    ++failed_f;
  }
  EXPECT_EQ(failed_f, 5);
}

TEST(Pipeline, SummaryCountsAddUpWhenDependenciesFail) {
  auto flow = testing::pool_engine(2);
  auto tm = flow->start_telemetry();
  auto bad = flow->function_task("bad", []() -> int { throw std::runtime_error("no"); });
  auto use = flow->function_task("use", [](int x) { return x; });
  auto ok = flow->function_task("ok", [] { return 1; });
  auto failed = bad();
  std::vector<TaskHandle<int>> dependents;
  for (int i = 0; i < 3; ++i) dependents.push_back(use(failed));
  for (auto& d : dependents) EXPECT_THROW(d.get(), DependencyFailure);
  ok().get();
  EXPECT_TRUE(flow->shutdown());
  const TaskCounts c = tm->task_count();
  // The seed's summary: {'submitted': 200, 'completed': 197, 'failed': 2, 'canceled': 1, ...}
  EXPECT_EQ(c.failed, 4);  // bad and its three dependents, which never reached a backend
  EXPECT_EQ(c.completed, 1);
  EXPECT_EQ(c.submitted, c.completed + c.failed + c.canceled + c.running);
}

/// A tmpfs of `bytes` at `dir` for the scope: a disk that fills up. Mounting needs privileges
/// the tests have as root; elsewhere the test says it skips.
class SmallDisk {
 public:
  SmallDisk(const std::filesystem::path& dir, std::size_t bytes) : dir_(dir) {
    std::filesystem::create_directories(dir);
    const std::string options = "size=" + std::to_string(bytes);
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
};

TEST(Pipeline, ADiskThatFillsUpIsSaidAtOnceAndLeavesWholeLines) {
  const auto dir = testing::fresh_temp_path("small_disk");
  SmallDisk disk(dir, 1536 * 1024);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  LogCapture log;
  auto flow = WorkflowEngine::create({.work_dir = ::testing::TempDir(), .dry_run = true});
  auto tm = flow->start_telemetry({.checkpoint_path = dir});
  auto noop = flow->function_task("noop", [](int i) { return i; });
  // About 3 KB per task: 4,000 tasks need 12 MB, the disk has 1.5 MiB (the checkpoint's first
  // 1 MiB write fits, the second does not).
  for (int i = 0; i < 4000; ++i) noop(i);
  EXPECT_FALSE(tm->flush());  // the failure shows before the session ends
  EXPECT_GE(log.count("No space left on device; the file was cut back to its last whole line"), 1u)
      << log.all();
  EXPECT_FALSE(flow->shutdown());
  const TelemetryLosses l = tm->losses();
  EXPECT_GT(l.records_not_exported, 0u);
  EXPECT_NE(l.last_error.find("No space left on device"), std::string::npos) << l.last_error;
  // The file holds whole lines only: pandas (and our reader) read what was written.
  const Checkpoint cp = read_checkpoint(*tm->checkpoint_file());
  EXPECT_FALSE(cp.torn_tail);
  EXPECT_GT(cp.events.size(), 100u);
  EXPECT_TRUE(count_lines(*tm->checkpoint_file()).ends_whole);
}

}  // namespace
}  // namespace asyncflow
