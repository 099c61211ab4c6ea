//===- Strategies.h - the kernel strategies fusedops ships ------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// One factory per strategy file; KernelStrategy.cpp lists them in the order
// they are tried. Private to lib/Conversion/FusedOpsToGPU.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_STRATEGIES_H
#define FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_STRATEGIES_H

#include "fusedops/Conversion/FusedOpsToGPU/KernelStrategy.h"

#include <memory>

namespace mlir::fusedops::kernel {
/// rmsnorm_rope on any chip: one block per row, see RmsNormStrategies.cpp.
std::unique_ptr<KernelStrategy> createRmsNormRopeStrategy();
/// rmsnorm_rope_grad on any chip, same file.
std::unique_ptr<KernelStrategy> createRmsNormRopeGradStrategy();
/// rms_norm (with or without a residual) on any chip, same file.
std::unique_ptr<KernelStrategy> createRmsNormStrategy();
/// rms_norm_grad on any chip, same file.
std::unique_ptr<KernelStrategy> createRmsNormGradStrategy();
/// gated_mlp and gated_mlp_grad with cp.async, ldmatrix and mma.sync (every
/// chip), see
/// Sm80GemmStrategies.cpp.
std::unique_ptr<KernelStrategy> createSm80GatedMlpStrategy();
/// fp8_gemm converted to f16 in the kernel and run on mma.sync (every chip),
/// see Sm80GemmStrategies.cpp.
std::unique_ptr<KernelStrategy> createSm80Fp8GemmStrategy();
/// fp8_gemm on FP8 mma.sync (chips with `hasFp8MmaSync`), same file.
std::unique_ptr<KernelStrategy> createSm89Fp8GemmStrategy();
/// gated_mlp and gated_mlp_grad on the sm_90a wgmma mainloop (Wgmma.h), see
/// Sm90GemmStrategies.cpp.
std::unique_ptr<KernelStrategy> createSm90GatedMlpStrategy();
/// fp8_gemm on the sm_90a wgmma mainloop, same file.
std::unique_ptr<KernelStrategy> createSm90Fp8GemmStrategy();
/// gated_act_grad on any chip, see ElementwiseStrategies.cpp.
std::unique_ptr<KernelStrategy> createGatedActGradStrategy();
/// quantize (every granularity, dynamic or static) on any chip, see
/// QuantizeStrategy.cpp.
std::unique_ptr<KernelStrategy> createQuantizeStrategy();
/// dequantize (every granularity) on any chip, see QuantizeStrategy.cpp.
std::unique_ptr<KernelStrategy> createDequantizeStrategy();
} // namespace mlir::fusedops::kernel

#endif // FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_STRATEGIES_H
