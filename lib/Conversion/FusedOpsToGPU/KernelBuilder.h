//===- KernelBuilder.h - helpers shared by the kernel strategies -*- C++ -*-===//
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

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::fusedops::kernel {

/// Creates the kernel `baseName` (renamed if taken) in `module`, with
/// `argTypes`, a fixed block of `numThreads` threads and the given workgroup
/// (shared memory) buffers, and sets `b` at the start of its body.
gpu::GPUFuncOp createKernel(OpBuilder &b, Location loc,
                            gpu::GPUModuleOp module, StringRef baseName,
                            TypeRange argTypes, int64_t numThreads,
                            TypeRange workgroupBuffers);

/// A workgroup-memory memref type.
MemRefType getWorkgroupBufferType(ArrayRef<int64_t> shape, Type elementType);

/// Whether `type` is a memref with the identity layout (row-major, dense).
bool isContiguous(Type type);

/// Views a contiguous memref of rank >= 2 as [prod(leading dims), last dim];
/// a rank-2 memref is returned as it is.
Value collapseLeadingDims(ImplicitLocOpBuilder &b, Value memref);

/// Views a contiguous memref as one dimension.
Value collapseToVector(ImplicitLocOpBuilder &b, Value memref);

/// Sum of `value` (f32) over the 32 lanes of a warp, in every lane.
Value warpAllReduceSum(ImplicitLocOpBuilder &b, Value value);

/// Max of `value` (f32) over the 32 lanes of a warp, in every lane.
Value warpAllReduceMax(ImplicitLocOpBuilder &b, Value value);

/// Index constant.
Value cIndex(ImplicitLocOpBuilder &b, int64_t value);

/// f32 constant.
Value cF32(ImplicitLocOpBuilder &b, float value);

/// Converts a float vector or scalar to `type`'s element type (extf/truncf).
Value castFloat(ImplicitLocOpBuilder &b, Value value, Type elementType);

/// Byte alignment for a vector of `numElements` elements of `elementType`
/// loaded at a multiple of its own size: at most 16 bytes.
int64_t vectorAlignment(Type elementType, int64_t numElements);

} // namespace mlir::fusedops::kernel

#endif // FUSEDOPS_LIB_CONVERSION_FUSEDOPSTOGPU_KERNELBUILDER_H
