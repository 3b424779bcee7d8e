// The engine wired to telemetry: lifecycle events, workflow ids, the span tree of the seed's
// example, summary numbers, emit from inside tasks, the checkpoint file.
#include <gtest/gtest.h>

#include <algorithm>
#include <asyncflow/asyncflow.hpp>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "support/engines.hpp"
#include "support/temp_path.hpp"

namespace asyncflow {
namespace {

using testing::pool_engine;

struct Recorder {
  std::mutex mu;
  std::vector<Event> seen;
  std::vector<Event> of(const std::string& task_id) {
    std::lock_guard lock(mu);
    std::vector<Event> out;
    for (const auto& e : seen)
      if (e.task_id() == task_id) out.push_back(e);
    return out;
  }
  std::vector<std::string> types_of(const std::string& task_id) {
    std::vector<std::string> t;
    for (const auto& e : of(task_id)) t.push_back(e.type());
    return t;
  }
};

std::shared_ptr<Recorder> record(TelemetryManager& tm) {
  auto rec = std::make_shared<Recorder>();
  tm.subscribe([rec](const Event& e) {
    std::lock_guard lock(rec->mu);
    rec->seen.push_back(e);
  });
  return rec;
}

std::string text_attr(const Event& e, const char* key) {
  const FieldValue* v = e.attribute(key);
  return v != nullptr && std::holds_alternative<std::string>(*v) ? std::get<std::string>(*v) : "";
}

TEST(EngineTelemetry, LifecycleEventsInOrderWithTheRealBackend) {
  auto flow = WorkflowEngine::create(
      {.backends = {ThreadPoolBackend::create({.name = "cpu"})}, .work_dir = ::testing::TempDir()});
  auto tm = flow->start_telemetry();
  auto rec = record(*tm);
  auto one = flow->function_task("one", [] { return 1; });
  auto add = flow->function_task("add", [](int a) { return a + 1; });
  auto a = one();
  auto b = add(a);
  EXPECT_EQ(b.get(), 2);
  flow->shutdown();
  EXPECT_FALSE(tm->running());

  const std::vector<std::string> expected_a = {"TaskCreated",   "asyncflow.TaskResolved",
                                               "TaskSubmitted", "TaskQueued",
                                               "TaskStarted",   "TaskCompleted"};
  auto ta = rec->types_of(a.uid());
  // TaskQueued is reported by the pool when the task waits in its queue.
  ta.erase(std::remove(ta.begin(), ta.end(), "TaskQueued"), ta.end());
  auto expected = expected_a;
  expected.erase(expected.begin() + 3);
  EXPECT_EQ(ta, expected);
  for (const Event& e : rec->of(a.uid())) {
    EXPECT_EQ(e.backend(), "cpu") << e.type();
    EXPECT_EQ(e.session_id(), flow->uid());
    EXPECT_EQ(text_attr(e, "executable"), "one");
    EXPECT_EQ(text_attr(e, "task_type"), "function");
  }
  // b resolved only after a completed; its TaskCreated lists the dependency.
  auto eb = rec->of(b.uid());
  ASSERT_FALSE(eb.empty());
  EXPECT_EQ(text_attr(eb.front(), "depends_on"), a.uid());
  double a_done = 0;
  double b_resolved = 0;
  for (const Event& e : rec->of(a.uid()))
    if (e.type() == "TaskCompleted") a_done = e.event_time();
  for (const Event& e : eb)
    if (e.type() == "asyncflow.TaskResolved") b_resolved = e.event_time();
  EXPECT_GE(b_resolved, a_done);
  for (const Event& e : rec->of(a.uid())) {
    if (e.type() == "TaskCompleted") {
      EXPECT_GE(e.number("duration_seconds"), 0.0);
    }
  }
}

TEST(EngineTelemetry, FailuresAndCancelsCarryTheirCause) {
  auto flow = pool_engine(2);
  auto tm = flow->start_telemetry();
  auto rec = record(*tm);
  auto bad = flow->function_task("bad", []() -> int { throw std::invalid_argument("no input"); });
  auto use = flow->function_task("use", [](int v) { return v; });
  std::promise<void> gate;
  auto gated = gate.get_future().share();
  auto wait = flow->function_task("wait", [gated] { gated.wait(); });
  auto later = flow->function_task("later", [](Unit) {});
  auto f = bad();
  auto d = use(f);
  auto w = wait();
  auto pending = later(w);
  pending.cancel();
  gate.set_value();
  EXPECT_THROW(d.get(), DependencyFailure);
  w.get();
  flow->shutdown();

  auto failed = rec->of(f.uid());
  ASSERT_FALSE(failed.empty());
  const Event& fe = failed.back();
  EXPECT_EQ(fe.type(), "TaskFailed");
  EXPECT_EQ(fe.text("error_type"), "std::invalid_argument");
  EXPECT_EQ(text_attr(fe, "error_message"), "no input");
  EXPECT_EQ(rec->of(d.uid()).back().text("error_type"), "asyncflow::DependencyFailure");
  const auto canceled = rec->of(pending.uid());
  ASSERT_FALSE(canceled.empty());
  EXPECT_EQ(canceled.back().type(), "TaskCanceled");
  EXPECT_NE(canceled.back().attribute("incomplete_lifecycle"), nullptr);
  EXPECT_EQ(tm->task_count().running, 0);
}

// The seed's hierarchy: session → workflow(etl-run-42) → 3 tasks; session → block → 3 tasks;
// one ungrouped task under the session; one trace.
TEST(EngineTelemetry, SpanTreeSessionWorkflowBlockTask) {
  auto flow = pool_engine(2);
  auto tm = flow->start_telemetry();
  auto ingest = flow->function_task("ingest", [](std::string s) { return s.size(); });
  auto validate = flow->function_task("validate", [](std::size_t n) { return n > 0; });
  auto report = flow->function_task("report", [](bool ok) { return ok ? 1 : 0; });
  auto step = flow->function_task("step", [](int x) { return x + 1; });
  auto pipeline = flow->block("pipeline_block", [&](int x) -> Task<int> {
    int a = co_await step(x);
    int b = co_await step(a);
    co_return co_await step(b);
  });
  std::string workflow_task;
  {
    auto scope = flow->workflow_scope("etl-run-42");
    auto r = report(validate(ingest(std::string("source.csv"))));
    EXPECT_EQ(r.get(), 1);
    workflow_task = r.uid();
  }
  auto blk = pipeline(0);
  EXPECT_EQ(blk.get(), 3);
  auto loose = step(41);
  EXPECT_EQ(loose.get(), 42);
  flow->shutdown();

  auto spans = tm->read_traces();
  std::map<std::uint64_t, const SpanData*> by_id;
  for (const auto& s : spans) by_id[s.span_id] = &s;
  const SpanData* session = nullptr;
  const SpanData* workflow = nullptr;
  const SpanData* block = nullptr;
  for (const auto& s : spans) {
    EXPECT_EQ(s.trace_id, spans.front().trace_id);
    EXPECT_GE(s.end_ns, s.start_ns);
    if (s.name == "session") session = &s;
    if (s.name == "workflow") workflow = &s;
    if (s.name == "block") block = &s;
  }
  ASSERT_TRUE(session && workflow && block);
  EXPECT_EQ(workflow->parent_span_id, session->span_id);
  EXPECT_EQ(workflow->text("asyncflow.workflow_id"), "etl-run-42");
  EXPECT_EQ(block->parent_span_id, session->span_id);
  EXPECT_EQ(block->text("task_id"), blk.uid());
  EXPECT_EQ(block->status, SpanStatus::kOk);
  int in_workflow = 0, in_block = 0, ungrouped = 0;
  for (const auto& s : spans) {
    if (s.name != "task") continue;
    EXPECT_EQ(s.status, SpanStatus::kOk);
    if (s.parent_span_id == workflow->span_id) {
      ++in_workflow;
      EXPECT_EQ(s.text("asyncflow.workflow_id"), "etl-run-42");
      // The workflow span lasts until its last task ended, even when the scope closed first.
      EXPECT_GE(workflow->end_ns, s.end_ns);
      EXPECT_LE(workflow->start_ns, s.start_ns);
    } else if (s.parent_span_id == block->span_id) {
      ++in_block;
      EXPECT_EQ(s.text("asyncflow.workflow_id"), blk.uid());
      EXPECT_EQ(s.text("executable"), "step");
    } else if (s.parent_span_id == session->span_id) {
      ++ungrouped;
      EXPECT_EQ(s.attribute("asyncflow.workflow_id"), nullptr);
      EXPECT_EQ(s.text("task_id"), loose.uid());
    }
  }
  EXPECT_EQ(in_workflow, 3);
  EXPECT_EQ(in_block, 3);
  EXPECT_EQ(ungrouped, 1);
}

TEST(EngineTelemetry, WorkflowSpanCoversTasksThatOutliveTheirScope) {
  auto flow = pool_engine(2);
  auto tm = flow->start_telemetry();
  auto nap = flow->function_task("nap", [](int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  });
  TaskHandle<int> h;
  {
    auto scope = flow->workflow_scope("short-scope");
    h = nap(nap(30));
  }  // the scope closes while its tasks still run
  h.get();
  flow->shutdown();
  const SpanData* workflow = nullptr;
  auto spans = tm->read_traces();
  for (const auto& s : spans)
    if (s.name == "workflow") workflow = &s;
  ASSERT_NE(workflow, nullptr);
  int members = 0;
  for (const auto& s : spans) {
    if (s.name != "task") continue;
    ++members;
    EXPECT_EQ(s.parent_span_id, workflow->span_id);
    EXPECT_GE(workflow->end_ns, s.end_ns);
  }
  EXPECT_EQ(members, 2);
  EXPECT_GE(workflow->duration_seconds(), 0.055);
}

TEST(EngineTelemetry, ScopeInsideABlockNestsUnderTheBlockSpan) {
  auto flow = pool_engine(2);
  auto tm = flow->start_telemetry();
  auto step = flow->function_task("step", [](int x) { return x + 1; });
  auto outer = flow->block("outer", [&](int x) -> Task<int> {
    auto scope = flow->workflow_scope("inner-wf");
    co_return co_await step(x);
  });
  EXPECT_EQ(outer(1).get(), 2);
  flow->shutdown();
  const SpanData* block = nullptr;
  const SpanData* workflow = nullptr;
  const SpanData* task = nullptr;
  auto spans = tm->read_traces();
  for (const auto& s : spans) {
    if (s.name == "block") block = &s;
    if (s.name == "workflow") workflow = &s;
    if (s.name == "task") task = &s;
  }
  ASSERT_TRUE(block && workflow && task);
  EXPECT_EQ(workflow->parent_span_id, block->span_id);
  EXPECT_EQ(task->parent_span_id, workflow->span_id);
}

TEST(EngineTelemetry, SummaryOfARunWithCompletedFailedAndCanceledTasks) {
  auto flow = pool_engine(2);
  auto tm = flow->start_telemetry();
  auto ok = flow->function_task("ok", [](int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  });
  auto bad = flow->function_task("bad", []() -> int { throw std::runtime_error("x"); });
  std::promise<void> gate;
  auto gated = gate.get_future().share();
  auto hold = flow->function_task("hold", [gated] { gated.wait(); });
  auto after = flow->function_task("after", [](Unit) {});
  std::vector<TaskHandle<int>> oks;
  for (int ms : {5, 10, 15, 20}) oks.push_back(ok(ms));
  auto f = bad();
  auto h = hold();
  auto c = after(h);
  c.cancel();
  gate.set_value();
  for (auto& o : oks) o.get();
  EXPECT_THROW(f.get(), std::runtime_error);
  h.get();
  flow->shutdown();

  const TelemetrySummary s = tm->summary();
  EXPECT_EQ(s.session_id, flow->uid());
  // 4 ok, bad, hold, and the canceled one, which never reached a backend but left the graph:
  // the counts add up as the seed's summary shows them.
  EXPECT_EQ(s.tasks.submitted, 7);
  EXPECT_EQ(s.tasks.submitted,
            s.tasks.completed + s.tasks.failed + s.tasks.canceled + s.tasks.running);
  EXPECT_EQ(s.tasks.completed, 5);  // 4 ok + hold
  EXPECT_EQ(s.tasks.failed, 1);
  EXPECT_EQ(s.tasks.canceled, 1);
  EXPECT_EQ(s.tasks.running, 0);
  ASSERT_TRUE(s.duration.has_value());
  EXPECT_EQ(s.duration->count, 6u);  // the canceled task had no lifecycle to measure
  EXPECT_GE(s.duration->max_seconds, 0.020);
  EXPECT_LE(s.duration->min_seconds, s.duration->p50_seconds);
  EXPECT_LE(s.duration->p50_seconds, s.duration->p95_seconds);
  EXPECT_LE(s.duration->p95_seconds, s.duration->max_seconds);
  EXPECT_GT(s.duration_seconds, 0.0);
  const auto json = nlohmann::json::parse(s.to_json());
  EXPECT_EQ(json["tasks"]["completed"], 5);
  EXPECT_EQ(json["tasks"]["canceled"], 1);
  EXPECT_TRUE(json["duration"].contains("mean_seconds"));
  auto ts = tm->task_spans();
  EXPECT_EQ(ts.size(), 7u);
  int failed = 0;
  for (const auto& t : ts) {
    if (t.status == "failed") {
      ++failed;
      EXPECT_EQ(t.error_type, "std::runtime_error");
    }
  }
  EXPECT_EQ(failed, 1);
}

TEST(EngineTelemetry, EventsEmittedInsideATaskAreCorrelatedToIt) {
  const auto dir = testing::fresh_temp_path("emit_inside");
  auto flow = pool_engine(2);
  auto tm = flow->start_telemetry({.checkpoint_path = dir});
  static const auto Progress = define_event("user.Progress", {{"step", FieldType::kInt}});
  auto work = flow->function_task("work", [tm](int n) {
    for (int i = 0; i < n; ++i)
      tm->emit(Progress, EventBase{.backend = "user"}, {{"step", std::int64_t{i}}});
    return n;
  });
  std::vector<TaskHandle<int>> hs;
  for (int i = 0; i < 8; ++i) hs.push_back(work(3));
  for (auto& h : hs) h.get();
  flow->shutdown();

  const Checkpoint cp = read_checkpoint(*tm->checkpoint_file());
  std::map<std::string, std::string> span_of_task;  // task_id → span_id of TaskStarted
  for (const auto& ce : cp.events)
    if (ce.event.type() == "TaskStarted") span_of_task[*ce.event.task_id()] = *ce.span_id;
  int progress = 0;
  for (const auto& ce : cp.events) {
    if (ce.event.type() != "user.Progress") continue;
    ++progress;
    ASSERT_TRUE(ce.event.task_id().has_value());
    ASSERT_TRUE(ce.span_id.has_value());
    EXPECT_EQ(*ce.span_id, span_of_task.at(*ce.event.task_id()));
  }
  EXPECT_EQ(progress, 24);
}

// A batch is formatted through one cursor with room for short lines: a line far longer (a
// 300 KB error message that is mostly escapes) makes more room mid-batch, and the lines
// around it stay whole.
TEST(EngineTelemetry, LongLinesInTheMiddleOfABatchAreWrittenWhole) {
  const auto dir = testing::fresh_temp_path("long_lines");
  auto flow = pool_engine(1);
  auto tm = flow->start_telemetry({.checkpoint_path = dir});
  std::string message;
  for (int i = 0; i < 30000; ++i) message += "\"quote\"\t";
  auto ok = flow->function_task("ok", [](int x) { return x; });
  auto bad = flow->function_task("bad", [message]() -> int { throw std::runtime_error(message); });
  std::vector<TaskHandle<int>> hs;
  for (int i = 0; i < 200; ++i) {
    hs.push_back(ok(i));
    if (i % 50 == 0) hs.push_back(bad());
  }
  for (auto& h : hs) h.wait();
  flow->shutdown();

  const Checkpoint cp = read_checkpoint(*tm->checkpoint_file());
  EXPECT_FALSE(cp.torn_tail);
  int failed = 0;
  int completed = 0;
  for (const auto& ce : cp.events) {
    if (ce.event.type() == "TaskFailed") {
      ++failed;
      EXPECT_EQ(text_attr(ce.event, "error_message"), message);
    }
    if (ce.event.type() == "TaskCompleted") ++completed;
  }
  EXPECT_EQ(failed, 4);
  EXPECT_EQ(completed, 200);
  EXPECT_EQ(cp.spans.size(), 205u);  // 204 tasks and the session
}

// Key order of each line kind, as reference §3.2.
TEST(EngineTelemetry, CheckpointLinesHaveTheReferenceKeysInOrder) {
  const auto dir = testing::fresh_temp_path("keys");
  auto flow = pool_engine(2);
  auto tm = flow->start_telemetry({.checkpoint_path = dir});
  auto t = flow->function_task("t", [](int x) { return x; });
  {
    auto scope = flow->workflow_scope("wf-keys");
    t(t(1)).get();
  }
  flow->shutdown();
  ASSERT_TRUE(tm->checkpoint_file().has_value());
  const auto file = *tm->checkpoint_file();
  EXPECT_EQ(file.parent_path(), dir);
  const std::string name = file.filename().string();
  EXPECT_EQ(name.rfind(flow->uid() + ".", 0), 0u) << name;
  EXPECT_TRUE(name.size() > 17 && name.substr(name.size() - 16) == ".telemetry.jsonl") << name;

  const std::vector<std::string> event_keys = {
      "event_id", "event_type", "event_time", "emit_time", "session_id", "backend", "task_id",
      "node_id",  "attributes", "trace_id",   "span_id",   "name",       "section"};
  const std::vector<std::string> ended_keys = {
      "event_id", "event_type", "event_time", "emit_time",  "session_id",
      "backend",  "task_id",    "node_id",    "attributes", "duration_seconds",
      "trace_id", "span_id",    "name",       "section"};
  const std::vector<std::string> span_keys = {
      "name",        "span_id",     "trace_id",           "parent_span_id",
      "start_ns",    "end_ns",      "start_time_s",       "end_time_s",
      "duration_ms", "status_code", "status_description", "attributes",
      "section"};
  std::ifstream in(file);
  std::string line;
  int events = 0, spans = 0, metrics = 0;
  std::string last_section;
  std::set<std::string> session_trace;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(' ') == std::string::npos) continue;  // page padding
    auto j = nlohmann::ordered_json::parse(line);
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
    const std::string section = j["section"];
    last_section = section;
    if (section == "event") {
      ++events;
      const std::string type = j["event_type"];
      if (type == "SessionEnded" || type == "TaskCompleted") {
        EXPECT_EQ(keys, ended_keys) << line;
      } else if (type != "TaskFailed" && type != "ResourceUpdate") {
        EXPECT_EQ(keys, event_keys) << line;
      }
      EXPECT_EQ(j["name"], j["event_type"]);
      EXPECT_EQ(j["event_id"].get<std::string>().size(), 32u);
      ASSERT_TRUE(j["trace_id"].is_string()) << line;
      ASSERT_TRUE(j["span_id"].is_string()) << line;
      EXPECT_EQ(j["trace_id"].get<std::string>().rfind("0x", 0), 0u);
      session_trace.insert(j["trace_id"].get<std::string>());
    } else if (section == "span") {
      ++spans;
      EXPECT_EQ(keys, span_keys) << line;
      session_trace.insert(j["trace_id"].get<std::string>());
    } else {
      ASSERT_EQ(section, "metric");
      ++metrics;
      EXPECT_EQ(keys.front(), "checkpoint_time");
      EXPECT_EQ(keys.back(), "section");
      EXPECT_EQ(j["tasks_submitted"], 2);
      EXPECT_EQ(j["tasks_completed"], 2);
      EXPECT_EQ(j["tasks_running"], 0);
      EXPECT_EQ(j["task_duration_seconds_count"], 2);
    }
  }
  // 2 tasks × 5-6 events + session 2 + workflow 2.
  EXPECT_GE(events, 14);
  EXPECT_EQ(spans, 4);  // session, workflow, 2 tasks
  EXPECT_EQ(metrics, 1);
  EXPECT_EQ(last_section, "metric");    // the final snapshot closes the file
  EXPECT_EQ(session_trace.size(), 1u);  // one trace per session

  // The reader agrees, and the lifecycle of each task shares the task span's id.
  const Checkpoint cp = read_checkpoint(file);
  EXPECT_FALSE(cp.torn_tail);
  EXPECT_EQ(cp.spans.size(), 4u);
  std::map<std::string, std::string> task_span;
  for (const auto& s : cp.spans) {
    if (s.name == "task") {
      std::string hex;
      jsonl::append_id(hex, s.span_id);
      task_span[std::string(s.text("task_id"))] = hex.substr(1, hex.size() - 2);
    }
  }
  for (const auto& ce : cp.events) {
    if (!ce.event.task_id()) continue;
    EXPECT_EQ(ce.span_id, task_span.at(*ce.event.task_id())) << ce.event.type();
    EXPECT_EQ(text_attr(ce.event, "asyncflow.workflow_id"), "wf-keys");
  }
}

// Task spans are kept compact and written straight from that record; processors get a
// SpanData. Both must describe the same span: each processor span, formatted by
// jsonl::append_span_line, is a line of the checkpoint, for every outcome a task can have.
TEST(EngineTelemetry, CheckpointSpanLinesAreTheSpansProcessorsSee) {
  const auto dir = testing::fresh_temp_path("span-lines");
  auto flow = pool_engine(2);
  auto exporter = std::make_shared<InMemorySpanExporter>();
  auto tm = flow->start_telemetry({.checkpoint_path = dir, .exporters = {exporter}});
  auto ok = flow->function_task("ok", [](int x) { return x + 1; });
  auto bad = flow->function_task("bad", []() -> int { throw std::runtime_error("broken"); });
  auto use = flow->function_task("use", [](int v) { return v; });
  std::promise<void> gate;
  auto gated = gate.get_future().share();
  auto started = std::make_shared<std::promise<void>>();
  auto started_future = started->get_future();
  auto hold = flow->function_task("hold", [gated, started] {
    started->set_value();
    gated.wait();
  });
  auto after = flow->function_task("after", [](Unit) {});
  auto blk = flow->block("blk", [&](int x) -> Task<int> { co_return co_await ok(x); });
  {
    auto scope = flow->workflow_scope("wf \"quoted\"");
    EXPECT_EQ(ok(1).get(), 2);
  }
  auto failed = bad();
  auto dependent = use(failed);
  EXPECT_THROW(dependent.get(), DependencyFailure);
  EXPECT_EQ(blk(5).get(), 6);
  auto held = hold();
  auto canceled = after(held);
  canceled.cancel();
  // Every event before stop() was emitted: an event racing stop() is refused and counted as
  // lost, which would make stop() report a loss.
  EXPECT_THROW(canceled.get(), TaskCanceledError);
  started_future.wait();
  ASSERT_TRUE(tm->stop());  // `held` is still running: its span ends unfinished
  gate.set_value();
  held.get();
  flow->shutdown();

  std::set<std::string> file_lines;
  {
    std::ifstream in(*tm->checkpoint_file());
    std::string line;
    while (std::getline(in, line)) {
      line.erase(line.find_last_not_of(' ') + 1);  // trailing spaces: page padding
      file_lines.insert(line + "\n");
    }
  }
  const auto spans = exporter->spans();
  std::set<std::string> seen_status;
  int task_spans = 0;
  for (const SpanData& s : spans) {
    std::string line;
    jsonl::append_span_line(line, s);
    EXPECT_EQ(file_lines.count(line), 1u) << line;
    if (s.name != "task" && s.name != "block") continue;
    ++task_spans;
    seen_status.insert(std::string(s.text("status")));
    // The same span from the history.
    const auto again = tm->read_traces(std::nullopt, std::string(s.text("task_id")));
    ASSERT_EQ(again.size(), 1u);
    std::string line_again;
    jsonl::append_span_line(line_again, again.front());
    EXPECT_EQ(line_again, line);
  }
  EXPECT_EQ(task_spans, 7);  // ok ×2, bad, use, blk, hold, after
  EXPECT_EQ(seen_status, (std::set<std::string>{"completed", "failed", "canceled", ""}));
  const auto unfinished = tm->read_traces(std::nullopt, held.uid());
  ASSERT_EQ(unfinished.size(), 1u);
  EXPECT_NE(unfinished.front().attribute("asyncflow.unfinished"), nullptr);
  EXPECT_EQ(unfinished.front().status, SpanStatus::kUnset);
}

TEST(EngineTelemetry, StartRulesAndErrors) {
  auto flow = pool_engine(1);
  try {
    flow->telemetry();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("start_telemetry"), std::string::npos);
  }
  // An uncreatable checkpoint path fails start_telemetry and leaves the engine working.
  const auto file = testing::fresh_temp_path("plain_file");
  std::ofstream(file) << "x";
  EXPECT_THROW(flow->start_telemetry({.checkpoint_path = file / "sub"}), Error);
  auto t = flow->function_task("t", [] { return 7; });
  EXPECT_EQ(t().get(), 7);
  auto tm = flow->start_telemetry();
  EXPECT_EQ(flow->telemetry(), tm);
  EXPECT_THROW(flow->start_telemetry(), Error);
  EXPECT_EQ(tm->session_id(), flow->uid());
  flow->shutdown();
  EXPECT_FALSE(tm->running());
  EXPECT_THROW(flow->start_telemetry(), EngineShutdownError);
}

TEST(EngineTelemetry, ExplicitStopBeforeShutdownLosesNothingAndKeepsTheEngineRunning) {
  auto flow = pool_engine(1);
  auto tm = flow->start_telemetry();
  auto t = flow->function_task("t", [] { return 1; });
  t().get();
  EXPECT_TRUE(tm->stop());
  EXPECT_EQ(t().get(), 1);  // the engine keeps working; its events are simply not recorded
  flow->shutdown();
  EXPECT_EQ(tm->dropped_events(), 0u);
  EXPECT_EQ(tm->task_count().completed, 1);
}

}  // namespace
}  // namespace asyncflow
