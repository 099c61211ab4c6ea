//===- Passes.td - fusedops conversion passes --------------*- tablegen -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_CONVERSION_PASSES_TD
#define FUSEDOPS_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertFusedOpsToGPU : Pass<"convert-fusedops-to-gpu", "ModuleOp"> {
  let summary = "Lower fusedops ops in buffer form to GPU kernels and launches";
  let description = [{
    Replaces every fusedops op in buffer form (memref operands, as left by
    `one-shot-bufferize`) with a `gpu.launch_func` of a kernel built into the
    module's `gpu.module @fusedops_kernels`. The kernel is built by the
    strategy that serves the op on the target chip (see
    `fusedops/Conversion/FusedOpsToGPU/KernelStrategy.h`), tiled by the op's
    `#fusedops.tile<...>` or, where the op has none, by the strategy's
    default tile. Ops a strategy cannot serve (an unsupported element type,
    a dynamic hidden size, a tile that does not fit) are reported with what
    to change; the pass then fails and leaves no partial rewrite.

    Example:

    ```mlir
    fusedops.rmsnorm_rope ins(%x, %w, %cos, %sin : ...) outs(%out : ...) ...
    // becomes
    gpu.launch_func @fusedops_kernels::@rmsnorm_rope blocks in (%rows, %c1, %c1)
        threads in (%c128, %c1, %c1) args(%x2d : memref<?x4096xf16>, ...)
    ```
  }];
  let options = [
    Option<"chip", "chip", "std::string", /*default=*/"\"sm_90a\"",
           "Target chip, a row of the chip table: sm_80, sm_86, sm_89, sm_90 or sm_90a">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::nvgpu::NVGPUDialect",
    "::mlir::NVVM::NVVMDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect"
  ];
}

#endif // FUSEDOPS_CONVERSION_PASSES_TD
