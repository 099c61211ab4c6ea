//===- Wgmma.h - the sm_90a GEMM mainloop (wgmma) ---------------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// The Hopper mainloop every GEMM op shares: K-major operand tiles loaded by
// TMA into 128-byte-swizzled shared memory by a producer warpgroup,
// warpgroup MMAs (`wgmma.mma_async`) reading them through shared-memory
// descriptors in the MMA warpgroups, f32 accumulators in registers, over a
// persistent grid.
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

#include <functional>
#include <string>

namespace mlir::fusedops::kernel {

/// One sm_90a GEMM kernel: a block computes a BM×BN tile of Cᵢ = A·Bᵢᵀ for
/// every B operand (A [M, K] and Bᵢ [N, K], both K-major), with BM = 64 rows
/// per warpgroup.
struct WgmmaGemmPlan {
  int64_t bm = 0, bn = 0, bk = 0, stages = 0, warpgroups = 0;
  /// The tile's `cluster`: [] or [1] (one block), or [2] (a 2×1 cluster:
  /// two blocks computing vertically adjacent output tiles, each loading
  /// half of every B tile for both with TMA multicast, so that each block
  /// reads a quarter to a third fewer bytes from L2).
  SmallVector<int64_t, 3> cluster;
  /// Static N and K of the problem.
  int64_t n = 0, k = 0;
  /// B operands sharing A (gated_mlp: gate and up).
  int64_t numB = 1;
  /// Element type of A and of every B (f16, bf16, f8E4M3FN, f8E5M2).
  Type aType, bType;
  /// Element type of the output.
  Type outType;
  /// [M, N] tensors the epilogue reads or writes (gated_mlp_grad: the
  /// gradient in, two gradients out); the staged TMA store serves one
  /// output, so more store from registers.
  int64_t epilogueTensors = 1;
  /// Promotion: each K tile's products (at most 128 of K) start from zero
  /// and are then added to f32 sums, times the tile's scale where one is
  /// given (block-scaled FP8). Hopper's FP8 wgmma accumulates with about 14
  /// bits of mantissa (DeepSeek-V3 §3.3.2); this keeps the sums in f32.
  /// The sums and the tile's products: two accumulator sets, three where
  /// they fit (overlapsPromotion).
  bool promote = false;
  /// For dynamic rows: the row count the kernel is tuned for (the op's
  /// rows hint, getEstimatedRows); 0 for static rows. It fixes choices the
  /// static kernel makes from its M: K is read in a rotated order (decode,
  /// see WgmmaTileSchedule::rotateK) where this fits one tile row.
  int64_t rowsHint = 0;
  /// Static rows of the problem (M); 0 where they are dynamic.
  int64_t staticRows = 0;

  /// Builds the plan of `tile` = #fusedops.tile<block = [BM, BN, BK],
  /// warps = 4 × warpgroups, stages = S>, for an output of `outType`.
  static WgmmaGemmPlan get(TileConfigAttr tile, int64_t n, int64_t k,
                           int64_t numB, Type aType, Type bType, bool promote,
                           Type outType);

  int64_t elementBytes() const;
  /// Bytes of one shared-memory row of a K tile: the swizzle width.
  int64_t rowBytes() const { return bk * elementBytes(); }
  /// K of one wgmma: 32 bytes of each row (16 for 16-bit, 32 for FP8).
  int64_t mmaK() const { return 32 / elementBytes(); }
  /// Rows of A a ring slot holds (A's TMA box). A one-warpgroup tile of a
  /// problem with a static M below BM (decode) loads M rows rounded up to
  /// the swizzle's 8, not BM: its wgmmas still read 64 rows, the ones past
  /// the slot from the next slots (their products are rows past M, never
  /// stored), and A's ring keeps the rows past its last slot. A stage of
  /// FP8 64×96×128 at M = 1 loads 13 KiB, not 20 of which 7 were TMA's
  /// zeros: FP8 decode at M = 1 took 18.9 instead of 24.6 µs, the gated MLP
  /// 49 instead of 54 µs on an H200 (docs/perf/gemm-engine.md v12). Dynamic
  /// rows keep BM: the kernel serves every M.
  int64_t aSlotRows() const {
    return warpgroups == 1 && staticRows > 0 && staticRows < bm
               ? llvm::alignTo(staticRows, 8)
               : bm;
  }
  /// Blocks of a cluster, all along M (1 without a cluster).
  int64_t clusterBlocks() const { return cluster.empty() ? 1 : cluster[0]; }
  /// Rows of B each block of a cluster loads (for all of them).
  int64_t bRowsPerBlock() const { return bn / clusterBlocks(); }
  /// Threads per block: the producer warpgroup and the MMA warpgroups.
  int64_t threads() const { return (warpgroups + 1) * 128; }
  /// Tensor maps the kernel takes (its last parameters): A, each B, and
  /// the output's where the epilogue stores through TMA.
  int64_t numTensorMaps() const { return 1 + numB + storesThroughTma(); }

  /// The epilogue's stores. Each MMA warp writes its 16 rows of the tile
  /// into shared memory, 128 bytes of a row at a time (in the 128-byte
  /// swizzle, so that the 8 rows a store instruction spans fall in distinct
  /// banks), and one of its threads stores them with TMA, 16 whole 128-byte
  /// lines; two such buffers per warp, so that a store's read of one
  /// overlaps the writes of the next, and TMA clips rows past M and columns
  /// past N. Stored from registers, a thread's pair of values fills half a
  /// 32-byte sector, and every sector of the output took two writes (ncu,
  /// FP8 4096³ on an H200: half the store sectors, docs/perf/gemm-engine.md
  /// v11). Needs an output row of whole 16-byte units (the tensor map's
  /// stride) and BN of whole 128-byte rows. One-warpgroup tiles (decode, M
  /// ≤ 64) keep the register stores: they write few rows, and the buffers'
  /// 16 KiB cost them ring stages (gated decode at M = 64 took 56 instead
  /// of 51 µs with one stage less). Else each thread stores its pairs of
  /// values from registers.
  static constexpr int64_t kStoreRows = 16;
  static constexpr int64_t kStoreRowBytes = 128;
  static constexpr int64_t kStoreBuffers = 2;
  bool storesThroughTma() const {
    return warpgroups > 1 && epilogueTensors == 1 && n * outBytes() % 16 == 0 &&
           bn * outBytes() % kStoreRowBytes == 0;
  }
  /// Bytes of an output element.
  int64_t outBytes() const;
  /// Shared memory of the epilogue's store buffers (0 without TMA stores).
  int64_t storeBufferBytes() const {
    return storesThroughTma()
               ? warpgroups * 4 * kStoreBuffers * kStoreRows * kStoreRowBytes
               : 0;
  }
  /// At most this many f32 accumulators per thread (of the MMA warpgroups'
  /// 232 registers after setmaxnreg).
  static constexpr int64_t kMaxAccumulators = 192;
  /// Promoted with two product sets where three sets fit the two MMA
  /// warpgroups' registers: a K tile's wgmmas run while the previous K
  /// tile's products are added to the sums (else each K tile waits for its
  /// wgmmas and adds them with the tensor cores idle, but for the other MMA
  /// warpgroup). One-warpgroup tiles (decode) keep the wait: with the
  /// overlap (three sets), FP8 decode at M = 1, 16, 64 measured within 2 %
  /// on an H200, 26.8 / 20.5 / 20.7 against 26.7 / 20.9 / 21.0 µs
  /// (docs/perf/gemm-engine.md v12): the stream, not the MMAs, sets the pace.
  /// Clustered tiles too: the cluster's addresses on top of three sets made
  /// ptxas spill, and 128×128 FP8 ran 2.5× slower on an H200
  /// (docs/perf/gemm-engine.md v10).
  bool overlapsPromotion() const {
    return promote && warpgroups == 2 && clusterBlocks() == 1 &&
           numB * bn / 2 * 3 <= kMaxAccumulators;
  }
  /// f32 accumulator registers per thread.
  int64_t accumulatorsPerThread() const {
    return numB * bn / 2 * (overlapsPromotion() ? 3 : promote ? 2 : 1);
  }
  /// Dynamic shared memory: the rings of A and of each B, the epilogue's
  /// store buffers, a full and an empty mbarrier per slot, plus 1 KiB to
  /// align them to the swizzle pattern's 1024 bytes.
  int64_t sharedBytes() const;
  /// Blocks of this kernel an SM of `target`'s chip holds at once.
  int64_t blocksPerSm(const KernelTarget &target) const;
  /// Why this plan cannot be built on `target` ("" when it can).
  std::string getUnsupportedReason(const KernelTarget &target) const;
};

/// With promotion, the f32 scale of K tile `kt` of the output tile at
/// (m0, n0).
using KTileScaleFn =
    function_ref<Value(ImplicitLocOpBuilder &, Value kt, Value m0, Value n0)>;

/// The output tiles a kernel's blocks walk: tile t of `numTiles` (a value in
/// the kernel) starts at row and column `origin(t)`. With a cluster, these
/// are the cluster's tiles (clusterBlocks() · BM rows); the block of rank r
/// takes their r-th BM rows.
struct WgmmaTileSchedule {
  Value numTiles;
  /// An i1: whether each tile reads its K tiles in a rotated order (starting
  /// at tile mod K tiles), for when the tiles share one A tile (decode).
  Value rotateK;
  std::function<std::pair<Value, Value>(ImplicitLocOpBuilder &, Value tile)>
      origin;
};

/// Emits the body of `kernel` (built by buildAndLaunchWgmmaGemm) at `b`: for
/// each of this block's output tiles (a persistent grid: tiles blockIdx.x,
/// + gridDim.x, ...; with a cluster, the cluster's tiles, see
/// WgmmaTileSchedule), the BM×BN tile of every Cᵢ = A·Bᵢᵀ, read through the
/// kernel's tensor maps (elements past M, N and K read as zero), handed to
/// `epilogue` with the accumulators' places. Warpgroup 0 is the producer:
/// one thread issues the TMA loads into a `stages`-deep ring, the others
/// leave; the MMA warpgroups multiply and run `epilogue`, which therefore
/// must not wait on a block-wide barrier.
void buildWgmmaGemm(ImplicitLocOpBuilder &b, const WgmmaGemmPlan &plan,
                    gpu::GPUFuncOp kernel, const WgmmaTileSchedule &schedule,
                    KTileScaleFn kTileScale, GemmEpilogueFn epilogue);

/// Builds kernel `name` taking `args` and then the tensor maps of `a`, of
/// each of `bs` and, where the plan stores through TMA, of `out` (2-D,
/// row-major, among `args`; the kernel gets
/// `fusedops.tensor_map_params`, see fusedops-tensor-map-params), its body
/// from `buildBody` given the tile schedule (grouped order: kGroupRows tile
/// rows down a column of tiles before the next, so that the weight tiles
/// read at once stay in L2), and launches it where `args[0]` has rows on a
/// persistent grid (at most as many blocks as the device holds at once).
/// Host code encodes the maps (`mgpuTensorMapEncode2D`); one the runtime
/// refuses skips the launch with its error.
void buildAndLaunchWgmmaGemm(
    ImplicitLocOpBuilder &b, gpu::GPUModuleOp module, StringRef name,
    ArrayRef<Value> args, Value a, ArrayRef<Value> bs, Value out,
    const WgmmaGemmPlan &plan, const KernelTarget &target,
    function_ref<void(ImplicitLocOpBuilder &, gpu::GPUFuncOp,
                      const WgmmaTileSchedule &)>
        buildBody);

/// The autotuner's sm_90a tiles for 16-bit (`mmaK` 16) or FP8 operands.
SmallVector<TileConfigAttr> enumerateWgmmaTiles(MLIRContext *ctx,
                                                int64_t elementBytes,
                                                TileConfigAttr defaultTile);

/// Traffic, work and resources of `plan` for `m` rows, as the cost model
/// reads them.
KernelResources estimateWgmmaGemm(const WgmmaGemmPlan &plan, int64_t m);

} // namespace mlir::fusedops::kernel

#endif // FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_WGMMA_H
