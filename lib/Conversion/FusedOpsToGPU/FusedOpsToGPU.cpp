//===- FusedOpsToGPU.cpp - fusedops ops to GPU kernels and launches -------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Conversion/FusedOpsToGPU/FusedOpsToGPU.h"

#include "fusedops/Conversion/Passes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Transforms/DialectConversion.h"

namespace mlir::fusedops {
#define GEN_PASS_DEF_CONVERTFUSEDOPSTOGPU
#include "fusedops/Conversion/Passes.h.inc"
} // namespace mlir::fusedops

using namespace mlir;
using namespace mlir::fusedops;

/// Name of the gpu.module that holds the kernels of one module.
static constexpr StringLiteral kKernelModuleName = "fusedops_kernels";

namespace {
/// Replaces a fusedops op in buffer form by the launch of the kernel its
/// strategy builds.
struct LowerTileConfigurableOp
    : public OpInterfaceConversionPattern<TileConfigurableOpInterface> {
  LowerTileConfigurableOp(MLIRContext *ctx, const KernelTarget &target,
                          gpu::GPUModuleOp kernelModule)
      : OpInterfaceConversionPattern(ctx), target(target),
        kernelModule(kernelModule) {}

  LogicalResult
  matchAndRewrite(TileConfigurableOpInterface op, ArrayRef<Value>,
                  ConversionPatternRewriter &rewriter) const override {
    auto dps = cast<DestinationStyleOpInterface>(op.getOperation());
    if (!dps.hasPureBufferSemantics())
      return rewriter.notifyMatchFailure(op, "not in buffer form");
    const KernelStrategy *strategy = selectKernelStrategy(op, target);
    if (!strategy)
      return rewriter.notifyMatchFailure(op, "no strategy");
    TileConfigAttr tile = op.getTileConfig();
    if (!tile)
      tile = strategy->getDefaultTile(op, target);
    return strategy->lower(op, tile, target, kernelModule, rewriter);
  }

  KernelTarget target;
  gpu::GPUModuleOp kernelModule;
};

struct ConvertFusedOpsToGPUPass
    : public fusedops::impl::ConvertFusedOpsToGPUBase<
          ConvertFusedOpsToGPUPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::optional<KernelTarget> target = KernelTarget::parse(chip);
    if (!target) {
      module.emitError() << "unknown chip '" << chip << "'; expected "
                         << getKnownChipNames();
      return signalPassFailure();
    }

    // Check every op first so that all problems are reported, with what to
    // change, and nothing is rewritten when one cannot be lowered.
    bool supported = true;
    module.walk([&](TileConfigurableOpInterface op) {
      auto dps = cast<DestinationStyleOpInterface>(op.getOperation());
      if (!dps.hasPureBufferSemantics()) {
        op->emitOpError() << "must be in buffer form (memref operands) to "
                             "lower to a GPU kernel; run one-shot-bufferize "
                             "first";
        supported = false;
        return;
      }
      const KernelStrategy *strategy = selectKernelStrategy(op, *target);
      if (!strategy) {
        op->emitOpError() << "has no GPU kernel strategy for " << chip;
        supported = false;
        return;
      }
      TileConfigAttr tile = op.getTileConfig();
      if (!tile)
        tile = strategy->getDefaultTile(op, *target);
      supported &= succeeded(strategy->checkSupported(op, tile, *target));
    });
    if (!supported)
      return signalPassFailure();

    bool anyOp = false;
    module.walk([&](TileConfigurableOpInterface) { anyOp = true; });
    if (!anyOp)
      return;

    gpu::GPUModuleOp kernelModule = getOrCreateKernelModule(module);
    RewritePatternSet patterns(&getContext());
    populateFusedOpsToGPUConversionPatterns(patterns, *target, kernelModule);
    ConversionTarget conversionTarget(getContext());
    conversionTarget.addIllegalDialect<FusedOpsDialect>();
    conversionTarget.addLegalDialect<
        arith::ArithDialect, gpu::GPUDialect, LLVM::LLVMDialect,
        math::MathDialect, memref::MemRefDialect, NVVM::NVVMDialect,
        nvgpu::NVGPUDialect, scf::SCFDialect, vector::VectorDialect>();
    if (failed(applyPartialConversion(module, conversionTarget,
                                      std::move(patterns))))
      signalPassFailure();
  }

  gpu::GPUModuleOp getOrCreateKernelModule(ModuleOp module) {
    module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                    UnitAttr::get(module.getContext()));
    if (auto existing =
            module.lookupSymbol<gpu::GPUModuleOp>(kKernelModuleName))
      return existing;
    OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
    return gpu::GPUModuleOp::create(b, module.getLoc(), kKernelModuleName);
  }
};
} // namespace

void mlir::fusedops::populateFusedOpsToGPUConversionPatterns(
    RewritePatternSet &patterns, const KernelTarget &target,
    gpu::GPUModuleOp kernelModule) {
  patterns.add<LowerTileConfigurableOp>(patterns.getContext(), target,
                                        kernelModule);
}
