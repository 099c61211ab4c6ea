// The GEMM ops as kernels and launches, each strategy's default tile: the
// sm_90a wgmma mainloop (Wgmma.cpp) and the sm_80 mma.sync one. The output
// is upstream IR that upstream mlir-opt re-parses and verifies.
// REQUIRES: mlir-opt
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" -split-input-file | FileCheck %s --check-prefixes=CHECK,SM90
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_80" -split-input-file | FileCheck %s --check-prefixes=CHECK,SM80
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" | mlir-opt --verify-each -o /dev/null
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_80" | mlir-opt --verify-each -o /dev/null

// gated_mlp, sm_90a: two warpgroups of 64×128 for gate and up; one block per
// 128×128 output tile in a 1-D grid (grouped order); 4 stages of x, Wg and
// Wu tiles in dynamic shared memory aligned to 1024 at run time; per K tile
// the copies' wait, the proxy fence, the barrier, the next copies, then two
// m64n128k16 wgmmas per 16 of K (gate and up share the x descriptor).
// CHECK-LABEL: func.func @mlp
// SM90: gpu.launch_func @fusedops_kernels::@gated_mlp blocks in (%{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c256
// SM90-SAME: dynamic_shared_memory_size %c197632_i32
// SM90: gpu.func @gated_mlp(
// SM90: gpu.dynamic_shared_memory
// SM90: memref.extract_aligned_pointer_as_index
// SM90: nvgpu.device_async_copy {{.*}} : memref<?x4096xbf16> to memref<4x128x64xbf16, #gpu.address_space<workgroup>>
// SM90: nvvm.cp.async.commit.group
// SM90: scf.for
// SM90: nvvm.cp.async.wait.group 1
// SM90: nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// SM90: gpu.barrier
// SM90: nvvm.wgmma.fence.aligned
// SM90: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 128, k = 16>, D[<f32>, <one>], A[<bf16>, <one>, <row>], B[<bf16>, <one>, <col>]
// SM90: nvvm.wgmma.commit.group.sync.aligned
// SM90: nvvm.wgmma.wait.group.sync.aligned 1
// SM90: math.exp
// SM90: vector.store {{.*}} : memref<?x11008xbf16>, vector<2xbf16>
// sm_80: cp.async ring, ldmatrix, mma.sync m16n8k16.
// SM80: gpu.launch_func @fusedops_kernels::@gated_mlp
// SM80: gpu.func @gated_mlp(
// SM80: nvgpu.device_async_copy
// SM80: nvvm.cp.async.commit.group
// SM80: nvvm.cp.async.wait.group
// SM80: nvgpu.ldmatrix
// SM80: nvvm.mma.sync
func.func @mlp(%x: memref<?x4096xbf16>, %wg: memref<11008x4096xbf16>, %wu: memref<11008x4096xbf16>, %o: memref<?x11008xbf16>) {
  fusedops.gated_mlp ins(%x, %wg, %wu : memref<?x4096xbf16>, memref<11008x4096xbf16>, memref<11008x4096xbf16>) outs(%o : memref<?x11008xbf16>) activation = silu
  return
}

// -----

// fp8_gemm with row scales, sm_90a: promoted, K tiles in pairs, each from
// zero (scale-d zero on its first wgmma), then added to the f32 sums.
// CHECK-LABEL: func.func @fp8
// SM90: gpu.func @fp8_gemm(
// SM90: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 128, k = 32>, D[<f32>, <zero>], A[<e4m3>, <one>, <row>], B[<e5m2>, <one>, <col>]
// SM90: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 128, k = 32>, D[<f32>, <one>], A[<e4m3>, <one>, <row>], B[<e5m2>, <one>, <col>]
// SM90: arith.addf
// sm_80: FP8 decoded to f16 tiles, f16 mma.sync.
// SM80: gpu.func @fp8_gemm(
// SM80: nvvm.mma.sync
func.func @fp8(%a: memref<?x4096xf8E4M3FN>, %b: memref<4096x4096xf8E5M2>, %sa: memref<?xf32>, %sb: memref<4096xf32>, %o: memref<?x4096xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<?x4096xf8E4M3FN>, memref<4096x4096xf8E5M2>, memref<?xf32>, memref<4096xf32>) outs(%o : memref<?x4096xbf16>) granularity = row
  return
}
