// Zero pages from the kernel (lib/ops/page_region.hpp, scratch_rows.hpp): the forward scratch
// and the interleaved tiles read as zeros, take no memory until written, and are given back
// whole when freed.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "lib/model/scratch_rows.hpp"
#include "lib/ops/page_region.hpp"

namespace slm::test {
namespace {

size_t page_bytes() { return size_t(::sysconf(_SC_PAGESIZE)); }

// How many pages of [begin, begin + n) are resident; -1 when part of the range is not mapped.
int64_t resident_pages(const void* begin, size_t n) {
  const auto first = reinterpret_cast<uintptr_t>(begin) / page_bytes() * page_bytes();
  const size_t length = reinterpret_cast<uintptr_t>(begin) + n - first;
  std::vector<unsigned char> residency((length + page_bytes() - 1) / page_bytes());
  if (::mincore(reinterpret_cast<void*>(first), length, residency.data()) != 0) return errno == ENOMEM ? -1 : -2;
  int64_t resident = 0;
  for (unsigned char page : residency) resident += page & 1;
  return resident;
}

TEST(ScratchRows, LargeRowsAreZerosThatTakeMemoryOnlyWhereWritten) {
  const size_t n_floats = size_t(512) * 2048;  // 4 MiB: 512 rows of Llama-3.2-1B's residual stream
  ScratchRows rows(n_floats);
  ASSERT_EQ(rows.size(), n_floats);
  EXPECT_EQ(resident_pages(rows.data(), n_floats * sizeof(float)), 0) << "nothing written, nothing resident";
  for (size_t i = 0; i < 20 * 2048; ++i) rows[i] = 1.0f;  // a 20-token prompt's rows
  const int64_t resident = resident_pages(rows.data(), n_floats * sizeof(float));
  EXPECT_GE(resident, int64_t(20 * 2048 * sizeof(float) / page_bytes()));
  EXPECT_LE(resident, int64_t(20 * 2048 * sizeof(float) / page_bytes()) + 2);
  for (size_t i = 20 * 2048; i < n_floats; ++i) ASSERT_EQ(rows[i], 0.0f) << "element " << i;
}

TEST(ScratchRows, FreedLargeRowsAreUnmappedAndSmallOnesAreZerosToo) {
  const float* freed = nullptr;
  const size_t n_floats = size_t(1) << 20;
  {
    ScratchRows rows(n_floats);
    rows[n_floats - 1] = 2.0f;
    freed = rows.data();
    ASSERT_EQ(resident_pages(freed, n_floats * sizeof(float)), 1);
  }
  EXPECT_EQ(resident_pages(freed, n_floats * sizeof(float)), -1) << "the pages went back to the kernel";
  const ScratchRows small(100);  // below UntouchedZeroAllocator::kMappedBytes: calloc
  for (float value : small) EXPECT_EQ(value, 0.0f);
}

TEST(PageRegion, ARegionIsZerosUntilWrittenAndIsUnmappedWhenItsOwnerGoes) {
  const size_t n_bytes = size_t(3) << 20;
  PageRegion region(n_bytes);
  ASSERT_EQ(region.size(), n_bytes);
  EXPECT_EQ(resident_pages(region.data(), n_bytes), 0);
  for (size_t i = 0; i < n_bytes; i += 4096) ASSERT_EQ(region.data()[i], 0) << "byte " << i;
  region.data()[n_bytes - 1] = 7;
  PageRegion moved = std::move(region);
  EXPECT_EQ(region.size(), 0u);
  EXPECT_EQ(moved.data()[n_bytes - 1], 7);
  const uint8_t* data = moved.data();
  moved = PageRegion();
  EXPECT_EQ(resident_pages(data, n_bytes), -1);
  EXPECT_EQ(PageRegion(0).data(), nullptr);
}

// The "THPeligible" field of the mapping that holds `address` in /proc/self/smaps: 1 when the
// kernel may back it with 2 MiB pages; -1 when the kernel does not report it.
int thp_eligible(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<uintptr_t>(address);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream header(line);
    if (std::isxdigit(static_cast<unsigned char>(line[0])) && header >> std::hex >> begin >> dash >> end && dash == '-') {
      inside = begin <= at && at < end;
    } else if (inside && line.rfind("THPeligible:", 0) == 0) {
      return std::stoi(line.substr(12));
    }
  }
  return -1;
}

std::string transparent_huge_pages_mode() {
  std::ifstream enabled("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  std::getline(enabled, modes);
  return modes;
}

TEST(PageRegion, AHugePageRegionStartsOnA2MiBBoundaryIsZerosAndMayTake2MiBPages) {
  const size_t n_bytes = (size_t(5) << 20) + 12345;
  PageRegion region(n_bytes, PageSize::Huge);
  ASSERT_EQ(region.size(), n_bytes);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(region.data()) % kHugePageBytes, 0u);
  for (size_t i = 0; i < n_bytes; i += 4093) ASSERT_EQ(region.data()[i], 0) << "byte " << i;
  region.data()[n_bytes - 1] = 9;  // the last byte is the region's
  EXPECT_EQ(region.data()[n_bytes - 1], 9);
  const std::string mode = transparent_huge_pages_mode();
  if (mode.empty() || mode.find("[never]") != std::string::npos) {
    GTEST_SKIP() << "transparent huge pages are off here ('" << mode << "'): 4 KiB pages, nothing more to check";
  }
  const int eligible = thp_eligible(region.data());
  if (eligible < 0) GTEST_SKIP() << "this kernel's smaps has no THPeligible field";
  EXPECT_EQ(eligible, 1) << "asked for 2 MiB pages (MADV_HUGEPAGE) under THP mode '" << mode << "'";
  const uint8_t* data = region.data();
  region = PageRegion();
  EXPECT_EQ(resident_pages(data, n_bytes), -1) << "the whole mapping went back";
}

// A model's weights are copied into anonymous memory only while they take at most half of what
// is available; beyond, they stay in the file's pages.
TEST(PageRegion, ACopyTakesAtMostHalfOfTheAvailableMemory) {
  EXPECT_TRUE(copy_fits(0, 0));
  EXPECT_TRUE(copy_fits(uint64_t(8) << 30, uint64_t(16) << 30));
  EXPECT_FALSE(copy_fits((uint64_t(8) << 30) + 1, uint64_t(16) << 30));
  EXPECT_FALSE(copy_fits(1, 0)) << "unknown: no copy";
  EXPECT_GT(available_memory_bytes(), uint64_t(0)) << "/proc/meminfo's MemAvailable";
}

}  // namespace
}  // namespace slm::test
