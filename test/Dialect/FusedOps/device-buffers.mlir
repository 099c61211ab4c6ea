// RUN: fusedops-opt %s --fusedops-device-buffers -split-input-file | FileCheck %s

// Buffers that reach a fusedops op (through views too) move to the GPU,
// their deallocations with them; the host's own buffers stay.
// CHECK-LABEL: func @moves_kernel_buffers
//  CHECK-SAME:   (%[[N:.*]]: index, %[[W:.*]]: memref<64xf32>, %[[T:.*]]: memref<8x32xf32>)
//       CHECK:   %[[X:.*]] = gpu.alloc (%[[N]]) : memref<?x64xf32>
//       CHECK:   %[[O:.*]] = gpu.alloc (%[[N]]) : memref<?x64xf32>
//       CHECK:   %[[V:.*]] = memref.cast %[[O]]
//       CHECK:   %[[HOST:.*]] = memref.alloc() : memref<4xf32>
//       CHECK:   fusedops.rmsnorm_rope ins(%[[X]], %[[W]], %[[T]], %[[T]] : {{.*}}) outs(%[[V]] :
//       CHECK:   memref.store %{{.*}}, %[[HOST]]
//       CHECK:   gpu.dealloc %[[X]]
//       CHECK:   gpu.dealloc %[[O]]
//       CHECK:   memref.dealloc %[[HOST]]
func.func @moves_kernel_buffers(%n: index, %w: memref<64xf32>, %t: memref<8x32xf32>) {
  %x = memref.alloc(%n) : memref<?x64xf32>
  %o = memref.alloc(%n) : memref<?x64xf32>
  %v = memref.cast %o : memref<?x64xf32> to memref<?x64xf32>
  %host = memref.alloc() : memref<4xf32>
  %c0 = arith.constant 0 : index
  %f = arith.constant 1.0 : f32
  fusedops.rmsnorm_rope ins(%x, %w, %t, %t : memref<?x64xf32>, memref<64xf32>, memref<8x32xf32>, memref<8x32xf32>)
      outs(%v : memref<?x64xf32>) head_dim = 32 eps = 1.0e-6 style = neox
  memref.store %f, %host[%c0] : memref<4xf32>
  memref.dealloc %x : memref<?x64xf32>
  memref.dealloc %o : memref<?x64xf32>
  memref.dealloc %host : memref<4xf32>
  return
}

// -----

// GPU buffers a callee returns are freed with gpu.dealloc by the caller.
// CHECK-LABEL: func @frees_returned_device_buffers
//       CHECK:   %[[R:.*]] = call @make
//       CHECK:   %[[V:.*]] = memref.cast %[[R]]
//       CHECK:   gpu.dealloc %[[V]]
//   CHECK-NOT:   memref.dealloc
func.func @make() -> memref<8xf32> {
  %b = gpu.alloc () : memref<8xf32>
  return %b : memref<8xf32>
}
func.func @frees_returned_device_buffers() {
  %r = call @make() : () -> memref<8xf32>
  %v = memref.cast %r : memref<8xf32> to memref<?xf32>
  memref.dealloc %v : memref<?xf32>
  return
}
