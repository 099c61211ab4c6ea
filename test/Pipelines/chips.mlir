// Every chip of the chip table (include/fusedops/Target/Chips.h) compiles,
// with the PTX ISA its row names; sm_86 gets 7.1, below which the NVPTX
// backend would stop the process.
// REQUIRES: ptxas
// RUN: fusedops-compile %s --chip=sm_80 --ptx=%t.80.ptx && FileCheck %s --check-prefix=SM80 < %t.80.ptx
// RUN: fusedops-compile %s --chip=sm_86 --ptx=%t.86.ptx --cubin=%t.86.cubin && FileCheck %s --check-prefix=SM86 < %t.86.ptx
// RUN: fusedops-compile %s --chip=sm_89 --ptx=%t.89.ptx --cubin=%t.89.cubin && FileCheck %s --check-prefix=SM89 < %t.89.ptx
// RUN: fusedops-compile %s --chip=sm_90 --ptx=%t.90.ptx --cubin=%t.90.cubin && FileCheck %s --check-prefix=SM90 < %t.90.ptx
// RUN: fusedops-compile %s --chip=sm_90a --ptx=%t.90a.ptx && FileCheck %s --check-prefix=SM90A < %t.90a.ptx
// RUN: not fusedops-compile %s --chip=sm_75 --ptx=%t.75.ptx 2>&1 | FileCheck %s --check-prefix=SM75

// The GEMM strategy each chip's row selects: mma.sync f16 (sm_80, sm_86),
// FP8 mma.sync (sm_89, plain sm_90), wgmma (sm_90a).
// SM80: .version 7.0
// SM80: .target sm_80
// SM80: mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
// SM86: .version 7.1
// SM86: .target sm_86
// SM86: mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
// SM89: .version 8.4
// SM89: .target sm_89
// SM89: mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32
// SM90: .version 8.4
// SM90: .target sm_90
// SM90: mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32
// SM90A: .version 8.4
// SM90A: .target sm_90a
// SM90A: wgmma.mma_async.sync.aligned.m64n{{[0-9]+}}k32.f32.e4m3.e4m3
// SM75: unsupported chip 'sm_75'; fusedops builds for sm_80, sm_86, sm_89, sm_90 and sm_90a
func.func @gemm(%a: memref<256x512xf8E4M3FN>, %b: memref<256x512xf8E4M3FN>, %sa: memref<f32>, %sb: memref<f32>, %o: memref<256x256xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<256x512xf8E4M3FN>, memref<256x512xf8E4M3FN>, memref<f32>, memref<f32>) outs(%o : memref<256x256xbf16>) granularity = tensor
  return
}
