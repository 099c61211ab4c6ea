//===- Passes.h - fusedops dialect transforms -------------------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_DIALECT_FUSEDOPS_TRANSFORMS_PASSES_H
#define FUSEDOPS_DIALECT_FUSEDOPS_TRANSFORMS_PASSES_H

#include "mlir/Pass/Pass.h"

namespace mlir::fusedops {

/// The attribute `fusedops-launch-plan` writes on host functions (kept on
/// the `llvm.func` through lowering) and JitModule reads back.
constexpr llvm::StringLiteral kLaunchPlanAttrName = "fusedops.launch_plan";

/// The attribute on a kernel whose last N parameters are tensor maps passed
/// by value (see `fusedops-tensor-map-params`).
constexpr llvm::StringLiteral kTensorMapParamsAttrName =
    "fusedops.tensor_map_params";

#define GEN_PASS_DECL
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h.inc"

} // namespace mlir::fusedops

#endif // FUSEDOPS_DIALECT_FUSEDOPS_TRANSFORMS_PASSES_H
