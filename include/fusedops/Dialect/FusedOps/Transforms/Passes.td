//===- Passes.td - fusedops dialect transforms -------------*- tablegen -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_DIALECT_FUSEDOPS_TRANSFORMS_PASSES_TD
#define FUSEDOPS_DIALECT_FUSEDOPS_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def FusedOpsDeviceBuffers : Pass<"fusedops-device-buffers", "ModuleOp"> {
  let summary = "Allocate the buffers fusedops ops use in GPU memory";
  let description = [{
    After bufferization, the intermediate buffers of a host function are
    `memref.alloc`s in host memory, but fusedops ops run as GPU kernels. This
    pass turns every `memref.alloc` whose buffer reaches a fusedops op
    (directly or through view-like ops: casts, reshapes, subviews) into a
    `gpu.alloc`, and every `memref.dealloc` of a GPU buffer (a `gpu.alloc`,
    a view of one, or one a called function returns) into a `gpu.dealloc`.
    Buffers the host reads or writes itself are left alone. Run it after
    `buffer-deallocation-pipeline` so that intermediates are freed.

    Example:

    ```mlir
    %b = memref.alloc(%n) : memref<?x1024xbf16>
    fusedops.rmsnorm_rope ... outs(%b : memref<?x1024xbf16>) ...
    memref.dealloc %b : memref<?x1024xbf16>
    // becomes
    %b = gpu.alloc (%n) : memref<?x1024xbf16>
    fusedops.rmsnorm_rope ... outs(%b : memref<?x1024xbf16>) ...
    gpu.dealloc %b : memref<?x1024xbf16>
    ```
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

#endif // FUSEDOPS_DIALECT_FUSEDOPS_TRANSFORMS_PASSES_TD
