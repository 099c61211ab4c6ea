//===- KernelBuilder.cpp - helpers shared by the kernel strategies --------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::kernel;

gpu::GPUFuncOp kernel::createKernel(OpBuilder &b, Location loc,
                                    gpu::GPUModuleOp module,
                                    StringRef baseName, TypeRange argTypes,
                                    int64_t numThreads,
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

Value kernel::collapseLeadingDims(ImplicitLocOpBuilder &b, Value memref) {
  auto type = cast<MemRefType>(memref.getType());
  if (type.getRank() <= 2)
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
