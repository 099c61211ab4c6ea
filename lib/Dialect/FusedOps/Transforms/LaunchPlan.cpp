//===- LaunchPlan.cpp - host functions as lists of kernel launches --------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// A host function that only launches kernels on its own arguments is, at run
// time, a list of cuLaunchKernel calls with fixed geometry and parameters
// that differ only in the data pointers. This pass writes that list on the
// function so that a runtime can replay it without the function's
// JIT-compiled host code (see fusedopsLaunchPlanRun in fusedops-c/Runtime.h).
//
//===----------------------------------------------------------------------===//

#include "fusedops/Dialect/FusedOps/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace mlir::fusedops {
#define GEN_PASS_DEF_FUSEDOPSLAUNCHPLAN
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h.inc"
} // namespace mlir::fusedops

using namespace mlir;
using namespace mlir::fusedops;

/// The constant value of an index operand, if it is one.
static std::optional<int64_t> constantIndex(Value value) {
  APInt result;
  if (!value || !matchPattern(value, m_ConstantInt(&result)))
    return std::nullopt;
  return result.getSExtValue();
}

/// The function argument `value` is a view of (through view-like ops such
/// as memref.collapse_shape or memref.subview, which keep the base pointer),
/// if that argument has the identity layout.
static BlockArgument viewedArgument(Value value) {
  while (auto view = value.getDefiningOp<ViewLikeOpInterface>()) {
    if (view->getNumResults() != 1 || view->getResult(0) != value)
      return {};
    value = view.getViewSource();
  }
  auto arg = dyn_cast<BlockArgument>(value);
  if (!arg || !isa<func::FuncOp>(arg.getOwner()->getParentOp()))
    return {};
  auto type = dyn_cast<MemRefType>(arg.getType());
  if (!type || !type.getLayout().isIdentity() || type.getMemorySpace())
    return {};
  return arg;
}

/// Appends the kernel parameters that gpu-to-llvm passes for `operand`: a
/// memref becomes its descriptor (MemRefDescriptor::unpack's order:
/// allocated pointer, aligned pointer, offset, sizes, strides), an index or
/// i64 constant its value. Fails unless all but the pointers are known now,
/// and for operands of other types (their parameters are not 8 bytes wide).
static LogicalResult appendParams(Value operand,
                                  SmallVectorImpl<int64_t> &params,
                                  SmallVectorImpl<int64_t> &paramArgs) {
  if (operand.getType().isIndex() || operand.getType().isInteger(64)) {
    std::optional<int64_t> value = constantIndex(operand);
    if (!value)
      return failure();
    params.push_back(*value);
    paramArgs.push_back(-1);
    return success();
  }
  auto type = dyn_cast<MemRefType>(operand.getType());
  if (!type || !type.hasStaticShape() || type.getMemorySpace())
    return failure();
  BlockArgument arg = viewedArgument(operand);
  int64_t offset;
  SmallVector<int64_t> strides;
  if (!arg || failed(type.getStridesAndOffset(strides, offset)) ||
      ShapedType::isDynamic(offset) ||
      llvm::any_of(strides, ShapedType::isDynamic))
    return failure();
  int64_t number = arg.getArgNumber();
  params.append({0, 0, offset});
  paramArgs.append({number, number, -1});
  for (int64_t size : type.getShape()) {
    params.push_back(size);
    paramArgs.push_back(-1);
  }
  for (int64_t stride : strides) {
    params.push_back(stride);
    paramArgs.push_back(-1);
  }
  return success();
}

/// The plan entry of `launch`, or null if it cannot be replayed without host
/// code.
static DictionaryAttr planLaunch(gpu::LaunchFuncOp launch) {
  if (launch.getAsyncToken() || !launch.getAsyncDependencies().empty() ||
      launch.hasClusterSize())
    return {};
  SmallVector<int64_t> grid, block;
  for (Value v :
       {launch.getGridSizeX(), launch.getGridSizeY(), launch.getGridSizeZ()}) {
    std::optional<int64_t> n = constantIndex(v);
    if (!n || *n <= 0 || *n > std::numeric_limits<uint32_t>::max())
      return {};
    grid.push_back(*n);
  }
  for (Value v : {launch.getBlockSizeX(), launch.getBlockSizeY(),
                  launch.getBlockSizeZ()}) {
    std::optional<int64_t> n = constantIndex(v);
    if (!n || *n <= 0 || *n > 1024)
      return {};
    block.push_back(*n);
  }
  int64_t sharedMemory = 0;
  if (Value dynamic = launch.getDynamicSharedMemorySize()) {
    std::optional<int64_t> n = constantIndex(dynamic);
    if (!n || *n < 0 || *n > std::numeric_limits<uint32_t>::max())
      return {};
    sharedMemory = *n;
  }
  SmallVector<int64_t> params, paramArgs;
  for (Value operand : launch.getKernelOperands())
    if (failed(appendParams(operand, params, paramArgs)))
      return {};
  Builder b(launch.getContext());
  return b.getDictionaryAttr({
      b.getNamedAttr("module", launch.getKernelModuleName()),
      b.getNamedAttr("kernel", launch.getKernelName()),
      b.getNamedAttr("grid", b.getDenseI64ArrayAttr(grid)),
      b.getNamedAttr("block", b.getDenseI64ArrayAttr(block)),
      b.getNamedAttr("shared_memory", b.getI64IntegerAttr(sharedMemory)),
      b.getNamedAttr("params", b.getDenseI64ArrayAttr(params)),
      b.getNamedAttr("param_args", b.getDenseI64ArrayAttr(paramArgs)),
  });
}

/// The plan of `func`: one entry per launch, in order; null if any of its
/// host work is more than launching.
static ArrayAttr planFunction(func::FuncOp func) {
  if (func.isExternal() || !func.getBody().hasOneBlock() ||
      func.getNumResults() != 0)
    return {};
  SmallVector<Attribute> launches;
  for (Operation &op : func.getBody().front()) {
    // Constants and views compute nothing at run time that a plan needs to
    // keep; a launch operand they cannot describe fails in planLaunch.
    if (isa<func::ReturnOp>(op) || isPure(&op))
      continue;
    auto launch = dyn_cast<gpu::LaunchFuncOp>(op);
    if (!launch)
      return {};
    DictionaryAttr entry = planLaunch(launch);
    if (!entry)
      return {};
    launches.push_back(entry);
  }
  if (launches.empty())
    return {};
  return ArrayAttr::get(func.getContext(), launches);
}

namespace {
struct FusedOpsLaunchPlanPass
    : public fusedops::impl::FusedOpsLaunchPlanBase<FusedOpsLaunchPlanPass> {
  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      func->removeAttr(kLaunchPlanAttrName);
      bool launches = false;
      func.walk([&](gpu::LaunchFuncOp) { launches = true; });
      if (!launches)
        continue;
      if (ArrayAttr plan = planFunction(func)) {
        func->setAttr(kLaunchPlanAttrName, plan);
        ++numPlanned;
      } else {
        ++numUnplanned;
      }
    }
  }
};
} // namespace
