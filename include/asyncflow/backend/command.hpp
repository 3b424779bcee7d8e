// Command: the program an executable task runs, as its builder returned it.
#pragma once

#include <string>
#include <vector>

namespace asyncflow {

/// A program and its arguments. `argv[0]` is the program: a path, or a name looked up in PATH
/// when it has no '/'. Arguments are passed as they are, one per element; no shell sees them,
/// so spaces and quotes inside an argument stay part of it.
///
/// A builder that returns a string instead asks for a shell (TaskDescription::shell must be
/// true): the command becomes {"/bin/sh", "-c", string}, with `shell` = the string.
struct Command {
  std::vector<std::string> argv;
  /// The shell command line when the builder returned a string; empty for argv commands.
  std::string shell{};

  /// The command for messages: the shell line, else argv with arguments quoted where needed.
  std::string display() const;
};

}  // namespace asyncflow
