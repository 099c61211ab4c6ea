//===- KernelBuilder.h - helpers shared by the kernel strategies -*- C++
//-*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Small builders every strategy needs: creating the kernel function, viewing
// contiguous buffers as matrices, warp reductions, launching. Private to
// lib/Conversion/FusedOpsToGPU.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_KERNELBUILDER_H
#define FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_KERNELBUILDER_H

#include "fusedops/Conversion/FusedOpsToGPU/KernelStrategy.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::fusedops::kernel {

/// Creates the kernel `baseName` (renamed if taken) in `module`, with
/// `argTypes`, a fixed block of `numThreads` threads and the given workgroup
/// (shared memory) buffers, and sets `b` at the start of its body.
gpu::GPUFuncOp createKernel(OpBuilder &b, Location loc, gpu::GPUModuleOp module,
                            StringRef baseName, TypeRange argTypes,
                            int64_t numThreads, TypeRange workgroupBuffers);

/// A workgroup-memory memref type.
MemRefType getWorkgroupBufferType(ArrayRef<int64_t> shape, Type elementType);

/// Whether `type` is a memref with the identity layout (row-major, dense).
bool isContiguous(Type type);

/// Reports on `op` the first operand that is not a contiguous buffer in
/// global memory, with what to change; every kernel indexes its buffers as
/// dense row-major device memory.
LogicalResult checkContiguousBuffers(Operation *op);

/// Launches `kernel` on a (gridX, gridY) grid of `threads`-thread blocks
/// with `args` and `dynamicSharedBytes` of dynamic shared memory, only when
/// `rows` > 0 (a zero-sized grid is a launch error).
void launchIfRows(ImplicitLocOpBuilder &b, gpu::GPUFuncOp kernel, Value rows,
                  Value gridX, Value gridY, int64_t threads, ValueRange args,
                  int64_t dynamicSharedBytes = 0);

/// Host code: the runtime function `name` (fusedops-c/Runtime.h) of
/// `type`, declared in the module of `b`'s insertion point where it is not.
LLVM::LLVMFuncOp getRuntimeFunction(ImplicitLocOpBuilder &b, StringRef name,
                                    LLVM::LLVMFunctionType type);

/// Host code: the blocks of a persistent grid the current device holds at
/// once, SMs · `blocksPerSm` (the SMs from `mgpuMultiprocessorCount`,
/// fusedops-c/Runtime.h) rounded down to whole clusters of `clusterBlocks`,
/// as an index. A persistent launch's grid is min(tiles, this), the form
/// `fusedops-launch-plan` recognises (the runtime then takes the device's
/// SM count and repeats the rounding from the kernel's cluster width).
Value buildResidentBlocks(ImplicitLocOpBuilder &b, int64_t blocksPerSm,
                          int64_t clusterBlocks = 1);

/// The name of a kernel that needs a cooperative launch (every block
/// resident at once: it waits for the others at a grid-wide barrier):
/// `baseName` with FUSEDOPS_COOPERATIVE_MARK, which the runtime looks for in
/// the names of the kernels it launches, on both launch paths (host code and
/// launch plans), to use cuLaunchCooperativeKernel with the grid capped at
/// the blocks the device holds at once.
std::string getCooperativeKernelName(StringRef baseName);

/// Device code: the global-memory (address space 1) pointer to the first
/// element of `memref`, for LLVM atomics.
Value getGlobalPointer(ImplicitLocOpBuilder &b, Value memref);

/// Device code: the i32 at `pointer` (global), as an atomic load with
/// `ordering` at device scope (not cached in L1: other blocks write it).
Value loadAtomicI32(ImplicitLocOpBuilder &b, Value pointer,
                    LLVM::AtomicOrdering ordering);

/// Device code: waits (one thread) until the i32 at `counter` (a global
/// pointer) is at least `target` (i32), each read an atomic load with
/// `ordering` at device scope.
void spinUntilAtLeast(ImplicitLocOpBuilder &b, Value counter, Value target,
                      LLVM::AtomicOrdering ordering);

/// `lhs && rhs` for i1 conditions where null means "always": the other one,
/// or null where both are.
Value andOrNull(ImplicitLocOpBuilder &b, Value lhs, Value rhs);

/// `value` where `cond` holds (always for a null `cond`), else zeros.
Value selectOrZero(ImplicitLocOpBuilder &b, Value cond, Value value);

/// Emits `thenBody` under `cond` (an scf.if without else), or inline when
/// `cond` is null (no guard needed); the insertion point is after the if.
void ifThen(ImplicitLocOpBuilder &b, Value cond, function_ref<void()> thenBody);

/// The checks every GEMM kernel shares: contiguous global buffers, static
/// and non-empty N and K (of `what`, the B operand), K a whole number of
/// 16-byte copies, block = [BM, BN, BK]; then the mainloop's own (the
/// cluster among them), `getPlanProblem` ("" when the tile fits; called
/// only once the rest passed), reported as not fitting `kernelName`.
LogicalResult checkGemmOperands(Operation *op, TileConfigAttr tile, int64_t n,
                                int64_t k, int64_t elementBytes, StringRef what,
                                StringRef kernelName,
                                function_ref<std::string()> getPlanProblem);

/// act(g) for a gated MLP's activation, on a vector of f32; with
/// `derivative`, also act′(g) there (the backward's).
Value applyActivation(ImplicitLocOpBuilder &b, Activation activation, Value g,
                      Value *derivative = nullptr);

/// The backward of act(gate)·up on vectors of f32, given the gradient `grad`
/// of the product: {grad·up·act′(gate), grad·act(gate)} (gated_mlp_grad's
/// epilogue and gated_act_grad).
std::pair<Value, Value> applyGatedActivationGrads(ImplicitLocOpBuilder &b,
                                                  Activation activation,
                                                  Value gate, Value up,
                                                  Value grad);

/// The most shared memory a block of `target`'s chip may have (the opt-in
/// maximum, from the chip table).
int64_t getMaxSharedBytes(const KernelTarget &target);

/// The dynamic shared memory buffers of `bufferBytes` bytes take, laid out
/// one after another at 128-byte boundaries.
int64_t getDynamicSharedBytes(ArrayRef<int64_t> bufferBytes);

/// Views of the kernel's dynamic shared memory, one per `types` (workgroup
/// memrefs), laid out as getDynamicSharedBytes counts their sizes; the
/// launch must ask for that many bytes.
/// Static workgroup buffers stop at 48 KiB; dynamic ones go to the chip's
/// limit.
SmallVector<Value> carveDynamicShared(ImplicitLocOpBuilder &b,
                                      ArrayRef<MemRefType> types);

/// Views a contiguous memref as rows: [prod(leading dims), last dim]; a
/// rank-1 [H] as one row [1, H]; a rank-2 memref is returned as it is.
Value collapseLeadingDims(ImplicitLocOpBuilder &b, Value memref);

/// Views a contiguous memref as one dimension.
Value collapseToVector(ImplicitLocOpBuilder &b, Value memref);

/// Sum of `value` (f32) over the 32 lanes of a warp, in every lane.
Value warpAllReduceSum(ImplicitLocOpBuilder &b, Value value);

/// Max of `value` (f32) over the 32 lanes of a warp, in every lane.
Value warpAllReduceMax(ImplicitLocOpBuilder &b, Value value);

/// Sum (max) of `value` (f32) over the block's `warps` warps, in every
/// thread: warp shuffles, then for several warps one exchange through
/// `buffer` (`warps` f32 of workgroup memory) after a barrier. A caller that
/// reuses `buffer` must barrier first.
Value blockAllReduceSum(ImplicitLocOpBuilder &b, Value value, int64_t warps,
                        Value buffer);
Value blockAllReduceMax(ImplicitLocOpBuilder &b, Value value, int64_t warps,
                        Value buffer);
/// The sums of each of `values` (f32) over the block's `warps` warps, in
/// every thread, with one barrier: value i's warp sums go through `buffer` at
/// `offset + i·warps + warp` (`values.size()·warps` f32 from `offset`). A
/// caller that reuses those floats must barrier first, or alternate between
/// two offsets (every warp passes the next call's barrier before any warp
/// writes the floats again).
SmallVector<Value> blockAllReduceSums(ImplicitLocOpBuilder &b,
                                      ValueRange values, int64_t warps,
                                      Value buffer, Value offset);

/// Index constant.
Value cIndex(ImplicitLocOpBuilder &b, int64_t value);

/// f32 constant.
Value cF32(ImplicitLocOpBuilder &b, float value);

/// Converts a float vector or scalar to `type`'s element type (extf/truncf).
Value castFloat(ImplicitLocOpBuilder &b, Value value, Type elementType);

/// Byte alignment for a vector of `numElements` elements of `elementType`
/// loaded at a multiple of its own size: at most 16 bytes.
int64_t vectorAlignment(Type elementType, int64_t numElements);

//===----------------------------------------------------------------------===//
// FP8 conversions
//===----------------------------------------------------------------------===//
//
// LLVM has no FP8 types (MLIR lowers them to i8) and `arith.truncf`/`extf`
// to or from them do not lower to NVVM, so kernels convert in software, with
// integer operations on the IEEE bit patterns. The conversions are the OCP
// ones that python/fusedops/fp8.py specifies bit for bit, and the same on
// every chip, which keeps sm_80 and sm_90a results identical.

/// Whether the FP8 conversions below handle `type`: f8E4M3FN or f8E5M2.
bool isSupportedFp8Type(Type type);

/// The largest finite value of `fp8Type` (448 for f8E4M3FN, 57344 for
/// f8E5M2).
float getFp8MaxFinite(FloatType fp8Type);

/// Rounds f32 values (a scalar or a 1-D vector) to `fp8Type` (f8E4M3FN or
/// f8E5M2) and returns them as that element type (`f8E4M3FN` or
/// `vector<Nxf8E4M3FN>`, an `arith.bitcast` of the computed bytes):
///
///   * round to nearest, ties to even, with gradual underflow (subnormals);
///     results that round to zero keep the sign;
///   * finite values beyond the largest finite FP8 value, and ±inf, saturate
///     to ±max (448 / 57344), as PTX's `cvt.satfinite` does;
///   * NaN becomes the format's quiet NaN (0x7F / 0x7E) with the input's sign.
///
/// f32 subnormal inputs give ±0 (they are far below half the smallest FP8
/// subnormal), also where the chip flushes them.
Value convertF32ToFp8(ImplicitLocOpBuilder &b, Value value, FloatType fp8Type);

/// The exact f32 values of FP8 values (a scalar or a 1-D vector of f8E4M3FN
/// or f8E5M2): every FP8 value, subnormals included, is an f32 normal or
/// zero. Infinities (f8E5M2) stay infinite and NaN codes give a quiet NaN
/// of the code's sign. The inverse of `convertF32ToFp8` on FP8 values.
Value convertFp8ToF32(ImplicitLocOpBuilder &b, Value value);

} // namespace mlir::fusedops::kernel

#endif // FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_KERNELBUILDER_H
