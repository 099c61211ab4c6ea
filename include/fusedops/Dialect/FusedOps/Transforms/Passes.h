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

/// The operations of a launch plan's expressions: the values of a plan for
/// a function with dynamic sizes (grids, kernel parameters, tensor-map
/// fields, guards) as programs in reverse Polish notation over int64, whose
/// only inputs are the function's memref arguments' sizes. `Const v` pushes
/// v; `Size i` pushes size i of the concatenation of every memref
/// argument's sizes in argument order; `Cmp p` pops b, a and pushes
/// `a p b` (p an arith::CmpIPredicate) as 0 or 1; `Select` pops f, t, c and
/// pushes c ? t : f; the others pop b, a and push `a op b` as the arith op
/// of that name does (U: unsigned, S: signed). JitModule::getLaunchPlan
/// evaluates them for given sizes.
enum class PlanOp : int64_t {
  Const = 0,
  Size = 1,
  Add = 2,
  Sub = 3,
  Mul = 4,
  DivU = 5,
  DivS = 6,
  CeilDivU = 7,
  CeilDivS = 8,
  FloorDivS = 9,
  RemU = 10,
  RemS = 11,
  MinU = 12,
  MaxU = 13,
  MinS = 14,
  MaxS = 15,
  Cmp = 16,
  Select = 17,
};

#define GEN_PASS_DECL
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h.inc"

} // namespace mlir::fusedops

#endif // FUSEDOPS_DIALECT_FUSEDOPS_TRANSFORMS_PASSES_H
