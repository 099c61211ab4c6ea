//===- FusedOpsToGPU.h - fusedops to GPU kernels ----------------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_CONVERSION_FUSEDOPSTOGPU_FUSEDOPSTOGPU_H
#define FUSEDOPS_CONVERSION_FUSEDOPSTOGPU_FUSEDOPSTOGPU_H

#include "fusedops/Conversion/FusedOpsToGPU/KernelStrategy.h"

namespace mlir {
class RewritePatternSet;
namespace gpu {
class GPUModuleOp;
} // namespace gpu

namespace fusedops {
/// Adds the patterns that replace fusedops ops in buffer form by launches of
/// kernels built into `kernelModule` for `target`.
void populateFusedOpsToGPUConversionPatterns(RewritePatternSet &patterns,
                                             const KernelTarget &target,
                                             gpu::GPUModuleOp kernelModule);
} // namespace fusedops
} // namespace mlir

#endif // FUSEDOPS_CONVERSION_FUSEDOPSTOGPU_FUSEDOPSTOGPU_H
