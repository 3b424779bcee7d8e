#include "asyncflow/backend/noop_backend.hpp"

namespace asyncflow {

std::shared_ptr<NoopBackend> NoopBackend::create(std::string name) {
  return std::make_shared<NoopBackend>(std::move(name));
}

NoopBackend::NoopBackend(std::string name) : name_(std::move(name)) {}

void NoopBackend::submit(std::span<BackendTask* const> batch) {
  for (BackendTask* task : batch) task->run_dry();
}

// Every task is complete before submit() returns, so there is never anything to stop.
void NoopBackend::cancel(BackendTask&) noexcept {}

}  // namespace asyncflow
