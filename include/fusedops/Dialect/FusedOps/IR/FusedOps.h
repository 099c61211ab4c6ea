//===- FusedOps.h - fusedops dialect, attributes and ops --------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// The one header a user of the fusedops dialect includes: the dialect, its
// enums and attributes, the tile-configurable op interface and the ops.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_DIALECT_FUSEDOPS_IR_FUSEDOPS_H
#define FUSEDOPS_DIALECT_FUSEDOPS_IR_FUSEDOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "fusedops/Dialect/FusedOps/IR/FusedOpsDialect.h.inc"
#include "fusedops/Dialect/FusedOps/IR/FusedOpsEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "fusedops/Dialect/FusedOps/IR/FusedOpsAttrs.h.inc"

namespace mlir::fusedops {
class TileConfigurableOpInterface;
namespace detail {
/// Checks that an op's tile attribute fits the op (the length of `block`).
LogicalResult verifyTileConfigurableOp(Operation *op);
} // namespace detail

/// The discardable attribute of an op whose rows (its first operand's
/// leading dimensions) are dynamic: the number of rows its kernel is chosen
/// for, an integer in [1, 2^48). A compiler that serves every row count of a
/// class with one kernel sets it to the class's largest; the strategies'
/// estimates, the cost model and the tuning key (the class "M<=2^k") read it
/// as the op's rows. Without it dynamic rows are estimated as 4096.
constexpr llvm::StringLiteral kRowsHintAttrName = "fusedops.rows_hint";

/// `op`'s rows hint (kRowsHintAttrName), if it has one.
std::optional<int64_t> getRowsHint(Operation *op);

/// Largest finite magnitude of an FP8 element type (448 for f8E4M3FN, 57344
/// for f8E5M2), or std::nullopt if `type` is not one of the two.
std::optional<double> getFp8MaxFinite(Type type);

/// Expected shape of the scale operand for a `[rows, cols]` matrix at the
/// given granularity (dynamic sizes stay dynamic).
SmallVector<int64_t> getScaleShape(ScaleGranularity granularity, int64_t rows,
                                   int64_t cols);

/// Result types of a destination-style op with these inits: one per tensor
/// init (tensor form), none for memref inits (buffer form).
SmallVector<Type> getDestinationResultTypes(ValueRange inits);

/// Creates a copy of the fusedops op `op` (inherent and discardable
/// attributes included) with new operands and result types. Used to move an
/// op between its tensor and buffer forms and to refine its types; the
/// operands must keep the op's operand segments.
Operation *cloneWithNewOperands(OpBuilder &builder, Operation *op,
                                ValueRange operands, TypeRange resultTypes);
} // namespace mlir::fusedops

#include "fusedops/Dialect/FusedOps/IR/FusedOpsInterfaces.h.inc"

#define GET_OP_CLASSES
#include "fusedops/Dialect/FusedOps/IR/FusedOpsOps.h.inc"

#endif // FUSEDOPS_DIALECT_FUSEDOPS_IR_FUSEDOPS_H
