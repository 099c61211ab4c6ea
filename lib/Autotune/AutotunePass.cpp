//===- AutotunePass.cpp - tiles from the tuning cache or the cost model ---===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Autotune/Autotune.h"
#include "fusedops/Autotune/Passes.h"

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"
#include "mlir/AsmParser/AsmParser.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/FormatVariadic.h"

namespace mlir::fusedops {
#define GEN_PASS_DEF_FUSEDOPSAUTOTUNE
#include "fusedops/Autotune/Passes.h.inc"
} // namespace mlir::fusedops

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::autotune;

/// Parses `text` as a #fusedops.tile<...>, or returns null with `error`.
static TileConfigAttr parseTile(StringRef text, MLIRContext *ctx,
                                std::string &error) {
  // Parse errors go to the context's handler; keep them as the message.
  std::string messages;
  Attribute attr;
  {
    ScopedDiagnosticHandler handler(ctx, [&](Diagnostic &diag) {
      messages += diag.str();
      return success();
    });
    attr = parseAttribute(text, ctx);
  }
  auto tile = dyn_cast_or_null<TileConfigAttr>(attr);
  if (!tile)
    error = "'" + text.str() + "' is not a #fusedops.tile<...>" +
            (messages.empty() ? "" : ": " + messages);
  return tile;
}

namespace {
struct FusedOpsAutotunePass
    : public fusedops::impl::FusedOpsAutotuneBase<FusedOpsAutotunePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    std::optional<KernelTarget> target = KernelTarget::parse(chip);
    if (!target) {
      module.emitError() << "fusedops-autotune: unsupported chip '" << chip
                         << "'; use " << getKnownChipNames();
      return signalPassFailure();
    }
    TileConfigAttr forced;
    if (!force.empty()) {
      std::string error;
      forced = parseTile(force, ctx, error);
      if (!forced) {
        module.emitError() << "fusedops-autotune: force=" << error;
        return signalPassFailure();
      }
    }
    TuningCache tuningCache;
    if (!cache.empty()) {
      std::string warning;
      tuningCache = TuningCache::load(cache, warning);
      if (!warning.empty())
        module.emitWarning() << warning;
    }

    bool failedAny = false;
    module.walk([&](TileConfigurableOpInterface op) {
      if (op.getTileConfig())
        return; // The user's tile.
      if (failed(chooseTile(op, *target, forced, tuningCache)))
        failedAny = true;
    });
    if (failedAny)
      signalPassFailure();
  }

  LogicalResult chooseTile(TileConfigurableOpInterface op,
                           const KernelTarget &target, TileConfigAttr forced,
                           const TuningCache &tuningCache) {
    const KernelStrategy *strategy = selectKernelStrategy(op, target);
    if (!strategy)
      return success(); // The conversion reports it.
    if (forced) {
      std::string reason;
      if (!acceptsTile(*strategy, op, forced, target, reason))
        return op->emitError() << "fusedops-autotune: forced tile " << forced
                               << " does not fit: " << reason;
      op.setTileConfig(forced);
      if (remarks)
        op->emitRemark() << "tile " << forced << " forced";
      return success();
    }
    TuningKey key = getTuningKey(op, target.chip, compiler);
    if (const TuningEntry *entry = tuningCache.lookup(key, driver)) {
      std::string reason;
      TileConfigAttr tile = parseTile(entry->tile, op->getContext(), reason);
      if (tile && acceptsTile(*strategy, op, tile, target, reason)) {
        op.setTileConfig(tile);
        if (remarks)
          op->emitRemark() << "tile " << tile << " from the tuning cache ("
                           << llvm::formatv("{0:f1}", entry->microseconds).str()
                           << " us measured on " << entry->device << ", driver "
                           << entry->driver << ")";
        return success();
      }
      op->emitWarning() << "fusedops-autotune: ignoring cached tile '"
                        << entry->tile << "' for " << key.str() << ": "
                        << reason << "; using the cost model";
    }
    FailureOr<TileRanking> ranking = rankTiles(op, target);
    if (failed(ranking) || ranking->accepted.empty())
      return success(); // No tile fits: the conversion reports the op.
    const RankedTile &best = ranking->accepted.front();
    op.setTileConfig(best.tile);
    if (remarks)
      op->emitRemark() << "tile " << best.tile << " from the cost model ("
                       << llvm::formatv("{0:f1}", best.cost.seconds * 1e6).str()
                       << " us predicted, " << best.cost.limiter << "-bound; "
                       << ranking->accepted.size() << " candidates, "
                       << ranking->rejected.size() << " rejected)";
    return success();
  }
};
} // namespace
