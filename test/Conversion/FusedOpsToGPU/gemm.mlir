// The GEMM ops as kernels and launches, each strategy's default tile: the
// sm_90a wgmma mainloop (Wgmma.cpp) and the sm_80 mma.sync one. The output
// is upstream IR that upstream mlir-opt re-parses and verifies.
// REQUIRES: mlir-opt
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" -split-input-file | FileCheck %s --check-prefixes=CHECK,SM90
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_80" -split-input-file | FileCheck %s --check-prefixes=CHECK,SM80
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" | mlir-opt --verify-each -o /dev/null
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_80" | mlir-opt --verify-each -o /dev/null

// gated_mlp, sm_90a: host code encodes a tensor map of x, Wg and Wu (boxes
// of 128 and 128 rows × 64 columns, 128-byte swizzle) and of the output
// (boxes of 16 rows × 64 columns: a warp's 128-byte rows) and sizes a
// persistent grid by the device's SMs; the kernel takes the maps last.
// Producer warpgroup: mbarriers initialised by one thread, setmaxnreg down,
// one thread walks this block's tiles (blockIdx.x, + gridDim.x) and per K
// tile waits for the slot to be empty (parity), expects the tile's 49152
// bytes and issues three TMA loads. MMA warpgroups: setmaxnreg up, per K
// tile wait for the full barrier, two m64n128k16 wgmmas per 16 of K (gate
// and up share the x descriptor; the first K tile from zero), wait for all
// but the latest group, give the previous slot back; then act(gate)·up,
// per 64 columns written by each warp into its shared-memory buffer (the
// buffer's previous store read it), fenced for the async proxy and stored
// by one lane with TMA; the last stores complete before the block exits.
// CHECK-LABEL: func.func @mlp
// SM90: llvm.alloca {{.*}} x !llvm.array<16 x i64> {alignment = 64 : i64}
// SM90: llvm.call @mgpuTensorMapEncode2D({{.*}}, %c2_i32, {{.*}}, %c128_i32, %c64_i32, %c128_i32
// SM90: llvm.call @mgpuTensorMapEncode2D
// SM90: llvm.call @mgpuTensorMapEncode2D
// SM90: llvm.call @mgpuTensorMapEncode2D({{.*}}, %c2_i32{{.*}}, {{.*}}, %c16_i32, %c64_i32{{.*}}, %c128_i32
// SM90: llvm.call @mgpuMultiprocessorCount()
// SM90: arith.minui
// SM90: gpu.launch_func @fusedops_kernels::@gated_mlp blocks in (%{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c384
// SM90-SAME: dynamic_shared_memory_size %c230464_i32
// SM90-SAME: !llvm.ptr, %{{.*}} : !llvm.ptr, %{{.*}} : !llvm.ptr, %{{.*}} : !llvm.ptr)
// SM90: gpu.func @gated_mlp({{.*}}, %[[MAPX:.*]]: !llvm.ptr, %[[MAPG:.*]]: !llvm.ptr, %[[MAPU:.*]]: !llvm.ptr, %[[MAPO:.*]]: !llvm.ptr) kernel
// SM90-SAME: fusedops.tensor_map_params = 4 : i64
// SM90-SAME: nvvm.minctasm = 1 : i32
// SM90: gpu.dynamic_shared_memory
// SM90: nvvm.mbarrier.init %{{.*}}, %c1_i32 : !llvm.ptr<3>, i32
// SM90: nvvm.mbarrier.init %{{.*}}, %c256_i32 : !llvm.ptr<3>, i32
// SM90: nvvm.fence.mbarrier.init
// SM90: gpu.barrier
// SM90: nvvm.setmaxregister  decrease 40
// SM90: scf.for %{{.*}} = %block_id_x to %{{.*}} step %grid_dim_x
// SM90: nvvm.mbarrier.try_wait.parity
// SM90: nvvm.mbarrier.arrive.expect_tx %{{.*}}, %c49152_i32
// SM90: nvvm.cp.async.bulk.tensor.shared.cluster.global %{{.*}}, %[[MAPX]], %{{.*}}, box[
// SM90: nvvm.cp.async.bulk.tensor.shared.cluster.global %{{.*}}, %[[MAPG]], %{{.*}}, box[
// SM90: nvvm.cp.async.bulk.tensor.shared.cluster.global %{{.*}}, %[[MAPU]], %{{.*}}, box[
// SM90: nvvm.setmaxregister  increase 232
// SM90: scf.for %{{.*}} = %block_id_x to %{{.*}} step %grid_dim_x
// SM90: nvvm.mbarrier.try_wait.parity
// SM90: nvvm.wgmma.fence.aligned
// SM90: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 128, k = 16>, D[<f32>, <zero>], A[<bf16>, <one>, <row>], B[<bf16>, <one>, <col>]
// SM90: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 128, k = 16>, D[<f32>, <zero>], A[<bf16>, <one>, <row>], B[<bf16>, <one>, <col>]
// SM90: nvvm.wgmma.commit.group.sync.aligned
// SM90: nvvm.wgmma.wait.group.sync.aligned 1
// SM90: scf.for
// SM90: nvvm.mbarrier.try_wait.parity
// SM90: nvvm.wgmma.mma_async {{.*}} D[<f32>, <one>]
// SM90: nvvm.wgmma.wait.group.sync.aligned 1
// SM90: nvvm.mbarrier.arrive
// SM90: nvvm.wgmma.wait.group.sync.aligned 0
// SM90: nvvm.mbarrier.arrive
// SM90: math.exp
// SM90: nvvm.cp.async.bulk.wait_group 0 {read}
// SM90: nvvm.bar.warp.sync
// SM90: llvm.store {{.*}} : vector<2xbf16>, !llvm.ptr<3>
// SM90: nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// SM90-NEXT: nvvm.bar.warp.sync
// SM90: nvvm.cp.async.bulk.tensor.global.shared.cta %[[MAPO]]
// SM90-NEXT: nvvm.cp.async.bulk.commit.group
// SM90: nvvm.cp.async.bulk.wait_group 1 {read}
// SM90: nvvm.cp.async.bulk.tensor.global.shared.cta %[[MAPO]]
// SM90-NOT: vector.store
// SM90: scf.yield
// SM90: nvvm.cp.async.bulk.wait_group 0{{$}}
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

// gated_mlp_grad: gated_mlp's GEMM (two wgmmas per 16 of K sharing x's
// descriptor; on sm_80 mma.sync) with its own epilogue. Tensor maps of x,
// Wg and Wu only: the two outputs are stored from registers (the staged TMA
// store serves one output), so there is no store buffer and no TMA store.
// Per pair: the output's gradient loaded (two bf16), act(g) and act′(g)
// (silu: exp), grad_gate and grad_up stored.
// CHECK-LABEL: func.func @mlp_grad
// SM90-COUNT-3: llvm.call @mgpuTensorMapEncode2D({{.*}}, %c2_i32{{.*}}, {{.*}}, %c128_i32{{.*}}, %c64_i32{{.*}}, %c128_i32
// SM90-NOT: llvm.call @mgpuTensorMapEncode2D
// SM90: gpu.launch_func @fusedops_kernels::@gated_mlp_grad
// SM90-SAME: dynamic_shared_memory_size %c197696_i32
// SM90: gpu.func @gated_mlp_grad(%[[X:.*]]: memref<?x4096xbf16>, %{{.*}}: memref<11008x4096xbf16>, %{{.*}}: memref<11008x4096xbf16>, %[[DH:.*]]: memref<?x11008xbf16>, %[[DG:.*]]: memref<?x11008xbf16>, %[[DU:.*]]: memref<?x11008xbf16>, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr) kernel
// SM90-SAME: fusedops.tensor_map_params = 3 : i64
// SM90: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 128, k = 16>
// SM90: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 128, k = 16>
// SM90: vector.load %[[DH]][{{.*}}] {alignment = 4 : i64} : memref<?x11008xbf16>, vector<2xbf16>
// SM90: math.exp
// SM90: vector.store %{{.*}}, %[[DG]][{{.*}}] {alignment = 4 : i64} : memref<?x11008xbf16>, vector<2xbf16>
// SM90: vector.store %{{.*}}, %[[DU]][{{.*}}] {alignment = 4 : i64} : memref<?x11008xbf16>, vector<2xbf16>
// SM90-NOT: nvvm.cp.async.bulk.tensor.global.shared.cta
// SM80: gpu.func @gated_mlp_grad(%{{.*}}: memref<?x4096xbf16>, %{{.*}}: memref<11008x4096xbf16>, %{{.*}}: memref<11008x4096xbf16>, %[[DH:.*]]: memref<?x11008xbf16>, %[[DG:.*]]: memref<?x11008xbf16>, %[[DU:.*]]: memref<?x11008xbf16>) kernel
// SM80: nvvm.mma.sync
// SM80: vector.load %[[DH]]
// SM80: vector.store %{{.*}}, %[[DG]]
// SM80: vector.store %{{.*}}, %[[DU]]
func.func @mlp_grad(%x: memref<?x4096xbf16>, %wg: memref<11008x4096xbf16>, %wu: memref<11008x4096xbf16>, %dh: memref<?x11008xbf16>, %dg: memref<?x11008xbf16>, %du: memref<?x11008xbf16>) {
  fusedops.gated_mlp_grad ins(%x, %wg, %wu, %dh : memref<?x4096xbf16>, memref<11008x4096xbf16>, memref<11008x4096xbf16>, memref<?x11008xbf16>) outs(%dg, %du : memref<?x11008xbf16>, memref<?x11008xbf16>) activation = silu
  return
}

// -----

// gated_mlp with three outs also stores its pre-activations: the output, x·Wgᵀ
// and x·Wuᵀ from registers (no output tensor map, no TMA store).
// CHECK-LABEL: func.func @mlp_saving
// SM90-COUNT-3: llvm.call @mgpuTensorMapEncode2D
// SM90-NOT: llvm.call @mgpuTensorMapEncode2D
// SM90: gpu.func @gated_mlp(%{{.*}}, %[[O:.*]]: memref<?x11008xbf16>, %[[G:.*]]: memref<?x11008xbf16>, %[[U:.*]]: memref<?x11008xbf16>, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr) kernel
// SM90-SAME: fusedops.tensor_map_params = 3 : i64
// SM90: math.exp
// SM90: vector.store %{{.*}}, %[[O]]
// SM90-NEXT: arith.truncf
// SM90-NEXT: vector.store %{{.*}}, %[[G]]
// SM90-NEXT: arith.truncf
// SM90-NEXT: vector.store %{{.*}}, %[[U]]
// SM90-NOT: nvvm.cp.async.bulk.tensor.global.shared.cta
// SM80: gpu.func @gated_mlp(%{{.*}}, %[[O:.*]]: memref<?x11008xbf16>, %[[G:.*]]: memref<?x11008xbf16>, %[[U:.*]]: memref<?x11008xbf16>) kernel
// SM80: vector.store %{{.*}}, %[[O]]
// SM80: vector.store %{{.*}}, %[[G]]
// SM80: vector.store %{{.*}}, %[[U]]
func.func @mlp_saving(%x: memref<?x4096xbf16>, %wg: memref<11008x4096xbf16>, %wu: memref<11008x4096xbf16>, %o: memref<?x11008xbf16>, %g: memref<?x11008xbf16>, %u: memref<?x11008xbf16>) {
  fusedops.gated_mlp ins(%x, %wg, %wu : memref<?x4096xbf16>, memref<11008x4096xbf16>, memref<11008x4096xbf16>) outs(%o, %g, %u : memref<?x11008xbf16>, memref<?x11008xbf16>, memref<?x11008xbf16>) activation = silu
  return
}

// -----

// fp8_gemm with row scales, sm_90a: promoted, every K tile's products
// from zero (scale-d zero on its first wgmma), given back and added to the
// f32 sums. The 128×128 tile has room for two product sets: in groups of 4
// K tiles (32 of them: 8 groups), a K tile's wgmmas are issued before the
// previous K tile's products are waited for (all but the latest group) and
// added; the group's last is waited for whole.
// CHECK-LABEL: func.func @fp8
// SM90: llvm.call @mgpuTensorMapEncode2D({{.*}}, %c1_i32, {{.*}}, %c128_i32, %c128_i32{{.*}}, %c128_i32
// SM90: gpu.func @fp8_gemm(
// SM90-SAME: fusedops.tensor_map_params = 3 : i64
// SM90: scf.for %{{.*}} = %c0{{.*}} to %c8{{.*}} step %c1{{.*}} iter_args(
// SM90: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 128, k = 32>, D[<f32>, <zero>], A[<e4m3>, <one>, <row>], B[<e5m2>, <one>, <col>]
// SM90: nvvm.wgmma.mma_async {{.*}} <m = 64, n = 128, k = 32>, D[<f32>, <one>], A[<e4m3>, <one>, <row>], B[<e5m2>, <one>, <col>]
// SM90: nvvm.wgmma.commit.group.sync.aligned
// SM90-NOT: nvvm.wgmma.wait.group
// SM90: nvvm.wgmma.mma_async {{.*}} D[<f32>, <zero>]
// SM90: nvvm.wgmma.commit.group.sync.aligned
// SM90-NEXT: nvvm.wgmma.wait.group.sync.aligned 1
// SM90: nvvm.mbarrier.arrive
// SM90: arith.addf
// SM90: nvvm.wgmma.wait.group.sync.aligned 0
// SM90: nvvm.mbarrier.arrive
// SM90: arith.addf
// SM90: scf.yield
// sm_80: FP8 decoded to f16 tiles, f16 mma.sync.
// SM80: gpu.func @fp8_gemm(
// SM80: nvvm.mma.sync
func.func @fp8(%a: memref<?x4096xf8E4M3FN>, %b: memref<4096x4096xf8E5M2>, %sa: memref<?xf32>, %sb: memref<4096xf32>, %o: memref<?x4096xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<?x4096xf8E4M3FN>, memref<4096x4096xf8E5M2>, memref<?xf32>, memref<4096xf32>) outs(%o : memref<?x4096xbf16>) granularity = row
  return
}

// -----

// The epilogue's TMA stores with f32 outputs: boxes of 16 rows × 32
// columns (128 bytes), pairs of f32 written to shared memory.
// CHECK-LABEL: func.func @fp8_f32_out
// SM90: llvm.call @mgpuTensorMapEncode2D({{.*}}, %c4_i32, {{.*}}, %c16_i32, %c32_i32{{.*}}, %c128_i32
// SM90: gpu.func @fp8_gemm(
// SM90-SAME: fusedops.tensor_map_params = 3 : i64
// SM90: llvm.store {{.*}} : vector<2xf32>, !llvm.ptr<3>
// SM90: nvvm.cp.async.bulk.tensor.global.shared.cta
// SM80: gpu.func @fp8_gemm(
func.func @fp8_f32_out(%a: memref<256x4096xf8E4M3FN>, %b: memref<4096x4096xf8E4M3FN>, %sa: memref<f32>, %sb: memref<f32>, %o: memref<256x4096xf32>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<256x4096xf8E4M3FN>, memref<4096x4096xf8E4M3FN>, memref<f32>, memref<f32>) outs(%o : memref<256x4096xf32>) granularity = tensor
  return
}

// -----

// An output row that is not a whole number of 16 bytes (N = 4100 of bf16)
// has no tensor map: each thread stores its pairs from registers.
// CHECK-LABEL: func.func @fp8_odd_n
// SM90: gpu.func @fp8_gemm(
// SM90-SAME: fusedops.tensor_map_params = 2 : i64
// SM90-NOT: nvvm.cp.async.bulk.tensor.global.shared.cta
// SM90: vector.store {{.*}} : memref<256x4100xbf16>, vector<2xbf16>
// SM90-NOT: nvvm.cp.async.bulk.tensor.global.shared.cta
// SM90: gpu.return
// SM80: gpu.func @fp8_gemm(
func.func @fp8_odd_n(%a: memref<256x4096xf8E4M3FN>, %b: memref<4100x4096xf8E4M3FN>, %sa: memref<f32>, %sb: memref<f32>, %o: memref<256x4100xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<256x4096xf8E4M3FN>, memref<4100x4096xf8E4M3FN>, memref<f32>, memref<f32>) outs(%o : memref<256x4100xbf16>) granularity = tensor
  return
}

// -----

// One-warpgroup tiles (decode) keep the register stores: their shared
// memory goes to the ring. So do tiles whose BN is not whole 128-byte
// rows of the output (96 bf16 columns: 192 bytes). With a static M below
// 64, A's box and ring slots hold M rows rounded up to 8 (16 here, not 64):
// a stage's TMA bytes are (16 + 2 × 96) × 128, and the ring of A is 3
// slots of 16 rows plus the 48 rows the MMAs read past the last one
// (87088 bytes of shared memory in all, against 99376 with 64-row slots).
// CHECK-LABEL: func.func @mlp_decode
// SM90: llvm.call @mgpuTensorMapEncode2D({{.*}}, %c2_i32, {{.*}}, %c16_i32, %c64_i32, %c128_i32
// SM90: dynamic_shared_memory_size %c87088_i32
// SM90: gpu.func @gated_mlp(
// SM90-SAME: fusedops.tensor_map_params = 3 : i64
// SM90: nvvm.mbarrier.arrive.expect_tx %{{.*}}, %c26624_i32
// SM90: vector.store {{.*}} : memref<16x11008xbf16>, vector<2xbf16>
// SM80: gpu.func @gated_mlp(
func.func @mlp_decode(%x: memref<16x4096xbf16>, %wg: memref<11008x4096xbf16>, %wu: memref<11008x4096xbf16>, %o: memref<16x11008xbf16>) {
  fusedops.gated_mlp ins(%x, %wg, %wu : memref<16x4096xbf16>, memref<11008x4096xbf16>, memref<11008x4096xbf16>) outs(%o : memref<16x11008xbf16>) activation = silu {tile = #fusedops.tile<block = [64, 96, 64], warps = 4, stages = 3>}
  return
}

// -----

// Dynamic rows keep 64-row boxes of A: the kernel serves every M.
// CHECK-LABEL: func.func @mlp_decode_dynamic
// SM90: llvm.call @mgpuTensorMapEncode2D({{.*}}, %c2_i32, {{.*}}, %c64_i32, %c64_i32{{.*}}, %c128_i32
// SM90: gpu.func @gated_mlp(
// SM90: nvvm.mbarrier.arrive.expect_tx %{{.*}}, %c32768_i32
// SM80: gpu.func @gated_mlp(
func.func @mlp_decode_dynamic(%x: memref<?x4096xbf16>, %wg: memref<11008x4096xbf16>, %wu: memref<11008x4096xbf16>, %o: memref<?x11008xbf16>) {
  fusedops.gated_mlp ins(%x, %wg, %wu : memref<?x4096xbf16>, memref<11008x4096xbf16>, memref<11008x4096xbf16>) outs(%o : memref<?x11008xbf16>) activation = silu {tile = #fusedops.tile<block = [64, 96, 64], warps = 4, stages = 3>}
  return
}

// -----

// CHECK-LABEL: func.func @fp8_bn96
// SM90: gpu.func @fp8_gemm(
// SM90-SAME: fusedops.tensor_map_params = 2 : i64
// SM90-NOT: nvvm.cp.async.bulk.tensor.global.shared.cta
// SM90: vector.store {{.*}} : memref<256x4096xbf16>, vector<2xbf16>
func.func @fp8_bn96(%a: memref<256x4096xf8E4M3FN>, %b: memref<4096x4096xf8E4M3FN>, %sa: memref<f32>, %sb: memref<f32>, %o: memref<256x4096xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<256x4096xf8E4M3FN>, memref<4096x4096xf8E4M3FN>, memref<f32>, memref<f32>) outs(%o : memref<256x4096xbf16>) granularity = tensor {tile = #fusedops.tile<block = [128, 96, 128], warps = 8, stages = 2>}
  return
}
