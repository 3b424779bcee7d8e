// JsonCursor (json_cursor.hpp): JSON tokens as Python's json.dumps writes them (floats as
// repr(), NaN/Infinity as bare tokens), except that non-ASCII UTF-8 is passed through instead
// of being escaped as \uXXXX (ensure_ascii): both parse to the same strings.
#include "json_cursor.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>
#include <variant>

#include "common/decimal.hpp"
#include "common/hex.hpp"

namespace asyncflow::jsonl::detail {

namespace {

using asyncflow::detail::write_digits;

constexpr char kHex[] = "0123456789abcdef";

// Longest token the bounded writers below produce: a double's repr ("-2.2250738585072014e-308"
// and "0.00012345678901234567" are 24 and 22 bytes), an int64, a quoted 128-bit hex id.
constexpr std::size_t kMaxNumber = 32;
constexpr std::size_t kMaxTraceId = 36;
// A cursor grows the string by at least this much, so that a line makes room about once.
constexpr std::size_t kMinGrowth = 1024;

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

constexpr std::uint64_t kOnes = 0x0101010101010101ull;
constexpr std::uint64_t kHigh = 0x8080808080808080ull;

/// The bytes of 8 (little-endian) that need a closer look: control characters, '"', '\\',
/// DEL and non-ASCII. A byte b of (v - 1) & ~v has its high bit set when b was 0; the lowest
/// flagged byte is exact (borrows only flag bytes above a real match).
std::uint64_t flagged_bytes(std::uint64_t x) noexcept {
  auto zero_bytes = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  return ((x - kOnes * 0x20) & ~x & kHigh)  // < 0x20
         | zero_bytes(x ^ (kOnes * '"')) | zero_bytes(x ^ (kOnes * '\\')) |
         zero_bytes(x ^ (kOnes * 0x7f)) | (x & kHigh);  // DEL, >= 0x80
}

/// How many of the first min(8, n) bytes at `p` can be copied as they are. Strings are mostly
/// plain ASCII; testing 8 bytes at once (SWAR) instead of a table lookup per byte made string
/// escaping about twice as fast (perf on BM_JsonlWrite's lines).
std::size_t clean_prefix(const unsigned char* p, std::size_t n) noexcept {
  if constexpr (std::endian::native != std::endian::little) {
    return kStringClass[p[0]] == 0 ? 1 : 0;
  }
  std::uint64_t x = kOnes * 'a';  // a short tail is padded with a clean byte
  std::memcpy(&x, p, n < 8 ? n : 8);
  const std::uint64_t flagged = flagged_bytes(x);
  const std::size_t clean =
      flagged == 0 ? 8 : static_cast<std::size_t>(std::countr_zero(flagged)) / 8;
  return clean < n ? clean : n;
}

/// Length of the valid UTF-8 sequence at `p` (at most `n` bytes available), or 0 when the
/// bytes there are not valid UTF-8 (overlong forms, surrogates and > U+10FFFF included).
std::size_t utf8_length(const unsigned char* p, std::size_t n) noexcept {
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

/// Escapes `text` (not all clean) into `w`, which has room for 6 bytes per input byte.
char* write_escaped(char* w, std::string_view text) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t run = 0;  // start of the bytes not yet copied
  std::size_t i = 0;
  auto copy_run = [&] {
    std::memcpy(w, text.data() + run, i - run);
    w += i - run;
  };
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
    copy_run();
    const unsigned char c = s[i];
    auto put = [&](std::string_view e) {
      std::memcpy(w, e.data(), e.size());
      w += e.size();
    };
    switch (c) {
      case '"': put("\\\""); break;
      case '\\': put("\\\\"); break;
      case '\n': put("\\n"); break;
      case '\r': put("\\r"); break;
      case '\t': put("\\t"); break;
      case '\b': put("\\b"); break;
      case '\f': put("\\f"); break;
      default:
        if (c >= 0x80) {
          put("\\ufffd");  // invalid UTF-8 byte: readers would reject the line
        } else {
          const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          put(std::string_view(esc, sizeof esc));
        }
    }
    run = ++i;
  }
  copy_run();
  return w;
}

constexpr std::array<std::uint64_t, 20> kPow10U64 = [] {
  std::array<std::uint64_t, 20> p{};
  p[0] = 1;
  for (std::size_t i = 1; i < p.size(); ++i) p[i] = p[i - 1] * 10;
  return p;
}();

int decimal_length(std::uint64_t v) noexcept {
  // log10(2^bits) ~ bits * 1233 / 4096; one comparison corrects the estimate.
  const int bits = 64 - std::countl_zero(v | 1);
  const int t = (bits * 1233) >> 12;
  return std::max(1, t + 1 - (v < kPow10U64[static_cast<std::size_t>(t)] ? 1 : 0));
}

char* write_uint(char* w, std::uint64_t v) noexcept {
  return write_digits(w, v, decimal_length(v));
}

char* write_int(char* w, std::int64_t value) noexcept {
  if (value >= 0) return write_uint(w, static_cast<std::uint64_t>(value));
  *w++ = '-';
  return write_uint(w, ~static_cast<std::uint64_t>(value) + 1);  // -INT64_MIN fits unsigned
}

char* write_literal(char* w, std::string_view text) noexcept {
  std::memcpy(w, text.data(), text.size());
  return w + text.size();
}

/// The `digits` low hex digits of `v` (most significant first), zero-padded.
char* write_hex(char* w, std::uint64_t v, int digits) noexcept {
  if (digits == 16) {  // most random ids: straight to their place
    asyncflow::detail::write_hex16(w, v);
    return w + 16;
  }
  char buf[16];
  asyncflow::detail::write_hex16(buf, v);
  std::memcpy(w, buf + 16 - digits, static_cast<std::size_t>(digits));
  return w + digits;
}

int hex_digits(std::uint64_t v) noexcept {
  return (64 - std::countl_zero(v) + 3) / 4;
}

char* write_id(char* w, std::uint64_t id) noexcept {
  if (id == 0) return write_literal(w, "null");
  w = write_literal(w, "\"0x");
  w = write_hex(w, id, hex_digits(id));
  *w++ = '"';
  return w;
}

/// A trace id as Python's hex(int) in quotes, or null when invalid.
char* write_trace_id(char* w, const TraceId& id) noexcept {
  if (!id.valid()) return write_literal(w, "null");
  w = write_literal(w, "\"0x");
  if (id.high == 0) {
    w = write_hex(w, id.low, hex_digits(id.low));
  } else {
    w = write_hex(w, id.high, hex_digits(id.high));
    w = write_hex(w, id.low, 16);
  }
  *w++ = '"';
  return w;
}

// GCC and Clang have 128-bit integers; __extension__ tells -Wpedantic that we know.
__extension__ using U128 = unsigned __int128;

/// Writes `digits` (= whole * 10^fraction_digits + the fraction's digits, fraction_digits
/// < 20) with a decimal point before its last `fraction_digits` digits ("0.…" below 1; at
/// least one fraction digit). The caller knows the whole part: dividing by a variable power
/// of ten was the costliest instruction of repr() (a 64-bit `div`, perf annotate on
/// BM_IndependentNoopTelemetry).
char* write_decimal(char* w, std::uint64_t digits, std::uint64_t whole,
                    int fraction_digits) noexcept {
  if (fraction_digits == 0) {
    w = write_uint(w, digits);
    return write_literal(w, ".0");
  }
  // Each part straight to its place (moving digits after writing them stalls on the stores).
  w = write_uint(w, whole);  // "0" below 1
  *w++ = '.';
  const std::uint64_t rest = digits - whole * kPow10U64[static_cast<std::size_t>(fraction_digits)];
  return write_digits(w, rest, fraction_digits);
}

/// Python's repr of `value` when it is written in fixed notation (1e-4 <= |value| < 1e16),
/// for the doubles of every checkpoint line (epoch times, durations); null when the value
/// is left to the general path (whole numbers >= 2^52, powers of two, exact ties, values
/// below 2^-11).
///
/// repr writes the shortest decimal that reads back as `value`, the closest one if several
/// are as short. With value = m * 2^e, a decimal n / 10^k reads back as `value` when it lies
/// within half an ulp: with shift = 1 - e and c = 2m * 10^k (value * 10^k * 2^shift), when
/// |n * 2^shift - c| <= 10^k (< when m is odd: ties read back to the even neighbour). The
/// nearest integer n to c / 2^shift is the best candidate (the interval is centred on it);
/// it is off by r = c mod 2^shift, or 2^shift - r when rounded up. If some k fits, every
/// larger k does, so the answer is the smallest k that fits, found by bisection. Exact
/// integers decide it: shift <= 64 (|value| >= 2^-11) keeps r in 64 bits, and 10^k <= 10^19
/// keeps c in 128. Checked against std::to_chars' shortest digits in jsonl_test.cpp.
char* write_fixed_shortest(char* w, double value) noexcept {
  const auto bits = std::bit_cast<std::uint64_t>(value);
  const int biased = static_cast<int>((bits >> 52) & 0x7FF);
  const std::uint64_t fraction = bits & ((std::uint64_t{1} << 52) - 1);
  if (biased == 0 || fraction == 0) return nullptr;  // subnormal, or a power of two
  const std::uint64_t m = fraction | (std::uint64_t{1} << 52);
  const int e = biased - 1075;  // value = m * 2^e
  if (e >= 0) return nullptr;   // a whole number >= 2^52
  const int shift = 1 - e;      // value * 2^shift = 2m: half an ulp is 1 in these units
  if (shift > 64) return nullptr;
  const bool inclusive = (m & 1) == 0;
  const std::uint64_t mask = shift == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << shift) - 1;
  const std::uint64_t half = std::uint64_t{1} << (shift - 1);
  // c mod 2^shift (the product wraps, but only its low `shift` bits are needed).
  auto rest = [&](int k) { return (2 * m * kPow10U64[static_cast<std::size_t>(k)]) & mask; };
  auto fits = [&](int k) {
    const std::uint64_t r = rest(k);
    const std::uint64_t d = r <= half ? r : mask - r + 1;  // how far the nearest n is from c
    const std::uint64_t limit = kPow10U64[static_cast<std::size_t>(k)];
    return inclusive ? d <= limit : d < limit;
  };
  // From k = ceil(-e * log10 2) on, 10^-k < one ulp, so some n fits (78913 / 2^18 ~ log10 2).
  int hi = static_cast<int>((static_cast<std::int64_t>(-e) * 78913 + (1 << 18) - 1) >> 18);
  if (hi > 19) return nullptr;
  if (!fits(hi)) return nullptr;  // the estimate fell short: to_chars decides
  int lo = 0;
  if (hi > 0 && !fits(hi - 1)) {
    lo = hi;  // the usual answer for epoch times: 17 significant digits
  }
  while (lo < hi) {  // fits(hi), and no k < lo fits
    const int mid = (lo + hi) / 2;
    if (fits(mid)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  // At the answer, a tie would leave two candidates as near: the general path picks.
  const std::uint64_t r = rest(hi);
  if (r == half) return nullptr;
  const U128 c = U128{2 * m} * kPow10U64[static_cast<std::size_t>(hi)];
  const U128 n = (shift == 64 ? c >> 64 : c >> shift) + (r > half ? 1 : 0);
  if ((n >> 64) != 0) return nullptr;
  // The whole part is the value's: an integer between the value and n / 10^hi would be a
  // double nearer to n / 10^hi than the value is (ties were left above), so n would not read
  // back as the value. |value| < 1e16 < 2^64 here, and the cast truncates exactly.
  const auto digits = static_cast<std::uint64_t>(n);
  const auto whole = static_cast<std::uint64_t>(std::fabs(value));
  const std::uint64_t scale = kPow10U64[static_cast<std::size_t>(hi)];
  const U128 whole_scaled = U128{whole} * scale;
  if (whole_scaled > digits || digits - static_cast<std::uint64_t>(whole_scaled) >= scale) {
    return nullptr;  // cannot happen (see above); to_chars decides
  }
  if ((bits >> 63) != 0) *w++ = '-';
  return write_decimal(w, digits, whole, hi);
}

/// repr(value) into `w` (room for kMaxNumber bytes).
char* write_double(char* w, double value) noexcept {
  if (std::isnan(value)) return write_literal(w, "NaN");
  if (std::isinf(value)) return write_literal(w, value > 0 ? "Infinity" : "-Infinity");
  const double magnitude = std::fabs(value);
  if (magnitude >= 1e-4 && magnitude < 1e16) {
    if (char* end = write_fixed_shortest(w, value)) return end;
    // In repr's fixed range, plain to_chars picks fixed notation whenever it is not longer
    // than scientific, and its digits are the same shortest round-trip digits; only a whole
    // number needs ".0" added.
    char* last = std::to_chars(w, w + kMaxNumber, value).ptr;
    if (std::find(w, last, 'e') == last) {
      if (std::find(w, last, '.') == last) last = write_literal(last, ".0");
      return last;
    }
  } else if (value == 0) {
    return write_literal(w, std::signbit(value) ? "-0.0" : "0.0");
  }
  // Shortest round-trip digits in scientific form ("-1.2345e+17", "5e-324"); repr uses the
  // same digits and the same exponent spelling, and switches to fixed notation for
  // 1e-4 <= |x| < 1e16.
  char sci[32];
  char* const end = std::to_chars(sci, sci + sizeof sci, value, std::chars_format::scientific).ptr;
  const char* p = sci;
  const bool negative = *p == '-';
  if (negative) ++p;
  const char* e = p;
  while (*e != 'e') ++e;
  int exponent = 0;
  std::from_chars(e + (e[1] == '+' ? 2 : 1), end, exponent);
  if (exponent < -4 || exponent >= 16) return std::copy(sci, end, w);
  char digits[20];  // at most 17 significant digits
  int n = 0;
  for (const char* d = p; d < e; ++d) {
    if (*d != '.') digits[n++] = *d;
  }
  if (negative) *w++ = '-';
  const int point = exponent + 1;  // digits before the decimal point
  if (point <= 0) {
    *w++ = '0';
    *w++ = '.';
    w = std::fill_n(w, -point, '0');
    w = std::copy(digits, digits + n, w);
  } else if (point >= n) {
    w = std::copy(digits, digits + n, w);
    w = std::fill_n(w, point - n, '0');
    w = write_literal(w, ".0");
  } else {
    w = std::copy(digits, digits + point, w);
    *w++ = '.';
    w = std::copy(digits + point, digits + n, w);
  }
  return w;
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

}  // namespace

JsonCursor::JsonCursor(std::string& out, std::size_t expected) : string_(&out) {
  const std::size_t at = out.size();
  out.resize(at + expected);
  begin_ = out.data();
  p_ = begin_ + at;
  end_ = begin_ + out.size();
}

JsonCursor::JsonCursor(asyncflow::detail::LineBuffer& out, std::size_t expected) : buffer_(&out) {
  end_ = out.make_room(expected);
  begin_ = out.data();
  p_ = begin_ + out.size();
}

void JsonCursor::grow(std::size_t n) {
  const std::size_t used = mark();
  const std::size_t room = std::max(n, kMinGrowth);
  if (string_ != nullptr) {
    string_->resize(used + room);  // amortized: capacity grows geometrically
    begin_ = string_->data();
    end_ = begin_ + string_->size();
  } else {
    buffer_->set_size(used);
    end_ = buffer_->make_room(room);
    begin_ = buffer_->data();
  }
  p_ = begin_ + used;
}

bool all_clean(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size();
  if constexpr (std::endian::native == std::endian::little) {
    for (; n >= 8; p += 8, n -= 8) {
      std::uint64_t x;
      std::memcpy(&x, p, 8);
      if (flagged_bytes(x) != 0) return false;
    }
  }
  for (; n > 0; ++p, --n) {
    if (kStringClass[*p] != 0) return false;
  }
  return true;
}

void JsonCursor::string(std::string_view text) {
  if (all_clean(text)) {
    plain_string(text);
    return;
  }
  ensure(6 * text.size() + 2);  // \u00XX is the longest escape of one byte
  *p_++ = '"';
  p_ = write_escaped(p_, text);
  *p_++ = '"';
}

void JsonCursor::optional_string(const std::optional<std::string>& text) {
  if (text) {
    string(*text);
  } else {
    literal("null");
  }
}

void JsonCursor::real(double value) {
  ensure(kMaxNumber);
  p_ = write_double(p_, value);
}

void JsonCursor::integer(std::int64_t value) {
  ensure(kMaxNumber);
  p_ = write_int(p_, value);
}

void JsonCursor::unsigned_integer(std::uint64_t value) {
  ensure(kMaxNumber);
  p_ = write_uint(p_, value);
}

void JsonCursor::id(std::uint64_t id) {
  ensure(kMaxNumber);
  p_ = write_id(p_, id);
}

void JsonCursor::id(const TraceId& id) {
  // Every line of a session names the same trace: render it once per thread and id.
  thread_local TraceId cached;
  thread_local char rendered[kMaxTraceId];
  thread_local std::size_t rendered_size = 0;
  if (!(id == cached) || rendered_size == 0) {
    rendered_size = static_cast<std::size_t>(write_trace_id(rendered, id) - rendered);
    cached = id;
  }
  raw(std::string_view(rendered, rendered_size));
}

void JsonCursor::value(const FieldValue& value) {
  switch (value.index()) {
    case 0: literal("null"); return;
    case 1:
      if (std::get<bool>(value)) {
        literal("true");
      } else {
        literal("false");
      }
      return;
    case 2: integer(std::get<std::int64_t>(value)); return;
    case 3: real(std::get<double>(value)); return;
    default: string(std::get<std::string>(value)); return;
  }
}

void JsonCursor::attributes(const Attributes& attributes) {
  character('{');
  bool first = true;
  for (const auto& [key, value] : attributes) {
    if (!first) literal(", ");
    first = false;
    string(key);
    literal(": ");
    this->value(value);
  }
  character('}');
}

/// Whole microseconds need no decimal arithmetic: unless the remainder is exactly half a
/// microsecond (a tie, decided by the binary value), ns / 1e6 lies at least 1 ns from a
/// rounding boundary, far more than the division's error below 1e15 ns, so rounding the
/// integer gives round()'s decimal result and one correctly rounded division gives its double.
double duration_ms(std::int64_t ns) {
  constexpr std::int64_t kExactBelow = 1'000'000'000'000'000;
  const std::int64_t rem = ns % 1000;
  if (ns > -kExactBelow && ns < kExactBelow && rem != 500 && rem != -500) {
    const std::int64_t us = ns / 1000 + (rem > 500 ? 1 : 0) - (rem < -500 ? 1 : 0);
    return static_cast<double>(us) / 1000.0;
  }
  return round3(static_cast<double>(ns) / 1e6);
}

}  // namespace asyncflow::jsonl::detail
