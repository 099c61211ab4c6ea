//===- Autotune.cpp - C API of the autotuner ------------------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// fusedopsTuneCandidates and fusedopsTuningCacheRecord (fusedops-c/Compiler.h)
// over fusedops/Autotune: what the tuner (python -m fusedops.tune) needs from
// the compiler, so that the candidate space, the cost model and the cache
// format live in one place.
//
//===----------------------------------------------------------------------===//

#include "fusedops-c/Compiler.h"

#include "Internal.h"

#include "fusedops/Autotune/Autotune.h"
#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"
#include "fusedops/InitFusedOps.h"
#include "fusedops/Pipelines/Pipelines.h"
#include "fusedops/Support/SourceLimits.h"
#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::autotune;

namespace {
/// A context that parses what the Python API builds, and the source parsed
/// in it with its diagnostics collected.
struct ParsedSource {
  MLIRContext context;
  std::string diagnostics;
  OwningOpRef<ModuleOp> module;

  explicit ParsedSource(StringRef source) {
    DialectRegistry registry;
    registry.insert<func::FuncDialect, memref::MemRefDialect>();
    registerAllDialects(registry);
    context.appendDialectRegistry(registry);
    llvm::raw_string_ostream os(diagnostics);
    ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
      os << diag.getLocation() << ": " << diag << "\n";
      return success();
    });
    if (std::optional<std::string> tooDeep = checkSourceNesting(source))
      diagnostics = *tooDeep;
    else
      module = parseSourceString<ModuleOp>(source, &context);
  }
};

/// `tile` (#fusedops.tile<...> text) parsed in `context`, or null with the
/// C API's error set.
TileConfigAttr parseTile(const char *tile, MLIRContext *context) {
  auto parsed = dyn_cast_or_null<TileConfigAttr>(parseAttribute(tile, context));
  if (!parsed)
    fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                     std::string("'") + tile +
                         "' is not a #fusedops.tile<...>");
  return parsed;
}

std::string print(Attribute attr) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << attr;
  return text;
}

llvm::json::Object keyToJson(const TuningKey &key) {
  return llvm::json::Object{
      {"op", key.op},         {"shape_class", key.shapeClass},
      {"dtypes", key.dtypes}, {"attributes", key.attributes},
      {"chip", key.chip},     {"compiler", key.compiler}};
}

int64_t countOps(ModuleOp module) {
  int64_t count = 0;
  module->walk([&](TileConfigurableOpInterface) { ++count; });
  return count;
}

/// The module's one fusedops op, or null if it has none or several.
Operation *getTheOp(ModuleOp module) {
  Operation *found = nullptr;
  if (countOps(module) == 1)
    module->walk([&](TileConfigurableOpInterface op) { found = op; });
  return found;
}

/// What every entry point reads: `chip`'s target and `source` parsed. Fails,
/// setting the C API's error, on an unsupported chip (checked first: parsing
/// costs more) or a source that does not parse.
fusedops_compile_status
parseChipAndSource(const char *chip, StringRef source,
                   std::optional<KernelTarget> &target,
                   std::unique_ptr<ParsedSource> &parsed) {
  target = KernelTarget::parse(chip);
  if (!target)
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                            std::string("unsupported chip '") + chip +
                                "'; use " + getKnownChipNames());
  parsed = std::make_unique<ParsedSource>(source);
  if (!parsed->module)
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE,
                            parsed->diagnostics);
  return FUSEDOPS_COMPILE_SUCCESS;
}

/// The source's one fusedops op, or null with the C API's error set: `what`
/// ("a tuning result", "a lookup") is for one op.
Operation *getTheOp(ModuleOp module, const char *what) {
  if (Operation *op = getTheOp(module))
    return op;
  fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE,
                   std::string(what) +
                       " is for one fusedops op; the source has " +
                       std::to_string(countOps(module)));
  return nullptr;
}
} // namespace

extern "C" {

fusedops_compile_status fusedopsTuneCandidates(const char *source, size_t size,
                                               const char *chip, char **json) {
  if (!source || !chip || !json)
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                            "fusedopsTuneCandidates needs source, chip and an "
                            "out pointer");
  *json = nullptr;
  std::optional<KernelTarget> target;
  std::unique_ptr<ParsedSource> parsed;
  if (fusedops_compile_status status =
          parseChipAndSource(chip, StringRef(source, size), target, parsed))
    return status;
  std::string compiler = getCompilerVersion(FusedOpsToBinaryOptions());
  llvm::json::Array ops;
  parsed->module->walk([&](TileConfigurableOpInterface op) {
    FailureOr<TileRanking> ranking = rankTiles(op, *target);
    if (failed(ranking))
      return;
    llvm::json::Array candidates, rejected;
    for (const RankedTile &tile : ranking->accepted)
      candidates.push_back(
          llvm::json::Object{{"tile", print(tile.tile)},
                             {"predicted_us", tile.cost.seconds * 1e6},
                             {"limiter", tile.cost.limiter},
                             {"blocks_per_sm", tile.cost.blocksPerSm}});
    for (const RejectedTile &tile : ranking->rejected)
      rejected.push_back(llvm::json::Object{{"tile", print(tile.tile)},
                                            {"reason", tile.reason}});
    ops.push_back(llvm::json::Object{
        {"op", op->getName().getStringRef()},
        {"strategy", ranking->strategy->getName()},
        {"key", keyToJson(getTuningKey(op, target->chip, compiler))},
        {"default", print(ranking->strategy->getDefaultTile(op, *target))},
        {"candidates", std::move(candidates)},
        {"rejected", std::move(rejected)}});
  });
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::json::Value(llvm::json::Object{{"ops", std::move(ops)}});
  *json = fusedopsCapiCopyOut(text);
  return FUSEDOPS_COMPILE_SUCCESS;
}

fusedops_compile_status fusedopsTuningCacheRecord(
    const char *path, const char *source, size_t size, const char *chip,
    const char *tile, double microseconds, int64_t candidates,
    const char *driver, const char *device, char **warning) {
  if (warning)
    *warning = nullptr;
  if (!path || !source || !chip || !tile || !driver || !device)
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                            "fusedopsTuningCacheRecord needs a path, source, "
                            "chip, tile, driver and device");
  if (!(microseconds > 0) || !std::isfinite(microseconds) || candidates < 1)
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                            "a tuning result needs a positive, finite time "
                            "and at least one candidate");
  std::optional<KernelTarget> target;
  std::unique_ptr<ParsedSource> parsed;
  if (fusedops_compile_status status =
          parseChipAndSource(chip, StringRef(source, size), target, parsed))
    return status;
  Operation *op = getTheOp(*parsed->module, "a tuning result");
  if (!op)
    return FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE;
  TileConfigAttr parsedTile = parseTile(tile, &parsed->context);
  if (!parsedTile)
    return FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT;
  TuningEntry entry;
  entry.key = getTuningKey(op, target->chip,
                           getCompilerVersion(FusedOpsToBinaryOptions()));
  entry.driver = driver;
  entry.tile = print(parsedTile);
  entry.microseconds = microseconds;
  entry.candidates = candidates;
  entry.device = device;
  std::string error, message;
  if (failed(TuningCache::record(path, {entry}, error, message)))
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT, error);
  if (warning && !message.empty())
    *warning = fusedopsCapiCopyOut(message);
  return FUSEDOPS_COMPILE_SUCCESS;
}

int fusedopsTuningCacheCheck(const char *path, char **message) {
  if (message)
    *message = nullptr;
  if (!path || !llvm::sys::fs::exists(path))
    return 0;
  std::string warning;
  TuningCache::load(path, warning);
  if (warning.empty())
    return 1;
  if (message)
    *message = fusedopsCapiCopyOut(warning);
  return -1;
}

fusedops_compile_status
fusedopsTuningCacheLookup(const char *path, const char *source, size_t size,
                          const char *chip, const char *driver, char **tile) {
  if (!path || !source || !chip || !tile)
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                            "fusedopsTuningCacheLookup needs a path, source, "
                            "chip and an out pointer");
  *tile = nullptr;
  std::optional<KernelTarget> target;
  std::unique_ptr<ParsedSource> parsed;
  if (fusedops_compile_status status =
          parseChipAndSource(chip, StringRef(source, size), target, parsed))
    return status;
  Operation *op = getTheOp(*parsed->module, "a lookup");
  if (!op)
    return FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE;
  std::string warning;
  TuningCache cache = TuningCache::load(path, warning);
  TuningKey key = getTuningKey(op, target->chip,
                               getCompilerVersion(FusedOpsToBinaryOptions()));
  if (const TuningEntry *entry = cache.lookup(key, driver ? driver : ""))
    *tile = fusedopsCapiCopyOut(entry->tile);
  return FUSEDOPS_COMPILE_SUCCESS;
}

fusedops_compile_status fusedopsSetTile(const char *source, size_t size,
                                        const char *tile, char **out) {
  if (!source || !tile || !out)
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                            "fusedopsSetTile needs a source, a tile and an "
                            "out pointer");
  *out = nullptr;
  ParsedSource parsed{StringRef(source, size)};
  if (!parsed.module)
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE,
                            parsed.diagnostics);
  Operation *op = getTheOp(*parsed.module, "a tile");
  if (!op)
    return FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE;
  TileConfigAttr parsedTile = parseTile(tile, &parsed.context);
  if (!parsedTile)
    return FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT;
  if (op->hasAttr("tile"))
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE,
                            "the op already has a tile");
  op->setAttr("tile", parsedTile);
  std::string text;
  llvm::raw_string_ostream os(text);
  parsed.module->print(os);
  *out = fusedopsCapiCopyOut(text);
  return FUSEDOPS_COMPILE_SUCCESS;
}

} // extern "C"
