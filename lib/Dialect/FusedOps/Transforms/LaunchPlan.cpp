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

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
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

/// The operands of the runtime call that encodes a tensor map: map, matrix
/// address, element bytes, rows, columns, row stride, box rows, box columns,
/// swizzle.
static constexpr unsigned kTensorMapEncodeOperands = 9;
// A plan's map: its parameter, its buffer, then every operand after those two.
static_assert(kTensorMapPlanFields == 2 + kTensorMapEncodeOperands - 2);

static bool isRuntimeCall(Operation *op, StringRef callee) {
  auto call = dyn_cast_or_null<LLVM::CallOp>(op);
  return call && call.getCallee() == callee;
}

static bool isTensorMapEncode(Operation *op) {
  return isRuntimeCall(op, kTensorMapEncodeFnName) &&
         op->getNumOperands() == kTensorMapEncodeOperands;
}

/// The value `value` has at run time when every tensor map the function
/// encodes was encoded (the launch is guarded by that), if it is a
/// constant then: arith ops over constants fold, an encode call gives 1.
static std::optional<APInt> evaluate(Value value, unsigned depth = 0) {
  APInt result;
  if (matchPattern(value, m_ConstantInt(&result)))
    return result;
  Operation *op = value.getDefiningOp();
  if (!op || depth > 32)
    return std::nullopt;
  if (isTensorMapEncode(op))
    return APInt(32, 1);
  if (op->getNumResults() != 1 || !isPure(op) ||
      !isa<arith::ArithDialect>(op->getDialect()))
    return std::nullopt;
  SmallVector<Attribute> operands;
  for (Value operand : op->getOperands()) {
    std::optional<APInt> known = evaluate(operand, depth + 1);
    if (!known)
      return std::nullopt;
    operands.push_back(IntegerAttr::get(operand.getType(), *known));
  }
  SmallVector<OpFoldResult> folded;
  if (failed(op->fold(operands, folded)) || folded.size() != 1)
    return std::nullopt;
  // Folding may pick one of the operands (arith.select).
  if (auto picked = dyn_cast<Value>(folded[0]))
    return evaluate(picked, depth + 1);
  auto attr = dyn_cast_if_present<IntegerAttr>(dyn_cast<Attribute>(folded[0]));
  if (!attr)
    return std::nullopt;
  return attr.getValue();
}

/// The constant value of an index operand, if it is one (see evaluate).
static std::optional<int64_t> constantIndex(Value value) {
  if (!value)
    return std::nullopt;
  std::optional<APInt> known = evaluate(value);
  if (!known)
    return std::nullopt;
  return known->getSExtValue();
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

/// Appends the tensor-map parameter `operand` (a pointer to a map host code
/// encodes) to `params` as a placeholder and its description to `maps`:
/// [parameter, argument, element bytes, rows, columns, row stride, box
/// rows, box columns, swizzle]. Fails unless the map is of a function
/// argument with every other field constant.
static LogicalResult appendTensorMap(Value operand,
                                     SmallVectorImpl<int64_t> &params,
                                     SmallVectorImpl<int64_t> &paramArgs,
                                     SmallVectorImpl<int64_t> &maps) {
  auto alloca = operand.getDefiningOp<LLVM::AllocaOp>();
  if (!alloca)
    return failure();
  LLVM::CallOp encode;
  for (Operation *user : alloca->getUsers()) {
    if (isTensorMapEncode(user) && user->getOperand(0) == operand) {
      if (encode)
        return failure();
      encode = cast<LLVM::CallOp>(user);
    } else if (!isa<gpu::LaunchFuncOp>(user)) {
      return failure();
    }
  }
  if (!encode)
    return failure();
  // The matrix: a function argument's aligned pointer.
  Value address = encode->getOperand(1);
  auto toPtr = address.getDefiningOp<LLVM::IntToPtrOp>();
  auto cast = toPtr ? toPtr.getArg().getDefiningOp<arith::IndexCastUIOp>()
                    : arith::IndexCastUIOp();
  auto extract =
      cast
          ? cast.getIn().getDefiningOp<memref::ExtractAlignedPointerAsIndexOp>()
          : memref::ExtractAlignedPointerAsIndexOp();
  BlockArgument arg =
      extract ? viewedArgument(extract.getSource()) : BlockArgument();
  if (!arg)
    return failure();
  maps.push_back(static_cast<int64_t>(params.size()));
  maps.push_back(arg.getArgNumber());
  for (unsigned i = 2; i < kTensorMapEncodeOperands; ++i) {
    std::optional<int64_t> field = constantIndex(encode->getOperand(i));
    if (!field || *field < 0)
      return failure();
    maps.push_back(*field);
  }
  params.push_back(0);
  paramArgs.push_back(-1);
  return success();
}

/// Whether `value` is the device's SM count host code asked the runtime.
static bool isMultiprocessorCount(Value value) {
  auto cast = value.getDefiningOp<arith::IndexCastUIOp>();
  return cast && isRuntimeCall(cast.getIn().getDefiningOp(),
                               kMultiprocessorCountFnName);
}

/// k if `value` is (SMs of the device) · k with k constant: how host code
/// sizes a persistent grid (the product folds away for k = 1).
static std::optional<int64_t> matchBlocksPerSm(Value value) {
  if (isMultiprocessorCount(value))
    return 1;
  auto mul = value.getDefiningOp<arith::MulIOp>();
  if (!mul)
    return std::nullopt;
  for (auto [count, factor] : {std::pair(mul.getLhs(), mul.getRhs()),
                               std::pair(mul.getRhs(), mul.getLhs())}) {
    std::optional<int64_t> k = constantIndex(factor);
    if (k && *k > 0 && isMultiprocessorCount(count))
      return k;
  }
  return std::nullopt;
}

/// The plan entry of `launch`, or null if it cannot be replayed without host
/// code.
static DictionaryAttr planLaunch(gpu::LaunchFuncOp launch) {
  if (launch.getAsyncToken() || !launch.getAsyncDependencies().empty() ||
      launch.hasClusterSize())
    return {};
  // A persistent grid, min(tiles, SMs · k): the plan keeps the tiles and k
  // and the runtime takes the device's SM count.
  Value gridX = launch.getGridSizeX();
  int64_t gridPerSm = 0;
  if (auto min = gridX.getDefiningOp<arith::MinUIOp>()) {
    for (auto [tiles, resident] : {std::pair(min.getLhs(), min.getRhs()),
                                   std::pair(min.getRhs(), min.getLhs())})
      if (std::optional<int64_t> k = matchBlocksPerSm(resident)) {
        gridPerSm = *k;
        gridX = tiles;
        break;
      }
  }
  SmallVector<int64_t> grid, block;
  for (Value v : {gridX, launch.getGridSizeY(), launch.getGridSizeZ()}) {
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
  SmallVector<int64_t> params, paramArgs, maps;
  for (Value operand : launch.getKernelOperands()) {
    if (isa<LLVM::LLVMPointerType>(operand.getType())) {
      if (failed(appendTensorMap(operand, params, paramArgs, maps)))
        return {};
    } else if (failed(appendParams(operand, params, paramArgs))) {
      return {};
    }
  }
  Builder b(launch.getContext());
  return b.getDictionaryAttr({
      b.getNamedAttr("module", launch.getKernelModuleName()),
      b.getNamedAttr("kernel", launch.getKernelName()),
      b.getNamedAttr("grid", b.getDenseI64ArrayAttr(grid)),
      b.getNamedAttr("block", b.getDenseI64ArrayAttr(block)),
      b.getNamedAttr("shared_memory", b.getI64IntegerAttr(sharedMemory)),
      b.getNamedAttr("params", b.getDenseI64ArrayAttr(params)),
      b.getNamedAttr("param_args", b.getDenseI64ArrayAttr(paramArgs)),
      b.getNamedAttr("tensor_maps", b.getDenseI64ArrayAttr(maps)),
      b.getNamedAttr("grid_per_sm", b.getI64IntegerAttr(gridPerSm)),
  });
}

/// Appends to `launches` the plan entries of the ops of `block`; fails if
/// any of its host work is more than launching.
static LogicalResult planBlock(Block &block,
                               SmallVectorImpl<Attribute> &launches) {
  for (Operation &op : block) {
    // Constants and views compute nothing at run time that a plan needs to
    // keep; a launch operand they cannot describe fails in planLaunch. The
    // tensor maps' stack slots and encodes are the plan's own work at run
    // time (appendTensorMap checks what they encode).
    if (isa<func::ReturnOp, scf::YieldOp>(op) || isPure(&op) ||
        isTensorMapEncode(&op) ||
        isRuntimeCall(&op, kMultiprocessorCountFnName))
      continue;
    if (auto alloca = dyn_cast<LLVM::AllocaOp>(op)) {
      if (llvm::all_of(alloca->getUsers(), [](Operation *user) {
            return isTensorMapEncode(user) || isa<gpu::LaunchFuncOp>(user);
          }))
        continue;
      return failure();
    }
    // A guard (rows > 0, every map encoded) that holds or fails whatever
    // the data pointers are.
    if (auto guard = dyn_cast<scf::IfOp>(op)) {
      std::optional<APInt> condition = evaluate(guard.getCondition());
      if (!condition || guard.getNumResults() != 0 ||
          !guard.getElseRegion().empty())
        return failure();
      if (condition->isZero())
        continue;
      if (failed(planBlock(guard.getThenRegion().front(), launches)))
        return failure();
      continue;
    }
    auto launch = dyn_cast<gpu::LaunchFuncOp>(op);
    if (!launch)
      return failure();
    DictionaryAttr entry = planLaunch(launch);
    if (!entry)
      return failure();
    launches.push_back(entry);
  }
  return success();
}

/// The plan of `func`: one entry per launch, in order; null if any of its
/// host work is more than launching.
static ArrayAttr planFunction(func::FuncOp func) {
  if (func.isExternal() || !func.getBody().hasOneBlock() ||
      func.getNumResults() != 0)
    return {};
  SmallVector<Attribute> launches;
  if (failed(planBlock(func.getBody().front(), launches)))
    return {};
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
