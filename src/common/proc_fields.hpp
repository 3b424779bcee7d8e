// Internal: reading the numbers of /proc and cgroup files ("rchar: 123", "VmHWM:  2048 kB")
// and rusage times, for the measurements of the process backend and of function workers.
#pragma once

#include <sys/resource.h>
#include <sys/time.h>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace asyncflow::detail {

/// A decimal number that is all of `s` but a trailing newline or spaces; else nullopt.
inline std::optional<std::uint64_t> parse_u64(std::string_view s) noexcept {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

/// The number on the line "`key`: N" of `text` (spaces or tabs after the colon; a " kB"
/// unit is multiplied out); nullopt when the line is missing or not a number.
inline std::optional<std::uint64_t> proc_field(std::string_view text,
                                               std::string_view key) noexcept {
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(at, end - at);
    at = end + 1;
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ':') {
      continue;
    }
    line.remove_prefix(key.size() + 1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    std::uint64_t scale = 1;
    if (line.size() > 3 && line.substr(line.size() - 3) == " kB") {
      line.remove_suffix(3);
      scale = 1024;
    }
    const auto v = parse_u64(line);
    if (!v) return std::nullopt;
    return *v * scale;
  }
  return std::nullopt;
}

/// The counters of a /proc/<pid>/io text into `usage`'s read_chars, write_chars, read_bytes
/// and write_bytes (a TaskUsage; a template, so that this layer need not see it).
template <class Usage>
void parse_process_io(std::string_view text, Usage& usage) noexcept {
  usage.read_chars = proc_field(text, "rchar");
  usage.write_chars = proc_field(text, "wchar");
  usage.read_bytes = proc_field(text, "read_bytes");
  usage.write_bytes = proc_field(text, "write_bytes");
}

/// A rusage time in seconds.
inline double seconds(const struct timeval& tv) noexcept {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

/// What grew from rusage `before` to `after` into `usage`'s CPU times and context switches
/// (a TaskUsage): the usage of one call, measured across it.
template <class Usage>
void rusage_difference(const struct rusage& before, const struct rusage& after,
                       Usage& usage) noexcept {
  auto count = [](long n) { return n > 0 ? static_cast<std::uint64_t>(n) : std::uint64_t{0}; };
  usage.cpu_user_seconds = seconds(after.ru_utime) - seconds(before.ru_utime);
  usage.cpu_system_seconds = seconds(after.ru_stime) - seconds(before.ru_stime);
  usage.voluntary_switches = count(after.ru_nvcsw - before.ru_nvcsw);
  usage.involuntary_switches = count(after.ru_nivcsw - before.ru_nivcsw);
}

}  // namespace asyncflow::detail
