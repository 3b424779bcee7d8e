// Internal: writes JSON tokens straight into the storage of a std::string, for the checkpoint
// lines the dispatcher formats on the telemetry hot path.
//
// std::string::append checks capacity and calls memcpy out of line on every key and value; a
// line has about 15 of each. The cursor makes room once per line (and again only when a long
// value needs it), then writes through a plain pointer: keys are fixed-size copies the
// compiler inlines. perf on BM_IndependentNoopTelemetry had string appends at a quarter of
// the dispatcher's time before.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/span.hpp"
#include "line_buffer.hpp"

namespace asyncflow::jsonl::detail {

/// Appends to a string or a LineBuffer through a pointer. While a cursor lives, nothing else
/// may touch its target; its destructor sets the target's size to what was written.
class JsonCursor {
 public:
  /// Starts at the end of `out` with room for `expected` bytes (more is made when needed).
  JsonCursor(std::string& out, std::size_t expected);
  JsonCursor(asyncflow::detail::LineBuffer& out, std::size_t expected);
  ~JsonCursor() {
    const auto size = static_cast<std::size_t>(p_ - begin_);
    if (string_ != nullptr) {
      string_->resize(size);
    } else {
      buffer_->set_size(size);
    }
  }
  JsonCursor(const JsonCursor&) = delete;
  JsonCursor& operator=(const JsonCursor&) = delete;

  /// A string literal's bytes (without its terminator), as they are.
  template <std::size_t N>
  void literal(const char (&text)[N]) {
    ensure(N - 1);
    std::memcpy(p_, text, N - 1);
    p_ += N - 1;
  }
  /// Bytes as they are (pre-rendered JSON).
  void raw(std::string_view text) {
    ensure(text.size());
    std::memcpy(p_, text.data(), text.size());
    p_ += text.size();
  }
  void character(char c) {
    ensure(1);
    *p_++ = c;
  }

  /// A JSON string literal: quotes, escapes for `"`, `\`, control characters and DEL; valid
  /// UTF-8 passes through, bytes that are not valid UTF-8 become \ufffd.
  void string(std::string_view text);
  void optional_string(const std::optional<std::string>& text);
  /// A JSON string literal of text the caller knows needs no escaping (hex ids).
  void plain_string(std::string_view text) {
    ensure(text.size() + 2);
    *p_++ = '"';
    std::memcpy(p_, text.data(), text.size());
    p_ += text.size();
    *p_++ = '"';
  }
  /// The same for text of exactly N bytes (a uuid4's 32 hex digits). A copy of a known size
  /// is a few moves; the variable-size copy above became `rep movsq`, whose start-up took half
  /// of write_event_line's own time (perf annotate on BM_IndependentNoopTelemetry).
  template <std::size_t N>
  void plain_string_of_size(const char* text) {
    ensure(N + 2);
    *p_++ = '"';
    std::memcpy(p_, text, N);
    p_ += N;
    *p_++ = '"';
  }
  /// Python's repr of a float (json.dumps): shortest round-trip digits, fixed notation for
  /// 1e-4 <= |x| < 1e16, NaN/Infinity/-Infinity as bare tokens.
  void real(double value);
  void integer(std::int64_t value);
  void unsigned_integer(std::uint64_t value);
  /// `"0x…"` as Python's hex(int) (lowercase, not zero-padded); null for 0 / invalid.
  void id(std::uint64_t id);
  void id(const TraceId& id);
  void value(const FieldValue& value);
  void attributes(const Attributes& attributes);

  /// The cursor's position in its target, for repeat().
  std::size_t mark() const noexcept { return static_cast<std::size_t>(p_ - begin_); }
  /// Moves the line that began at mark `line_start` (and ends at the cursor) past the next
  /// multiple of `page` bytes when it would cross one; `base` is the file offset of the
  /// target's first byte. The gap becomes trailing spaces of the line before (JSON allows
  /// them), or a blank line when the line is the target's first. A line longer than a page is
  /// left as it is. Returns the padding.
  std::size_t keep_within_page(std::size_t line_start, std::uint64_t base, std::size_t page) {
    const std::size_t length = mark() - line_start;
    const std::uint64_t at = base + line_start;
    const std::uint64_t room = page - at % page;
    if (length <= room || length > page) return 0;
    const auto pad = static_cast<std::size_t>(room);
    ensure(pad);
    char* start = begin_ + line_start;
    std::memmove(start + pad, start, length);
    // The newline ending the padding: the one of the line before, moved, when there is one.
    char* gap = line_start > 0 ? start - 1 : start;
    std::memset(gap, ' ', static_cast<std::size_t>(start + pad - 1 - gap));
    start[pad - 1] = '\n';
    p_ += pad;
    return pad;
  }
  /// Writes again the bytes between two marks (a value that occurs twice in a line).
  void repeat(std::size_t from, std::size_t to) {
    ensure(to - from);
    std::memcpy(p_, begin_ + from, to - from);
    p_ += to - from;
  }

 private:
  void ensure(std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n) grow(n);
  }
  void grow(std::size_t n);

  std::string* string_ = nullptr;  // the target: one of the two
  asyncflow::detail::LineBuffer* buffer_ = nullptr;
  char* begin_ = nullptr;  // the target's first byte
  char* p_ = nullptr;      // where the next byte goes
  char* end_ = nullptr;    // the end of the room made
};

/// Whether no byte of `text` needs escaping or UTF-8 validation (the usual case).
bool all_clean(std::string_view text) noexcept;

/// Python's round(ns / 1e6, 3): a span's duration_ms from its nanoseconds.
double duration_ms(std::int64_t ns);

}  // namespace asyncflow::jsonl::detail
