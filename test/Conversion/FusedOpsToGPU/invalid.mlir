// What convert-fusedops-to-gpu refuses, and how it says so.
// RUN: fusedops-opt %s --convert-fusedops-to-gpu -split-input-file -verify-diagnostics
// RUN: not fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_75" -split-input-file 2>&1 | FileCheck %s --check-prefix=CHIP
// CHIP: unknown chip 'sm_75'; expected sm_80 or sm_90a

func.func @tensor_form(%x: tensor<2x8x128xf16>, %w: tensor<128xf16>, %c: tensor<8x64xf32>, %o: tensor<2x8x128xf16>) -> tensor<2x8x128xf16> {
  // expected-error @+1 {{'fusedops.rmsnorm_rope' op must be in buffer form (memref operands) to lower to a GPU kernel; run one-shot-bufferize first}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %c : tensor<2x8x128xf16>, tensor<128xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x128xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x8x128xf16>
  return %0 : tensor<2x8x128xf16>
}

// -----

func.func @dynamic_hidden(%x: memref<2x8x?xf16>, %w: memref<?xf16>, %c: memref<8x64xf32>, %o: memref<2x8x?xf16>) {
  // expected-error @+1 {{'fusedops.rmsnorm_rope' op needs a static hidden size (the last dimension of 'input') to lower to a GPU kernel}}
  fusedops.rmsnorm_rope ins(%x, %w, %c, %c : memref<2x8x?xf16>, memref<?xf16>, memref<8x64xf32>, memref<8x64xf32>) outs(%o : memref<2x8x?xf16>) head_dim = 64 eps = 1.0e-6 style = neox
  return
}

// -----

func.func @strided_buffer(%x: memref<2x8x128xf16, strided<[2048, 256, 1]>>, %w: memref<128xf16>, %c: memref<8x64xf32>, %o: memref<2x8x128xf16>) {
  // expected-error @+1 {{'fusedops.rmsnorm_rope' op needs contiguous buffers (identity layout) to lower to a GPU kernel, got 'memref<2x8x128xf16, strided<[2048, 256, 1]>>'; bufferize with function-boundary-type-conversion=identity-layout-map}}
  fusedops.rmsnorm_rope ins(%x, %w, %c, %c : memref<2x8x128xf16, strided<[2048, 256, 1]>>, memref<128xf16>, memref<8x64xf32>, memref<8x64xf32>) outs(%o : memref<2x8x128xf16>) head_dim = 64 eps = 1.0e-6 style = neox
  return
}

// -----

func.func @too_few_threads(%x: memref<2x8x16384xf16>, %w: memref<16384xf16>, %c: memref<8x64xf32>, %o: memref<2x8x16384xf16>) {
  // expected-error @+1 {{'fusedops.rmsnorm_rope' op 'tile' gives each thread 64 vectors of the row to hold in registers; use more warps (at most 32 vectors per thread)}}
  fusedops.rmsnorm_rope ins(%x, %w, %c, %c : memref<2x8x16384xf16>, memref<16384xf16>, memref<8x64xf32>, memref<8x64xf32>) outs(%o : memref<2x8x16384xf16>) head_dim = 64 eps = 1.0e-6 style = neox {tile = #fusedops.tile<block = [1], warps = 1>}
  return
}

// -----

func.func @cluster(%x: memref<2x8x128xf16>, %w: memref<128xf16>, %c: memref<8x64xf32>, %o: memref<2x8x128xf16>) {
  // expected-error @+1 {{'fusedops.rmsnorm_rope' op 'tile' of rmsnorm_rope takes no cluster}}
  fusedops.rmsnorm_rope ins(%x, %w, %c, %c : memref<2x8x128xf16>, memref<128xf16>, memref<8x64xf32>, memref<8x64xf32>) outs(%o : memref<2x8x128xf16>) head_dim = 64 eps = 1.0e-6 style = neox {tile = #fusedops.tile<block = [1], warps = 4, cluster = [2]>}
  return
}
