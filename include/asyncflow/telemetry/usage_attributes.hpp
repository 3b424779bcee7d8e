// The attribute names under which a task's measured resource usage (asyncflow::TaskUsage)
// appears on its TaskCompleted / TaskFailed event and its span. docs/checkpoint-format.md
// ("Task usage") documents them, with the Nextflow trace field each corresponds to.
#pragma once

#include <string_view>

namespace asyncflow::usage_attributes {

/// Every usage attribute starts with this prefix.
inline constexpr std::string_view kPrefix = "usage.";

inline constexpr const char* kWallSeconds = "usage.wall_seconds";
inline constexpr const char* kCpuUserSeconds = "usage.cpu_user_seconds";
inline constexpr const char* kCpuSystemSeconds = "usage.cpu_system_seconds";
inline constexpr const char* kPeakMemoryBytes = "usage.peak_memory_bytes";
inline constexpr const char* kReadBytes = "usage.read_bytes";
inline constexpr const char* kWriteBytes = "usage.write_bytes";
inline constexpr const char* kReadChars = "usage.read_chars";
inline constexpr const char* kWriteChars = "usage.write_chars";
inline constexpr const char* kVoluntarySwitches = "usage.voluntary_switches";
inline constexpr const char* kInvoluntarySwitches = "usage.involuntary_switches";

}  // namespace asyncflow::usage_attributes
