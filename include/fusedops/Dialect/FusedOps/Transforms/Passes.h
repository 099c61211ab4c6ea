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

/// A CUDA tensor map (CUtensorMap): 128 bytes, 64-byte aligned.
constexpr int64_t kTensorMapBytes = 128;
constexpr int64_t kTensorMapAlign = 64;

/// Fields of one tensor map in a launch plan entry's `tensor_maps`: the
/// kernel parameter, the buffer (function argument), element bytes, rows,
/// columns, row stride in bytes, box rows, box columns, swizzle bytes (the
/// arguments of fusedopsLaunchPlanSetTensorMap).
constexpr size_t kTensorMapPlanFields = 9;

/// The runtime functions (fusedops-c/Runtime.h) the sm_90a GEMMs' host code
/// calls, which `fusedops-launch-plan` describes: a tensor map's encoding
/// and the device's SM count (persistent grids).
constexpr llvm::StringLiteral kTensorMapEncodeFnName = "mgpuTensorMapEncode2D";
constexpr llvm::StringLiteral kMultiprocessorCountFnName =
    "mgpuMultiprocessorCount";

#define GEN_PASS_DECL
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h.inc"

} // namespace mlir::fusedops

#endif // FUSEDOPS_DIALECT_FUSEDOPS_TRANSFORMS_PASSES_H
