// Internal: the small text helpers the environment readers share (OTEL_* values).
#pragma once

#include <string>
#include <string_view>

namespace asyncflow::detail {

/// `s` without leading and trailing spaces and tabs.
inline std::string_view trim_blanks(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// `s` with ASCII letters in lowercase.
inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

}  // namespace asyncflow::detail
