// Sets an environment variable for the scope of a test and restores what was there. Tests that
// use it must not run threads that read the environment at the same time.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

namespace asyncflow::testing {

/// Not thread-safe (the environment is process-wide).
class ScopedEnv {
 public:
  /// value == nullopt unsets the variable.
  ScopedEnv(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value) {
      ::setenv(name_.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace asyncflow::testing
