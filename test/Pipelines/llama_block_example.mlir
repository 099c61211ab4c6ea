// The bundled example compiles to PTX and cubin for both chips (the main
// job does this too; here CI checks it on every change).
// REQUIRES: ptxas
// RUN: fusedops-compile %fusedops_src_root/examples/llama_block.mlir --chip=sm_90a --ptx=%t.sm90a.ptx --cubin=%t.sm90a.cubin | FileCheck %s --check-prefix=WROTE90
// RUN: FileCheck %s --check-prefix=SM90 < %t.sm90a.ptx
// RUN: fusedops-compile %fusedops_src_root/examples/llama_block.mlir --chip=sm_80 --ptx=%t.sm80.ptx --cubin=%t.sm80.cubin | FileCheck %s --check-prefix=WROTE80
// RUN: FileCheck %s --check-prefix=SM80 < %t.sm80.ptx
// RUN: not grep -q 'mma.sync.aligned.m16n8k32' %t.sm80.ptx

// WROTE90: wrote {{.*}}.sm90a.ptx (isa, sm_90a,
// WROTE90: wrote {{.*}}.sm90a.cubin (bin, sm_90a,
// WROTE80: wrote {{.*}}.sm80.ptx (isa, sm_80,
// WROTE80: wrote {{.*}}.sm80.cubin (bin, sm_80,

// One kernel per op of the block; on sm_90a both GEMMs run on warpgroup
// MMAs (FP8 ones for the projection), on sm_80 on mma.sync (f16 after
// decoding the FP8 operands).
// SM90-DAG: .entry quantize
// SM90-DAG: .entry fp8_gemm(
// SM90-DAG: .entry rmsnorm_rope(
// SM90-DAG: .entry gated_mlp(
// SM90-DAG: wgmma.mma_async.sync.aligned.m64n{{[0-9]+}}k32.f32.e4m3.e4m3
// SM90-DAG: wgmma.mma_async.sync.aligned.m64n{{[0-9]+}}k16.f32.bf16.bf16
// SM80-DAG: .entry quantize
// SM80-DAG: .entry fp8_gemm(
// SM80-DAG: .entry rmsnorm_rope(
// SM80-DAG: .entry gated_mlp(
// SM80-DAG: mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
// SM80-DAG: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
