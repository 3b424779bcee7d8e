// W3C traceparent parsing and formatting (trace_context.hpp).
#include "asyncflow/telemetry/trace_context.hpp"

#include "common/hex.hpp"

namespace asyncflow {

namespace {

/// The lowercase hex digits of text[at, at + n) as a number (n <= 16), or nullopt.
std::optional<std::uint64_t> hex_field(std::string_view text, std::size_t at, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    const char c = text[i];
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (d < 0) return std::nullopt;
    v = v << 4 | static_cast<std::uint64_t>(d);
  }
  return v;
}

}  // namespace

std::optional<TraceParent> parse_traceparent(std::string_view text) noexcept {
  // version(2) '-' trace-id(32) '-' parent-id(16) '-' flags(2)
  constexpr std::size_t kSize = 55;
  if (text.size() < kSize) return std::nullopt;
  const auto version = hex_field(text, 0, 2);
  if (!version || *version == 0xff) return std::nullopt;
  if (*version == 0 ? text.size() != kSize : (text.size() > kSize && text[kSize] != '-')) {
    return std::nullopt;
  }
  if (text[2] != '-' || text[35] != '-' || text[52] != '-') return std::nullopt;
  const auto high = hex_field(text, 3, 16);
  const auto low = hex_field(text, 19, 16);
  const auto span = hex_field(text, 36, 16);
  const auto flags = hex_field(text, 53, 2);
  if (!high || !low || !span || !flags) return std::nullopt;
  TraceParent p;
  p.trace_id = TraceId{*high, *low};
  p.span_id = *span;
  p.flags = static_cast<std::uint8_t>(*flags);
  if (!p.trace_id.valid() || p.span_id == 0) return std::nullopt;
  return p;
}

std::string to_traceparent(const TraceParent& parent) {
  std::string s = "00-";
  s.resize(3 + 32 + 1 + 16 + 1 + 2);
  detail::write_hex16(s.data() + 3, parent.trace_id.high);
  detail::write_hex16(s.data() + 19, parent.trace_id.low);
  s[35] = '-';
  detail::write_hex16(s.data() + 36, parent.span_id);
  s[52] = '-';
  constexpr const char* kDigits = "0123456789abcdef";
  s[53] = kDigits[parent.flags >> 4];
  s[54] = kDigits[parent.flags & 0xf];
  return s;
}

}  // namespace asyncflow
