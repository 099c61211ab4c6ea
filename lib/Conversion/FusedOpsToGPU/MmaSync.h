//===- MmaSync.h - warp-level mma.sync building blocks ----------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// The sm_80 GEMM mainloop every GEMM op shares on chips without warpgroup
// MMAs: a cp.async ring, ldmatrix (or 4-byte loads of FP8 fragments),
// mma.sync; with the op's epilogue from GemmEpilogues.h (see
// Sm80GemmStrategies.cpp). Private to lib/Conversion/FusedOpsToGPU.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_MMASYNC_H
#define FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_MMASYNC_H

#include "GemmEpilogues.h"
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

/// What the mma.sync mainloop multiplies.
enum class MmaSyncOperands {
  /// f16 or bf16 A and B: ldmatrix and mma.sync m16n8k16.
  Bits16,
  /// FP8 A and B: fragments from 4-byte shared loads, mma.sync m16n8k32 with
  /// e4m3/e5m2 operands (chips with `hasFp8MmaSync`).
  Fp8Native,
  /// FP8 A and B decoded to f16 tiles in shared memory (exact), then as
  /// Bits16: chips without FP8 MMAs.
  Fp8Decoded,
};

/// One mma.sync GEMM kernel: a block computes a BM×BN tile of Cᵢ = A·Bᵢᵀ for
/// every B operand, its warps a 2-D grid (two warps across N where there
/// are two or more), each warp (BM/warpsM)×(BN/warpsN) of 16×8 MMA tiles; K
/// in BK steps through a `stages`-deep ring of row-padded tiles.
struct MmaSyncGemmPlan {
  int64_t bm = 0, bn = 0, bk = 0, stages = 0, threads = 0, warpsM = 0,
          warpsN = 0;
  /// Static N and K; B operands sharing A.
  int64_t n = 0, k = 0, numB = 1;
  MmaSyncOperands operands = MmaSyncOperands::Bits16;
  /// Element types of A and of every B in memory.
  Type aType, bType;
  /// Block128 scales: each 128 of K is summed apart and added in with the
  /// scale the caller gives (two accumulator sets).
  bool blockScales = false;
  /// Whether the tile asks for a cluster of more than one block (which
  /// this mainloop does not build).
  bool clustered = false;

  static MmaSyncGemmPlan get(TileConfigAttr tile, int64_t n, int64_t k,
                             int64_t numB, Type aType, Type bType,
                             MmaSyncOperands operands, bool blockScales);

  int64_t elementBytes() const { return aType.getIntOrFloatBitWidth() / 8; }
  /// Elements in one 16-byte cp.async, and the padding of each ring row
  /// (16 bytes, so that the eight rows an ldmatrix reads fall in distinct
  /// banks).
  int64_t chunkElements() const { return 16 / elementBytes(); }
  int64_t mmaK() const {
    return operands == MmaSyncOperands::Fp8Native ? 32 : 16;
  }
  int64_t warpTileM() const { return bm / warpsM; }
  int64_t warpTileN() const { return bn / warpsN; }
  int64_t mmaTilesM() const { return warpTileM() / 16; }
  int64_t mmaTilesN() const { return warpTileN() / 8; }
  /// f32 accumulator registers per thread.
  int64_t accumulatorsPerThread() const {
    return numB * mmaTilesM() * mmaTilesN() * 4 * (blockScales ? 2 : 1);
  }
  /// The rings of A and of each B; with decoding, the f16 tiles of A and B.
  SmallVector<MemRefType> getSharedTypes(MLIRContext *ctx) const;
  int64_t getSharedBytes() const;
  /// Why this plan cannot be built on `target` ("" when it can).
  std::string getUnsupportedReason(const KernelTarget &target) const;
};

/// With block scales, the f32 scale of the 128-wide K block `kb` (an index)
/// for this block tile.
using KBlockScaleFn = function_ref<Value(ImplicitLocOpBuilder &, Value kb)>;

/// Emits the kernel body at `b`: the tile of block rows [m0, m0 + BM) and
/// columns [n0, n0 + BN) of every Cᵢ = A·Bᵢᵀ with `rowsM` rows of A (rows
/// past it, columns past N and K read as zero), handed to `epilogue`.
void buildMmaSyncGemm(ImplicitLocOpBuilder &b, const MmaSyncGemmPlan &plan,
                      Value a, ArrayRef<Value> bs, Value rowsM, Value m0,
                      Value n0, KBlockScaleFn kBlockScale,
                      GemmEpilogueFn epilogue);

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
  /// [M, N] tensors the epilogue reads or writes (gated_mlp_grad: 3).
  int64_t epilogueTensors = 1;
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

/// Builds GEMM kernel `name` taking `args` (its body from `buildBody`, given
/// the block tile's first row and column) and launches it, where `args[0]`'s
/// row count is not zero, on a cdiv(N, BN) × cdiv(rows, BM) grid of
/// `threads`-thread blocks with `sharedBytes` of dynamic shared memory.
void buildAndLaunchGemmKernel(
    ImplicitLocOpBuilder &b, gpu::GPUModuleOp module, StringRef name,
    ArrayRef<Value> args, int64_t n, int64_t bm, int64_t bn, int64_t threads,
    int64_t sharedBytes,
    function_ref<void(ImplicitLocOpBuilder &, gpu::GPUFuncOp, Value m0,
                      Value n0)>
        buildBody);

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
