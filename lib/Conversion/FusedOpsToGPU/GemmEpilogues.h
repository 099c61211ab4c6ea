//===- GemmEpilogues.h - the GEMM ops' epilogues ----------------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// The GEMM ops' side of the engine, shared by every mainloop (mma.sync on
// sm_80, wgmma on sm_90a): what each op requires of a tile, the kernel
// arguments it passes, and one epilogue per op. A mainloop hands over its
// f32 accumulators per B operand and where each pair of them lies, and the
// epilogue computes and stores the op's output (as CUTLASS keeps epilogues
// apart from its collectives). Private to lib/Conversion/FusedOpsToGPU.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_GEMMEPILOGUES_H
#define FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_GEMMEPILOGUES_H

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::fusedops::kernel {

//===----------------------------------------------------------------------===//
// What the ops require and pass
//===----------------------------------------------------------------------===//

/// fp8_gemm with block128 scales needs BM, BN and BK dividing 128: one scale
/// pair per block tile and K tile.
LogicalResult checkFp8GemmTile(Fp8GemmOp op, TileConfigAttr tile);

/// fp8_gemm's kernel arguments as a kernel body reads them.
struct Fp8GemmKernelArgs {
  Value lhs, rhs, lhsScale, rhsScale, bias, out;
  /// The arguments `op` passes, in the kernels' order: A, B, the scales,
  /// the bias if any, out.
  static SmallVector<Value> get(Fp8GemmOp op);
  /// The kernel's parameters for those arguments.
  static Fp8GemmKernelArgs fromKernel(Fp8GemmOp op, gpu::GPUFuncOp kernel);
};

/// The product of the block128 scales covering the block tile at (m0, n0)
/// in the 128-wide K block `kb`.
Value loadFp8BlockScale(ImplicitLocOpBuilder &b, const Fp8GemmKernelArgs &args,
                        Value m0, Value n0, Value kb);

//===----------------------------------------------------------------------===//
// Epilogues
//===----------------------------------------------------------------------===//

/// Where a thread's accumulators lie in the output: pair p is registers 2p
/// and 2p + 1 of every B operand's accumulators, columns cols[p] and
/// cols[p] + 1 of row rows[p] (both may lie outside the output).
struct AccumulatorPairs {
  SmallVector<Value> rows, cols;
  size_t size() const { return rows.size(); }
};

/// A mainloop's own way to store a thread's output values, one
/// vector<2xf32> per accumulator pair in the order of AccumulatorPairs
/// (converted to the output's element type and stored where they lie
/// inside it): the sm_90a mainloop's goes through shared memory and TMA
/// (WgmmaGemmPlan::storesThroughTma). Null: the epilogue stores each pair
/// from registers.
using StagedStoreFn =
    function_ref<void(ImplicitLocOpBuilder &, ArrayRef<Value> values)>;

/// A mainloop's hand-over: per B operand a thread's f32 accumulators, where
/// they lie, and the mainloop's store if it has one.
using GemmEpilogueFn =
    function_ref<void(ImplicitLocOpBuilder &, ArrayRef<SmallVector<Value>>,
                      const AccumulatorPairs &, StagedStoreFn)>;

/// gated_mlp and gated_mlp_grad share their GEMM, x·Wgᵀ and x·Wuᵀ (two B
/// operands sharing the A tile); they differ in the [M, N] tensors their
/// epilogues read and write.
class GatedGemmOp {
public:
  /// `op` as a gated GEMM, or nullopt if it is neither op.
  static std::optional<GatedGemmOp> get(Operation *op);

  Operation *getOperation() const { return op; }
  Value getInput() const { return op->getOperand(0); }
  Value getGateWeight() const { return op->getOperand(1); }
  Value getUpWeight() const { return op->getOperand(2); }
  Activation getActivation() const;
  /// The kernel's name.
  StringRef getKernelName() const;
  /// Element type of the [M, N] tensors the epilogue writes.
  Type getOutputType() const;
  /// [M, N] tensors the epilogue reads or writes: gated_mlp's output (and
  /// the pre-activations gate and up where it has three outs), or
  /// gated_mlp_grad's grad, grad_gate and grad_up.
  int64_t getEpilogueTensors() const;
  /// The kernel arguments, in the kernels' order: x [M, K] viewed as a
  /// matrix, Wg, Wu, then the [M, N] tensors (as matrices).
  SmallVector<Value> getKernelArgs(ImplicitLocOpBuilder &b) const;
  /// The op's epilogue in `kernel` (whose parameters are getKernelArgs'):
  /// gated_mlp's act(gate)·up stored through `staged` where given (and the
  /// pre-activations from registers where it has three outs), or
  /// gated_mlp_grad's two gradients. Rows past `rowsM` and columns past `n`
  /// are neither read nor stored.
  void buildEpilogue(ImplicitLocOpBuilder &b, gpu::GPUFuncOp kernel,
                     ArrayRef<SmallVector<Value>> acc,
                     const AccumulatorPairs &pairs, Value rowsM, int64_t n,
                     StagedStoreFn staged) const;

private:
  explicit GatedGemmOp(Operation *op) : op(op) {}
  Operation *op;
};

/// fp8_gemm: tensor or row scales (block128 scales are applied by the
/// mainloop) and the bias on the f32 sums, stored into `args.out` [M, N] in
/// its element type, through `staged` where given. Scales and bias are read
/// at indices clamped into range.
void buildFp8GemmEpilogue(ImplicitLocOpBuilder &b, ScaleGranularity granularity,
                          ArrayRef<Value> acc, const AccumulatorPairs &pairs,
                          const Fp8GemmKernelArgs &args, Value rowsM, int64_t n,
                          StagedStoreFn staged);

} // namespace mlir::fusedops::kernel

#endif // FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_GEMMEPILOGUES_H
