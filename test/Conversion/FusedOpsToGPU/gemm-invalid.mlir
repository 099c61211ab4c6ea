// The GEMM tiles convert-fusedops-to-gpu refuses, and how it says so: the
// mainloop's own checks (Wgmma.cpp, MmaSync.cpp), the cluster among them.
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" -split-input-file -verify-diagnostics
// RUN: not fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_80" -split-input-file 2>&1 | FileCheck %s --check-prefix=SM80
// SM80: the mma.sync mainloop takes no cluster (drop 'cluster')

func.func @cluster_of_four(%a: memref<?x256xf8E4M3FN>, %b: memref<256x256xf8E4M3FN>, %s: memref<f32>, %o: memref<?x256xbf16>) {
  // expected-error @+1 {{the cluster must be [1] or [2] (two blocks of vertically adjacent tiles sharing the B tiles)}}
  fusedops.fp8_gemm ins(%a, %b, %s, %s : memref<?x256xf8E4M3FN>, memref<256x256xf8E4M3FN>, memref<f32>, memref<f32>) outs(%o : memref<?x256xbf16>) granularity = tensor {tile = #fusedops.tile<block = [128, 128, 128], warps = 8, stages = 4, cluster = [4]>}
  return
}

// -----

func.func @cluster_along_n(%a: memref<?x256xf8E4M3FN>, %b: memref<256x256xf8E4M3FN>, %s: memref<f32>, %o: memref<?x256xbf16>) {
  // expected-error @+1 {{the cluster must be [1] or [2]}}
  fusedops.fp8_gemm ins(%a, %b, %s, %s : memref<?x256xf8E4M3FN>, memref<256x256xf8E4M3FN>, memref<f32>, memref<f32>) outs(%o : memref<?x256xbf16>) granularity = tensor {tile = #fusedops.tile<block = [128, 128, 128], warps = 8, stages = 4, cluster = [1, 2]>}
  return
}

// -----

// Each block of the cluster loads BN / 2 rows of B: 100 is not a whole
// number of 8-row swizzle atoms.
func.func @cluster_half_tile(%x: memref<?x256xbf16>, %w: memref<200x256xbf16>, %o: memref<?x200xbf16>) {
  // expected-error @+1 {{BN must be a multiple of 16 with a 2-block cluster (each block loads BN / 2 rows of B, whole 8-row swizzle atoms)}}
  fusedops.gated_mlp ins(%x, %w, %w : memref<?x256xbf16>, memref<200x256xbf16>, memref<200x256xbf16>) outs(%o : memref<?x200xbf16>) activation = silu {tile = #fusedops.tile<block = [128, 200, 64], warps = 8, stages = 3, cluster = [2]>}
  return
}

// -----

func.func @accumulators(%x: memref<?x256xbf16>, %w: memref<256x256xbf16>, %o: memref<?x256xbf16>) {
  // expected-error @+1 {{needs 256 accumulator registers per thread, at most 192 (a smaller BN)}}
  fusedops.gated_mlp ins(%x, %w, %w : memref<?x256xbf16>, memref<256x256xbf16>, memref<256x256xbf16>) outs(%o : memref<?x256xbf16>) activation = silu {tile = #fusedops.tile<block = [128, 256, 64], warps = 8, stages = 3>}
  return
}

// -----

func.func @single_warpgroup_rows(%x: memref<?x256xbf16>, %w: memref<256x256xbf16>, %o: memref<?x256xbf16>) {
  // expected-error @+1 {{BM must be 64 per warpgroup (64 with 4 warps)}}
  fusedops.gated_mlp ins(%x, %w, %w : memref<?x256xbf16>, memref<256x256xbf16>, memref<256x256xbf16>) outs(%o : memref<?x256xbf16>) activation = silu {tile = #fusedops.tile<block = [128, 128, 64], warps = 4, stages = 3>}
  return
}
