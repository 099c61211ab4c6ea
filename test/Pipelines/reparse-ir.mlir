// The IR after every pass of fusedops-to-binary re-parses and verifies:
// with upstream mlir-opt once no fusedops op is left, with fusedops-opt
// before (utils/reparse-ir-dumps.py). Both GEMM strategies' kernels and
// the one-pass tensor quantize (LLVM atomics, fences and a spin loop in a
// gpu.func), both chips.
// REQUIRES: mlir-opt
// RUN: fusedops-opt %s --fusedops-to-binary="chip=sm_90a format=isa" --mlir-print-ir-after-all --mlir-print-ir-module-scope --mlir-disable-threading -o /dev/null 2> %t.90.dumps
// RUN: %python %fusedops_src_root/utils/reparse-ir-dumps.py %t.90.dumps fusedops-opt mlir-opt | FileCheck %s
// RUN: fusedops-opt %s --fusedops-to-binary="chip=sm_80 format=isa" --mlir-print-ir-after-all --mlir-print-ir-module-scope --mlir-disable-threading -o /dev/null 2> %t.80.dumps
// RUN: %python %fusedops_src_root/utils/reparse-ir-dumps.py %t.80.dumps fusedops-opt mlir-opt | FileCheck %s

// CHECK-NOT: FAIL
// CHECK: {{[0-9]+}} dumps, 0 do not re-parse
func.func @mlp(%x: memref<?x1024xbf16>, %wg: memref<2048x1024xbf16>, %wu: memref<2048x1024xbf16>, %o: memref<?x2048xbf16>) {
  fusedops.gated_mlp ins(%x, %wg, %wu : memref<?x1024xbf16>, memref<2048x1024xbf16>, memref<2048x1024xbf16>) outs(%o : memref<?x2048xbf16>) activation = silu
  return
}

func.func @fp8(%a: memref<?x1024xf8E4M3FN>, %b: memref<1024x1024xf8E4M3FN>, %sa: memref<?xf32>, %sb: memref<1024xf32>, %o: memref<?x1024xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<?x1024xf8E4M3FN>, memref<1024x1024xf8E4M3FN>, memref<?xf32>, memref<1024xf32>) outs(%o : memref<?x1024xbf16>) granularity = row
  return
}

func.func @quantize_tensor(%x: memref<?x1024xbf16>, %q: memref<?x1024xf8E4M3FN>, %s: memref<f32>) {
  fusedops.quantize ins(%x : memref<?x1024xbf16>) outs(%q, %s : memref<?x1024xf8E4M3FN>, memref<f32>) granularity = tensor
  return
}
