// A path under the test temp directory that no other process uses: two runs of a suite at
// once (a developer's loop next to CI, say) must not remove or read each other's files.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace asyncflow::testing {

/// `<TempDir>/<name>.<pid>`, removed first if a previous run left it behind.
inline std::filesystem::path fresh_temp_path(std::string_view name) {
  auto path = std::filesystem::path(::testing::TempDir()) /
              (std::string(name) + "." + std::to_string(::getpid()));
  std::filesystem::remove_all(path);
  return path;
}

}  // namespace asyncflow::testing
