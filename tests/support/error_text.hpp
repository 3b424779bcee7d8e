// error_of(): the message of the asyncflow::Error a callable throws, for tests that check
// error texts.
#pragma once

#include <asyncflow/common/error.hpp>
#include <functional>
#include <string>

namespace asyncflow::testing {

/// what() of the asyncflow::Error `f` throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace asyncflow::testing
