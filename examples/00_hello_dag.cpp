// Hello DAG: function tasks wired into a diamond, a block (sub-workflow) that co_awaits, and a
// workflow scope. README.md's quick start is this file; keep the two identical.
#include <asyncflow/asyncflow.hpp>

#include <iostream>

int main() {
  auto flow = asyncflow::WorkflowEngine::create();  // default backend: a thread pool

  // A factory per function; each call creates a task and returns its TaskHandle<T> at once.
  auto load = flow->function_task("load", [](int n) { return n; });
  auto square = flow->function_task("square", [](int x) { return x * x; });
  auto twice = flow->function_task("twice", [](int x) { return 2 * x; });
  auto add = flow->function_task("add", [](int a, int b) { return a + b; });

  // A diamond: a handle passed as an argument is a dependency, and its value is passed in.
  auto a = load(3);
  auto b = square(a);
  auto c = twice(a);
  auto d = add(b, c);  // runs after b and c: 9 + 6
  std::cout << d.uid() << " add = " << d.get() << '\n';

  // A block: a sub-workflow whose body is a coroutine; co_await suspends it without holding
  // a thread. Tasks created in the body belong to the block.
  auto pipeline = flow->block("pipeline", [&](int seed) -> asyncflow::Task<int> {
    int x = co_await square(load(seed));
    co_return co_await add(twice(x), x);
  });

  int total = 0;
  {
    auto scope = flow->workflow_scope("hello");  // tasks created here carry workflow id "hello"
    auto p = pipeline(4);                        // 16 -> 32 + 16
    auto e = add(p, d);                          // a block's handle is a dependency too
    std::cout << p.uid() << " pipeline = " << p.get() << '\n';
    std::cout << e.uid() << " add = " << e.get() << " (workflow " << scope.id() << ")\n";
    total = e.get();
  }

  flow->shutdown();  // idempotent; the destructor calls it too
  return total == 63 ? 0 : 1;
}
