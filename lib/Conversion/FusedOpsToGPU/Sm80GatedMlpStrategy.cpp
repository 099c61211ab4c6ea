//===- Sm80GatedMlpStrategy.cpp - gated MLP on mma.sync tensor cores ------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// gated_mlp computes two GEMMs that share their A operand, x·Wgᵀ and x·Wuᵀ,
// and combines them elementwise. One kernel computes the gate and up tiles of
// the same output block together and applies act(gate)·up to the
// accumulators, so neither [M, N] intermediate reaches memory and x is read
// once per block for both.
//
// The sm_80 strategy (also correct on sm_90, where the wgmma strategy is to
// come):
//   * a thread block owns a BM×BN output tile; its warps form a 2-D grid,
//     each warp a (BM/warpsM)×(BN/warpsN) tile of both accumulators;
//   * K is walked in BK steps through a `stages`-deep ring of shared-memory
//     buffers filled with 16-byte `cp.async` (nvgpu.device_async_copy,
//     zero-filling rows past M or N and columns past K), so loads for later
//     steps overlap the math of the current one;
//   * fragments come from shared memory with `ldmatrix` and feed
//     `mma.sync.m16n8k16` (f16 or bf16 in, f32 accumulate), emitted as
//     nvvm.mma.sync because nvgpu.mma.sync has no bf16 lowering in MLIR 22;
//   * shared-memory rows are padded by 16 bytes so that the eight rows an
//     ldmatrix reads fall in distinct banks.
//
// Requirements (checked, with a diagnostic): f16 or bf16; static K and N
// (M may be dynamic); K a multiple of 8 (16-byte rows for cp.async).
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"
#include "MmaSync.h"
#include "Strategies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::kernel;

namespace {

/// Elements of 16-bit data in one 16-byte cp.async.
constexpr int64_t kChunk = 8;
/// Padding of each shared-memory row, in elements (16 bytes).
constexpr int64_t kRowPad = 8;

struct GemmPlan {
  int64_t bm, bn, bk, stages, threads, warpsM, warpsN;
  int64_t k, n;
  int64_t warpTileM() const { return bm / warpsM; }
  int64_t warpTileN() const { return bn / warpsN; }
  int64_t mmaTilesM() const { return warpTileM() / 16; }
  int64_t mmaTilesN() const { return warpTileN() / 8; }
  int64_t rowStride() const { return bk + kRowPad; }
  /// The shared-memory rings of x, Wg and Wu (16-bit elements).
  SmallVector<MemRefType> sharedTypes(Type element) const {
    return {getWorkgroupBufferType({stages, bm, rowStride()}, element),
            getWorkgroupBufferType({stages, bn, rowStride()}, element),
            getWorkgroupBufferType({stages, bn, rowStride()}, element)};
  }
  int64_t sharedBytes() const {
    int64_t b = stages * bn * rowStride() * 2;
    return getDynamicSharedBytes({stages * bm * rowStride() * 2, b, b});
  }
};

GemmPlan makePlan(GatedMlpOp op, TileConfigAttr tile) {
  GemmPlan plan;
  plan.bm = tile.getBlock()[0];
  plan.bn = tile.getBlock()[1];
  plan.bk = tile.getBlock()[2];
  plan.stages = tile.getStages();
  plan.threads = tile.getNumThreads();
  int64_t warps = tile.getWarps();
  plan.warpsN = warps >= 2 ? 2 : 1;
  plan.warpsM = warps / plan.warpsN;
  auto weight = cast<ShapedType>(op.getGateWeight().getType());
  plan.n = weight.getDimSize(0);
  plan.k = weight.getDimSize(1);
  return plan;
}

class Sm80GatedMlpStrategy final : public KernelStrategy {
public:
  StringRef getName() const override { return "gated-mlp-sm80-mma-sync"; }

  bool matches(Operation *op, const KernelTarget &target) const override {
    // mma.sync m16n8k16 and cp.async: every chip of the table.
    return isa<GatedMlpOp>(op);
  }

  TileConfigAttr getDefaultTile(Operation *op,
                                const KernelTarget &) const override {
    // 128×64 outputs per block with 4 warps of 64×32: 128 f32 accumulator
    // registers per thread for gate and up together; two 20 KiB stages.
    return TileConfigAttr::get(op->getContext(), {128, 64, 32}, /*warps=*/4,
                               /*stages=*/2, /*cluster=*/{});
  }

  SmallVector<TileConfigAttr>
  getTileCandidates(Operation *op, const KernelTarget &target) const override {
    return enumerateMmaGemmTiles(op->getContext(), {16, 32, 64},
                                 getDefaultTile(op, target));
  }

  KernelResources estimateResources(Operation *op, TileConfigAttr tile,
                                    const KernelTarget &) const override {
    auto mlp = cast<GatedMlpOp>(op);
    GemmPlan plan = makePlan(mlp, tile);
    MmaGemmTile t = makeMmaGemmTile(op, tile, plan.n, plan.k);
    t.aBytes = t.bBytes = t.outBytes = 2;
    t.numB = 2;
    t.mmaK = 16;
    t.accumulatorsPerThread = 2 * plan.mmaTilesM() * plan.mmaTilesN() * 4;
    t.sharedBytes = plan.sharedBytes();
    t.unit = KernelResources::ComputeUnit::TensorF16;
    return estimateMmaGemm(t);
  }

  LogicalResult checkSupported(Operation *op, TileConfigAttr tile,
                               const KernelTarget &target) const override {
    auto mlp = cast<GatedMlpOp>(op);
    if (failed(checkContiguousBuffers(op)))
      return failure();
    Type element = cast<ShapedType>(mlp.getInput().getType()).getElementType();
    if (!element.isF16() && !element.isBF16())
      return op->emitOpError()
             << "lowers to f16/bf16 tensor-core kernels; got " << element
             << " (convert the operands to f16 or bf16)";
    GemmPlan plan = makePlan(mlp, tile);
    if (ShapedType::isDynamic(plan.k) || ShapedType::isDynamic(plan.n))
      return op->emitOpError()
             << "needs static N and K (the weights' shape) to lower to a GPU "
                "kernel";
    if (plan.k % kChunk != 0)
      return op->emitOpError()
             << "needs K (" << plan.k
             << ") to be a multiple of 8 for 16-byte asynchronous copies";
    if (!tile.getCluster().empty())
      return op->emitOpError() << "'tile' of the sm_80 gated_mlp kernel takes "
                                  "no cluster";
    if (plan.bk % 16 != 0 || plan.warpTileM() % 16 != 0 ||
        plan.warpTileN() % 8 != 0 || plan.bm % plan.warpsM != 0 ||
        plan.bn % plan.warpsN != 0)
      return op->emitOpError()
             << "'tile' " << tile
             << " does not split into mma.sync tiles: BK must be a multiple "
                "of 16 and each warp's tile ("
             << plan.warpsM << "×" << plan.warpsN
             << " warps) a multiple of 16×8";
    int64_t chunksA = plan.bm * plan.bk / kChunk,
            chunksB = plan.bn * plan.bk / kChunk;
    if (chunksA % plan.threads != 0 || chunksB % plan.threads != 0)
      return op->emitOpError()
             << "'tile' " << tile << " gives " << chunksA << " and " << chunksB
             << " 16-byte chunks per stage, not a multiple of its "
             << plan.threads << " threads";
    if (plan.sharedBytes() > getMaxSharedBytes(target))
      return op->emitOpError()
             << "'tile' " << tile << " needs " << plan.sharedBytes()
             << " bytes of shared memory; " << target.chip << " has at most "
             << getMaxSharedBytes(target)
             << " (fewer stages or a smaller tile)";
    if (2 * plan.mmaTilesM() * plan.mmaTilesN() * 4 > 192)
      return op->emitOpError()
             << "'tile' " << tile
             << " needs more than 192 accumulator registers per thread; use "
                "more warps or a smaller tile";
    return success();
  }

  LogicalResult lower(Operation *op, TileConfigAttr tile,
                      const KernelTarget &target, gpu::GPUModuleOp module,
                      RewriterBase &rewriter) const override;
};

/// Kernel arguments: x [M, K], Wg [N, K], Wu [N, K], out [M, N].
void buildKernelBody(ImplicitLocOpBuilder &b, GatedMlpOp op,
                     const GemmPlan &plan, gpu::GPUFuncOp kernel) {
  MLIRContext *ctx = b.getContext();
  Type element = cast<ShapedType>(op.getInput().getType()).getElementType();
  Type f32 = b.getF32Type();
  Value x = kernel.getArgument(0), wg = kernel.getArgument(1),
        wu = kernel.getArgument(2), out = kernel.getArgument(3);
  SmallVector<Value> rings = carveDynamicShared(b, plan.sharedTypes(element));
  Value smemA = rings[0], smemG = rings[1], smemU = rings[2];
  auto tokenType = nvgpu::DeviceAsyncTokenType::get(ctx);

  Value c0 = cIndex(b, 0), c1 = cIndex(b, 1);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value lane = arith::RemUIOp::create(b, tid, cIndex(b, 32));
  Value warp = arith::DivUIOp::create(b, tid, cIndex(b, 32));
  Value warpM = arith::DivUIOp::create(b, warp, cIndex(b, plan.warpsN));
  Value warpN = arith::RemUIOp::create(b, warp, cIndex(b, plan.warpsN));
  Value blockN = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value blockM = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  Value m0 = arith::MulIOp::create(b, blockM, cIndex(b, plan.bm));
  Value n0 = arith::MulIOp::create(b, blockN, cIndex(b, plan.bn));
  Value rowsM = memref::DimOp::create(b, x, 0);
  Value sizeK = cIndex(b, plan.k), sizeN = cIndex(b, plan.n);
  int64_t numK = llvm::divideCeil(plan.k, plan.bk);

  // Issues the cp.asyncs of k-tile `kt` into ring slot `stage`.
  auto issueTile = [&](Value kt, Value stage, SmallVectorImpl<Value> &tokens) {
    Value k0 = arith::MulIOp::create(b, kt, cIndex(b, plan.bk));
    auto copyRows = [&](Value global, Value shared, Value rowBase,
                        Value rowLimit, int64_t rows) {
      int64_t chunksPerRow = plan.bk / kChunk;
      int64_t perThread = rows * chunksPerRow / plan.threads;
      for (int64_t i = 0; i < perThread; ++i) {
        Value c = arith::AddIOp::create(b, cIndex(b, i * plan.threads), tid);
        Value r = arith::DivUIOp::create(b, c, cIndex(b, chunksPerRow));
        Value kc = arith::MulIOp::create(
            b, arith::RemUIOp::create(b, c, cIndex(b, chunksPerRow)),
            cIndex(b, kChunk));
        Value gRow = arith::AddIOp::create(b, rowBase, r);
        Value gK = arith::AddIOp::create(b, k0, kc);
        Value valid = arith::AndIOp::create(
            b,
            arith::CmpIOp::create(b, arith::CmpIPredicate::ult, gRow, rowLimit),
            arith::CmpIOp::create(b, arith::CmpIPredicate::ult, gK, sizeK));
        // Invalid chunks copy nothing (zero fill) from a valid address.
        Value srcRow = arith::SelectOp::create(b, valid, gRow, c0);
        Value srcK = arith::SelectOp::create(b, valid, gK, c0);
        Value srcElements =
            arith::SelectOp::create(b, valid, cIndex(b, kChunk), c0);
        tokens.push_back(nvgpu::DeviceAsyncCopyOp::create(
            b, tokenType, shared, ValueRange{stage, r, kc}, global,
            ValueRange{srcRow, srcK}, b.getIndexAttr(kChunk), srcElements,
            b.getUnitAttr()));
      }
    };
    copyRows(x, smemA, m0, rowsM, plan.bm);
    copyRows(wg, smemG, n0, sizeN, plan.bn);
    copyRows(wu, smemU, n0, sizeN, plan.bn);
  };
  // Issues tile `kt` if it exists, then commits a group (possibly empty, so
  // that group counting stays uniform).
  auto issueAndCommit = [&](Value kt) {
    Value stage = arith::RemUIOp::create(b, kt, cIndex(b, plan.stages));
    Value exists = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, kt,
                                         cIndex(b, numK));
    ifThen(b, exists, [&] {
      SmallVector<Value> tokens;
      issueTile(kt, stage, tokens);
    });
    NVVM::CpAsyncCommitGroupOp::create(b);
  };

  // Prologue: the first stages − 1 tiles in flight.
  for (int64_t s = 0; s + 1 < plan.stages; ++s)
    issueAndCommit(cIndex(b, s));

  // Accumulators: 4 f32 per 16×8 tile, gate tiles then up tiles.
  Value zero = cF32(b, 0.0f);
  const int64_t mt = plan.mmaTilesM(), nt = plan.mmaTilesN();
  SmallVector<Value> inits(2 * mt * nt * 4, zero);
  auto loop = scf::ForOp::create(b, c0, cIndex(b, numK), c1, inits);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value kt = loop.getInductionVar();
    Value next = arith::AddIOp::create(b, kt, cIndex(b, plan.stages - 1));
    issueAndCommit(next);
    // At most stages − 1 groups pending: tile kt has landed.
    NVVM::CpAsyncWaitGroupOp::create(
        b, b.getI32IntegerAttr(static_cast<int32_t>(plan.stages - 1)));
    gpu::BarrierOp::create(b);

    Value stage = arith::RemUIOp::create(b, kt, cIndex(b, plan.stages));
    SmallVector<Value> acc(loop.getRegionIterArgs().begin(),
                           loop.getRegionIterArgs().end());
    Value warpRow =
        arith::MulIOp::create(b, warpM, cIndex(b, plan.warpTileM()));
    Value warpCol =
        arith::MulIOp::create(b, warpN, cIndex(b, plan.warpTileN()));
    // ldmatrix addresses: A x4 — row lane % 16, column (lane / 16) · 8;
    // B x2 — row lane % 8, column ((lane / 8) % 2) · 8.
    Value aRow = arith::RemUIOp::create(b, lane, cIndex(b, 16));
    Value aCol = arith::MulIOp::create(
        b, arith::DivUIOp::create(b, lane, cIndex(b, 16)), cIndex(b, 8));
    Value bRow = arith::RemUIOp::create(b, lane, cIndex(b, 8));
    Value bCol = arith::MulIOp::create(
        b,
        arith::RemUIOp::create(b, arith::DivUIOp::create(b, lane, cIndex(b, 8)),
                               cIndex(b, 2)),
        cIndex(b, 8));
    auto aType = VectorType::get({4, 2}, element);
    auto bType = VectorType::get({2, 2}, element);
    for (int64_t kk = 0; kk < plan.bk / 16; ++kk) {
      Value kOff = cIndex(b, kk * 16);
      SmallVector<SmallVector<Value>> aFrag, gFrag, uFrag;
      for (int64_t i = 0; i < mt; ++i) {
        Value row = arith::AddIOp::create(
            b, arith::AddIOp::create(b, warpRow, cIndex(b, i * 16)), aRow);
        Value col = arith::AddIOp::create(b, kOff, aCol);
        aFrag.push_back(toMmaRegisters(
            b, nvgpu::LdMatrixOp::create(b, aType, smemA,
                                         ValueRange{stage, row, col},
                                         /*transpose=*/false, /*numTiles=*/4)));
      }
      for (int64_t j = 0; j < nt; ++j) {
        Value row = arith::AddIOp::create(
            b, arith::AddIOp::create(b, warpCol, cIndex(b, j * 8)), bRow);
        Value col = arith::AddIOp::create(b, kOff, bCol);
        gFrag.push_back(toMmaRegisters(
            b, nvgpu::LdMatrixOp::create(
                   b, bType, smemG, ValueRange{stage, row, col}, false, 2)));
        uFrag.push_back(toMmaRegisters(
            b, nvgpu::LdMatrixOp::create(
                   b, bType, smemU, ValueRange{stage, row, col}, false, 2)));
      }
      for (int64_t i = 0; i < mt; ++i)
        for (int64_t j = 0; j < nt; ++j) {
          for (int64_t which = 0; which < 2; ++which) {
            int64_t base = (which * mt * nt + i * nt + j) * 4;
            SmallVector<Value> updated =
                mmaSync16816(b, aFrag[i], which == 0 ? gFrag[j] : uFrag[j],
                             ArrayRef<Value>(acc).slice(base, 4), element);
            std::copy(updated.begin(), updated.end(), acc.begin() + base);
          }
        }
    }
    // The next iteration refills the slot just read.
    gpu::BarrierOp::create(b);
    scf::YieldOp::create(b, acc);
  }

  // Epilogue: out = act(gate) · up, straight from the accumulators. Lane l
  // holds rows l/4 and l/4 + 8, columns 2·(l%4) and 2·(l%4) + 1 of each
  // 16×8 tile.
  Value warpRow = arith::MulIOp::create(b, warpM, cIndex(b, plan.warpTileM()));
  Value warpCol = arith::MulIOp::create(b, warpN, cIndex(b, plan.warpTileN()));
  Value laneRow = arith::DivUIOp::create(b, lane, cIndex(b, 4));
  Value laneCol = arith::MulIOp::create(
      b, arith::RemUIOp::create(b, lane, cIndex(b, 4)), cIndex(b, 2));
  Activation activation = op.getActivation();
  for (int64_t i = 0; i < mt; ++i)
    for (int64_t j = 0; j < nt; ++j) {
      int64_t gateBase = (i * nt + j) * 4, upBase = (mt * nt + i * nt + j) * 4;
      auto pairVector = [&](int64_t base) -> Value {
        return vector::FromElementsOp::create(
            b, VectorType::get({2}, f32),
            ValueRange{loop.getResult(base), loop.getResult(base + 1)});
      };
      for (int64_t h = 0; h < 2; ++h) {
        Value g = pairVector(gateBase + 2 * h);
        Value u = pairVector(upBase + 2 * h);
        Value result = castFloat(
            b, arith::MulFOp::create(b, applyActivation(b, activation, g), u),
            element);
        Value row = arith::AddIOp::create(
            b,
            arith::AddIOp::create(
                b, m0,
                arith::AddIOp::create(b, warpRow, cIndex(b, i * 16 + h * 8))),
            laneRow);
        Value col = arith::AddIOp::create(
            b,
            arith::AddIOp::create(
                b, n0, arith::AddIOp::create(b, warpCol, cIndex(b, j * 8))),
            laneCol);
        Value rowOk =
            arith::CmpIOp::create(b, arith::CmpIPredicate::ult, row, rowsM);
        for (int64_t e = 0; e < 2; ++e) {
          Value c = arith::AddIOp::create(b, col, cIndex(b, e));
          Value ok = arith::AndIOp::create(
              b, rowOk,
              arith::CmpIOp::create(b, arith::CmpIPredicate::ult, c, sizeN));
          ifThen(b, ok, [&] {
            Value scalar =
                vector::ExtractOp::create(b, result, ArrayRef<int64_t>{e});
            memref::StoreOp::create(b, scalar, out, ValueRange{row, c});
          });
        }
      }
    }
}

LogicalResult Sm80GatedMlpStrategy::lower(Operation *op, TileConfigAttr tile,
                                          const KernelTarget &,
                                          gpu::GPUModuleOp module,
                                          RewriterBase &rewriter) const {
  auto mlp = cast<GatedMlpOp>(op);
  GemmPlan plan = makePlan(mlp, tile);
  ImplicitLocOpBuilder b(op->getLoc(), rewriter);
  b.setInsertionPoint(op);
  Value x = collapseLeadingDims(b, mlp.getInput());
  Value out = collapseLeadingDims(b, mlp.getInits()[0]);
  SmallVector<Value> args = {x, mlp.getGateWeight(), mlp.getUpWeight(), out};
  buildAndLaunchGemmKernel(b, module, "gated_mlp", args, plan.n, plan.bm,
                           plan.bn, plan.threads, plan.sharedBytes(),
                           [&](ImplicitLocOpBuilder &b, gpu::GPUFuncOp kernel) {
                             buildKernelBody(b, mlp, plan, kernel);
                           });
  rewriter.eraseOp(op);
  return success();
}

} // namespace

std::unique_ptr<KernelStrategy>
mlir::fusedops::kernel::createSm80GatedMlpStrategy() {
  return std::make_unique<Sm80GatedMlpStrategy>();
}
