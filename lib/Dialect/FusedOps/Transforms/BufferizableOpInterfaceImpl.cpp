//===- BufferizableOpInterfaceImpl.cpp - fusedops bufferization -----------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Dialect/FusedOps/Transforms/BufferizableOpInterfaceImpl.h"

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"
#include "mlir/Dialect/Bufferization/IR/BufferizableOpInterface.h"
#include "mlir/Dialect/Bufferization/IR/DstBufferizableOpInterfaceImpl.h"

using namespace mlir;
using namespace mlir::bufferization;
using namespace mlir::fusedops;

namespace {
/// Bufferization of a fusedops op: the same op with every tensor operand
/// replaced by its buffer and no results; the init buffers replace the
/// results.
template <typename OpTy>
struct FusedOpBufferizationModel
    : public DstBufferizableOpInterfaceExternalModel<
          FusedOpBufferizationModel<OpTy>, OpTy> {
  /// Every fusedops op overwrites its inits whole and never reads them, so a
  /// fresh `tensor.empty` init needs no copy.
  bool bufferizesToMemoryRead(Operation *op, OpOperand &operand,
                              const AnalysisState &) const {
    return !cast<DestinationStyleOpInterface>(op).isDpsInit(&operand);
  }

  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto dps = cast<DestinationStyleOpInterface>(op);
    if (!dps.hasPureTensorSemantics())
      return op->emitOpError()
             << "cannot bufferize an op that mixes tensors and memrefs";
    rewriter.setInsertionPoint(op);
    SmallVector<Value> buffers;
    for (Value operand : op->getOperands()) {
      FailureOr<Value> buffer = getBuffer(rewriter, operand, options, state);
      if (failed(buffer))
        return failure();
      buffers.push_back(*buffer);
    }
    cloneWithNewOperands(rewriter, op, buffers, /*resultTypes=*/{});
    SmallVector<Value> results;
    for (OpOperand &init : dps.getDpsInitsMutable())
      results.push_back(buffers[init.getOperandNumber()]);
    replaceOpWithBufferizedValues(rewriter, op, results);
    return success();
  }
};

template <typename... OpTys> void attachModels(MLIRContext *ctx) {
  (OpTys::template attachInterface<FusedOpBufferizationModel<OpTys>>(*ctx),
   ...);
}
} // namespace

void mlir::fusedops::registerBufferizableOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, FusedOpsDialect *) {
    attachModels<RmsNormRopeOp, RmsNormRopeGradOp, RmsNormOp, RmsNormGradOp,
                 GatedMlpOp, GatedMlpGradOp, GatedActGradOp, Fp8GemmOp,
                 QuantizeOp, DequantizeOp>(ctx);
  });
}
