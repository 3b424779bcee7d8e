// Export interface helpers (exporter.hpp).
#include "asyncflow/telemetry/exporter.hpp"

namespace asyncflow {

std::string_view to_string(ExportResult result) noexcept {
  switch (result) {
    case ExportResult::kSuccess: return "success";
    case ExportResult::kFailure: return "failure";
    case ExportResult::kFailureFull: return "failure (full)";
    case ExportResult::kFailureInvalidArgument: return "failure (invalid argument)";
  }
  return "failure";
}

}  // namespace asyncflow
