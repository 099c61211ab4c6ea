// The GEMM ops from buffers to PTX and cubin on sm_90a: the wgmma mainloop
// (lib/Conversion/FusedOpsToGPU/Wgmma.cpp) with the tiles pinned.
// REQUIRES: ptxas
// RUN: fusedops-compile %s --chip=sm_90a --ptx=%t.ptx --cubin=%t.cubin | FileCheck %s --check-prefix=WROTE
// RUN: FileCheck %s --check-prefix=SM90 --implicit-check-not=mma.sync < %t.ptx
// ptxas keeps every wgmma asynchronous: no warning that it serialized them
// (C7514) or had to fence or wait around accumulator registers (C7515,
// C7517, C7519 and the like), which halves the MMA rate.
// RUN: %ptxas -arch=sm_90a -v %t.ptx -o /dev/null 2>&1 | FileCheck %s --check-prefix=PTXAS --implicit-check-not=C751 --implicit-check-not=serialized
// The 2×1 cluster kernel (the last) keeps every value in registers.
// PTXAS: Compiling entry function 'fp8_gemm_2' for 'sm_90a'
// PTXAS-NEXT: Function properties for fp8_gemm_2
// PTXAS-NEXT: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// PTXAS: Used 168 registers

// WROTE: wrote {{.*}}.ptx (isa, sm_90a, {{[0-9]+}} bytes)
// WROTE: wrote {{.*}}.cubin (bin, sm_90a, {{[0-9]+}} bytes)

// sm_90a gated MLP: the tensor maps are 128-byte, 64-byte-aligned .param
// arrays read in place (cvta.param); 384 threads (the producer and two MMA
// warpgroups), one block per SM for the setmaxnreg split. The producer's one
// thread waits for an empty slot (a block LLVM places after the loads),
// expects the tile's bytes and issues one
// 2-D TMA load per operand; the MMA warpgroups wait for a full slot, issue
// two m64n128k16 wgmmas per 16 of K (gate, up) as one group, wait for all
// but the latest and arrive on the previous slot's empty barrier. The
// epilogue writes each warp's 16 rows into shared memory, 128 bytes of a
// row at a time, and one lane stores them with TMA (a fourth tensor map).
// SM90: .target sm_90a
// SM90-LABEL: .entry gated_mlp(
// SM90: .param .align 64 .b8 gated_mlp_param_28[128],
// SM90: .param .align 64 .b8 gated_mlp_param_29[128],
// SM90: .param .align 64 .b8 gated_mlp_param_30[128],
// SM90: .param .align 64 .b8 gated_mlp_param_31[128]
// SM90: .maxntid 384, 1, 1
// SM90: .minnctapersm 1
// SM90: cvta.param.u64
// SM90: mbarrier.init.shared.b64
// SM90: fence.mbarrier_init.release.cluster;
// SM90: bar.sync 0;
// SM90: setmaxnreg.dec.sync.aligned.u32 40;
// SM90: mbarrier.arrive.expect_tx.shared.b64
// SM90: cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes
// SM90: cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes
// SM90: cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes
// SM90: setmaxnreg.inc.sync.aligned.u32 232;
// SM90: mbarrier.try_wait.parity.shared.b64
// SM90: wgmma.fence.sync.aligned;
// SM90: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16
// SM90: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16
// SM90: wgmma.commit_group.sync.aligned;
// SM90: wgmma.wait_group.sync.aligned 1;
// SM90: mbarrier.arrive.shared.b64
// SM90: wgmma.wait_group.sync.aligned 0;
// SM90: ex2.approx
// SM90: cp.async.bulk.wait_group.read 0;
// SM90: bar.warp.sync -1;
// SM90: st.shared.b32
// SM90: fence.proxy.async.shared::cta;
// SM90-NEXT: bar.warp.sync -1;
// SM90: cp.async.bulk.tensor.2d.global.shared::cta.tile.bulk_group [
// SM90-NEXT: cp.async.bulk.commit_group;
// SM90: cp.async.bulk.wait_group.read 1;
// SM90-NOT: st.global
// SM90: cp.async.bulk.wait_group 0;

// sm_90a FP8 with row scales, e4m3 × e5m2: promoted, each K tile's
// products from zero (scale-d false on its first wgmma), waited for, its
// slot given back, added to the f32 sums.
// SM90-LABEL: .entry fp8_gemm(
// SM90: wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e5m2
// SM90: wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e5m2
// SM90: wgmma.commit_group.sync.aligned;
// SM90: wgmma.wait_group.sync.aligned 0;
// SM90: mbarrier.arrive.shared.b64
// SM90: add.rn.f32

// fast_accum: the tensor cores' sums over all of K, a 128×256 tile, no
// partial sums to add.
// SM90-LABEL: .entry fp8_gemm_0(
// SM90: wgmma.mma_async.sync.aligned.m64n256k32.f32.e4m3.e4m3
// SM90: wgmma.wait_group.sync.aligned 1;
// SM90-NOT: add.rn.f32
// SM90: wgmma.wait_group.sync.aligned 0;

// Block-scaled FP8: promoted, each tile's products times its scale pair.
// SM90-LABEL: .entry fp8_gemm_1(
// SM90: wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3
// SM90: wgmma.wait_group.sync.aligned 0;
// SM90: fma.rn.f32

// A 2×1 cluster: fixed in the kernel (so cuLaunchKernel launches clusters),
// a cluster barrier after the mbarriers' initialisation, B's half tile
// multicast to both blocks, the slot given back to the other block through
// its mapped mbarrier (release at CTA scope: no membar before it).
// SM90-LABEL: .entry fp8_gemm_2(
// SM90: .explicitcluster
// SM90: .reqnctapercluster 2, 1, 1
// SM90: fence.mbarrier_init.release.cluster;
// SM90: barrier.cluster.arrive;
// SM90: barrier.cluster.wait;
// SM90: cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [
// SM90: cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster
// SM90: mapa.shared::cluster.u64
// SM90: mbarrier.arrive.shared::cluster.b64

func.func @mlp(%x: memref<?x4096xbf16>, %wg: memref<11264x4096xbf16>, %wu: memref<11264x4096xbf16>, %o: memref<?x11264xbf16>) {
  fusedops.gated_mlp ins(%x, %wg, %wu : memref<?x4096xbf16>, memref<11264x4096xbf16>, memref<11264x4096xbf16>) outs(%o : memref<?x11264xbf16>) activation = silu {tile = #fusedops.tile<block = [128, 128, 64], warps = 8, stages = 4>}
  return
}

func.func @fp8_row(%a: memref<?x4096xf8E4M3FN>, %b: memref<4096x4096xf8E5M2>, %sa: memref<?xf32>, %sb: memref<4096xf32>, %o: memref<?x4096xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<?x4096xf8E4M3FN>, memref<4096x4096xf8E5M2>, memref<?xf32>, memref<4096xf32>) outs(%o : memref<?x4096xbf16>) granularity = row {tile = #fusedops.tile<block = [128, 128, 128], warps = 8, stages = 5>}
  return
}

func.func @fp8_fast(%a: memref<?x4096xf8E4M3FN>, %b: memref<4096x4096xf8E4M3FN>, %sa: memref<f32>, %sb: memref<f32>, %o: memref<?x4096xf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<?x4096xf8E4M3FN>, memref<4096x4096xf8E4M3FN>, memref<f32>, memref<f32>) outs(%o : memref<?x4096xf16>) granularity = tensor fast_accum {tile = #fusedops.tile<block = [128, 256, 128], warps = 8, stages = 4>}
  return
}

func.func @fp8_block(%a: memref<512x4096xf8E4M3FN>, %b: memref<4096x4096xf8E4M3FN>, %sa: memref<4x32xf32>, %sb: memref<32x32xf32>, %o: memref<512x4096xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<512x4096xf8E4M3FN>, memref<4096x4096xf8E4M3FN>, memref<4x32xf32>, memref<32x32xf32>) outs(%o : memref<512x4096xbf16>) granularity = block128 {tile = #fusedops.tile<block = [128, 128, 128], warps = 8, stages = 4>}
  return
}

func.func @fp8_cluster(%a: memref<?x4096xf8E4M3FN>, %b: memref<4096x4096xf8E4M3FN>, %sa: memref<?xf32>, %sb: memref<4096xf32>, %o: memref<?x4096xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<?x4096xf8E4M3FN>, memref<4096x4096xf8E4M3FN>, memref<?xf32>, memref<4096xf32>) outs(%o : memref<?x4096xbf16>) granularity = row {tile = #fusedops.tile<block = [128, 128, 128], warps = 8, stages = 5, cluster = [2]>}
  return
}
