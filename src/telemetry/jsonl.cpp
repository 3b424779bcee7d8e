// JSONL line formatting (docs/checkpoint-format.md). Hand-written rather than built on a JSON
// library: the dispatcher formats every event on the telemetry hot path, and building a DOM
// per line costs several allocations per key. Here a line is appended straight into the
// caller's reused buffer, so a batch allocates nothing once the buffer has grown.
//
// The output matches Python's json.dumps(obj) byte for byte (separators ", " and ": ", floats
// as repr(), NaN/Infinity as bare tokens), except that non-ASCII UTF-8 is passed through
// instead of being escaped as \uXXXX (ensure_ascii): both parse to the same strings.
#include "asyncflow/telemetry/jsonl.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <system_error>
#include <memory>
#include <variant>

#include "event_access.hpp"
#include "hex.hpp"
#include "span_line.hpp"

namespace asyncflow::jsonl {

namespace {

constexpr char kHex[] = "0123456789abcdef";

// Bytes that cannot be copied verbatim into a JSON string: 1 = escape, 2 = start of a
// non-ASCII UTF-8 sequence (validated before it is copied). json.dumps escapes DEL (0x7f) too.
constexpr std::array<std::uint8_t, 256> kStringClass = [] {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[static_cast<std::size_t>(c)] = 1;
  t['"'] = 1;
  t['\\'] = 1;
  t[0x7f] = 1;
  for (int c = 0x80; c < 0x100; ++c) t[static_cast<std::size_t>(c)] = 2;
  return t;
}();

void append_int(std::string& out, std::int64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, end);
}

void append_uint(std::string& out, std::uint64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, end);
}

/// `digits` hex digits of `v` (most significant first), zero-padded.
void append_hex(std::string& out, std::uint64_t v, int digits) {
  char buf[16];
  asyncflow::detail::write_hex16(buf, v);
  out.append(buf + 16 - digits, static_cast<std::size_t>(digits));
}

int hex_digits(std::uint64_t v) { return (64 - std::countl_zero(v) + 3) / 4; }

/// A trace id as Python's hex(int) in quotes, or null when invalid.
void render_trace_id(std::string& out, const TraceId& id) {
  if (!id.valid()) {
    out.append("null");
    return;
  }
  out.append("\"0x");
  if (id.high == 0) {
    append_hex(out, id.low, hex_digits(id.low));
  } else {
    append_hex(out, id.high, hex_digits(id.high));
    append_hex(out, id.low, 16);
  }
  out.push_back('"');
}

/// How many of the first min(8, n) bytes at `p` can be copied as they are: the index of the
/// first control character, '"', '\\', DEL or non-ASCII byte. Strings are mostly plain ASCII;
/// testing 8 bytes at once (SWAR) instead of a table lookup per byte made append_string about
/// twice as fast (perf on BM_JsonlWrite's lines).
std::size_t clean_prefix(const unsigned char* p, std::size_t n) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  if constexpr (std::endian::native != std::endian::little) {
    return kStringClass[p[0]] == 0 ? 1 : 0;
  }
  std::uint64_t x = kOnes * 'a';  // a short tail is padded with a clean byte
  std::memcpy(&x, p, n < 8 ? n : 8);
  // A byte b of (v - 1) & ~v has its high bit set when b was 0; the lowest flagged byte is
  // exact (borrows only flag bytes above a real match), which is all countr_zero needs.
  auto zero_bytes = [&](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const std::uint64_t flagged = ((x - kOnes * 0x20) & ~x & kHigh)  // < 0x20
                                | zero_bytes(x ^ (kOnes * '"')) | zero_bytes(x ^ (kOnes * '\\')) |
                                zero_bytes(x ^ (kOnes * 0x7f)) | (x & kHigh);  // DEL, >= 0x80
  const std::size_t clean =
      flagged == 0 ? 8 : static_cast<std::size_t>(std::countr_zero(flagged)) / 8;
  return clean < n ? clean : n;
}

/// Length of the valid UTF-8 sequence at `p` (at most `n` bytes available), or 0 when the
/// bytes there are not valid UTF-8 (overlong forms, surrogates and > U+10FFFF included).
std::size_t utf8_length(const unsigned char* p, std::size_t n) {
  const unsigned char c = p[0];
  auto cont = [&](std::size_t i) { return i < n && (p[i] & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;   // overlong
    if (c == 0xED && p[1] >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;   // overlong
    if (c == 0xF4 && p[1] >= 0x90) return 0;  // > U+10FFFF
    return 4;
  }
  return 0;
}

void append_value(std::string& out, const FieldValue& value) {
  switch (value.index()) {
    case 0: out.append("null"); return;
    case 1: out.append(std::get<bool>(value) ? "true" : "false"); return;
    case 2: append_int(out, std::get<std::int64_t>(value)); return;
    case 3: append_double(out, std::get<double>(value)); return;
    default: append_string(out, std::get<std::string>(value)); return;
  }
}

void append_optional_string(std::string& out, const std::optional<std::string>& s) {
  if (s) {
    append_string(out, *s);
  } else {
    out.append("null");
  }
}

void append_attributes(std::string& out, const Attributes& attributes) {
  out.push_back('{');
  bool first = true;
  for (const auto& [key, value] : attributes) {
    if (!first) out.append(", ");
    first = false;
    append_string(out, key);
    out.append(": ");
    append_value(out, value);
  }
  out.push_back('}');
}

void append_context_head(std::string& out, const asyncflow::detail::EventContext& c) {
  out.append(", \"session_id\": ");
  append_string(out, c.session_id);
  out.append(", \"backend\": ");
  append_string(out, c.backend);
  out.append(", \"task_id\": ");
}

void append_context_tail(std::string& out, const asyncflow::detail::EventContext& c) {
  out.append(", \"node_id\": ");
  append_optional_string(out, c.node_id);
  out.append(", \"attributes\": ");
  append_attributes(out, c.attributes);
}

/// `, "trace_id": <id>, "span_id": ` for `trace_id`: one trace per session, rendered once per
/// thread and trace.
const std::string& trace_and_span_key(const TraceId& trace_id) {
  thread_local TraceId cached;
  thread_local std::string chunk;
  if (trace_id == cached && !chunk.empty()) return chunk;
  chunk = ", \"trace_id\": ";
  render_trace_id(chunk, trace_id);
  chunk += ", \"span_id\": ";
  cached = trace_id;
  return chunk;
}

/// The context's fields as JSON, rendered once when other events share the context (the
/// engine's lifecycle events: most of a line is the same for every event of a task).
const asyncflow::detail::EventContext::Jsonl* rendered(const std::shared_ptr<const asyncflow::detail::EventContext>& c) {
  if (!c) return nullptr;
  if (const auto* j = c->jsonl.load(std::memory_order_acquire)) return j;
  if (c.use_count() < 2) return nullptr;  // this event's own: rendering it once is enough
  auto fresh = std::make_unique<asyncflow::detail::EventContext::Jsonl>();
  append_context_head(fresh->head, *c);
  append_context_tail(fresh->tail, *c);
  const asyncflow::detail::EventContext::Jsonl* expected = nullptr;
  if (c->jsonl.compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
    return fresh.release();
  }
  return expected;  // another writer (a second session given the same event) was first
}

// GCC and Clang have 128-bit integers; __extension__ tells -Wpedantic that we know.
__extension__ using U128 = unsigned __int128;

constexpr std::array<U128, 22> kPow10 = [] {
  std::array<U128, 22> p{};
  p[0] = 1;
  for (std::size_t i = 1; i < p.size(); ++i) p[i] = p[i - 1] * 10;
  return p;
}();

/// Python's repr of `value` when it is written in fixed notation (1e-4 <= |value| < 1e16),
/// for the doubles of every checkpoint line (epoch times, durations); false when the value
/// is left to the general path (whole numbers >= 2^52, powers of two, exact ties).
///
/// repr writes the shortest decimal that reads back as `value`, the closest one if several
/// are as short. With value = m * 2^e, a decimal n / 10^k reads back as `value` when it lies
/// within half an ulp, i.e. |n * 2^(1-e) - 2m * 10^k| <= 10^k (< when m is odd: ties read
/// back to the even neighbour). Exact 128-bit integers decide it. If some n fits for k
/// fractional digits, the nearest integer to value * 10^k does (the interval is centred on
/// it), and so does every larger k; the answer is the smallest k that fits. Checked against
/// std::to_chars' shortest digits in jsonl_test.cpp.
bool append_fixed_shortest(std::string& out, double value) {
  const auto bits = std::bit_cast<std::uint64_t>(value);
  const int biased = static_cast<int>((bits >> 52) & 0x7FF);
  const std::uint64_t fraction = bits & ((std::uint64_t{1} << 52) - 1);
  if (biased == 0 || fraction == 0) return false;  // subnormal, or a power of two (uneven interval)
  const std::uint64_t m = fraction | (std::uint64_t{1} << 52);
  const int e = biased - 1075;  // value = m * 2^e
  if (e >= 0) return false;     // a whole number >= 2^52
  const int shift = 1 - e;      // value * 2^shift = 2m: half an ulp is 1 in these units
  // From k = ceil(-e * log10 2) on, 10^-k < one ulp, so some n fits (78913 / 2^18 ~ log10 2;
  // should the estimate fall one short, the first test fails and to_chars takes over).
  int k = static_cast<int>((static_cast<std::int64_t>(-e) * 78913 + (1 << 18) - 1) >> 18);
  // 2m * 10^k < 2^54 * 10^21 < 2^124: no overflow below (|value| >= 1e-4 keeps shift < 70).
  if (k >= static_cast<int>(kPow10.size()) || shift > 100) return false;
  const bool inclusive = (m & 1) == 0;
  const U128 half = U128{1} << (shift - 1);
  const U128 low_mask = (U128{1} << shift) - 1;
  std::uint64_t digits = 0;
  int fraction_digits = -1;
  for (; k >= 0; --k) {
    const U128 centre = U128{2 * m} * kPow10[static_cast<std::size_t>(k)];
    const U128 rest = centre & low_mask;
    if (rest == half) return false;  // value * 10^k is exactly between two integers
    const U128 n = (centre >> shift) + (rest > half ? 1 : 0);
    const U128 scaled = n << shift;
    const U128 distance = scaled > centre ? scaled - centre : centre - scaled;
    const U128 limit = kPow10[static_cast<std::size_t>(k)];
    if (inclusive ? distance > limit : distance >= limit) break;
    if ((n >> 64) != 0) return false;
    digits = static_cast<std::uint64_t>(n);
    fraction_digits = k;
  }
  if (fraction_digits < 0) return false;
  char text[24];
  const auto [text_end, ec] = std::to_chars(text, text + sizeof text, digits);
  const auto len = static_cast<int>(text_end - text);
  char buf[48];
  char* w = buf;
  if ((bits >> 63) != 0) *w++ = '-';
  if (fraction_digits == 0) {
    w = std::copy(text, text_end, w);
    *w++ = '.';
    *w++ = '0';
  } else if (len > fraction_digits) {
    w = std::copy(text, text_end - fraction_digits, w);
    *w++ = '.';
    w = std::copy(text_end - fraction_digits, text_end, w);
  } else {
    *w++ = '0';
    *w++ = '.';
    w = std::fill_n(w, fraction_digits - len, '0');
    w = std::copy(text, text_end, w);
  }
  out.append(buf, w);
  return true;
}

/// Python's round(x, 3): the exact binary value rounded to 3 decimals (ties to even), read
/// back as the nearest double. to_chars with a precision is exact, like Python's dtoa.
double round3(double x) {
  if (!std::isfinite(x)) return x;
  char buf[400];  // DBL_MAX has 309 integer digits
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::fixed, 3);
  if (ec != std::errc()) return x;
  double r = x;
  std::from_chars(buf, end, r);
  return r;
}

/// Python's round(ns / 1e6, 3): the span's duration_ms. Whole microseconds need no decimal
/// arithmetic: unless the remainder is exactly half a microsecond (a tie, decided by the
/// binary value), ns / 1e6 lies at least 1 ns from a rounding boundary, far more than the
/// division's error below 1e15 ns, so rounding the integer gives round()'s decimal result and
/// one correctly rounded division gives its double.
double duration_ms(std::int64_t ns) {
  constexpr std::int64_t kExactBelow = 1'000'000'000'000'000;
  const std::int64_t rem = ns % 1000;
  if (ns > -kExactBelow && ns < kExactBelow && rem != 500 && rem != -500) {
    const std::int64_t us = ns / 1000 + (rem > 500 ? 1 : 0) - (rem < -500 ? 1 : 0);
    return static_cast<double>(us) / 1000.0;
  }
  return round3(static_cast<double>(ns) / 1e6);
}

/// Appends `"<name><suffix>": ` (suffix: plain ASCII).
void append_suffixed_key(std::string& out, std::string_view name, std::string_view suffix) {
  append_string(out, name);
  out.pop_back();
  out.append(suffix);
  out.append("\": ");
}

// Python sums an OTel counter's int data points to an int; our points hold doubles, so a whole
// total of a counter is written without the ".0" to keep the column's type.
constexpr double kTwo63 = 9223372036854775808.0;

void append_total(std::string& out, double total, bool integral_kind) {
  if (integral_kind && std::isfinite(total) && std::trunc(total) == total && total < kTwo63 &&
      total >= -kTwo63) {
    append_int(out, static_cast<std::int64_t>(total));
  } else {
    append_double(out, total);
  }
}

}  // namespace

void append_id(std::string& out, std::uint64_t id) {
  if (id == 0) {
    out.append("null");
    return;
  }
  out.append("\"0x");
  append_hex(out, id, hex_digits(id));
  out.push_back('"');
}

void append_id(std::string& out, const TraceId& id) {
  // Every line of a session names the same trace: render it once per thread and id.
  thread_local TraceId cached;
  thread_local std::string rendered;
  if (id == cached && !rendered.empty()) {
    out.append(rendered);
    return;
  }
  const std::size_t at = out.size();
  render_trace_id(out, id);
  rendered.assign(out, at, std::string::npos);
  cached = id;
}

void append_double(std::string& out, double value) {
  if (std::isnan(value)) {
    out.append("NaN");
    return;
  }
  if (std::isinf(value)) {
    out.append(value > 0 ? "Infinity" : "-Infinity");
    return;
  }
  // Fast path for the common case (epoch times, durations): in repr's fixed range, plain
  // to_chars picks fixed notation whenever it is not longer than scientific, and its digits
  // are the same shortest round-trip digits; only a whole number needs ".0" added.
  const double magnitude = std::fabs(value);
  if (magnitude >= 1e-4 && magnitude < 1e16) {
    if (append_fixed_shortest(out, value)) return;
    char buf[32];
    auto [last, err] = std::to_chars(buf, buf + sizeof buf, value);
    bool has_point = false;
    bool has_exponent = false;
    for (const char* c = buf; c < last; ++c) {
      has_point = has_point || *c == '.';
      has_exponent = has_exponent || *c == 'e';
    }
    if (!has_exponent) {
      out.append(buf, last);
      if (!has_point) out.append(".0");
      return;
    }
  } else if (value == 0) {
    out.append(std::signbit(value) ? "-0.0" : "0.0");
    return;
  }
  // Shortest round-trip digits in scientific form ("-1.2345e+17", "5e-324"); repr uses the
  // same digits and the same exponent spelling, and switches to fixed notation for
  // 1e-4 <= |x| < 1e16.
  char sci[32];
  auto [end, ec] = std::to_chars(sci, sci + sizeof sci, value, std::chars_format::scientific);
  const char* p = sci;
  const bool negative = *p == '-';
  if (negative) ++p;
  const char* e = p;
  while (*e != 'e') ++e;
  int exponent = 0;
  std::from_chars(e + (e[1] == '+' ? 2 : 1), end, exponent);
  if (exponent < -4 || exponent >= 16) {
    out.append(sci, end);
    return;
  }
  char digits[20];  // at most 17 significant digits
  int n = 0;
  for (const char* d = p; d < e; ++d) {
    if (*d != '.') digits[n++] = *d;
  }
  char buf[40];
  char* w = buf;
  if (negative) *w++ = '-';
  const int point = exponent + 1;  // digits before the decimal point
  if (point <= 0) {
    *w++ = '0';
    *w++ = '.';
    for (int i = 0; i < -point; ++i) *w++ = '0';
    for (int i = 0; i < n; ++i) *w++ = digits[i];
  } else if (point >= n) {
    for (int i = 0; i < n; ++i) *w++ = digits[i];
    for (int i = n; i < point; ++i) *w++ = '0';
    *w++ = '.';
    *w++ = '0';
  } else {
    for (int i = 0; i < point; ++i) *w++ = digits[i];
    *w++ = '.';
    for (int i = point; i < n; ++i) *w++ = digits[i];
  }
  out.append(buf, w);
}

/// True when no byte of `text` needs escaping or UTF-8 validation (the usual case).
bool all_clean(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size();
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  if constexpr (std::endian::native == std::endian::little) {
    for (; n >= 8; p += 8, n -= 8) {
      std::uint64_t x;
      std::memcpy(&x, p, 8);
      auto zero_bytes = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
      if ((((x - kOnes * 0x20) & ~x & kHigh) | zero_bytes(x ^ (kOnes * '"')) |
           zero_bytes(x ^ (kOnes * '\\')) | zero_bytes(x ^ (kOnes * 0x7f)) | (x & kHigh)) != 0) {
        return false;
      }
    }
  }
  for (; n > 0; ++p, --n) {
    if (kStringClass[*p] != 0) return false;
  }
  return true;
}

void append_string(std::string& out, std::string_view text) {
  if (all_clean(text)) {
    out.reserve(out.size() + text.size() + 2);
    out.push_back('"');
    out.append(text);
    out.push_back('"');
    return;
  }
  out.push_back('"');
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t run = 0;  // start of the bytes not yet copied
  std::size_t i = 0;
  while (i < n) {
    if (std::size_t clean = clean_prefix(s + i, n - i); clean > 0) {
      i += clean;
      continue;
    }
    if (kStringClass[s[i]] == 2) {
      if (std::size_t len = utf8_length(s + i, n - i)) {
        i += len;
        continue;
      }
    }
    out.append(text.data() + run, i - run);
    const unsigned char c = s[i];
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      default:
        if (c >= 0x80) {
          out.append("\\ufffd");  // invalid UTF-8 byte: readers would reject the line
        } else {
          const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          out.append(esc, sizeof esc);
        }
    }
    run = ++i;
  }
  out.append(text.data() + run, n - run);
  out.push_back('"');
}

void append_event_line(std::string& out, const Event& event, const TraceId& trace_id,
                       std::uint64_t span_id) {
  const auto& pieces = asyncflow::detail::EventAccess::jsonl(*event.event_type());
  out.append("{\"event_id\": ");
  append_string(out, event.event_id());
  out.append(pieces.type_and_time);
  const std::size_t time_at = out.size();
  append_double(out, event.event_time());
  const std::size_t time_size = out.size() - time_at;
  out.append(", \"emit_time\": ");
  if (event.emit_time() == event.event_time()) {
    // The usual case (make_event stamps both with one clock read): format once.
    out.append(out, time_at, time_size);
  } else {
    append_double(out, event.emit_time());
  }
  const auto& context = asyncflow::detail::EventAccess::context(event);
  if (const auto* j = rendered(context)) {
    out.append(j->head);
    append_optional_string(out, event.task_id());
    out.append(j->tail);
  } else {
    static const asyncflow::detail::EventContext kNone;  // a moved-from event
    const asyncflow::detail::EventContext& c = context ? *context : kNone;
    append_context_head(out, c);
    append_optional_string(out, event.task_id());
    append_context_tail(out, c);
  }
  const auto& values = event.values();
  for (std::size_t i = 0; i < pieces.field_keys.size() && i < values.size(); ++i) {
    out.append(pieces.field_keys[i]);
    append_value(out, values[i]);
  }
  out.append(trace_and_span_key(trace_id));
  append_id(out, span_id);
  out.append(pieces.name_and_end);
}

namespace detail {

void append_span_line_head(std::string& out, std::string_view name, const TraceId& trace_id,
                           std::uint64_t span_id, std::uint64_t parent_span_id,
                           std::int64_t start_ns, std::int64_t end_ns, SpanStatus status,
                           const std::optional<std::string>& status_description) {
  out.append("{\"name\": ");
  append_string(out, name);
  out.append(", \"span_id\": ");
  append_id(out, span_id);
  out.append(", \"trace_id\": ");
  append_id(out, trace_id);
  out.append(", \"parent_span_id\": ");
  append_id(out, parent_span_id);
  out.append(", \"start_ns\": ");
  append_int(out, start_ns);
  out.append(", \"end_ns\": ");
  append_int(out, end_ns);
  out.append(", \"start_time_s\": ");
  append_double(out, static_cast<double>(start_ns) / 1e9);
  out.append(", \"end_time_s\": ");
  append_double(out, static_cast<double>(end_ns) / 1e9);
  out.append(", \"duration_ms\": ");
  append_double(out, duration_ms(end_ns - start_ns));
  out.append(", \"status_code\": ");
  append_string(out, to_string(status));
  out.append(", \"status_description\": ");
  append_optional_string(out, status_description);
  out.append(", \"attributes\": ");
}

void append_span_line_end(std::string& out) { out.append(", \"section\": \"span\"}\n"); }

}  // namespace detail

void append_span_line(std::string& out, const SpanData& span) {
  detail::append_span_line_head(out, span.name, span.trace_id, span.span_id,
                                span.parent_span_id, span.start_ns, span.end_ns, span.status,
                                span.status_description);
  append_attributes(out, span.attributes);
  detail::append_span_line_end(out);
}

void append_metric_line(std::string& out, double checkpoint_time, const MetricsSnapshot& metrics) {
  out.append("{\"checkpoint_time\": ");
  append_double(out, checkpoint_time);
  for (const MetricData& m : metrics.metrics) {
    if (m.points.empty()) continue;
    out.append(", ");
    if (m.kind == InstrumentKind::kHistogram) {
      std::uint64_t count = 0;
      double sum = 0;
      for (const MetricPoint& p : m.points) {
        count += p.count;
        sum += p.sum;
      }
      append_suffixed_key(out, m.name, "_count");
      append_uint(out, count);
      out.append(", ");
      append_suffixed_key(out, m.name, "_sum");
      append_double(out, sum);
    } else {
      double total = 0;
      for (const MetricPoint& p : m.points) total += p.value;
      append_string(out, m.name);
      out.append(": ");
      append_total(out, total,
                   m.kind == InstrumentKind::kCounter || m.kind == InstrumentKind::kUpDownCounter);
    }
  }
  out.append(", \"section\": \"metric\"}\n");
}

}  // namespace asyncflow::jsonl
