//===- MmaSync.h - warp-level mma.sync building blocks ----------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// The pieces the sm_80 GEMM strategies share: ldmatrix fragments turned into
// the registers nvvm.mma.sync takes, and one m16n8k16 tile update. Private
// to lib/Conversion/FusedOpsToGPU.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_MMASYNC_H
#define FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_MMASYNC_H

#include "fusedops/Conversion/FusedOpsToGPU/KernelStrategy.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::fusedops::kernel {

/// The 32-bit registers of an ldmatrix result (vector<Rx2xT> of a 16-bit T,
/// or vector<Rx4xT> of an 8-bit T), as the mma ops take them: vector<2xf16>
/// for f16, i32 for bf16 and 8-bit types.
SmallVector<Value> toMmaRegisters(ImplicitLocOpBuilder &b, Value fragment);

/// acc += A·B for one m16n8k16 tile (row-major A, column-major B): `a` 4
/// and `bRegs` 2 registers from toMmaRegisters, `acc` 4 f32 (lane l holds
/// rows l/4 and l/4 + 8, columns 2·(l%4) and 2·(l%4)+1). Emitted as
/// nvvm.mma.sync because nvgpu.mma.sync has no bf16 lowering in MLIR 22.
SmallVector<Value> mmaSync16816(ImplicitLocOpBuilder &b, ValueRange a,
                                ValueRange bRegs, ValueRange acc,
                                Type elementType);

/// acc += A·B for one m16n8k32 tile of FP8 operands (sm_89 and later),
/// `a` 4 and `bRegs` 2 i32 registers of packed FP8 bytes (the ldmatrix b16
/// layout of the byte tiles), `aType`/`bType` f8E4M3FN or f8E5M2. Emitted as
/// inline PTX: MLIR 22's nvvm.mma.sync does not accept FP8 operands.
SmallVector<Value> mmaSyncFp8(ImplicitLocOpBuilder &b, ValueRange a,
                              ValueRange bRegs, ValueRange acc, Type aType,
                              Type bType);

/// One tile of an mma.sync GEMM kernel (block tile BM×BN×BK of a
/// 2 × (warps/2) warp grid, `stages`-deep cp.async ring), as the cost model
/// sees it.
struct MmaGemmTile {
  int64_t m = 0, n = 0, k = 0;
  int64_t bm = 0, bn = 0, bk = 0, warps = 0, stages = 0;
  /// Bytes per element of A, of each B operand, of the output.
  int64_t aBytes = 0, bBytes = 0, outBytes = 0;
  /// B operands sharing A (gated_mlp: gate and up).
  int64_t numB = 1;
  /// K of one mma instruction (16 for f16/bf16, 32 for FP8).
  int64_t mmaK = 16;
  int64_t accumulatorsPerThread = 0;
  int64_t sharedBytes = 0;
  KernelResources::ComputeUnit unit = KernelResources::ComputeUnit::TensorF16;
  /// Fragments per mma tile loaded with one ldmatrix (f16 paths) or with
  /// four 32-bit shared loads (the FP8 path).
  bool ldmatrix = true;
  /// FMA-unit work per element of each K step's A and B tiles (decoding).
  double decodeFlopsPerElement = 0;
};

/// Builds GEMM kernel `name` taking `args` (its body from `buildBody`) and
/// launches it, where `args[0]`'s row count is not zero, on a
/// cdiv(N, BN) × cdiv(rows, BM) grid of `threads`-thread blocks with
/// `sharedBytes` of dynamic shared memory.
void buildAndLaunchGemmKernel(
    ImplicitLocOpBuilder &b, gpu::GPUModuleOp module, StringRef name,
    ArrayRef<Value> args, int64_t n, int64_t bm, int64_t bn, int64_t threads,
    int64_t sharedBytes,
    function_ref<void(ImplicitLocOpBuilder &, gpu::GPUFuncOp)> buildBody);

/// The tile's geometry for `op` (rows as getEstimatedRows) with weights of
/// `n` × `k`; the caller fills in element sizes, operands and resources.
MmaGemmTile makeMmaGemmTile(Operation *op, TileConfigAttr tile, int64_t n,
                            int64_t k);

/// The autotuner's GEMM tiles: BM, BN in {32, ..., 256}, BK in `bks`, 2, 4
/// or 8 warps, 1 to 4 stages, `defaultTile` first.
SmallVector<TileConfigAttr> enumerateMmaGemmTiles(MLIRContext *ctx,
                                                  ArrayRef<int64_t> bks,
                                                  TileConfigAttr defaultTile);

/// Traffic, work and resources of `tile`: A re-read once per column of
/// blocks and B once per row of blocks (through L2), the unique bytes from
/// DRAM; the warp tile's fragment reuse as issue efficiency.
KernelResources estimateMmaGemm(const MmaGemmTile &tile);

} // namespace mlir::fusedops::kernel

#endif // FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_MMASYNC_H
