// What convert-fusedops-to-gpu refuses, and how it says so.
// RUN: fusedops-opt %s --convert-fusedops-to-gpu -split-input-file -verify-diagnostics
// RUN: not fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_75" -split-input-file 2>&1 | FileCheck %s --check-prefix=CHIP
// CHIP: unknown chip 'sm_75'; expected sm_80, sm_86, sm_89, sm_90 and sm_90a

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

// -----

func.func @quantize_dynamic_cols(%x: memref<4x?xbf16>, %q: memref<4x?xf8E4M3FN>, %s: memref<4xf32>) {
  // expected-error @+1 {{'fusedops.quantize' op needs a static number of columns (dimension 1 of 'input') to lower to a GPU kernel}}
  fusedops.quantize ins(%x : memref<4x?xbf16>) outs(%q, %s : memref<4x?xf8E4M3FN>, memref<4xf32>) granularity = row
  return
}

// -----

func.func @dequantize_dynamic_cols(%q: memref<?x?xf8E5M2>, %s: memref<f32>, %o: memref<?x?xf16>) {
  // expected-error @+1 {{'fusedops.dequantize' op needs a static number of columns (dimension 1 of 'input') to lower to a GPU kernel}}
  fusedops.dequantize ins(%q, %s : memref<?x?xf8E5M2>, memref<f32>) outs(%o : memref<?x?xf16>) granularity = tensor
  return
}

// -----

func.func @quantize_strided(%x: memref<4x256xf16, strided<[512, 1]>>, %q: memref<4x256xf8E4M3FN>, %s: memref<f32>) {
  // expected-error @+1 {{'fusedops.quantize' op needs contiguous buffers (identity layout) to lower to a GPU kernel, got 'memref<4x256xf16, strided<[512, 1]>>'; bufferize with function-boundary-type-conversion=identity-layout-map}}
  fusedops.quantize ins(%x : memref<4x256xf16, strided<[512, 1]>>) outs(%q, %s : memref<4x256xf8E4M3FN>, memref<f32>) granularity = tensor
  return
}

// -----

func.func @quantize_row_split(%x: memref<?x4096xf16>, %q: memref<?x4096xf8E4M3FN>, %s: memref<?xf32>) {
  // expected-error @+1 {{'fusedops.quantize' op 'tile' #fusedops.tile<block = [1, 2048], warps = 4> splits rows of 4096 columns; row scales need whole rows in a thread block: use block = [1, 4096]}}
  fusedops.quantize ins(%x : memref<?x4096xf16>) outs(%q, %s : memref<?x4096xf8E4M3FN>, memref<?xf32>) granularity = row {tile = #fusedops.tile<block = [1, 2048], warps = 4>}
  return
}

// -----

func.func @quantize_row_rows(%x: memref<?x256xf16>, %q: memref<?x256xf8E4M3FN>, %s: memref<?xf32>) {
  // expected-error @+1 {{'fusedops.quantize' op 'tile' #fusedops.tile<block = [3, 256], warps = 4> must give each row the same power-of-two number of threads: rows per block must be a power of two, at most 128 (the threads of 4 warps)}}
  fusedops.quantize ins(%x : memref<?x256xf16>) outs(%q, %s : memref<?x256xf8E4M3FN>, memref<?xf32>) granularity = row {tile = #fusedops.tile<block = [3, 256], warps = 4>}
  return
}

// -----

func.func @quantize_block128_tile(%x: memref<?x256xbf16>, %q: memref<?x256xf8E4M3FN>, %s: memref<?x2xf32>) {
  // expected-error @+1 {{'fusedops.quantize' op 'tile' #fusedops.tile<block = [64, 128], warps = 8> must be block = [128, 128] for dynamic block128 scales: one thread block per scale block}}
  fusedops.quantize ins(%x : memref<?x256xbf16>) outs(%q, %s : memref<?x256xf8E4M3FN>, memref<?x2xf32>) granularity = block128 {tile = #fusedops.tile<block = [64, 128], warps = 8>}
  return
}

// -----

func.func @quantize_tile_cols(%x: memref<?x4096xbf16>, %s: memref<f32>, %q: memref<?x4096xf8E4M3FN>) {
  // expected-error @+1 {{'fusedops.quantize' op 'tile' #fusedops.tile<block = [1, 100], warps = 1> has 100 columns, not a multiple of the 8-element vectors the quantize kernel moves}}
  fusedops.quantize ins(%x : memref<?x4096xbf16>) scale(%s : memref<f32>) outs(%q : memref<?x4096xf8E4M3FN>) granularity = tensor {tile = #fusedops.tile<block = [1, 100], warps = 1>}
  return
}

// -----

func.func @dequantize_registers(%q: memref<?x8192xf8E4M3FN>, %s: memref<?xf32>, %o: memref<?x8192xf32>) {
  // expected-error @+1 {{'fusedops.dequantize' op 'tile' #fusedops.tile<block = [1, 8192], warps = 1> gives each thread 64 vectors of 4 elements to hold in registers; use more warps or a smaller block (at most 32 vectors per thread)}}
  fusedops.dequantize ins(%q, %s : memref<?x8192xf8E4M3FN>, memref<?xf32>) outs(%o : memref<?x8192xf32>) granularity = row {tile = #fusedops.tile<block = [1, 8192], warps = 1>}
  return
}

// -----

func.func @quantize_cluster(%x: memref<?x256xf16>, %q: memref<?x256xf8E4M3FN>, %s: memref<?xf32>) {
  // expected-error @+1 {{'fusedops.quantize' op 'tile' of quantize takes no cluster}}
  fusedops.quantize ins(%x : memref<?x256xf16>) outs(%q, %s : memref<?x256xf8E4M3FN>, memref<?xf32>) granularity = row {tile = #fusedops.tile<block = [1, 256], warps = 1, cluster = [2]>}
  return
}

// -----

// Buffers in shared or local memory compiled into kernels that read the
// wrong memory (issue 14): refused.
func.func @shared_memory_buffer(%q: memref<64x256xf8E4M3FN, 3>, %s: memref<64xf32>, %o: memref<64x256xbf16>) {
  // expected-error @+1 {{'fusedops.dequantize' op needs its buffers in global memory (no memory space, or #gpu.address_space<global>), got 'memref<64x256xf8E4M3FN, 3>'; kernels read their operands from device memory}}
  fusedops.dequantize ins(%q, %s : memref<64x256xf8E4M3FN, 3>, memref<64xf32>) outs(%o : memref<64x256xbf16>) granularity = row
  return
}

// -----

func.func @workgroup_buffer(%x: memref<16x256xbf16>, %wg: memref<64x256xbf16, #gpu.address_space<workgroup>>, %wu: memref<64x256xbf16>, %o: memref<16x64xbf16>) {
  // expected-error @+1 {{needs its buffers in global memory}}
  fusedops.gated_mlp ins(%x, %wg, %wu : memref<16x256xbf16>, memref<64x256xbf16, #gpu.address_space<workgroup>>, memref<64x256xbf16>) outs(%o : memref<16x64xbf16>) activation = silu
  return
}

// -----

// Global memory, spelled either way, is accepted.
func.func @global_buffers(%q: memref<64x256xf8E4M3FN, 1>, %s: memref<64xf32, #gpu.address_space<global>>, %o: memref<64x256xbf16>) {
  fusedops.dequantize ins(%q, %s : memref<64x256xf8E4M3FN, 1>, memref<64xf32, #gpu.address_space<global>>) outs(%o : memref<64x256xbf16>) granularity = row
  return
}

// -----

func.func @rms_norm_too_many_vectors(%x: memref<?x8192xf32>, %w: memref<8192xf32>, %o: memref<?x8192xf32>) {
  // expected-error @+1 {{'tile' gives each thread 64 vectors of the row to hold in registers; use more warps (at most 32 vectors per thread)}}
  fusedops.rms_norm ins(%x, %w : memref<?x8192xf32>, memref<8192xf32>) outs(%o : memref<?x8192xf32>) eps = 1.0e-6
      {tile = #fusedops.tile<block = [1], warps = 1>}
  return
}

// -----

func.func @rms_norm_dynamic_hidden(%x: memref<4x?xf16>, %w: memref<?xf16>, %o: memref<4x?xf16>) {
  // expected-error @+1 {{needs a static hidden size (the last dimension of 'input') to lower to a GPU kernel}}
  fusedops.rms_norm ins(%x, %w : memref<4x?xf16>, memref<?xf16>) outs(%o : memref<4x?xf16>) eps = 1.0e-6
  return
}

// -----

func.func @norm_grad_three_rows(%x: memref<64x128xbf16>, %w: memref<128xbf16>, %dw: memref<8x128xf32>) {
  // expected-error @+1 {{'fusedops.rms_norm_grad' op 'tile' #fusedops.tile<block = [3], warps = 4> must take block = [R] rows at once with R a power of two dividing the threads, each row within one warp where R > 1}}
  fusedops.rms_norm_grad ins(%x, %w, %x : memref<64x128xbf16>, memref<128xbf16>, memref<64x128xbf16>) outs(%x, %dw : memref<64x128xbf16>, memref<8x128xf32>) eps = 1.0e-6 {tile = #fusedops.tile<block = [3], warps = 4>}
  return
}

// -----

func.func @norm_grad_rows_past_shared_memory(%x: memref<64x4096xbf16>, %w: memref<4096xbf16>, %dw: memref<8x4096xf32>) {
  // expected-error @+1 {{'fusedops.rms_norm_grad' op 'tile' #fusedops.tile<block = [4], warps = 4> sums 4 rows of 4096 f32 partials in shared memory: at most 32768 bytes; take fewer rows at once}}
  fusedops.rms_norm_grad ins(%x, %w, %x : memref<64x4096xbf16>, memref<4096xbf16>, memref<64x4096xbf16>) outs(%x, %dw : memref<64x4096xbf16>, memref<8x4096xf32>) eps = 1.0e-6 {tile = #fusedops.tile<block = [4], warps = 4>}
  return
}

// -----

func.func @norm_grad_too_many_vectors(%x: memref<64x8192xf32>, %w: memref<8192xf32>, %dw: memref<8x8192xf32>) {
  // expected-error @+1 {{'tile' gives each thread 128 vectors of the row to hold in registers; use more warps (at most 32 vectors per thread)}}
  fusedops.rms_norm_grad ins(%x, %w, %x : memref<64x8192xf32>, memref<8192xf32>, memref<64x8192xf32>) outs(%x, %dw : memref<64x8192xf32>, memref<8x8192xf32>) eps = 1.0e-6 {tile = #fusedops.tile<block = [1], warps = 1>}
  return
}

// -----

func.func @grad_three_stages(%x: memref<64x128xbf16>, %w: memref<128xbf16>, %c: memref<64x128xf32>, %d: memref<64x128xbf16>, %dx: memref<64x128xbf16>, %dw: memref<8x128xf32>) {
  // expected-error @+1 {{'fusedops.rmsnorm_rope_grad' op 'tile' #fusedops.tile<block = [1], warps = 1, stages = 3> must have stages = 1: a block loads a step's rows whole, one step at a time (the next rows carried in registers or prefetched into L2 measured no faster: docs/perf/memory-ops.md v4 and v9)}}
  fusedops.rmsnorm_rope_grad ins(%x, %w, %c, %c, %d : memref<64x128xbf16>, memref<128xbf16>, memref<64x128xf32>, memref<64x128xf32>, memref<64x128xbf16>) outs(%dx, %dw : memref<64x128xbf16>, memref<8x128xf32>) head_dim = 128 eps = 1.0e-6 style = neox {tile = #fusedops.tile<block = [1], warps = 1, stages = 3>}
  return
}

// -----

func.func @grad_three_rows(%x: memref<64x128xbf16>, %w: memref<128xbf16>, %c: memref<64x128xf32>, %d: memref<64x128xbf16>, %dx: memref<64x128xbf16>, %dw: memref<8x128xf32>) {
  // expected-error @+1 {{'fusedops.rmsnorm_rope_grad' op 'tile' #fusedops.tile<block = [3], warps = 4> must take block = [R] rows at once with R a power of two dividing the threads, each row within one warp where R > 1}}
  fusedops.rmsnorm_rope_grad ins(%x, %w, %c, %c, %d : memref<64x128xbf16>, memref<128xbf16>, memref<64x128xf32>, memref<64x128xf32>, memref<64x128xbf16>) outs(%dx, %dw : memref<64x128xbf16>, memref<8x128xf32>) head_dim = 128 eps = 1.0e-6 style = neox {tile = #fusedops.tile<block = [3], warps = 4>}
  return
}

// -----

func.func @rows_at_once_over_a_warp(%x: memref<64x128xbf16>, %w: memref<128xbf16>, %c: memref<64x128xf32>, %o: memref<64x128xbf16>) {
  // expected-error @+1 {{'fusedops.rmsnorm_rope' op 'tile' #fusedops.tile<block = [1, 2], warps = 4> must take block = [R] (R rows in turn) or [R, S] (S rows at once, S a power of two dividing the threads, each row within one warp where S > 1)}}
  fusedops.rmsnorm_rope ins(%x, %w, %c, %c : memref<64x128xbf16>, memref<128xbf16>, memref<64x128xf32>, memref<64x128xf32>) outs(%o : memref<64x128xbf16>) head_dim = 128 eps = 1.0e-6 style = neox {tile = #fusedops.tile<block = [1, 2], warps = 4>}
  return
}

// -----

func.func @forward_two_stages(%x: memref<64x128xf16>, %w: memref<128xf16>, %c: memref<64x64xf32>, %o: memref<64x128xf16>) {
  // expected-error @+1 {{'fusedops.rmsnorm_rope' op 'tile' #fusedops.tile<block = [4], warps = 1, stages = 2> must have stages = 1: a block loads a step's rows whole, one step at a time (the next rows carried in registers or prefetched into L2 measured no faster: docs/perf/memory-ops.md v4 and v9)}}
  fusedops.rmsnorm_rope ins(%x, %w, %c, %c : memref<64x128xf16>, memref<128xf16>, memref<64x64xf32>, memref<64x64xf32>) outs(%o : memref<64x128xf16>) head_dim = 64 eps = 1.0e-6 style = neox {tile = #fusedops.tile<block = [4], warps = 1, stages = 2>}
  return
}

// -----

func.func @norm_two_stages(%x: memref<64x128xbf16>, %w: memref<128xbf16>) {
  // expected-error @+1 {{'fusedops.rms_norm' op 'tile' #fusedops.tile<block = [1], warps = 1, stages = 2> must have stages = 1: a block loads a step's rows whole, one step at a time (the next rows carried in registers or prefetched into L2 measured no faster: docs/perf/memory-ops.md v4 and v9)}}
  fusedops.rms_norm ins(%x, %w : memref<64x128xbf16>, memref<128xbf16>) outs(%x : memref<64x128xbf16>) eps = 1.0e-6 {tile = #fusedops.tile<block = [1], warps = 1, stages = 2>}
  return
}
