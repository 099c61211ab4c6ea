// The GEMM ops from buffers to PTX on sm_80: the mma.sync mainloop
// (cp.async ring, ldmatrix, mma.sync m16n8k16), FP8 decoded to f16 in the
// kernel; the cost model's tiles.
// RUN: fusedops-compile %s --chip=sm_80 --ptx=%t.ptx | FileCheck %s --check-prefix=WROTE
// RUN: FileCheck %s --check-prefix=SM80 --implicit-check-not=wgmma < %t.ptx

// WROTE: wrote {{.*}}.ptx (isa, sm_80, {{[0-9]+}} bytes)

// SM80: .target sm_80
// SM80-LABEL: .entry gated_mlp(
// SM80: cp.async.cg.shared.global
// SM80: ldmatrix.sync.aligned.m8n8.x4.shared.b16
// SM80: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// SM80-LABEL: .entry fp8_gemm(
// SM80: mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32


func.func @mlp(%x: memref<?x4096xbf16>, %wg: memref<11264x4096xbf16>, %wu: memref<11264x4096xbf16>, %o: memref<?x11264xbf16>) {
  fusedops.gated_mlp ins(%x, %wg, %wu : memref<?x4096xbf16>, memref<11264x4096xbf16>, memref<11264x4096xbf16>) outs(%o : memref<?x11264xbf16>) activation = silu
  return
}

func.func @fp8_row(%a: memref<?x4096xf8E4M3FN>, %b: memref<4096x4096xf8E5M2>, %sa: memref<?xf32>, %sb: memref<4096xf32>, %o: memref<?x4096xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<?x4096xf8E4M3FN>, memref<4096x4096xf8E5M2>, memref<?xf32>, memref<4096xf32>) outs(%o : memref<?x4096xbf16>) granularity = row
  return
}

func.func @fp8_block(%a: memref<512x4096xf8E4M3FN>, %b: memref<4096x4096xf8E4M3FN>, %sa: memref<4x32xf32>, %sb: memref<32x32xf32>, %o: memref<512x4096xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<512x4096xf8E4M3FN>, memref<4096x4096xf8E4M3FN>, memref<4x32xf32>, memref<32x32xf32>) outs(%o : memref<512x4096xbf16>) granularity = block128
  return
}
