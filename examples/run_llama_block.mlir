// Runs examples/llama_block.mlir's block on a GPU with fusedops-runner:
//
//   fusedops-runner examples/run_llama_block.mlir -e main --entry-point-result=void \
//     --shared-libs=<llvm lib dir>/libmlir_runner_utils.so,<...>/libmlir_c_runner_utils.so
//
// The inputs are chosen so that the results are known exactly:
//   x = 1: quantize(row) gives q = 448 with scale 1/448; Wq = 0.5 with scales
//   1/512, so the projection is 448·0.5·1024/448/512 = 1; RMSNorm of a row of
//   ones is 1, and with cos = 1, sin = 0 RoPE keeps it: q_rot = 1.
//   Wg = Wu = 1/128: gate = up = 8, h = silu(8)·8 = 63.979 (bf16: 64).
// The body of @llama_block is the example's, repeated here because the runner
// takes one file.

func.func private @printMemrefF32(memref<*xf32>)

func.func @llama_block(%x: tensor<?x1024xbf16>, %positions: tensor<?xi32>,
                       %norm_weight: tensor<1024xbf16>,
                       %cos: tensor<4096x128xf32>, %sin: tensor<4096x128xf32>,
                       %wq: tensor<1024x1024xf8E4M3FN>, %wq_scale: tensor<1024xf32>,
                       %w_gate: tensor<2816x1024xbf16>, %w_up: tensor<2816x1024xbf16>)
    -> (tensor<?x1024xbf16>, tensor<?x2816xbf16>) {
  %c0 = arith.constant 0 : index
  %tokens = tensor.dim %x, %c0 : tensor<?x1024xbf16>
  %x8_init = tensor.empty(%tokens) : tensor<?x1024xf8E4M3FN>
  %sx_init = tensor.empty(%tokens) : tensor<?xf32>
  %x8, %sx = fusedops.quantize ins(%x : tensor<?x1024xbf16>)
      outs(%x8_init, %sx_init : tensor<?x1024xf8E4M3FN>, tensor<?xf32>)
      granularity = row -> tensor<?x1024xf8E4M3FN>, tensor<?xf32>
  %q_init = tensor.empty(%tokens) : tensor<?x1024xbf16>
  %q = fusedops.fp8_gemm
      ins(%x8, %wq, %sx, %wq_scale : tensor<?x1024xf8E4M3FN>, tensor<1024x1024xf8E4M3FN>,
          tensor<?xf32>, tensor<1024xf32>)
      outs(%q_init : tensor<?x1024xbf16>) granularity = row -> tensor<?x1024xbf16>
  %q_rot_init = tensor.empty(%tokens) : tensor<?x1024xbf16>
  %q_rot = fusedops.rmsnorm_rope
      ins(%q, %norm_weight, %cos, %sin : tensor<?x1024xbf16>, tensor<1024xbf16>,
          tensor<4096x128xf32>, tensor<4096x128xf32>)
      positions(%positions : tensor<?xi32>)
      outs(%q_rot_init : tensor<?x1024xbf16>)
      head_dim = 128 eps = 1.0e-5 style = neox -> tensor<?x1024xbf16>
  %h_init = tensor.empty(%tokens) : tensor<?x2816xbf16>
  %h = fusedops.gated_mlp
      ins(%x, %w_gate, %w_up : tensor<?x1024xbf16>, tensor<2816x1024xbf16>, tensor<2816x1024xbf16>)
      outs(%h_init : tensor<?x2816xbf16>) activation = silu -> tensor<?x2816xbf16>
  return %q_rot, %h : tensor<?x1024xbf16>, tensor<?x2816xbf16>
}

/// Fills a host buffer with `value` and copies it to a new device buffer.
func.func @device_filled_bf16(%rows: index, %cols: index, %value: bf16) -> memref<?x?xbf16> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %host = memref.alloc(%rows, %cols) : memref<?x?xbf16>
  scf.for %i = %c0 to %rows step %c1 {
    scf.for %j = %c0 to %cols step %c1 {
      memref.store %value, %host[%i, %j] : memref<?x?xbf16>
    }
  }
  %dev = gpu.alloc(%rows, %cols) : memref<?x?xbf16>
  gpu.memcpy %dev, %host : memref<?x?xbf16>, memref<?x?xbf16>
  return %dev : memref<?x?xbf16>
}

func.func @main() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %c128 = arith.constant 128 : index
  %c1024 = arith.constant 1024 : index
  %c2816 = arith.constant 2816 : index
  %c4096 = arith.constant 4096 : index
  %one = arith.constant 1.0 : bf16
  %w = arith.constant 0.0078125 : bf16
  %half8 = arith.constant 0.5 : f8E4M3FN
  %scale = arith.constant 0.001953125 : f32
  %onef = arith.constant 1.0 : f32
  %zerof = arith.constant 0.0 : f32

  // Inputs: 4 tokens at positions 0..3.
  %x = call @device_filled_bf16(%c4, %c1024, %one) : (index, index, bf16) -> memref<?x?xbf16>
  %norm = call @device_filled_bf16(%c1, %c1024, %one) : (index, index, bf16) -> memref<?x?xbf16>
  %wg = call @device_filled_bf16(%c2816, %c1024, %w) : (index, index, bf16) -> memref<?x?xbf16>
  %wu = call @device_filled_bf16(%c2816, %c1024, %w) : (index, index, bf16) -> memref<?x?xbf16>

  %hpos = memref.alloc() : memref<4xi32>
  %hcos = memref.alloc() : memref<4096x128xf32>
  %hsin = memref.alloc() : memref<4096x128xf32>
  %hwq = memref.alloc() : memref<1024x1024xf8E4M3FN>
  %hwqs = memref.alloc() : memref<1024xf32>
  scf.for %i = %c0 to %c4 step %c1 {
    %p = arith.index_cast %i : index to i32
    memref.store %p, %hpos[%i] : memref<4xi32>
  }
  scf.for %i = %c0 to %c4096 step %c1 {
    scf.for %j = %c0 to %c128 step %c1 {
      memref.store %onef, %hcos[%i, %j] : memref<4096x128xf32>
      memref.store %zerof, %hsin[%i, %j] : memref<4096x128xf32>
    }
  }
  scf.for %i = %c0 to %c1024 step %c1 {
    memref.store %scale, %hwqs[%i] : memref<1024xf32>
    scf.for %j = %c0 to %c1024 step %c1 {
      memref.store %half8, %hwq[%i, %j] : memref<1024x1024xf8E4M3FN>
    }
  }
  %pos = gpu.alloc() : memref<4xi32>
  %cos = gpu.alloc() : memref<4096x128xf32>
  %sin = gpu.alloc() : memref<4096x128xf32>
  %wq = gpu.alloc() : memref<1024x1024xf8E4M3FN>
  %wqs = gpu.alloc() : memref<1024xf32>
  gpu.memcpy %pos, %hpos : memref<4xi32>, memref<4xi32>
  gpu.memcpy %cos, %hcos : memref<4096x128xf32>, memref<4096x128xf32>
  gpu.memcpy %sin, %hsin : memref<4096x128xf32>, memref<4096x128xf32>
  gpu.memcpy %wq, %hwq : memref<1024x1024xf8E4M3FN>, memref<1024x1024xf8E4M3FN>
  gpu.memcpy %wqs, %hwqs : memref<1024xf32>, memref<1024xf32>

  // Device buffers as the block's tensors.
  %xs = memref.cast %x : memref<?x?xbf16> to memref<?x1024xbf16>
  %ns = memref.collapse_shape %norm [[0, 1]] : memref<?x?xbf16> into memref<?xbf16>
  %ns2 = memref.cast %ns : memref<?xbf16> to memref<1024xbf16>
  %wgs = memref.cast %wg : memref<?x?xbf16> to memref<2816x1024xbf16>
  %wus = memref.cast %wu : memref<?x?xbf16> to memref<2816x1024xbf16>
  %pos2 = memref.cast %pos : memref<4xi32> to memref<?xi32>
  %tx = bufferization.to_tensor %xs restrict : memref<?x1024xbf16> to tensor<?x1024xbf16>
  %tpos = bufferization.to_tensor %pos2 restrict : memref<?xi32> to tensor<?xi32>
  %tn = bufferization.to_tensor %ns2 restrict : memref<1024xbf16> to tensor<1024xbf16>
  %tcos = bufferization.to_tensor %cos restrict : memref<4096x128xf32> to tensor<4096x128xf32>
  %tsin = bufferization.to_tensor %sin restrict : memref<4096x128xf32> to tensor<4096x128xf32>
  %twq = bufferization.to_tensor %wq restrict : memref<1024x1024xf8E4M3FN> to tensor<1024x1024xf8E4M3FN>
  %twqs = bufferization.to_tensor %wqs restrict : memref<1024xf32> to tensor<1024xf32>
  %twg = bufferization.to_tensor %wgs restrict : memref<2816x1024xbf16> to tensor<2816x1024xbf16>
  %twu = bufferization.to_tensor %wus restrict : memref<2816x1024xbf16> to tensor<2816x1024xbf16>

  %q_rot, %h = call @llama_block(%tx, %tpos, %tn, %tcos, %tsin, %twq, %twqs, %twg, %twu)
      : (tensor<?x1024xbf16>, tensor<?xi32>, tensor<1024xbf16>, tensor<4096x128xf32>,
         tensor<4096x128xf32>, tensor<1024x1024xf8E4M3FN>, tensor<1024xf32>,
         tensor<2816x1024xbf16>, tensor<2816x1024xbf16>) -> (tensor<?x1024xbf16>, tensor<?x2816xbf16>)

  // Back to the host: the first 8 values of each token's q_rot and h.
  %dq = bufferization.to_buffer %q_rot read_only : tensor<?x1024xbf16> to memref<?x1024xbf16>
  %dh = bufferization.to_buffer %h read_only : tensor<?x2816xbf16> to memref<?x2816xbf16>
  %hq = memref.alloc() : memref<4x1024xbf16>
  %hh = memref.alloc() : memref<4x2816xbf16>
  %dq4 = memref.cast %dq : memref<?x1024xbf16> to memref<4x1024xbf16>
  %dh4 = memref.cast %dh : memref<?x2816xbf16> to memref<4x2816xbf16>
  gpu.memcpy %hq, %dq4 : memref<4x1024xbf16>, memref<4x1024xbf16>
  gpu.memcpy %hh, %dh4 : memref<4x2816xbf16>, memref<4x2816xbf16>
  %pq = memref.alloc() : memref<4x8xf32>
  %ph = memref.alloc() : memref<4x8xf32>
  scf.for %i = %c0 to %c4 step %c1 {
    scf.for %j = %c0 to %c8 step %c1 {
      %a = memref.load %hq[%i, %j] : memref<4x1024xbf16>
      %b = memref.load %hh[%i, %j] : memref<4x2816xbf16>
      %af = arith.extf %a : bf16 to f32
      %bf = arith.extf %b : bf16 to f32
      memref.store %af, %pq[%i, %j] : memref<4x8xf32>
      memref.store %bf, %ph[%i, %j] : memref<4x8xf32>
    }
  }
  %uq = memref.cast %pq : memref<4x8xf32> to memref<*xf32>
  %uh = memref.cast %ph : memref<4x8xf32> to memref<*xf32>
  call @printMemrefF32(%uq) : (memref<*xf32>) -> ()
  call @printMemrefF32(%uh) : (memref<*xf32>) -> ()
  return
}
