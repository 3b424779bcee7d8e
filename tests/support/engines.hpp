// Engine builders shared by the tests: every engine works under the test temp dir.
#pragma once

#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>
#include <memory>
#include <vector>

namespace asyncflow::testing {

inline std::unique_ptr<WorkflowEngine> engine_with(std::vector<std::shared_ptr<Backend>> backends) {
  return WorkflowEngine::create(
      {.backends = std::move(backends), .work_dir = ::testing::TempDir()});
}

inline std::unique_ptr<WorkflowEngine> pool_engine(std::size_t threads = 0) {
  return engine_with({ThreadPoolBackend::create({.threads = threads})});
}

}  // namespace asyncflow::testing
