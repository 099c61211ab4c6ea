// rmsnorm_rope run end to end on a GPU by fusedops-runner: host code from
// gpu-to-llvm, kernels from fusedops-to-binary, the fusedops runtime.
// REQUIRES: cuda
// RUN: fusedops-runner %s --chip=sm_90a -e main --entry-point-result=void \
// RUN:   --shared-libs=%mlir_runner_utils,%mlir_c_runner_utils | FileCheck %s
// RUN: fusedops-runner %s --chip=sm_80 --format=isa -e main --entry-point-result=void \
// RUN:   --shared-libs=%mlir_runner_utils,%mlir_c_runner_utils | FileCheck %s

// Rows of equal values normalise to 1; head_dim 4, neox. Position 0 has
// cos = 1, sin = 0 (no rotation); position 1 has cos = 0, sin = 1, so
// out[i] = −y[i+2] and out[i+2] = y[i] in each head.
// CHECK: sizes = [2, 8]
// CHECK: {{\[\[}}1,{{ +}}1,{{ +}}1,{{ +}}1,{{ +}}1,{{ +}}1,{{ +}}1,{{ +}}1],
// CHECK-NEXT: {{\[}}-1,{{ +}}-1,{{ +}}1,{{ +}}1,{{ +}}-1,{{ +}}-1,{{ +}}1,{{ +}}1]]

func.func private @printMemrefF32(memref<*xf32>)

func.func @main() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  %one = arith.constant 1.0 : f32
  %three = arith.constant 3.0 : f32

  // Host inputs: x row 0 all 3, row 1 all 1; weight 1; the tables.
  %x = memref.alloc() : memref<1x2x8xf32>
  %w = memref.alloc() : memref<8xf32>
  %cos = memref.alloc() : memref<2x4xf32>
  %sin = memref.alloc() : memref<2x4xf32>
  scf.for %i = %c0 to %c8 step %c1 {
    memref.store %three, %x[%c0, %c0, %i] : memref<1x2x8xf32>
    memref.store %one, %x[%c0, %c1, %i] : memref<1x2x8xf32>
    memref.store %one, %w[%i] : memref<8xf32>
  }
  scf.for %i = %c0 to %c4 step %c1 {
    memref.store %one, %cos[%c0, %i] : memref<2x4xf32>
    memref.store %zero, %sin[%c0, %i] : memref<2x4xf32>
    memref.store %zero, %cos[%c1, %i] : memref<2x4xf32>
    memref.store %one, %sin[%c1, %i] : memref<2x4xf32>
  }

  %dx = gpu.alloc() : memref<1x2x8xf32>
  %dw = gpu.alloc() : memref<8xf32>
  %dcos = gpu.alloc() : memref<2x4xf32>
  %dsin = gpu.alloc() : memref<2x4xf32>
  %dout = gpu.alloc() : memref<1x2x8xf32>
  gpu.memcpy %dx, %x : memref<1x2x8xf32>, memref<1x2x8xf32>
  gpu.memcpy %dw, %w : memref<8xf32>, memref<8xf32>
  gpu.memcpy %dcos, %cos : memref<2x4xf32>, memref<2x4xf32>
  gpu.memcpy %dsin, %sin : memref<2x4xf32>, memref<2x4xf32>

  fusedops.rmsnorm_rope ins(%dx, %dw, %dcos, %dsin : memref<1x2x8xf32>, memref<8xf32>, memref<2x4xf32>, memref<2x4xf32>)
      outs(%dout : memref<1x2x8xf32>) head_dim = 4 eps = 0.0 style = neox

  %out = memref.alloc() : memref<1x2x8xf32>
  gpu.memcpy %out, %dout : memref<1x2x8xf32>, memref<1x2x8xf32>
  %flat = memref.collapse_shape %out [[0, 1], [2]] : memref<1x2x8xf32> into memref<2x8xf32>
  %print = memref.cast %flat : memref<2x8xf32> to memref<*xf32>
  call @printMemrefF32(%print) : (memref<*xf32>) -> ()
  return
}
