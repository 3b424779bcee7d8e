// FaultRig: an engine with its witnesses, as every fault test sets it up — a recording
// exporter (what telemetry exported), a recording observer (what the engine reported) and the
// telemetry session — plus small helpers to read errors.
#pragma once

#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "support/engines.hpp"
#include "support/fake_exporters.hpp"
#include "support/recording_observer.hpp"

namespace asyncflow::testing {

/// Not thread-safe: built and read by the test's thread (its members are thread-safe).
struct FaultRig {
  explicit FaultRig(std::vector<std::shared_ptr<Backend>> backends, TelemetryOptions options = {})
      : flow(engine_with(std::move(backends))),
        exporter(std::make_shared<RecordingExporter>()),
        observer(std::make_shared<RecordingObserver>()) {
    options.exporters.push_back(exporter);
    // The rig's tests count every event exactly: no node samples among them.
    if (options.adapters.empty()) options.resource_poll_interval = 0;
    telemetry = flow->start_telemetry(std::move(options));
    flow->set_observer(observer);
  }
  /// Lifecycle points the observer saw: each is one telemetry event.
  std::size_t lifecycle_points() const { return observer->events().size(); }

  std::unique_ptr<WorkflowEngine> flow;
  std::shared_ptr<RecordingExporter> exporter;
  std::shared_ptr<RecordingObserver> observer;
  std::shared_ptr<TelemetryManager> telemetry;
};

/// The backends of most fault tests: one thread pool of two threads.
inline std::vector<std::shared_ptr<Backend>> two_threads() {
  return {ThreadPoolBackend::create({.threads = 2})};
}

/// Runs `n` no-op tasks on `flow` and waits for each (checking its value).
inline std::vector<AnyTask> run_tasks(WorkflowEngine& flow, int n) {
  auto f = flow.function_task("f", [](int i) { return i; });
  std::vector<TaskHandle<int>> hs;
  for (int i = 0; i < n; ++i) hs.push_back(f(i));
  for (int i = 0; i < n; ++i) EXPECT_EQ(hs[static_cast<std::size_t>(i)].get(), i);
  return {hs.begin(), hs.end()};
}

/// what() of the exception in `error`, or "(none)".
inline std::string what_of(const std::exception_ptr& error) {
  if (!error) return "(none)";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "(not a std::exception)";
  }
}

/// what() of a DependencyFailure's root cause, or of `error` itself when it is none.
inline std::string root_what_of(const std::exception_ptr& error) {
  try {
    if (error) std::rethrow_exception(error);
  } catch (const DependencyFailure& e) {
    return what_of(e.root_cause());
  } catch (...) {  // NOLINT(bugprone-empty-catch): not a dependency failure
  }
  return what_of(error);
}

}  // namespace asyncflow::testing
