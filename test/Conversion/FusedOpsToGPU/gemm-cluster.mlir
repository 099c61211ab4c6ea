// A 2×1 cluster of the sm_90a wgmma mainloop (Wgmma.cpp): the two blocks of
// a cluster compute vertically adjacent output tiles and each loads half of
// the B tile for both with TMA multicast. The output is upstream IR that
// upstream mlir-opt re-parses and verifies.
// REQUIRES: mlir-opt
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" | FileCheck %s
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" | mlir-opt --verify-each -o /dev/null

// Host code: A's tensor map reads boxes of 128 rows, B's of 64 (half of
// BN); the grid covers whole clusters (M in 256-row cluster tiles, two
// blocks each) and the resident blocks are rounded down to whole clusters.
// CHECK-LABEL: func.func @fp8
// CHECK: llvm.call @mgpuTensorMapEncode2D({{.*}}, %c128_i32{{.*}}, %c128_i32{{.*}}, %c128_i32
// CHECK: llvm.call @mgpuTensorMapEncode2D({{.*}}, %c64_i32, %c128_i32{{.*}}, %c128_i32
// CHECK: %[[CTILES:.*]] = arith.ceildivui %{{.*}}, %c256
// CHECK: %[[TILES:.*]] = arith.muli %[[CTILES]], %c64
// CHECK: llvm.call @mgpuMultiprocessorCount()
// CHECK: %[[HALF:.*]] = arith.divui %{{.*}}, %c2
// CHECK: %[[RESIDENT:.*]] = arith.muli %[[HALF]], %c2
// CHECK: %[[GRID:.*]] = arith.minui %[[TILES]], %[[RESIDENT]]
// CHECK: gpu.launch_func @fusedops_kernels::@fp8_gemm blocks in (%[[GRID]],
// The kernel: compiled for clusters of two; a slot's `empty` mbarrier waits
// for one arrival per MMA warpgroup of each block (4); the cluster barrier
// before any block touches the other's mbarriers.
// CHECK: gpu.func @fp8_gemm({{.*}} kernel
// CHECK-SAME: known_cluster_size = array<i32: 2, 1, 1>
// CHECK: nvvm.mbarrier.init %{{.*}}, %c1_i32
// CHECK: nvvm.mbarrier.init %{{.*}}, %c4_i32
// CHECK: nvvm.fence.mbarrier.init
// CHECK-NOT: gpu.barrier
// CHECK: nvvm.cluster.arrive
// CHECK: nvvm.cluster.wait
// CHECK: %[[RANK:.*]] = arith.remui %block_id_x, %c2
// Producer: the cluster's tiles (cluster id = blockIdx.x / 2), A's box to
// this block, its half of B multicast to both blocks; then it waits until
// every slot was given back for its last use.
// CHECK: nvvm.setmaxregister  decrease 40
// CHECK: %[[CSTEP:.*]] = arith.divui %grid_dim_x, %c2
// CHECK: %[[CID:.*]] = arith.divui %block_id_x{{.*}}, %c2
// CHECK: %[[ISSUED:.*]] = scf.for %{{.*}} = %[[CID]] to %{{.*}} step %[[CSTEP]]
// CHECK: nvvm.mbarrier.arrive.expect_tx %{{.*}}, %c32768_i32
// CHECK: nvvm.cp.async.bulk.tensor.shared.cluster.global %{{.*}}, %arg5, %{{.*}}, box[%{{.*}}, %{{.*}}] : !llvm.ptr<7>, !llvm.ptr
// CHECK: nvvm.cp.async.bulk.tensor.shared.cluster.global %{{.*}}, %arg6, %{{.*}}, box[%{{.*}}, %{{.*}}] multicast_mask = %c3_i16
// CHECK-COUNT-5: nvvm.mbarrier.try_wait.parity
// MMA warpgroups: thread 0 of each gives the slot back here, thread 32 to
// the other block (its mbarrier at the same offset, through mapa), with the
// default release at CTA scope (at cluster scope ptxas adds a MEMBAR.ALL.GPU).
// CHECK: nvvm.setmaxregister  increase 232
// CHECK: nvvm.mbarrier.arrive %{{.*}} : !llvm.ptr<3>
// CHECK: %[[OTHER:.*]] = arith.xori %[[RANK]], %c1
// CHECK: nvvm.mapa %{{.*}}, %{{.*}} : !llvm.ptr<3> -> !llvm.ptr<7>
// CHECK: nvvm.mbarrier.arrive %{{.*}} : !llvm.ptr<7>
func.func @fp8(%a: memref<?x4096xf8E4M3FN>, %b: memref<4096x4096xf8E4M3FN>, %sa: memref<?xf32>, %sb: memref<4096xf32>, %o: memref<?x4096xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<?x4096xf8E4M3FN>, memref<4096x4096xf8E4M3FN>, memref<?xf32>, memref<4096xf32>) outs(%o : memref<?x4096xbf16>) granularity = row {tile = #fusedops.tile<block = [128, 128, 128], warps = 8, stages = 5, cluster = [2]>}
  return
}
