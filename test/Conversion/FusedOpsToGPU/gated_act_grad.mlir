// gated_act_grad as an elementwise kernel (ElementwiseStrategies.cpp), the
// same on every chip: the five tensors passed as [rows, N] and read as
// vectors in the kernel, a block of 256
// threads taking 2 slots of 8 bf16 (16 bytes) each, strided by the block;
// every load of a thread before its first store (a slot past the end
// loads the last vector and stores nothing); the math in f32. The output is
// upstream IR that upstream mlir-opt re-parses and verifies.
// REQUIRES: mlir-opt
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" -split-input-file | FileCheck %s
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_80" -split-input-file | FileCheck %s
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" | mlir-opt --verify-each -o /dev/null

// CHECK-LABEL: func.func @silu
// CHECK: %[[M:.*]] = memref.dim %arg0, %c0 : memref<?x11008xbf16>
// CHECK: %[[E:.*]] = arith.muli %[[M]], %{{.*}} : index
// CHECK: %[[GRID:.*]] = arith.ceildivui %[[E]], %c4096 : index
// CHECK: gpu.launch_func @fusedops_kernels::@gated_act_grad blocks in (%[[GRID]], %{{.*}}, %{{.*}}) threads in (%c256,
// CHECK: gpu.func @gated_act_grad(%{{.*}}: memref<?x11008xbf16>,
// CHECK: %[[G:.*]] = memref.collapse_shape %arg0 {{\[\[}}0, 1]] : memref<?x11008xbf16> into memref<?xbf16>
// CHECK: %[[U:.*]] = memref.collapse_shape %arg1
// CHECK: %[[D:.*]] = memref.collapse_shape %arg2
// CHECK: %[[DG:.*]] = memref.collapse_shape %arg3
// CHECK: %[[DU:.*]] = memref.collapse_shape %arg4
// CHECK: vector.load %[[G]]
// CHECK-NEXT: vector.load %[[U]]
// CHECK-NEXT: vector.load %[[D]]
// CHECK-NOT: vector.store
// CHECK: vector.load %[[G]]
// CHECK-NEXT: vector.load %[[U]]
// CHECK-NEXT: vector.load %[[D]]
// CHECK-NOT: vector.store
// CHECK: scf.if
// CHECK: math.exp {{.*}} : vector<8xf32>
// CHECK: vector.store %{{.*}}, %[[DG]][{{.*}}] {alignment = 16 : i64} : memref<?xbf16>, vector<8xbf16>
// CHECK: vector.store %{{.*}}, %[[DU]][{{.*}}] {alignment = 16 : i64} : memref<?xbf16>, vector<8xbf16>
func.func @silu(%g: memref<?x11008xbf16>, %u: memref<?x11008xbf16>, %d: memref<?x11008xbf16>, %dg: memref<?x11008xbf16>, %du: memref<?x11008xbf16>) {
  fusedops.gated_act_grad ins(%g, %u, %d : memref<?x11008xbf16>, memref<?x11008xbf16>, memref<?x11008xbf16>) outs(%dg, %du : memref<?x11008xbf16>, memref<?x11008xbf16>) activation = silu
  return
}

// -----

// A last dimension of 6 f16 (12 bytes): vectors of 2 elements, which divide
// every row; a tile of 4 slots and 4 warps takes 1024 elements a block.
// CHECK-LABEL: func.func @narrow
// CHECK: arith.ceildivui %{{.*}}, %c1024 : index
// CHECK: threads in (%c128,
// CHECK: vector.load {{.*}} : memref<90xf16>, vector<2xf16>
// CHECK: math.erf {{.*}} : vector<2xf32>
func.func @narrow(%g: memref<3x5x6xf16>, %u: memref<3x5x6xf16>, %d: memref<3x5x6xf16>, %dg: memref<3x5x6xf16>, %du: memref<3x5x6xf16>) {
  fusedops.gated_act_grad ins(%g, %u, %d : memref<3x5x6xf16>, memref<3x5x6xf16>, memref<3x5x6xf16>) outs(%dg, %du : memref<3x5x6xf16>, memref<3x5x6xf16>) activation = gelu {tile = #fusedops.tile<block = [4], warps = 4>}
  return
}
