//===- FusedOpsDialect.cpp - fusedops dialect and attributes --------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"

#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::fusedops;

#include "fusedops/Dialect/FusedOps/IR/FusedOpsDialect.cpp.inc"
#include "fusedops/Dialect/FusedOps/IR/FusedOpsEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "fusedops/Dialect/FusedOps/IR/FusedOpsAttrs.cpp.inc"

void FusedOpsDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "fusedops/Dialect/FusedOps/IR/FusedOpsAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "fusedops/Dialect/FusedOps/IR/FusedOpsOps.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// Discardable attributes
//===----------------------------------------------------------------------===//

std::optional<int64_t> mlir::fusedops::getRowsHint(Operation *op) {
  auto hint = op->getAttrOfType<IntegerAttr>(kRowsHintAttrName);
  if (!hint)
    return std::nullopt;
  return hint.getValue().getSExtValue();
}

LogicalResult FusedOpsDialect::verifyOperationAttribute(Operation *op,
                                                        NamedAttribute attr) {
  if (attr.getName() != kRowsHintAttrName)
    return success(); // The passes' own attributes (launch plans, ...).
  constexpr int64_t kMaxRows = int64_t(1) << 48;
  auto hint = dyn_cast<IntegerAttr>(attr.getValue());
  if (!hint || !hint.getType().isSignlessInteger(64) ||
      hint.getValue().getSExtValue() < 1 ||
      hint.getValue().getSExtValue() >= kMaxRows)
    return op->emitError() << "'" << kRowsHintAttrName
                           << "' must be an i64 row count in [1, 2^48), got "
                           << attr.getValue();
  auto tileable = dyn_cast<TileConfigurableOpInterface>(op);
  auto input = op->getNumOperands()
                   ? dyn_cast<ShapedType>(op->getOperand(0).getType())
                   : ShapedType();
  if (!tileable || !input || !input.hasRank() || input.getRank() < 1)
    return op->emitError() << "'" << kRowsHintAttrName
                           << "' belongs on a fusedops op with rows";
  if (llvm::none_of(input.getShape().drop_back(), ShapedType::isDynamic))
    return op->emitError() << "'" << kRowsHintAttrName
                           << "' is for dynamic rows; this op's rows are "
                              "static (its first operand is "
                           << input << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// TileConfigAttr
//===----------------------------------------------------------------------===//

/// Hopper allows clusters of up to 16 thread blocks (8 portably).
static constexpr int64_t kMaxClusterSize = 16;
/// 1024 threads per block is the CUDA limit on every supported chip.
static constexpr int64_t kMaxWarps = 32;
/// Bounds that keep every resource estimate (products of block sizes,
/// stages and element bytes) far inside int64: 2^24 elements a tile
/// dimension (a whole row of 16M elements), 64 pipeline stages (a GPU's
/// shared memory holds fewer than 32 of the smallest useful stage).
static constexpr int64_t kMaxBlockSize = int64_t(1) << 24;
static constexpr int64_t kMaxStages = 64;

LogicalResult TileConfigAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                     ArrayRef<int64_t> block, int64_t warps,
                                     int64_t stages, ArrayRef<int64_t> cluster) {
  if (block.empty() || block.size() > 3)
    return emitError() << "'block' must list 1 to 3 tile sizes, got "
                       << block.size();
  for (int64_t size : block)
    if (size <= 0 || size > kMaxBlockSize)
      return emitError() << "'block' sizes must be in [1, " << kMaxBlockSize
                         << "], got " << size;
  if (warps <= 0 || warps > kMaxWarps || !llvm::isPowerOf2_64(warps))
    return emitError() << "'warps' must be a power of two in [1, " << kMaxWarps
                       << "], got " << warps;
  if (stages < 1 || stages > kMaxStages)
    return emitError() << "'stages' must be in [1, " << kMaxStages << "], got "
                       << stages;
  if (cluster.size() > 3)
    return emitError() << "'cluster' must have at most 3 dimensions, got "
                       << cluster.size();
  int64_t clusterSize = 1;
  for (int64_t dim : cluster) {
    if (dim <= 0)
      return emitError() << "'cluster' dimensions must be positive, got "
                         << dim;
    clusterSize *= dim;
  }
  if (clusterSize > kMaxClusterSize)
    return emitError() << "'cluster' holds " << clusterSize
                       << " thread blocks; at most " << kMaxClusterSize
                       << " are allowed";
  return success();
}

Attribute TileConfigAttr::parse(AsmParser &parser, Type) {
  SMLoc start = parser.getCurrentLocation();
  SmallVector<int64_t> block, cluster;
  std::optional<int64_t> warps;
  int64_t stages = 1;
  llvm::StringSet<> seen;

  auto parseList = [&](SmallVector<int64_t> &values) {
    return parser.parseCommaSeparatedList(
        AsmParser::Delimiter::Square, [&]() -> ParseResult {
          return parser.parseInteger(values.emplace_back());
        });
  };
  auto parseEntry = [&]() -> ParseResult {
    SMLoc loc = parser.getCurrentLocation();
    StringRef key;
    if (parser.parseKeyword(&key) || parser.parseEqual())
      return failure();
    if (!seen.insert(key).second)
      return parser.emitError(loc) << "tile parameter '" << key
                                   << "' is given twice";
    if (key == "block")
      return parseList(block);
    if (key == "cluster")
      return parseList(cluster);
    if (key == "warps")
      return parser.parseInteger(warps.emplace());
    if (key == "stages")
      return parser.parseInteger(stages);
    return parser.emitError(loc)
           << "unknown tile parameter '" << key
           << "'; expected 'block', 'warps', 'stages' or 'cluster'";
  };
  if (parser.parseLess() || parser.parseCommaSeparatedList(parseEntry) ||
      parser.parseGreater())
    return {};
  if (!seen.contains("block") || !warps)
    return parser.emitError(start)
               << "a tile needs 'block' and 'warps', e.g. "
                  "#fusedops.tile<block = [128, 128, 32], warps = 4>",
           Attribute();
  return getChecked([&] { return parser.emitError(start); },
                    parser.getContext(), block, *warps, stages, cluster);
}

void TileConfigAttr::print(AsmPrinter &printer) const {
  printer << "<block = [";
  llvm::interleaveComma(getBlock(), printer);
  printer << "], warps = " << getWarps();
  if (getStages() != 1)
    printer << ", stages = " << getStages();
  if (!getCluster().empty()) {
    printer << ", cluster = [";
    llvm::interleaveComma(getCluster(), printer);
    printer << "]";
  }
  printer << ">";
}
