//===- KernelStrategy.h - how one op becomes one kernel ---------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// A kernel strategy builds the GPU kernel for one kind of fusedops op on a
// set of chips: the sm_80 GEMM strategy (cp.async, ldmatrix, mma.sync), the
// sm_90a one (TMA, wgmma), the memory-bound row kernels that serve both.
// The conversion asks `selectKernelStrategy` for the op and target and never
// looks inside a strategy, so a new chip or algorithm is a new strategy file
// registered in KernelStrategy.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_CONVERSION_FUSEDOPSTOGPU_KERNELSTRATEGY_H
#define FUSEDOPS_CONVERSION_FUSEDOPSTOGPU_KERNELSTRATEGY_H

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"
#include "fusedops/Target/Chips.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/PatternMatch.h"

#include <memory>
#include <optional>
#include <string>

namespace mlir::fusedops {

/// The chip kernels are built for: its name and its row of the chip table
/// (fusedops/Target/Chips.h), which strategies ask what the chip has.
struct KernelTarget {
  /// "sm_80", "sm_90a", ...: for messages.
  std::string chip;
  const ChipInfo *info = nullptr;

  /// The target of a chip in the table; std::nullopt for any other name.
  static std::optional<KernelTarget> parse(StringRef chip);
};

/// Builds the kernel for one kind of op. Implementations are stateless.
/// What the kernel(s) one tile builds for an op cost: the cost model's input
/// (fusedops/Autotune/CostModel.h). Geometry is the op's main kernel's;
/// traffic and work are all of its kernels'. Where the row count is dynamic,
/// strategies assume 4096 rows.
struct KernelResources {
  /// The unit that does the op's arithmetic.
  enum class ComputeUnit { Fma, TensorF16, TensorFp8 };

  int64_t blocks = 0;
  int64_t threadsPerBlock = 0;
  int64_t sharedBytesPerBlock = 0;
  /// Estimated (the real count is known only after ptxas).
  int64_t registersPerThread = 0;
  /// Bytes that must come from or go to DRAM at least once.
  double dramBytes = 0;
  /// Bytes all blocks load from global memory, re-reads included (served by
  /// L2 where DRAM is not needed).
  double l2Bytes = 0;
  double flops = 0;
  ComputeUnit unit = ComputeUnit::Fma;
  /// Work on the FMA units besides `flops` (e.g. FP8 decoding before f16
  /// tensor cores), in FLOP-equivalents; it does not overlap the math.
  double auxFlops = 0;
  /// How well one warp's tile feeds its unit: 1 when operand loads hide
  /// behind the math, less when small warp tiles reload operands per mma.
  double issueEfficiency = 1;
  /// Bytes one block has in flight to memory between waits.
  double bytesInFlightPerBlock = 0;
  /// Row kernels: per step (a row or tile a block handles in turn), the
  /// global loads that wait on one another, the warps that join a
  /// block-wide reduction (0: none, or within one warp), and the steps each
  /// block takes one after another.
  double dependentLoads = 0;
  int64_t syncWarps = 0;
  int64_t serialSteps = 1;
  /// Vectors one thread loads and computes per step, one after another.
  int64_t itemsPerThread = 0;
  /// Multistage kernels: pipeline depth and K steps (0: not pipelined).
  int64_t stages = 0;
  int64_t kSteps = 0;
  /// Multistage kernels: how long a tile load waits, in idle DRAM latencies
  /// (under a GEMM's full traffic about 2; more where the warps that issue
  /// the copies also run the MMAs, as in the sm_90a mainloop).
  double loadLatencyFactor = 2;
  /// Multistage kernels: the K steps run through a warp-specialized TMA ring
  /// (the chip's ring step cost) instead of block barriers (its K step cost).
  bool tmaRing = false;
  /// TMA rings shared by a cluster of this many blocks (multicast loads):
  /// each K step also waits for the other blocks' MMA warps.
  int64_t clusterBlocks = 1;
  int64_t launches = 1;
};

/// What an SM holds of a kernel at once: the limits (from the chip table, or
/// the cost model's chip) and, for a kernel's resources, the registers as
/// allocated and the blocks that fit.
struct SmLimits {
  int64_t registersPerSm, maxThreadsPerSm, maxBlocksPerSm, sharedBytesPerSm;
  static SmLimits get(const ChipInfo &chip) {
    return {chip.registersPerSm, chip.maxThreadsPerSm, chip.maxBlocksPerSm,
            chip.sharedBytesPerSm};
  }
};
struct Occupancy {
  /// Per thread (at least 16, a multiple of 8) and per block (allocated per
  /// warp in units of 256).
  int64_t registersPerThread = 0, registersPerBlock = 0;
  /// The blocks the registers alone allow, and the tightest of threads,
  /// registers, shared memory (with the 1 KiB the driver reserves per block)
  /// and the block limit; 0 where a block does not fit.
  int64_t byRegisters = 0, blocksPerSm = 0;
};
Occupancy getOccupancy(const KernelResources &r, const SmLimits &limits);

class KernelStrategy {
public:
  virtual ~KernelStrategy();

  /// A short name for diagnostics and tests, e.g. "rmsnorm-rope-rowwise".
  virtual StringRef getName() const = 0;

  /// Whether this strategy serves `op` on `target` at all.
  virtual bool matches(Operation *op, const KernelTarget &target) const = 0;

  /// The tile used when the op carries none.
  virtual TileConfigAttr getDefaultTile(Operation *op,
                                        const KernelTarget &target) const = 0;

  /// Emits a diagnostic on `op` and fails if it cannot be built with `tile`
  /// (an element type, shape or tile the kernel does not handle).
  virtual LogicalResult checkSupported(Operation *op, TileConfigAttr tile,
                                       const KernelTarget &target) const = 0;

  /// The tiles the autotuner tries for `op` on `target`, the default tile
  /// among them. Not all need pass `checkSupported`: the autotuner reports
  /// those that fail, with the reason.
  virtual SmallVector<TileConfigAttr>
  getTileCandidates(Operation *op, const KernelTarget &target) const = 0;

  /// What the kernel built with `tile` costs (for a tile `checkSupported`
  /// accepted).
  virtual KernelResources
  estimateResources(Operation *op, TileConfigAttr tile,
                    const KernelTarget &target) const = 0;

  /// Builds the kernel into `kernelModule` and replaces `op` (in buffer form)
  /// by its launch. Called only after `checkSupported` succeeded.
  virtual LogicalResult lower(Operation *op, TileConfigAttr tile,
                              const KernelTarget &target,
                              gpu::GPUModuleOp kernelModule,
                              RewriterBase &rewriter) const = 0;
};

/// The strategy that builds `op` for `target`, or null if none does.
const KernelStrategy *selectKernelStrategy(Operation *op,
                                           const KernelTarget &target);

/// Rows of `op`'s first operand (the product of all but its last dimension);
/// where one is dynamic, the op's rows hint (kRowsHintAttrName), else 4096:
/// the row count a cost estimate assumes.
int64_t getEstimatedRows(Operation *op);

} // namespace mlir::fusedops

#endif // FUSEDOPS_CONVERSION_FUSEDOPSTOGPU_KERNELSTRATEGY_H
