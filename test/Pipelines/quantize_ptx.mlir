// quantize and dequantize from the tensor form to PTX and cubin for both
// chips.
// REQUIRES: ptxas
// RUN: fusedops-compile %s --chip=sm_90a --ptx=%t.sm90a.ptx --cubin=%t.sm90a.cubin | FileCheck %s --check-prefix=WROTE
// RUN: FileCheck %s --check-prefixes=PTX,SM90 < %t.sm90a.ptx
// RUN: fusedops-compile %s --chip=sm_80 --ptx=%t.sm80.ptx | FileCheck %s --check-prefix=WROTE80
// RUN: FileCheck %s --check-prefixes=PTX,SM80 --implicit-check-not=e4m3 --implicit-check-not=e5m2 < %t.sm80.ptx
// RUN: fusedops-opt %s --fusedops-to-binary="chip=sm_80 format=isa" | FileCheck %s --check-prefix=HOST

// WROTE: wrote {{.*}}.sm90a.ptx (isa, sm_90a, {{[0-9]+}} bytes)
// WROTE: wrote {{.*}}.sm90a.cubin (bin, sm_90a, {{[0-9]+}} bytes)
// WROTE80: wrote {{.*}}.sm80.ptx (isa, sm_80, {{[0-9]+}} bytes)

// SM90: .target sm_90a
// SM80: .target sm_80
// The FP8 conversions: sm_90's cvt instructions on pairs; on sm_80, which
// has none, integer code (no FP8 type anywhere: --implicit-check-not).

// Dynamic row scales: 16-byte loads of x, the row's absmax by shuffles and
// one exchange between warps, the scale as an IEEE division and its
// reciprocal, x/scale by FMAs, q stored as 8-byte vectors.
// PTX: .entry quantize_row_dynamic(
// PTX: .maxntid 128, 1, 1
// PTX: ld.global.v4.b32
// PTX: shfl.sync.bfly.b32
// PTX: bar.sync
// PTX: div.rn.f32 {{.*}}, 0f43E00000;
// PTX: st.global.b32
// PTX: rcp.rn.f32
// PTX: fma.rn.f32
// SM90: cvt.rn.satfinite.e4m3x2.f32
// PTX: st.global.v2.b32

// Dynamic tensor scale in one cooperative kernel: the init kernel (on the
// same grid) writes the scale of an all-zero tensor and zeroes the
// barrier's words of q; the kernel, at most two blocks an SM
// (.minnctapersm), raises the scale with one u32 atomic max per block,
// counts itself in after a release fence, the last block wakes every block
// with relaxed stores after an acq_rel fence, each waits with acquire loads
// on its own word, reads the scale once and converts.
// PTX: .entry quantize_tensor_scale_init(
// PTX: st.global.b32 {{.*}}, 597743557;
// PTX: st.global.b32 [%rd{{[0-9]+}}], 0;
// PTX: .entry quantize_tensor_dynamic__cooperative(
// PTX: .maxntid 256, 1, 1
// PTX: .minnctapersm 2
// PTX: ld.global.v4.b32
// PTX: shfl.sync.bfly.b32
// PTX: div.rn.f32 {{.*}}, 0f47600000;
// PTX: atom.global.max.u32
// PTX: fence.acq_rel.gpu;
// PTX: atom.global.add.u32
// PTX: fence.acq_rel.gpu;
// PTX: st.relaxed.gpu.global.b32
// PTX: ld.acquire.gpu.global.b32
// PTX: nanosleep.u32
// PTX: bar.sync
// PTX: ld.relaxed.gpu.global.b32
// PTX: fma.rn.f32
// SM90: cvt.rn.satfinite.e5m2x2.f32
// PTX: st.global.v2.b32

// Dequantize to bf16: 8-byte FP8 loads, 16-byte stores, packed conversions.
// PTX: .entry dequantize_block128(
// PTX: ld.global.v2.b32
// SM90: cvt.rn.f16x2.e4m3x2
// PTX: cvt.rn.bf16x2.f32
// PTX: st.global.v4.b32

// The two launches of dynamic tensor scales go in order on one stream (the
// SM count that caps the kernel's grid is asked first: host work between
// the launches would synchronize the stream there).
// HOST: llvm.func @quantize_tensor(
// HOST: llvm.call @mgpuMultiprocessorCount()
// HOST-NOT: mgpuStreamSynchronize
// HOST: %[[STREAM:.*]] = llvm.call @mgpuStreamCreate()
// HOST-NOT: mgpuStreamSynchronize
// HOST: gpu.launch_func <%[[STREAM]] : !llvm.ptr> @fusedops_kernels::@quantize_tensor_scale_init
// HOST-NOT: mgpuStreamSynchronize
// HOST: gpu.launch_func <%[[STREAM]] : !llvm.ptr> @fusedops_kernels::@quantize_tensor_dynamic__cooperative
// HOST: llvm.call @mgpuStreamSynchronize(%[[STREAM]])
// HOST: gpu.binary @fusedops_kernels {{ *}}[#gpu.object<#nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">

// The tiles are written out (the strategies' defaults) so that the checked
// kernel structure does not follow the autotuner's choice (test/Autotune).
func.func @quantize_row(%x: tensor<?x4096xbf16>, %qi: tensor<?x4096xf8E4M3FN>, %si: tensor<?xf32>)
    -> (tensor<?x4096xf8E4M3FN>, tensor<?xf32>) {
  %q, %s = fusedops.quantize ins(%x : tensor<?x4096xbf16>) outs(%qi, %si : tensor<?x4096xf8E4M3FN>, tensor<?xf32>)
      granularity = row {tile = #fusedops.tile<block = [1, 4096], warps = 4>}
      -> tensor<?x4096xf8E4M3FN>, tensor<?xf32>
  return %q, %s : tensor<?x4096xf8E4M3FN>, tensor<?xf32>
}

func.func @quantize_tensor(%x: tensor<?x4096xf16>, %qi: tensor<?x4096xf8E5M2>, %si: tensor<f32>)
    -> (tensor<?x4096xf8E5M2>, tensor<f32>) {
  %q, %s = fusedops.quantize ins(%x : tensor<?x4096xf16>) outs(%qi, %si : tensor<?x4096xf8E5M2>, tensor<f32>)
      granularity = tensor {tile = #fusedops.tile<block = [2, 4096], warps = 8, stages = 4>}
      -> tensor<?x4096xf8E5M2>, tensor<f32>
  return %q, %s : tensor<?x4096xf8E5M2>, tensor<f32>
}

func.func @dequantize_block128(%q: tensor<?x4096xf8E4M3FN>, %s: tensor<?x32xf32>, %o: tensor<?x4096xbf16>)
    -> tensor<?x4096xbf16> {
  %r = fusedops.dequantize ins(%q, %s : tensor<?x4096xf8E4M3FN>, tensor<?x32xf32>) outs(%o : tensor<?x4096xbf16>)
      granularity = block128 {tile = #fusedops.tile<block = [2, 4096], warps = 8>}
      -> tensor<?x4096xbf16>
  return %r : tensor<?x4096xbf16>
}
