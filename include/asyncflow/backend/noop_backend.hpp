// NoopBackend: completes every task at submission without running it. Used for dry runs
// (EngineOptions::dry_run) and to measure pure orchestration overhead.
#pragma once

#include <memory>
#include <string>

#include "asyncflow/backend/backend.hpp"

namespace asyncflow {

/// Completes each submitted task at once, on the submitting thread, with a value-initialized
/// result; task bodies never run. Cancel has nothing to stop (tasks finish inside submit()).
/// Thread-safe.
class NoopBackend final : public Backend {
 public:
  /// @param name the backend's routing name (default "noop").
  /// @param runs_executables whether executable tasks may be routed here (their builders do
  ///        not run either). A dry run's stand-ins copy it from the backends they replace, so
  ///        routing is checked as in the real run.
  static std::shared_ptr<NoopBackend> create(std::string name = "noop",
                                             bool runs_executables = true);

  explicit NoopBackend(std::string name, bool runs_executables = true);
  const std::string& name() const noexcept override { return name_; }
  bool runs_executables() const noexcept override { return runs_executables_; }
  void submit(std::span<BackendTask* const> batch) override;
  void cancel(BackendTask& task) noexcept override;

 private:
  std::string name_;
  bool runs_executables_;
};

}  // namespace asyncflow
