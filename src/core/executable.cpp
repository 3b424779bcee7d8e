// Executable tasks on the engine side: routing to a backend that runs programs, turning what a
// builder returned into a Command; and the check of every task's TaskDescription.
#include <string>
#include <utility>
#include <vector>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/core/errors.hpp"
#include "asyncflow/detail/engine_hooks.hpp"
#include "engine_core.hpp"

namespace asyncflow::detail {

namespace {

std::string task_label(const Node& node) {
  return "executable task '" + node.name() + "' (" + node.uid() + ")";
}

}  // namespace

void check_task_description(const TaskDescription& d, std::string_view task_name) {
  const std::string who = "task '" + std::string(task_name) + "': TaskDescription::";
  if (d.timeout && d.timeout->count() < 0) {
    throw Error(who + "timeout is negative (" + std::to_string(d.timeout->count()) +
                " ms); give a positive limit, or none");
  }
  if (d.cores < 1) throw Error(who + "cores is " + std::to_string(d.cores) + "; at least 1");
  if (d.ranks < 1) throw Error(who + "ranks is " + std::to_string(d.ranks) + "; at least 1");
  if (d.gpus < 0) throw Error(who + "gpus is " + std::to_string(d.gpus) + "; 0 or more");
}

Backend* engine_executable_backend(const EngineCore* core, std::string_view name,
                                   std::string_view task_name) {
  if (!name.empty()) {
    Backend* b = engine_backend(core, name);  // throws for unknown names
    if (!b->runs_executables()) {
      throw Error("executable task '" + std::string(task_name) + "': backend '" +
                  std::string(name) +
                  "' runs only in-process functions; route it to a "
                  "ProcessBackend");
    }
    return b;
  }
  MutexLock lock(core->backends_mu);
  if (core->backends.empty()) {
    throw EngineShutdownError("engine '" + core->uid + "' has been shut down");
  }
  // The default first, so a dry run (every backend a noop) keeps its routing.
  if (core->backends.front()->runs_executables()) return core->backends.front().get();
  for (const auto& b : core->backends) {
    if (b->runs_executables()) return b.get();
  }
  throw Error("executable task '" + std::string(task_name) + "': engine '" + core->uid +
              "' has no backend that runs programs; add one, e.g. EngineOptions::backends = "
              "{ThreadPoolBackend::create(), ProcessBackend::create()}");
}

Command make_command(std::vector<std::string> argv, const Node& node) {
  if (argv.empty() || argv.front().empty()) {
    throw Error(task_label(node) +
                ": its builder returned an empty command (argv[0] must name "
                "the program)");
  }
  return Command{std::move(argv)};
}

Command make_command(std::string line, const Node& node) {
  if (!node.description().shell) {
    throw Error(task_label(node) + ": its builder returned the command line \"" + line +
                "\", which needs a shell; set TaskDescription::shell = true, or return an argv "
                "vector to run the program directly");
  }
  if (line.find_first_not_of(" \t\n") == std::string::npos) {
    throw Error(task_label(node) + ": its builder returned an empty command line");
  }
  return Command{{"/bin/sh", "-c", line}, std::move(line)};
}

Command make_command(Command command, const Node& node) {
  if (!command.shell.empty()) return make_command(std::move(command.shell), node);
  return make_command(std::move(command.argv), node);
}

void executable_run_in_process(const Node& node) {
  throw Error(task_label(node) + " reached an in-process backend, which cannot run programs");
}

}  // namespace asyncflow::detail
