// Every verifier error of the fusedops ops and attributes, one per split.
// RUN: fusedops-opt %s -split-input-file -verify-diagnostics

func.func @rms_input_rank(%x: tensor<256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<256xf16>) {
  // expected-error @+1 {{expects 'input' to have rank >= 2 ([..., seq, hidden]: without a 'positions' operand, dimension -2 gives each row's position), got 'tensor<256xf16>'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<256xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<256xf16>
  return
}

// -----

func.func @rms_input_elem(%x: tensor<2x8x256xi8>, %w: tensor<256xi8>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xi8>) {
  // expected-error @+1 {{expects 'input' to have f16, bf16 or f32 elements, got 'i8'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xi8>, tensor<256xi8>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x256xi8>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x8x256xi8>
  return
}

// -----

func.func @rms_hidden_multiple(%x: tensor<2x8x200xf16>, %w: tensor<200xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x200xf16>) {
  // expected-error @+1 {{expects the hidden size of 'input' (200) to be a multiple of head_dim (64)}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x200xf16>, tensor<200xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x200xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x8x200xf16>
  return
}

// -----

func.func @rms_eps(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{expects 'eps' to be finite and >= 0, got -1}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = -1.0 style = neox -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_eps_nan(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{expects 'eps' to be finite and >= 0, got nan}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 0x7FC00000 style = neox -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_fraction_range(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{expects 'rotary_fraction' in (0, 1], got 1.5}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox rotary_fraction = 1.5 -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_fraction_zero(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{expects 'rotary_fraction' in (0, 1], got 0}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox rotary_fraction = 0.0 -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_fraction_whole(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{expects head_dim * rotary_fraction to be a whole number of dimensions, got 1.92}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox rotary_fraction = 0.3 -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_rotary_odd(%x: tensor<2x8x40xf16>, %w: tensor<40xf16>, %c: tensor<8x5xf32>, %s: tensor<8x5xf32>, %o: tensor<2x8x40xf16>) {
  // expected-error @+1 {{expects an even, positive number of rotated dimensions per head (head_dim * rotary_fraction), got 5}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x40xf16>, tensor<40xf16>, tensor<8x5xf32>, tensor<8x5xf32>) outs(%o : tensor<2x8x40xf16>) head_dim = 20 eps = 1.0e-6 style = neox rotary_fraction = 0.25 -> tensor<2x8x40xf16>
  return
}

// -----

func.func @rms_head_dim_positive(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{attribute 'head_dim' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 0 eps = 1.0e-6 style = neox -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_style(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xf16>) {
  // expected-error @+2 {{expected ::mlir::fusedops::RopeStyle to be one of: neox, gptj}}
  // expected-error @+1 {{failed to parse FusedOps_RopeStyleAttr parameter 'value'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = llama -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_weight_shape(%x: tensor<2x8x256xf16>, %w: tensor<128xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{expects 'weight' to have shape [256] (the hidden size of 'input'), got 'tensor<128xf16>'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<128xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_weight_elem(%x: tensor<2x8x256xf16>, %w: tensor<256xf32>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{expects 'weight' to have the element type of 'input' ('f16'), got 'f32'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf32>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_cos_rank(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<64xf32>, %s: tensor<64xf32>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{expects 'cos' to have rank 2, got 'tensor<64xf32>'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<64xf32>, tensor<64xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_cos_shape(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x32xf32>, %s: tensor<8x32xf32>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{expects 'cos' to have shape [?, 64] ([max positions, rotated dims per head]), got 'tensor<8x32xf32>'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x32xf32>, tensor<8x32xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_cos_elem(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xbf16>, %s: tensor<8x64xbf16>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{expects 'cos' to have f32 elements or those of 'input' ('f16'), got 'bf16'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xbf16>, tensor<8x64xbf16>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_sin_shape(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<16x64xf32>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{expects 'sin' to have shape [8, 64] (the shape of 'cos'), got 'tensor<16x64xf32>'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<16x64xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_sin_elem(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf16>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{expects 'sin' to have the element type of 'cos' ('f32'), got 'f16'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf16>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_positions_shape(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xf16>, %p: tensor<2xi32>) {
  // expected-error @+1 {{expects 'positions' to have shape [2, 8] (one position per row of 'input'), got 'tensor<2xi32>'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) positions(%p : tensor<2xi32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_positions_elem(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xf16>, %p: tensor<2x8xf32>) {
  // expected-error @+1 {{expects 'positions' to have i32 or i64 elements, got 'f32'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) positions(%p : tensor<2x8xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_no_positions(%x: tensor<2x1x256xf16>, %w: tensor<256xf16>, %c: tensor<0x64xf32>, %s: tensor<0x64xf32>, %o: tensor<2x1x256xf16>) {
  // expected-error @+1 {{expects 'cos'/'sin' to hold at least 1 position (dimension -2 of 'input'), got 0}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x1x256xf16>, tensor<256xf16>, tensor<0x64xf32>, tensor<0x64xf32>) outs(%o : tensor<2x1x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x1x256xf16>
  return
}

// -----

func.func @rms_too_few_positions(%x: tensor<2x16x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x16x256xf16>) {
  // expected-error @+1 {{expects 'cos'/'sin' to hold at least 16 positions (dimension -2 of 'input'), got 8}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x16x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x16x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x16x256xf16>
  return
}

// -----

func.func @rms_outs_shape(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x128xf16>) {
  // expected-error @+1 {{expects 'outs' to have shape [2, 8, 256] (the shape of 'input'), got 'tensor<2x8x128xf16>'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x128xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x8x128xf16>
  return
}

// -----

func.func @rms_outs_elem(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xbf16>) {
  // expected-error @+1 {{expects 'outs' to have the element type of 'input' ('f16'), got 'bf16'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x256xbf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x8x256xbf16>
  return
}

// -----

func.func @rms_result_type(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{expects result #0 to have the type of its 'outs' operand ('tensor<2x8x256xf16>'), got 'tensor<?x8x256xf16>'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<?x8x256xf16>
  return
}

// -----

func.func @rms_tensor_no_result(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{in tensor form expects one result per 'outs' operand (1), got 0}}
  fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox
  return
}

// -----

func.func @rms_mixed(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: memref<2x8x256xf16>) {
  // expected-error @+1 {{expects all operands to be tensors (tensor form) or all to be memrefs (buffer form), got a mix}}
  fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : memref<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox
  return
}

// -----

func.func @rms_tile_rank(%x: tensor<2x8x256xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<2x8x256xf16>) {
  // expected-error @+1 {{expects 'tile' to have 1 to 2 block sizes, got 3}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<2x8x256xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<2x8x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox {tile = #fusedops.tile<block = [4, 4, 4], warps = 4>} -> tensor<2x8x256xf16>
  return
}

// -----

func.func @rms_unranked(%x: tensor<*xf16>, %w: tensor<256xf16>, %c: tensor<8x64xf32>, %s: tensor<8x64xf32>, %o: tensor<*xf16>) {
  // expected-error @+1 {{must be ranked tensor of any type values or memref of any type values, but got 'tensor<*xf16>'}}
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %c, %s : tensor<*xf16>, tensor<256xf16>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%o : tensor<*xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<*xf16>
  return
}

// -----

func.func @mlp_input_rank(%x: tensor<f16>, %g: tensor<96x64xf16>, %u: tensor<96x64xf16>, %o: tensor<8x96xf16>) {
  // expected-error @+1 {{expects 'input' to have rank >= 1 ([..., K]), got 'tensor<f16>'}}
  %0 = fusedops.gated_mlp ins(%x, %g, %u : tensor<f16>, tensor<96x64xf16>, tensor<96x64xf16>) outs(%o : tensor<8x96xf16>) activation = silu -> tensor<8x96xf16>
  return
}

// -----

func.func @mlp_input_elem(%x: tensor<8x64xf64>, %g: tensor<96x64xf16>, %u: tensor<96x64xf16>, %o: tensor<8x96xf16>) {
  // expected-error @+1 {{expects 'input' to have f16 or bf16 elements (its tensor-core operand types: convert f32 operands to one of them), got 'f64'}}
  %0 = fusedops.gated_mlp ins(%x, %g, %u : tensor<8x64xf64>, tensor<96x64xf16>, tensor<96x64xf16>) outs(%o : tensor<8x96xf16>) activation = silu -> tensor<8x96xf16>
  return
}

// -----

func.func @mlp_gate_rank(%x: tensor<8x64xf16>, %g: tensor<96x64x1xf16>, %u: tensor<96x64x1xf16>, %o: tensor<8x96xf16>) {
  // expected-error @+1 {{expects 'gate_weight' to have rank 2, got 'tensor<96x64x1xf16>'}}
  %0 = fusedops.gated_mlp ins(%x, %g, %u : tensor<8x64xf16>, tensor<96x64x1xf16>, tensor<96x64x1xf16>) outs(%o : tensor<8x96xf16>) activation = silu -> tensor<8x96xf16>
  return
}

// -----

func.func @mlp_gate_k(%x: tensor<8x64xf16>, %g: tensor<96x32xf16>, %u: tensor<96x32xf16>, %o: tensor<8x96xf16>) {
  // expected-error @+1 {{expects 'gate_weight' to have shape [96, 64] ([N, K] with K the last dimension of 'input'), got 'tensor<96x32xf16>'}}
  %0 = fusedops.gated_mlp ins(%x, %g, %u : tensor<8x64xf16>, tensor<96x32xf16>, tensor<96x32xf16>) outs(%o : tensor<8x96xf16>) activation = silu -> tensor<8x96xf16>
  return
}

// -----

func.func @mlp_gate_elem(%x: tensor<8x64xf16>, %g: tensor<96x64xbf16>, %u: tensor<96x64xbf16>, %o: tensor<8x96xf16>) {
  // expected-error @+1 {{expects 'gate_weight' to have the element type of 'input' ('f16'), got 'bf16'}}
  %0 = fusedops.gated_mlp ins(%x, %g, %u : tensor<8x64xf16>, tensor<96x64xbf16>, tensor<96x64xbf16>) outs(%o : tensor<8x96xf16>) activation = silu -> tensor<8x96xf16>
  return
}

// -----

func.func @mlp_up_shape(%x: tensor<8x64xf16>, %g: tensor<96x64xf16>, %u: tensor<64x64xf16>, %o: tensor<8x96xf16>) {
  // expected-error @+1 {{expects 'up_weight' to have shape [96, 64] (the shape of 'gate_weight'), got 'tensor<64x64xf16>'}}
  %0 = fusedops.gated_mlp ins(%x, %g, %u : tensor<8x64xf16>, tensor<96x64xf16>, tensor<64x64xf16>) outs(%o : tensor<8x96xf16>) activation = silu -> tensor<8x96xf16>
  return
}

// -----

func.func @mlp_f32(%x: tensor<8x64xf32>, %g: tensor<96x64xf32>, %u: tensor<96x64xf32>, %o: tensor<8x96xf32>) {
  // expected-error @+1 {{expects 'input' to have f16 or bf16 elements (its tensor-core operand types: convert f32 operands to one of them), got 'f32'}}
  %0 = fusedops.gated_mlp ins(%x, %g, %u : tensor<8x64xf32>, tensor<96x64xf32>, tensor<96x64xf32>) outs(%o : tensor<8x96xf32>) activation = silu -> tensor<8x96xf32>
  return
}

// -----

func.func @mlp_up_elem(%x: tensor<8x64xf16>, %g: tensor<96x64xf16>, %u: tensor<96x64xf32>, %o: tensor<8x96xf16>) {
  // expected-error @+1 {{expects 'up_weight' to have the element type of 'input' ('f16'), got 'f32'}}
  %0 = fusedops.gated_mlp ins(%x, %g, %u : tensor<8x64xf16>, tensor<96x64xf16>, tensor<96x64xf32>) outs(%o : tensor<8x96xf16>) activation = silu -> tensor<8x96xf16>
  return
}

// -----

func.func @mlp_outs_shape(%x: tensor<8x64xf16>, %g: tensor<96x64xf16>, %u: tensor<96x64xf16>, %o: tensor<8x64xf16>) {
  // expected-error @+1 {{expects 'outs' to have shape [8, 96] ([..., N]: the leading dimensions of 'input' and N of the weights), got 'tensor<8x64xf16>'}}
  %0 = fusedops.gated_mlp ins(%x, %g, %u : tensor<8x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>) outs(%o : tensor<8x64xf16>) activation = silu -> tensor<8x64xf16>
  return
}

// -----

func.func @mlp_outs_elem(%x: tensor<8x64xf16>, %g: tensor<96x64xf16>, %u: tensor<96x64xf16>, %o: tensor<8x96xf32>) {
  // expected-error @+1 {{expects 'outs' to have the element type of 'input' ('f16'), got 'f32'}}
  %0 = fusedops.gated_mlp ins(%x, %g, %u : tensor<8x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>) outs(%o : tensor<8x96xf32>) activation = silu -> tensor<8x96xf32>
  return
}

// -----

func.func @mlp_act(%x: tensor<8x64xf16>, %g: tensor<96x64xf16>, %u: tensor<96x64xf16>, %o: tensor<8x96xf16>) {
  // expected-error @+2 {{expected ::mlir::fusedops::Activation to be one of: silu, gelu, gelu_tanh}}
  // expected-error @+1 {{failed to parse FusedOps_ActivationAttr parameter 'value'}}
  %0 = fusedops.gated_mlp ins(%x, %g, %u : tensor<8x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>) outs(%o : tensor<8x96xf16>) activation = relu -> tensor<8x96xf16>
  return
}

// -----

func.func @mlp_tile_rank(%x: tensor<8x64xf16>, %g: tensor<96x64xf16>, %u: tensor<96x64xf16>, %o: tensor<8x96xf16>) {
  // expected-error @+1 {{expects 'tile' to have 3 block sizes, got 1}}
  %0 = fusedops.gated_mlp ins(%x, %g, %u : tensor<8x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>) outs(%o : tensor<8x96xf16>) activation = silu {tile = #fusedops.tile<block = [128], warps = 4>} -> tensor<8x96xf16>
  return
}

// -----

func.func @rope_grad_partials_type(%x: tensor<4x8x128xbf16>, %w: tensor<128xbf16>, %c: tensor<8x64xf32>, %p: tensor<16x128xbf16>) {
  // expected-error @+1 {{expects 'outs' to have f32 elements, got 'bf16'}}
  %0:2 = fusedops.rmsnorm_rope_grad ins(%x, %w, %c, %c, %x : tensor<4x8x128xbf16>, tensor<128xbf16>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<4x8x128xbf16>) outs(%x, %p : tensor<4x8x128xbf16>, tensor<16x128xbf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<4x8x128xbf16>, tensor<16x128xbf16>
  return
}

// -----

func.func @rope_grad_partials_shape(%x: tensor<4x8x128xbf16>, %w: tensor<128xbf16>, %c: tensor<8x64xf32>, %p: tensor<16x64xf32>) {
  // expected-error @+1 {{expects 'outs' to have shape [?, 128] ([P, hidden]: the weight gradient's partial sums), got 'tensor<16x64xf32>'}}
  %0:2 = fusedops.rmsnorm_rope_grad ins(%x, %w, %c, %c, %x : tensor<4x8x128xbf16>, tensor<128xbf16>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<4x8x128xbf16>) outs(%x, %p : tensor<4x8x128xbf16>, tensor<16x64xf32>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<4x8x128xbf16>, tensor<16x64xf32>
  return
}

// -----

func.func @rope_grad_partials_dynamic(%x: tensor<4x8x128xbf16>, %w: tensor<128xbf16>, %c: tensor<8x64xf32>, %p: tensor<?x128xf32>) {
  // expected-error @+1 {{expects a static number of partial sums (the first dimension of the second 'outs') of at least 1, got ?}}
  %0:2 = fusedops.rmsnorm_rope_grad ins(%x, %w, %c, %c, %x : tensor<4x8x128xbf16>, tensor<128xbf16>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<4x8x128xbf16>) outs(%x, %p : tensor<4x8x128xbf16>, tensor<?x128xf32>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<4x8x128xbf16>, tensor<?x128xf32>
  return
}

// -----

func.func @rope_grad_grad_shape(%x: tensor<4x8x128xbf16>, %w: tensor<128xbf16>, %c: tensor<8x64xf32>, %d: tensor<4x8x64xbf16>, %p: tensor<16x128xf32>) {
  // expected-error @+1 {{expects 'grad' to have shape [4, 8, 128] (the shape of 'input'), got 'tensor<4x8x64xbf16>'}}
  %0:2 = fusedops.rmsnorm_rope_grad ins(%x, %w, %c, %c, %d : tensor<4x8x128xbf16>, tensor<128xbf16>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<4x8x64xbf16>) outs(%x, %p : tensor<4x8x128xbf16>, tensor<16x128xf32>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<4x8x128xbf16>, tensor<16x128xf32>
  return
}

// -----

func.func @rope_grad_eps(%x: tensor<4x8x128xbf16>, %w: tensor<128xbf16>, %c: tensor<8x64xf32>, %p: tensor<16x128xf32>) {
  // expected-error @+1 {{expects 'eps' to be finite and >= 0, got -1}}
  %0:2 = fusedops.rmsnorm_rope_grad ins(%x, %w, %c, %c, %x : tensor<4x8x128xbf16>, tensor<128xbf16>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<4x8x128xbf16>) outs(%x, %p : tensor<4x8x128xbf16>, tensor<16x128xf32>) head_dim = 64 eps = -1.0 style = neox -> tensor<4x8x128xbf16>, tensor<16x128xf32>
  return
}

// -----

func.func @mlp_two_outs(%x: tensor<8x64xf16>, %g: tensor<96x64xf16>, %u: tensor<96x64xf16>, %o: tensor<8x96xf16>) {
  // expected-error @+1 {{expects 1 'outs' operand (the output, or the output, gate and up), got 2}}
  %0:2 = fusedops.gated_mlp ins(%x, %g, %u : tensor<8x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>) outs(%o, %o : tensor<8x96xf16>, tensor<8x96xf16>) activation = silu -> tensor<8x96xf16>, tensor<8x96xf16>
  return
}

// -----

func.func @mlp_saved_shape(%x: tensor<8x64xf16>, %g: tensor<96x64xf16>, %u: tensor<96x64xf16>, %o: tensor<8x96xf16>, %p: tensor<8x64xf16>) {
  // expected-error @+1 {{expects 'outs' to have shape [8, 96] ([..., N]: the leading dimensions of 'input' and N of the weights), got 'tensor<8x64xf16>'}}
  %0:3 = fusedops.gated_mlp ins(%x, %g, %u : tensor<8x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>) outs(%o, %o, %p : tensor<8x96xf16>, tensor<8x96xf16>, tensor<8x64xf16>) activation = silu -> tensor<8x96xf16>, tensor<8x96xf16>, tensor<8x64xf16>
  return
}

// -----

func.func @act_grad_shape(%g: tensor<8x96xbf16>, %u: tensor<8x96xbf16>, %d: tensor<8x95xbf16>) {
  // expected-error @+1 {{expects 'grad' to have shape [8, 96] (the shape of 'gate'), got 'tensor<8x95xbf16>'}}
  %0:2 = fusedops.gated_act_grad ins(%g, %u, %d : tensor<8x96xbf16>, tensor<8x96xbf16>, tensor<8x95xbf16>) outs(%g, %u : tensor<8x96xbf16>, tensor<8x96xbf16>) activation = silu -> tensor<8x96xbf16>, tensor<8x96xbf16>
  return
}

// -----

func.func @act_grad_f32(%g: tensor<8x96xf32>) {
  // expected-error @+1 {{expects 'gate' to have f16 or bf16 elements (gated_mlp's types), got 'f32'}}
  %0:2 = fusedops.gated_act_grad ins(%g, %g, %g : tensor<8x96xf32>, tensor<8x96xf32>, tensor<8x96xf32>) outs(%g, %g : tensor<8x96xf32>, tensor<8x96xf32>) activation = silu -> tensor<8x96xf32>, tensor<8x96xf32>
  return
}

// -----

func.func @act_grad_up_elem(%g: tensor<8x96xbf16>, %u: tensor<8x96xf16>) {
  // expected-error @+1 {{expects 'up' to have the element type of 'gate' ('bf16'), got 'f16'}}
  %0:2 = fusedops.gated_act_grad ins(%g, %u, %g : tensor<8x96xbf16>, tensor<8x96xf16>, tensor<8x96xbf16>) outs(%g, %g : tensor<8x96xbf16>, tensor<8x96xbf16>) activation = silu -> tensor<8x96xbf16>, tensor<8x96xbf16>
  return
}

// -----

func.func @mlp_grad_outs(%x: tensor<8x64xf16>, %g: tensor<96x64xf16>, %u: tensor<96x64xf16>, %d: tensor<8x96xf16>) {
  // expected-error @+1 {{expects 2 'outs' operands (grad_gate and grad_up), got 1}}
  %0 = fusedops.gated_mlp_grad ins(%x, %g, %u, %d : tensor<8x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>, tensor<8x96xf16>) outs(%d : tensor<8x96xf16>) activation = silu -> tensor<8x96xf16>
  return
}

// -----

func.func @mlp_grad_shape(%x: tensor<8x64xf16>, %g: tensor<96x64xf16>, %u: tensor<96x64xf16>, %d: tensor<8x64xf16>, %o: tensor<8x96xf16>) {
  // expected-error @+1 {{expects 'grad' to have shape [8, 96] ([..., N]: the leading dimensions of 'input' and N of the weights), got 'tensor<8x64xf16>'}}
  %0:2 = fusedops.gated_mlp_grad ins(%x, %g, %u, %d : tensor<8x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>, tensor<8x64xf16>) outs(%o, %o : tensor<8x96xf16>, tensor<8x96xf16>) activation = silu -> tensor<8x96xf16>, tensor<8x96xf16>
  return
}

// -----

func.func @mlp_grad_elem(%x: tensor<8x64xbf16>, %g: tensor<96x64xbf16>, %u: tensor<96x64xbf16>, %d: tensor<8x96xf32>, %o: tensor<8x96xbf16>) {
  // expected-error @+1 {{expects 'grad' to have the element type of 'input' ('bf16'), got 'f32'}}
  %0:2 = fusedops.gated_mlp_grad ins(%x, %g, %u, %d : tensor<8x64xbf16>, tensor<96x64xbf16>, tensor<96x64xbf16>, tensor<8x96xf32>) outs(%o, %o : tensor<8x96xbf16>, tensor<8x96xbf16>) activation = silu -> tensor<8x96xbf16>, tensor<8x96xbf16>
  return
}

// -----

func.func @mlp_grad_outs_shape(%x: tensor<8x64xf16>, %g: tensor<96x64xf16>, %u: tensor<96x64xf16>, %d: tensor<8x96xf16>, %o: tensor<8x96xf16>, %p: tensor<9x96xf16>) {
  // expected-error @+1 {{expects 'outs' to have shape [8, 96] ([..., N]: the leading dimensions of 'input' and N of the weights), got 'tensor<9x96xf16>'}}
  %0:2 = fusedops.gated_mlp_grad ins(%x, %g, %u, %d : tensor<8x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>, tensor<8x96xf16>) outs(%o, %p : tensor<8x96xf16>, tensor<9x96xf16>) activation = silu -> tensor<8x96xf16>, tensor<9x96xf16>
  return
}

// -----

func.func @mlp_grad_f32(%x: tensor<8x64xf32>, %g: tensor<96x64xf32>, %u: tensor<96x64xf32>, %d: tensor<8x96xf32>, %o: tensor<8x96xf32>) {
  // expected-error @+1 {{expects 'input' to have f16 or bf16 elements (its tensor-core operand types: convert f32 operands to one of them), got 'f32'}}
  %0:2 = fusedops.gated_mlp_grad ins(%x, %g, %u, %d : tensor<8x64xf32>, tensor<96x64xf32>, tensor<96x64xf32>, tensor<8x96xf32>) outs(%o, %o : tensor<8x96xf32>, tensor<8x96xf32>) activation = silu -> tensor<8x96xf32>, tensor<8x96xf32>
  return
}

// -----

func.func @gemm_lhs_rank(%a: tensor<2x200x512xf8E4M3FN>, %b: tensor<300x512xf8E4M3FN>, %sa: tensor<f32>, %sb: tensor<f32>, %o: tensor<200x300xbf16>) {
  // expected-error @+1 {{expects 'lhs' to have rank 2, got 'tensor<2x200x512xf8E4M3FN>'}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<2x200x512xf8E4M3FN>, tensor<300x512xf8E4M3FN>, tensor<f32>, tensor<f32>) outs(%o : tensor<200x300xbf16>) granularity = tensor -> tensor<200x300xbf16>
  return
}

// -----

func.func @gemm_lhs_elem(%a: tensor<200x512xf16>, %b: tensor<300x512xf8E4M3FN>, %sa: tensor<f32>, %sb: tensor<f32>, %o: tensor<200x300xbf16>) {
  // expected-error @+1 {{expects 'lhs' to have f8E4M3FN or f8E5M2 elements, got 'f16'}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<200x512xf16>, tensor<300x512xf8E4M3FN>, tensor<f32>, tensor<f32>) outs(%o : tensor<200x300xbf16>) granularity = tensor -> tensor<200x300xbf16>
  return
}

// -----

func.func @gemm_lhs_elem_fnuz(%a: tensor<200x512xf8E4M3FNUZ>, %b: tensor<300x512xf8E4M3FN>, %sa: tensor<f32>, %sb: tensor<f32>, %o: tensor<200x300xbf16>) {
  // expected-error @+1 {{expects 'lhs' to have f8E4M3FN or f8E5M2 elements, got 'f8E4M3FNUZ'}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<200x512xf8E4M3FNUZ>, tensor<300x512xf8E4M3FN>, tensor<f32>, tensor<f32>) outs(%o : tensor<200x300xbf16>) granularity = tensor -> tensor<200x300xbf16>
  return
}

// -----

func.func @gemm_rhs_rank(%a: tensor<200x512xf8E4M3FN>, %b: tensor<512xf8E4M3FN>, %sa: tensor<f32>, %sb: tensor<f32>, %o: tensor<200x300xbf16>) {
  // expected-error @+1 {{expects 'rhs' to have rank 2, got 'tensor<512xf8E4M3FN>'}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<200x512xf8E4M3FN>, tensor<512xf8E4M3FN>, tensor<f32>, tensor<f32>) outs(%o : tensor<200x300xbf16>) granularity = tensor -> tensor<200x300xbf16>
  return
}

// -----

func.func @gemm_rhs_elem(%a: tensor<200x512xf8E4M3FN>, %b: tensor<300x512xi8>, %sa: tensor<f32>, %sb: tensor<f32>, %o: tensor<200x300xbf16>) {
  // expected-error @+1 {{expects 'rhs' to have f8E4M3FN or f8E5M2 elements, got 'i8'}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<200x512xf8E4M3FN>, tensor<300x512xi8>, tensor<f32>, tensor<f32>) outs(%o : tensor<200x300xbf16>) granularity = tensor -> tensor<200x300xbf16>
  return
}

// -----

func.func @gemm_rhs_k(%a: tensor<200x512xf8E4M3FN>, %b: tensor<300x256xf8E4M3FN>, %sa: tensor<f32>, %sb: tensor<f32>, %o: tensor<200x300xbf16>) {
  // expected-error @+1 {{expects 'rhs' to have shape [300, 512] ([N, K] with K the last dimension of 'lhs'), got 'tensor<300x256xf8E4M3FN>'}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<200x512xf8E4M3FN>, tensor<300x256xf8E4M3FN>, tensor<f32>, tensor<f32>) outs(%o : tensor<200x300xbf16>) granularity = tensor -> tensor<200x300xbf16>
  return
}

// -----

func.func @gemm_scale_elem(%a: tensor<200x512xf8E4M3FN>, %b: tensor<300x512xf8E4M3FN>, %sa: tensor<f16>, %sb: tensor<f32>, %o: tensor<200x300xbf16>) {
  // expected-error @+1 {{expects 'lhs_scale' to have f32 elements, got 'f16'}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<200x512xf8E4M3FN>, tensor<300x512xf8E4M3FN>, tensor<f16>, tensor<f32>) outs(%o : tensor<200x300xbf16>) granularity = tensor -> tensor<200x300xbf16>
  return
}

// -----

func.func @gemm_tensor_scale_shape(%a: tensor<200x512xf8E4M3FN>, %b: tensor<300x512xf8E4M3FN>, %sa: tensor<1xf32>, %sb: tensor<f32>, %o: tensor<200x300xbf16>) {
  // expected-error @+1 {{expects 'lhs_scale' to have shape [] (one per tensor group of 'lhs'), got 'tensor<1xf32>'}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<200x512xf8E4M3FN>, tensor<300x512xf8E4M3FN>, tensor<1xf32>, tensor<f32>) outs(%o : tensor<200x300xbf16>) granularity = tensor -> tensor<200x300xbf16>
  return
}

// -----

func.func @gemm_row_scale_shape(%a: tensor<200x512xf8E4M3FN>, %b: tensor<300x512xf8E4M3FN>, %sa: tensor<200xf32>, %sb: tensor<512xf32>, %o: tensor<200x300xbf16>) {
  // expected-error @+1 {{expects 'rhs_scale' to have shape [300] (one per row group of 'rhs'), got 'tensor<512xf32>'}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<200x512xf8E4M3FN>, tensor<300x512xf8E4M3FN>, tensor<200xf32>, tensor<512xf32>) outs(%o : tensor<200x300xbf16>) granularity = row -> tensor<200x300xbf16>
  return
}

// -----

func.func @gemm_block_fast_accum(%a: tensor<200x512xf8E4M3FN>, %b: tensor<300x512xf8E4M3FN>, %sa: tensor<2x4xf32>, %sb: tensor<3x4xf32>, %o: tensor<200x300xbf16>) {
  // expected-error @+1 {{'fast_accum' applies to tensor and row scales; block128 scales are applied to the sums of each 128 of K, which must be promoted to f32 (drop 'fast_accum')}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<200x512xf8E4M3FN>, tensor<300x512xf8E4M3FN>, tensor<2x4xf32>, tensor<3x4xf32>) outs(%o : tensor<200x300xbf16>) granularity = block128 fast_accum -> tensor<200x300xbf16>
  return
}

// -----

func.func @gemm_block_scale_shape(%a: tensor<200x512xf8E4M3FN>, %b: tensor<300x512xf8E4M3FN>, %sa: tensor<2x4xf32>, %sb: tensor<2x4xf32>, %o: tensor<200x300xbf16>) {
  // expected-error @+1 {{expects 'rhs_scale' to have shape [3, 4] (one per block128 group of 'rhs'), got 'tensor<2x4xf32>'}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<200x512xf8E4M3FN>, tensor<300x512xf8E4M3FN>, tensor<2x4xf32>, tensor<2x4xf32>) outs(%o : tensor<200x300xbf16>) granularity = block128 -> tensor<200x300xbf16>
  return
}

// -----

func.func @gemm_outs_shape(%a: tensor<200x512xf8E4M3FN>, %b: tensor<300x512xf8E4M3FN>, %sa: tensor<f32>, %sb: tensor<f32>, %o: tensor<300x200xbf16>) {
  // expected-error @+1 {{expects 'outs' to have shape [200, 300] ([M, N]), got 'tensor<300x200xbf16>'}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<200x512xf8E4M3FN>, tensor<300x512xf8E4M3FN>, tensor<f32>, tensor<f32>) outs(%o : tensor<300x200xbf16>) granularity = tensor -> tensor<300x200xbf16>
  return
}

// -----

func.func @gemm_outs_elem(%a: tensor<200x512xf8E4M3FN>, %b: tensor<300x512xf8E4M3FN>, %sa: tensor<f32>, %sb: tensor<f32>, %o: tensor<200x300xf8E4M3FN>) {
  // expected-error @+1 {{expects 'outs' to have f16, bf16 or f32 elements, got 'f8E4M3FN'}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<200x512xf8E4M3FN>, tensor<300x512xf8E4M3FN>, tensor<f32>, tensor<f32>) outs(%o : tensor<200x300xf8E4M3FN>) granularity = tensor -> tensor<200x300xf8E4M3FN>
  return
}

// -----

func.func @gemm_bias_shape(%a: tensor<200x512xf8E4M3FN>, %b: tensor<300x512xf8E4M3FN>, %sa: tensor<f32>, %sb: tensor<f32>, %o: tensor<200x300xbf16>, %bias: tensor<200xf32>) {
  // expected-error @+1 {{expects 'bias' to have shape [300] (one per output column), got 'tensor<200xf32>'}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<200x512xf8E4M3FN>, tensor<300x512xf8E4M3FN>, tensor<f32>, tensor<f32>) bias(%bias : tensor<200xf32>) outs(%o : tensor<200x300xbf16>) granularity = tensor -> tensor<200x300xbf16>
  return
}

// -----

func.func @gemm_bias_elem(%a: tensor<200x512xf8E4M3FN>, %b: tensor<300x512xf8E4M3FN>, %sa: tensor<f32>, %sb: tensor<f32>, %o: tensor<200x300xbf16>, %bias: tensor<300xf16>) {
  // expected-error @+1 {{expects 'bias' to have f32 elements or those of 'outs' ('bf16'), got 'f16'}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<200x512xf8E4M3FN>, tensor<300x512xf8E4M3FN>, tensor<f32>, tensor<f32>) bias(%bias : tensor<300xf16>) outs(%o : tensor<200x300xbf16>) granularity = tensor -> tensor<200x300xbf16>
  return
}

// -----

func.func @gemm_granularity(%a: tensor<200x512xf8E4M3FN>, %b: tensor<300x512xf8E4M3FN>, %sa: tensor<f32>, %sb: tensor<f32>, %o: tensor<200x300xbf16>) {
  // expected-error @+2 {{expected ::mlir::fusedops::ScaleGranularity to be one of: tensor, row, block128}}
  // expected-error @+1 {{failed to parse FusedOps_ScaleGranularityAttr parameter 'value'}}
  %0 = fusedops.fp8_gemm ins(%a, %b, %sa, %sb : tensor<200x512xf8E4M3FN>, tensor<300x512xf8E4M3FN>, tensor<f32>, tensor<f32>) outs(%o : tensor<200x300xbf16>) granularity = channel -> tensor<200x300xbf16>
  return
}

// -----

func.func @quant_dynamic_inits(%x: tensor<300x256xbf16>, %o0: tensor<300x256xf8E4M3FN>) {
  // expected-error @+1 {{expects 2 'outs' operands (dynamic: the values and the computed scales, and with block128 scales optionally the values transposed), got 1}}
  %r = fusedops.quantize ins(%x : tensor<300x256xbf16>) outs(%o0 : tensor<300x256xf8E4M3FN>) granularity = row -> tensor<300x256xf8E4M3FN>
  return
}

// -----

func.func @quant_static_inits(%x: tensor<300x256xbf16>, %s: tensor<300xf32>, %o0: tensor<300x256xf8E4M3FN>, %o1: tensor<300xf32>) {
  // expected-error @+1 {{expects 1 'outs' operand (static, with a 'scale' operand: the values), got 2}}
  %r:2 = fusedops.quantize ins(%x : tensor<300x256xbf16>) scale(%s : tensor<300xf32>) outs(%o0, %o1 : tensor<300x256xf8E4M3FN>, tensor<300xf32>) granularity = row -> tensor<300x256xf8E4M3FN>, tensor<300xf32>
  return
}

// -----

func.func @quant_input_rank(%x: tensor<2x300x256xbf16>, %o0: tensor<300x256xf8E4M3FN>, %o1: tensor<300xf32>) {
  // expected-error @+1 {{expects 'input' to have rank 2, got 'tensor<2x300x256xbf16>'}}
  %r:2 = fusedops.quantize ins(%x : tensor<2x300x256xbf16>) outs(%o0, %o1 : tensor<300x256xf8E4M3FN>, tensor<300xf32>) granularity = row -> tensor<300x256xf8E4M3FN>, tensor<300xf32>
  return
}

// -----

func.func @quant_input_elem(%x: tensor<300x256xf8E5M2>, %o0: tensor<300x256xf8E4M3FN>, %o1: tensor<300xf32>) {
  // expected-error @+1 {{expects 'input' to have f16, bf16 or f32 elements, got 'f8E5M2'}}
  %r:2 = fusedops.quantize ins(%x : tensor<300x256xf8E5M2>) outs(%o0, %o1 : tensor<300x256xf8E4M3FN>, tensor<300xf32>) granularity = row -> tensor<300x256xf8E4M3FN>, tensor<300xf32>
  return
}

// -----

func.func @quant_outs_shape(%x: tensor<300x256xbf16>, %o0: tensor<256x300xf8E4M3FN>, %o1: tensor<300xf32>) {
  // expected-error @+1 {{expects 'outs' to have shape [300, 256] (the shape of 'input'), got 'tensor<256x300xf8E4M3FN>'}}
  %r:2 = fusedops.quantize ins(%x : tensor<300x256xbf16>) outs(%o0, %o1 : tensor<256x300xf8E4M3FN>, tensor<300xf32>) granularity = row -> tensor<256x300xf8E4M3FN>, tensor<300xf32>
  return
}

// -----

func.func @quantize_transposed_row_scales(%x: tensor<300x256xbf16>, %o0: tensor<300x256xf8E4M3FN>, %o1: tensor<300xf32>, %o2: tensor<256x304xf8E4M3FN>) {
  // expected-error @+1 {{writes the values transposed (a third 'outs') only with block128 scales, whose blocks are the same for the transpose; got row scales}}
  %r:3 = fusedops.quantize ins(%x : tensor<300x256xbf16>) outs(%o0, %o1, %o2 : tensor<300x256xf8E4M3FN>, tensor<300xf32>, tensor<256x304xf8E4M3FN>) granularity = row -> tensor<300x256xf8E4M3FN>, tensor<300xf32>, tensor<256x304xf8E4M3FN>
  return
}

// -----

func.func @quantize_transposed_unpadded(%x: tensor<300x256xbf16>, %o0: tensor<300x256xf8E4M3FN>, %o1: tensor<3x2xf32>, %o2: tensor<256x300xf8E4M3FN>) {
  // expected-error @+1 {{expects 'outs' to have shape [256, 304] ([K, M'] with M' the rows of 'input' rounded up to a multiple of 16), got 'tensor<256x300xf8E4M3FN>'}}
  %r:3 = fusedops.quantize ins(%x : tensor<300x256xbf16>) outs(%o0, %o1, %o2 : tensor<300x256xf8E4M3FN>, tensor<3x2xf32>, tensor<256x300xf8E4M3FN>) granularity = block128 -> tensor<300x256xf8E4M3FN>, tensor<3x2xf32>, tensor<256x300xf8E4M3FN>
  return
}

// -----

func.func @quantize_transposed_other_format(%x: tensor<300x256xbf16>, %o0: tensor<300x256xf8E4M3FN>, %o1: tensor<3x2xf32>, %o2: tensor<256x304xf8E5M2>) {
  // expected-error @+1 {{expects the transposed values of the same FP8 type as the values, got 'tensor<256x304xf8E5M2>' and 'tensor<300x256xf8E4M3FN>'}}
  %r:3 = fusedops.quantize ins(%x : tensor<300x256xbf16>) outs(%o0, %o1, %o2 : tensor<300x256xf8E4M3FN>, tensor<3x2xf32>, tensor<256x304xf8E5M2>) granularity = block128 -> tensor<300x256xf8E4M3FN>, tensor<3x2xf32>, tensor<256x304xf8E5M2>
  return
}

// -----

func.func @quant_outs_elem(%x: tensor<300x256xbf16>, %o0: tensor<300x256xi8>, %o1: tensor<300xf32>) {
  // expected-error @+1 {{expects 'outs' to have f8E4M3FN or f8E5M2 elements, got 'i8'}}
  %r:2 = fusedops.quantize ins(%x : tensor<300x256xbf16>) outs(%o0, %o1 : tensor<300x256xi8>, tensor<300xf32>) granularity = row -> tensor<300x256xi8>, tensor<300xf32>
  return
}

// -----

func.func @quant_scale_init_shape(%x: tensor<300x256xbf16>, %o0: tensor<300x256xf8E4M3FN>, %o1: tensor<3x2xf32>) {
  // expected-error @+1 {{expects 'outs' to have shape [300] (one per row group of 'input'), got 'tensor<3x2xf32>'}}
  %r:2 = fusedops.quantize ins(%x : tensor<300x256xbf16>) outs(%o0, %o1 : tensor<300x256xf8E4M3FN>, tensor<3x2xf32>) granularity = row -> tensor<300x256xf8E4M3FN>, tensor<3x2xf32>
  return
}

// -----

func.func @quant_scale_init_elem(%x: tensor<300x256xbf16>, %o0: tensor<300x256xf8E4M3FN>, %o1: tensor<300xf16>) {
  // expected-error @+1 {{expects 'outs' to have f32 elements, got 'f16'}}
  %r:2 = fusedops.quantize ins(%x : tensor<300x256xbf16>) outs(%o0, %o1 : tensor<300x256xf8E4M3FN>, tensor<300xf16>) granularity = row -> tensor<300x256xf8E4M3FN>, tensor<300xf16>
  return
}

// -----

func.func @quant_static_scale_shape(%x: tensor<300x256xbf16>, %s: tensor<300xf32>, %o0: tensor<300x256xf8E4M3FN>) {
  // expected-error @+1 {{expects 'scale' to have shape [3, 2] (one per block128 group of 'input'), got 'tensor<300xf32>'}}
  %r = fusedops.quantize ins(%x : tensor<300x256xbf16>) scale(%s : tensor<300xf32>) outs(%o0 : tensor<300x256xf8E4M3FN>) granularity = block128 -> tensor<300x256xf8E4M3FN>
  return
}

// -----

func.func @quant_result_count(%x: tensor<300x256xbf16>, %o0: tensor<300x256xf8E4M3FN>, %o1: tensor<300xf32>) {
  // expected-error @+1 {{in tensor form expects one result per 'outs' operand (2), got 1}}
  %r = fusedops.quantize ins(%x : tensor<300x256xbf16>) outs(%o0, %o1 : tensor<300x256xf8E4M3FN>, tensor<300xf32>) granularity = row -> tensor<300x256xf8E4M3FN>
  return
}

// -----

func.func @deq_input_rank(%x: tensor<64xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{expects 'input' to have rank 2, got 'tensor<64xf8E4M3FN>'}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row -> tensor<64x256xf16>
  return
}

// -----

func.func @deq_input_elem(%x: tensor<64x256xbf16>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{expects 'input' to have f8E4M3FN or f8E5M2 elements, got 'bf16'}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xbf16>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row -> tensor<64x256xf16>
  return
}

// -----

func.func @deq_scale_elem(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xbf16>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{expects 'scale' to have f32 elements, got 'bf16'}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xbf16>) outs(%o : tensor<64x256xf16>) granularity = row -> tensor<64x256xf16>
  return
}

// -----

func.func @deq_scale_shape(%x: tensor<64x256xf8E4M3FN>, %s: tensor<256xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{expects 'scale' to have shape [64] (one per row group of 'input'), got 'tensor<256xf32>'}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<256xf32>) outs(%o : tensor<64x256xf16>) granularity = row -> tensor<64x256xf16>
  return
}

// -----

func.func @deq_outs_shape(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x128xf16>) {
  // expected-error @+1 {{expects 'outs' to have shape [64, 256] (the shape of 'input'), got 'tensor<64x128xf16>'}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x128xf16>) granularity = row -> tensor<64x128xf16>
  return
}

// -----

func.func @deq_outs_elem(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf8E5M2>) {
  // expected-error @+1 {{expects 'outs' to have f16, bf16 or f32 elements, got 'f8E5M2'}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf8E5M2>) granularity = row -> tensor<64x256xf8E5M2>
  return
}

// -----

func.func @deq_buffer_result(%x: memref<64x256xf8E4M3FN>, %s: memref<64xf32>, %o: memref<64x256xf16>) {
  // expected-error @+1 {{in buffer form (memref operands) has no results, got 1}}
  %0 = fusedops.dequantize ins(%x, %s : memref<64x256xf8E4M3FN>, memref<64xf32>) outs(%o : memref<64x256xf16>) granularity = row -> tensor<64x256xf16>
  return
}

// -----

func.func @deq_tile_rank(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{expects 'tile' to have 2 block sizes, got 3}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row {tile = #fusedops.tile<block = [64, 64, 64], warps = 4>} -> tensor<64x256xf16>
  return
}

// -----

func.func @tile_block_empty(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{'block' must list 1 to 3 tile sizes, got 0}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row {tile = #fusedops.tile<block = [], warps = 4>} -> tensor<64x256xf16>
  return
}

// -----

func.func @tile_block_long(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{'block' must list 1 to 3 tile sizes, got 4}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row {tile = #fusedops.tile<block = [1, 2, 3, 4], warps = 4>} -> tensor<64x256xf16>
  return
}

// -----

func.func @tile_block_zero(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{'block' sizes must be in [1, 16777216], got 0}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row {tile = #fusedops.tile<block = [64, 0], warps = 4>} -> tensor<64x256xf16>
  return
}

// -----

func.func @tile_warps(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{'warps' must be a power of two in [1, 32], got 6}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row {tile = #fusedops.tile<block = [64, 64], warps = 6>} -> tensor<64x256xf16>
  return
}

// -----

func.func @tile_stages(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{'stages' must be in [1, 64], got 0}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row {tile = #fusedops.tile<block = [64, 64], warps = 4, stages = 0>} -> tensor<64x256xf16>
  return
}

// -----

func.func @tile_stages_huge(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // Such counts overflowed the shared-memory estimate (issue 14).
  // expected-error @+1 {{'stages' must be in [1, 64], got 1125899906842624}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row {tile = #fusedops.tile<block = [64, 64], warps = 4, stages = 1125899906842624>} -> tensor<64x256xf16>
  return
}

// -----

func.func @tile_block_huge(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{'block' sizes must be in [1, 16777216], got 36028797018963968}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row {tile = #fusedops.tile<block = [64, 36028797018963968], warps = 4>} -> tensor<64x256xf16>
  return
}

// -----

func.func @tile_cluster_rank(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{'cluster' must have at most 3 dimensions, got 4}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row {tile = #fusedops.tile<block = [64, 64], warps = 4, cluster = [1, 1, 1, 1]>} -> tensor<64x256xf16>
  return
}

// -----

func.func @tile_cluster_zero(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{'cluster' dimensions must be positive, got 0}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row {tile = #fusedops.tile<block = [64, 64], warps = 4, cluster = [2, 0]>} -> tensor<64x256xf16>
  return
}

// -----

func.func @tile_cluster_size(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{'cluster' holds 32 thread blocks; at most 16 are allowed}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row {tile = #fusedops.tile<block = [64, 64], warps = 4, cluster = [8, 4]>} -> tensor<64x256xf16>
  return
}

// -----

func.func @tile_unknown_key(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{unknown tile parameter 'unroll'; expected 'block', 'warps', 'stages' or 'cluster'}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row {tile = #fusedops.tile<block = [64, 64], warps = 4, unroll = 2>} -> tensor<64x256xf16>
  return
}

// -----

func.func @tile_twice(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{tile parameter 'block' is given twice}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row {tile = #fusedops.tile<block = [64, 64], block = [32, 32], warps = 4>} -> tensor<64x256xf16>
  return
}

// -----

func.func @tile_missing(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{a tile needs 'block' and 'warps', e.g. #fusedops.tile<block = [128, 128, 32], warps = 4>}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row {tile = #fusedops.tile<block = [64, 64]>} -> tensor<64x256xf16>
  return
}

// -----

func.func @tile_wrong_attr(%x: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf16>) {
  // expected-error @+1 {{attribute 'tile' failed to satisfy constraint}}
  %0 = fusedops.dequantize ins(%x, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf16>) granularity = row {tile = #fusedops<activation silu>} -> tensor<64x256xf16>
  return
}

// -----

// The rows hint is for ops whose rows are dynamic.
func.func @rows_hint_static(%x: memref<8x128xf16>, %q: memref<8x128xf8E4M3FN>, %s: memref<8xf32>) {
  // expected-error @+1 {{'fusedops.rows_hint' is for dynamic rows; this op's rows are static (its first operand is 'memref<8x128xf16>')}}
  fusedops.quantize ins(%x : memref<8x128xf16>) outs(%q, %s : memref<8x128xf8E4M3FN>, memref<8xf32>) granularity = row {fusedops.rows_hint = 64 : i64}
  return
}

// -----

func.func @rows_hint_value(%x: memref<?x128xf16>, %q: memref<?x128xf8E4M3FN>, %s: memref<?xf32>) {
  // expected-error @+1 {{'fusedops.rows_hint' must be an i64 row count in [1, 2^48), got 0 : i64}}
  fusedops.quantize ins(%x : memref<?x128xf16>) outs(%q, %s : memref<?x128xf8E4M3FN>, memref<?xf32>) granularity = row {fusedops.rows_hint = 0 : i64}
  return
}

// -----

func.func @rows_hint_type(%x: memref<?x128xf16>, %q: memref<?x128xf8E4M3FN>, %s: memref<?xf32>) {
  // expected-error @+1 {{'fusedops.rows_hint' must be an i64 row count in [1, 2^48), got "many"}}
  fusedops.quantize ins(%x : memref<?x128xf16>) outs(%q, %s : memref<?x128xf8E4M3FN>, memref<?xf32>) granularity = row {fusedops.rows_hint = "many"}
  return
}

// -----

func.func @rows_hint_elsewhere() {
  // expected-error @+1 {{'fusedops.rows_hint' belongs on a fusedops op with rows}}
  %c = arith.constant {fusedops.rows_hint = 64 : i64} 0 : index
  return
}

// -----

func.func @rms_norm_weight_shape(%x: tensor<2x256xf16>, %w: tensor<128xf16>, %o: tensor<2x256xf16>) {
  // expected-error @+1 {{expects 'weight' to have shape [256] (the hidden size of 'input'), got 'tensor<128xf16>'}}
  %0 = fusedops.rms_norm ins(%x, %w : tensor<2x256xf16>, tensor<128xf16>) outs(%o : tensor<2x256xf16>) eps = 1.0e-6 -> tensor<2x256xf16>
  return
}

// -----

func.func @rms_norm_residual_shape(%x: tensor<2x256xf16>, %w: tensor<256xf16>, %r: tensor<3x256xf16>, %o: tensor<2x256xf16>) {
  // expected-error @+1 {{expects 'residual' to have shape [2, 256] (the shape of 'input'), got 'tensor<3x256xf16>'}}
  %0:2 = fusedops.rms_norm ins(%x, %w : tensor<2x256xf16>, tensor<256xf16>) residual(%r : tensor<3x256xf16>) outs(%o, %o : tensor<2x256xf16>, tensor<2x256xf16>) eps = 1.0e-6 -> tensor<2x256xf16>, tensor<2x256xf16>
  return
}

// -----

func.func @rms_norm_residual_needs_sum(%x: tensor<2x256xf16>, %w: tensor<256xf16>, %r: tensor<2x256xf16>, %o: tensor<2x256xf16>) {
  // expected-error @+1 {{expects 2 'outs' operands (the output, then the sum input + residual), got 1}}
  %0 = fusedops.rms_norm ins(%x, %w : tensor<2x256xf16>, tensor<256xf16>) residual(%r : tensor<2x256xf16>) outs(%o : tensor<2x256xf16>) eps = 1.0e-6 -> tensor<2x256xf16>
  return
}

// -----

func.func @rms_norm_sum_without_residual(%x: tensor<2x256xf16>, %w: tensor<256xf16>, %o: tensor<2x256xf16>) {
  // expected-error @+1 {{expects 1 'outs' operand (the output; a second one only with 'residual'), got 2}}
  %0:2 = fusedops.rms_norm ins(%x, %w : tensor<2x256xf16>, tensor<256xf16>) outs(%o, %o : tensor<2x256xf16>, tensor<2x256xf16>) eps = 1.0e-6 -> tensor<2x256xf16>, tensor<2x256xf16>
  return
}

// -----

func.func @rms_norm_element(%x: tensor<2x256xf16>, %w: tensor<256xbf16>, %o: tensor<2x256xf16>) {
  // expected-error @+1 {{expects 'weight' to have the element type of 'input' ('f16'), got 'bf16'}}
  %0 = fusedops.rms_norm ins(%x, %w : tensor<2x256xf16>, tensor<256xbf16>) outs(%o : tensor<2x256xf16>) eps = 1.0e-6 -> tensor<2x256xf16>
  return
}

// -----

func.func @rms_norm_offset(%x: tensor<2x256xf16>, %w: tensor<256xf16>, %o: tensor<2x256xf16>) {
  // expected-error @+1 {{expects 'weight_offset' to be finite, got INF}}
  %0 = fusedops.rms_norm ins(%x, %w : tensor<2x256xf16>, tensor<256xf16>) outs(%o : tensor<2x256xf16>) eps = 1.0e-6 weight_offset = 0x7F800000 -> tensor<2x256xf16>
  return
}

// -----

func.func @rms_norm_grad_grad_shape(%x: tensor<2x256xf16>, %w: tensor<256xf16>, %d: tensor<3x256xf16>, %p: tensor<8x256xf32>) {
  // expected-error @+1 {{expects 'grad' to have shape [2, 256] (the shape of 'input'), got 'tensor<3x256xf16>'}}
  %0:2 = fusedops.rms_norm_grad ins(%x, %w, %d : tensor<2x256xf16>, tensor<256xf16>, tensor<3x256xf16>) outs(%x, %p : tensor<2x256xf16>, tensor<8x256xf32>) eps = 1.0e-6 -> tensor<2x256xf16>, tensor<8x256xf32>
  return
}

// -----

func.func @rms_norm_grad_residual_grad_element(%x: tensor<2x256xf16>, %w: tensor<256xf16>, %r: tensor<2x256xbf16>, %p: tensor<8x256xf32>) {
  // expected-error @+1 {{expects 'residual_grad' to have the element type of 'input' ('f16'), got 'bf16'}}
  %0:2 = fusedops.rms_norm_grad ins(%x, %w, %x : tensor<2x256xf16>, tensor<256xf16>, tensor<2x256xf16>) residual_grad(%r : tensor<2x256xbf16>) outs(%x, %p : tensor<2x256xf16>, tensor<8x256xf32>) eps = 1.0e-6 -> tensor<2x256xf16>, tensor<8x256xf32>
  return
}

// -----

func.func @rms_norm_grad_one_output(%x: tensor<2x256xf16>, %w: tensor<256xf16>) {
  // expected-error @+1 {{expects 2 or 3 'outs' operands (the input's gradient, the weight's partial sums and optionally the weight's gradient), got 1}}
  %0 = fusedops.rms_norm_grad ins(%x, %w, %x : tensor<2x256xf16>, tensor<256xf16>, tensor<2x256xf16>) outs(%x : tensor<2x256xf16>) eps = 1.0e-6 -> tensor<2x256xf16>
  return
}

// -----

func.func @rms_norm_grad_four_outputs(%x: tensor<2x256xf16>, %w: tensor<256xf16>, %p: tensor<8x256xf32>) {
  // expected-error @+1 {{expects 2 or 3 'outs' operands (the input's gradient, the weight's partial sums and optionally the weight's gradient), got 4}}
  %0:4 = fusedops.rms_norm_grad ins(%x, %w, %x : tensor<2x256xf16>, tensor<256xf16>, tensor<2x256xf16>) outs(%x, %p, %w, %w : tensor<2x256xf16>, tensor<8x256xf32>, tensor<256xf16>, tensor<256xf16>) eps = 1.0e-6 -> tensor<2x256xf16>, tensor<8x256xf32>, tensor<256xf16>, tensor<256xf16>
  return
}

// -----

func.func @rms_norm_grad_weight_grad_type(%x: tensor<2x256xf16>, %w: tensor<256xf16>, %p: tensor<8x256xf32>, %g: tensor<256xf32>) {
  // expected-error @+1 {{expects 'outs' to have the element type of 'weight' ('f16'), got 'f32'}}
  %0:3 = fusedops.rms_norm_grad ins(%x, %w, %x : tensor<2x256xf16>, tensor<256xf16>, tensor<2x256xf16>) outs(%x, %p, %g : tensor<2x256xf16>, tensor<8x256xf32>, tensor<256xf32>) eps = 1.0e-6 -> tensor<2x256xf16>, tensor<8x256xf32>, tensor<256xf32>
  return
}

// -----

func.func @rope_grad_weight_grad_shape(%x: tensor<4x8x128xbf16>, %w: tensor<128xbf16>, %c: tensor<8x64xf32>, %p: tensor<16x128xf32>, %g: tensor<64xbf16>) {
  // expected-error @+1 {{expects 'outs' to have shape [128] ([hidden]: the weight's gradient), got 'tensor<64xbf16>'}}
  %0:3 = fusedops.rmsnorm_rope_grad ins(%x, %w, %c, %c, %x : tensor<4x8x128xbf16>, tensor<128xbf16>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<4x8x128xbf16>) outs(%x, %p, %g : tensor<4x8x128xbf16>, tensor<16x128xf32>, tensor<64xbf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<4x8x128xbf16>, tensor<16x128xf32>, tensor<64xbf16>
  return
}

// -----

func.func @rms_norm_grad_partials(%x: tensor<2x256xf16>, %w: tensor<256xf16>, %p: tensor<8x128xf32>) {
  // expected-error @+1 {{expects 'outs' to have shape [?, 256] ([P, hidden]: the weight gradient's partial sums), got 'tensor<8x128xf32>'}}
  %0:2 = fusedops.rms_norm_grad ins(%x, %w, %x : tensor<2x256xf16>, tensor<256xf16>, tensor<2x256xf16>) outs(%x, %p : tensor<2x256xf16>, tensor<8x128xf32>) eps = 1.0e-6 -> tensor<2x256xf16>, tensor<8x128xf32>
  return
}

// -----

func.func @rms_norm_grad_dynamic_partials(%x: tensor<2x256xf16>, %w: tensor<256xf16>, %p: tensor<?x256xf32>) {
  // expected-error @+1 {{expects a static number of partial sums (the first dimension of the second 'outs') of at least 1, got ?}}
  %0:2 = fusedops.rms_norm_grad ins(%x, %w, %x : tensor<2x256xf16>, tensor<256xf16>, tensor<2x256xf16>) outs(%x, %p : tensor<2x256xf16>, tensor<?x256xf32>) eps = 1.0e-6 -> tensor<2x256xf16>, tensor<?x256xf32>
  return
}

// -----

func.func @rms_norm_grad_eps(%x: tensor<2x256xf16>, %w: tensor<256xf16>, %p: tensor<8x256xf32>) {
  // expected-error @+1 {{expects 'eps' to be finite and >= 0, got -1}}
  %0:2 = fusedops.rms_norm_grad ins(%x, %w, %x : tensor<2x256xf16>, tensor<256xf16>, tensor<2x256xf16>) outs(%x, %p : tensor<2x256xf16>, tensor<8x256xf32>) eps = -1.0 -> tensor<2x256xf16>, tensor<8x256xf32>
  return
}

// -----

func.func @rms_norm_rank0(%x: tensor<f16>, %w: tensor<1xf16>, %o: tensor<f16>) {
  // expected-error @+1 {{expects 'input' to have rank >= 1 (a hidden dimension), got 'tensor<f16>'}}
  %0 = fusedops.rms_norm ins(%x, %w : tensor<f16>, tensor<1xf16>) outs(%o : tensor<f16>) eps = 1.0e-6 -> tensor<f16>
  return
}
