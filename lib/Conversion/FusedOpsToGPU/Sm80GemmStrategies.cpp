//===- Sm80GemmStrategies.cpp - the GEMM ops on mma.sync ------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// gated_mlp, gated_mlp_grad and fp8_gemm on every chip of the chip table
// (the sm_90a strategies take them where the chip has warpgroup MMAs), as
// configurations of the mma.sync mainloop (MmaSync.h) with the ops'
// epilogues (GemmEpilogues.h):
//
//   * gated_mlp: two B operands (Wg, Wu) sharing the x tile, f16 or bf16,
//     act(gate)·up on the accumulators, so neither [M, N] intermediate
//     reaches memory.
//   * gated_mlp_grad: the same GEMM; its epilogue reads the output's
//     gradient and stores the two projections' gradients.
//   * fp8_gemm: one B operand. Where the chip has FP8 mma.sync (sm_89 and
//     later) the FP8 tiles feed mma.sync.m16n8k32 directly; elsewhere every
//     FP8 value (exactly an f16 value) is decoded to f16 tiles in shared
//     memory and f16·f16 products are exact in f32. Block128 scales fold
//     each 128 of K into the sums with its scale pair; per-tensor and
//     per-row scales and the bias are applied by the epilogue.
//
// Requirements (checked, with a diagnostic): static N and K (M may be
// dynamic); K a multiple of 16 bytes (16-byte copies); a tile the mainloop
// can build (MmaSyncGemmPlan::getUnsupportedReason).
//
//===----------------------------------------------------------------------===//

#include "GemmEpilogues.h"
#include "KernelBuilder.h"
#include "MmaSync.h"
#include "Strategies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::kernel;

namespace {

//===----------------------------------------------------------------------===//
// gated_mlp and gated_mlp_grad
//===----------------------------------------------------------------------===//

MmaSyncGemmPlan makeGatedPlan(GatedGemmOp op, TileConfigAttr tile) {
  auto weight = cast<ShapedType>(op.getGateWeight().getType());
  Type element = weight.getElementType();
  return MmaSyncGemmPlan::get(tile, weight.getDimSize(0), weight.getDimSize(1),
                              /*numB=*/2, element, element,
                              MmaSyncOperands::Bits16, /*blockScales=*/false);
}

class Sm80GatedGemmStrategy final : public KernelStrategy {
public:
  StringRef getName() const override { return "gated-mlp-sm80-mma-sync"; }

  bool matches(Operation *op, const KernelTarget &) const override {
    // mma.sync m16n8k16 and cp.async: every chip of the table.
    return GatedGemmOp::get(op).has_value();
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
    GatedGemmOp mlp = *GatedGemmOp::get(op);
    MmaSyncGemmPlan plan = makeGatedPlan(mlp, tile);
    MmaGemmTile t = makeMmaGemmTile(op, tile, plan.n, plan.k);
    t.aBytes = t.bBytes = t.outBytes = 2;
    t.numB = 2;
    t.epilogueTensors = mlp.getEpilogueTensors();
    t.mmaK = 16;
    t.accumulatorsPerThread = plan.accumulatorsPerThread();
    t.sharedBytes = plan.getSharedBytes();
    t.unit = KernelResources::ComputeUnit::TensorF16;
    return estimateMmaGemm(t);
  }

  LogicalResult checkSupported(Operation *op, TileConfigAttr tile,
                               const KernelTarget &target) const override {
    GatedGemmOp mlp = *GatedGemmOp::get(op);
    auto weight = cast<ShapedType>(mlp.getGateWeight().getType());
    return checkGemmOperands(
        op, tile, weight.getDimSize(0), weight.getDimSize(1), 2, "the weights",
        "mma.sync",
        [&] { return makeGatedPlan(mlp, tile).getUnsupportedReason(target); });
  }

  LogicalResult lower(Operation *op, TileConfigAttr tile, const KernelTarget &,
                      gpu::GPUModuleOp module,
                      RewriterBase &rewriter) const override {
    GatedGemmOp mlp = *GatedGemmOp::get(op);
    MmaSyncGemmPlan plan = makeGatedPlan(mlp, tile);
    ImplicitLocOpBuilder b(op->getLoc(), rewriter);
    b.setInsertionPoint(op);
    buildAndLaunchGemmKernel(
        b, module, mlp.getKernelName(), mlp.getKernelArgs(b), plan.n, plan.bm,
        plan.bn, plan.threads, plan.getSharedBytes(),
        [&](ImplicitLocOpBuilder &b, gpu::GPUFuncOp kernel, Value m0,
            Value n0) {
          Value x = kernel.getArgument(0);
          Value rowsM = memref::DimOp::create(b, x, 0);
          buildMmaSyncGemm(
              b, plan, x, {kernel.getArgument(1), kernel.getArgument(2)}, rowsM,
              m0, n0, /*kBlockScale=*/nullptr,
              [&](ImplicitLocOpBuilder &b, ArrayRef<SmallVector<Value>> acc,
                  const AccumulatorPairs &pairs, StagedStoreFn staged) {
                mlp.buildEpilogue(b, kernel, acc, pairs, rowsM, plan.n, staged);
              });
        });
    rewriter.eraseOp(op);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// fp8_gemm
//===----------------------------------------------------------------------===//

class Fp8GemmStrategy final : public KernelStrategy {
public:
  /// `native`: FP8 mma.sync (chips with `hasFp8MmaSync`); otherwise the f16
  /// decode.
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
      if (makePlan(cast<Fp8GemmOp>(op), tile).getSharedBytes() <= 48 * 1024)
        tiles.push_back(tile);
    return tiles;
  }

  KernelResources estimateResources(Operation *op, TileConfigAttr tile,
                                    const KernelTarget &) const override {
    auto gemm = cast<Fp8GemmOp>(op);
    MmaSyncGemmPlan plan = makePlan(gemm, tile);
    MmaGemmTile t = makeMmaGemmTile(op, tile, plan.n, plan.k);
    t.aBytes = t.bBytes = 1;
    t.outBytes = cast<ShapedType>(gemm.getInits()[0].getType())
                     .getElementTypeBitWidth() /
                 8;
    t.mmaK = plan.mmaK();
    t.accumulatorsPerThread = plan.accumulatorsPerThread();
    t.sharedBytes = plan.getSharedBytes();
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
    auto rhs = cast<ShapedType>(gemm.getRhs().getType());
    if (failed(checkGemmOperands(
            op, tile, rhs.getDimSize(0), rhs.getDimSize(1), 1, "'rhs'",
            "mma.sync",
            [&] { return makePlan(gemm, tile).getUnsupportedReason(target); })))
      return failure();
    return checkFp8GemmTile(gemm, tile);
  }

  LogicalResult lower(Operation *op, TileConfigAttr tile, const KernelTarget &,
                      gpu::GPUModuleOp module,
                      RewriterBase &rewriter) const override;

private:
  MmaSyncGemmPlan makePlan(Fp8GemmOp op, TileConfigAttr tile) const {
    auto rhs = cast<ShapedType>(op.getRhs().getType());
    return MmaSyncGemmPlan::get(
        tile, rhs.getDimSize(0), rhs.getDimSize(1), /*numB=*/1,
        cast<ShapedType>(op.getLhs().getType()).getElementType(),
        rhs.getElementType(),
        native ? MmaSyncOperands::Fp8Native : MmaSyncOperands::Fp8Decoded,
        op.getGranularity() == ScaleGranularity::block128);
  }

  bool native;
};

LogicalResult Fp8GemmStrategy::lower(Operation *op, TileConfigAttr tile,
                                     const KernelTarget &,
                                     gpu::GPUModuleOp module,
                                     RewriterBase &rewriter) const {
  auto gemm = cast<Fp8GemmOp>(op);
  MmaSyncGemmPlan plan = makePlan(gemm, tile);
  ScaleGranularity granularity = gemm.getGranularity();
  ImplicitLocOpBuilder b(op->getLoc(), rewriter);
  b.setInsertionPoint(op);
  buildAndLaunchGemmKernel(
      b, module, "fp8_gemm", Fp8GemmKernelArgs::get(gemm), plan.n, plan.bm,
      plan.bn, plan.threads, plan.getSharedBytes(),
      [&](ImplicitLocOpBuilder &b, gpu::GPUFuncOp kernel, Value m0, Value n0) {
        Fp8GemmKernelArgs args = Fp8GemmKernelArgs::fromKernel(gemm, kernel);
        Value rowsM = memref::DimOp::create(b, args.lhs, 0);
        // Block scales: the one pair covering this block tile (BM and BN
        // divide 128) in the 128 of K `kb`.
        auto blockScale = [&](ImplicitLocOpBuilder &b, Value kb) -> Value {
          return loadFp8BlockScale(b, args, m0, n0, kb);
        };
        buildMmaSyncGemm(
            b, plan, args.lhs, {args.rhs}, rowsM, m0, n0,
            plan.blockScales ? KBlockScaleFn(blockScale) : KBlockScaleFn(),
            [&](ImplicitLocOpBuilder &b, ArrayRef<SmallVector<Value>> acc,
                const AccumulatorPairs &pairs, StagedStoreFn staged) {
              buildFp8GemmEpilogue(b, granularity, acc[0], pairs, args, rowsM,
                                   plan.n, staged);
            });
      });
  rewriter.eraseOp(op);
  return success();
}

} // namespace

std::unique_ptr<KernelStrategy>
mlir::fusedops::kernel::createSm80GatedMlpStrategy() {
  return std::make_unique<Sm80GatedGemmStrategy>();
}

std::unique_ptr<KernelStrategy>
mlir::fusedops::kernel::createSm80Fp8GemmStrategy() {
  return std::make_unique<Fp8GemmStrategy>(/*native=*/false);
}

std::unique_ptr<KernelStrategy>
mlir::fusedops::kernel::createSm89Fp8GemmStrategy() {
  return std::make_unique<Fp8GemmStrategy>(/*native=*/true);
}
