// Fuzzes what an executable task hands to spawn: check_spawn_input (backend/spawn.hpp) on
// fuzzed argv and environment, and Command::display(). check_spawn_input must throw
// asyncflow::Error exactly for the inputs it documents (no program, a NUL in an argument, an
// environment name that is empty or holds '=' or NUL, a value holding NUL), with a message
// that starts with the task's name and never depends on a value (values may be secrets).
// display() must quote argv so that a POSIX shell splits it back into the same words.
#include <fuzzer/FuzzedDataProvider.h>

#include <asyncflow/backend/command.hpp>
#include <asyncflow/common/error.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backend/spawn.hpp"

namespace af = asyncflow;

namespace {

constexpr const char* kWho = "task.000001";

[[noreturn]] void fail(const std::string& what, const std::string& text) {
  std::fprintf(stderr, "command_fuzzer: %s\n%s\n", what.c_str(), text.c_str());
  std::abort();
}

bool has_nul(const std::string& s) {
  return s.find('\0') != std::string::npos;
}

/// Whether check_spawn_input's contract refuses this input.
bool should_refuse(const af::Command& command, const std::map<std::string, std::string>* env) {
  if (command.argv.empty() || command.argv.front().empty()) return true;
  for (const std::string& arg : command.argv) {
    if (has_nul(arg)) return true;
  }
  if (env == nullptr) return false;
  for (const auto& [key, value] : *env) {
    if (key.empty() || key.find('=') != std::string::npos || has_nul(key) || has_nul(value)) {
      return true;
    }
  }
  return false;
}

/// The message check_spawn_input throws, or nullopt when it accepts the input.
std::optional<std::string> refusal(const af::Command& command,
                                   const std::map<std::string, std::string>* env) {
  try {
    af::detail::check_spawn_input(kWho, command, env);
  } catch (const af::Error& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

/// The words a POSIX shell makes of `line`, for the subset display() writes: words separated
/// by one space, single-quoted parts, and \' between them. nullopt when `line` is outside it
/// (an unterminated quote).
std::optional<std::vector<std::string>> shell_words(const std::string& line) {
  std::vector<std::string> words;
  if (line.empty()) return words;
  std::string word;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '\'') {
        quoted = false;
      } else {
        word += c;
      }
    } else if (c == '\'') {
      quoted = true;
    } else if (c == '\\' && i + 1 < line.size()) {
      word += line[++i];
    } else if (c == ' ') {
      words.push_back(std::move(word));
      word.clear();
    } else {
      word += c;
    }
  }
  if (quoted) return std::nullopt;
  words.push_back(std::move(word));
  return words;
}

void check_display(const af::Command& command) {
  const std::string shown = command.display();
  if (!command.shell.empty()) {
    if (shown != command.shell) fail("a shell command is not shown as its line", shown);
    return;
  }
  const auto words = shell_words(shown);
  if (!words || *words != command.argv) fail("display() does not split back into argv", shown);
}

void check_spawn_input_contract(const af::Command& command,
                                const std::map<std::string, std::string>* env) {
  const std::optional<std::string> message = refusal(command, env);
  if (message.has_value() != should_refuse(command, env)) {
    fail(message ? "refused an input the contract accepts" : "accepted an input it must refuse",
         message.value_or(command.display()));
  }
  if (!message || env == nullptr) return;
  if (message->rfind(std::string(kWho) + ": ", 0) != 0) {
    fail("the message does not start with the task's name", *message);
  }
  // The same environment with every value's text replaced (its NUL bytes kept, so the same
  // check fails): a message that changes quoted a value.
  std::map<std::string, std::string> masked;
  for (const auto& [key, value] : *env) {
    std::string m = value;
    for (char& c : m) c = c == '\0' ? '\0' : 'v';
    masked.emplace(key, std::move(m));
  }
  const std::optional<std::string> masked_message = refusal(command, &masked);
  if (masked_message != message) {
    fail("the message depends on an environment value:\n" + masked_message.value_or(""), *message);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  af::Command command;
  const auto args = in.ConsumeIntegralInRange<std::size_t>(0, 8);
  for (std::size_t i = 0; i < args; ++i) command.argv.push_back(in.ConsumeRandomLengthString(64));
  if (in.ConsumeIntegralInRange<int>(0, 3) == 0) command.shell = in.ConsumeRandomLengthString(64);
  std::map<std::string, std::string> env;
  const bool with_env = in.ConsumeBool();
  const auto variables = in.ConsumeIntegralInRange<std::size_t>(0, 6);
  for (std::size_t i = 0; i < variables; ++i) {
    std::string key = in.ConsumeRandomLengthString(24);
    env[std::move(key)] = in.ConsumeRandomLengthString(48);
  }
  check_display(command);
  check_spawn_input_contract(command, with_env ? &env : nullptr);
  return 0;
}
