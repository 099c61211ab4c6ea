// The rms_norm row kernel (alone and after a residual add) and its launch.
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" -split-input-file | FileCheck %s

// Default tile for hidden 4096 in bf16: 8-wide (16-byte) vectors, 512 per
// row, four per thread: 128 threads, one row per block; rank-3 rows are
// viewed as [rows, hidden].
// CHECK-LABEL: func.func @norm
//  CHECK-SAME:   (%[[X:.*]]: memref<?x16x4096xbf16>, %[[W:.*]]: memref<4096xbf16>, %[[O:.*]]: memref<?x16x4096xbf16>)
//   CHECK-DAG:   %[[X2:.*]] = memref.collapse_shape %[[X]] {{\[}}[0, 1], [2]] : memref<?x16x4096xbf16> into memref<?x4096xbf16>
//   CHECK-DAG:   %[[O2:.*]] = memref.collapse_shape %[[O]] {{\[}}[0, 1], [2]]
//       CHECK:   scf.if
//       CHECK:     gpu.launch_func @fusedops_kernels::@rms_norm blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in (%c128, %{{.*}}, %{{.*}}) args(%[[X2]] : memref<?x4096xbf16>, %[[W]] : memref<4096xbf16>, %[[O2]] : memref<?x4096xbf16>)
//   CHECK-NOT:   fusedops.
//       CHECK: gpu.module @fusedops_kernels
//       CHECK:   gpu.func @rms_norm({{.*}}) workgroup(%{{.*}} : memref<4xf32, #gpu.address_space<workgroup>>) kernel attributes {known_block_size = array<i32: 128, 1, 1>}
// The weight is loaded once, before the row loop.
//       CHECK:     vector.load %{{.*}} {alignment = 16 : i64} : memref<4096xbf16>, vector<8xbf16>
//       CHECK:     scf.for
//       CHECK:       vector.load %{{.*}} {alignment = 16 : i64} : memref<?x4096xbf16>, vector<8xbf16>
//       CHECK:       gpu.shuffle  xor
//       CHECK:       gpu.barrier
//       CHECK:       math.rsqrt
//   CHECK-NOT:       dense<1.000000e+00>
//       CHECK:       vector.store %{{.*}} {alignment = 16 : i64} : memref<?x4096xbf16>, vector<8xbf16>
func.func @norm(%x: memref<?x16x4096xbf16>, %w: memref<4096xbf16>, %o: memref<?x16x4096xbf16>) {
  fusedops.rms_norm ins(%x, %w : memref<?x16x4096xbf16>, memref<4096xbf16>)
      outs(%o : memref<?x16x4096xbf16>) eps = 1.0e-6
  return
}

// -----

// With a residual: the sum is rounded to f16, stored in the load pass and
// is what is normalised; Gemma's weight offset is added to the weight; a
// user's tile (2 rows per block, one warp) is used as given.
// CHECK-LABEL: func.func @add_norm
//       CHECK:   gpu.launch_func @fusedops_kernels::@add_rms_norm blocks in ({{.*}}) threads in (%c32, {{.*}}) args(%{{.*}} : memref<?x1024xf16>, %{{.*}} : memref<1024xf16>, %{{.*}} : memref<?x1024xf16>, %{{.*}} : memref<?x1024xf16>, %{{.*}} : memref<?x1024xf16>)
//       CHECK:   gpu.func @add_rms_norm
//       CHECK:     scf.for
// Every load of the row comes before the first store of the sum.
//       CHECK:       %[[X0:.*]] = vector.load %[[XA:.*]][%{{.*}}, %[[C0:.*]]] {{.*}} : memref<?x1024xf16>, vector<8xf16>
//       CHECK:       %[[R0:.*]] = vector.load %[[RA:.*]][%{{.*}}, %[[C0]]] {{.*}} : memref<?x1024xf16>, vector<8xf16>
// CHECK-COUNT-6:       vector.load
//   CHECK-NOT:       vector.store
//       CHECK:       %[[R32:.*]] = arith.extf %[[R0]]
//       CHECK:       %[[X32:.*]] = arith.extf %[[X0]]
//       CHECK:       %[[SUM:.*]] = arith.addf %[[X32]], %[[R32]]
//       CHECK:       %[[S16:.*]] = arith.truncf %[[SUM]] : vector<8xf32> to vector<8xf16>
//       CHECK:       vector.store %[[S16]], %{{.*}}[%{{.*}}, %[[C0]]]
//       CHECK:       %[[S32:.*]] = arith.extf %[[S16]]
//       CHECK:       arith.mulf %[[S32]], %[[S32]]
//   CHECK-NOT:       gpu.barrier
//       CHECK:       math.rsqrt
//       CHECK:       %[[ONE:.*]] = arith.constant dense<1.000000e+00> : vector<8xf32>
//       CHECK:       arith.addf %{{.*}}, %[[ONE]] : vector<8xf32>
func.func @add_norm(%x: memref<?x1024xf16>, %w: memref<1024xf16>, %r: memref<?x1024xf16>,
                    %o: memref<?x1024xf16>, %s: memref<?x1024xf16>) {
  fusedops.rms_norm ins(%x, %w : memref<?x1024xf16>, memref<1024xf16>) residual(%r : memref<?x1024xf16>)
      outs(%o, %s : memref<?x1024xf16>, memref<?x1024xf16>) eps = 1.0e-6 weight_offset = 1.0
      {tile = #fusedops.tile<block = [2], warps = 1>}
  return
}

// -----

// A hidden size only a scalar divides: one element per vector; 33 vectors
// over 32 threads leave a guarded second round.
// CHECK-LABEL: func.func @odd_hidden
//       CHECK:   gpu.func @rms_norm
//       CHECK:     %[[IN:.*]] = arith.cmpi ult, %{{.*}}, %c33 : index
//       CHECK:     scf.for
//       CHECK:       vector.load %{{.*}} {alignment = 4 : i64} : memref<?x33xf32>, vector<1xf32>
//       CHECK:       scf.if %[[IN]] -> (vector<1xf32>)
func.func @odd_hidden(%x: memref<?x33xf32>, %w: memref<33xf32>, %o: memref<?x33xf32>) {
  fusedops.rms_norm ins(%x, %w : memref<?x33xf32>, memref<33xf32>) outs(%o : memref<?x33xf32>) eps = 0.0
  return
}
