//===- Chips.h - the chips fusedops builds for ------------------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// One table of the chips fusedops compiles for, one row per chip, that the
// rest of the compiler asks questions of: the PTX ISA to emit, the binary
// format to JIT, shared memory and registers, which MMA and conversion
// instructions exist, and the rates the cost model uses. Nothing else
// compares chip names or compute capabilities (after IREE's KnownTargets).
// A new chip is a new row here; a new MMA generation is a flag here plus a
// mainloop in lib/Conversion/FusedOpsToGPU (docs/design/gemm-engine.md).
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_TARGET_CHIPS_H
#define FUSEDOPS_TARGET_CHIPS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>

namespace mlir::fusedops {

/// The rates of the card a chip row stands for, as the cost model
/// (fusedops/Autotune/CostModel.h) reads them. Datasheet leads and fits to
/// measurements; docs/autotuning.md says which.
struct ChipRates {
  /// The card these describe, e.g. "H100 SXM".
  const char *card;
  int64_t smCount;
  /// Sustained DRAM bandwidth (bytes/s, ~90 % of the datasheet's) and its
  /// latency (s); L2 bandwidth (bytes/s).
  double dramBytesPerSecond, dramLatencySeconds, l2BytesPerSecond;
  /// Dense tensor-core rates (FLOP/s) the kernels reach with 16-bit and FP8
  /// operands, and the FP32 FMA rate of the CUDA cores.
  double tensorF16FlopsPerSecond, tensorFp8FlopsPerSecond, fmaFlopsPerSecond;
  /// Fitted costs (s): a block-wide reduction per warp taking part, one K
  /// step of a multistage GEMM, one vector of a row step, one launch.
  double syncSecondsPerWarp, kStepSeconds, itemSeconds, launchSeconds;
  /// Fitted cost (s) of one K step of a warp-specialized TMA ring (the MMA
  /// warps wait on the slot's mbarrier and give it back; no block barrier);
  /// 0 on chips without TMA.
  double ringStepSeconds;
};

/// One chip fusedops builds for.
struct ChipInfo {
  /// The name passed as `chip=`: "sm_80", "sm_90a".
  const char *name;
  /// What it is, for messages and docs.
  const char *description;
  /// Compute capability as major·10 + minor.
  int computeCapability;
  /// Architecture-specific features (the `a` targets) may be used.
  bool archSpecific;
  /// The PTX ISA version emitted (major·10 + minor): the lowest that has
  /// every instruction our kernels use on the chip and that the NVPTX
  /// backend accepts for it.
  unsigned ptxVersion;
  /// What the JIT and the Python package compile to: "bin" (cubin, for this
  /// chip only) or "isa" (PTX the driver compiles for the card present, so
  /// that these kernels also run on newer cards).
  const char *jitFormat;

  /// Shared memory a block may have with the dynamic opt-in, and per SM.
  int64_t maxSharedBytesPerBlock, sharedBytesPerSm;
  int64_t registersPerSm, maxRegistersPerThread, maxThreadsPerSm,
      maxBlocksPerSm;

  /// mma.sync m16n8k32 with e4m3/e5m2 operands (sm_89 and later).
  bool hasFp8MmaSync;
  /// Warpgroup MMAs (wgmma.mma_async) and setmaxnreg: sm_90a.
  bool hasWgmma;
  /// cvt.rn.satfinite.{e4m3x2,e5m2x2}.f32 and cvt.rn.f16x2.{e4m3x2,e5m2x2}
  /// used by the quantize kernels.
  bool hasFp8Convert;
  /// The bulk tensor copy engine (TMA) and thread-block clusters.
  bool hasTma, hasClusters;

  ChipRates rates;
};

/// Every chip fusedops builds for, oldest first.
llvm::ArrayRef<ChipInfo> getKnownChips();

/// The row of `name` ("sm_90a"), or null if fusedops does not build for it.
const ChipInfo *lookupChip(llvm::StringRef name);

/// The chip fusedops builds for on a card of compute capability
/// major.minor (the `a` target where there is one), or null.
const ChipInfo *lookupChipForComputeCapability(int major, int minor);

/// "sm_80, sm_86, sm_89, sm_90 and sm_90a": for messages that say what to
/// pass instead.
std::string getKnownChipNames();

} // namespace mlir::fusedops

#endif // FUSEDOPS_TARGET_CHIPS_H
