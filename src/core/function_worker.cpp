// The registry of named functions, the protocol's wire format, and the worker side of
// ProcessBackend's function calls: one JSON request per line in, one JSON answer per line out,
// on the connection named by ASYNCFLOW_WORKER_FD (stdin/stdout when run by hand).
//
//   request:  {"function": "square", "args": [7]}
//   response: {"ok": true, "result": 49}
//             {"ok": false, "error_type": "std::invalid_argument", "message": "…"}
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "asyncflow/backend/process_backend.hpp"
#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/core/errors.hpp"
#include "asyncflow/core/registered_function.hpp"
#include "call_usage_meter.hpp"
#include "common/exception_text.hpp"
#include "worker_protocol.hpp"

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

constexpr const char* kFloatTag = "$asyncflow.float";

/// Visits every value of `root` without recursion (a deep document must not overflow the
/// stack), stopping with an Error beyond kMaxWireDepth. `visit(json&)` may replace a value.
template <class Json, class Visit>
void walk(Json& root, const std::string& what, Visit visit) {
  std::vector<std::pair<Json*, std::size_t>> stack{{&root, 1}};
  while (!stack.empty()) {
    auto [value, depth] = stack.back();
    stack.pop_back();
    visit(*value);
    if (!value->is_structured()) continue;
    if (depth >= kMaxWireDepth) {
      throw Error(what + " is nested deeper than " + std::to_string(kMaxWireDepth) +
                  " levels of arrays and objects, which the worker protocol does not carry");
    }
    for (auto& child : *value) stack.emplace_back(&child, depth + 1);
  }
}

bool non_finite(const nlohmann::json& v) {
  return v.is_number_float() && !std::isfinite(v.get<double>());
}

std::string answer_text(const std::string& line) {
  std::string name = "?";
  try {
    const nlohmann::json request = from_wire(line);
    name = request.at("function").get<std::string>();
    const JsonCall* call = find_json_call(name);
    if (call == nullptr) {
      throw Error("no function named '" + name +
                  "' is registered in the worker (register it "
                  "at namespace scope, so that every process of the program has it)");
    }
    return to_wire({{"ok", true}, {"result", (*call)(request.at("args"))}},
                   "the result of '" + name + "'");
  } catch (...) {
    auto [type, message] = describe_exception(std::current_exception());
    // Messages may quote bad bytes: they travel replaced, not as a second failure.
    return nlohmann::json{{"ok", false}, {"error_type", type}, {"message", message}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

/// Reads lines from a descriptor (the worker's connection), without iostreams.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  /// The next line, without its newline; false at end of input or on a read error.
  bool next(std::string& line) {
    for (;;) {
      if (const std::size_t nl = buffer_.find('\n', start_); nl != std::string::npos) {
        line.assign(buffer_, start_, nl - start_);
        start_ = nl + 1;
        return true;
      }
      buffer_.erase(0, start_);
      start_ = 0;
      char chunk[65536];
      const ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;  // a last line without newline is a torn request: dropped
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buffer_;
  std::size_t start_ = 0;
};

}  // namespace

void throw_wrong_argument(const nlohmann::json& value, const char* expected) {
  std::string shown = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
  throw nlohmann::json::type_error::create(
      302, std::string("expected ") + expected + ", got " + value.type_name() + " " + shown,
      &value);
}

std::string to_wire(const nlohmann::json& value, const std::string& what) {
  bool has_non_finite = false;
  walk(value, what,
       [&](const nlohmann::json& v) { has_non_finite = has_non_finite || non_finite(v); });
  const nlohmann::json* out = &value;
  nlohmann::json tagged;
  if (has_non_finite) {
    tagged = value;
    walk(tagged, what, [](nlohmann::json& v) {
      if (!non_finite(v)) return;
      const double d = v.get<double>();
      v = {{kFloatTag, std::isnan(d) ? "nan" : d > 0 ? "inf" : "-inf"}};
    });
    out = &tagged;
  }
  try {
    return out->dump();
  } catch (const nlohmann::json::type_error& e) {  // 316: a string that is not UTF-8
    throw Error(what + " holds a string that is not valid UTF-8 (" + e.what() +
                "): JSON carries text only; pass bytes as std::vector<std::uint8_t>");
  }
}

nlohmann::json from_wire(const std::string& text) {
  nlohmann::json value = nlohmann::json::parse(text);
  walk(value, "the message", [](nlohmann::json& v) {
    if (!v.is_object() || v.size() != 1) return;
    const auto it = v.find(kFloatTag);
    if (it == v.end() || !it->is_string()) return;
    const std::string& s = it->get_ref<const std::string&>();
    const double d = s == "nan"    ? std::numeric_limits<double>::quiet_NaN()
                     : s == "inf"  ? std::numeric_limits<double>::infinity()
                     : s == "-inf" ? -std::numeric_limits<double>::infinity()
                                   : 0;
    if (d == 0) return;
    v = d;
  });
  return value;
}

void add_usage(std::string& answer, const TaskUsage& usage) noexcept {
  try {
    nlohmann::json fields = nlohmann::json::object();
    visit_usage_fields(usage, [&](const char* name, const auto& field) {
      if (field) fields[name] = *field;
    });
    // The answer is one JSON object of ours: the field goes in before its closing brace.
    if (fields.empty() || answer.empty() || answer.back() != '}') return;
    answer.pop_back();
    answer += ",\"usage\":";
    answer += fields.dump();
    answer += '}';
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the answer goes without it
  }
}

std::string answer_request(const std::string& line) noexcept {
  try {
    return answer_text(line);
  } catch (...) {  // out of memory while describing a failure
    return R"({"ok":false,"error_type":"std::bad_alloc","message":"the worker ran out of memory"})";
  }
}

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
  int requests = STDIN_FILENO;
  int replies = STDOUT_FILENO;
  if (const char* fd = std::getenv(kWorkerFdVariable)) {
    char* end = nullptr;
    const long n = std::strtol(fd, &end, 10);
    if (end == fd || *end != '\0' || n < 0 || n > 1 << 20) {
      std::fprintf(stderr, "asyncflow worker: %s='%s' is not a descriptor number\n",
                   kWorkerFdVariable, fd);
      std::_Exit(64);
    }
    requests = replies = static_cast<int>(n);
    ::unsetenv(kWorkerFdVariable);  // not for the programs the functions run
  } else {
    // By hand: the protocol keeps the original stdout; what the functions print goes to stderr.
    replies = ::dup(STDOUT_FILENO);
    if (replies < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
      std::perror("asyncflow worker: cannot set up its output");
      std::_Exit(70);
    }
  }
  std::optional<detail::CallUsageMeter> meter;
  if (const char* measure = std::getenv(kWorkerUsageVariable)) {
    if (std::strcmp(measure, "1") == 0) meter.emplace(/*peak_memory=*/true);
    if (std::strcmp(measure, "no-peak") == 0) meter.emplace(/*peak_memory=*/false);
    ::unsetenv(kWorkerUsageVariable);
  }
  detail::LineReader reader(requests);
  std::string line;
  while (reader.next(line)) {
    if (meter) meter->begin();
    std::string answer = detail::answer_request(line);
    if (meter) detail::add_usage(answer, meter->end());
    answer += '\n';
    if (!detail::write_all(replies, answer)) break;
  }
  std::cout.flush();
  std::_Exit(0);  // no static destructors: the parent program's globals are not ours to tear down
}

}  // namespace asyncflow
