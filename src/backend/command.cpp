// Command::display: a command as a person would type it, for messages.
#include "asyncflow/backend/command.hpp"

#include <string_view>

namespace asyncflow {

namespace {

bool needs_quotes(std::string_view arg) {
  if (arg.empty()) return true;
  for (char c : arg) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       std::string_view("-_./=:,+%@").find(c) != std::string_view::npos;
    if (!plain) return true;
  }
  return false;
}

}  // namespace

std::string Command::display() const {
  if (!shell.empty()) return shell;
  std::string out;
  for (const std::string& arg : argv) {
    if (!out.empty()) out += ' ';
    if (!needs_quotes(arg)) {
      out += arg;
      continue;
    }
    out += '\'';  // POSIX single quotes; an embedded ' becomes '\''
    for (char c : arg) {
      if (c == '\'') {
        out += "'\\''";
      } else {
        out += c;
      }
    }
    out += '\'';
  }
  return out;
}

}  // namespace asyncflow
