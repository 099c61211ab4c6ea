//===- InitFusedOps.h - register fusedops dialects and passes ---*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// What a tool or another compiler calls to make fusedops available: the
// dialect with its external models, and (as they are added) the passes and
// pipelines. Mirrors mlir/InitAllDialects.h.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_INITFUSEDOPS_H
#define FUSEDOPS_INITFUSEDOPS_H

#include "fusedops/Autotune/Passes.h"
#include "fusedops/Conversion/Passes.h"
#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"
#include "fusedops/Dialect/FusedOps/Transforms/BufferizableOpInterfaceImpl.h"
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h"
#include "fusedops/Pipelines/Pipelines.h"
#include "mlir/Dialect/Arith/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/Transforms/FuncBufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/SCF/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Tensor/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"

namespace mlir::fusedops {

/// Adds the fusedops dialect and its interface models to `registry`.
inline void registerAllDialects(DialectRegistry &registry) {
  registry.insert<FusedOpsDialect>();
  registerBufferizableOpInterfaceExternalModels(registry);
}

/// Adds what `fusedops-to-binary` needs beyond the dialects it loads: the
/// bufferization models of the ops around fusedops ops (functions, arith,
/// scf, tensor), the upstream extensions (among them each dialect's ConvertToLLVM interface,
/// which convert-gpu-to-nvvm relies on), the NVVM target (serialising
/// gpu.module to PTX/cubin) and the translations to LLVM IR of the dialects
/// the kernels and host code end in.
inline void registerPipelineDependencies(DialectRegistry &registry) {
  mlir::registerAllExtensions(registry);
  arith::registerBufferizableOpInterfaceExternalModels(registry);
  bufferization::func_ext::registerBufferizableOpInterfaceExternalModels(
      registry);
  scf::registerBufferizableOpInterfaceExternalModels(registry);
  tensor::registerBufferizableOpInterfaceExternalModels(registry);
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  registerBuiltinDialectTranslation(registry);
  registerGPUDialectTranslation(registry);
  gpu::registerOffloadingLLVMTranslationInterfaceExternalModels(registry);
  registerLLVMDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
}

/// Registers the fusedops passes and pipelines (for fusedops-opt and other
/// mlir-opt-like drivers).
inline void registerAllPasses() {
  registerFusedOpsTransformsPasses();
  registerFusedOpsAutotunePasses();
  registerFusedOpsConversionPasses();
  registerFusedOpsPipelines();
}

} // namespace mlir::fusedops

#endif // FUSEDOPS_INITFUSEDOPS_H
