// Private: an exception's type name and message, as telemetry and function workers report them.
#pragma once

#include <exception>
#include <string>
#include <utility>

namespace asyncflow::detail {

/// The exception's dynamic type name, demangled ("std::runtime_error"), and its what() ("" for
/// exceptions not derived from std::exception); {"unknown", ""} for a null pointer.
std::pair<std::string, std::string> describe_exception(const std::exception_ptr& error);

}  // namespace asyncflow::detail
