// HugePageAllocator (src/common/huge_pages.hpp): large arrays in aligned huge-page mappings,
// small ones from operator new, both usable as a std::vector's storage.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/huge_pages.hpp"

namespace af = asyncflow::detail;

namespace {

bool huge_aligned(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % af::kHugePageSize == 0;
}

TEST(HugePages, AllocationSizesAreWholeHugePages) {
  EXPECT_EQ(af::huge_allocation_size(1), af::kHugePageSize);
  EXPECT_EQ(af::huge_allocation_size(af::kHugePageSize), af::kHugePageSize);
  EXPECT_EQ(af::huge_allocation_size(af::kHugePageSize + 1), 2 * af::kHugePageSize);
}

TEST(HugePages, LargeAllocationsAreAlignedZeroedAndWritableToTheirLastByte) {
  for (const std::size_t bytes :
       {af::kHugePageSize, af::kHugePageSize + 1, 5 * af::kHugePageSize - 7}) {
    auto* p = static_cast<unsigned char*>(af::allocate_huge(bytes));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(huge_aligned(p)) << bytes;
    const std::size_t size = af::huge_allocation_size(bytes);
    std::size_t nonzero = 0;
    for (std::size_t i = 0; i < size; i += 4096) nonzero += p[i] != 0;
    EXPECT_EQ(nonzero, 0u) << bytes;
    p[0] = 1;
    p[size - 1] = 2;  // the whole mapping is the caller's
    EXPECT_EQ(p[size - 1], 2);
    af::free_huge(p, bytes);
  }
  af::free_huge(nullptr, af::kHugePageSize);  // like free(nullptr)
}

TEST(HugePages, AVectorKeepsItsElementsWhileItGrowsAcrossTheHugePageSize) {
  std::vector<std::string, af::HugePageAllocator<std::string>> v;
  const std::size_t n = 3 * af::kHugePageSize / sizeof(std::string);
  for (std::size_t i = 0; i < n; ++i) v.push_back(std::to_string(i) + std::string(20, 'x'));
  EXPECT_TRUE(huge_aligned(v.data()));  // grown past one huge page: a mapping of its own
  for (std::size_t i = 0; i < n; i += 997)
    EXPECT_EQ(v[i], std::to_string(i) + std::string(20, 'x'));
  v.resize(3);
  v.shrink_to_fit();  // back to operator new
  EXPECT_EQ(v[2], "2" + std::string(20, 'x'));
}

TEST(HugePages, AnImpossibleSizeThrowsBadAlloc) {
  af::HugePageAllocator<std::uint64_t> allocator;
  EXPECT_THROW((void)allocator.allocate(static_cast<std::size_t>(-1) / 4), std::bad_alloc);
  EXPECT_THROW(af::allocate_huge(static_cast<std::size_t>(-1) - 100), std::bad_alloc);
}

}  // namespace
