//===- KernelStrategy.cpp - choosing a kernel strategy --------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Conversion/FusedOpsToGPU/KernelStrategy.h"

#include "Strategies.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>

using namespace mlir;
using namespace mlir::fusedops;

KernelStrategy::~KernelStrategy() = default;

Occupancy mlir::fusedops::getOccupancy(const KernelResources &r,
                                       const SmLimits &limits) {
  Occupancy o;
  o.registersPerThread =
      llvm::alignTo(std::max<int64_t>(r.registersPerThread, 16), 8);
  int64_t warps = llvm::divideCeil(r.threadsPerBlock, 32);
  o.registersPerBlock = warps * llvm::alignTo(o.registersPerThread * 32, 256);
  o.byRegisters =
      limits.registersPerSm / std::max<int64_t>(o.registersPerBlock, 1);
  int64_t byThreads = limits.maxThreadsPerSm / std::max<int64_t>(warps * 32, 1);
  int64_t byShared = r.sharedBytesPerBlock ? limits.sharedBytesPerSm /
                                                 (r.sharedBytesPerBlock + 1024)
                                           : limits.maxBlocksPerSm;
  o.blocksPerSm =
      std::min({limits.maxBlocksPerSm, byThreads, o.byRegisters, byShared});
  return o;
}

std::optional<KernelTarget> KernelTarget::parse(StringRef chip) {
  const ChipInfo *info = lookupChip(chip);
  if (!info)
    return std::nullopt;
  return KernelTarget{chip.str(), info};
}

/// Every strategy, most specialised first: the first that matches an op on
/// a target builds it.
static ArrayRef<std::unique_ptr<KernelStrategy>> getStrategies() {
  static const auto strategies = [] {
    std::vector<std::unique_ptr<KernelStrategy>> list;
    list.push_back(kernel::createRmsNormRopeStrategy());
    list.push_back(kernel::createRmsNormRopeGradStrategy());
    list.push_back(kernel::createRmsNormStrategy());
    list.push_back(kernel::createRmsNormGradStrategy());
    list.push_back(kernel::createSm90GatedMlpStrategy());
    list.push_back(kernel::createSm80GatedMlpStrategy());
    list.push_back(kernel::createGatedActGradStrategy());
    list.push_back(kernel::createSm90Fp8GemmStrategy());
    list.push_back(kernel::createSm89Fp8GemmStrategy());
    list.push_back(kernel::createSm80Fp8GemmStrategy());
    list.push_back(kernel::createQuantizeStrategy());
    list.push_back(kernel::createDequantizeStrategy());
    return list;
  }();
  return strategies;
}

const KernelStrategy *
mlir::fusedops::selectKernelStrategy(Operation *op,
                                     const KernelTarget &target) {
  for (const std::unique_ptr<KernelStrategy> &strategy : getStrategies())
    if (strategy->matches(op, target))
      return strategy.get();
  return nullptr;
}

int64_t mlir::fusedops::getEstimatedRows(Operation *op) {
  auto type = cast<ShapedType>(op->getOperand(0).getType());
  int64_t rows = 1;
  for (int64_t size : type.getShape().drop_back()) {
    if (ShapedType::isDynamic(size))
      return getRowsHint(op).value_or(4096);
    rows *= size;
  }
  return rows;
}
