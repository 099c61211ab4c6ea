// fusedops-autotune without a cache: every op without a tile gets the cost
// model's pick for the chip; tiles a user wrote stay; `force` overrides the
// choice (and reports a tile that does not fit).
// RUN: fusedops-opt %s -split-input-file --fusedops-autotune="chip=sm_90a remarks=true" 2>%t.remarks | FileCheck %s
// RUN: FileCheck %s --check-prefix=REMARK < %t.remarks
// RUN: fusedops-opt %s -split-input-file --fusedops-autotune="chip=sm_80" | FileCheck %s --check-prefix=SM80
// RUN: not fusedops-opt %s -split-input-file --fusedops-autotune='chip=sm_90a force="#fusedops.tile<block = [64, 64, 32], warps = 4, stages = 3>"' 2>%t.force | FileCheck %s --check-prefix=FORCE
// RUN: FileCheck %s --check-prefix=FORCEBAD < %t.force
// RUN: not fusedops-opt %s --fusedops-autotune="chip=sm_75" 2>&1 | FileCheck %s --check-prefix=CHIP
// RUN: not fusedops-opt %s --fusedops-autotune="force=tile" 2>&1 | FileCheck %s --check-prefix=NOTTILE

// The Llama-2 7B gated MLP. sm_90a: the wgmma strategy's widest tile that
// fits three stages (two warpgroups of 64×192 for gate and up), as a 2×1
// cluster (the Wg and Wu tiles multicast to two row tiles: 1-3.5 % faster
// than alone at all three of issue 10's shapes, interleaved on an H200,
// docs/perf/gemm-engine.md v9). sm_80: the
// mma.sync strategy's 128x64x64 in two stages, the exhaustive search's best
// for that strategy on an H100 (docs/autotuning.md).
// CHECK-LABEL: func.func @mlp
// CHECK: fusedops.gated_mlp {{.*}} {tile = #fusedops.tile<block = [128, 192, 64], warps = 8, stages = 3, cluster = [2]>}
// REMARK: remark: tile #fusedops.tile<block = [128, 192, 64], warps = 8, stages = 3, cluster = [2]> from the cost model ({{[0-9.]+}} us predicted, compute-bound; 69 candidates, 43 rejected)
// SM80: fusedops.gated_mlp {{.*}} {tile = #fusedops.tile<block = [128, 64, 64], warps = 4, stages = 2>}
// FORCE: fusedops.gated_mlp {{.*}} {tile = #fusedops.tile<block = [64, 64, 32], warps = 4, stages = 3>}
func.func @mlp(%x: memref<4096x4096xbf16>, %wg: memref<11008x4096xbf16>,
               %wu: memref<11008x4096xbf16>, %o: memref<4096x11008xbf16>) {
  fusedops.gated_mlp ins(%x, %wg, %wu : memref<4096x4096xbf16>, memref<11008x4096xbf16>, memref<11008x4096xbf16>) outs(%o : memref<4096x11008xbf16>) activation = silu
  return
}

// -----

// The promoted FP8 GEMM trades waves against tile size: at 4096³ the
// 128×128 tile (1024 tiles, 7.8 waves of 132) beats 128×192 (704 tiles,
// 5.3 waves: a third of the last one idle), at 8192³ the wider tile wins
// (21 waves against 32). Measured so on an H200 (docs/perf/gemm-engine.md
// v8: 0.124 against 0.132 ms, and 0.889 against 0.977 ms); the model sees
// it once a K step of the TMA ring costs its 0.1 µs, not the block
// barriers' 0.4 µs. The 2×1 clusters of these tiles measured within ±5 %
// of them (v9): the model charges a cluster's coupled refills and keeps the
// tiles alone.
// CHECK-LABEL: func.func @fp8_4096
// CHECK: fusedops.fp8_gemm {{.*}} {tile = #fusedops.tile<block = [128, 128, 128], warps = 8, stages = 5>}
// CHECK-LABEL: func.func @fp8_8192
// CHECK: fusedops.fp8_gemm {{.*}} {tile = #fusedops.tile<block = [128, 192, 128], warps = 8, stages = 4>}
func.func @fp8_4096(%a: memref<4096x4096xf8E4M3FN>, %b: memref<4096x4096xf8E4M3FN>, %sa: memref<f32>, %sb: memref<f32>, %o: memref<4096x4096xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<4096x4096xf8E4M3FN>, memref<4096x4096xf8E4M3FN>, memref<f32>, memref<f32>) outs(%o : memref<4096x4096xbf16>) granularity = tensor
  return
}
func.func @fp8_8192(%a: memref<8192x8192xf8E4M3FN>, %b: memref<8192x8192xf8E4M3FN>, %sa: memref<f32>, %sb: memref<f32>, %o: memref<8192x8192xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<8192x8192xf8E4M3FN>, memref<8192x8192xf8E4M3FN>, memref<f32>, memref<f32>) outs(%o : memref<8192x8192xbf16>) granularity = tensor
  return
}

// -----

// Decode (M ≤ 64, the weights streamed once): 64×96 tiles, 115 of them for
// N = 11008, one per SM. 64×64 (172 tiles) leaves 40 SMs streaming two
// tiles' bytes, and 128-row tiles multiply twice the padding rows: on an
// H200 the gated MLP at M = 1 took 55 µs with 64×96 against 71 µs with
// 64×64, FP8 at M = 16 20.6 against 28.3 µs, and FP8 with 128×96 34
// against 27.5 µs at M = 1 (docs/perf/gemm-engine.md v11). FP8 takes an
// 8-stage ring (24.7 against 26.7 µs at M = 1, v12); the gated MLP's 64×96
// has room for 6 stages of its three tiles, and 64×64 with 8 stages is still
// ranked below it (its 172 tiles' second round on 40 SMs).
// CHECK-LABEL: func.func @mlp_decode
// CHECK: fusedops.gated_mlp {{.*}} {tile = #fusedops.tile<block = [64, 96, 64], warps = 4, stages = 6>}
// CHECK-LABEL: func.func @fp8_decode
// CHECK: fusedops.fp8_gemm {{.*}} {tile = #fusedops.tile<block = [64, 96, 128], warps = 4, stages = 8>}
func.func @mlp_decode(%x: memref<1x4096xbf16>, %wg: memref<11008x4096xbf16>, %wu: memref<11008x4096xbf16>, %o: memref<1x11008xbf16>) {
  fusedops.gated_mlp ins(%x, %wg, %wu : memref<1x4096xbf16>, memref<11008x4096xbf16>, memref<11008x4096xbf16>) outs(%o : memref<1x11008xbf16>) activation = silu
  return
}
func.func @fp8_decode(%a: memref<16x4096xf8E4M3FN>, %b: memref<11008x4096xf8E4M3FN>, %sa: memref<16xf32>, %sb: memref<11008xf32>, %o: memref<16x11008xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<16x4096xf8E4M3FN>, memref<11008x4096xf8E4M3FN>, memref<16xf32>, memref<11008xf32>) outs(%o : memref<16x11008xbf16>) granularity = row
  return
}

// -----

// A user's tile is never replaced, not even by `force`.
// CHECK-LABEL: func.func @users_tile
// CHECK: {tile = #fusedops.tile<block = [64, 1024], warps = 8>}
// FORCE-LABEL: func.func @users_tile
// FORCE: {tile = #fusedops.tile<block = [64, 1024], warps = 8>}
func.func @users_tile(%x: memref<256x1024xbf16>, %q: memref<256x1024xf8E4M3FN>, %s: memref<f32>) {
  fusedops.quantize ins(%x : memref<256x1024xbf16>) outs(%q, %s : memref<256x1024xf8E4M3FN>, memref<f32>) granularity = tensor {tile = #fusedops.tile<block = [64, 1024], warps = 8>}
  return
}

// -----

// Row kernels: the row's reduction spans the block, so the model keeps few
// warps per row. The picks here are the exhaustive sweep's best on an H200
// (docs/perf/memory-ops-h200/v5-loads-first/evidence.md): one row per block,
// 2 warps for 4096-wide rows, 4 for 8192-wide ones.
// CHECK-LABEL: func.func @norm
// CHECK: fusedops.rmsnorm_rope {{.*}} {tile = #fusedops.tile<block = [1], warps = 2>}
// REMARK: remark: tile #fusedops.tile<block = [{{[0-9]+}}], warps = {{[0-9]+}}> from the cost model
// FORCEBAD: error: fusedops-autotune: forced tile #fusedops.tile<block = [64, 64, 32], warps = 4, stages = 3> does not fit: the op's tile takes 1 to 2 block sizes, this one has 3
func.func @norm(%x: memref<1x4096x4096xbf16>, %w: memref<4096xbf16>, %cos: memref<4096x128xf32>, %sin: memref<4096x128xf32>, %o: memref<1x4096x4096xbf16>) {
  fusedops.rmsnorm_rope ins(%x, %w, %cos, %sin : memref<1x4096x4096xbf16>, memref<4096xbf16>, memref<4096x128xf32>, memref<4096x128xf32>) outs(%o : memref<1x4096x4096xbf16>) head_dim = 128 eps = 1.0e-06 style = neox
  return
}

// -----

// CHECK-LABEL: func.func @wide_norm
// CHECK: fusedops.rmsnorm_rope {{.*}} {tile = #fusedops.tile<block = [1], warps = 4>}
func.func @wide_norm(%x: memref<1x8192x8192xf16>, %w: memref<8192xf16>, %cos: memref<8192x128xf32>, %sin: memref<8192x128xf32>, %o: memref<1x8192x8192xf16>) {
  fusedops.rmsnorm_rope ins(%x, %w, %cos, %sin : memref<1x8192x8192xf16>, memref<8192xf16>, memref<8192x128xf32>, memref<8192x128xf32>) outs(%o : memref<1x8192x8192xf16>) head_dim = 128 eps = 1.0e-06 style = neox
  return
}

// -----

// CHIP: error: fusedops-autotune: unsupported chip 'sm_75'; use sm_80, sm_86, sm_89, sm_90 and sm_90a
// NOTTILE: error: fusedops-autotune: force='tile' is not a #fusedops.tile<...>
