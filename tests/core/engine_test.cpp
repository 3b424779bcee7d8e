#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>

namespace af = asyncflow;

TEST(Engine, SmokeFunctionChain) {
  auto flow = af::WorkflowEngine::create({});
  auto add = flow->function_task("add", [](int a, int b) { return a + b; });
  auto h = add(add(1, 2), 10);
  EXPECT_EQ(h.get(), 13);
}
