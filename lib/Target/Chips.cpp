//===- Chips.cpp - the chips fusedops builds for
//---------------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Target/Chips.h"

#include "llvm/ADT/STLExtras.h"

using namespace llvm;
using namespace mlir;
using namespace mlir::fusedops;

// Rates: datasheet dense rates; DRAM at the ~90 % a copy kernel sustains.
// The tensor rates are what the kernels issue: mma.sync on Hopper reaches
// about 2/3 of the dense wgmma peak, the figure the cost model was fitted
// with (docs/autotuning.md). The fitted step costs come from H100/H200
// sweeps; the Ampere-family rows share the A100's.
static constexpr ChipRates kA100 = {
    /*card=*/"A100 SXM",
    /*smCount=*/108,
    /*dramBytesPerSecond=*/1.8e12,
    /*dramLatencySeconds=*/600e-9,
    /*l2BytesPerSecond=*/6.0e12,
    /*tensorF16FlopsPerSecond=*/312e12,
    /*tensorFp8FlopsPerSecond=*/624e12,
    /*fmaFlopsPerSecond=*/19.5e12,
    /*syncSecondsPerWarp=*/100e-9,
    /*kStepSeconds=*/0.35e-6,
    /*itemSeconds=*/0.1e-6,
    /*launchSeconds=*/2.5e-6,
    /*ringStepSeconds=*/0};
static constexpr ChipRates kA10 = {"A10",  72,     0.54e12, 600e-9, 2.0e12,
                                   125e12, 250e12, 31.2e12, 100e-9, 0.35e-6,
                                   0.1e-6, 2.5e-6, 0};
static constexpr ChipRates kL40 = {"L40",  142,    0.78e12, 600e-9, 4.0e12,
                                   181e12, 362e12, 90.5e12, 100e-9, 0.35e-6,
                                   0.1e-6, 2.5e-6, 0};
static constexpr ChipRates kH100 = {"H100 SXM", 132, 3.0e12, 600e-9, 10.0e12,
                                    660e12, 1320e12, 67e12, 84e-9, 0.3e-6,
                                    0.1e-6, 2.5e-6,
                                    // A ring step: the 4096³ FP8 tile sweep on
                                    // an H200 (docs/autotuning.md).
                                    0.1e-6};

static constexpr ChipInfo kChips[] = {
    {/*name=*/"sm_80", /*description=*/"Ampere (A100, A30)",
     /*computeCapability=*/80, /*archSpecific=*/false,
     // cp.async, ldmatrix, mma.sync m16n8k16.
     /*ptxVersion=*/70, /*jitFormat=*/"isa",
     /*maxSharedBytesPerBlock=*/163 * 1024, /*sharedBytesPerSm=*/164 * 1024,
     /*registersPerSm=*/65536, /*maxRegistersPerThread=*/255,
     /*maxThreadsPerSm=*/2048, /*maxBlocksPerSm=*/32,
     /*hasFp8MmaSync=*/false, /*hasWgmma=*/false, /*hasFp8Convert=*/false,
     /*hasTma=*/false, /*hasClusters=*/false, kA100},
    // The NVPTX backend stops the process for sm_86 below PTX 7.1.
    {"sm_86", "Ampere (A10, A40, RTX 30xx)", 86, false, 71, "isa", 99 * 1024,
     100 * 1024, 65536, 255, 1536, 16, false, false, false, false, false, kA10},
    // FP8 mma.sync needs PTX 8.4 on sm_89.
    {"sm_89", "Ada (L4, L40, RTX 40xx)", 89, false, 84, "bin", 99 * 1024,
     100 * 1024, 65536, 255, 1536, 24, true, false, false, false, false, kL40},
    {"sm_90", "Hopper without its arch-specific instructions", 90, false, 84,
     "bin", 227 * 1024, 228 * 1024, 65536, 255, 2048, 32, true, false, true,
     true, true, kH100},
    // wgmma and setmaxnreg need PTX 8.0; FP8 mma.sync 8.4.
    {"sm_90a", "Hopper (H100, H200, GH200)", 90, true, 84, "bin", 227 * 1024,
     228 * 1024, 65536, 255, 2048, 32, true, true, true, true, true, kH100},
};

ArrayRef<ChipInfo> mlir::fusedops::getKnownChips() { return kChips; }

const ChipInfo *mlir::fusedops::lookupChip(StringRef name) {
  for (const ChipInfo &chip : kChips)
    if (name == chip.name)
      return &chip;
  return nullptr;
}

const ChipInfo *mlir::fusedops::lookupChipForComputeCapability(int major,
                                                               int minor) {
  int capability = major * 10 + minor;
  // sm_87 (Jetson Orin) runs what sm_86 runs.
  if (capability == 87)
    capability = 86;
  const ChipInfo *found = nullptr;
  for (const ChipInfo &chip : kChips)
    if (chip.computeCapability == capability && (!found || chip.archSpecific))
      found = &chip;
  return found;
}

std::string mlir::fusedops::getKnownChipNames() {
  std::string names;
  ArrayRef<ChipInfo> chips = getKnownChips();
  for (auto [i, chip] : llvm::enumerate(chips)) {
    if (i)
      names += i + 1 == chips.size() ? " and " : ", ";
    names += chip.name;
  }
  return names;
}
