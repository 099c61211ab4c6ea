// rmsnorm_rope_grad as a row kernel (RmsNormStrategies.cpp): a grid of P
// blocks (the weight gradient's partial sums), each walking its run of
// C = ⌈rows / P⌉ consecutive rows: per row every load first (x and the gradient at
// a unit and its neox partner, the tables at the row's position), the two
// block sums (Σx², Σg·x: one warp, shuffles), rstd, dx stored per unit;
// the partial sums of dy·x·rstd carried in registers and stored once. The
// weight is loaded once per block (block = [1]: a row at a time). The output
// is upstream IR that upstream
// mlir-opt re-parses and verifies.
// REQUIRES: mlir-opt
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" -split-input-file | FileCheck %s
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_80" -split-input-file | FileCheck %s
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" | mlir-opt --verify-each -o /dev/null

// CHECK-LABEL: func.func @qk
// CHECK: %[[P:.*]] = memref.dim %{{.*}}, %c0{{.*}} : memref<2112x128xf32>
// CHECK: gpu.launch_func @fusedops_kernels::@rmsnorm_rope_grad blocks in (%[[P]], %{{.*}}, %{{.*}}) threads in (%c32,
// CHECK: gpu.func @rmsnorm_rope_grad(%[[X:.*]]: memref<?x128xbf16>, %[[W:.*]]: memref<128xbf16>, %[[COS:.*]]: memref<4096x128xf32>, %[[SIN:.*]]: memref<4096x128xf32>, %[[POS:.*]]: memref<?xi32>, %[[D:.*]]: memref<?x128xbf16>, %[[DX:.*]]: memref<?x128xbf16>, %[[DW:.*]]: memref<2112x128xf32>) workgroup(%{{.*}} : memref<4xf32, #gpu.address_space<workgroup>>) kernel
// CHECK: vector.load %[[W]]
// CHECK: vector.load %[[W]]
// CHECK: %[[BEGIN:.*]] = arith.muli %block_id_x, %{{.*}} : index
// CHECK: %[[SUMS:.*]]:2 = scf.for %[[ROW:.*]] = %[[BEGIN]] to %{{.*}} step %c1{{.*}} iter_args({{.*}}) -> (vector<8xf32>, vector<8xf32>)
// CHECK: memref.load %[[POS]][%[[ROW]]]
// CHECK: vector.load %[[X]][%[[ROW]],
// CHECK: vector.load %[[D]][%[[ROW]],
// CHECK: vector.load %[[COS]]
// CHECK: vector.load %[[SIN]]
// CHECK: vector.load %[[X]][%[[ROW]],
// CHECK: vector.load %[[D]][%[[ROW]],
// CHECK-NOT: vector.store
// CHECK: gpu.shuffle xor
// CHECK: math.rsqrt
// CHECK: vector.store %{{.*}}, %[[DX]][%[[ROW]], {{.*}} : memref<?x128xbf16>, vector<8xbf16>
// CHECK: vector.store %{{.*}}, %[[DX]][%[[ROW]], {{.*}} : memref<?x128xbf16>, vector<8xbf16>
// CHECK: scf.yield
// CHECK: vector.store %[[SUMS]]#0, %[[DW]][%block_id_x{{.*}}, {{.*}} : memref<2112x128xf32>, vector<8xf32>
// CHECK: vector.store %[[SUMS]]#1, %[[DW]][%block_id_x{{.*}}, {{.*}} : memref<2112x128xf32>, vector<8xf32>
func.func @qk(%x: memref<?x32x128xbf16>, %w: memref<128xbf16>, %cos: memref<4096x128xf32>, %sin: memref<4096x128xf32>, %d: memref<?x32x128xbf16>, %p: memref<?x32xi32>, %dx: memref<?x32x128xbf16>, %dw: memref<2112x128xf32>) {
  fusedops.rmsnorm_rope_grad ins(%x, %w, %cos, %sin, %d : memref<?x32x128xbf16>, memref<128xbf16>, memref<4096x128xf32>, memref<4096x128xf32>, memref<?x32x128xbf16>) positions(%p : memref<?x32xi32>) outs(%dx, %dw : memref<?x32x128xbf16>, memref<2112x128xf32>) head_dim = 128 eps = 1.0e-6 style = neox {tile = #fusedops.tile<block = [1], warps = 1>}
  return
}

// -----

// Four rows at once in a warp (block = [4]): each row over 8 lanes (its 8
// units), its sums shuffled across those lanes only (xor 4, 2, 1); rows
// b·C + 4i + slot, a slot past the block's rows reading the last row and
// storing nothing; the slots' partial sums added in slot order in shared memory and
// stored by slot 0.
// CHECK-LABEL: func.func @four_rows
// CHECK: gpu.func @rmsnorm_rope_grad({{.*}}) workgroup({{.*}}, %[[SLOTS:.*]] : memref<512xf32, #gpu.address_space<workgroup>>) kernel
// CHECK: %[[SLOT:.*]] = arith.divui %{{.*}}, %c8 : index
// CHECK: %[[C:.*]] = arith.ceildivui %[[ROWS:.*]], %[[P:.*]] : index
// CHECK: %[[BEGIN:.*]] = arith.muli %block_id_x, %[[C]] : index
// CHECK: %[[END0:.*]] = arith.addi %[[BEGIN]], %[[C]] : index
// CHECK: %[[END:.*]] = arith.minui %[[END0]], %[[ROWS]] : index
// CHECK: scf.for %[[J:.*]] = %[[BEGIN]] to %[[END]] step %c4
// CHECK: %[[ROW:.*]] = arith.addi %[[J]], %[[SLOT]] : index
// CHECK: arith.cmpi ult, %[[ROW]], %[[END]]
// CHECK: arith.minui
// CHECK: gpu.shuffle xor %{{.*}}, %c4_i32
// CHECK: gpu.shuffle xor %{{.*}}, %c2_i32
// CHECK: gpu.shuffle xor %{{.*}}, %c1_i32
// CHECK-NOT: gpu.shuffle xor %{{.*}}, %c8_i32
// CHECK: scf.yield
// CHECK: vector.store %{{.*}}, %[[SLOTS]]
// CHECK: gpu.barrier
// CHECK: vector.load %{{.*}} : memref<512xf32, #gpu.address_space<workgroup>>, vector<8xf32>
// CHECK: vector.store {{.*}} : memref<2112x128xf32>, vector<8xf32>
func.func @four_rows(%x: memref<?x32x128xbf16>, %w: memref<128xbf16>, %cos: memref<4096x128xf32>, %sin: memref<4096x128xf32>, %d: memref<?x32x128xbf16>, %p: memref<?x32xi32>, %dx: memref<?x32x128xbf16>, %dw: memref<2112x128xf32>) {
  fusedops.rmsnorm_rope_grad ins(%x, %w, %cos, %sin, %d : memref<?x32x128xbf16>, memref<128xbf16>, memref<4096x128xf32>, memref<4096x128xf32>, memref<?x32x128xbf16>) positions(%p : memref<?x32xi32>) outs(%dx, %dw : memref<?x32x128xbf16>, memref<2112x128xf32>) head_dim = 128 eps = 1.0e-6 style = neox {tile = #fusedops.tile<block = [4], warps = 1>}
  return
}

// -----

// The weight's gradient as a third output: the 2112 partial rows of the
// 128-wide weight summed by a second kernel (16 blocks of 8 columns; each
// of the 128 lane groups three trips of 6 loads), rounded to bf16 and stored
// (rms_norm_grad.mlir shows its structure).
// CHECK-LABEL: func.func @qk_summed
// CHECK: gpu.launch_func @fusedops_kernels::@rmsnorm_rope_grad blocks in
// CHECK: gpu.launch_func @fusedops_kernels::@rmsnorm_rope_grad_weight_sum blocks in ({{.*}}) threads in (%c256, %{{.*}}, %{{.*}}) args(%{{.*}} : memref<2112x128xf32>, %{{.*}} : memref<128xbf16>)
// CHECK: gpu.func @rmsnorm_rope_grad(
// CHECK: gpu.func @rmsnorm_rope_grad_weight_sum(%[[P:.*]]: memref<2112x128xf32>, %[[DW:.*]]: memref<128xbf16>)
// CHECK: scf.for %{{.*}} = %c0 to %c3 step %c1{{.*}} iter_args({{.*}}) -> (vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>)
// CHECK-COUNT-6: vector.load %[[P]]
// CHECK: gpu.barrier
// CHECK: arith.truncf %{{.*}} : vector<4xf32> to vector<4xbf16>
// CHECK: vector.store %{{.*}}, %[[DW]]
func.func @qk_summed(%x: memref<?x32x128xbf16>, %w: memref<128xbf16>, %cos: memref<4096x128xf32>, %sin: memref<4096x128xf32>, %d: memref<?x32x128xbf16>, %p: memref<?x32xi32>, %dx: memref<?x32x128xbf16>, %parts: memref<2112x128xf32>, %dw: memref<128xbf16>) {
  fusedops.rmsnorm_rope_grad ins(%x, %w, %cos, %sin, %d : memref<?x32x128xbf16>, memref<128xbf16>, memref<4096x128xf32>, memref<4096x128xf32>, memref<?x32x128xbf16>) positions(%p : memref<?x32xi32>) outs(%dx, %parts, %dw : memref<?x32x128xbf16>, memref<2112x128xf32>, memref<128xbf16>) head_dim = 128 eps = 1.0e-6 style = neox {tile = #fusedops.tile<block = [1], warps = 1>}
  return
}
