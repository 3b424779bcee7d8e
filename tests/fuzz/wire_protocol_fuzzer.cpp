// Fuzzes the worker side of the registered-function protocol (core/worker_protocol.hpp): each
// input is one request line for a worker that has a few functions registered. The answer must
// always be one line of strict JSON with a boolean "ok" (and a "result", or an "error_type"
// and "message"); answer_request must never throw or crash. The wire codec must round-trip
// whatever it decodes: encoding a decoded message and decoding it again changes nothing.
#include <asyncflow/common/error.hpp>
#include <asyncflow/core/registered_function.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/worker_protocol.hpp"

namespace {

// The registered functions, one per kind of argument the protocol carries. None of them has
// undefined behaviour of its own (no int overflow), so whatever a sanitizer finds is in the
// protocol.
const auto kTwice =
    asyncflow::register_function("fuzz.twice", [](int x) { return std::int64_t{x} * 2; });
const auto kScale = asyncflow::register_function("fuzz.scale", [](double x, double k) {
  return x * k;  // inf and NaN results travel tagged
});
const auto kGreet =
    asyncflow::register_function("fuzz.greet", [](std::string who) { return "hello " + who; });
const auto kSum = asyncflow::register_function("fuzz.sum", [](std::vector<int> v) {
  return std::accumulate(v.begin(), v.end(), std::int64_t{0});
});
const auto kFail = asyncflow::register_function("fuzz.fail", [](int code) -> int {
  throw std::runtime_error("failed " + std::to_string(code));
});
const auto kNothing = asyncflow::register_function("fuzz.nothing", [] {});

[[noreturn]] void fail(const std::string& what, const std::string& text) {
  std::fprintf(stderr, "wire_protocol_fuzzer: %s\n%s\n", what.c_str(), text.c_str());
  std::abort();
}

void check_answer(const std::string& answer) {
  if (answer.find('\n') != std::string::npos) fail("the answer is not one line", answer);
  const auto parsed = nlohmann::json::parse(answer, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) fail("the answer is not JSON", answer);
  if (!parsed.is_object()) fail("the answer is not an object", answer);
  const auto ok = parsed.find("ok");
  if (ok == parsed.end() || !ok->is_boolean()) fail("the answer has no boolean \"ok\"", answer);
  if (ok->get<bool>()) {
    if (!parsed.contains("result")) fail("a success without \"result\"", answer);
  } else if (!parsed.contains("error_type") || !parsed["error_type"].is_string() ||
             !parsed.contains("message") || !parsed["message"].is_string()) {
    fail("a failure without \"error_type\" and \"message\" strings", answer);
  }
}

/// from_wire, then to_wire and from_wire again: the second text must equal the first.
void check_round_trip(const std::string& line) {
  nlohmann::json decoded;
  try {
    decoded = asyncflow::detail::from_wire(line);
  } catch (const nlohmann::json::exception&) {
    return;  // not JSON: documented
  } catch (const asyncflow::Error&) {
    return;  // nested deeper than kMaxWireDepth: documented
  }
  // Decoded text is valid UTF-8 (the parser checks it) and within the depth limit, so it
  // must encode.
  const std::string once = asyncflow::detail::to_wire(decoded, "the fuzzed message");
  const std::string twice =
      asyncflow::detail::to_wire(asyncflow::detail::from_wire(once), "the fuzzed message");
  if (once != twice) fail("to_wire(from_wire(x)) changed a message:\n" + twice, once);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  check_answer(asyncflow::detail::answer_request(line));
  check_round_trip(line);
  return 0;
}
