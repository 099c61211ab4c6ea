// gated_mlp run end to end on a GPU by fusedops-runner.
// REQUIRES: cuda
// RUN: fusedops-runner %s --chip=sm_90a -e main --entry-point-result=void \
// RUN:   --shared-libs=%mlir_runner_utils,%mlir_c_runner_utils | FileCheck %s

// x = 1, Wg = 0.5, Wu = 0.25 over K = 32: gate 16, up 8, so every output is
// silu(16)·8 = 127.99999 (f16: 128).
// CHECK: sizes = [3, 24]
// CHECK: {{\[\[}}128,{{ +}}128,
// CHECK-NOT: nan

func.func private @printMemrefF32(memref<*xf32>)

func.func @main() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c24 = arith.constant 24 : index
  %c32 = arith.constant 32 : index
  %one = arith.constant 1.0 : f16
  %half = arith.constant 0.5 : f16
  %quarter = arith.constant 0.25 : f16

  %x = memref.alloc() : memref<3x32xf16>
  %wg = memref.alloc() : memref<24x32xf16>
  %wu = memref.alloc() : memref<24x32xf16>
  scf.for %k = %c0 to %c32 step %c1 {
    scf.for %i = %c0 to %c3 step %c1 {
      memref.store %one, %x[%i, %k] : memref<3x32xf16>
    }
    scf.for %n = %c0 to %c24 step %c1 {
      memref.store %half, %wg[%n, %k] : memref<24x32xf16>
      memref.store %quarter, %wu[%n, %k] : memref<24x32xf16>
    }
  }
  %dx = gpu.alloc() : memref<3x32xf16>
  %dwg = gpu.alloc() : memref<24x32xf16>
  %dwu = gpu.alloc() : memref<24x32xf16>
  %dout = gpu.alloc() : memref<3x24xf16>
  gpu.memcpy %dx, %x : memref<3x32xf16>, memref<3x32xf16>
  gpu.memcpy %dwg, %wg : memref<24x32xf16>, memref<24x32xf16>
  gpu.memcpy %dwu, %wu : memref<24x32xf16>, memref<24x32xf16>

  fusedops.gated_mlp ins(%dx, %dwg, %dwu : memref<3x32xf16>, memref<24x32xf16>, memref<24x32xf16>)
      outs(%dout : memref<3x24xf16>) activation = silu

  %out = memref.alloc() : memref<3x24xf16>
  gpu.memcpy %out, %dout : memref<3x24xf16>, memref<3x24xf16>
  %out32 = memref.alloc() : memref<3x24xf32>
  scf.for %i = %c0 to %c3 step %c1 {
    scf.for %n = %c0 to %c24 step %c1 {
      %v = memref.load %out[%i, %n] : memref<3x24xf16>
      %w = arith.extf %v : f16 to f32
      memref.store %w, %out32[%i, %n] : memref<3x24xf32>
    }
  }
  %print = memref.cast %out32 : memref<3x24xf32> to memref<*xf32>
  call @printMemrefF32(%print) : (memref<*xf32>) -> ()
  return
}
