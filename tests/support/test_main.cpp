// main() of the test executables: a process started as a ProcessBackend function worker serves
// calls (the registered functions of the test binary; suites that link the engine); any other
// works under a temp dir of its own, removed when it exits: the files tests and engines make
// there (session dirs `{work_dir}/{uid}`, captured output, checkpoints) go with it.
#include <gtest/gtest.h>
#include <unistd.h>

#if ASYNCFLOW_TESTS_WITH_ENGINE
#include <asyncflow/core/registered_function.hpp>
#endif

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

int main(int argc, char** argv) {
#if ASYNCFLOW_TESTS_WITH_ENGINE
  asyncflow::serve_if_worker(argc, argv);
#endif
  ::testing::InitGoogleTest(&argc, argv);
  // Under the directory ::testing::TempDir() would have given (TEST_TMPDIR, else TMPDIR or /tmp).
  const std::filesystem::path base = ::testing::TempDir();
  const std::filesystem::path dir = base / ("asyncflow-tests." + std::to_string(::getpid()));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // a previous process with this pid was killed
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "cannot create test temp dir %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  ::setenv("TEST_TMPDIR", dir.c_str(), 1);  // ::testing::TempDir() reads it at every call
  const int result = RUN_ALL_TESTS();
  std::filesystem::remove_all(dir, ec);
  return result;
}
