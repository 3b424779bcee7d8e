// A million no-op tasks under default telemetry options: every event in the checkpoint (five
// per task, plus the session's), every span, the summary's counts exact (issue #12). Release
// builds only: the sanitizer builds run the 20k version (integration suite).
#include <gtest/gtest.h>

#include "support/busy_run.hpp"

namespace asyncflow {
namespace {

TEST(BusyRun, AMillionTasksUnderDefaultOptionsLoseNothing) {
  testing::run_and_count_everything(1'000'000);
}

}  // namespace
}  // namespace asyncflow
