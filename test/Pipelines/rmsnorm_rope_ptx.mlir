// rmsnorm_rope from the tensor form to PTX and cubin for both chips.
// REQUIRES: ptxas
// RUN: fusedops-compile %s --chip=sm_90a --ptx=%t.sm90a.ptx --cubin=%t.sm90a.cubin | FileCheck %s --check-prefix=WROTE
// RUN: FileCheck %s --check-prefix=SM90 < %t.sm90a.ptx
// RUN: fusedops-compile %s --chip=sm_80 --ptx=%t.sm80.ptx | FileCheck %s --check-prefix=WROTE80
// RUN: FileCheck %s --check-prefix=SM80 < %t.sm80.ptx
// RUN: fusedops-opt %s --fusedops-to-binary="chip=sm_90a format=isa" | FileCheck %s --check-prefix=HOST

// WROTE: wrote {{.*}}.sm90a.ptx (isa, sm_90a, {{[0-9]+}} bytes)
// WROTE: wrote {{.*}}.sm90a.cubin (bin, sm_90a, {{[0-9]+}} bytes)
// WROTE80: wrote {{.*}}.sm80.ptx (isa, sm_80, {{[0-9]+}} bytes)

// The PTX version is the lowest that has the chip's instructions.
// SM90: .version 8.4
// SM90: .target sm_90a
// SM90: .entry rmsnorm_rope(
// SM90: .maxntid 128, 1, 1
// 16-byte loads of x and the weight, warp shuffles for the sum, a barrier
// for the exchange between warps, 16-byte stores.
// SM90: ld.global.v4.b32
// SM90: shfl.sync.bfly.b32
// SM90: bar.sync
// SM90: rsqrt.approx.f32
// SM90: st.global.v4.b32

// SM80: .version 7.0
// SM80: .target sm_80
// SM80: .entry rmsnorm_rope(
// SM80: ld.global.v4.b32
// SM80: shfl.sync.bfly.b32
// SM80: st.global.v4.b32

// The host code launches the embedded kernels on a stream from the runtime
// (gpu-async-region made the launch asynchronous) and waits for it.
// HOST: llvm.func @norm(
// HOST: %[[STREAM:.*]] = llvm.call @mgpuStreamCreate()
// HOST: gpu.launch_func <%[[STREAM]] : !llvm.ptr> @fusedops_kernels::@rmsnorm_rope
// HOST: llvm.call @mgpuStreamSynchronize(%[[STREAM]])
// HOST: gpu.binary @fusedops_kernels {{ *}}[#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx84">

// The tile is written out (the strategy's default) so that the checked
// kernel structure does not follow the autotuner's choice (test/Autotune).
func.func @norm(%x: tensor<?x4096xbf16>, %w: tensor<4096xbf16>, %cos: tensor<2048x128xf32>,
                %sin: tensor<2048x128xf32>, %pos: tensor<?xi32>, %o: tensor<?x4096xbf16>) -> tensor<?x4096xbf16> {
  %r = fusedops.rmsnorm_rope ins(%x, %w, %cos, %sin : tensor<?x4096xbf16>, tensor<4096xbf16>, tensor<2048x128xf32>, tensor<2048x128xf32>)
      positions(%pos : tensor<?xi32>) outs(%o : tensor<?x4096xbf16>) head_dim = 128 eps = 1.0e-5 style = neox
      {tile = #fusedops.tile<block = [1], warps = 4>} -> tensor<?x4096xbf16>
  return %r : tensor<?x4096xbf16>
}
