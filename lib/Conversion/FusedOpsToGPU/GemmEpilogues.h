//===- GemmEpilogues.h - the GEMM ops' epilogues ----------------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// One epilogue per GEMM op, shared by every mainloop (mma.sync on sm_80,
// wgmma on sm_90a): a mainloop hands over its f32 accumulators per B operand
// and where each pair of them lies, and the epilogue computes and stores the
// op's output (as CUTLASS keeps epilogues apart from its collectives).
// Private to lib/Conversion/FusedOpsToGPU.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_GEMMEPILOGUES_H
#define FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_GEMMEPILOGUES_H

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::fusedops::kernel {

/// Where a thread's accumulators lie in the output: pair p is registers 2p
/// and 2p + 1 of every B operand's accumulators, columns cols[p] and
/// cols[p] + 1 of row rows[p] (both may lie outside the output).
struct AccumulatorPairs {
  SmallVector<Value> rows, cols;
  size_t size() const { return rows.size(); }
};

/// A mainloop's hand-over: per B operand a thread's f32 accumulators, and
/// where they lie.
using GemmEpilogueFn =
    function_ref<void(ImplicitLocOpBuilder &, ArrayRef<SmallVector<Value>>,
                      const AccumulatorPairs &)>;

/// gated_mlp: act(gate)·up from the two accumulator sets, stored into `out`
/// [M, N] (rows past `rowsM` and columns past `n` are not stored).
void buildGatedMlpEpilogue(ImplicitLocOpBuilder &b, Activation activation,
                           ArrayRef<SmallVector<Value>> acc,
                           const AccumulatorPairs &pairs, Value out,
                           Value rowsM, int64_t n);

/// fp8_gemm: tensor or row scales (block128 scales are applied by the
/// mainloop) and the bias on the f32 sums, stored into `out` [M, N] in its
/// element type. Scales and bias are read at indices clamped into range.
void buildFp8GemmEpilogue(ImplicitLocOpBuilder &b, ScaleGranularity granularity,
                          ArrayRef<Value> acc, const AccumulatorPairs &pairs,
                          Value lhsScale, Value rhsScale, Value bias, Value out,
                          Value rowsM, int64_t n);

} // namespace mlir::fusedops::kernel

#endif // FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_GEMMEPILOGUES_H
