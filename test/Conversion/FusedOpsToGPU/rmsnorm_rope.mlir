// The rmsnorm_rope row kernel and its launch.
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" -split-input-file | FileCheck %s

// Default tile for hidden 4096 in f16: 8-wide (16-byte) vectors, 512 per
// row, four per thread: 128 threads, one row per block.
// CHECK-LABEL: func.func @implicit_positions
//  CHECK-SAME:   (%[[X:.*]]: memref<?x2048x4096xf16>, %[[W:.*]]: memref<4096xf16>, %[[COS:.*]]: memref<2048x64xf32>, %[[SIN:.*]]: memref<2048x64xf32>, %[[O:.*]]: memref<?x2048x4096xf16>)
//   CHECK-DAG:   %[[X2:.*]] = memref.collapse_shape %[[X]] {{\[}}[0, 1], [2]] : memref<?x2048x4096xf16> into memref<?x4096xf16>
//   CHECK-DAG:   %[[O2:.*]] = memref.collapse_shape %[[O]] {{\[}}[0, 1], [2]]
//   CHECK-DAG:   %[[SEQ:.*]] = memref.dim %[[X]], %c1
//   CHECK-DAG:   %[[ROWS:.*]] = memref.dim %[[X2]], %c0
//       CHECK:   scf.if
//       CHECK:     gpu.launch_func @fusedops_kernels::@rmsnorm_rope blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in (%c128, %{{.*}}, %{{.*}}) args(%[[X2]] : memref<?x4096xf16>, %[[W]] : memref<4096xf16>, %[[COS]] : memref<2048x64xf32>, %[[SIN]] : memref<2048x64xf32>, %[[SEQ]] : index, %[[O2]] : memref<?x4096xf16>)
//   CHECK-NOT:   fusedops.
//       CHECK: gpu.module @fusedops_kernels
//       CHECK:   gpu.func @rmsnorm_rope({{.*}}) workgroup(%{{.*}} : memref<4xf32, #gpu.address_space<workgroup>>, %[[WBUF:[^ ]*]] : memref<512x8xf16, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}) kernel attributes {known_block_size = array<i32: 128, 1, 1>}
// The weight once per block, then per row the position and every global
// load (the row's and the tables'); with one row per block, the weight goes
// into each thread's rows of the weight buffer after those loads (a store
// waits for its load); no global load after the reduction.
//       CHECK:     vector.load %{{.*}} {alignment = 16 : i64} : memref<4096xf16>, vector<8xf16>
//       CHECK:     scf.for
//       CHECK:     arith.remui %{{.*}}, %{{.*}} : index
//       CHECK:     vector.load %{{.*}} {alignment = 16 : i64} : memref<?x4096xf16>, vector<8xf16>
//       CHECK:     vector.load %{{.*}} {alignment = 16 : i64} : memref<2048x64xf32>, vector<8xf32>
//       CHECK:     vector.store %{{.*}}, %[[WBUF]]
//       CHECK:     gpu.shuffle  xor
//       CHECK:     gpu.barrier
//       CHECK:     math.rsqrt
//   CHECK-NOT:     vector.load {{.*}} : memref<{{.*}}xf{{16|32}}>,
//       CHECK:     vector.load %[[WBUF]]
//   CHECK-NOT:     vector.load {{.*}} : memref<{{.*}}xf{{16|32}}>,
//       CHECK:     vector.store %{{.*}} {alignment = 16 : i64} : memref<?x4096xf16>, vector<8xf16>
func.func @implicit_positions(%x: memref<?x2048x4096xf16>, %w: memref<4096xf16>, %cos: memref<2048x64xf32>,
                              %sin: memref<2048x64xf32>, %o: memref<?x2048x4096xf16>) {
  fusedops.rmsnorm_rope ins(%x, %w, %cos, %sin : memref<?x2048x4096xf16>, memref<4096xf16>, memref<2048x64xf32>, memref<2048x64xf32>)
      outs(%o : memref<?x2048x4096xf16>) head_dim = 64 eps = 1.0e-5 style = neox
  return
}

// -----

// A user's tile is used as given; explicit positions are read per row; gptj
// pairs are swapped inside the vector; one warp needs no shared memory
// exchange.
// CHECK-LABEL: func.func @explicit_positions_gptj
//       CHECK:   gpu.launch_func @fusedops_kernels::@rmsnorm_rope blocks in ({{.*}}) threads in (%c32, {{.*}}) args({{.*}}, %{{.*}} : memref<?xi64>, {{.*}})
//       CHECK:   gpu.func @rmsnorm_rope({{.*}}) workgroup(%{{.*}} : memref<1xf32, #gpu.address_space<workgroup>>) kernel attributes {known_block_size = array<i32: 32, 1, 1>}
//   CHECK-NOT:     gpu.barrier
//       CHECK:     memref.load %{{.*}} : memref<?xi64>
//       CHECK:     arith.index_cast
//       CHECK:     vector.shuffle %{{.*}}, %{{.*}} [1, 0, 3, 2] : vector<4xf32>, vector<4xf32>
func.func @explicit_positions_gptj(%x: memref<?x512xf32>, %w: memref<512xf32>, %cos: memref<4096x64xf32>,
                                   %sin: memref<4096x64xf32>, %pos: memref<?xi64>, %o: memref<?x512xf32>) {
  fusedops.rmsnorm_rope ins(%x, %w, %cos, %sin : memref<?x512xf32>, memref<512xf32>, memref<4096x64xf32>, memref<4096x64xf32>)
      positions(%pos : memref<?xi64>) outs(%o : memref<?x512xf32>) head_dim = 128 eps = 1.0e-6 style = gptj
      rotary_fraction = 0.5 {tile = #fusedops.tile<block = [1], warps = 1>}
  return
}

// -----

// Hidden and head sizes that only a narrower vector divides: 90 = 3 heads of
// 30, rotated half 15, so one element per vector.
// CHECK-LABEL: func.func @narrow_vectors
//       CHECK:   gpu.func @rmsnorm_rope
//       CHECK:     vector.load %{{.*}} {alignment = 2 : i64} : memref<?x90xf16>, vector<1xf16>
func.func @narrow_vectors(%x: memref<?x7x90xf16>, %w: memref<90xf16>, %cos: memref<7x30xf32>,
                          %sin: memref<7x30xf32>, %o: memref<?x7x90xf16>) {
  fusedops.rmsnorm_rope ins(%x, %w, %cos, %sin : memref<?x7x90xf16>, memref<90xf16>, memref<7x30xf32>, memref<7x30xf32>)
      outs(%o : memref<?x7x90xf16>) head_dim = 30 eps = 1.0e-6 style = neox
  return
}

// -----

// A weight of more than 32 KiB (12288 f32) stays in registers: the kernel has
// the reduction buffer alone.
// CHECK-LABEL: func.func @weight_in_registers
//       CHECK:   gpu.func @rmsnorm_rope({{.*}}) workgroup(%{{.*}} : memref<32xf32, #gpu.address_space<workgroup>>) kernel
func.func @weight_in_registers(%x: memref<?x12288xf32>, %w: memref<12288xf32>, %cos: memref<64x128xf32>,
                               %sin: memref<64x128xf32>, %o: memref<?x12288xf32>) {
  fusedops.rmsnorm_rope ins(%x, %w, %cos, %sin : memref<?x12288xf32>, memref<12288xf32>, memref<64x128xf32>, memref<64x128xf32>)
      outs(%o : memref<?x12288xf32>) head_dim = 128 eps = 1.0e-6 style = neox
  return
}

// -----

// Rows at once (block = [R, S] = [2, 4], one warp): QK-norm's 128-wide rows,
// each over 8 lanes (its 8 neox units), 4 consecutive rows a step and 2
// steps a block: 8 rows a block. A slot past the rows reads the last row
// (no branch before the shuffles) and stores nothing; the row's sum is
// shuffled across its 8 lanes only (xor 4, 2, 1), no barrier.
// CHECK-LABEL: func.func @rows_at_once
//       CHECK:   %[[BLOCKS:.*]] = arith.ceildivui %{{.*}}, %c8 : index
//       CHECK:   gpu.launch_func @fusedops_kernels::@rmsnorm_rope blocks in (%[[BLOCKS]], %{{.*}}, %{{.*}}) threads in (%c32,
//       CHECK: gpu.func @rmsnorm_rope
//       CHECK:   %[[SLOT:.*]] = arith.divui %thread_id_x, %c8 : index
//       CHECK:   %[[LANE:.*]] = arith.remui %thread_id_x, %c8{{.*}} : index
//       CHECK:   scf.for %[[I:.*]] = %{{.*}} to %c2 step
//       CHECK:     %[[STEP:.*]] = arith.addi %{{.*}}, %[[I]] : index
//       CHECK:     %[[FIRST:.*]] = arith.muli %[[STEP]], %c4 : index
//       CHECK:     %[[ROW:.*]] = arith.addi %[[FIRST]], %[[SLOT]] : index
//       CHECK:     %[[VALID:.*]] = arith.cmpi ult, %[[ROW]], %{{.*}} : index
//       CHECK:     %[[LAST:.*]] = arith.minui %[[ROW]], %{{.*}} : index
//       CHECK:     memref.load %{{.*}}[%[[LAST]]] : memref<?xi32>
//       CHECK:     gpu.shuffle  xor %{{.*}}, %c4_i32
//       CHECK:     gpu.shuffle  xor %{{.*}}, %c2_i32
//       CHECK:     gpu.shuffle  xor %{{.*}}, %c1_i32
//   CHECK-NOT:     gpu.barrier
//       CHECK:     scf.if %[[VALID]]
//       CHECK:       vector.store
func.func @rows_at_once(%x: memref<?x32x128xbf16>, %w: memref<128xbf16>, %cos: memref<4096x128xf32>, %sin: memref<4096x128xf32>, %p: memref<?x32xi32>, %o: memref<?x32x128xbf16>) {
  fusedops.rmsnorm_rope ins(%x, %w, %cos, %sin : memref<?x32x128xbf16>, memref<128xbf16>, memref<4096x128xf32>, memref<4096x128xf32>) positions(%p : memref<?x32xi32>) outs(%o : memref<?x32x128xbf16>) head_dim = 128 eps = 1.0e-6 style = neox {tile = #fusedops.tile<block = [2, 4], warps = 1>}
  return
}
