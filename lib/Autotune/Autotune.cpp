//===- Autotune.cpp - choosing tiles: keys and ranked candidates ----------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Autotune/Autotune.h"

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::autotune;

/// "M<=4096": the class of the row count of `op` (its first operand's
/// leading dimensions), or of its rows hint where they are dynamic; "M=?"
/// for dynamic rows without a hint.
static std::string rowClass(StringRef name, Operation *op) {
  auto type = cast<ShapedType>(op->getOperand(0).getType());
  int64_t rows = 1;
  for (int64_t size : type.getShape().drop_back()) {
    if (ShapedType::isDynamic(size)) {
      std::optional<int64_t> hint = getRowsHint(op);
      if (!hint)
        return (name + "=?").str();
      rows = *hint;
      break;
    }
    rows *= size;
  }
  return (name + "<=" + Twine(llvm::PowerOf2Ceil(std::max<int64_t>(rows, 1))))
      .str();
}

static std::string dim(StringRef name, Value value, int64_t index) {
  auto type = cast<ShapedType>(value.getType());
  int64_t size = type.getDimSize(index < 0 ? type.getRank() + index : index);
  return (" " + name + "=" +
          (ShapedType::isDynamic(size) ? std::string("?")
                                       : std::to_string(size)))
      .str();
}

static std::string getShapeClass(Operation *op) {
  return llvm::TypeSwitch<Operation *, std::string>(op)
      .Case<RmsNormRopeOp, RmsNormRopeGradOp>([](auto norm) {
        return rowClass("rows", norm) + dim("hidden", norm.getInput(), -1);
      })
      .Case<RmsNormOp, RmsNormGradOp>([](auto norm) {
        return rowClass("rows", norm) + dim("hidden", norm.getInput(), -1);
      })
      .Case<GatedMlpOp, GatedMlpGradOp>([](auto mlp) {
        return rowClass("M", mlp) + dim("N", mlp.getGateWeight(), 0) +
               dim("K", mlp.getGateWeight(), 1);
      })
      .Case([](GatedActGradOp grad) {
        return rowClass("M", grad) + dim("N", grad.getGate(), -1);
      })
      .Case([](Fp8GemmOp gemm) {
        return rowClass("M", gemm) + dim("N", gemm.getRhs(), 0) +
               dim("K", gemm.getRhs(), 1);
      })
      .Default([](Operation *op) {
        return rowClass("M", op) + dim("K", op->getOperand(0), -1);
      });
}

TuningKey autotune::getTuningKey(Operation *op, StringRef chip,
                                 StringRef compiler) {
  TuningKey key;
  key.op = op->getName().getStringRef().str();
  key.shapeClass = getShapeClass(op);
  llvm::raw_string_ostream types(key.dtypes);
  llvm::interleave(
      op->getOperands(), types,
      [&](Value v) { types << getElementTypeOrSelf(v.getType()); }, ",");
  llvm::raw_string_ostream attributes(key.attributes);
  // Inherent and discardable attributes alike, sorted by name; the tile is
  // what is being chosen and operand segment sizes follow from the types.
  SmallVector<NamedAttribute> attrs(op->getAttrs());
  llvm::sort(attrs, [](NamedAttribute a, NamedAttribute b) {
    return a.getName().strref() < b.getName().strref();
  });
  bool first = true;
  for (NamedAttribute attr : attrs) {
    StringRef name = attr.getName().strref();
    if (name == "tile" || name == "operandSegmentSizes")
      continue;
    attributes << (first ? "" : "; ") << name << " = " << attr.getValue();
    first = false;
  }
  key.chip = chip.str();
  key.compiler = compiler.str();
  return key;
}

bool autotune::acceptsTile(const KernelStrategy &strategy, Operation *op,
                           TileConfigAttr tile, const KernelTarget &target,
                           std::string &reason) {
  auto configurable = dyn_cast<TileConfigurableOpInterface>(op);
  if (configurable &&
      (tile.getBlock().size() < configurable.getMinTileBlockRank() ||
       tile.getBlock().size() > configurable.getTileBlockRank())) {
    unsigned least = configurable.getMinTileBlockRank(),
             most = configurable.getTileBlockRank();
    reason = "the op's tile takes " +
             (least == most ? std::string() : std::to_string(least) + " to ") +
             std::to_string(most) + " block sizes, this one has " +
             std::to_string(tile.getBlock().size());
    return false;
  }
  // The strategy reports through diagnostics; catch them as the reason.
  std::string messages;
  LogicalResult result = success();
  {
    ScopedDiagnosticHandler handler(op->getContext(), [&](Diagnostic &diag) {
      if (diag.getSeverity() == DiagnosticSeverity::Error)
        messages += (messages.empty() ? "" : "; ") + diag.str();
      return success();
    });
    result = strategy.checkSupported(op, tile, target);
  }
  if (succeeded(result))
    return true;
  reason = messages.empty() ? "the strategy rejects it" : messages;
  return false;
}

FailureOr<TileRanking> autotune::rankTiles(Operation *op,
                                           const KernelTarget &target) {
  const KernelStrategy *strategy = selectKernelStrategy(op, target);
  if (!strategy)
    return failure();
  TileRanking ranking;
  ranking.strategy = strategy;
  const ChipModel &chip = ChipModel::get(target);
  llvm::DenseSet<Attribute> seen;
  for (TileConfigAttr tile : strategy->getTileCandidates(op, target)) {
    if (!seen.insert(tile).second)
      continue;
    std::string reason;
    if (!acceptsTile(*strategy, op, tile, target, reason)) {
      ranking.rejected.push_back({tile, reason});
      continue;
    }
    KernelResources resources = strategy->estimateResources(op, tile, target);
    FailureOr<CostEstimate> cost = estimateCost(resources, chip, reason);
    if (failed(cost)) {
      ranking.rejected.push_back({tile, reason});
      continue;
    }
    ranking.accepted.push_back({tile, *cost});
  }
  std::stable_sort(ranking.accepted.begin(), ranking.accepted.end(),
                   [](const RankedTile &a, const RankedTile &b) {
                     return a.cost.seconds < b.cost.seconds;
                   });
  return ranking;
}
