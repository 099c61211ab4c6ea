//===- KernelBuilder.cpp - helpers shared by the kernel strategies --------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"

#include "fusedops-c/Runtime.h"
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/bit.h"

#include <cmath>

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::kernel;

gpu::GPUFuncOp kernel::createKernel(OpBuilder &b, Location loc,
                                    gpu::GPUModuleOp module, StringRef baseName,
                                    TypeRange argTypes, int64_t numThreads,
                                    TypeRange workgroupBuffers) {
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(module.getBody());
  auto kernel = gpu::GPUFuncOp::create(
      b, loc, baseName, b.getFunctionType(argTypes, {}), workgroupBuffers);
  kernel->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  kernel.setKnownBlockSizeAttr(
      b.getDenseI32ArrayAttr({static_cast<int32_t>(numThreads), 1, 1}));
  // Unique the name among the module's kernels.
  SymbolTable symbolTable(module);
  symbolTable.remove(kernel);
  symbolTable.insert(kernel);
  Block &entry = kernel.getBody().front();
  b.setInsertionPointToEnd(&entry);
  gpu::ReturnOp::create(b, loc);
  return kernel;
}

MemRefType kernel::getWorkgroupBufferType(ArrayRef<int64_t> shape,
                                          Type elementType) {
  MLIRContext *ctx = elementType.getContext();
  return MemRefType::get(
      shape, elementType, MemRefLayoutAttrInterface(),
      gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup));
}

bool kernel::isContiguous(Type type) {
  auto memref = dyn_cast<MemRefType>(type);
  return memref && memref.getLayout().isIdentity();
}

/// Whether `type` lives in memory a kernel reads as global: no memory space,
/// NVPTX's 0 (generic) or 1 (global), or #gpu.address_space<global>.
static bool isGlobalMemory(MemRefType type) {
  Attribute space = type.getMemorySpace();
  if (!space)
    return true;
  if (auto gpuSpace = dyn_cast<gpu::AddressSpaceAttr>(space))
    return gpuSpace.getValue() == gpu::AddressSpace::Global;
  if (auto number = dyn_cast<IntegerAttr>(space))
    return number.getInt() == 0 || number.getInt() == 1;
  return false;
}

LogicalResult kernel::checkContiguousBuffers(Operation *op) {
  for (Value operand : op->getOperands())
    if (auto memref = dyn_cast<MemRefType>(operand.getType());
        memref && !isGlobalMemory(memref))
      return op->emitOpError()
             << "needs its buffers in global memory (no memory space, or "
                "#gpu.address_space<global>), got "
             << operand.getType()
             << "; kernels read their operands from device memory";
  for (Value operand : op->getOperands())
    if (!isContiguous(operand.getType()))
      return op->emitOpError()
             << "needs contiguous buffers (identity layout) to lower to a "
                "GPU kernel, got "
             << operand.getType()
             << "; bufferize with "
                "function-boundary-type-conversion=identity-layout-map";
  return success();
}

void kernel::launchIfRows(ImplicitLocOpBuilder &b, gpu::GPUFuncOp kernel,
                          Value rows, Value gridX, Value gridY, int64_t threads,
                          ValueRange args, int64_t dynamicSharedBytes) {
  OpBuilder::InsertionGuard guard(b);
  Value c1 = cIndex(b, 1);
  auto ifAny = scf::IfOp::create(
      b,
      arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, rows, cIndex(b, 0)),
      /*withElse=*/false);
  b.setInsertionPointToStart(ifAny.thenBlock());
  gpu::LaunchFuncOp::create(
      b, kernel, gpu::KernelDim3{gridX, gridY, c1},
      gpu::KernelDim3{cIndex(b, threads), c1, c1},
      dynamicSharedBytes
          ? Value(arith::ConstantIntOp::create(b, dynamicSharedBytes, 32))
          : Value(),
      args);
}

LLVM::LLVMFuncOp kernel::getRuntimeFunction(ImplicitLocOpBuilder &b,
                                            StringRef name,
                                            LLVM::LLVMFunctionType type) {
  auto module =
      b.getInsertionBlock()->getParentOp()->getParentOfType<ModuleOp>();
  if (auto function = module.lookupSymbol<LLVM::LLVMFuncOp>(name))
    return function;
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(module.getBody());
  return LLVM::LLVMFuncOp::create(b, name, type);
}

Value kernel::buildResidentBlocks(ImplicitLocOpBuilder &b, int64_t blocksPerSm,
                                  int64_t clusterBlocks) {
  auto count =
      getRuntimeFunction(b, kMultiprocessorCountFnName,
                         LLVM::LLVMFunctionType::get(b.getI32Type(), {}));
  Value sms = arith::IndexCastUIOp::create(
      b, b.getIndexType(),
      LLVM::CallOp::create(b, count, ValueRange{}).getResult());
  Value resident = arith::MulIOp::create(b, sms, cIndex(b, blocksPerSm));
  if (clusterBlocks > 1)
    resident = arith::MulIOp::create(
        b, arith::DivUIOp::create(b, resident, cIndex(b, clusterBlocks)),
        cIndex(b, clusterBlocks));
  return resident;
}

std::string kernel::getCooperativeKernelName(StringRef baseName) {
  return (baseName + FUSEDOPS_COOPERATIVE_MARK).str();
}

Value kernel::getGlobalPointer(ImplicitLocOpBuilder &b, Value memref) {
  MLIRContext *ctx = b.getContext();
  Value address = arith::IndexCastUIOp::create(
      b, b.getI64Type(),
      memref::ExtractAlignedPointerAsIndexOp::create(b, memref));
  return LLVM::AddrSpaceCastOp::create(
      b, LLVM::LLVMPointerType::get(ctx, /*addressSpace=*/1),
      LLVM::IntToPtrOp::create(b, LLVM::LLVMPointerType::get(ctx), address));
}

Value kernel::loadAtomicI32(ImplicitLocOpBuilder &b, Value pointer,
                            LLVM::AtomicOrdering ordering) {
  return LLVM::LoadOp::create(b, b.getI32Type(), pointer, /*alignment=*/4,
                              /*isVolatile=*/false, /*isNonTemporal=*/false,
                              /*isInvariant=*/false,
                              /*isInvariantGroup=*/false, ordering,
                              /*syncscope=*/"device");
}

void kernel::spinUntilAtLeast(ImplicitLocOpBuilder &b, Value counter,
                              Value target, LLVM::AtomicOrdering ordering) {
  Type i32 = b.getI32Type();
  auto loop = scf::WhileOp::create(b, TypeRange{}, ValueRange{});
  b.createBlock(&loop.getBefore());
  Value seen = loadAtomicI32(b, counter, ordering);
  scf::ConditionOp::create(
      b, arith::CmpIOp::create(b, arith::CmpIPredicate::ult, seen, target),
      ValueRange{});
  b.createBlock(&loop.getAfter());
  // Back off a little: every waiting block polls one L2 line.
  NVVM::NanosleepOp::create(b, arith::ConstantIntOp::create(b, i32, 32));
  scf::YieldOp::create(b);
  b.setInsertionPointAfter(loop);
}

Value kernel::andOrNull(ImplicitLocOpBuilder &b, Value lhs, Value rhs) {
  if (!lhs)
    return rhs;
  if (!rhs)
    return lhs;
  return arith::AndIOp::create(b, lhs, rhs);
}

Value kernel::selectOrZero(ImplicitLocOpBuilder &b, Value cond, Value value) {
  if (!cond)
    return value;
  return arith::SelectOp::create(
      b, cond, value,
      arith::ConstantOp::create(b,
                                cast<TypedAttr>(b.getZeroAttr(value.getType())))
          .getResult());
}

void kernel::ifThen(ImplicitLocOpBuilder &b, Value cond,
                    function_ref<void()> thenBody) {
  if (!cond) {
    thenBody();
    return;
  }
  auto ifOp = scf::IfOp::create(b, cond, /*withElse=*/false);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(ifOp.thenBlock());
  thenBody();
}

Value kernel::applyActivation(ImplicitLocOpBuilder &b, Activation activation,
                              Value g, Value *derivative) {
  auto type = cast<VectorType>(g.getType());
  auto splat = [&](float value) -> Value {
    return arith::ConstantOp::create(b, DenseElementsAttr::get(type, value));
  };
  auto mul = [&](Value x, Value y) -> Value {
    return arith::MulFOp::create(b, x, y);
  };
  auto add = [&](Value x, Value y) -> Value {
    return arith::AddFOp::create(b, x, y);
  };
  Value one = splat(1.0f), halfV = splat(0.5f);
  switch (activation) {
  case Activation::silu: {
    // g · sigmoid(g) = g / (1 + exp(−g)); act′ = s + act · (1 − s) with
    // s = sigmoid(g).
    Value e = math::ExpOp::create(b, arith::NegFOp::create(b, g));
    if (!derivative)
      return arith::DivFOp::create(b, g, add(one, e));
    Value s = arith::DivFOp::create(b, one, add(one, e));
    Value act = mul(g, s);
    *derivative = add(s, mul(act, arith::SubFOp::create(b, one, s)));
    return act;
  }
  case Activation::gelu: {
    // g · Φ(g); act′ = Φ(g) + g · φ(g), φ(g) = exp(−g²/2) / √(2π).
    Value t = math::ErfOp::create(b, mul(g, splat(0.70710678118654752f)));
    Value act = mul(mul(halfV, g), add(one, t));
    if (derivative) {
      Value density = mul(splat(0.39894228040143268f),
                          math::ExpOp::create(b, mul(splat(-0.5f), mul(g, g))));
      *derivative = add(mul(halfV, add(one, t)), mul(g, density));
    }
    return act;
  }
  case Activation::gelu_tanh: {
    // ½ g (1 + tanh(c (g + 0.044715 g³))), c = √(2/π); act′ = ½ (1 + t)
    // + ½ g (1 − t²) c (1 + 3 · 0.044715 g²).
    Value g2 = mul(g, g);
    Value g3 = mul(g2, g);
    Value inner =
        mul(splat(0.79788456080286536f), add(g, mul(splat(0.044715f), g3)));
    Value t = math::TanhOp::create(b, inner);
    Value act = mul(mul(halfV, g), add(one, t));
    if (derivative) {
      Value slope = mul(splat(0.79788456080286536f),
                        add(one, mul(splat(3 * 0.044715f), g2)));
      Value sech2 = arith::SubFOp::create(b, one, mul(t, t));
      *derivative =
          add(mul(halfV, add(one, t)), mul(mul(mul(halfV, g), sech2), slope));
    }
    return act;
  }
  }
  llvm_unreachable("unknown activation");
}

std::pair<Value, Value>
kernel::applyGatedActivationGrads(ImplicitLocOpBuilder &b,
                                  Activation activation, Value gate, Value up,
                                  Value grad) {
  Value derivative;
  Value act = applyActivation(b, activation, gate, &derivative);
  Value gradGate =
      arith::MulFOp::create(b, arith::MulFOp::create(b, grad, up), derivative);
  return {gradGate, arith::MulFOp::create(b, grad, act)};
}

LogicalResult
kernel::checkGemmOperands(Operation *op, TileConfigAttr tile, int64_t n,
                          int64_t k, int64_t elementBytes, StringRef what,
                          StringRef kernelName,
                          function_ref<std::string()> getPlanProblem) {
  if (failed(checkContiguousBuffers(op)))
    return failure();
  if (ShapedType::isDynamic(k) || ShapedType::isDynamic(n))
    return op->emitOpError() << "needs static N and K (the shape of " << what
                             << ") to lower to a GPU kernel";
  if (n == 0 || k == 0)
    return op->emitOpError()
           << "has an empty product (N = " << n << ", K = " << k << " in "
           << what << "); leave the op out for empty weights";
  if (k * elementBytes % 16 != 0)
    return op->emitOpError()
           << "needs K (" << k << ") to be a multiple of " << 16 / elementBytes
           << " for 16-byte asynchronous copies";
  if (tile.getBlock().size() != 3)
    return op->emitOpError()
           << "'tile' " << tile << " must give block = [BM, BN, BK]";
  std::string problem = getPlanProblem();
  if (!problem.empty())
    return op->emitOpError() << "'tile' " << tile << " does not fit the "
                             << kernelName << " kernel: " << problem;
  return success();
}

int64_t kernel::getMaxSharedBytes(const KernelTarget &target) {
  return target.info->maxSharedBytesPerBlock;
}

/// Where each buffer of `bufferBytes` starts in dynamic shared memory, and
/// the end.
static SmallVector<int64_t>
dynamicSharedOffsets(ArrayRef<int64_t> bufferBytes) {
  SmallVector<int64_t> offsets;
  int64_t offset = 0;
  for (int64_t bytes : bufferBytes) {
    offset = llvm::alignTo(offset, 128);
    offsets.push_back(offset);
    offset += bytes;
  }
  offsets.push_back(offset);
  return offsets;
}

int64_t kernel::getDynamicSharedBytes(ArrayRef<int64_t> bufferBytes) {
  return dynamicSharedOffsets(bufferBytes).back();
}

SmallVector<Value> kernel::carveDynamicShared(ImplicitLocOpBuilder &b,
                                              ArrayRef<MemRefType> types) {
  auto workgroup =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  auto bytes = MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                               MemRefLayoutAttrInterface(), workgroup);
  Value base = gpu::DynamicSharedMemoryOp::create(b, bytes);
  SmallVector<int64_t> sizes;
  for (MemRefType type : types)
    sizes.push_back(type.getNumElements() * type.getElementTypeBitWidth() / 8);
  SmallVector<int64_t> offsets = dynamicSharedOffsets(sizes);
  SmallVector<Value> views;
  for (auto [type, offset] : llvm::zip(types, offsets))
    views.push_back(
        memref::ViewOp::create(b, type, base, cIndex(b, offset), ValueRange{}));
  return views;
}

Value kernel::collapseLeadingDims(ImplicitLocOpBuilder &b, Value memref) {
  auto type = cast<MemRefType>(memref.getType());
  if (type.getRank() == 1) {
    int64_t size = type.getDimSize(0);
    return memref::ExpandShapeOp::create(
        b, MemRefType::get({1, size}, type.getElementType()), memref,
        ArrayRef<ReassociationIndices>{{0, 1}},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(size)});
  }
  if (type.getRank() == 2)
    return memref;
  ReassociationIndices leading;
  for (int64_t i = 0; i + 1 < type.getRank(); ++i)
    leading.push_back(i);
  SmallVector<ReassociationIndices> groups = {leading, {type.getRank() - 1}};
  return memref::CollapseShapeOp::create(b, memref, groups);
}

Value kernel::collapseToVector(ImplicitLocOpBuilder &b, Value memref) {
  auto type = cast<MemRefType>(memref.getType());
  if (type.getRank() == 1)
    return memref;
  ReassociationIndices all;
  for (int64_t i = 0; i < type.getRank(); ++i)
    all.push_back(i);
  return memref::CollapseShapeOp::create(b, memref,
                                         ArrayRef<ReassociationIndices>{all});
}

static Value warpAllReduce(ImplicitLocOpBuilder &b, Value value, bool isMax) {
  for (int32_t offset = 16; offset > 0; offset /= 2) {
    Value other = gpu::ShuffleOp::create(b, value, offset, /*width=*/32,
                                         gpu::ShuffleMode::XOR)
                      .getShuffleResult();
    value = isMax ? arith::MaximumFOp::create(b, value, other).getResult()
                  : arith::AddFOp::create(b, value, other).getResult();
  }
  return value;
}

Value kernel::warpAllReduceSum(ImplicitLocOpBuilder &b, Value value) {
  return warpAllReduce(b, value, /*isMax=*/false);
}

Value kernel::warpAllReduceMax(ImplicitLocOpBuilder &b, Value value) {
  return warpAllReduce(b, value, /*isMax=*/true);
}

/// The sums (maxima) of each of `values` over the block's `warps` warps, in
/// every thread: warp shuffles, then for several warps one exchange of them
/// all through `buffer` at `offset` after one barrier.
static SmallVector<Value> blockAllReduce(ImplicitLocOpBuilder &b,
                                         ValueRange values, int64_t warps,
                                         Value buffer, Value offset,
                                         bool isMax) {
  SmallVector<Value> results;
  for (Value value : values)
    results.push_back(warpAllReduce(b, value, isMax));
  if (warps == 1)
    return results;
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value c32 = cIndex(b, 32);
  Value lane = arith::RemUIOp::create(b, tid, c32);
  Value warp = arith::DivUIOp::create(b, tid, c32);
  // offset + i·warps + w (without adding zeros: blockAllReduceSum's IR is
  // the single-value exchange's).
  std::optional<int64_t> constantOffset = getConstantIntValue(offset);
  auto at = [&](int64_t i, Value w) -> Value {
    if (i > 0)
      w = arith::AddIOp::create(b, cIndex(b, i * warps), w);
    if (constantOffset != 0)
      w = arith::AddIOp::create(b, offset, w);
    return w;
  };
  ifThen(
      b, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, cIndex(b, 0)),
      [&] {
        for (auto [i, result] : llvm::enumerate(results))
          memref::StoreOp::create(b, result, buffer, ValueRange{at(i, warp)});
      });
  gpu::BarrierOp::create(b);
  for (auto [i, result] : llvm::enumerate(results)) {
    result = memref::LoadOp::create(b, buffer, ValueRange{at(i, cIndex(b, 0))});
    for (int64_t w = 1; w < warps; ++w) {
      Value other =
          memref::LoadOp::create(b, buffer, ValueRange{at(i, cIndex(b, w))});
      result = isMax ? arith::MaximumFOp::create(b, result, other).getResult()
                     : arith::AddFOp::create(b, result, other).getResult();
    }
  }
  return results;
}

Value kernel::blockAllReduceSum(ImplicitLocOpBuilder &b, Value value,
                                int64_t warps, Value buffer) {
  return blockAllReduce(b, value, warps, buffer, cIndex(b, 0),
                        /*isMax=*/false)
      .front();
}

SmallVector<Value> kernel::blockAllReduceSums(ImplicitLocOpBuilder &b,
                                              ValueRange values, int64_t warps,
                                              Value buffer, Value offset) {
  return blockAllReduce(b, values, warps, buffer, offset, /*isMax=*/false);
}

Value kernel::blockAllReduceMax(ImplicitLocOpBuilder &b, Value value,
                                int64_t warps, Value buffer) {
  return blockAllReduce(b, value, warps, buffer, cIndex(b, 0), /*isMax=*/true)
      .front();
}

Value kernel::cIndex(ImplicitLocOpBuilder &b, int64_t value) {
  return arith::ConstantIndexOp::create(b, value);
}

Value kernel::cF32(ImplicitLocOpBuilder &b, float value) {
  return arith::ConstantOp::create(b, b.getF32FloatAttr(value));
}

Value kernel::castFloat(ImplicitLocOpBuilder &b, Value value,
                        Type elementType) {
  Type from = getElementTypeOrSelf(value.getType());
  if (from == elementType)
    return value;
  Type to = elementType;
  if (auto vecType = dyn_cast<VectorType>(value.getType()))
    to = vecType.clone(elementType);
  if (from.getIntOrFloatBitWidth() < elementType.getIntOrFloatBitWidth())
    return arith::ExtFOp::create(b, to, value);
  return arith::TruncFOp::create(b, to, value);
}

int64_t kernel::vectorAlignment(Type elementType, int64_t numElements) {
  int64_t bytes = numElements * elementType.getIntOrFloatBitWidth() / 8;
  return std::min<int64_t>(bytes, 16);
}

//===----------------------------------------------------------------------===//
// FP8 conversions
//===----------------------------------------------------------------------===//

namespace {
/// The bit layout of an FP8 format, read off its APFloat semantics.
struct Fp8Layout {
  /// Explicit mantissa bits (3 for e4m3, 2 for e5m2).
  int32_t mantissaBits;
  /// Exponent bias (7, 15).
  int32_t bias;
  /// Unbiased exponent of the smallest normal value (1 - bias).
  int32_t minExponent;
  /// Code of +max (0x7E, 0x7B) and of the canonical quiet NaN (0x7F, 0x7E).
  uint32_t maxFiniteCode;
  uint32_t nanCode;
  /// IEEE-style specials (e5m2: all-ones exponent is inf/NaN) rather than the
  /// "FN" convention (e4m3fn: only all-ones exponent and mantissa is NaN).
  bool hasInf;
};
} // namespace

static Fp8Layout getFp8Layout(FloatType fp8Type) {
  const llvm::fltSemantics &semantics = fp8Type.getFloatSemantics();
  Fp8Layout layout;
  layout.mantissaBits =
      static_cast<int32_t>(llvm::APFloat::semanticsPrecision(semantics)) - 1;
  layout.minExponent = llvm::APFloat::semanticsMinExponent(semantics);
  layout.bias = 1 - layout.minExponent;
  layout.maxFiniteCode = static_cast<uint32_t>(
      llvm::APFloat::getLargest(semantics).bitcastToAPInt().getZExtValue());
  layout.nanCode = static_cast<uint32_t>(
      llvm::APFloat::getQNaN(semantics).bitcastToAPInt().getZExtValue());
  layout.hasInf = llvm::APFloat::semanticsHasInf(semantics);
  return layout;
}

bool kernel::isSupportedFp8Type(Type type) {
  return isa<Float8E4M3FNType, Float8E5M2Type>(type);
}

float kernel::getFp8MaxFinite(FloatType fp8Type) {
  return llvm::APFloat::getLargest(fp8Type.getFloatSemantics())
      .convertToFloat();
}

/// `like`'s shape (scalar or 1-D vector) with element type `elementType`.
static Type withElementType(Value like, Type elementType) {
  if (auto vecType = dyn_cast<VectorType>(like.getType()))
    return vecType.clone(elementType);
  return elementType;
}

/// An integer constant of type `type` (scalar or splat vector).
static Value cInt(ImplicitLocOpBuilder &b, Type type, int64_t value) {
  auto elementType = cast<IntegerType>(getElementTypeOrSelf(type));
  APInt bits(elementType.getWidth(), value, /*isSigned=*/true);
  if (auto vecType = dyn_cast<VectorType>(type))
    return arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, bits));
  return arith::ConstantOp::create(b, b.getIntegerAttr(elementType, bits));
}

/// An f32 constant of type `type` (scalar or splat vector).
static Value cFloat(ImplicitLocOpBuilder &b, Type type, float value) {
  if (auto vecType = dyn_cast<VectorType>(type))
    return arith::ConstantOp::create(b, DenseElementsAttr::get(vecType, value));
  return arith::ConstantOp::create(b, b.getF32FloatAttr(value));
}

Value kernel::convertF32ToFp8(ImplicitLocOpBuilder &b, Value value,
                              FloatType fp8Type) {
  assert(getElementTypeOrSelf(value.getType()).isF32() && "expected f32");
  assert(isSupportedFp8Type(fp8Type) && "expected f8E4M3FN or f8E5M2");
  const Fp8Layout fp8 = getFp8Layout(fp8Type);
  const int32_t m = fp8.mantissaBits;
  Type i32 = withElementType(value, b.getI32Type());
  Type f32 = value.getType();
  auto c = [&](int64_t v) { return cInt(b, i32, v); };

  Value bits = arith::BitcastOp::create(b, i32, value);
  Value abs = arith::AndIOp::create(b, bits, c(0x7fffffff));
  Value sign =
      arith::AndIOp::create(b, arith::ShRUIOp::create(b, bits, c(24)), c(0x80));

  // Normal results: round the 23-bit mantissa to m bits in place (adding
  // just under half a unit, plus the lowest kept bit for ties to even; a
  // carry moves into the exponent, as it should), then rebias the exponent.
  // Valid for |x| >= the smallest normal FP8 value; larger magnitudes
  // (inf and NaN included) give codes past the largest finite one.
  Value keptLsb =
      arith::AndIOp::create(b, arith::ShRUIOp::create(b, abs, c(23 - m)), c(1));
  int64_t rebias = (int64_t(fp8.bias) - 127) * (int64_t(1) << 23) +
                   (int64_t(1) << (22 - m)) - 1;
  Value normal = arith::ShRUIOp::create(
      b,
      arith::AddIOp::create(b, arith::AddIOp::create(b, abs, c(rebias)),
                            keptLsb),
      c(23 - m));

  // Subnormal results (|x| below the smallest normal, 2^minExponent): adding
  // 2^(minExponent - m + 23) leaves the f32 sum with a unit in the last place
  // of 2^(minExponent - m), the FP8 subnormal step, so the f32 addition does
  // the round-to-nearest-even, and the sum's low bits count the steps. The
  // largest result, 2^m, is the code of the smallest normal value.
  float magic = std::ldexp(1.0f, fp8.minExponent - m + 23);
  int64_t magicBits = llvm::bit_cast<uint32_t>(magic);
  Value shifted = arith::AddFOp::create(
      b, arith::BitcastOp::create(b, f32, abs), cFloat(b, f32, magic));
  Value subnormal = arith::SubIOp::create(
      b, arith::BitcastOp::create(b, i32, shifted), c(magicBits));

  int64_t minNormalBits = int64_t(127 + fp8.minExponent) << 23;
  Value code = arith::SelectOp::create(
      b,
      arith::CmpIOp::create(b, arith::CmpIPredicate::ult, abs,
                            c(minNormalBits)),
      subnormal, normal);
  // Saturate: finite overflow and ±inf (whose codes lie beyond) become max.
  code = arith::MinUIOp::create(b, code, c(fp8.maxFiniteCode));
  code = arith::SelectOp::create(
      b,
      arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, abs, c(0x7f800000)),
      c(fp8.nanCode), code);
  code = arith::OrIOp::create(b, code, sign);
  Value bytes =
      arith::TruncIOp::create(b, withElementType(value, b.getI8Type()), code);
  return arith::BitcastOp::create(b, withElementType(value, fp8Type), bytes);
}

Value kernel::convertFp8ToF32(ImplicitLocOpBuilder &b, Value value) {
  auto fp8Type = cast<FloatType>(getElementTypeOrSelf(value.getType()));
  assert(isSupportedFp8Type(fp8Type) && "expected f8E4M3FN or f8E5M2");
  const Fp8Layout fp8 = getFp8Layout(fp8Type);
  const int32_t m = fp8.mantissaBits;
  Type i32 = withElementType(value, b.getI32Type());
  Type f32 = withElementType(value, b.getF32Type());
  auto c = [&](int64_t v) { return cInt(b, i32, v); };

  Value bytes =
      arith::BitcastOp::create(b, withElementType(value, b.getI8Type()), value);
  Value code = arith::ExtUIOp::create(b, i32, bytes);
  Value magnitude = arith::AndIOp::create(b, code, c(0x7f));
  Value sign =
      arith::ShLIOp::create(b, arith::AndIOp::create(b, code, c(0x80)), c(24));

  // Normal codes: move exponent and mantissa into place and rebias.
  Value normal =
      arith::AddIOp::create(b, arith::ShLIOp::create(b, magnitude, c(23 - m)),
                            c(int64_t(127 - fp8.bias) << 23));
  // Subnormal codes (exponent field 0) count steps of 2^(minExponent - m):
  // placed in the low bits of 2^(minExponent - m + 23), whose last place is
  // one step, and that power of two subtracted again, exactly.
  float magic = std::ldexp(1.0f, fp8.minExponent - m + 23);
  int64_t magicBits = llvm::bit_cast<uint32_t>(magic);
  Value subnormal = arith::BitcastOp::create(
      b, i32,
      arith::SubFOp::create(
          b,
          arith::BitcastOp::create(
              b, f32, arith::AddIOp::create(b, magnitude, c(magicBits))),
          cFloat(b, f32, magic)));
  Value result = arith::SelectOp::create(
      b,
      arith::CmpIOp::create(b, arith::CmpIPredicate::ult, magnitude,
                            c(int64_t(1) << m)),
      subnormal, normal);

  // Specials: e4m3fn has NaN at 0x7F only; e5m2 has inf at 0x7C and NaN
  // above.
  const int64_t infBits = 0x7f800000, nanBits = 0x7fc00000;
  if (fp8.hasInf) {
    int64_t infCode = ((int64_t(1) << (7 - m)) - 1) << m;
    Value special = arith::SelectOp::create(
        b,
        arith::CmpIOp::create(b, arith::CmpIPredicate::eq, magnitude,
                              c(infCode)),
        c(infBits), c(nanBits));
    result = arith::SelectOp::create(
        b,
        arith::CmpIOp::create(b, arith::CmpIPredicate::uge, magnitude,
                              c(infCode)),
        special, result);
  } else {
    result = arith::SelectOp::create(
        b,
        arith::CmpIOp::create(b, arith::CmpIPredicate::eq, magnitude, c(0x7f)),
        c(nanBits), result);
  }
  result = arith::OrIOp::create(b, result, sign);
  return arith::BitcastOp::create(b, f32, result);
}
