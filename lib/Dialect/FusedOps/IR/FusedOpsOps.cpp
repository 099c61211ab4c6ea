//===- FusedOpsOps.cpp - fusedops op verifiers, folds and patterns --------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace mlir;
using namespace mlir::fusedops;

//===----------------------------------------------------------------------===//
// Shared helpers
//===----------------------------------------------------------------------===//

std::optional<double> mlir::fusedops::getFp8MaxFinite(Type type) {
  if (isa<Float8E4M3FNType>(type))
    return 448.0;
  if (isa<Float8E5M2Type>(type))
    return 57344.0;
  return std::nullopt;
}

/// Each scale of the `block128` granularity covers this many rows and columns.
static constexpr int64_t kScaleBlock = 128;

SmallVector<int64_t> mlir::fusedops::getScaleShape(ScaleGranularity granularity,
                                                   int64_t rows, int64_t cols) {
  auto blocks = [](int64_t size) {
    return ShapedType::isDynamic(size)
               ? ShapedType::kDynamic
               : static_cast<int64_t>(llvm::divideCeil(size, kScaleBlock));
  };
  switch (granularity) {
  case ScaleGranularity::tensor:
    return {};
  case ScaleGranularity::row:
    return {rows};
  case ScaleGranularity::block128:
    return {blocks(rows), blocks(cols)};
  }
  llvm_unreachable("unknown scale granularity");
}

SmallVector<Type> mlir::fusedops::getDestinationResultTypes(ValueRange inits) {
  SmallVector<Type> types;
  for (Value init : inits)
    if (isa<RankedTensorType>(init.getType()))
      types.push_back(init.getType());
  return types;
}

Operation *mlir::fusedops::cloneWithNewOperands(OpBuilder &builder,
                                                Operation *op,
                                                ValueRange operands,
                                                TypeRange resultTypes) {
  OperationState state(op->getLoc(), op->getName(), operands, resultTypes,
                       llvm::to_vector(op->getDiscardableAttrs()));
  state.propertiesAttr = op->getPropertiesAsAttribute();
  return builder.create(state);
}

namespace {
/// Checks the types of one op's operands and reports the first mismatch with
/// the operand's name and what was expected.
class OperandChecker {
public:
  explicit OperandChecker(Operation *op) : op(op) {}

  static bool isFloatElement(Type type) {
    return type.isF16() || type.isBF16() || type.isF32();
  }
  /// The tensor-core operand types (f16 and bf16).
  static bool isTensorCoreElement(Type type) {
    return type.isF16() || type.isBF16();
  }
  static bool isFp8Element(Type type) {
    return getFp8MaxFinite(type).has_value();
  }

  /// `name` must have rank `rank`.
  LogicalResult rank(StringRef name, Value value, int64_t rank) {
    auto type = cast<ShapedType>(value.getType());
    if (type.getRank() != rank)
      return op->emitOpError() << "expects '" << name << "' to have rank "
                               << rank << ", got " << type;
    return success();
  }

  /// `name` must have rank at least `rank`.
  LogicalResult minRank(StringRef name, Value value, int64_t rank,
                        StringRef why) {
    auto type = cast<ShapedType>(value.getType());
    if (type.getRank() < rank)
      return op->emitOpError()
             << "expects '" << name << "' to have rank >= " << rank << " ("
             << why << "), got " << type;
    return success();
  }

  /// `name` must have shape `shape` (dynamic sizes on either side match any).
  LogicalResult shape(StringRef name, Value value, ArrayRef<int64_t> shape,
                      StringRef what) {
    auto type = cast<ShapedType>(value.getType());
    bool ok = type.getRank() == static_cast<int64_t>(shape.size());
    for (auto [actual, expected] : llvm::zip(type.getShape(), shape))
      ok = ok && (ShapedType::isDynamic(actual) ||
                  ShapedType::isDynamic(expected) || actual == expected);
    if (ok)
      return success();
    InFlightDiagnostic diag = op->emitOpError()
                              << "expects '" << name << "' to have shape [";
    llvm::interleaveComma(shape, diag, [&](int64_t size) {
      if (ShapedType::isDynamic(size))
        diag << "?";
      else
        diag << size;
    });
    diag << "] (" << what << "), got " << type;
    return diag;
  }

  /// `name`'s element type must satisfy `pred`, described by `expected`.
  LogicalResult element(StringRef name, Value value,
                        function_ref<bool(Type)> pred, StringRef expected,
                        StringRef why = "") {
    Type type = getElementTypeOrSelf(value.getType());
    if (!pred(type)) {
      InFlightDiagnostic diag = op->emitOpError()
                                << "expects '" << name << "' to have "
                                << expected << " elements";
      if (!why.empty())
        diag << " (" << why << ")";
      return diag << ", got " << type;
    }
    return success();
  }

  /// `name`'s element type must equal `other`'s.
  LogicalResult sameElement(StringRef name, Value value, StringRef otherName,
                            Value other) {
    Type type = getElementTypeOrSelf(value.getType());
    Type expected = getElementTypeOrSelf(other.getType());
    if (type != expected)
      return op->emitOpError()
             << "expects '" << name << "' to have the element type of '"
             << otherName << "' (" << expected << "), got " << type;
    return success();
  }

  /// `name` must be f32, or of `other`'s element type.
  LogicalResult f32OrSameElement(StringRef name, Value value,
                                 StringRef otherName, Value other) {
    Type type = getElementTypeOrSelf(value.getType());
    Type otherType = getElementTypeOrSelf(other.getType());
    if (!type.isF32() && type != otherType)
      return op->emitOpError()
             << "expects '" << name << "' to have f32 elements or those of '"
             << otherName << "' (" << otherType << "), got " << type;
    return success();
  }

private:
  Operation *op;
};
} // namespace

static int64_t dimOf(Value value, int64_t dim) {
  auto type = cast<ShapedType>(value.getType());
  return type.getDimSize(dim < 0 ? type.getRank() + dim : dim);
}

/// Checks the destination-style structure shared by every fusedops op: all
/// shaped operands in one form (tensors or memrefs), `numInits` inits, and
/// one tensor result per init in tensor form, none in buffer form.
static LogicalResult verifyDestinationStyle(Operation *op, unsigned numInits,
                                            StringRef initsDescription) {
  auto dps = cast<DestinationStyleOpInterface>(op);
  if (dps.getNumDpsInits() != static_cast<int64_t>(numInits))
    return op->emitOpError()
           << "expects " << numInits << " 'outs' operand"
           << (numInits == 1 ? "" : "s") << " (" << initsDescription
           << "), got " << dps.getNumDpsInits();
  bool anyTensor = false, anyMemRef = false;
  for (Type type : op->getOperandTypes()) {
    anyTensor |= isa<RankedTensorType>(type);
    anyMemRef |= isa<MemRefType>(type);
  }
  if (anyTensor && anyMemRef)
    return op->emitOpError()
           << "expects all operands to be tensors (tensor form) or all to be "
              "memrefs (buffer form), got a mix";
  if (anyTensor) {
    if (op->getNumResults() != numInits)
      return op->emitOpError()
             << "in tensor form expects one result per 'outs' operand ("
             << numInits << "), got " << op->getNumResults();
    for (auto [index, pair] : llvm::enumerate(
             llvm::zip(op->getResultTypes(), dps.getDpsInits().getTypes()))) {
      auto [resultType, initType] = pair;
      if (resultType != initType)
        return op->emitOpError()
               << "expects result #" << index << " to have the type of its "
               << "'outs' operand (" << initType << "), got " << resultType;
    }
  } else if (op->getNumResults() != 0) {
    return op->emitOpError() << "in buffer form (memref operands) has no "
                                "results, got "
                             << op->getNumResults();
  }
  return success();
}

/// Reads of memref inputs and whole-buffer writes of memref inits: an op in
/// tensor form has no memory effects, so unused ones fold away.
static void getDestinationStyleEffects(
    DestinationStyleOpInterface op,
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  for (OpOperand *operand : op.getDpsInputOperands())
    if (isa<MemRefType>(operand->get().getType()))
      effects.emplace_back(MemoryEffects::Read::get(), operand, /*stage=*/0,
                           /*effectOnFullRegion=*/true,
                           SideEffects::DefaultResource::get());
  for (OpOperand &operand : op.getDpsInitsMutable())
    if (isa<MemRefType>(operand.get().getType()))
      effects.emplace_back(MemoryEffects::Write::get(), &operand, /*stage=*/0,
                           /*effectOnFullRegion=*/true,
                           SideEffects::DefaultResource::get());
}

/// Checks that `scale` is an f32 scale for a `[rows, cols]` matrix.
static LogicalResult verifyScale(OperandChecker &check, StringRef name,
                                 Value scale, ScaleGranularity granularity,
                                 int64_t rows, int64_t cols,
                                 StringRef matrixName) {
  if (failed(check.element(
          name, scale, [](Type t) { return t.isF32(); }, "f32")))
    return failure();
  std::string what = ("one per " + stringifyScaleGranularity(granularity) +
                      " group of '" + matrixName + "'")
                         .str();
  return check.shape(name, scale, getScaleShape(granularity, rows, cols), what);
}

LogicalResult mlir::fusedops::detail::verifyTileConfigurableOp(Operation *op) {
  auto tileable = cast<TileConfigurableOpInterface>(op);
  TileConfigAttr tile = tileable.getTileConfig();
  if (!tile)
    return success();
  unsigned most = tileable.getTileBlockRank();
  unsigned least = tileable.getMinTileBlockRank();
  size_t got = tile.getBlock().size();
  if (got < least || got > most) {
    InFlightDiagnostic diag = op->emitOpError() << "expects 'tile' to have ";
    if (least != most)
      diag << least << " to ";
    return diag << most << " block size" << (most == 1 ? "" : "s") << ", got "
                << got;
  }
  return success();
}

#define FUSEDOPS_DEFINE_EFFECTS(OpTy)                                          \
  void OpTy::getEffects(                                                       \
      SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>      \
          &effects) {                                                          \
    getDestinationStyleEffects(*this, effects);                                \
  }
FUSEDOPS_DEFINE_EFFECTS(RmsNormRopeOp)
FUSEDOPS_DEFINE_EFFECTS(RmsNormRopeGradOp)
FUSEDOPS_DEFINE_EFFECTS(RmsNormOp)
FUSEDOPS_DEFINE_EFFECTS(RmsNormGradOp)
FUSEDOPS_DEFINE_EFFECTS(GatedMlpOp)
FUSEDOPS_DEFINE_EFFECTS(GatedMlpGradOp)
FUSEDOPS_DEFINE_EFFECTS(GatedActGradOp)
FUSEDOPS_DEFINE_EFFECTS(Fp8GemmOp)
FUSEDOPS_DEFINE_EFFECTS(QuantizeOp)
FUSEDOPS_DEFINE_EFFECTS(DequantizeOp)
#undef FUSEDOPS_DEFINE_EFFECTS

static constexpr StringLiteral kFloatTypes = "f16, bf16 or f32";
static constexpr StringLiteral kTensorCoreTypes = "f16 or bf16";
static constexpr StringLiteral kFp8Types = "f8E4M3FN or f8E5M2";

/// The `outs` of the norms' backward ops, after the input's gradient: the
/// weight gradient's partial sums, `[P, hidden]` f32 with a static P >= 1,
/// and optionally the weight's gradient, `[hidden]` in the weight's type.
static LogicalResult verifyNormGradOutputs(Operation *op) {
  unsigned numInits = cast<DestinationStyleOpInterface>(op).getNumDpsInits();
  if (numInits != 2 && numInits != 3)
    return op->emitOpError()
           << "expects 2 or 3 'outs' operands (the input's gradient, the "
              "weight's partial sums and optionally the weight's gradient), "
              "got "
           << numInits;
  return verifyDestinationStyle(op, numInits,
                                "the input's gradient, the weight's partial "
                                "sums and optionally the weight's gradient");
}

static LogicalResult
verifyWeightGradPartials(Operation *op, OperandChecker &check, Value partials,
                         Value weight, Value weightGrad, int64_t hidden) {
  if (weightGrad &&
      (failed(check.rank("outs", weightGrad, 1)) ||
       failed(check.shape("outs", weightGrad, {hidden},
                          "[hidden]: the weight's gradient")) ||
       failed(check.sameElement("outs", weightGrad, "weight", weight))))
    return failure();
  if (failed(check.rank("outs", partials, 2)) ||
      failed(check.shape("outs", partials, {ShapedType::kDynamic, hidden},
                         "[P, hidden]: the weight gradient's partial sums")) ||
      failed(check.element(
          "outs", partials, [](Type t) { return t.isF32(); }, "f32")))
    return failure();
  int64_t p = cast<ShapedType>(partials.getType()).getDimSize(0);
  if (ShapedType::isDynamic(p) || p < 1)
    return op->emitOpError()
           << "expects a static number of partial sums (the first dimension "
              "of the second 'outs') of at least 1, got "
           << (ShapedType::isDynamic(p) ? std::string("?") : std::to_string(p));
  return success();
}

//===----------------------------------------------------------------------===//
// RmsNormRopeOp
//===----------------------------------------------------------------------===//

unsigned RmsNormRopeOp::getTileBlockRank() { return 2; }

/// head_dim · rotary_fraction of rmsnorm_rope or its backward.
template <typename OpTy> static int64_t getRotaryDimOf(OpTy op) {
  auto headDim = static_cast<int64_t>(op.getHeadDim());
  if (std::optional<APFloat> fraction = op.getRotaryFraction())
    return std::llround(static_cast<double>(headDim) *
                        fraction->convertToDouble());
  return headDim;
}

int64_t RmsNormRopeOp::getRotaryDim() { return getRotaryDimOf(*this); }

/// The operands and attributes rmsnorm_rope and rmsnorm_rope_grad share:
/// input, weight, the tables, positions, eps, rotary_fraction.
template <typename OpTy>
static LogicalResult verifyRmsNormRopeOperands(OpTy op, OperandChecker &check) {
  Value input = op.getInput();
  bool hasPositions = static_cast<bool>(op.getPositions());
  if (failed(check.minRank("input", input, hasPositions ? 1 : 2,
                           hasPositions ? "a hidden dimension"
                                        : "[..., seq, hidden]: without a "
                                          "'positions' operand, dimension -2 "
                                          "gives each row's position")) ||
      failed(check.element("input", input, OperandChecker::isFloatElement,
                           kFloatTypes)))
    return failure();

  auto inputType = cast<ShapedType>(input.getType());
  int64_t hidden = dimOf(input, -1);
  auto headDim = static_cast<int64_t>(op.getHeadDim());
  if (!ShapedType::isDynamic(hidden) && hidden % headDim != 0)
    return op.emitOpError()
           << "expects the hidden size of 'input' (" << hidden
           << ") to be a multiple of head_dim (" << headDim << ")";

  double eps = op.getEps().convertToDouble();
  if (!std::isfinite(eps) || eps < 0)
    return op.emitOpError()
           << "expects 'eps' to be finite and >= 0, got " << eps;

  int64_t rotaryDim = headDim;
  if (std::optional<APFloat> fractionAttr = op.getRotaryFraction()) {
    double fraction = fractionAttr->convertToDouble();
    if (!(fraction > 0.0 && fraction <= 1.0))
      return op.emitOpError()
             << "expects 'rotary_fraction' in (0, 1], got " << fraction;
    double exact = static_cast<double>(headDim) * fraction;
    rotaryDim = std::llround(exact);
    if (std::abs(exact - static_cast<double>(rotaryDim)) > 1e-3)
      return op.emitOpError() << "expects head_dim * rotary_fraction to be a "
                                 "whole number of dimensions, got "
                              << exact;
  }
  if (rotaryDim <= 0 || rotaryDim % 2 != 0)
    return op.emitOpError() << "expects an even, positive number of rotated "
                               "dimensions per head (head_dim * "
                               "rotary_fraction), got "
                            << rotaryDim;

  if (failed(check.shape("weight", op.getWeight(), {hidden},
                         "the hidden size of 'input'")) ||
      failed(check.sameElement("weight", op.getWeight(), "input", input)))
    return failure();

  for (auto [name, table] : {std::pair<StringRef, Value>{"cos", op.getCos()},
                             {"sin", op.getSin()}}) {
    if (failed(check.rank(name, table, 2)) ||
        failed(check.shape(name, table, {ShapedType::kDynamic, rotaryDim},
                           "[max positions, rotated dims per head]")) ||
        failed(check.f32OrSameElement(name, table, "input", input)))
      return failure();
  }
  if (failed(check.shape("sin", op.getSin(),
                         cast<ShapedType>(op.getCos().getType()).getShape(),
                         "the shape of 'cos'")) ||
      failed(check.sameElement("sin", op.getSin(), "cos", op.getCos())))
    return failure();

  if (Value positions = op.getPositions()) {
    if (failed(check.shape("positions", positions,
                           inputType.getShape().drop_back(),
                           "one position per row of 'input'")) ||
        failed(check.element(
            "positions", positions,
            [](Type t) {
              return t.isSignlessInteger(32) || t.isSignlessInteger(64);
            },
            "i32 or i64")))
      return failure();
  } else {
    int64_t seq = dimOf(input, -2), maxPositions = dimOf(op.getCos(), 0);
    if (!ShapedType::isDynamic(seq) && !ShapedType::isDynamic(maxPositions) &&
        seq > maxPositions)
      return op.emitOpError()
             << "expects 'cos'/'sin' to hold at least " << seq
             << (seq == 1 ? " position" : " positions")
             << " (dimension -2 of 'input'), got " << maxPositions;
  }

  return success();
}

LogicalResult RmsNormRopeOp::verify() {
  if (failed(verifyDestinationStyle(*this, 1, "the output")))
    return failure();
  OperandChecker check(*this);
  Value input = getInput(), init = getInits()[0];
  if (failed(verifyRmsNormRopeOperands(*this, check)) ||
      failed(check.shape("outs", init,
                         cast<ShapedType>(input.getType()).getShape(),
                         "the shape of 'input'")) ||
      failed(check.sameElement("outs", init, "input", input)))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// RmsNormRopeGradOp
//===----------------------------------------------------------------------===//

unsigned RmsNormRopeGradOp::getTileBlockRank() { return 1; }

int64_t RmsNormRopeGradOp::getRotaryDim() { return getRotaryDimOf(*this); }

LogicalResult RmsNormRopeGradOp::verify() {
  if (failed(verifyNormGradOutputs(*this)))
    return failure();
  OperandChecker check(*this);
  Value input = getInput();
  ArrayRef<int64_t> shape = cast<ShapedType>(input.getType()).getShape();
  if (failed(verifyRmsNormRopeOperands(*this, check)) ||
      failed(check.shape("grad", getGrad(), shape, "the shape of 'input'")) ||
      failed(check.sameElement("grad", getGrad(), "input", input)) ||
      failed(
          check.shape("outs", getInits()[0], shape, "the shape of 'input'")) ||
      failed(check.sameElement("outs", getInits()[0], "input", input)))
    return failure();
  return verifyWeightGradPartials(*this, check, getInits()[1], getWeight(),
                                  getWeightGrad(), shape.back());
}

//===----------------------------------------------------------------------===//
// RmsNormOp
//===----------------------------------------------------------------------===//

unsigned RmsNormOp::getTileBlockRank() { return 1; }

/// The operands and attributes rms_norm and rms_norm_grad share: input,
/// weight, eps, weight_offset; and `rowTensors` (name, value), each of the
/// shape and element type of `input`.
template <typename OpTy>
static LogicalResult
verifyRmsNormOperands(OpTy op, OperandChecker &check,
                      ArrayRef<std::pair<StringRef, Value>> rowTensors) {
  Value input = op.getInput();
  if (failed(check.minRank("input", input, 1, "a hidden dimension")) ||
      failed(check.element("input", input, OperandChecker::isFloatElement,
                           kFloatTypes)))
    return failure();
  auto shape = cast<ShapedType>(input.getType()).getShape();
  if (failed(check.shape("weight", op.getWeight(), {shape.back()},
                         "the hidden size of 'input'")) ||
      failed(check.sameElement("weight", op.getWeight(), "input", input)))
    return failure();
  for (auto [name, value] : rowTensors)
    if (value &&
        (failed(check.shape(name, value, shape, "the shape of 'input'")) ||
         failed(check.sameElement(name, value, "input", input))))
      return failure();

  double eps = op.getEps().convertToDouble();
  if (!std::isfinite(eps) || eps < 0)
    return op.emitOpError()
           << "expects 'eps' to be finite and >= 0, got " << eps;
  if (!std::isfinite(op.getWeightOffsetValue()))
    return op.emitOpError() << "expects 'weight_offset' to be finite, got "
                            << op.getWeightOffsetValue();
  return success();
}

LogicalResult RmsNormOp::verify() {
  Value residual = getResidual();
  if (failed(verifyDestinationStyle(
          *this, residual ? 2 : 1,
          residual ? "the output, then the sum input + residual"
                   : "the output; a second one only with 'residual'")))
    return failure();
  OperandChecker check(*this);
  SmallVector<std::pair<StringRef, Value>> rowTensors = {
      {"residual", residual}};
  for (Value init : getInits())
    rowTensors.push_back({"outs", init});
  return verifyRmsNormOperands(*this, check, rowTensors);
}

//===----------------------------------------------------------------------===//
// RmsNormGradOp
//===----------------------------------------------------------------------===//

unsigned RmsNormGradOp::getTileBlockRank() { return 1; }

LogicalResult RmsNormGradOp::verify() {
  if (failed(verifyNormGradOutputs(*this)))
    return failure();
  OperandChecker check(*this);
  if (failed(verifyRmsNormOperands(*this, check,
                                   {{"grad", getGrad()},
                                    {"residual_grad", getResidualGrad()},
                                    {"outs", getInits()[0]}})))
    return failure();
  return verifyWeightGradPartials(*this, check, getInits()[1], getWeight(),
                                  getWeightGrad(), dimOf(getInput(), -1));
}

//===----------------------------------------------------------------------===//
// GatedMlpOp
//===----------------------------------------------------------------------===//

unsigned GatedMlpOp::getTileBlockRank() { return 3; }

/// The operands gated_mlp and gated_mlp_grad share: `input [..., K]`,
/// `gate_weight` and `up_weight` [N, K], of a tensor-core element type; and
/// the shape of their `[..., N]` tensors (the output, the gradients) in
/// `outShape`.
static LogicalResult
verifyGatedGemmOperands(OperandChecker &check, Value input, Value gateWeight,
                        Value upWeight, SmallVectorImpl<int64_t> &outShape) {
  if (failed(check.minRank("input", input, 1, "[..., K]")) ||
      failed(check.element("input", input, OperandChecker::isTensorCoreElement,
                           kTensorCoreTypes,
                           "its tensor-core operand types: convert f32 "
                           "operands to one of them")) ||
      failed(check.rank("gate_weight", gateWeight, 2)))
    return failure();
  int64_t k = dimOf(input, -1), n = dimOf(gateWeight, 0);
  if (failed(check.shape("gate_weight", gateWeight, {n, k},
                         "[N, K] with K the last dimension of 'input'")) ||
      failed(check.sameElement("gate_weight", gateWeight, "input", input)) ||
      failed(check.shape("up_weight", upWeight, {n, k},
                         "the shape of 'gate_weight'")) ||
      failed(check.sameElement("up_weight", upWeight, "input", input)))
    return failure();
  outShape.assign(cast<ShapedType>(input.getType()).getShape().drop_back());
  outShape.push_back(n);
  return success();
}

static constexpr StringLiteral kGatedOutShape =
    "[..., N]: the leading dimensions of 'input' and N of the weights";

LogicalResult GatedMlpOp::verify() {
  // The output, or the output and the two pre-activations.
  if (failed(verifyDestinationStyle(*this, getInits().size() == 3 ? 3 : 1,
                                    "the output, or the output, gate and up")))
    return failure();
  OperandChecker check(*this);
  Value input = getInput();
  SmallVector<int64_t> outShape;
  if (failed(verifyGatedGemmOperands(check, input, getGateWeight(),
                                     getUpWeight(), outShape)))
    return failure();
  for (Value init : getInits())
    if (failed(check.shape("outs", init, outShape, kGatedOutShape)) ||
        failed(check.sameElement("outs", init, "input", input)))
      return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// GatedMlpGradOp
//===----------------------------------------------------------------------===//

unsigned GatedMlpGradOp::getTileBlockRank() { return 3; }

LogicalResult GatedMlpGradOp::verify() {
  if (failed(verifyDestinationStyle(*this, 2, "grad_gate and grad_up")))
    return failure();
  OperandChecker check(*this);
  Value input = getInput();
  SmallVector<int64_t> outShape;
  if (failed(verifyGatedGemmOperands(check, input, getGateWeight(),
                                     getUpWeight(), outShape)) ||
      failed(check.shape("grad", getGrad(), outShape, kGatedOutShape)) ||
      failed(check.sameElement("grad", getGrad(), "input", input)))
    return failure();
  for (Value init : getInits())
    if (failed(check.shape("outs", init, outShape, kGatedOutShape)) ||
        failed(check.sameElement("outs", init, "input", input)))
      return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// GatedActGradOp
//===----------------------------------------------------------------------===//

unsigned GatedActGradOp::getTileBlockRank() { return 1; }

LogicalResult GatedActGradOp::verify() {
  if (failed(verifyDestinationStyle(*this, 2, "grad_gate and grad_up")))
    return failure();
  OperandChecker check(*this);
  Value gate = getGate();
  if (failed(check.minRank("gate", gate, 1, "[..., N]")) ||
      failed(check.element("gate", gate, OperandChecker::isTensorCoreElement,
                           kTensorCoreTypes, "gated_mlp's types")))
    return failure();
  ArrayRef<int64_t> shape = cast<ShapedType>(gate.getType()).getShape();
  for (auto [name, value] : {std::pair<StringRef, Value>{"up", getUp()},
                             {"grad", getGrad()},
                             {"outs", getInits()[0]},
                             {"outs", getInits()[1]}})
    if (failed(check.shape(name, value, shape, "the shape of 'gate'")) ||
        failed(check.sameElement(name, value, "gate", gate)))
      return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// Fp8GemmOp
//===----------------------------------------------------------------------===//

unsigned Fp8GemmOp::getTileBlockRank() { return 3; }

LogicalResult Fp8GemmOp::verify() {
  if (failed(verifyDestinationStyle(*this, 1, "the output")))
    return failure();
  OperandChecker check(*this);
  Value lhs = getLhs(), rhs = getRhs(), init = getInits()[0];
  if (failed(check.rank("lhs", lhs, 2)) ||
      failed(
          check.element("lhs", lhs, OperandChecker::isFp8Element, kFp8Types)) ||
      failed(check.rank("rhs", rhs, 2)) ||
      failed(
          check.element("rhs", rhs, OperandChecker::isFp8Element, kFp8Types)))
    return failure();
  int64_t m = dimOf(lhs, 0), k = dimOf(lhs, 1), n = dimOf(rhs, 0);
  if (failed(check.shape("rhs", rhs, {n, k},
                         "[N, K] with K the last dimension of 'lhs'")))
    return failure();
  ScaleGranularity granularity = getGranularity();
  if (getFastAccum() && granularity == ScaleGranularity::block128)
    return emitOpError()
           << "'fast_accum' applies to tensor and row scales; block128 "
              "scales are applied to the sums of each 128 of K, which must "
              "be promoted to f32 (drop 'fast_accum')";
  if (failed(verifyScale(check, "lhs_scale", getLhsScale(), granularity, m, k,
                         "lhs")) ||
      failed(verifyScale(check, "rhs_scale", getRhsScale(), granularity, n, k,
                         "rhs")))
    return failure();
  if (failed(check.shape("outs", init, {m, n}, "[M, N]")) ||
      failed(check.element("outs", init, OperandChecker::isFloatElement,
                           kFloatTypes)))
    return failure();
  if (Value bias = getBias())
    if (failed(check.shape("bias", bias, {n}, "one per output column")) ||
        failed(check.f32OrSameElement("bias", bias, "outs", init)))
      return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// QuantizeOp
//===----------------------------------------------------------------------===//

unsigned QuantizeOp::getTileBlockRank() { return 2; }

LogicalResult QuantizeOp::verify() {
  bool transposed = isDynamic() && getInits().size() == 3;
  if (failed(verifyDestinationStyle(
          *this, isDynamic() ? (transposed ? 3 : 2) : 1,
          isDynamic() ? "dynamic: the values and the computed scales, and "
                        "with block128 scales optionally the values "
                        "transposed"
                      : "static, with a 'scale' operand: the values")))
    return failure();
  OperandChecker check(*this);
  Value input = getInput(), values = getInits()[0];
  if (failed(check.rank("input", input, 2)) ||
      failed(check.element("input", input, OperandChecker::isFloatElement,
                           kFloatTypes)))
    return failure();
  int64_t m = dimOf(input, 0), k = dimOf(input, 1);
  if (failed(check.shape("outs", values, {m, k}, "the shape of 'input'")) ||
      failed(check.element("outs", values, OperandChecker::isFp8Element,
                           kFp8Types)))
    return failure();
  Value scale = isDynamic() ? getInits()[1] : getScale();
  if (failed(verifyScale(check, isDynamic() ? "outs" : "scale", scale,
                         getGranularity(), m, k, "input")))
    return failure();
  Value transposedValues = getTransposedInit();
  if (!transposedValues)
    return success();
  if (getGranularity() != ScaleGranularity::block128)
    return emitOpError()
           << "writes the values transposed (a third 'outs') only with "
              "block128 scales, whose blocks are the same for the transpose; "
              "got "
           << stringifyScaleGranularity(getGranularity()) << " scales";
  if (failed(check.shape("outs", transposedValues, {k, getTransposedRows(m)},
                         "[K, M'] with M' the rows of 'input' rounded up to "
                         "a multiple of 16")))
    return failure();
  if (getElementTypeOrSelf(transposedValues.getType()) !=
      getElementTypeOrSelf(values.getType()))
    return emitOpError() << "expects the transposed values of the same FP8 "
                            "type as the values, got "
                         << transposedValues.getType() << " and "
                         << values.getType();
  return success();
}

LogicalResult QuantizeOp::fold(FoldAdaptor,
                               SmallVectorImpl<OpFoldResult> &results) {
  // Only quantize(dequantize(q, s), scale = s) folds, and only when the
  // dequantized values are f32 (see the op description for why that is
  // exact). Dynamic quantization recomputes the scale and does not fold.
  if (isDynamic() || getResults().empty())
    return failure();
  auto dequantize = getInput().getDefiningOp<DequantizeOp>();
  if (!dequantize || dequantize.getResults().empty() ||
      dequantize.getScale() != getScale() ||
      dequantize.getGranularity() != getGranularity() ||
      !getElementTypeOrSelf(dequantize.getResults()[0].getType()).isF32() ||
      dequantize.getInput().getType() != getResults()[0].getType())
    return failure();
  results.push_back(dequantize.getInput());
  return success();
}

//===----------------------------------------------------------------------===//
// DequantizeOp
//===----------------------------------------------------------------------===//

unsigned DequantizeOp::getTileBlockRank() { return 2; }

LogicalResult DequantizeOp::verify() {
  if (failed(verifyDestinationStyle(*this, 1, "the output")))
    return failure();
  OperandChecker check(*this);
  Value input = getInput(), init = getInits()[0];
  if (failed(check.rank("input", input, 2)) ||
      failed(check.element("input", input, OperandChecker::isFp8Element,
                           kFp8Types)))
    return failure();
  int64_t m = dimOf(input, 0), k = dimOf(input, 1);
  if (failed(verifyScale(check, "scale", getScale(), getGranularity(), m, k,
                         "input")) ||
      failed(check.shape("outs", init, {m, k}, "the shape of 'input'")) ||
      failed(check.element("outs", init, OperandChecker::isFloatElement,
                           kFloatTypes)))
    return failure();
  return success();
}

#define GET_OP_CLASSES
#include "fusedops/Dialect/FusedOps/IR/FusedOpsOps.cpp.inc"

#include "fusedops/Dialect/FusedOps/IR/FusedOpsInterfaces.cpp.inc"
