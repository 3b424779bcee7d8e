// Private: the worker side of the registered-function protocol, one request line in, one
// answer line out (asyncflow::serve_if_worker; the wire format: registered_function.hpp).
#pragma once

#include <string>

#include "asyncflow/backend/task_usage.hpp"

namespace asyncflow::detail {

/// The answer line (JSON text, no newline) to one request line: {"ok": true, "result": …} or
/// {"ok": false, "error_type": …, "message": …} for a bad request, an unknown function, a
/// function that throws, or a result that cannot travel. Never throws.
std::string answer_request(const std::string& line) noexcept;

/// Adds {"usage": {…}} (the fields `usage` has) to an answer line of answer_request().
void add_usage(std::string& answer, const TaskUsage& usage) noexcept;

}  // namespace asyncflow::detail
