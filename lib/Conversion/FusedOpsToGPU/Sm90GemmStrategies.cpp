//===- Sm90GemmStrategies.cpp - the GEMM ops on Hopper wgmma --------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// gated_mlp, gated_mlp_grad and fp8_gemm on sm_90a, as configurations of
// the wgmma mainloop (Wgmma.h) with an epilogue each:
//
//   * gated_mlp: two B operands (Wg, Wu) sharing the A tile (x), two
//     accumulators per thread; act(gate)·up in registers, one store.
//   * gated_mlp_grad: the same GEMM; its epilogue reads the output's
//     gradient and stores the two projections' gradients.
//   * fp8_gemm: one B operand, promoted unless `fast_accum` (each K tile's
//     products added to f32 sums: Hopper's FP8 MMAs accumulate with ~14-bit
//     mantissas), with
//     block128 scales applied per K tile as it is added; per-tensor and
//     per-row scales and the bias applied to the finished sums.
//
// Requirements (checked, with a diagnostic): static N and K (M may be
// dynamic); K·bytes a multiple of 16 (the tensor maps' row stride); a tile
// the mainloop can build (WgmmaGemmPlan::getUnsupportedReason).
//
//===----------------------------------------------------------------------===//

#include "GemmEpilogues.h"
#include "KernelBuilder.h"
#include "Strategies.h"
#include "Wgmma.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::kernel;

/// WgmmaGemmPlan::rowsHint or staticRows of `op`: the rows its kernel is
/// tuned for where they are dynamic, else its rows.
static void setRowsOfPlan(WgmmaGemmPlan &plan, Operation *op) {
  auto input = cast<ShapedType>(op->getOperand(0).getType());
  bool dynamic =
      llvm::any_of(input.getShape().drop_back(), ShapedType::isDynamic);
  (dynamic ? plan.rowsHint : plan.staticRows) = getEstimatedRows(op);
}

namespace {

//===----------------------------------------------------------------------===//
// gated_mlp and gated_mlp_grad
//===----------------------------------------------------------------------===//

WgmmaGemmPlan makeGatedPlan(GatedGemmOp op, TileConfigAttr tile) {
  auto weight = cast<ShapedType>(op.getGateWeight().getType());
  Type element = weight.getElementType();
  WgmmaGemmPlan plan = WgmmaGemmPlan::get(
      tile, weight.getDimSize(0), weight.getDimSize(1),
      /*numB=*/2, element, element, /*promote=*/false, op.getOutputType());
  plan.epilogueTensors = op.getEpilogueTensors();
  setRowsOfPlan(plan, op.getOperation());
  return plan;
}

class Sm90GatedGemmStrategy final : public KernelStrategy {
public:
  StringRef getName() const override { return "gated-mlp-sm90a-wgmma"; }

  bool matches(Operation *op, const KernelTarget &target) const override {
    return GatedGemmOp::get(op) && target.info->hasWgmma;
  }

  TileConfigAttr getDefaultTile(Operation *op,
                                const KernelTarget &) const override {
    // Two consumer warpgroups of 64×128 for gate and up (128 accumulators
    // per thread), 128-byte K rows, 4 stages of 48 KiB.
    return TileConfigAttr::get(op->getContext(), {128, 128, 64}, /*warps=*/8,
                               /*stages=*/4, /*cluster=*/{});
  }

  SmallVector<TileConfigAttr>
  getTileCandidates(Operation *op, const KernelTarget &target) const override {
    return enumerateWgmmaTiles(op->getContext(), /*elementBytes=*/2,
                               getDefaultTile(op, target));
  }

  KernelResources estimateResources(Operation *op, TileConfigAttr tile,
                                    const KernelTarget &) const override {
    return estimateWgmmaGemm(makeGatedPlan(*GatedGemmOp::get(op), tile),
                             getEstimatedRows(op));
  }

  LogicalResult checkSupported(Operation *op, TileConfigAttr tile,
                               const KernelTarget &target) const override {
    GatedGemmOp mlp = *GatedGemmOp::get(op);
    auto weight = cast<ShapedType>(mlp.getGateWeight().getType());
    return checkGemmOperands(
        op, tile, weight.getDimSize(0), weight.getDimSize(1), 2, "the weights",
        "sm_90a wgmma",
        [&] { return makeGatedPlan(mlp, tile).getUnsupportedReason(target); });
  }

  LogicalResult lower(Operation *op, TileConfigAttr tile,
                      const KernelTarget &target, gpu::GPUModuleOp module,
                      RewriterBase &rewriter) const override {
    GatedGemmOp mlp = *GatedGemmOp::get(op);
    WgmmaGemmPlan plan = makeGatedPlan(mlp, tile);
    ImplicitLocOpBuilder b(op->getLoc(), rewriter);
    b.setInsertionPoint(op);
    SmallVector<Value> args = mlp.getKernelArgs(b);
    // The output's tensor map, where the plan stores through TMA, is the
    // only [M, N] tensor's (gated_mlp's).
    buildAndLaunchWgmmaGemm(
        b, module, mlp.getKernelName(), args, args[0], {args[1], args[2]},
        args[3], plan, target,
        [&](ImplicitLocOpBuilder &b, gpu::GPUFuncOp kernel,
            const WgmmaTileSchedule &schedule) {
          Value rowsM = memref::DimOp::create(b, kernel.getArgument(0), 0);
          buildWgmmaGemm(
              b, plan, kernel, schedule, /*kTileScale=*/nullptr,
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

WgmmaGemmPlan makeFp8GemmPlan(Fp8GemmOp op, TileConfigAttr tile) {
  auto rhs = cast<ShapedType>(op.getRhs().getType());
  Type lhsType = cast<ShapedType>(op.getLhs().getType()).getElementType();
  // Promoted unless the op allows fast accumulation: the f32 sums are then
  // no less accurate than cuBLASLt's default (bench/gemm_engine.py
  // measures both).
  WgmmaGemmPlan plan = WgmmaGemmPlan::get(
      tile, rhs.getDimSize(0), rhs.getDimSize(1),
      /*numB=*/1, lhsType, rhs.getElementType(),
      /*promote=*/!op.getFastAccum(),
      cast<ShapedType>(op.getInits()[0].getType()).getElementType());
  setRowsOfPlan(plan, op);
  return plan;
}

class Sm90Fp8GemmStrategy final : public KernelStrategy {
public:
  StringRef getName() const override { return "fp8-gemm-sm90a-wgmma"; }

  bool matches(Operation *op, const KernelTarget &target) const override {
    return isa<Fp8GemmOp>(op) && target.info->hasWgmma;
  }

  TileConfigAttr getDefaultTile(Operation *op,
                                const KernelTarget &) const override {
    // Promoted: 128×128 outputs (three accumulator sets of 64 per thread),
    // 128-byte K rows, 5 stages of 32 KiB. Fast accumulation: 128×256 (one
    // set of 128), 4 stages of 48 KiB.
    if (cast<Fp8GemmOp>(op).getFastAccum())
      return TileConfigAttr::get(op->getContext(), {128, 256, 128}, 8, 4, {});
    return TileConfigAttr::get(op->getContext(), {128, 128, 128}, 8, 5, {});
  }

  SmallVector<TileConfigAttr>
  getTileCandidates(Operation *op, const KernelTarget &target) const override {
    return enumerateWgmmaTiles(op->getContext(), /*elementBytes=*/1,
                               getDefaultTile(op, target));
  }

  KernelResources estimateResources(Operation *op, TileConfigAttr tile,
                                    const KernelTarget &) const override {
    auto gemm = cast<Fp8GemmOp>(op);
    return estimateWgmmaGemm(makeFp8GemmPlan(gemm, tile), getEstimatedRows(op));
  }

  LogicalResult checkSupported(Operation *op, TileConfigAttr tile,
                               const KernelTarget &target) const override {
    auto gemm = cast<Fp8GemmOp>(op);
    auto rhs = cast<ShapedType>(gemm.getRhs().getType());
    if (failed(checkGemmOperands(
            op, tile, rhs.getDimSize(0), rhs.getDimSize(1), 1, "'rhs'",
            "sm_90a wgmma", [&] {
              return makeFp8GemmPlan(gemm, tile).getUnsupportedReason(target);
            })))
      return failure();
    return checkFp8GemmTile(gemm, tile);
  }

  LogicalResult lower(Operation *op, TileConfigAttr tile, const KernelTarget &,
                      gpu::GPUModuleOp module,
                      RewriterBase &rewriter) const override;
};

LogicalResult Sm90Fp8GemmStrategy::lower(Operation *op, TileConfigAttr tile,
                                         const KernelTarget &target,
                                         gpu::GPUModuleOp module,
                                         RewriterBase &rewriter) const {
  auto gemm = cast<Fp8GemmOp>(op);
  WgmmaGemmPlan plan = makeFp8GemmPlan(gemm, tile);
  ScaleGranularity granularity = gemm.getGranularity();
  ImplicitLocOpBuilder b(op->getLoc(), rewriter);
  b.setInsertionPoint(op);
  SmallVector<Value> hostArgs = Fp8GemmKernelArgs::get(gemm);
  buildAndLaunchWgmmaGemm(
      b, module, "fp8_gemm", hostArgs, hostArgs[0], {hostArgs[1]},
      hostArgs.back(), plan, target,
      [&](ImplicitLocOpBuilder &b, gpu::GPUFuncOp kernel,
          const WgmmaTileSchedule &schedule) {
        Fp8GemmKernelArgs args = Fp8GemmKernelArgs::fromKernel(gemm, kernel);
        Value rowsM = memref::DimOp::create(b, args.lhs, 0);
        // Block scales: the pair covering the output tile at (m0, n0) in
        // the 128-wide K block of K tile kt.
        auto blockScale = [&](ImplicitLocOpBuilder &b, Value kt, Value m0,
                              Value n0) -> Value {
          Value kb = arith::DivUIOp::create(
              b, arith::MulIOp::create(b, kt, cIndex(b, plan.bk)),
              cIndex(b, 128));
          // A cluster's second tile may lie wholly past M (its rows are
          // not stored): read the last row block's scales there.
          if (plan.clusterBlocks() > 1)
            m0 = arith::MinUIOp::create(
                b, m0, arith::SubIOp::create(b, rowsM, cIndex(b, 1)));
          return loadFp8BlockScale(b, args, m0, n0, kb);
        };
        buildWgmmaGemm(
            b, plan, kernel, schedule,
            granularity == ScaleGranularity::block128 ? KTileScaleFn(blockScale)
                                                      : KTileScaleFn(),
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
mlir::fusedops::kernel::createSm90GatedMlpStrategy() {
  return std::make_unique<Sm90GatedGemmStrategy>();
}

std::unique_ptr<KernelStrategy>
mlir::fusedops::kernel::createSm90Fp8GemmStrategy() {
  return std::make_unique<Sm90Fp8GemmStrategy>();
}
