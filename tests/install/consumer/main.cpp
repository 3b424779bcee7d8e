// Downstream smoke test: an installed asyncflow runs a two-task DAG.
#include <asyncflow/asyncflow.hpp>

#include <iostream>

int main() {
  auto flow = asyncflow::WorkflowEngine::create();
  auto make = flow->function_task("make", [](int n) { return n + 1; });
  auto scale = flow->function_task("scale", [](int x, int k) { return x * k; });
  const int result = scale(make(20), 2).get();  // (20 + 1) * 2
  flow->shutdown();
  std::cout << "asyncflow " << ASYNCFLOW_VERSION << ": result " << result << '\n';
  return result == 42 ? 0 : 1;
}
