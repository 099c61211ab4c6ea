//===- LaunchPlan.cpp - host functions as lists of kernel launches --------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// A host function that only launches kernels on its own arguments is, at run
// time, a list of cuLaunchKernel calls whose geometry and parameters are
// fixed but for the data pointers and, with dynamic sizes, values computed
// from the arguments' sizes. This pass writes that list on the function
// (those values as PlanOp programs) so that a runtime can replay it without
// the function's JIT-compiled host code (see fusedopsLaunchPlanRun in
// fusedops-c/Runtime.h and JitModule::getLaunchPlan).
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
#include "llvm/ADT/TypeSwitch.h"

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

namespace {
/// Builds the PlanOp programs of host values that are functions of the
/// function's constants and its memref arguments' sizes.
class ExprBuilder {
public:
  explicit ExprBuilder(func::FuncOp func) {
    int64_t offset = 0;
    for (BlockArgument arg : func.getArguments())
      if (auto type = dyn_cast<MemRefType>(arg.getType())) {
        firstSize[arg.getArgNumber()] = offset;
        offset += type.getRank();
      }
  }

  /// Appends the program of `value`; fails for values that are not such
  /// functions (loads, calls other than tensor-map encodes, ...).
  LogicalResult append(Value value, SmallVectorImpl<int64_t> &program,
                       unsigned depth = 0) const;
  /// Appends the program of size `dim` of function argument `arg`.
  LogicalResult appendSize(BlockArgument arg, int64_t dim,
                           SmallVectorImpl<int64_t> &program) const;
  /// Appends the program of size `dim` of `memref`: a function argument, or
  /// a memref.collapse_shape of one (a product of its sizes).
  LogicalResult appendViewSize(Value memref, int64_t dim,
                               SmallVectorImpl<int64_t> &program) const;

private:
  /// Position of each memref argument's first size among all of them.
  DenseMap<unsigned, int64_t> firstSize;
};
} // namespace

static void push(SmallVectorImpl<int64_t> &program, PlanOp op) {
  program.push_back(static_cast<int64_t>(op));
}

LogicalResult ExprBuilder::appendSize(BlockArgument arg, int64_t dim,
                                      SmallVectorImpl<int64_t> &program) const {
  auto type = dyn_cast<MemRefType>(arg.getType());
  auto it = firstSize.find(arg.getArgNumber());
  if (!type || it == firstSize.end() || dim < 0 || dim >= type.getRank())
    return failure();
  if (!type.isDynamicDim(dim)) {
    push(program, PlanOp::Const);
    program.push_back(type.getDimSize(dim));
    return success();
  }
  push(program, PlanOp::Size);
  program.push_back(it->second + dim);
  return success();
}

LogicalResult
ExprBuilder::appendViewSize(Value memref, int64_t dim,
                            SmallVectorImpl<int64_t> &program) const {
  if (auto arg = dyn_cast<BlockArgument>(memref)) {
    if (!isa<func::FuncOp>(arg.getOwner()->getParentOp()))
      return failure();
    return appendSize(arg, dim, program);
  }
  auto collapse = memref.getDefiningOp<memref::CollapseShapeOp>();
  if (!collapse || dim < 0 ||
      static_cast<size_t>(dim) >= collapse.getReassociationIndices().size())
    return failure();
  bool first = true;
  for (int64_t source : collapse.getReassociationIndices()[dim]) {
    if (failed(appendViewSize(collapse.getSrc(), source, program)))
      return failure();
    if (!first)
      push(program, PlanOp::Mul);
    first = false;
  }
  return success(!first);
}

LogicalResult ExprBuilder::append(Value value,
                                  SmallVectorImpl<int64_t> &program,
                                  unsigned depth) const {
  if (std::optional<APInt> known = evaluate(value)) {
    push(program, PlanOp::Const);
    program.push_back(known->getSExtValue());
    return success();
  }
  Operation *op = value.getDefiningOp();
  if (!op || depth > 64)
    return failure();
  if (auto dim = dyn_cast<memref::DimOp>(op)) {
    std::optional<int64_t> index = constantIndex(dim.getIndex());
    if (!index)
      return failure();
    return appendViewSize(dim.getSource(), *index, program);
  }
  // A select on a condition known now (every tensor map encoded) is its
  // branch.
  if (auto select = dyn_cast<arith::SelectOp>(op)) {
    if (std::optional<APInt> condition = evaluate(select.getCondition()))
      return append(condition->isZero() ? select.getFalseValue()
                                        : select.getTrueValue(),
                    program, depth + 1);
    if (failed(append(select.getCondition(), program, depth + 1)) ||
        failed(append(select.getTrueValue(), program, depth + 1)) ||
        failed(append(select.getFalseValue(), program, depth + 1)))
      return failure();
    push(program, PlanOp::Select);
    return success();
  }
  // Sizes fit any of the integer types host code casts them to.
  if (isa<arith::IndexCastOp, arith::IndexCastUIOp, arith::ExtUIOp,
          arith::ExtSIOp, arith::TruncIOp>(op))
    return append(op->getOperand(0), program, depth + 1);
  std::optional<PlanOp> binary =
      llvm::TypeSwitch<Operation *, std::optional<PlanOp>>(op)
          .Case([](arith::AddIOp) { return PlanOp::Add; })
          .Case([](arith::SubIOp) { return PlanOp::Sub; })
          .Case([](arith::MulIOp) { return PlanOp::Mul; })
          .Case([](arith::DivUIOp) { return PlanOp::DivU; })
          .Case([](arith::DivSIOp) { return PlanOp::DivS; })
          .Case([](arith::CeilDivUIOp) { return PlanOp::CeilDivU; })
          .Case([](arith::CeilDivSIOp) { return PlanOp::CeilDivS; })
          .Case([](arith::FloorDivSIOp) { return PlanOp::FloorDivS; })
          .Case([](arith::RemUIOp) { return PlanOp::RemU; })
          .Case([](arith::RemSIOp) { return PlanOp::RemS; })
          .Case([](arith::MinUIOp) { return PlanOp::MinU; })
          .Case([](arith::MaxUIOp) { return PlanOp::MaxU; })
          .Case([](arith::MinSIOp) { return PlanOp::MinS; })
          .Case([](arith::MaxSIOp) { return PlanOp::MaxS; })
          .Case([](arith::CmpIOp) { return PlanOp::Cmp; })
          .Default([](Operation *) { return std::nullopt; });
  if (!binary || op->getNumOperands() != 2)
    return failure();
  if (failed(append(op->getOperand(0), program, depth + 1)) ||
      failed(append(op->getOperand(1), program, depth + 1)))
    return failure();
  push(program, *binary);
  if (auto cmp = dyn_cast<arith::CmpIOp>(op))
    program.push_back(static_cast<int64_t>(cmp.getPredicate()));
  return success();
}

/// What a launch's plan entry is built into: its values, and for those
/// computed from the sizes, their programs ({field, index, program}).
struct PlanValues {
  SmallVector<int64_t> params, paramArgs, maps;
  SmallVector<Attribute> exprs;
};

/// A plan entry's expression: `program` computes `field`[`index`] (a
/// guard's index only numbers it).
static DictionaryAttr getExprAttr(MLIRContext *ctx, StringRef field,
                                  int64_t index, ArrayRef<int64_t> program) {
  Builder b(ctx);
  return b.getDictionaryAttr({
      b.getNamedAttr("field", b.getStringAttr(field)),
      b.getNamedAttr("index", b.getI64IntegerAttr(index)),
      b.getNamedAttr("program", b.getDenseI64ArrayAttr(program)),
  });
}

/// Records the program of `value` as field `field`[`index`] of a plan
/// entry, or its constant in `slot` where it has one now; fails if it is
/// neither.
static LogicalResult planValue(const ExprBuilder &exprs, Value value,
                               StringRef field, int64_t index, int64_t &slot,
                               SmallVectorImpl<Attribute> &programs) {
  if (std::optional<int64_t> known = constantIndex(value)) {
    slot = *known;
    return success();
  }
  SmallVector<int64_t> program;
  if (failed(exprs.append(value, program)))
    return failure();
  slot = 0;
  programs.push_back(getExprAttr(value.getContext(), field, index, program));
  return success();
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
/// i64 its value. Fails unless all but the pointers are known now or are
/// functions of the arguments' sizes (a memref with dynamic sizes must be
/// the argument itself), and for operands of other types (their parameters
/// are not 8 bytes wide).
static LogicalResult appendParams(const ExprBuilder &exprs, Value operand,
                                  PlanValues &plan) {
  if (operand.getType().isIndex() || operand.getType().isInteger(64)) {
    int64_t value = 0;
    if (failed(planValue(exprs, operand, "params", plan.params.size(), value,
                         plan.exprs)))
      return failure();
    plan.params.push_back(value);
    plan.paramArgs.push_back(-1);
    return success();
  }
  auto type = dyn_cast<MemRefType>(operand.getType());
  if (!type || type.getMemorySpace())
    return failure();
  BlockArgument arg = viewedArgument(operand);
  if (!arg)
    return failure();
  int64_t number = arg.getArgNumber();
  if (type.hasStaticShape()) {
    int64_t offset;
    SmallVector<int64_t> strides;
    if (failed(type.getStridesAndOffset(strides, offset)) ||
        ShapedType::isDynamic(offset) ||
        llvm::any_of(strides, ShapedType::isDynamic))
      return failure();
    plan.params.append({0, 0, offset});
    plan.paramArgs.append({number, number, -1});
    llvm::append_range(plan.params, type.getShape());
    llvm::append_range(plan.params, strides);
    plan.paramArgs.append(2 * type.getRank(), -1);
    return success();
  }
  // Dynamic sizes: the argument itself or collapsed views of it (identity
  // layouts, offset 0), whose sizes are the plan's inputs or products of
  // them, and whose strides are products of the sizes.
  if (!type.getLayout().isIdentity())
    return failure();
  for (Value view = operand; view != arg;) {
    auto collapse = view.getDefiningOp<memref::CollapseShapeOp>();
    if (!collapse)
      return failure();
    view = collapse.getSrc();
  }
  plan.params.append({0, 0, 0});
  plan.paramArgs.append({number, number, -1});
  auto record = [&](ArrayRef<int64_t> program) {
    plan.exprs.push_back(getExprAttr(operand.getContext(), "params",
                                     plan.params.size(), program));
    plan.params.push_back(0);
    plan.paramArgs.push_back(-1);
  };
  int64_t rank = type.getRank();
  for (int64_t dim = 0; dim < rank; ++dim) {
    if (!type.isDynamicDim(dim)) {
      plan.params.push_back(type.getDimSize(dim));
      plan.paramArgs.push_back(-1);
      continue;
    }
    SmallVector<int64_t> program;
    if (failed(exprs.appendViewSize(operand, dim, program)))
      return failure();
    record(program);
  }
  for (int64_t dim = 0; dim < rank; ++dim) {
    ArrayRef<int64_t> inner = type.getShape().drop_front(dim + 1);
    if (llvm::none_of(inner, ShapedType::isDynamic)) {
      int64_t stride = 1;
      for (int64_t size : inner)
        stride *= size;
      plan.params.push_back(stride);
      plan.paramArgs.push_back(-1);
      continue;
    }
    SmallVector<int64_t> program = {static_cast<int64_t>(PlanOp::Const), 1};
    for (int64_t j = dim + 1; j < rank; ++j) {
      if (failed(exprs.appendViewSize(operand, j, program)))
        return failure();
      push(program, PlanOp::Mul);
    }
    record(program);
  }
  return success();
}

/// Appends the tensor-map parameter `operand` (a pointer to a map host code
/// encodes) to the params as a placeholder and its description to the
/// maps: [parameter, argument, element bytes, rows, columns, row stride,
/// box rows, box columns, swizzle]. Fails unless the map is of a function
/// argument with every other field known now or a function of the sizes.
static LogicalResult appendTensorMap(const ExprBuilder &exprs, Value operand,
                                     PlanValues &plan) {
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
  plan.maps.push_back(static_cast<int64_t>(plan.params.size()));
  plan.maps.push_back(arg.getArgNumber());
  for (unsigned i = 2; i < kTensorMapEncodeOperands; ++i) {
    int64_t field = 0;
    if (failed(planValue(exprs, encode->getOperand(i), "tensor_maps",
                         plan.maps.size(), field, plan.exprs)) ||
        field < 0)
      return failure();
    plan.maps.push_back(field);
  }
  plan.params.push_back(0);
  plan.paramArgs.push_back(-1);
  return success();
}

/// Whether `value` is the device's SM count host code asked the runtime.
static bool isMultiprocessorCount(Value value) {
  auto cast = value.getDefiningOp<arith::IndexCastUIOp>();
  return cast && isRuntimeCall(cast.getIn().getDefiningOp(),
                               kMultiprocessorCountFnName);
}

/// k if `value` is (SMs of the device) · k with k constant: how host code
/// sizes a persistent grid (the product folds away for k = 1), possibly
/// rounded down to whole clusters, (SMs · k) / c · c, which the runtime
/// repeats from the kernel's required cluster width.
static std::optional<int64_t> matchBlocksPerSm(Value value) {
  if (isMultiprocessorCount(value))
    return 1;
  auto mul = value.getDefiningOp<arith::MulIOp>();
  if (!mul)
    return std::nullopt;
  if (auto div = mul.getLhs().getDefiningOp<arith::DivUIOp>()) {
    std::optional<int64_t> c = constantIndex(div.getRhs());
    if (c && *c > 1 && constantIndex(mul.getRhs()) == c)
      return matchBlocksPerSm(div.getLhs());
  }
  for (auto [count, factor] : {std::pair(mul.getLhs(), mul.getRhs()),
                               std::pair(mul.getRhs(), mul.getLhs())}) {
    std::optional<int64_t> k = constantIndex(factor);
    if (k && *k > 0 && isMultiprocessorCount(count))
      return k;
  }
  return std::nullopt;
}

/// The plan entry of `launch`, which runs where every one of `guards` holds,
/// or null if it cannot be replayed without host code.
static DictionaryAttr planLaunch(const ExprBuilder &exprs,
                                 gpu::LaunchFuncOp launch,
                                 ArrayRef<SmallVector<int64_t>> guards) {
  if (launch.getAsyncToken() || !launch.getAsyncDependencies().empty() ||
      launch.hasClusterSize())
    return {};
  PlanValues plan;
  Builder b(launch.getContext());
  for (auto [i, program] : llvm::enumerate(guards))
    plan.exprs.push_back(getExprAttr(launch.getContext(), "guard", i, program));
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
  SmallVector<Value, 3> gridSizes = {gridX, launch.getGridSizeY(),
                                     launch.getGridSizeZ()};
  for (auto [i, v] : llvm::enumerate(gridSizes)) {
    int64_t n = 0;
    if (failed(planValue(exprs, v, "grid", i, n, plan.exprs)))
      return {};
    bool computed = !constantIndex(v);
    if (!computed && (n <= 0 || n > std::numeric_limits<uint32_t>::max()))
      return {};
    grid.push_back(n);
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
  for (Value operand : launch.getKernelOperands()) {
    if (isa<LLVM::LLVMPointerType>(operand.getType())) {
      if (failed(appendTensorMap(exprs, operand, plan)))
        return {};
    } else if (failed(appendParams(exprs, operand, plan))) {
      return {};
    }
  }
  SmallVector<NamedAttribute> fields = {
      b.getNamedAttr("module", launch.getKernelModuleName()),
      b.getNamedAttr("kernel", launch.getKernelName()),
      b.getNamedAttr("grid", b.getDenseI64ArrayAttr(grid)),
      b.getNamedAttr("block", b.getDenseI64ArrayAttr(block)),
      b.getNamedAttr("shared_memory", b.getI64IntegerAttr(sharedMemory)),
      b.getNamedAttr("params", b.getDenseI64ArrayAttr(plan.params)),
      b.getNamedAttr("param_args", b.getDenseI64ArrayAttr(plan.paramArgs)),
      b.getNamedAttr("tensor_maps", b.getDenseI64ArrayAttr(plan.maps)),
      b.getNamedAttr("grid_per_sm", b.getI64IntegerAttr(gridPerSm)),
  };
  if (!plan.exprs.empty())
    fields.push_back(b.getNamedAttr("exprs", b.getArrayAttr(plan.exprs)));
  return b.getDictionaryAttr(fields);
}

/// Appends to `launches` the plan entries of the ops of `block`, which run
/// where every one of `guards` (programs) is nonzero; fails if any of its
/// host work is more than launching.
static LogicalResult planBlock(const ExprBuilder &exprs, Block &block,
                               SmallVectorImpl<SmallVector<int64_t>> &guards,
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
    // the data pointers are: known now, or a function of the sizes that
    // the plan keeps.
    if (auto guard = dyn_cast<scf::IfOp>(op)) {
      if (guard.getNumResults() != 0)
        return failure();
      Block *otherwise = guard.getElseRegion().empty()
                             ? nullptr
                             : &guard.getElseRegion().front();
      if (std::optional<APInt> condition = evaluate(guard.getCondition())) {
        Block *taken =
            condition->isZero() ? otherwise : &guard.getThenRegion().front();
        if (taken && failed(planBlock(exprs, *taken, guards, launches)))
          return failure();
        continue;
      }
      SmallVector<int64_t> program;
      if (failed(exprs.append(guard.getCondition(), program)))
        return failure();
      guards.push_back(program);
      LogicalResult planned =
          planBlock(exprs, guard.getThenRegion().front(), guards, launches);
      guards.pop_back();
      if (failed(planned))
        return failure();
      if (otherwise) {
        // The else branch runs where the condition is 0.
        program.append({static_cast<int64_t>(PlanOp::Const), 0,
                        static_cast<int64_t>(PlanOp::Cmp),
                        static_cast<int64_t>(arith::CmpIPredicate::eq)});
        guards.push_back(program);
        planned = planBlock(exprs, *otherwise, guards, launches);
        guards.pop_back();
        if (failed(planned))
          return failure();
      }
      continue;
    }
    auto launch = dyn_cast<gpu::LaunchFuncOp>(op);
    if (!launch)
      return failure();
    DictionaryAttr entry = planLaunch(exprs, launch, guards);
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
  ExprBuilder exprs(func);
  SmallVector<SmallVector<int64_t>> guards;
  SmallVector<Attribute> launches;
  if (failed(planBlock(exprs, func.getBody().front(), guards, launches)))
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
