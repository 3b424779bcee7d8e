// Writes a small but complete checkpoint with CheckpointWriter and the jsonl formatters, for
// tests/exporters/check_checkpoint_pandas.py (ctest exporters.checkpoint_pandas): a session
// with three workflows of four chained tasks (one fails), resource polls for a node with two
// GPUs, workflow markers, a custom event, and two metric + span snapshots (the second repeats
// the spans of the first, as a periodic checkpoint does). Ids and times are fixed, so the file
// is the same on every run.
//
// Usage: asyncflow_write_sample_checkpoint <dir>
//   writes <dir>/asyncflow.session.sample.1775068460.telemetry.jsonl
#include <cstdio>
#include <exception>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "asyncflow/exporters/jsonl/checkpoint_reader.hpp"
#include "asyncflow/exporters/jsonl/checkpoint_writer.hpp"
#include "asyncflow/exporters/jsonl/jsonl_format.hpp"

namespace af = asyncflow;

namespace {

constexpr const char* kSession = "asyncflow.session.sample";
constexpr double kStart = 1775068460.0;
constexpr af::TraceId kTrace{0x4bf92f3577b34da6ull, 0xa3ce929d0e0e4736ull};
constexpr std::uint64_t kSessionSpan = 0x00f067aa0ba902b7ull;

std::int64_t to_ns(double seconds) {
  return static_cast<std::int64_t>(seconds * 1e9);
}

class Sample {
 public:
  explicit Sample(af::CheckpointWriter& writer) : writer_(writer) {}

  void event(const af::EventTypePtr& type, double t, af::EventBase base,
             std::vector<af::FieldValue> values, std::uint64_t span_id) {
    char id[33];
    std::snprintf(id, sizeof id, "%032llx", static_cast<unsigned long long>(++events_));
    if (base.session_id.empty()) base.session_id = kSession;
    af::Event e = af::restore_event(type, id, t, t + 2e-6, std::move(base), std::move(values));
    af::jsonl::append_event_line(batch_, e, kTrace, span_id);
    if (events_ % 16 == 0) flush();  // the dispatcher writes a batch at a time
  }

  void span(af::SpanData s) { spans_.push_back(std::move(s)); }

  /// A periodic checkpoint: the metrics so far and every span finished so far.
  void snapshot(double t, const af::MetricsSnapshot& metrics) {
    af::jsonl::append_metric_line(batch_, t, metrics);
    for (const auto& s : spans_) af::jsonl::append_span_line(batch_, s);
    flush();
  }

  void flush() {
    if (!writer_.append(batch_)) throw std::runtime_error(writer_.last_error());
    batch_.clear();
  }

 private:
  af::CheckpointWriter& writer_;
  std::string batch_;
  std::vector<af::SpanData> spans_;
  unsigned events_ = 0;
};

af::MetricPoint value_point(double v) {
  af::MetricPoint p;
  p.value = v;
  return p;
}

af::MetricData metric(std::string name, af::InstrumentKind kind,
                      std::vector<af::MetricPoint> points) {
  af::MetricData m;
  m.name = std::move(name);
  m.kind = kind;
  m.points = std::move(points);
  return m;
}

af::SpanData span(std::string name, std::uint64_t id, std::uint64_t parent, double start,
                  double end, af::Attributes attributes) {
  af::SpanData s;
  s.name = std::move(name);
  s.trace_id = kTrace;
  s.span_id = id;
  s.parent_span_id = parent;
  s.start_ns = to_ns(start);
  s.end_ns = to_ns(end);
  s.attributes = std::move(attributes);
  return s;
}

af::MetricsSnapshot metrics(int submitted, int started, int completed, int failed, int running,
                            double duration_sum) {
  af::MetricPoint h;
  h.count = static_cast<std::uint64_t>(completed + failed);
  h.sum = duration_sum;
  af::MetricsSnapshot m;
  using K = af::InstrumentKind;
  m.metrics = {metric("tasks_submitted", K::kCounter, {value_point(submitted)}),
               metric("tasks_started", K::kCounter, {value_point(started)}),
               metric("tasks_completed", K::kCounter, {value_point(completed)}),
               metric("tasks_failed", K::kCounter,
                      failed ? std::vector{value_point(failed)} : std::vector<af::MetricPoint>{}),
               metric("tasks_canceled", K::kCounter, {}),  // no data yet: not written
               metric("tasks_running", K::kUpDownCounter, {value_point(running)}),
               metric("task_duration_seconds", K::kHistogram, {h}),
               metric("node_cpu_utilization", K::kGauge, {value_point(63.5)}),
               metric("node_memory_utilization", K::kGauge, {value_point(41.25)}),
               metric("node_gpu_utilization", K::kGauge, {value_point(88.0)})};
  return m;
}

void write_sample(const std::string& dir) {
  // The writer never overwrites a file (it would pick a "-2" name): start from a clean dir.
  std::filesystem::remove_all(dir);
  af::CheckpointWriter writer(dir, kSession, static_cast<std::int64_t>(kStart));
  Sample out(writer);
  const auto& workflow_started = af::events::WorkflowStarted();
  const auto& workflow_ended = af::events::WorkflowEnded();
  const auto result =
      af::define_event("experiment.Result", {{"experiment_id", af::FieldType::kString},
                                             {"loss", af::FieldType::kDouble},
                                             {"accuracy", af::FieldType::kDouble}});

  out.event(af::events::SessionStarted(), kStart, {.backend = "asyncflow"}, {}, kSessionSpan);

  // Resource polls every 0.5 s: one per_node event, then one per GPU.
  for (int poll = 0; poll < 6; ++poll) {
    const double t = kStart + 0.5 * poll + 0.01;
    out.event(af::events::ResourceUpdate(), t, {.backend = "thread_pool", .node_id = "node-a"},
              {40.0 + poll, 35.5, 80.0, std::monostate{}, 4096.0 * poll, 1024.0, 512.0, 256.0,
               std::string()},
              kSessionSpan);
    for (std::int64_t gpu = 0; gpu < 2; ++gpu) {
      out.event(
          af::events::ResourceUpdate(), t, {.backend = "thread_pool", .node_id = "node-a"},
          {std::monostate{}, std::monostate{}, 75.0 + 5.0 * static_cast<double>(gpu), gpu,
           std::monostate{}, std::monostate{}, std::monostate{}, std::monostate{}, std::string()},
          kSessionSpan);
    }
  }

  const char* stages[] = {"load_data", "preprocess", "train", "evaluate"};
  int submitted = 0, completed = 0, failed = 0;
  double duration_sum = 0;
  std::uint64_t next_span = 0x1000;
  for (int w = 0; w < 3; ++w) {
    const std::string wid = "exp-" + std::to_string(w);
    const double w_start = kStart + 0.02 + 0.01 * w;
    const std::uint64_t w_span = next_span++;
    out.event(workflow_started, w_start,
              {.backend = "asyncflow", .attributes = {{"asyncflow.workflow_id", wid}}}, {},
              kSessionSpan);
    double t = w_start;
    for (int s = 0; s < 4; ++s) {
      const std::string task_id = "task.0000" + std::to_string(w * 4 + s);
      const std::uint64_t span_id = next_span++;
      const af::Attributes attrs = {{"executable", std::string(stages[s])},
                                    {"task_type", std::string("function")},
                                    {"asyncflow.workflow_id", wid}};
      auto base = [&] {
        return af::EventBase{.backend = "thread_pool", .task_id = task_id, .attributes = attrs};
      };
      const double created = t;
      const double run = 0.1 + 0.05 * s + 0.02 * w;
      out.event(af::events::TaskCreated(), created, base(), {}, span_id);
      out.event(af::events::TaskResolved(), created + 0.001, base(), {}, span_id);
      out.event(af::events::TaskQueued(), created + 0.002, base(), {}, span_id);
      out.event(af::events::TaskSubmitted(), created + 0.003, base(), {}, span_id);
      out.event(af::events::TaskStarted(), created + 0.004, base(), {}, span_id);
      ++submitted;
      const double end = created + 0.004 + run;
      const bool fails = w == 2 && s == 3;
      if (fails) {
        out.event(af::events::TaskFailed(), end, base(), {run, std::string("ValueError")}, span_id);
        ++failed;
      } else {
        out.event(af::events::TaskCompleted(), end, base(), {run}, span_id);
        ++completed;
      }
      duration_sum += run;
      af::SpanData task = span("task", span_id, w_span, created, end,
                               {{"session_id", std::string(kSession)},
                                {"backend", std::string("thread_pool")},
                                {"task_id", task_id},
                                {"executable", std::string(stages[s])},
                                {"task_type", std::string("function")},
                                {"status", std::string(fails ? "failed" : "completed")},
                                {"asyncflow.workflow_id", wid}});
      task.status = fails ? af::SpanStatus::kError : af::SpanStatus::kOk;
      if (fails) task.status_description = "ValueError";
      out.span(std::move(task));
      t = end + 0.001;
    }
    out.event(workflow_ended, t,
              {.backend = "asyncflow", .attributes = {{"asyncflow.workflow_id", wid}}}, {},
              kSessionSpan);
    out.event(result, t, {.backend = "pipeline", .task_id = wid},
              {wid, 0.5 / (1 + w), 0.8 + 0.05 * w}, kSessionSpan);
    out.span(span("workflow", w_span, kSessionSpan, w_start, t, {{"asyncflow.workflow_id", wid}}));
    if (w == 0) out.snapshot(t, metrics(submitted, submitted, completed, failed, 0, duration_sum));
  }

  const double end = kStart + 3.0;
  out.event(af::events::SessionEnded(), end, {.backend = "asyncflow"}, {end - kStart},
            kSessionSpan);
  out.span(span("session", kSessionSpan, 0, kStart, end,
                {{"session_id", std::string(kSession)}, {"backend", std::string("asyncflow")}}));
  out.snapshot(end, metrics(submitted, submitted, completed, failed, 0, duration_sum));
  writer.close();
  if (!writer.last_error().empty()) throw std::runtime_error(writer.last_error());
  std::printf("%s\n", writer.path().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <dir>\n", argv[0]);
    return 2;
  }
  try {
    write_sample(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "write_sample_checkpoint: %s\n", e.what());
    return 1;
  }
  return 0;
}
