// NoopBackend: completes at submission without running bodies.
#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>

namespace af = asyncflow;

TEST(Noop, CompletesInsideSubmitWithoutRunningBodies) {
  auto noop = af::NoopBackend::create("dry");
  EXPECT_EQ(noop->name(), "dry");
  auto flow = af::WorkflowEngine::create({.backends = {noop}, .work_dir = ::testing::TempDir()});
  bool ran = false;
  auto f = flow->function_task("f", [&] {
    ran = true;
    return 5;
  });
  auto h = f();
  EXPECT_EQ(h.state(), af::TaskState::kDone) << "finished before the call returned";
  EXPECT_EQ(h.get(), 0);
  EXPECT_FALSE(ran);
  EXPECT_FALSE(h.cancel());
}

TEST(Noop, DryRunEngineMirrorsTheDefaultBackendName) {
  auto flow = af::WorkflowEngine::create({.work_dir = ::testing::TempDir(), .dry_run = true});
  EXPECT_EQ(flow->backend_names(), std::vector<std::string>{"thread_pool"});
  auto routed = flow->function_task("f", [] { return 1; }, {.backend = "thread_pool"});
  EXPECT_EQ(routed().get(), 0);
  const af::Backend& backend = flow->backend();
  EXPECT_EQ(typeid(backend), typeid(af::NoopBackend));
}
