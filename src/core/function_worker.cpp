// The registry of named functions, and the worker side of ProcessBackend's function calls:
// one JSON request per line on stdin, one JSON response per line on the original stdout.
//
//   request:  {"function": "square", "args": [7]}
//   response: {"ok": true, "result": 49}
//             {"ok": false, "error_type": "std::invalid_argument", "message": "…"}
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>
#include <unordered_map>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/core/errors.hpp"
#include "asyncflow/core/registered_function.hpp"
#include "common/exception_text.hpp"

namespace asyncflow {

namespace detail {

namespace {

struct Registry {
  Mutex mu;
  std::unordered_map<std::string, JsonCall> calls ASYNCFLOW_GUARDED_BY(mu);  // never removed
};

Registry& registry() {
  static Registry* r = new Registry;  // immortal: workers and static destructors may race
  return *r;
}

bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

nlohmann::json answer(const std::string& line) {
  std::string name = "?";
  try {
    const nlohmann::json request = nlohmann::json::parse(line);
    name = request.at("function").get<std::string>();
    const JsonCall* call = find_json_call(name);
    if (call == nullptr) {
      throw Error("no function named '" + name +
                  "' is registered in the worker (register it "
                  "at namespace scope, so that every process of the program has it)");
    }
    return {{"ok", true}, {"result", (*call)(request.at("args"))}};
  } catch (...) {
    auto [type, message] = describe_exception(std::current_exception());
    return {{"ok", false}, {"error_type", type}, {"message", message}};
  }
}

}  // namespace

void register_json_call(const std::string& name, JsonCall call) {
  Registry& r = registry();
  MutexLock lock(r.mu);
  if (!r.calls.emplace(name, std::move(call)).second) {
    throw Error("register_function: the name '" + name + "' is already registered");
  }
}

const JsonCall* find_json_call(const std::string& name) noexcept {
  Registry& r = registry();
  MutexLock lock(r.mu);
  auto it = r.calls.find(name);
  return it == r.calls.end() ? nullptr : &it->second;
}

}  // namespace detail

void serve_if_worker(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], kWorkerFlag) != 0) return;
  // The protocol keeps the original stdout; whatever the functions print goes to stderr.
  const int replies = ::dup(STDOUT_FILENO);
  if (replies < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    std::perror("asyncflow worker: cannot set up its pipes");
    std::_Exit(70);
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!detail::write_all(replies, detail::answer(line).dump() + "\n")) break;
  }
  std::cout.flush();
  std::_Exit(0);  // no static destructors: the parent program's globals are not ours to tear down
}

}  // namespace asyncflow
