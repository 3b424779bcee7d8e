#include "asyncflow/backend/noop_backend.hpp"

namespace asyncflow {

std::shared_ptr<NoopBackend> NoopBackend::create(std::string name, bool runs_executables) {
  return std::make_shared<NoopBackend>(std::move(name), runs_executables);
}

NoopBackend::NoopBackend(std::string name, bool runs_executables)
    : name_(std::move(name)), runs_executables_(runs_executables) {}

void NoopBackend::submit(std::span<BackendTask* const> batch) {
  for (BackendTask* task : batch) task->run_dry();
}

// Every task is complete before submit() returns, so there is never anything to stop.
void NoopBackend::cancel(BackendTask&) noexcept {}

}  // namespace asyncflow
