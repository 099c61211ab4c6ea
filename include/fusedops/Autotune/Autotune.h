//===- Autotune.h - choosing tiles: keys and ranked candidates --*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// What `fusedops-autotune` and the tuner share: the tuning key of an op (what
// a measured tile is valid for) and its strategy's candidate tiles, checked
// against the strategy and ranked by the cost model.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_AUTOTUNE_AUTOTUNE_H
#define FUSEDOPS_AUTOTUNE_AUTOTUNE_H

#include "fusedops/Autotune/CostModel.h"
#include "fusedops/Autotune/TuningCache.h"

namespace mlir::fusedops::autotune {

/// The key `op` (a fusedops op in buffer or tensor form) is tuned under:
/// its name, shape class (rows rounded up to a power of two; "?" when
/// dynamic), element types, attributes but the tile, `chip` and `compiler`.
TuningKey getTuningKey(Operation *op, StringRef chip, StringRef compiler);

/// A candidate tile the strategy accepts, with its predicted cost.
struct RankedTile {
  TileConfigAttr tile;
  CostEstimate cost;
};

/// A candidate tile that cannot be built or cannot run, and why.
struct RejectedTile {
  TileConfigAttr tile;
  std::string reason;
};

struct TileRanking {
  const KernelStrategy *strategy = nullptr;
  /// Fastest predicted first; equal predictions keep the strategy's order.
  SmallVector<RankedTile> accepted;
  SmallVector<RejectedTile> rejected;
};

/// The strategy serving `op` on `target`, its candidate tiles (without
/// duplicates) checked with `checkSupported` (its diagnostics become the
/// rejection reasons; none reach the context) and ranked by the cost model.
/// Fails if no strategy serves `op`.
FailureOr<TileRanking> rankTiles(Operation *op, const KernelTarget &target);

/// Whether `strategy` accepts `tile` for `op`; if not, `reason` says why.
bool acceptsTile(const KernelStrategy &strategy, Operation *op,
                 TileConfigAttr tile, const KernelTarget &target,
                 std::string &reason);

} // namespace mlir::fusedops::autotune

#endif // FUSEDOPS_AUTOTUNE_AUTOTUNE_H
