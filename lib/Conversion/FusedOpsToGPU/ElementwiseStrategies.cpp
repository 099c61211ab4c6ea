//===- ElementwiseStrategies.cpp - elementwise kernels --------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// gated_act_grad: the backward of act(gate)·up from saved pre-activations,
// elementwise over tensors of one shape. It reads three tensors and writes
// two, ~30 flops an element: memory-bound. The tensors are viewed as one
// vector each; a thread takes `tile.block[0]` vectors of V elements (V the
// widest, at most 16 bytes, that divides the last dimension, so that every
// vector lies in one row and is aligned), strided by the block's threads so
// that a warp's accesses are contiguous, issues all their loads before any
// store (the stores may alias the loads for all the compiler knows), and
// computes in f32 (applyGatedActivationGrads, shared with gated_mlp_grad's
// epilogue). Every chip uses it: nothing in it is chip-specific.
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"
#include "Strategies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::kernel;

namespace {

/// gated_act_grad's kernel shape: vectors of `width` elements, `perThread`
/// of them per thread, `threads` per block.
struct ElementwisePlan {
  int64_t width = 1, perThread = 1, threads = 0;
  int64_t elementsPerBlock() const { return width * perThread * threads; }
};

ElementwisePlan makePlan(GatedActGradOp op, TileConfigAttr tile) {
  auto type = cast<ShapedType>(op.getGate().getType());
  int64_t cols = type.getShape().back();
  ElementwisePlan plan;
  plan.width = 16 / (type.getElementTypeBitWidth() / 8);
  while (plan.width > 1 && !ShapedType::isDynamic(cols) && cols % plan.width)
    plan.width /= 2;
  plan.perThread = tile.getBlock()[0];
  plan.threads = tile.getNumThreads();
  return plan;
}

class GatedActGradStrategy final : public KernelStrategy {
public:
  StringRef getName() const override { return "gated-act-grad-elementwise"; }

  bool matches(Operation *op, const KernelTarget &) const override {
    return isa<GatedActGradOp>(op);
  }

  TileConfigAttr getDefaultTile(Operation *op,
                                const KernelTarget &) const override {
    // Two 16-byte vectors of each of the three inputs in flight per thread,
    // 256 threads.
    return TileConfigAttr::get(op->getContext(), {2}, /*warps=*/8,
                               /*stages=*/1, /*cluster=*/{});
  }

  SmallVector<TileConfigAttr>
  getTileCandidates(Operation *op, const KernelTarget &target) const override {
    SmallVector<TileConfigAttr> tiles = {getDefaultTile(op, target)};
    for (int64_t perThread : {1, 2, 4, 8})
      for (int64_t warps : {4, 8, 16})
        tiles.push_back(TileConfigAttr::get(op->getContext(), {perThread},
                                            warps, /*stages=*/1, {}));
    return tiles;
  }

  KernelResources estimateResources(Operation *op, TileConfigAttr tile,
                                    const KernelTarget &) const override {
    auto grad = cast<GatedActGradOp>(op);
    ElementwisePlan plan = makePlan(grad, tile);
    auto type = cast<ShapedType>(grad.getGate().getType());
    int64_t bytes = type.getElementTypeBitWidth() / 8;
    double elements = double(getEstimatedRows(op)) * type.getShape().back();
    KernelResources r;
    r.blocks = std::max<int64_t>(
        1, int64_t(std::ceil(elements / double(plan.elementsPerBlock()))));
    r.threadsPerBlock = plan.threads;
    // Three input vectors per slot in flight, then two outputs in f32.
    int64_t registersPerVector = llvm::divideCeil(plan.width * bytes, 4);
    r.registersPerThread =
        24 + plan.perThread * (3 * registersPerVector + 4 * plan.width);
    r.dramBytes = 5.0 * elements * bytes;
    r.l2Bytes = r.dramBytes;
    r.flops = 30.0 * elements;
    r.unit = KernelResources::ComputeUnit::Fma;
    r.itemsPerThread = 3 * plan.perThread;
    r.bytesInFlightPerBlock =
        3.0 * plan.perThread * plan.threads * plan.width * bytes;
    return r;
  }

  LogicalResult checkSupported(Operation *op, TileConfigAttr tile,
                               const KernelTarget &) const override {
    if (failed(checkContiguousBuffers(op)))
      return failure();
    auto grad = cast<GatedActGradOp>(op);
    if (ShapedType::isDynamic(
            cast<ShapedType>(grad.getGate().getType()).getShape().back()))
      return op->emitOpError() << "needs a static last dimension to lower "
                                  "to a GPU kernel";
    if (!tile.getCluster().empty())
      return op->emitOpError() << "'tile' of gated_act_grad takes no cluster";
    int64_t perThread = tile.getBlock()[0];
    if (perThread < 1 || perThread > 16)
      return op->emitOpError()
             << "'tile' " << tile
             << " must give each thread 1 to 16 vectors (block = [V])";
    return success();
  }

  LogicalResult lower(Operation *op, TileConfigAttr tile, const KernelTarget &,
                      gpu::GPUModuleOp module,
                      RewriterBase &rewriter) const override;
};

LogicalResult GatedActGradStrategy::lower(Operation *op, TileConfigAttr tile,
                                          const KernelTarget &,
                                          gpu::GPUModuleOp module,
                                          RewriterBase &rewriter) const {
  auto grad = cast<GatedActGradOp>(op);
  ElementwisePlan plan = makePlan(grad, tile);
  Activation activation = grad.getActivation();
  ImplicitLocOpBuilder b(op->getLoc(), rewriter);
  b.setInsertionPoint(op);
  // gate, up, grad, grad_gate, grad_up as [rows, N] matrices (the views
  // launch plans replay); the kernel reads each as one vector.
  SmallVector<Value> args;
  for (Value operand : op->getOperands())
    args.push_back(collapseLeadingDims(b, operand));
  SmallVector<Type> argTypes;
  for (Value arg : args)
    argTypes.push_back(arg.getType());
  Type element = cast<MemRefType>(args[0].getType()).getElementType();
  gpu::GPUFuncOp kernel;
  {
    OpBuilder::InsertionGuard guard(b);
    kernel = createKernel(b, b.getLoc(), module, "gated_act_grad", argTypes,
                          plan.threads, /*workgroupBuffers=*/{});
    b.setInsertionPoint(kernel.getBody().front().getTerminator());
    SmallVector<Value> vectors;
    for (BlockArgument arg : kernel.getArguments())
      vectors.push_back(collapseToVector(b, arg));
    Value elements = memref::DimOp::create(b, vectors[0], 0);
    // A slot past the end loads the last vector and stores nothing.
    Value lastVector =
        arith::SubIOp::create(b, elements, cIndex(b, plan.width));
    Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
    Value first =
        arith::MulIOp::create(b, gpu::BlockIdOp::create(b, gpu::Dimension::x),
                              cIndex(b, plan.perThread * plan.threads));
    auto vecType = VectorType::get({plan.width}, element);
    int64_t align = vectorAlignment(element, plan.width);
    struct Slot {
      Value start, inside;
      SmallVector<Value, 3> loaded;
    };
    SmallVector<Slot> slots;
    for (int64_t j = 0; j < plan.perThread; ++j) {
      Slot slot;
      Value vectorIndex = arith::AddIOp::create(
          b, first, arith::AddIOp::create(b, cIndex(b, j * plan.threads), tid));
      slot.start = arith::MulIOp::create(b, vectorIndex, cIndex(b, plan.width));
      slot.inside = arith::CmpIOp::create(b, arith::CmpIPredicate::ult,
                                          slot.start, elements);
      Value at = arith::MinUIOp::create(b, slot.start, lastVector);
      for (int64_t i = 0; i < 3; ++i)
        slot.loaded.push_back(vector::LoadOp::create(b, vecType, vectors[i],
                                                     ValueRange{at}, false,
                                                     llvm::MaybeAlign(align)));
      slots.push_back(slot);
    }
    Type f32 = b.getF32Type();
    for (const Slot &slot : slots)
      ifThen(b, slot.inside, [&] {
        auto [gradGate, gradUp] = applyGatedActivationGrads(
            b, activation, castFloat(b, slot.loaded[0], f32),
            castFloat(b, slot.loaded[1], f32),
            castFloat(b, slot.loaded[2], f32));
        for (auto [value, out] : {std::pair<Value, Value>{gradGate, vectors[3]},
                                  {gradUp, vectors[4]}})
          vector::StoreOp::create(b, castFloat(b, value, element), out,
                                  ValueRange{slot.start}, false,
                                  llvm::MaybeAlign(align));
      });
  }
  Value elements =
      arith::MulIOp::create(b, memref::DimOp::create(b, args[0], 0),
                            memref::DimOp::create(b, args[0], 1));
  launchIfRows(b, kernel, elements,
               arith::CeilDivUIOp::create(b, elements,
                                          cIndex(b, plan.elementsPerBlock())),
               cIndex(b, 1), plan.threads, args);
  rewriter.eraseOp(op);
  return success();
}

} // namespace

std::unique_ptr<KernelStrategy>
mlir::fusedops::kernel::createGatedActGradStrategy() {
  return std::make_unique<GatedActGradStrategy>();
}
