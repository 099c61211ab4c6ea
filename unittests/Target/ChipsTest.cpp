//===- ChipsTest.cpp - the chip table -------------------------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// The rows of the chip table are consistent with each other and with what
// the tools they feed require: the NVPTX backend's lowest PTX ISA per chip
// (it stops the process below it), the feature implications, lookups by
// name and by compute capability.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Target/Chips.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

using namespace mlir::fusedops;

namespace {

/// The lowest PTX ISA the NVPTX backend of LLVM 22 accepts for a compute
/// capability (llvm/lib/Target/NVPTX/NVPTX.td).
unsigned getNvptxMinimumPtx(int computeCapability, bool archSpecific) {
  switch (computeCapability) {
  case 80:
    return 70;
  case 86:
    return 71;
  case 89:
    return 78;
  case 90:
    return archSpecific ? 80 : 78;
  default:
    return 1000;
  }
}

TEST(Chips, RowsAreConsistent) {
  std::set<std::string> names;
  for (const ChipInfo &chip : getKnownChips()) {
    SCOPED_TRACE(chip.name);
    EXPECT_TRUE(names.insert(chip.name).second) << "listed twice";
    EXPECT_EQ(std::string(chip.name),
              "sm_" + std::to_string(chip.computeCapability) +
                  (chip.archSpecific ? "a" : ""));
    EXPECT_GE(chip.ptxVersion,
              getNvptxMinimumPtx(chip.computeCapability, chip.archSpecific));
    // FP8 mma.sync needs PTX 8.4 where the chip has it.
    if (chip.hasFp8MmaSync)
      EXPECT_GE(chip.ptxVersion, 84u);
    EXPECT_TRUE(std::string(chip.jitFormat) == "bin" ||
                std::string(chip.jitFormat) == "isa");
    EXPECT_LE(chip.maxSharedBytesPerBlock, chip.sharedBytesPerSm);
    EXPECT_GT(chip.maxSharedBytesPerBlock, 48 * 1024);
    // wgmma exists only on the arch-specific Hopper target.
    if (chip.hasWgmma)
      EXPECT_TRUE(chip.archSpecific && chip.computeCapability == 90);
    EXPECT_GT(chip.rates.smCount, 0);
    EXPECT_GT(chip.rates.tensorF16FlopsPerSecond, chip.rates.fmaFlopsPerSecond);
    EXPECT_GT(chip.rates.dramBytesPerSecond, 0);
  }
}

TEST(Chips, LookUpByName) {
  const ChipInfo *hopper = lookupChip("sm_90a");
  ASSERT_NE(hopper, nullptr);
  EXPECT_TRUE(hopper->hasWgmma);
  EXPECT_EQ(hopper->maxSharedBytesPerBlock, 227 * 1024);
  EXPECT_FALSE(lookupChip("sm_90")->hasWgmma);
  EXPECT_FALSE(lookupChip("sm_80")->hasFp8MmaSync);
  EXPECT_TRUE(lookupChip("sm_89")->hasFp8MmaSync);
  // The Ada and GA10x chips have 99 KiB per block, not an A100's 163.
  EXPECT_EQ(lookupChip("sm_86")->maxSharedBytesPerBlock, 99 * 1024);
  EXPECT_EQ(lookupChip("sm_89")->maxSharedBytesPerBlock, 99 * 1024);
  EXPECT_EQ(lookupChip("sm_75"), nullptr);
  EXPECT_EQ(lookupChip(""), nullptr);
  EXPECT_EQ(lookupChip("sm_90ab"), nullptr);
}

TEST(Chips, LookUpByComputeCapability) {
  EXPECT_STREQ(lookupChipForComputeCapability(9, 0)->name, "sm_90a");
  EXPECT_STREQ(lookupChipForComputeCapability(8, 0)->name, "sm_80");
  EXPECT_STREQ(lookupChipForComputeCapability(8, 6)->name, "sm_86");
  EXPECT_STREQ(lookupChipForComputeCapability(8, 7)->name, "sm_86");
  EXPECT_STREQ(lookupChipForComputeCapability(8, 9)->name, "sm_89");
  EXPECT_EQ(lookupChipForComputeCapability(7, 5), nullptr);
  EXPECT_EQ(lookupChipForComputeCapability(10, 0), nullptr);
}

TEST(Chips, NamesForMessages) {
  EXPECT_EQ(getKnownChipNames(), "sm_80, sm_86, sm_89, sm_90 and sm_90a");
}

} // namespace
