// The sm_90a ping-pong schedule (Wgmma.cpp), which sm_80 has not: its own
// file so that the sm_80 runs of gemm.mlir stay error-free.
// REQUIRES: mlir-opt
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" | FileCheck %s
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" | mlir-opt --verify-each -o /dev/null

// Ping-pong (BM 64 with two MMA warpgroups): each warpgroup takes every
// other tile of its block (from tile blockIdx.x + w·gridDim.x, stepping by
// two grids, its ring tiles starting at w·numK), so a slot is given back by
// one warpgroup (128 arrivals); the A box is 64 rows.
// CHECK-LABEL: func.func @pingpong
// CHECK: llvm.call @mgpuTensorMapEncode2D({{.*}}, %c64_i32, %c64_i32{{.*}}, %c128_i32
// CHECK: gpu.func @gated_mlp(
// CHECK: nvvm.mbarrier.init %{{.*}}, %c128_i32 : !llvm.ptr<3>, i32
// CHECK: nvvm.setmaxregister  increase 232
// CHECK: %[[MMATID:.*]] = arith.subi %thread_id_x, %c128
// CHECK: %[[WG:.*]] = arith.divui %[[MMATID]], %c128
// CHECK: %[[GRID:.*]] = gpu.grid_dim  x
// CHECK: %[[SKIP:.*]] = arith.muli %[[WG]], %[[GRID]]
// CHECK: %[[BID:.*]] = gpu.block_id  x
// CHECK: %[[START:.*]] = arith.addi %[[BID]], %[[SKIP]]
// CHECK: %[[FIRST:.*]] = arith.muli %[[WG]], %c4
// CHECK: %[[STEP:.*]] = arith.muli %[[GRID]], %c2
// CHECK: scf.for %{{.*}} = %[[START]] to %{{.*}} step %[[STEP]] iter_args(%{{.*}} = %[[FIRST]])
// CHECK: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 128, k = 16>
func.func @pingpong(%x: memref<3x256xf16>, %wg: memref<200x256xf16>, %wu: memref<200x256xf16>, %o: memref<3x200xf16>) {
  fusedops.gated_mlp ins(%x, %wg, %wu : memref<3x256xf16>, memref<200x256xf16>, memref<200x256xf16>) outs(%o : memref<3x200xf16>) activation = silu {tile = #fusedops.tile<block = [64, 128, 64], warps = 8, stages = 4>}
  return
}
