//===- Sm80Fp8GemmStrategy.cpp - scaled FP8 GEMM on f16 mma.sync ----------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Two variants of one kernel:
//
// * sm_80 (no FP8 tensor cores): every FP8 value (e4m3 or e5m2) is exactly
//   an f16 value and f16·f16 products are exact in f32, so the kernel decodes
//   the landed FP8 tiles to f16 tiles in shared memory (software decode,
//   KernelBuilder.h) and runs ldmatrix + mma.sync m16n8k16 on them: the op's
//   f32 result, as precisely as FP8 tensor cores would give it.
// * sm_89 and later (sm_90a here): the FP8 tiles feed
//   mma.sync.m16n8k32 with e4m3/e5m2 operands straight from shared memory
//   (ldmatrix reads the byte tiles as 16-bit pairs: the fragment layouts
//   match), no decode pass.
//
// Per BK step of K, 16-byte cp.async copies bring the FP8 A [BM, BK] and
// B [BN, BK] tiles into a `stages`-deep ring of shared-memory byte tiles.
// Scales are applied in f32: per-tensor and per-row ones to the finished
// accumulators; 128×128 block scales to a partial accumulator that is folded
// into the main one at each 128-wide step of K, with the one scale pair that
// covers the whole block tile (the tile divides 128 in M and N). Bias is
// added last.
//
// Requirements (checked): static N and K, K a multiple of 16 (16-byte
// copies); for block128 scales BM, BN and BK dividing 128.
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"
#include "MmaSync.h"
#include "Strategies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::kernel;

namespace {

/// FP8 elements in one 16-byte cp.async.
constexpr int64_t kChunk = 16;
/// Row padding of the byte tiles and of the f16 tiles (16 bytes each).
constexpr int64_t kBytePad = 16;
constexpr int64_t kHalfPad = 8;

struct Plan {
  int64_t bm, bn, bk, stages, threads, warpsM, warpsN, n, k;
  ScaleGranularity granularity;
  /// FP8 mma.sync (sm_89+) instead of the f16 decode.
  bool native = false;
  int64_t mmaK() const { return native ? 32 : 16; }
  int64_t warpTileM() const { return bm / warpsM; }
  int64_t warpTileN() const { return bn / warpsN; }
  int64_t mmaTilesM() const { return warpTileM() / 16; }
  int64_t mmaTilesN() const { return warpTileN() / 8; }
  /// The FP8 rings of A and B and, for the f16 decode, the decoded tiles.
  SmallVector<MemRefType> sharedTypes(Type lhs, Type rhs, Type f16) const {
    SmallVector<MemRefType> types = {
        getWorkgroupBufferType({stages, bm, bk + kBytePad}, lhs),
        getWorkgroupBufferType({stages, bn, bk + kBytePad}, rhs)};
    if (!native) {
      types.push_back(getWorkgroupBufferType({bm, bk + kHalfPad}, f16));
      types.push_back(getWorkgroupBufferType({bn, bk + kHalfPad}, f16));
    }
    return types;
  }
  int64_t sharedBytes() const {
    SmallVector<int64_t> bytes = {stages * bm * (bk + kBytePad),
                                  stages * bn * (bk + kBytePad)};
    if (!native)
      bytes.append({bm * (bk + kHalfPad) * 2, bn * (bk + kHalfPad) * 2});
    return getDynamicSharedBytes(bytes);
  }
  bool blockScales() const { return granularity == ScaleGranularity::block128; }
};

Plan makePlan(Fp8GemmOp op, TileConfigAttr tile, bool native) {
  Plan plan;
  plan.native = native;
  plan.bm = tile.getBlock()[0];
  plan.bn = tile.getBlock()[1];
  plan.bk = tile.getBlock()[2];
  plan.stages = tile.getStages();
  plan.threads = tile.getNumThreads();
  plan.warpsN = tile.getWarps() >= 2 ? 2 : 1;
  plan.warpsM = tile.getWarps() / plan.warpsN;
  auto rhs = cast<ShapedType>(op.getRhs().getType());
  plan.n = rhs.getDimSize(0);
  plan.k = rhs.getDimSize(1);
  plan.granularity = op.getGranularity();
  return plan;
}

class Fp8GemmStrategy final : public KernelStrategy {
public:
  /// `native`: FP8 mma.sync (sm_89+); otherwise the sm_80 f16 decode.
  explicit Fp8GemmStrategy(bool native) : native(native) {}

  StringRef getName() const override {
    return native ? "fp8-gemm-sm89-fp8-mma-sync" : "fp8-gemm-sm80-f16-mma-sync";
  }

  bool matches(Operation *op, const KernelTarget &target) const override {
    return isa<Fp8GemmOp>(op) && (!native || target.info->hasFp8MmaSync);
  }

  TileConfigAttr getDefaultTile(Operation *op,
                                const KernelTarget &) const override {
    // 128×128 outputs, 4 warps of 64×64 (128 f32 accumulators each; 256
    // with the partial sums of block scales: a smaller tile then). FP8 mma
    // consumes K 32 at a time: 64-byte K steps.
    auto gemm = cast<Fp8GemmOp>(op);
    int64_t bk = native ? 64 : 32;
    if (gemm.getGranularity() == ScaleGranularity::block128)
      return TileConfigAttr::get(op->getContext(), {128, 64, bk}, 4, 2, {});
    return TileConfigAttr::get(op->getContext(), {128, 128, bk}, 4, 2, {});
  }

  SmallVector<TileConfigAttr>
  getTileCandidates(Operation *op, const KernelTarget &target) const override {
    SmallVector<int64_t> bks = native ? SmallVector<int64_t>{32, 64, 128}
                                      : SmallVector<int64_t>{16, 32, 64};
    // Tiles past 48 KiB of shared memory measured no faster on an H100 (the
    // best within ±10 %, erratic between stage counts): the search keeps to
    // the space the cost model ranks well (docs/autotuning.md). A user may
    // still write a larger tile.
    SmallVector<TileConfigAttr> tiles;
    for (TileConfigAttr tile : enumerateMmaGemmTiles(
             op->getContext(), bks, getDefaultTile(op, target)))
      if (makePlan(cast<Fp8GemmOp>(op), tile, native).sharedBytes() <=
          48 * 1024)
        tiles.push_back(tile);
    return tiles;
  }

  KernelResources estimateResources(Operation *op, TileConfigAttr tile,
                                    const KernelTarget &) const override {
    auto gemm = cast<Fp8GemmOp>(op);
    Plan plan = makePlan(gemm, tile, native);
    MmaGemmTile t = makeMmaGemmTile(op, tile, plan.n, plan.k);
    t.aBytes = t.bBytes = 1;
    t.outBytes = cast<ShapedType>(gemm.getInits()[0].getType())
                     .getElementTypeBitWidth() /
                 8;
    t.mmaK = plan.mmaK();
    t.accumulatorsPerThread =
        plan.mmaTilesM() * plan.mmaTilesN() * 4 * (plan.blockScales() ? 2 : 1);
    t.sharedBytes = plan.sharedBytes();
    t.unit = native ? KernelResources::ComputeUnit::TensorFp8
                    : KernelResources::ComputeUnit::TensorF16;
    t.ldmatrix = !native;
    // The sm_80 path decodes each FP8 byte to f16 in software.
    t.decodeFlopsPerElement = native ? 0 : 12;
    return estimateMmaGemm(t);
  }

  LogicalResult checkSupported(Operation *op, TileConfigAttr tile,
                               const KernelTarget &target) const override {
    auto gemm = cast<Fp8GemmOp>(op);
    if (failed(checkContiguousBuffers(op)))
      return failure();
    Plan plan = makePlan(gemm, tile, native);
    if (ShapedType::isDynamic(plan.k) || ShapedType::isDynamic(plan.n))
      return op->emitOpError()
             << "needs static N and K (the shape of 'rhs') to lower to a GPU "
                "kernel";
    if (plan.k % kChunk != 0)
      return op->emitOpError()
             << "needs K (" << plan.k
             << ") to be a multiple of 16 for 16-byte asynchronous copies";
    if (!tile.getCluster().empty())
      return op->emitOpError()
             << "'tile' of the sm_80 fp8_gemm kernel takes no cluster";
    if (plan.bk % plan.mmaK() != 0 || plan.warpTileM() % 16 != 0 ||
        plan.warpTileN() % 8 != 0 || plan.bm % plan.warpsM != 0 ||
        plan.bn % plan.warpsN != 0)
      return op->emitOpError()
             << "'tile' " << tile
             << " does not split into mma.sync tiles: BK must be a multiple "
                "of "
             << plan.mmaK() << " and each warp's tile a multiple of 16×8";
    int64_t chunksA = plan.bm * plan.bk / kChunk,
            chunksB = plan.bn * plan.bk / kChunk;
    if (chunksA % plan.threads != 0 || chunksB % plan.threads != 0)
      return op->emitOpError()
             << "'tile' " << tile << " gives " << chunksA << " and " << chunksB
             << " 16-byte chunks per stage, not a multiple of its "
             << plan.threads << " threads";
    if (plan.blockScales() &&
        (128 % plan.bm != 0 || 128 % plan.bn != 0 || 128 % plan.bk != 0))
      return op->emitOpError() << "with block128 scales, 'tile' " << tile
                               << " must have BM, BN and BK dividing 128";
    if (plan.sharedBytes() > getMaxSharedBytes(target))
      return op->emitOpError()
             << "'tile' " << tile << " needs " << plan.sharedBytes()
             << " bytes of shared memory; " << target.chip << " has at most "
             << getMaxSharedBytes(target)
             << " (fewer stages or a smaller tile)";
    int64_t accumulators =
        plan.mmaTilesM() * plan.mmaTilesN() * 4 * (plan.blockScales() ? 2 : 1);
    if (accumulators > 192)
      return op->emitOpError()
             << "'tile' " << tile << " needs " << accumulators
             << " accumulator registers per thread; at most 192";
    return success();
  }

  LogicalResult lower(Operation *op, TileConfigAttr tile,
                      const KernelTarget &target, gpu::GPUModuleOp module,
                      RewriterBase &rewriter) const override;

private:
  bool native;
};

/// Kernel arguments: A [M, K], B [N, K], lhs_scale, rhs_scale, (bias [N]),
/// out [M, N].
void buildKernelBody(ImplicitLocOpBuilder &b, Fp8GemmOp op, const Plan &plan,
                     gpu::GPUFuncOp kernel) {
  MLIRContext *ctx = b.getContext();
  Type f16 = b.getF16Type(), f32 = b.getF32Type();
  bool hasBias = static_cast<bool>(op.getBias());
  Value a = kernel.getArgument(0), bMat = kernel.getArgument(1),
        sa = kernel.getArgument(2), sb = kernel.getArgument(3);
  Value bias = hasBias ? kernel.getArgument(4) : Value();
  Value out = kernel.getArgument(hasBias ? 5 : 4);
  SmallVector<Value> shared = carveDynamicShared(
      b,
      plan.sharedTypes(cast<MemRefType>(a.getType()).getElementType(),
                       cast<MemRefType>(bMat.getType()).getElementType(), f16));
  Value stageA = shared[0], stageB = shared[1];
  Value halfA = plan.native ? Value() : shared[2];
  Value halfB = plan.native ? Value() : shared[3];
  Type outElement = cast<MemRefType>(out.getType()).getElementType();
  auto tokenType = nvgpu::DeviceAsyncTokenType::get(ctx);

  Value c0 = cIndex(b, 0), c1 = cIndex(b, 1);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value lane = arith::RemUIOp::create(b, tid, cIndex(b, 32));
  Value warp = arith::DivUIOp::create(b, tid, cIndex(b, 32));
  Value warpM = arith::DivUIOp::create(b, warp, cIndex(b, plan.warpsN));
  Value warpN = arith::RemUIOp::create(b, warp, cIndex(b, plan.warpsN));
  Value m0 = arith::MulIOp::create(
      b, gpu::BlockIdOp::create(b, gpu::Dimension::y), cIndex(b, plan.bm));
  Value n0 = arith::MulIOp::create(
      b, gpu::BlockIdOp::create(b, gpu::Dimension::x), cIndex(b, plan.bn));
  Value rowsM = memref::DimOp::create(b, a, 0);
  Value sizeK = cIndex(b, plan.k), sizeN = cIndex(b, plan.n);
  int64_t numK = llvm::divideCeil(plan.k, plan.bk);
  int64_t chunksPerRow = plan.bk / kChunk;

  // The c-th chunk this thread moves of a rows×BK tile: (row, column).
  auto chunkAt = [&](int64_t i) -> std::pair<Value, Value> {
    Value c = arith::AddIOp::create(b, cIndex(b, i * plan.threads), tid);
    Value r = arith::DivUIOp::create(b, c, cIndex(b, chunksPerRow));
    Value kc = arith::MulIOp::create(
        b, arith::RemUIOp::create(b, c, cIndex(b, chunksPerRow)),
        cIndex(b, kChunk));
    return {r, kc};
  };
  auto issueAndCommit = [&](Value kt) {
    Value slot = arith::RemUIOp::create(b, kt, cIndex(b, plan.stages));
    Value exists = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, kt,
                                         cIndex(b, numK));
    ifThen(b, exists, [&] {
      Value k0 = arith::MulIOp::create(b, kt, cIndex(b, plan.bk));
      auto copy = [&](Value global, Value shared, Value rowBase, Value limit,
                      int64_t rows) {
        for (int64_t i = 0; i < rows * chunksPerRow / plan.threads; ++i) {
          auto [r, kc] = chunkAt(i);
          Value gRow = arith::AddIOp::create(b, rowBase, r);
          Value gK = arith::AddIOp::create(b, k0, kc);
          Value valid = arith::AndIOp::create(
              b,
              arith::CmpIOp::create(b, arith::CmpIPredicate::ult, gRow, limit),
              arith::CmpIOp::create(b, arith::CmpIPredicate::ult, gK, sizeK));
          nvgpu::DeviceAsyncCopyOp::create(
              b, tokenType, shared, ValueRange{slot, r, kc}, global,
              ValueRange{arith::SelectOp::create(b, valid, gRow, c0),
                         arith::SelectOp::create(b, valid, gK, c0)},
              b.getIndexAttr(kChunk),
              arith::SelectOp::create(b, valid, cIndex(b, kChunk), c0),
              b.getUnitAttr());
        }
      };
      copy(a, stageA, m0, rowsM, plan.bm);
      copy(bMat, stageB, n0, sizeN, plan.bn);
    });
    NVVM::CpAsyncCommitGroupOp::create(b);
  };
  // FP8 byte tile (slot) → f16 tile, 16 elements per chunk.
  auto convertTile = [&](Value slot, Value bytes, Value halves, int64_t rows,
                         Type fp8) {
    auto fp8Vec = VectorType::get({kChunk}, fp8);
    auto halfVec = VectorType::get({kChunk}, f16);
    for (int64_t i = 0; i < rows * chunksPerRow / plan.threads; ++i) {
      auto [r, kc] = chunkAt(i);
      Value raw =
          vector::LoadOp::create(b, fp8Vec, bytes, ValueRange{slot, r, kc},
                                 false, llvm::MaybeAlign(16));
      Value wide = arith::TruncFOp::create(b, halfVec, convertFp8ToF32(b, raw));
      vector::StoreOp::create(b, wide, halves, ValueRange{r, kc}, false,
                              llvm::MaybeAlign(16));
    }
  };

  for (int64_t s = 0; s + 1 < plan.stages; ++s)
    issueAndCommit(cIndex(b, s));

  const int64_t mt = plan.mmaTilesM(), nt = plan.mmaTilesN();
  const int64_t perSet = mt * nt * 4;
  Value zero = cF32(b, 0.0f);
  SmallVector<Value> inits(perSet * (plan.blockScales() ? 2 : 1), zero);
  Type aFp8 = cast<MemRefType>(a.getType()).getElementType();
  Type bFp8 = cast<MemRefType>(bMat.getType()).getElementType();
  Value warpRow = arith::MulIOp::create(b, warpM, cIndex(b, plan.warpTileM()));
  Value warpCol = arith::MulIOp::create(b, warpN, cIndex(b, plan.warpTileN()));

  auto loop = scf::ForOp::create(b, c0, cIndex(b, numK), c1, inits);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value kt = loop.getInductionVar();
    issueAndCommit(arith::AddIOp::create(b, kt, cIndex(b, plan.stages - 1)));
    NVVM::CpAsyncWaitGroupOp::create(
        b, b.getI32IntegerAttr(static_cast<int32_t>(plan.stages - 1)));
    gpu::BarrierOp::create(b);
    Value slot = arith::RemUIOp::create(b, kt, cIndex(b, plan.stages));
    if (!plan.native) {
      convertTile(slot, stageA, halfA, plan.bm, aFp8);
      convertTile(slot, stageB, halfB, plan.bn, bFp8);
      gpu::BarrierOp::create(b);
    }

    SmallVector<Value> acc(loop.getRegionIterArgs().begin(),
                           loop.getRegionIterArgs().end());
    // Block scales accumulate into the partial set (the second half).
    int64_t target = plan.blockScales() ? perSet : 0;
    // f16 tiles: ldmatrix (A x4: row lane % 16, column (lane / 16)·8; B x2:
    // row lane % 8, column ((lane / 8) % 2)·8). FP8 byte tiles: the FP8
    // types have no LLVM equivalent for nvgpu.ldmatrix's lowering, so each
    // 32-bit register is a 4-byte shared load at its place in the
    // m16n8k32 fragment (rows lane/4 and +8, bytes 4·(lane%4) and +16);
    // 80-byte rows keep the eight rows of a load in distinct banks.
    Value aRow = arith::RemUIOp::create(b, lane, cIndex(b, 16));
    Value aCol = arith::MulIOp::create(
        b, arith::DivUIOp::create(b, lane, cIndex(b, 16)), cIndex(b, 8));
    Value bRow = arith::RemUIOp::create(b, lane, cIndex(b, 8));
    Value bCol = arith::MulIOp::create(
        b,
        arith::RemUIOp::create(b, arith::DivUIOp::create(b, lane, cIndex(b, 8)),
                               cIndex(b, 2)),
        cIndex(b, 8));
    Value laneGroup = arith::DivUIOp::create(b, lane, cIndex(b, 4));
    Value quad = arith::MulIOp::create(
        b, arith::RemUIOp::create(b, lane, cIndex(b, 4)), cIndex(b, 4));
    auto i32x1 = VectorType::get({1}, b.getI32Type());
    auto fp8Register = [&](Value tile, Type fp8, Value row,
                           Value col) -> Value {
      Value bytes = vector::LoadOp::create(b, VectorType::get({4}, fp8), tile,
                                           ValueRange{slot, row, col}, false,
                                           llvm::MaybeAlign(4));
      Value word = vector::BitCastOp::create(b, i32x1, bytes);
      return vector::ExtractOp::create(b, word, ArrayRef<int64_t>{0});
    };
    auto aFragment = [&](Value rowBase, Value kOff) -> SmallVector<Value> {
      if (!plan.native)
        return toMmaRegisters(
            b, nvgpu::LdMatrixOp::create(
                   b, VectorType::get({4, 2}, f16), halfA,
                   ValueRange{arith::AddIOp::create(b, rowBase, aRow),
                              arith::AddIOp::create(b, kOff, aCol)},
                   false, 4));
      SmallVector<Value> regs;
      for (int64_t r = 0; r < 4; ++r) {
        Value row = arith::AddIOp::create(
            b, arith::AddIOp::create(b, rowBase, laneGroup),
            cIndex(b, (r % 2) * 8));
        Value col = arith::AddIOp::create(
            b, arith::AddIOp::create(b, kOff, quad), cIndex(b, (r / 2) * 16));
        regs.push_back(fp8Register(stageA, aFp8, row, col));
      }
      return regs;
    };
    auto bFragment = [&](Value rowBase, Value kOff) -> SmallVector<Value> {
      if (!plan.native)
        return toMmaRegisters(
            b, nvgpu::LdMatrixOp::create(
                   b, VectorType::get({2, 2}, f16), halfB,
                   ValueRange{arith::AddIOp::create(b, rowBase, bRow),
                              arith::AddIOp::create(b, kOff, bCol)},
                   false, 2));
      SmallVector<Value> regs;
      Value row = arith::AddIOp::create(b, rowBase, laneGroup);
      for (int64_t r = 0; r < 2; ++r)
        regs.push_back(fp8Register(
            stageB, bFp8, row,
            arith::AddIOp::create(b, arith::AddIOp::create(b, kOff, quad),
                                  cIndex(b, r * 16))));
      return regs;
    };
    for (int64_t kk = 0; kk < plan.bk / plan.mmaK(); ++kk) {
      Value kOff = cIndex(b, kk * plan.mmaK());
      SmallVector<SmallVector<Value>> aFrag, bFrag;
      for (int64_t i = 0; i < mt; ++i)
        aFrag.push_back(aFragment(
            arith::AddIOp::create(b, warpRow, cIndex(b, i * 16)), kOff));
      for (int64_t j = 0; j < nt; ++j)
        bFrag.push_back(bFragment(
            arith::AddIOp::create(b, warpCol, cIndex(b, j * 8)), kOff));
      for (int64_t i = 0; i < mt; ++i)
        for (int64_t j = 0; j < nt; ++j) {
          int64_t base = target + (i * nt + j) * 4;
          ArrayRef<Value> accSlice = ArrayRef<Value>(acc).slice(base, 4);
          SmallVector<Value> updated =
              plan.native
                  ? mmaSyncFp8(b, aFrag[i], bFrag[j], accSlice, aFp8, bFp8)
                  : mmaSync16816(b, aFrag[i], bFrag[j], accSlice, f16);
          std::copy(updated.begin(), updated.end(), acc.begin() + base);
        }
    }

    if (plan.blockScales()) {
      // At the end of each 128-wide step of K (or of K), fold the partial
      // sums into the main ones with this block tile's scale pair.
      int64_t stepsPerBlock = 128 / plan.bk;
      Value nextKt = arith::AddIOp::create(b, kt, c1);
      Value endOfBlock = arith::OrIOp::create(
          b,
          arith::CmpIOp::create(
              b, arith::CmpIPredicate::eq,
              arith::RemUIOp::create(b, nextKt, cIndex(b, stepsPerBlock)), c0),
          arith::CmpIOp::create(b, arith::CmpIPredicate::eq, nextKt,
                                cIndex(b, numK)));
      Value kb = arith::DivUIOp::create(b, kt, cIndex(b, stepsPerBlock));
      Value mb = arith::DivUIOp::create(b, m0, cIndex(b, 128));
      Value nb = arith::DivUIOp::create(b, n0, cIndex(b, 128));
      Value scale = arith::MulFOp::create(
          b, memref::LoadOp::create(b, sa, ValueRange{mb, kb}),
          memref::LoadOp::create(b, sb, ValueRange{nb, kb}));
      for (int64_t e = 0; e < perSet; ++e) {
        Value folded = arith::AddFOp::create(
            b, acc[e], arith::MulFOp::create(b, acc[perSet + e], scale));
        acc[e] = arith::SelectOp::create(b, endOfBlock, folded, acc[e]);
        acc[perSet + e] =
            arith::SelectOp::create(b, endOfBlock, zero, acc[perSet + e]);
      }
    }
    // FP8 mma reads the ring slot itself: the next iteration refills it, so
    // every warp must be done with it first. (The f16 path reads its own
    // tiles, and the decode barrier already protects the slot.)
    if (plan.native)
      gpu::BarrierOp::create(b);
    scf::YieldOp::create(b, acc);
  }

  // Epilogue: scales (tensor, row), bias, store.
  Value tensorScale;
  if (plan.granularity == ScaleGranularity::tensor)
    tensorScale =
        arith::MulFOp::create(b, memref::LoadOp::create(b, sa, ValueRange{}),
                              memref::LoadOp::create(b, sb, ValueRange{}));
  Value laneRow = arith::DivUIOp::create(b, lane, cIndex(b, 4));
  Value laneCol = arith::MulIOp::create(
      b, arith::RemUIOp::create(b, lane, cIndex(b, 4)), cIndex(b, 2));
  for (int64_t i = 0; i < mt; ++i)
    for (int64_t j = 0; j < nt; ++j)
      for (int64_t h = 0; h < 2; ++h) {
        Value row = arith::AddIOp::create(
            b,
            arith::AddIOp::create(
                b, m0,
                arith::AddIOp::create(b, warpRow, cIndex(b, i * 16 + h * 8))),
            laneRow);
        Value rowOk =
            arith::CmpIOp::create(b, arith::CmpIPredicate::ult, row, rowsM);
        for (int64_t e = 0; e < 2; ++e) {
          Value col = arith::AddIOp::create(
              b,
              arith::AddIOp::create(
                  b, n0,
                  arith::AddIOp::create(b, warpCol, cIndex(b, j * 8 + e))),
              laneCol);
          Value ok = arith::AndIOp::create(
              b, rowOk,
              arith::CmpIOp::create(b, arith::CmpIPredicate::ult, col, sizeN));
          ifThen(b, ok, [&] {
            Value value = loop.getResult((i * nt + j) * 4 + h * 2 + e);
            if (tensorScale)
              value = arith::MulFOp::create(b, value, tensorScale);
            if (plan.granularity == ScaleGranularity::row)
              value = arith::MulFOp::create(
                  b,
                  arith::MulFOp::create(
                      b, value, memref::LoadOp::create(b, sa, ValueRange{row})),
                  memref::LoadOp::create(b, sb, ValueRange{col}));
            if (bias)
              value = arith::AddFOp::create(
                  b, value,
                  castFloat(b, memref::LoadOp::create(b, bias, ValueRange{col}),
                            f32));
            memref::StoreOp::create(b, castFloat(b, value, outElement), out,
                                    ValueRange{row, col});
          });
        }
      }
}

LogicalResult Fp8GemmStrategy::lower(Operation *op, TileConfigAttr tile,
                                     const KernelTarget &,
                                     gpu::GPUModuleOp module,
                                     RewriterBase &rewriter) const {
  auto gemm = cast<Fp8GemmOp>(op);
  Plan plan = makePlan(gemm, tile, native);
  ImplicitLocOpBuilder b(op->getLoc(), rewriter);
  b.setInsertionPoint(op);
  SmallVector<Value> args = {gemm.getLhs(), gemm.getRhs(), gemm.getLhsScale(),
                             gemm.getRhsScale()};
  if (Value bias = gemm.getBias())
    args.push_back(bias);
  args.push_back(gemm.getInits()[0]);
  buildAndLaunchGemmKernel(b, module, "fp8_gemm", args, plan.n, plan.bm,
                           plan.bn, plan.threads, plan.sharedBytes(),
                           [&](ImplicitLocOpBuilder &b, gpu::GPUFuncOp kernel) {
                             buildKernelBody(b, gemm, plan, kernel);
                           });
  rewriter.eraseOp(op);
  return success();
}

} // namespace

std::unique_ptr<KernelStrategy>
mlir::fusedops::kernel::createSm80Fp8GemmStrategy() {
  return std::make_unique<Fp8GemmStrategy>(/*native=*/false);
}

std::unique_ptr<KernelStrategy>
mlir::fusedops::kernel::createSm89Fp8GemmStrategy() {
  return std::make_unique<Fp8GemmStrategy>(/*native=*/true);
}
