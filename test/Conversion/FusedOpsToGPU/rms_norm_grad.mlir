// rms_norm_grad as a row kernel (RmsNormStrategies.cpp): a grid of P blocks
// (the weight gradient's partial sums), each walking its run of
// C = ⌈rows / P⌉ consecutive rows. Per row: every load first (x, the
// gradient, the weight), Σx² and Σg·x (g = grad·(offset + w)) reduced
// together (one barrier, through one half of the exchange buffer, the other
// half for the next row: no barrier between rows), then the row read again
// (L1: no registers hold it across the barrier), dx stored and grad·x·rstd
// added to the partial sums, carried in registers and stored once. The
// output is upstream IR that upstream mlir-opt re-parses and verifies.
// REQUIRES: mlir-opt
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" -split-input-file | FileCheck %s
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_80" -split-input-file | FileCheck %s
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" | mlir-opt --verify-each -o /dev/null

// A 4096-wide bf16 row over 4 warps: four 8-wide vectors a thread.
// CHECK-LABEL: func.func @norm
// CHECK: %[[P:.*]] = memref.dim %{{.*}}, %c0{{.*}} : memref<1056x4096xf32>
// CHECK: gpu.launch_func @fusedops_kernels::@rms_norm_grad blocks in (%[[P]], %{{.*}}, %{{.*}}) threads in (%c128,
// CHECK: gpu.func @rms_norm_grad(%[[X:.*]]: memref<?x4096xbf16>, %[[W:.*]]: memref<4096xbf16>, %[[D:.*]]: memref<?x4096xbf16>, %[[DX:.*]]: memref<?x4096xbf16>, %[[DW:.*]]: memref<1056x4096xf32>) workgroup(%[[BUF:.*]] : memref<16xf32, #gpu.address_space<workgroup>>) kernel
// CHECK: %[[BEGIN:.*]] = arith.muli %block_id_x, %{{.*}} : index
// CHECK: %[[SUMS:.*]]:4 = scf.for %[[ROW:.*]] = %[[BEGIN]] to %{{.*}} step %c1{{.*}} iter_args({{.*}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK: %[[SINCE:.*]] = arith.subi %[[ROW]], %[[BEGIN]]
// CHECK: %[[PARITY:.*]] = arith.andi %[[SINCE]], %c1
// CHECK: %[[HALF:.*]] = arith.muli %[[PARITY]], %c8
// CHECK: vector.load %[[X]][%[[ROW]],
// CHECK: vector.load %[[D]][%[[ROW]],
// CHECK: vector.load %[[X]][%[[ROW]],
// CHECK: vector.load %[[D]][%[[ROW]],
// CHECK: vector.load %[[X]][%[[ROW]],
// CHECK: vector.load %[[D]][%[[ROW]],
// CHECK: vector.load %[[X]][%[[ROW]],
// CHECK: vector.load %[[D]][%[[ROW]],
// CHECK-COUNT-4: vector.load %[[W]]
// CHECK-NOT: vector.store
// CHECK: memref.store %{{.*}}, %[[BUF]]
// CHECK: memref.store %{{.*}}, %[[BUF]]
// CHECK: gpu.barrier
// CHECK-NOT: gpu.barrier
// CHECK: math.rsqrt
// CHECK-COUNT-4: vector.load %[[X]][%[[ROW]], {{.*}} vector<8xbf16>{{$}}
// CHECK-NOT: gpu.barrier
// CHECK-COUNT-4: vector.store %{{.*}}, %[[DX]][%[[ROW]], {{.*}} : memref<?x4096xbf16>, vector<8xbf16>
// CHECK-NOT: gpu.barrier
// CHECK: scf.yield
// CHECK-COUNT-4: vector.store %[[SUMS]]#{{.*}}, %[[DW]][%block_id_x{{.*}}, {{.*}} : memref<1056x4096xf32>, vector<8xf32>
func.func @norm(%x: memref<?x4096xbf16>, %w: memref<4096xbf16>, %d: memref<?x4096xbf16>, %dx: memref<?x4096xbf16>, %dw: memref<1056x4096xf32>) {
  fusedops.rms_norm_grad ins(%x, %w, %d : memref<?x4096xbf16>, memref<4096xbf16>, memref<?x4096xbf16>) outs(%dx, %dw : memref<?x4096xbf16>, memref<1056x4096xf32>) eps = 1.0e-6 {tile = #fusedops.tile<block = [1], warps = 4>}
  return
}

// -----

// add_rms_norm's backward (the sum's gradient added to dx) with Gemma's
// offset, four 128-wide f16 rows at once in a warp (block = [4]): each row
// over 8 lanes, its sums shuffled across those lanes only (xor 4, 2, 1); rows
// b·C + 4i + slot, a slot past the block's rows reading the last row and
// storing nothing; the slots' partial sums added in slot order in shared
// memory and stored by slot 0.
// CHECK-LABEL: func.func @add_four_rows
// CHECK: gpu.launch_func @fusedops_kernels::@add_rms_norm_grad
// CHECK: gpu.func @add_rms_norm_grad(%[[X:.*]]: memref<?x128xf16>, %[[W:.*]]: memref<128xf16>, %[[D:.*]]: memref<?x128xf16>, %[[R:.*]]: memref<?x128xf16>, %[[DX:.*]]: memref<?x128xf16>, %{{.*}}: memref<64x128xf32>) workgroup(%{{.*}} : memref<4xf32, #gpu.address_space<workgroup>>, %[[SLOTS:.*]] : memref<512xf32, #gpu.address_space<workgroup>>) kernel
// CHECK: %[[SLOT:.*]] = arith.divui %{{.*}}, %c8 : index
// CHECK: %[[C:.*]] = arith.ceildivui %[[ROWS:.*]], %[[P:.*]] : index
// CHECK: %[[BEGIN:.*]] = arith.muli %block_id_x, %[[C]] : index
// CHECK: %[[END0:.*]] = arith.addi %[[BEGIN]], %[[C]] : index
// CHECK: %[[END:.*]] = arith.minui %[[END0]], %[[ROWS]] : index
// CHECK: scf.for %[[J:.*]] = %[[BEGIN]] to %[[END]] step %c4
// CHECK: %[[ROW0:.*]] = arith.addi %[[J]], %[[SLOT]] : index
// CHECK: arith.cmpi ult, %[[ROW0]], %[[END]]
// CHECK: %[[ROW:.*]] = arith.minui
// CHECK: vector.load %[[X]][%[[ROW]],
// CHECK: vector.load %[[D]][%[[ROW]],
// CHECK: arith.constant dense<1.000000e+00> : vector<8xf32>
// CHECK: gpu.shuffle xor %{{.*}}, %c4_i32
// CHECK: gpu.shuffle xor %{{.*}}, %c2_i32
// CHECK: gpu.shuffle xor %{{.*}}, %c1_i32
// CHECK-NOT: gpu.shuffle xor %{{.*}}, %c8_i32
// CHECK-NOT: gpu.barrier
// CHECK: vector.load %[[R]][%[[ROW]],
// CHECK: vector.store %{{.*}}, %[[DX]][%[[ROW]],
// CHECK: scf.yield
// CHECK: vector.store %{{.*}}, %[[SLOTS]]
// CHECK: gpu.barrier
// CHECK: vector.load %{{.*}} : memref<512xf32, #gpu.address_space<workgroup>>, vector<8xf32>
// CHECK: vector.store {{.*}} : memref<64x128xf32>, vector<8xf32>
func.func @add_four_rows(%x: memref<?x128xf16>, %w: memref<128xf16>, %d: memref<?x128xf16>, %r: memref<?x128xf16>, %dx: memref<?x128xf16>, %dw: memref<64x128xf32>) {
  fusedops.rms_norm_grad ins(%x, %w, %d : memref<?x128xf16>, memref<128xf16>, memref<?x128xf16>) residual_grad(%r : memref<?x128xf16>) outs(%dx, %dw : memref<?x128xf16>, memref<64x128xf32>) eps = 1.0e-6 weight_offset = 1.0 {tile = #fusedops.tile<block = [4], warps = 1>}
  return
}

// -----

// With the weight's gradient as a third output the op sums the partial rows
// itself: after the row kernel (here at 5 blocks per SM, nvvm.minctasm: a
// 96-register budget for 32 elements a thread of a 16-bit row) a second
// kernel of 256 threads, 8 columns a block (4096 / 512 blocks), each column
// quad over 2 lanes and the 1056 partial rows over the 128 lane groups: two
// trips of 5 loads in flight (rows past the last read the last and add
// zero), the groups' sums shuffled across a warp (xor 16 … 2, not 1: that is
// the other lane), the 8 warps' sums added in warp order from shared memory
// (a fixed order: the same bits every run), rounded to bf16 and stored.
// CHECK-LABEL: func.func @summed
// CHECK: gpu.launch_func @fusedops_kernels::@rms_norm_grad blocks in
// CHECK: %[[BLOCKS:.*]] = arith.ceildivui %{{.*}}, %c8
// CHECK: gpu.launch_func @fusedops_kernels::@rms_norm_grad_weight_sum blocks in (%[[BLOCKS]], %{{.*}}, %{{.*}}) threads in (%c256, %{{.*}}, %{{.*}}) args(%{{.*}} : memref<1056x4096xf32>, %{{.*}} : memref<4096xbf16>)
// CHECK: gpu.func @rms_norm_grad({{.*}}) workgroup({{.*}}) kernel attributes {known_block_size = array<i32: 128, 1, 1>, nvvm.minctasm = 5 : i32}
// CHECK: gpu.func @rms_norm_grad_weight_sum(%[[P:.*]]: memref<1056x4096xf32>, %[[DW:.*]]: memref<4096xbf16>) workgroup(%[[WARPS:.*]] : memref<64xf32, #gpu.address_space<workgroup>>) kernel attributes {known_block_size = array<i32: 256, 1, 1>}
// CHECK: %[[LANE:.*]] = arith.remui %thread_id_x, %c2
// CHECK: %[[GROUP:.*]] = arith.divui %thread_id_x, %c2
// CHECK: scf.for %{{.*}} = %c0 to %c2{{.*}} step %c1{{.*}} iter_args({{.*}}) -> (vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>)
// CHECK-COUNT-5: vector.load %[[P]][{{.*}}] {alignment = 16 : i64} : memref<1056x4096xf32>, vector<4xf32>
// CHECK-COUNT-5: arith.select
// CHECK: scf.yield
// CHECK: gpu.shuffle xor %{{.*}}, %c16_i32
// CHECK-NEXT: arith.addf
// CHECK: gpu.shuffle xor %{{.*}}, %c8_i32
// CHECK-NEXT: arith.addf
// CHECK: gpu.shuffle xor %{{.*}}, %c4_i32
// CHECK-NEXT: arith.addf
// CHECK: gpu.shuffle xor %{{.*}}, %c2_i32
// CHECK-NEXT: arith.addf
// CHECK-NOT: gpu.shuffle xor %{{.*}}, %c1_i32
// CHECK: vector.store %{{.*}}, %[[WARPS]]
// CHECK: gpu.barrier
// CHECK-COUNT-8: vector.load %[[WARPS]]
// CHECK: arith.truncf %{{.*}} : vector<4xf32> to vector<4xbf16>
// CHECK: vector.store %{{.*}}, %[[DW]]
// CHECK-NOT: gpu.func
func.func @summed(%x: memref<?x4096xbf16>, %w: memref<4096xbf16>, %d: memref<?x4096xbf16>, %dx: memref<?x4096xbf16>, %p: memref<1056x4096xf32>, %dw: memref<4096xbf16>) {
  fusedops.rms_norm_grad ins(%x, %w, %d : memref<?x4096xbf16>, memref<4096xbf16>, memref<?x4096xbf16>) outs(%dx, %p, %dw : memref<?x4096xbf16>, memref<1056x4096xf32>, memref<4096xbf16>) eps = 1.0e-6 {tile = #fusedops.tile<block = [1], warps = 4>}
  return
}
