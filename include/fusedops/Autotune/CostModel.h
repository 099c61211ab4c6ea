//===- CostModel.h - analytical time of a tiled kernel ----------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Predicts how long a kernel built with a given tile takes, from what its
// strategy says the tile costs (KernelResources: blocks, threads, shared
// memory, registers, DRAM bytes, FLOPs, bytes in flight) and what the chip
// has (ChipModel). It ranks tiles; its absolute times are rough.
//
//   occupancy   blocks per SM from threads, registers, shared memory and the
//               block limit; a tile that fits zero blocks is rejected, with
//               the resource that ran out;
//   waves       the grid in waves of (SMs × blocks per SM);
//   memory      DRAM bytes / bandwidth, slowed when the bytes in flight are
//               fewer than bandwidth × latency needs (Little's law), and L2
//               bytes (tiles re-read by other blocks) / L2 bandwidth;
//   compute     FLOPs / the unit's peak (tensor cores or FMA), scaled by how
//               well the warp tile feeds it and by whether each SM has a
//               warp per scheduler; for multistage GEMMs, per wave, K steps
//               of (math at the block's share of the SM, stretched where the
//               pipeline and the other blocks do not hide load latency, plus
//               a fixed cost per step);
//   latency     for row kernels, per wave and step, the dependent loads'
//               latency and the block-wide reduction;
//   time        a smooth max of memory and compute (they overlap, not
//               perfectly), plus latency and the launches.
//
// docs/autotuning.md derives the constants and compares the model with
// measurements.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_AUTOTUNE_COSTMODEL_H
#define FUSEDOPS_AUTOTUNE_COSTMODEL_H

#include "fusedops/Conversion/FusedOpsToGPU/KernelStrategy.h"

#include <string>

namespace mlir::fusedops::autotune {

/// What the cost model knows of a chip.
struct ChipModel {
  std::string name;
  int64_t smCount = 0;
  /// Sustained DRAM bandwidth (bytes/s) and its latency (s).
  double dramBytesPerSecond = 0;
  double dramLatencySeconds = 0;
  /// L2 bandwidth (bytes/s): re-reads of tiles by other blocks.
  double l2BytesPerSecond = 0;
  /// Dense tensor-core rates (FLOP/s) for the mma.sync instructions our
  /// kernels issue: f16/bf16 inputs and FP8 inputs.
  double tensorF16FlopsPerSecond = 0;
  double tensorFp8FlopsPerSecond = 0;
  /// FP32 FMA rate (FLOP/s) of the CUDA cores.
  double fmaFlopsPerSecond = 0;
  int64_t registersPerSm = 65536;
  int64_t maxRegistersPerThread = 255;
  int64_t maxThreadsPerSm = 2048;
  int64_t maxBlocksPerSm = 32;
  int64_t sharedBytesPerSm = 0;
  /// Shared memory a block may have (with the dynamic opt-in).
  int64_t maxSharedBytesPerBlock = 48 * 1024;
  /// Cost of a block-wide reduction per warp taking part (barriers and the
  /// shared-memory exchange), and the fixed cost of one K step of a
  /// multistage GEMM (two barriers and the cp.async wait) (s). Fitted to
  /// H200 measurements (docs/autotuning.md).
  double syncSecondsPerWarp = 0;
  double kStepSeconds = 0;
  /// The fixed cost of one K step of a warp-specialized TMA ring (mbarrier
  /// waits and arrivals, no block barrier) (s).
  double ringStepSeconds = 0;
  /// A thread's work on one vector of a row step (conversions, math): the
  /// chain a step waits on where few warps share an SM (s).
  double itemSeconds = 0;
  /// Host-to-GPU cost of one kernel launch (s).
  double launchSeconds = 0;

  /// The model of `target`, read off its row of the chip table
  /// (fusedops/Target/Chips.h: the card and rates each chip stands for).
  static ChipModel get(const KernelTarget &target);
};

/// The predicted time of one tile and how it was reached.
struct CostEstimate {
  double seconds = 0;
  double memorySeconds = 0;
  double computeSeconds = 0;
  int64_t blocksPerSm = 0;
  double waveEfficiency = 0;
  /// Fraction of DRAM bandwidth the bytes in flight can sustain.
  double latencyCover = 0;
  /// "memory", "compute" or "launch": what bounds the time.
  std::string limiter;
};

/// Predicts the time of a kernel with `resources` on `chip`. Fails with
/// `reason` (what ran out, by how much) if not one block fits on an SM.
FailureOr<CostEstimate> estimateCost(const KernelResources &resources,
                                     const ChipModel &chip,
                                     std::string &reason);

} // namespace mlir::fusedops::autotune

#endif // FUSEDOPS_AUTOTUNE_COSTMODEL_H
