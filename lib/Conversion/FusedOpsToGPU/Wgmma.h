//===- Wgmma.h - the sm_90a GEMM mainloop (wgmma) ---------------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// The Hopper mainloop every GEMM op shares: K-major operand tiles in
// 128-byte-swizzled shared memory, warpgroup MMAs (`wgmma.mma_async`) reading
// them through shared-memory descriptors, f32 accumulators in registers.
// An op is a configuration (element types, how many B operands share A,
// whether each K tile is promoted) plus its epilogue (GemmEpilogues.h), as
// Sm90GemmStrategies.cpp pairs them. Private to
// lib/Conversion/FusedOpsToGPU.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_WGMMA_H
#define FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_WGMMA_H

#include "GemmEpilogues.h"
#include "fusedops/Conversion/FusedOpsToGPU/KernelStrategy.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <string>

namespace mlir::fusedops::kernel {

/// One sm_90a GEMM kernel: a block computes a BM×BN tile of Cᵢ = A·Bᵢᵀ for
/// every B operand (A [M, K] and Bᵢ [N, K], both K-major), with BM = 64 rows
/// per warpgroup.
struct WgmmaGemmPlan {
  int64_t bm = 0, bn = 0, bk = 0, stages = 0, warpgroups = 0;
  /// Static N and K of the problem.
  int64_t n = 0, k = 0;
  /// B operands sharing A (gated_mlp: gate and up).
  int64_t numB = 1;
  /// Element type of A and of every B (f16, bf16, f8E4M3FN, f8E5M2).
  Type aType, bType;
  /// Promotion: each K tile's products (at most 128 of K) start from zero
  /// and are then added to f32 sums, times the tile's scale where one is
  /// given (block-scaled FP8). Hopper's FP8 wgmma accumulates with about 14
  /// bits of mantissa (DeepSeek-V3 §3.3.2); this keeps the sums in f32.
  /// Three accumulator sets: the sums and two partials, so that one K
  /// tile's MMAs overlap the folding of the other's.
  bool promote = false;

  /// Builds the plan of `tile` = #fusedops.tile<block = [BM, BN, BK],
  /// warps = 4 × warpgroups, stages = S>.
  static WgmmaGemmPlan get(TileConfigAttr tile, int64_t n, int64_t k,
                           int64_t numB, Type aType, Type bType, bool promote);

  int64_t elementBytes() const;
  /// Bytes of one shared-memory row of a K tile: the swizzle width.
  int64_t rowBytes() const { return bk * elementBytes(); }
  /// K of one wgmma: 32 bytes of each row (16 for 16-bit, 32 for FP8).
  int64_t mmaK() const { return 32 / elementBytes(); }
  int64_t threads() const { return warpgroups * 128; }
  /// f32 accumulator registers per thread.
  int64_t accumulatorsPerThread() const {
    return numB * bn / 2 * (promote ? 3 : 1);
  }
  /// Dynamic shared memory: the rings of A and of each B, plus 1 KiB to
  /// align them to the swizzle pattern's 1024 bytes.
  int64_t sharedBytes() const;
  /// Why this plan cannot be built on `target` ("" when it can).
  std::string getUnsupportedReason(const KernelTarget &target) const;
};

/// With promotion, the f32 scale of K tile `kt` (an index, possibly one
/// past K's last tile, whose products are zero) for this block.
using KTileScaleFn = function_ref<Value(ImplicitLocOpBuilder &, Value kt)>;

/// Emits the kernel body at `b`: the tile of block rows [m0, m0 + BM) and
/// columns [n0, n0 + BN) of every Cᵢ = A·Bᵢᵀ, with `rowsM` rows of A (rows
/// past it, columns past N and K read as zero), handed to `epilogue`. Every
/// thread both loads (cp.async into the ring) and, by warpgroup, multiplies
/// (wgmma); one barrier per K tile hands the slots over.
void buildWgmmaGemm(ImplicitLocOpBuilder &b, const WgmmaGemmPlan &plan, Value a,
                    ArrayRef<Value> bs, Value rowsM, Value m0, Value n0,
                    KTileScaleFn kTileScale, GemmEpilogueFn epilogue);

/// Builds kernel `name` taking `args` (its body from `buildBody`, given the
/// block tile's first row and column) and launches it where `args[0]` has
/// rows: one block per BM×BN output tile, visited in groups of
/// `groupRows` tile rows so that the weight tiles a wave reads stay in L2.
void buildAndLaunchWgmmaGemm(
    ImplicitLocOpBuilder &b, gpu::GPUModuleOp module, StringRef name,
    ArrayRef<Value> args, const WgmmaGemmPlan &plan,
    function_ref<void(ImplicitLocOpBuilder &, gpu::GPUFuncOp, Value m0,
                      Value n0)>
        buildBody);

/// The autotuner's sm_90a tiles for 16-bit (`mmaK` 16) or FP8 operands.
SmallVector<TileConfigAttr> enumerateWgmmaTiles(MLIRContext *ctx,
                                                int64_t elementBytes,
                                                TileConfigAttr defaultTile);

/// Traffic, work and resources of `plan` for `m` rows, as the cost model
/// reads them.
KernelResources estimateWgmmaGemm(const WgmmaGemmPlan &plan, int64_t m,
                                  int64_t outBytes);

} // namespace mlir::fusedops::kernel

#endif // FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_WGMMA_H
