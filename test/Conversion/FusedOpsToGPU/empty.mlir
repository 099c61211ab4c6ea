// Ops with an empty dimension their kernels divide by (a quantize row of
// no columns, GEMM weights with N or K = 0) get a diagnostic from the
// conversion, and the autotuner leaves them alone (it divided by zero here
// before: issue 14).
// RUN: fusedops-opt %s -split-input-file --fusedops-autotune="chip=sm_90a" | FileCheck %s --check-prefix=TUNE
// RUN: fusedops-opt %s -split-input-file --fusedops-autotune="chip=sm_80" | FileCheck %s --check-prefix=TUNE
// RUN: fusedops-opt %s -split-input-file --convert-fusedops-to-gpu="chip=sm_90a" -verify-diagnostics
// RUN: fusedops-opt %s -split-input-file --convert-fusedops-to-gpu="chip=sm_80" -verify-diagnostics

// TUNE-LABEL: func.func @quantize_no_columns
// TUNE-NOT: tile
func.func @quantize_no_columns(%x: memref<4x0xbf16>, %q: memref<4x0xf8E4M3FN>, %s: memref<4xf32>) {
  // expected-error @+1 {{has no columns (dimension 1 of 'input' is 0): there is nothing to convert; leave the op out for empty inputs}}
  fusedops.quantize ins(%x : memref<4x0xbf16>) outs(%q, %s : memref<4x0xf8E4M3FN>, memref<4xf32>) granularity = row
  return
}

// -----

// TUNE-LABEL: func.func @dequantize_no_columns
// TUNE-NOT: tile
func.func @dequantize_no_columns(%q: memref<4x0xf8E4M3FN>, %s: memref<f32>, %o: memref<4x0xbf16>) {
  // expected-error @+1 {{has no columns (dimension 1 of 'input' is 0)}}
  fusedops.dequantize ins(%q, %s : memref<4x0xf8E4M3FN>, memref<f32>) outs(%o : memref<4x0xbf16>) granularity = tensor
  return
}

// -----

// TUNE-LABEL: func.func @mlp_no_k
// TUNE-NOT: tile
func.func @mlp_no_k(%x: memref<4x0xbf16>, %wg: memref<8x0xbf16>, %wu: memref<8x0xbf16>, %o: memref<4x8xbf16>) {
  // expected-error @+1 {{has an empty product (N = 8, K = 0 in the weights); leave the op out for empty weights}}
  fusedops.gated_mlp ins(%x, %wg, %wu : memref<4x0xbf16>, memref<8x0xbf16>, memref<8x0xbf16>) outs(%o : memref<4x8xbf16>) activation = silu
  return
}

// -----

// TUNE-LABEL: func.func @fp8_no_n
// TUNE-NOT: tile
func.func @fp8_no_n(%a: memref<4x64xf8E4M3FN>, %b: memref<0x64xf8E4M3FN>, %sa: memref<f32>, %sb: memref<f32>, %o: memref<4x0xbf16>) {
  // expected-error @+1 {{has an empty product (N = 0, K = 64 in 'rhs')}}
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<4x64xf8E4M3FN>, memref<0x64xf8E4M3FN>, memref<f32>, memref<f32>) outs(%o : memref<4x0xbf16>) granularity = tensor
  return
}
