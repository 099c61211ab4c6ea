//===- GemmEpilogues.cpp - the GEMM ops' epilogues ------------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "GemmEpilogues.h"

#include "KernelBuilder.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::kernel;

LogicalResult kernel::checkFp8GemmTile(Fp8GemmOp op, TileConfigAttr tile) {
  ArrayRef<int64_t> block = tile.getBlock();
  if (op.getGranularity() == ScaleGranularity::block128 &&
      (block.size() != 3 || 128 % block[0] != 0 || 128 % block[1] != 0 ||
       128 % block[2] != 0))
    return op->emitOpError() << "with block128 scales, 'tile' " << tile
                             << " must have BM, BN and BK dividing 128 "
                                "(one scale pair per block and K tile)";
  return success();
}

SmallVector<Value> kernel::Fp8GemmKernelArgs::get(Fp8GemmOp op) {
  SmallVector<Value> args = {op.getLhs(), op.getRhs(), op.getLhsScale(),
                             op.getRhsScale()};
  if (Value bias = op.getBias())
    args.push_back(bias);
  args.push_back(op.getInits()[0]);
  return args;
}

kernel::Fp8GemmKernelArgs
kernel::Fp8GemmKernelArgs::fromKernel(Fp8GemmOp op, gpu::GPUFuncOp kernel) {
  bool hasBias = static_cast<bool>(op.getBias());
  Fp8GemmKernelArgs args;
  args.lhs = kernel.getArgument(0);
  args.rhs = kernel.getArgument(1);
  args.lhsScale = kernel.getArgument(2);
  args.rhsScale = kernel.getArgument(3);
  args.bias = hasBias ? kernel.getArgument(4) : Value();
  args.out = kernel.getArgument(hasBias ? 5 : 4);
  return args;
}

Value kernel::loadFp8BlockScale(ImplicitLocOpBuilder &b,
                                const Fp8GemmKernelArgs &args, Value m0,
                                Value n0, Value kb) {
  Value mb = arith::DivUIOp::create(b, m0, cIndex(b, 128));
  Value nb = arith::DivUIOp::create(b, n0, cIndex(b, 128));
  return arith::MulFOp::create(
      b, memref::LoadOp::create(b, args.lhsScale, ValueRange{mb, kb}),
      memref::LoadOp::create(b, args.rhsScale, ValueRange{nb, kb}));
}

/// Accumulator pair p of `values` as a vector<2xf32>.
static Value getPair(ImplicitLocOpBuilder &b, ArrayRef<Value> values,
                     size_t p) {
  return vector::FromElementsOp::create(
      b, VectorType::get({2}, b.getF32Type()),
      ValueRange{values[2 * p], values[2 * p + 1]});
}

/// Emits `body(checked)` twice: with checked = false where every pair of
/// this thread lies inside [rowsM, n] (a whole tile: the stores need no
/// bounds checks, and no branch per pair keeps the activations and stores
/// in straight-line code), with checked = true elsewhere (the last tile row
/// or column of a ragged problem), for kernels whose rows are dynamic.
/// Without it a kernel with dynamic rows took 5-11 % longer than the static
/// one (docs/perf/shape-classes.md).
static void splitByBounds(ImplicitLocOpBuilder &b,
                          const AccumulatorPairs &pairs, Value rowsM, int64_t n,
                          function_ref<void(bool checked)> body) {
  if (pairs.size() == 0)
    return;
  // Static rows: one checked form, as the static kernels were tuned with (a
  // second form made the gated MLP's sm_90a kernel spill).
  auto dim = rowsM.getDefiningOp<memref::DimOp>();
  std::optional<int64_t> index =
      dim ? getConstantIntValue(dim.getIndex()) : std::nullopt;
  if (getConstantIntValue(rowsM) ||
      (index &&
       !cast<ShapedType>(dim.getSource().getType()).isDynamicDim(*index))) {
    body(/*checked=*/true);
    return;
  }
  llvm::SetVector<Value> rows(pairs.rows.begin(), pairs.rows.end());
  llvm::SetVector<Value> cols(pairs.cols.begin(), pairs.cols.end());
  Value maxRow = rows[0], maxCol = cols[0];
  for (Value row : rows.getArrayRef().drop_front())
    maxRow = arith::MaxUIOp::create(b, maxRow, row);
  for (Value col : cols.getArrayRef().drop_front())
    maxCol = arith::MaxUIOp::create(b, maxCol, col);
  // A pair covers columns col and col + 1.
  Value inside = arith::AndIOp::create(
      b, arith::CmpIOp::create(b, arith::CmpIPredicate::ult, maxRow, rowsM),
      arith::CmpIOp::create(b, arith::CmpIPredicate::ult,
                            arith::AddIOp::create(b, maxCol, cIndex(b, 1)),
                            cIndex(b, n)));
  auto branch = scf::IfOp::create(b, inside, /*withElseRegion=*/true);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(branch.thenBlock());
    body(/*checked=*/false);
    b.setInsertionPointToStart(branch.elseBlock());
    body(/*checked=*/true);
  }
}

/// Stores `values` (vector<2xf32>: columns col and col + 1 of `row`) into
/// `out` [M, N]: where they lie inside it, or unconditionally without
/// `checked` (splitByBounds found the whole tile inside).
static void storePair(ImplicitLocOpBuilder &b, Value values, Value out,
                      Value row, Value col, Value rowsM, int64_t n,
                      bool checked) {
  Type element = cast<MemRefType>(out.getType()).getElementType();
  Value narrow = castFloat(b, values, element);
  if (!checked) {
    if (n % 2 == 0) {
      vector::StoreOp::create(b, narrow, out, ValueRange{row, col}, false,
                              llvm::MaybeAlign(vectorAlignment(element, 2)));
      return;
    }
    for (int64_t e = 0; e < 2; ++e)
      memref::StoreOp::create(
          b, vector::ExtractOp::create(b, narrow, ArrayRef<int64_t>{e}), out,
          ValueRange{row, arith::AddIOp::create(b, col, cIndex(b, e))});
    return;
  }
  Value rowOk = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, row, rowsM);
  if (n % 2 == 0) {
    // Columns come in even pairs: both lie inside N or neither does, and the
    // pair is aligned to its size.
    Value ok = arith::AndIOp::create(
        b, rowOk,
        arith::CmpIOp::create(b, arith::CmpIPredicate::ult, col, cIndex(b, n)));
    ifThen(b, ok, [&] {
      vector::StoreOp::create(b, narrow, out, ValueRange{row, col}, false,
                              llvm::MaybeAlign(vectorAlignment(element, 2)));
    });
    return;
  }
  for (int64_t e = 0; e < 2; ++e) {
    Value c = arith::AddIOp::create(b, col, cIndex(b, e));
    Value ok = arith::AndIOp::create(
        b, rowOk,
        arith::CmpIOp::create(b, arith::CmpIPredicate::ult, c, cIndex(b, n)));
    ifThen(b, ok, [&] {
      memref::StoreOp::create(
          b, vector::ExtractOp::create(b, narrow, ArrayRef<int64_t>{e}), out,
          ValueRange{row, c});
    });
  }
}

/// Stores every pair's value, `valueOf(p)` (vector<2xf32>, built at the
/// insertion point), through the mainloop's `staged` store where given, else
/// from registers into `out` [M, N] (in each branch of splitByBounds).
/// `beginValues` runs before each place the values are built, for an
/// epilogue that shares loads among the values of one place.
static void storeValues(ImplicitLocOpBuilder &b, const AccumulatorPairs &pairs,
                        Value out, Value rowsM, int64_t n, StagedStoreFn staged,
                        function_ref<Value(size_t)> valueOf,
                        function_ref<void()> beginValues = {}) {
  if (staged) {
    if (beginValues)
      beginValues();
    SmallVector<Value> values;
    for (size_t p = 0; p < pairs.size(); ++p)
      values.push_back(valueOf(p));
    staged(b, values);
    return;
  }
  splitByBounds(b, pairs, rowsM, n, [&](bool checked) {
    if (beginValues)
      beginValues();
    for (size_t p = 0; p < pairs.size(); ++p)
      storePair(b, valueOf(p), out, pairs.rows[p], pairs.cols[p], rowsM, n,
                checked);
  });
}

/// Loads columns col and col + 1 of `row` of `source` [M, N] as a
/// vector<2xf32>: one 2-element load without `checked`, else the elements
/// at indices clamped into [M, N] (the values of pairs outside are never
/// stored).
static Value loadPair(ImplicitLocOpBuilder &b, Value source, Value row,
                      Value col, Value rowsM, int64_t n, bool checked) {
  Type element = cast<MemRefType>(source.getType()).getElementType();
  auto pairType = VectorType::get({2}, element);
  if (!checked && n % 2 == 0)
    return castFloat(
        b,
        vector::LoadOp::create(b, pairType, source, ValueRange{row, col}, false,
                               llvm::MaybeAlign(vectorAlignment(element, 2))),
        b.getF32Type());
  Value lastRow = arith::SubIOp::create(b, rowsM, cIndex(b, 1));
  if (checked)
    row = arith::MinUIOp::create(b, row, lastRow);
  SmallVector<Value> elements;
  for (int64_t e = 0; e < 2; ++e) {
    Value c = arith::AddIOp::create(b, col, cIndex(b, e));
    if (checked)
      c = arith::MinUIOp::create(b, c, cIndex(b, n - 1));
    elements.push_back(memref::LoadOp::create(b, source, ValueRange{row, c}));
  }
  return castFloat(b, vector::FromElementsOp::create(b, pairType, elements),
                   b.getF32Type());
}

std::optional<GatedGemmOp> GatedGemmOp::get(Operation *op) {
  if (isa<GatedMlpOp, GatedMlpGradOp>(op))
    return GatedGemmOp(op);
  return std::nullopt;
}

Activation GatedGemmOp::getActivation() const {
  if (auto grad = dyn_cast<GatedMlpGradOp>(op))
    return grad.getActivation();
  return cast<GatedMlpOp>(op).getActivation();
}

StringRef GatedGemmOp::getKernelName() const {
  return isa<GatedMlpGradOp>(op) ? "gated_mlp_grad" : "gated_mlp";
}

Type GatedGemmOp::getOutputType() const {
  return cast<ShapedType>(cast<DestinationStyleOpInterface>(op)
                              .getDpsInits()
                              .front()
                              .getType())
      .getElementType();
}

int64_t GatedGemmOp::getEpilogueTensors() const {
  if (isa<GatedMlpGradOp>(op))
    return 3;
  return cast<GatedMlpOp>(op).getInits().size();
}

SmallVector<Value> GatedGemmOp::getKernelArgs(ImplicitLocOpBuilder &b) const {
  SmallVector<Value> args = {collapseLeadingDims(b, getInput()),
                             getGateWeight(), getUpWeight()};
  if (auto grad = dyn_cast<GatedMlpGradOp>(op))
    args.push_back(collapseLeadingDims(b, grad.getGrad()));
  for (Value init : cast<DestinationStyleOpInterface>(op).getDpsInits())
    args.push_back(collapseLeadingDims(b, init));
  return args;
}

void GatedGemmOp::buildEpilogue(ImplicitLocOpBuilder &b, gpu::GPUFuncOp kernel,
                                ArrayRef<SmallVector<Value>> acc,
                                const AccumulatorPairs &pairs, Value rowsM,
                                int64_t n, StagedStoreFn staged) const {
  Activation activation = getActivation();
  if (getEpilogueTensors() == 1) {
    Value out = kernel.getArgument(3);
    storeValues(b, pairs, out, rowsM, n, staged, [&](size_t p) -> Value {
      Value gate = getPair(b, acc[0], p), up = getPair(b, acc[1], p);
      return arith::MulFOp::create(b, applyActivation(b, activation, gate), up);
    });
    return;
  }
  // Several [M, N] tensors, stored from registers (the mainloop's staged
  // store serves one output: WgmmaGemmPlan::storesThroughTma).
  assert(!staged && "an epilogue of several tensors stores them itself");
  ArrayRef<BlockArgument> tensors = kernel.getArguments().slice(3, 3);
  splitByBounds(b, pairs, rowsM, n, [&](bool checked) {
    for (size_t p = 0; p < pairs.size(); ++p) {
      Value row = pairs.rows[p], col = pairs.cols[p];
      Value gate = getPair(b, acc[0], p), up = getPair(b, acc[1], p);
      if (isa<GatedMlpOp>(op)) {
        // The output and the pre-activations gate and up.
        Value out =
            arith::MulFOp::create(b, applyActivation(b, activation, gate), up);
        storePair(b, out, tensors[0], row, col, rowsM, n, checked);
        storePair(b, gate, tensors[1], row, col, rowsM, n, checked);
        storePair(b, up, tensors[2], row, col, rowsM, n, checked);
        continue;
      }
      // gated_mlp_grad: the output's gradient in, the projections' out.
      Value grad = loadPair(b, tensors[0], row, col, rowsM, n, checked);
      auto [gradGate, gradUp] =
          applyGatedActivationGrads(b, activation, gate, up, grad);
      storePair(b, gradGate, tensors[1], row, col, rowsM, n, checked);
      storePair(b, gradUp, tensors[2], row, col, rowsM, n, checked);
    }
  });
}

void kernel::buildFp8GemmEpilogue(ImplicitLocOpBuilder &b,
                                  ScaleGranularity granularity,
                                  ArrayRef<Value> acc,
                                  const AccumulatorPairs &pairs,
                                  const Fp8GemmKernelArgs &args, Value rowsM,
                                  int64_t n, StagedStoreFn staged) {
  Type f32 = b.getF32Type();
  Value sa = args.lhsScale, sb = args.rhsScale, bias = args.bias,
        out = args.out;
  auto pairType = VectorType::get({2}, f32);
  Value sizeN = cIndex(b, n);
  auto clamp = [&](Value index, Value limit) -> Value {
    return arith::MinUIOp::create(
        b, index, arith::SubIOp::create(b, limit, cIndex(b, 1)));
  };
  Value tensorScale;
  if (granularity == ScaleGranularity::tensor)
    tensorScale = vector::BroadcastOp::create(
        b, pairType,
        arith::MulFOp::create(b, memref::LoadOp::create(b, sa, ValueRange{}),
                              memref::LoadOp::create(b, sb, ValueRange{})));
  // Each row scale is loaded once per row and each column pair's scales and
  // bias once per column, in each place the values are built.
  llvm::DenseMap<Value, Value> rowScales, colScales, colBiases;
  auto columnPair = [&](Value source, Value col) -> Value {
    Value first =
        memref::LoadOp::create(b, source, ValueRange{clamp(col, sizeN)});
    Value second = memref::LoadOp::create(
        b, source,
        ValueRange{clamp(arith::AddIOp::create(b, col, cIndex(b, 1)), sizeN)});
    return castFloat(
        b,
        vector::FromElementsOp::create(
            b,
            VectorType::get(
                {2}, cast<MemRefType>(source.getType()).getElementType()),
            ValueRange{first, second}),
        f32);
  };
  auto valueOf = [&](size_t p) -> Value {
    Value row = pairs.rows[p], col = pairs.cols[p];
    Value value = getPair(b, acc, p);
    if (tensorScale)
      value = arith::MulFOp::create(b, value, tensorScale);
    if (granularity == ScaleGranularity::row) {
      Value &rowScale = rowScales[row];
      if (!rowScale)
        rowScale = vector::BroadcastOp::create(
            b, pairType,
            memref::LoadOp::create(b, sa, ValueRange{clamp(row, rowsM)}));
      Value &colScale = colScales[col];
      if (!colScale)
        colScale = columnPair(sb, col);
      value = arith::MulFOp::create(
          b, arith::MulFOp::create(b, value, rowScale), colScale);
    }
    if (bias) {
      Value &colBias = colBiases[col];
      if (!colBias)
        colBias = columnPair(bias, col);
      value = arith::AddFOp::create(b, value, colBias);
    }
    return value;
  };
  storeValues(b, pairs, out, rowsM, n, staged, valueOf, [&] {
    rowScales.clear();
    colScales.clear();
    colBiases.clear();
  });
}
