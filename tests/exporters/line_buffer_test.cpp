// LineBuffer (src/exporters/jsonl/line_buffer.hpp): the checkpoint's formatting buffer keeps
// its bytes while it grows, from small heap blocks into huge-page memory and back on reuse.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "common/huge_pages.hpp"
#include "exporters/jsonl/line_buffer.hpp"

namespace af = asyncflow::detail;

namespace {

void append(af::LineBuffer& b, const std::string& text) {
  b.make_room(text.size());
  std::memcpy(b.data() + b.size(), text.data(), text.size());
  b.set_size(b.size() + text.size());
}

TEST(LineBuffer, KeepsItsBytesWhileItGrowsIntoHugePages) {
  af::LineBuffer b;
  std::string expected;
  for (int i = 0; expected.size() < 3 * af::kHugePageSize; ++i) {
    const std::string line = "{\"n\": " + std::to_string(i) + "}\n";
    append(b, line);
    expected += line;
  }
  EXPECT_EQ(b.view(), expected);
  EXPECT_GE(b.capacity(), b.size());
  EXPECT_EQ(b.capacity() % af::kHugePageSize, 0u);  // huge-page memory is used to its end
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % af::kHugePageSize, 0u);
}

TEST(LineBuffer, ReserveKeepsTheContentsAndNeverShrinks) {
  af::LineBuffer b;
  append(b, "first line\n");
  b.reserve(af::kHugePageSize + 10);
  EXPECT_EQ(b.view(), "first line\n");
  EXPECT_EQ(b.capacity(), 2 * af::kHugePageSize);
  const char* data = b.data();
  b.reserve(100);  // already larger: nothing moves
  EXPECT_EQ(b.data(), data);
  b.clear();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.capacity(), 2 * af::kHugePageSize);  // cleared for reuse, not freed
}

TEST(LineBuffer, MovingHandsTheStorageOver) {
  af::LineBuffer a;
  append(a, "line\n");
  const char* data = a.data();
  af::LineBuffer b(std::move(a));
  EXPECT_EQ(b.data(), data);
  EXPECT_EQ(b.view(), "line\n");
  EXPECT_EQ(a.capacity(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty
  af::LineBuffer c;
  append(c, "other\n");
  c = std::move(b);  // c's own storage is freed (ASan would see a leak otherwise)
  EXPECT_EQ(c.view(), "line\n");
  auto& same = c;
  c = std::move(same);  // a self-move keeps it
  EXPECT_EQ(c.view(), "line\n");
}

}  // namespace
