// Per-task resource usage, measured exactly: executable tasks of the process backend get
// their CPU, wall time, I/O, context switches and (where a memory cgroup of their own can be
// made) peak memory on their TaskCompleted / TaskFailed event, their span and the summary.
// The children are a program with a known appetite (support/usage_child.cpp).
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/magic.h>
#include <algorithm>
#include <asyncflow/asyncflow.hpp>
#include <asyncflow/core/registered_function.hpp>
#include <asyncflow/telemetry/resource.hpp>
#include <asyncflow/telemetry/usage_attributes.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace af = asyncflow;
namespace names = asyncflow::usage_attributes;

namespace {

using Argv = std::vector<std::string>;

constexpr double kMiB = 1024.0 * 1024.0;

/// The events of one session, as its subscriber saw them.
struct Recorder {
  std::mutex mu;
  std::vector<af::Event> seen;

  std::optional<af::Event> find(const std::string& task_id, const std::string& type) {
    std::lock_guard lock(mu);
    for (const auto& e : seen)
      if (e.task_id() == task_id && e.type() == type) return e;
    return std::nullopt;
  }
};

std::optional<double> number(const af::Attributes& attributes, const char* key) {
  for (const auto& [k, v] : attributes) {
    if (k != key) continue;
    if (const auto* d = std::get_if<double>(&v)) return *d;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  }
  return std::nullopt;
}

/// One engine with a process backend and a telemetry session that records its events.
class UsageRig {
 public:
  explicit UsageRig(bool measure = true)
      : UsageRig(af::ProcessBackend::create({.max_processes = 2, .measure_usage = measure})) {}
  explicit UsageRig(std::shared_ptr<af::Backend> backend)
      : engine_(af::WorkflowEngine::create(
            {.backends = {std::move(backend)}, .work_dir = ::testing::TempDir()})),
        telemetry_(engine_->start_telemetry({.resource_poll_interval = 0})),
        recorder_(std::make_shared<Recorder>()) {
    auto rec = recorder_;
    telemetry_->subscribe([rec](const af::Event& e) {
      std::lock_guard lock(rec->mu);
      rec->seen.push_back(e);
    });
  }

  /// Runs `argv` as a task to its end; returns its uid (the outcome is not checked).
  std::string run(const Argv& argv) { return run_many(argv, 1).front(); }

  /// Runs `body` as a function task to its end; returns its uid (the outcome is not checked).
  std::string run_function(std::function<int()> body) {
    auto task = engine_->function_task("call", std::move(body));
    auto h = task();
    h.wait();
    return h.uid();
  }

  /// Runs `n` tasks of `argv` at once to their end; returns their uids.
  std::vector<std::string> run_many(const Argv& argv, std::size_t n) {
    auto task = engine_->executable_task("child", [argv] { return argv; });
    std::vector<af::TaskHandle<std::string>> handles;
    for (std::size_t i = 0; i < n; ++i) handles.push_back(task());
    std::vector<std::string> uids;
    for (auto& h : handles) {
      h.wait();
      uids.push_back(h.uid());
    }
    return uids;
  }

  /// Ends the session; the events are all in afterwards.
  void finish() { ASSERT_TRUE(engine_->shutdown()); }

  /// The terminal event's attributes.
  af::Attributes terminal(const std::string& uid, const std::string& type = "TaskCompleted") {
    auto e = recorder_->find(uid, type);
    if (!e) {
      ADD_FAILURE() << "no " << type << " for " << uid;
      return {};
    }
    return e->attributes();
  }

  Recorder& recorder() { return *recorder_; }
  af::WorkflowEngine& engine() { return *engine_; }
  af::TelemetryManager& telemetry() { return *telemetry_; }

 private:
  std::unique_ptr<af::WorkflowEngine> engine_;
  std::shared_ptr<af::TelemetryManager> telemetry_;
  std::shared_ptr<Recorder> recorder_;
};

/// Burns `seconds` of this thread's CPU time (not wall time: a preempted thread still burns
/// them).
int burn_thread_cpu(double seconds) {
  timespec start{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  volatile std::uint64_t sink = 0;
  for (;;) {
    for (int i = 0; i < 100000; ++i) sink = sink + static_cast<std::uint64_t>(i);
    timespec now{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    if (static_cast<double>(now.tv_sec - start.tv_sec) +
            static_cast<double>(now.tv_nsec - start.tv_nsec) / 1e9 >=
        seconds)
      return static_cast<int>(sink & 1);
  }
}

// Registered at namespace scope: the workers (this binary, test_main) register them too.
const auto kBurnCpu = af::register_function("usage_test.burn_cpu", burn_thread_cpu);
const auto kTouchMib = af::register_function("usage_test.touch_mib", [](int mib) {
  std::vector<char> block(static_cast<std::size_t>(mib) << 20);
  for (std::size_t i = 0; i < block.size(); i += 4096) block[i] = 1;
  return static_cast<int>(block[block.size() / 2]);
});

bool peak_measured_here() {
  return !af::ProcessBackend::peak_memory_method().empty();
}

}  // namespace

TEST(TaskUsage, CpuOfAChildThatBurnsHalfASecond) {
  UsageRig rig;
  const std::string uid = rig.run({ASYNCFLOW_USAGE_CHILD, "burn", "0.5"});
  rig.finish();
  const af::Attributes a = rig.terminal(uid);
  const auto user = number(a, names::kCpuUserSeconds);
  const auto system = number(a, names::kCpuSystemSeconds);
  const auto wall = number(a, names::kWallSeconds);
  ASSERT_TRUE(user && system && wall);
  std::printf("burn 0.5 s: user %.3f s + system %.3f s, wall %.3f s\n", *user, *system, *wall);
  EXPECT_NEAR(*user + *system, 0.5, 0.1) << "within 20 %";
  EXPECT_GE(*wall, (*user + *system) * 0.9) << "one thread: no more CPU than wall time";
  EXPECT_TRUE(number(a, names::kVoluntarySwitches));
  EXPECT_TRUE(number(a, names::kInvoluntarySwitches));

  // The span carries it too, and the summary adds it up.
  const auto spans = rig.telemetry().read_traces(std::nullopt, uid);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(number(spans[0].attributes, names::kCpuUserSeconds), user);
  const auto summary = rig.telemetry().summary();
  ASSERT_TRUE(summary.usage);
  EXPECT_EQ(summary.usage->tasks, 1u);
  EXPECT_DOUBLE_EQ(summary.usage->cpu_seconds, *user + *system);
  EXPECT_NE(summary.to_json().find("\"usage\": {\"tasks\": 1, \"cpu_seconds\": "),
            std::string::npos)
      << summary.to_json();
}

TEST(TaskUsage, PeakMemoryOfAChildThatTouches200MiB) {
  UsageRig rig;
  const std::string uid = rig.run({ASYNCFLOW_USAGE_CHILD, "touch", "200"});
  rig.finish();
  const auto peak = number(rig.terminal(uid), names::kPeakMemoryBytes);
  if (!peak_measured_here()) {
    EXPECT_FALSE(peak) << "no method: the field is absent, never guessed";
    GTEST_SKIP() << "peak memory is not measurable here: "
                 << af::ProcessBackend::peak_memory_unavailable_reason();
  }
  ASSERT_TRUE(peak) << af::ProcessBackend::peak_memory_method();
  std::printf("touch 200 MiB: peak %.1f MiB (%s)\n", *peak / kMiB,
              af::ProcessBackend::peak_memory_method().c_str());
  EXPECT_NEAR(*peak / kMiB, 200.0, 20.0) << "within 10 %";
  const auto summary = rig.telemetry().summary();
  ASSERT_TRUE(summary.usage && summary.usage->max_peak_memory_bytes);
  EXPECT_EQ(static_cast<double>(*summary.usage->max_peak_memory_bytes), *peak);
}

TEST(TaskUsage, PeakMemoryAfterManySmallTasksIsStillTheTasksOwn) {
  // The spawning threads' groups keep a baseline that earlier tasks left (cgroup v1); it must
  // neither grow into the peaks of later tasks nor hide them.
  UsageRig rig;
  const auto trues = rig.run_many({"/bin/true"}, 300);
  const std::string uid = rig.run({ASYNCFLOW_USAGE_CHILD, "touch", "100"});
  rig.finish();
  if (!peak_measured_here()) GTEST_SKIP() << af::ProcessBackend::peak_memory_unavailable_reason();
  double most = 0;
  for (const auto& t : trues) {
    const auto peak = number(rig.terminal(t), names::kPeakMemoryBytes);
    ASSERT_TRUE(peak) << t;
    most = std::max(most, *peak);
  }
  const auto peak = number(rig.terminal(uid), names::kPeakMemoryBytes);
  ASSERT_TRUE(peak);
  std::printf("300 /bin/true: largest peak %.2f MiB; then touch 100 MiB: %.1f MiB\n", most / kMiB,
              *peak / kMiB);
  EXPECT_LT(most / kMiB, 4.0) << "a /bin/true is charged what earlier tasks left";
  EXPECT_NEAR(*peak / kMiB, 100.0, 10.0) << "within 10 %";
}

TEST(TaskUsage, TrueStartedFromAParentHolding400MiBIsNotCharged400MiB) {
  // The trap: ru_maxrss of a child started from a big parent keeps the parent's high-water
  // mark from before exec (about 412,000 KiB for /bin/true here).
  std::vector<char> held(400u << 20);
  std::memset(held.data(), 1, held.size());
  UsageRig rig;
  const std::string uid = rig.run({"/bin/true"});
  rig.finish();
  const auto peak = number(rig.terminal(uid), names::kPeakMemoryBytes);
  EXPECT_EQ(held[held.size() / 2], 1);
  if (!peak_measured_here()) {
    EXPECT_FALSE(peak);
    GTEST_SKIP() << af::ProcessBackend::peak_memory_unavailable_reason();
  }
  ASSERT_TRUE(peak);
  std::printf("/bin/true from a 400 MiB parent: peak %.2f MiB\n", *peak / kMiB);
  EXPECT_LT(*peak / kMiB, 16.0) << "well under the parent's 400 MiB";
}

TEST(TaskUsage, WrittenBytesOfAChildThatWrites50MiB) {
  UsageRig rig;
  const std::filesystem::path out = std::filesystem::path(::testing::TempDir()) / "written.bin";
  const std::string uid = rig.run({ASYNCFLOW_USAGE_CHILD, "write", "50", out.string()});
  rig.finish();
  const af::Attributes a = rig.terminal(uid);
  const auto chars = number(a, names::kWriteChars);
  ASSERT_TRUE(chars);
  std::printf("write 50 MiB: write_chars %.2f MiB\n", *chars / kMiB);
  EXPECT_NEAR(*chars / kMiB, 50.0, 2.5) << "within 5 %";
  struct statfs fs {};
  ASSERT_EQ(::statfs(out.parent_path().c_str(), &fs), 0);
  const auto bytes = number(a, names::kWriteBytes);
  ASSERT_TRUE(bytes);
  if (fs.f_type != TMPFS_MAGIC) {  // tmpfs has no storage to count writes to
    std::printf("write 50 MiB: write_bytes %.2f MiB\n", *bytes / kMiB);
    EXPECT_NEAR(*bytes / kMiB, 50.0, 2.5) << "within 5 %";
    ASSERT_TRUE(rig.telemetry().summary().usage);
    EXPECT_EQ(static_cast<double>(rig.telemetry().summary().usage->write_bytes), *bytes);
  }
}

TEST(TaskUsage, AFailedTaskHasItsUsage) {
  UsageRig rig;
  const std::string failed = rig.run({"/bin/sh", "-c", "exit 3"});
  rig.finish();
  const af::Attributes a = rig.terminal(failed, "TaskFailed");
  EXPECT_TRUE(number(a, names::kCpuUserSeconds));
  EXPECT_TRUE(number(a, names::kWallSeconds));
}

TEST(TaskUsage, OffMeansNoUsageAttributes) {
  UsageRig rig(/*measure=*/false);
  const std::string uid = rig.run({"/bin/true"});
  rig.finish();
  for (const auto& [key, value] : rig.terminal(uid)) {
    EXPECT_FALSE(key.starts_with(names::kPrefix)) << key;
  }
  EXPECT_FALSE(rig.telemetry().summary().usage);
}

TEST(TaskUsage, TaskEventsCarryTheNodeOnceTheTaskRuns) {
  UsageRig rig;
  const std::string uid = rig.run({"/bin/true"});
  rig.finish();
  const std::string host = af::host_name();
  for (const char* type : {"TaskCreated", "asyncflow.TaskResolved", "TaskSubmitted"}) {
    auto e = rig.recorder().find(uid, type);
    ASSERT_TRUE(e) << type;
    EXPECT_FALSE(e->node_id()) << type << ": before it reached a node";
  }
  for (const char* type : {"TaskStarted", "TaskCompleted"}) {
    auto e = rig.recorder().find(uid, type);
    ASSERT_TRUE(e) << type;
    ASSERT_TRUE(e->node_id()) << type;
    EXPECT_EQ(*e->node_id(), host) << type;
  }
}

TEST(TaskUsage, TheMethodIsNamedOrWhyNot) {
  const std::string& method = af::ProcessBackend::peak_memory_method();
  if (method.empty()) {
    EXPECT_FALSE(af::ProcessBackend::peak_memory_unavailable_reason().empty());
  } else {
    EXPECT_TRUE(method == "cgroup v2 memory.peak" ||
                method == "cgroup v1 memory.max_usage_in_bytes")
        << method;
  }
}

// A registered function's usage is its call's, measured in the worker: the first call burns
// 0.4 s of CPU, the second (same worker) almost none, the third touches 100 MiB.
TEST(TaskUsage, ARegisteredFunctionCallHasItsOwnUsage) {
  UsageRig rig(af::ProcessBackend::create({.function_workers = 1}));
  auto burn = rig.engine().function_task(kBurnCpu);
  auto touch = rig.engine().function_task(kTouchMib);
  auto heavy = burn(0.4);
  heavy.wait();
  auto light = burn(0.0);
  light.wait();
  auto big = touch(100);
  big.wait();
  rig.finish();
  auto usage_of = [&](const std::string& uid) { return rig.terminal(uid); };
  const af::Attributes h = usage_of(heavy.uid());
  const af::Attributes l = usage_of(light.uid());
  const auto heavy_cpu = number(h, names::kCpuUserSeconds);
  const auto heavy_sys = number(h, names::kCpuSystemSeconds);
  const auto light_cpu = number(l, names::kCpuUserSeconds);
  ASSERT_TRUE(heavy_cpu && heavy_sys && light_cpu);
  std::printf("registered function burning 0.4 s: user %.3f + system %.3f s; next call %.3f s\n",
              *heavy_cpu, *heavy_sys, *light_cpu);
  EXPECT_NEAR(*heavy_cpu + *heavy_sys, 0.4, 0.08) << "within 20 %";
  EXPECT_LT(*light_cpu, 0.05) << "a delta per call, not the worker's total";
  EXPECT_TRUE(number(h, names::kWallSeconds));
  EXPECT_TRUE(number(h, names::kVoluntarySwitches));
  // The peak is the worker's resident high-water mark over the call, what it held before
  // included (more under a sanitizer): the call before shows that baseline.
  const af::Attributes b = usage_of(big.uid());
  const auto peak = number(b, names::kPeakMemoryBytes);
  const auto baseline = number(l, names::kPeakMemoryBytes);
  ASSERT_TRUE(peak && baseline) << "no peak memory: /proc/self/clear_refs is not writable here";
  std::printf("registered function touching 100 MiB: peak %.1f MiB, the call before %.1f MiB\n",
              *peak / kMiB, *baseline / kMiB);
  EXPECT_GE(*peak - *baseline, 100 * kMiB * 0.9);
#if !defined(__SANITIZE_THREAD__)  // ThreadSanitizer's shadow makes 100 MiB touched 500 resident
  EXPECT_LT(*peak - *baseline, 100 * kMiB * 1.25);
#endif
}

TEST(TaskUsage, ARegisteredFunctionWithoutPeakMemoryHasTheRest) {
  UsageRig rig(af::ProcessBackend::create(
      {.function_workers = 1, .measure_usage = true, .measure_peak_memory = false}));
  auto call = rig.engine().function_task(kBurnCpu)(0.1);
  call.wait();
  rig.finish();
  const af::Attributes usage = rig.terminal(call.uid());
  const auto cpu = number(usage, names::kCpuUserSeconds);
  ASSERT_TRUE(cpu);
  EXPECT_NEAR(*cpu + number(usage, names::kCpuSystemSeconds).value_or(0), 0.1, 0.03);
  EXPECT_TRUE(number(usage, names::kReadChars));
  EXPECT_FALSE(number(usage, names::kPeakMemoryBytes));
}

// Thread-pool function tasks: the worker thread's own CPU time over the call.
TEST(TaskUsage, AThreadPoolTaskHasItsThreadsCpuTime) {
  UsageRig rig(af::ThreadPoolBackend::create({.threads = 2}));
  const std::string burn = rig.run_function([] { return burn_thread_cpu(0.3); });
  const std::string sleep = rig.run_function([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return 0;
  });
  const std::string fail = rig.run_function([]() -> int {
    burn_thread_cpu(0.1);
    throw std::runtime_error("after 0.1 s of CPU");
  });
  rig.finish();

  const auto burned = rig.terminal(burn);
  const auto user = number(burned, names::kCpuUserSeconds);
  const auto system = number(burned, names::kCpuSystemSeconds);
  const auto wall = number(burned, names::kWallSeconds);
  ASSERT_TRUE(user && system && wall);
  std::printf("thread-pool task burning 0.3 s: user %.3f s, system %.3f s, wall %.3f s\n", *user,
              *system, *wall);
  EXPECT_NEAR(*user + *system, 0.3, 0.06) << "within 20 %";
  EXPECT_GE(*wall + 0.01, *user + *system);
  EXPECT_FALSE(number(burned, names::kPeakMemoryBytes)) << "the process's, not the task's";
  EXPECT_FALSE(number(burned, names::kReadChars));

  const auto slept = rig.terminal(sleep);
  ASSERT_TRUE(number(slept, names::kCpuUserSeconds) && number(slept, names::kWallSeconds));
  EXPECT_LT(*number(slept, names::kCpuUserSeconds) + *number(slept, names::kCpuSystemSeconds),
            0.05);
  EXPECT_GE(*number(slept, names::kWallSeconds), 0.2);
  EXPECT_GE(number(slept, names::kVoluntarySwitches).value_or(0), 1) << "it waited";

  const auto failed = rig.terminal(fail, "TaskFailed");
  ASSERT_TRUE(number(failed, names::kCpuUserSeconds));
  EXPECT_NEAR(*number(failed, names::kCpuUserSeconds) + *number(failed, names::kCpuSystemSeconds),
              0.1, 0.03);

  const auto summary = rig.telemetry().summary();
  ASSERT_TRUE(summary.usage);
  EXPECT_EQ(summary.usage->tasks, 3u);
}

TEST(TaskUsage, AThreadPoolWithoutUsageMeasuresNothing) {
  UsageRig rig(af::ThreadPoolBackend::create({.threads = 1, .measure_usage = false}));
  const std::string uid = rig.run_function([] { return burn_thread_cpu(0.05); });
  rig.finish();
  for (const auto& [key, value] : rig.terminal(uid))
    EXPECT_FALSE(key.starts_with(names::kPrefix)) << key;
}
