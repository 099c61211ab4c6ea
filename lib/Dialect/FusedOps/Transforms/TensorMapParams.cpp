//===- TensorMapParams.cpp - tensor maps as by-value kernel parameters ----===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// TMA reads its tensor map through a generic address in the .param, .const
// or .global space. CUDA C++ passes it as a `__grid_constant__` kernel
// parameter; MLIR's GPU dialect has no such parameter kind (gpu.func drops
// `llvm.byval`, and `nvvm.grid_constant` is only valid on an llvm.func
// kernel), so the kernels are built with pointer parameters and this pass,
// once they are llvm.func, makes those parameters by-value grid constants
// and their launches pass the map's bytes.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Dialect/FusedOps/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::fusedops {
#define GEN_PASS_DEF_FUSEDOPSTENSORMAPPARAMS
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h.inc"
} // namespace mlir::fusedops

using namespace mlir;
using namespace mlir::fusedops;

/// The first tensor-map parameter of `kernel`, or a failure reported on it.
static FailureOr<unsigned> getFirstTensorMapParam(LLVM::LLVMFuncOp kernel,
                                                  IntegerAttr count) {
  unsigned numParams = kernel.getNumArguments();
  if (count.getInt() < 0 || count.getInt() > numParams)
    return kernel.emitOpError()
           << "has '" << kTensorMapParamsAttrName << "' = " << count.getInt()
           << " but " << numParams << " parameters";
  unsigned first = numParams - count.getInt();
  for (unsigned i = first; i < numParams; ++i)
    if (!isa<LLVM::LLVMPointerType>(kernel.getArgument(i).getType()) ||
        cast<LLVM::LLVMPointerType>(kernel.getArgument(i).getType())
                .getAddressSpace() != 0)
      return kernel.emitOpError()
             << "parameter " << i << " is a tensor map ('"
             << kTensorMapParamsAttrName << "') but not a generic !llvm.ptr: "
             << kernel.getArgument(i).getType();
  return first;
}

namespace {
struct FusedOpsTensorMapParamsPass
    : public fusedops::impl::FusedOpsTensorMapParamsBase<
          FusedOpsTensorMapParamsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = module.getContext();
    auto mapType = LLVM::LLVMArrayType::get(IntegerType::get(ctx, 64),
                                            kTensorMapBytes / 8);
    // Kernel symbol (module, name) -> how many map parameters end its list.
    llvm::DenseMap<std::pair<StringAttr, StringAttr>, unsigned> kernels;
    WalkResult walk = module.walk([&](LLVM::LLVMFuncOp kernel) {
      auto count = kernel->getAttrOfType<IntegerAttr>(kTensorMapParamsAttrName);
      if (!count)
        return WalkResult::advance();
      auto gpuModule = kernel->getParentOfType<gpu::GPUModuleOp>();
      if (!gpuModule ||
          !kernel->hasAttr(NVVM::NVVMDialect::getKernelFuncAttrName())) {
        kernel.emitOpError() << "has '" << kTensorMapParamsAttrName
                             << "' but is not an NVVM kernel in a gpu.module";
        return WalkResult::interrupt();
      }
      FailureOr<unsigned> first = getFirstTensorMapParam(kernel, count);
      if (failed(first))
        return WalkResult::interrupt();
      OpBuilder b(ctx);
      for (unsigned i = *first; i < kernel.getNumArguments(); ++i) {
        kernel.setArgAttr(i, LLVM::LLVMDialect::getByValAttrName(),
                          TypeAttr::get(mapType));
        kernel.setArgAttr(i, LLVM::LLVMDialect::getAlignAttrName(),
                          b.getI64IntegerAttr(kTensorMapAlign));
        kernel.setArgAttr(i, NVVM::NVVMDialect::getGridConstantAttrName(),
                          b.getUnitAttr());
      }
      kernel->removeAttr(kTensorMapParamsAttrName);
      kernels[{gpuModule.getNameAttr(), kernel.getNameAttr()}] =
          kernel.getNumArguments() - *first;
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return signalPassFailure();
    if (kernels.empty())
      return;
    // The launches pass the maps last too (a memref operand becomes
    // several parameters, a pointer one).
    walk = module.walk([&](gpu::LaunchFuncOp launch) {
      auto it =
          kernels.find({launch.getKernelModuleName(), launch.getKernelName()});
      if (it == kernels.end())
        return WalkResult::advance();
      unsigned numOperands = launch.getNumKernelOperands();
      if (numOperands < it->second) {
        launch.emitOpError()
            << "passes " << numOperands << " operands to a kernel with "
            << it->second << " tensor-map parameters";
        return WalkResult::interrupt();
      }
      OpBuilder b(launch);
      unsigned firstOperand = launch.getKernelOperands().getBeginOperandIndex();
      for (unsigned i = numOperands - it->second; i < numOperands; ++i) {
        OpOperand &operand = launch->getOpOperand(firstOperand + i);
        if (!isa<LLVM::LLVMPointerType>(operand.get().getType())) {
          launch.emitOpError()
              << "operand " << i << " is for a tensor-map parameter but is "
              << operand.get().getType() << ", not a pointer to the map";
          return WalkResult::interrupt();
        }
        operand.set(LLVM::LoadOp::create(b, launch.getLoc(), mapType,
                                         operand.get(), kTensorMapAlign));
      }
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      signalPassFailure();
  }
};
} // namespace
