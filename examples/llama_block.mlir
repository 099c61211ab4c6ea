// A LLaMA-style decoder block's heavy operators, written in the fusedops
// dialect: the bundled example that README's first command compiles.
//
//   x ──quantize(row)──> x8, sx ──fp8_gemm(Wq8, sw)──> q ──rmsnorm_rope──> q_rot
//   x ──gated_mlp(Wg, Wu, silu)──> h
//
// Shapes are those of a small LLaMA (hidden 1024, 8 heads of 128, MLP 2816);
// the number of tokens T is dynamic, and each token's position comes from
// %positions (the decoding case, tokens from several sequences packed).

func.func @llama_block(%x: tensor<?x1024xbf16>, %positions: tensor<?xi32>,
                       %norm_weight: tensor<1024xbf16>,
                       %cos: tensor<4096x128xf32>, %sin: tensor<4096x128xf32>,
                       %wq: tensor<1024x1024xf8E4M3FN>, %wq_scale: tensor<1024xf32>,
                       %w_gate: tensor<2816x1024xbf16>, %w_up: tensor<2816x1024xbf16>)
    -> (tensor<?x1024xbf16>, tensor<?x2816xbf16>) {
  %c0 = arith.constant 0 : index
  %tokens = tensor.dim %x, %c0 : tensor<?x1024xbf16>

  // FP8 query projection: x quantized per token, Wq stored in FP8 with one
  // scale per output feature.
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

  // RMSNorm of the queries fused with the rotary embedding of every head.
  %q_rot_init = tensor.empty(%tokens) : tensor<?x1024xbf16>
  %q_rot = fusedops.rmsnorm_rope
      ins(%q, %norm_weight, %cos, %sin : tensor<?x1024xbf16>, tensor<1024xbf16>,
          tensor<4096x128xf32>, tensor<4096x128xf32>)
      positions(%positions : tensor<?xi32>)
      outs(%q_rot_init : tensor<?x1024xbf16>)
      head_dim = 128 eps = 1.0e-5 style = neox -> tensor<?x1024xbf16>

  // SwiGLU MLP: silu(x·Wgᵀ) ⊙ (x·Wuᵀ) in one kernel.
  %h_init = tensor.empty(%tokens) : tensor<?x2816xbf16>
  %h = fusedops.gated_mlp
      ins(%x, %w_gate, %w_up : tensor<?x1024xbf16>, tensor<2816x1024xbf16>, tensor<2816x1024xbf16>)
      outs(%h_init : tensor<?x2816xbf16>) activation = silu -> tensor<?x2816xbf16>

  return %q_rot, %h : tensor<?x1024xbf16>, tensor<?x2816xbf16>
}
