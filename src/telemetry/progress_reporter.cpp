// ProgressReporter. The subscriber counts; a thread of its own draws, so that a terminal line
// keeps its clock running through long tasks, and a slow terminal never holds up the
// subscribers' thread.
#include "asyncflow/telemetry/progress_reporter.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <variant>

#include "asyncflow/common/error.hpp"
#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/manager.hpp"

namespace asyncflow {

struct ProgressReporter::State {
  using Clock = std::chrono::steady_clock;

  int fd = 2;
  bool terminal = false;
  std::chrono::duration<double> interval{};
  Clock::time_point started = Clock::now();

  mutable Mutex mu;
  CondVar wake;
  bool finished ASYNCFLOW_GUARDED_BY(mu) = false;
  ProgressCounts counts ASYNCFLOW_GUARDED_BY(mu);
  std::unordered_set<std::string> running ASYNCFLOW_GUARDED_BY(mu);  // started, not ended
  Subscription subscription;
  std::thread drawer;

  void on_event(const Event& e) {
    const std::string_view type = e.type();
    if (type != "TaskStarted" && type != "TaskCompleted" && type != "TaskFailed" &&
        type != "TaskCanceled") {
      return;
    }
    if (const FieldValue* kind = e.attribute("task_type")) {
      if (const auto* text = std::get_if<std::string>(kind); text && *text == "block") return;
    }
    const std::string& id = e.task_id() ? *e.task_id() : std::string();
    MutexLock lock(mu);
    if (type == "TaskStarted") {
      running.insert(id);
    } else {
      running.erase(id);
      if (type == "TaskCompleted") ++counts.done;
      if (type == "TaskFailed") ++counts.failed;
      if (type == "TaskCanceled") ++counts.canceled;
    }
    counts.running = running.size();
  }

  std::string status_locked() const ASYNCFLOW_REQUIRES(mu) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
    const auto ended = static_cast<double>(counts.done + counts.failed + counts.canceled);
    const auto whole = static_cast<long long>(elapsed);
    char text[256];
    std::snprintf(text, sizeof text,
                  "%llu done, %llu failed, %llu canceled, %llu running | %.1f tasks/s | "
                  "%02lld:%02lld:%02lld",
                  static_cast<unsigned long long>(counts.done),
                  static_cast<unsigned long long>(counts.failed),
                  static_cast<unsigned long long>(counts.canceled),
                  static_cast<unsigned long long>(counts.running),
                  elapsed > 0 ? ended / elapsed : 0.0, whole / 3600, whole / 60 % 60, whole % 60);
    return text;
  }

  void write_line(const std::string& status, bool last) const {
    std::string out;
    if (terminal) {
      out = "\rasyncflow: " + status + "\x1b[K";  // over the previous line, its tail erased
      if (last) out += '\n';
    } else {
      out = "asyncflow: " + status + "\n";
    }
    for (std::size_t at = 0; at < out.size();) {
      const ssize_t n = ::write(fd, out.data() + at, out.size() - at);
      if (n <= 0) return;  // a closed terminal: progress is a courtesy, not a record
      at += static_cast<std::size_t>(n);
    }
  }

  void draw_loop() {
    MutexLock lock(mu);
    while (!wake.wait_for(mu, interval, [this]() ASYNCFLOW_REQUIRES(mu) { return finished; })) {
      const std::string status = status_locked();
      lock.unlock();
      write_line(status, /*last=*/false);
      lock.lock();
    }
  }
};

std::unique_ptr<ProgressReporter> ProgressReporter::attach(TelemetryManager& telemetry,
                                                           ProgressOptions options) {
  if (!std::isfinite(options.interval_seconds) || options.interval_seconds < 0) {
    throw Error("ProgressReporter: interval_seconds must be a finite number >= 0, got " +
                std::to_string(options.interval_seconds));
  }
  auto state = std::make_shared<State>();
  state->fd = options.fd;
  state->terminal = options.terminal.value_or(::isatty(options.fd) == 1);
  state->interval =
      std::chrono::duration<double>(options.interval_seconds > 0 ? options.interval_seconds
                                    : state->terminal            ? 0.2
                                                                 : 10.0);
  // The callback holds the state: it may still run while finish() unsubscribes.
  state->subscription = telemetry.subscribe([state](const Event& e) { state->on_event(e); });
  state->drawer = std::thread([raw = state.get()] { raw->draw_loop(); });
  return std::unique_ptr<ProgressReporter>(new ProgressReporter(std::move(state)));
}

ProgressReporter::ProgressReporter(std::shared_ptr<State> state) : state_(std::move(state)) {}

ProgressReporter::~ProgressReporter() {
  finish();
}

void ProgressReporter::finish() {
  {
    MutexLock lock(state_->mu);
    if (state_->finished) return;
    state_->finished = true;
  }
  state_->wake.notify_all();
  state_->drawer.join();
  state_->subscription.unsubscribe();
  state_->write_line(status(), /*last=*/true);
}

ProgressCounts ProgressReporter::counts() const {
  MutexLock lock(state_->mu);
  return state_->counts;
}

std::string ProgressReporter::status() const {
  MutexLock lock(state_->mu);
  return state_->status_locked();
}

}  // namespace asyncflow
