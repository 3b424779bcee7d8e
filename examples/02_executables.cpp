// A pipeline of real programs: each command is built from upstream results once they exist.
//
//   seq 1 N  ──(stdout captured to a file)──┬── wc -l <file>          (argv, no shell)
//                                          ├── awk '{s+=$1} END…'    (a shell line)
//                                          └── grep -c x <file>      (fails: exit status 1)
//   check (a function task) compares the programs' answers with N(N+1)/2.
//
//   02_executables [N]      (default N: 100000)
#include <asyncflow/asyncflow.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace af = asyncflow;
using Argv = std::vector<std::string>;

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 100000;
  if (n <= 0) {
    std::fprintf(stderr, "usage: %s [N > 0]\n", argv[0]);
    return 2;
  }
  // Functions on a thread pool, programs on a process backend (at most 4 alive at once).
  auto flow =
      af::WorkflowEngine::create({.backends = {af::ThreadPoolBackend::create(),
                                               af::ProcessBackend::create({.max_processes = 4})}});

  // capture_stdio: stdout goes to {work_dir}/{uid}.stdout, and the result is that file's path.
  auto generate = flow->executable_task("generate",
                                        [n] {
                                          return Argv{"seq", "1", std::to_string(n)};
                                        },
                                        {.description = {.capture_stdio = true}});
  auto count = flow->executable_task("count", [](const std::string& file) {
    return Argv{"wc", "-l", file};
  });
  auto total =
      flow->executable_task("total",
                            [](const std::string& file) {
                              return "awk '{ s += $1 } END { printf \"%.0f\", s }' '" + file + "'";
                            },
                            {.description = {.timeout = std::chrono::seconds(60), .shell = true}});
  auto missing = flow->executable_task("missing", [](const std::string& file) {
    return Argv{"grep", "-c", "x", file};  // no line has an x: grep exits with status 1
  });
  auto check = flow->function_task("check", [n](const std::string& lines, const std::string& sum) {
    const long counted = std::atol(lines.c_str());  // "100000 /path/task.000001.stdout\n"
    const long long summed = std::atoll(sum.c_str());
    const long long expected = static_cast<long long>(n) * (n + 1) / 2;
    std::printf("lines: %ld (expected %ld)\nsum:   %lld (expected %lld)\n", counted, n, summed,
                expected);
    return counted == n && summed == expected;
  });

  auto data = generate();
  auto ok = check(count(data), total(data));
  auto grep = missing(data);

  int status = ok.get() ? 0 : 1;
  std::printf("data file: %s\n", data.get().c_str());
  try {
    grep.get();
    std::printf("grep found an x: unexpected\n");
    status = 1;
  } catch (const af::ProcessError& e) {
    std::printf("grep failed as expected (exit status %d):\n  %s\n", e.exit_code(), e.what());
    if (e.exit_code() != 1) status = 1;
  }
  flow->shutdown();
  return status;
}
