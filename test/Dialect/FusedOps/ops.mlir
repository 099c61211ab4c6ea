// Round trip of every fusedops op and attribute: the pretty form, the
// generic form and bytecode all parse back to the same IR.
// RUN: fusedops-opt %s | fusedops-opt | FileCheck %s
// RUN: fusedops-opt %s --mlir-print-op-generic | fusedops-opt | FileCheck %s
// RUN: fusedops-opt %s --emit-bytecode | fusedops-opt | FileCheck %s
// RUN: fusedops-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC

// CHECK-LABEL: func @rmsnorm_rope
func.func @rmsnorm_rope(%x: tensor<?x16x256xf16>, %w: tensor<256xf16>,
                        %cos: tensor<32x64xf32>, %sin: tensor<32x64xf32>,
                        %init: tensor<?x16x256xf16>) -> tensor<?x16x256xf16> {
  // CHECK: fusedops.rmsnorm_rope ins(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x16x256xf16>, tensor<256xf16>, tensor<32x64xf32>, tensor<32x64xf32>) outs(%{{.*}} : tensor<?x16x256xf16>) head_dim = 64 eps = 9.99999997E-7 style = neox -> tensor<?x16x256xf16>
  // GENERIC: "fusedops.rmsnorm_rope"(%{{.*}}) <{eps = 9.99999997E-7 : f32, head_dim = 64 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 1>, rope_style = #fusedops<rope_style neox>}>
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %cos, %sin : tensor<?x16x256xf16>, tensor<256xf16>, tensor<32x64xf32>, tensor<32x64xf32>)
      outs(%init : tensor<?x16x256xf16>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<?x16x256xf16>
  return %0 : tensor<?x16x256xf16>
}

// CHECK-LABEL: func @rms_norm
func.func @rms_norm(%x: tensor<?x16x256xbf16>, %w: tensor<256xbf16>, %r: tensor<?x16x256xbf16>,
                    %o: tensor<?x16x256xbf16>, %s: tensor<?x16x256xbf16>)
    -> (tensor<?x16x256xbf16>, tensor<?x16x256xbf16>, tensor<?x16x256xbf16>) {
  // CHECK: fusedops.rms_norm ins(%{{.*}}, %{{.*}} : tensor<?x16x256xbf16>, tensor<256xbf16>) outs(%{{.*}} : tensor<?x16x256xbf16>) eps = 9.99999997E-7 -> tensor<?x16x256xbf16>
  // GENERIC: "fusedops.rms_norm"(%{{.*}}) <{eps = 9.99999997E-7 : f32, operandSegmentSizes = array<i32: 1, 1, 0, 1>}>
  %0 = fusedops.rms_norm ins(%x, %w : tensor<?x16x256xbf16>, tensor<256xbf16>) outs(%o : tensor<?x16x256xbf16>)
      eps = 1.0e-6 -> tensor<?x16x256xbf16>
  // CHECK: fusedops.rms_norm ins(%{{.*}}, %{{.*}} : tensor<?x16x256xbf16>, tensor<256xbf16>) residual(%{{.*}} : tensor<?x16x256xbf16>) outs(%{{.*}}, %{{.*}} : tensor<?x16x256xbf16>, tensor<?x16x256xbf16>) eps = 9.99999997E-7 weight_offset = 1.000000e+00 {tile = #fusedops.tile<block = [2], warps = 4>} -> tensor<?x16x256xbf16>, tensor<?x16x256xbf16>
  // GENERIC: operandSegmentSizes = array<i32: 1, 1, 1, 2>, tile = #fusedops.tile<block = [2], warps = 4>, weight_offset = 1.000000e+00 : f32
  %1:2 = fusedops.rms_norm ins(%x, %w : tensor<?x16x256xbf16>, tensor<256xbf16>) residual(%r : tensor<?x16x256xbf16>)
      outs(%o, %s : tensor<?x16x256xbf16>, tensor<?x16x256xbf16>) eps = 1.0e-6 weight_offset = 1.0
      {tile = #fusedops.tile<block = [2], warps = 4>} -> tensor<?x16x256xbf16>, tensor<?x16x256xbf16>
  return %0, %1#0, %1#1 : tensor<?x16x256xbf16>, tensor<?x16x256xbf16>, tensor<?x16x256xbf16>
}

// CHECK-LABEL: func @rms_norm_grad
func.func @rms_norm_grad(%x: tensor<?x16x256xbf16>, %w: tensor<256xbf16>, %d: tensor<?x16x256xbf16>,
                         %p: tensor<64x256xf32>)
    -> (tensor<?x16x256xbf16>, tensor<64x256xf32>, tensor<?x16x256xbf16>, tensor<64x256xf32>) {
  // CHECK: fusedops.rms_norm_grad ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x16x256xbf16>, tensor<256xbf16>, tensor<?x16x256xbf16>) outs(%{{.*}}, %{{.*}} : tensor<?x16x256xbf16>, tensor<64x256xf32>) eps = 9.99999997E-7 -> tensor<?x16x256xbf16>, tensor<64x256xf32>
  // GENERIC: "fusedops.rms_norm_grad"(%{{.*}}) <{eps = 9.99999997E-7 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 2>}>
  %0:2 = fusedops.rms_norm_grad ins(%x, %w, %d : tensor<?x16x256xbf16>, tensor<256xbf16>, tensor<?x16x256xbf16>)
      outs(%x, %p : tensor<?x16x256xbf16>, tensor<64x256xf32>) eps = 1.0e-6 -> tensor<?x16x256xbf16>, tensor<64x256xf32>
  // CHECK: fusedops.rms_norm_grad ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x16x256xbf16>, tensor<256xbf16>, tensor<?x16x256xbf16>) residual_grad(%{{.*}} : tensor<?x16x256xbf16>) outs(%{{.*}}, %{{.*}} : tensor<?x16x256xbf16>, tensor<64x256xf32>) eps = 9.99999997E-7 weight_offset = 1.000000e+00 {tile = #fusedops.tile<block = [4], warps = 1>} -> tensor<?x16x256xbf16>, tensor<64x256xf32>
  %1:2 = fusedops.rms_norm_grad ins(%x, %w, %d : tensor<?x16x256xbf16>, tensor<256xbf16>, tensor<?x16x256xbf16>)
      residual_grad(%d : tensor<?x16x256xbf16>) outs(%x, %p : tensor<?x16x256xbf16>, tensor<64x256xf32>)
      eps = 1.0e-6 weight_offset = 1.0 {tile = #fusedops.tile<block = [4], warps = 1>} -> tensor<?x16x256xbf16>, tensor<64x256xf32>
  return %0#0, %0#1, %1#0, %1#1 : tensor<?x16x256xbf16>, tensor<64x256xf32>, tensor<?x16x256xbf16>, tensor<64x256xf32>
}

// With a third 'outs', the weight's gradient (the partials summed).
// CHECK-LABEL: func @rms_norm_grad_summed
func.func @rms_norm_grad_summed(%x: tensor<?x256xbf16>, %w: tensor<256xbf16>, %p: tensor<64x256xf32>)
    -> (tensor<?x256xbf16>, tensor<64x256xf32>, tensor<256xbf16>) {
  // CHECK: fusedops.rms_norm_grad ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x256xbf16>, tensor<256xbf16>, tensor<?x256xbf16>) outs(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x256xbf16>, tensor<64x256xf32>, tensor<256xbf16>) eps = 9.99999997E-7 -> tensor<?x256xbf16>, tensor<64x256xf32>, tensor<256xbf16>
  // GENERIC: "fusedops.rms_norm_grad"(%{{.*}}) <{eps = 9.99999997E-7 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 0, 3>}>
  %0:3 = fusedops.rms_norm_grad ins(%x, %w, %x : tensor<?x256xbf16>, tensor<256xbf16>, tensor<?x256xbf16>)
      outs(%x, %p, %w : tensor<?x256xbf16>, tensor<64x256xf32>, tensor<256xbf16>) eps = 1.0e-6
      -> tensor<?x256xbf16>, tensor<64x256xf32>, tensor<256xbf16>
  return %0#0, %0#1, %0#2 : tensor<?x256xbf16>, tensor<64x256xf32>, tensor<256xbf16>
}

// CHECK-LABEL: func @rmsnorm_rope_decode
func.func @rmsnorm_rope_decode(%x: tensor<?x4096xbf16>, %w: tensor<4096xbf16>,
                               %cos: tensor<?x32xbf16>, %sin: tensor<?x32xbf16>,
                               %pos: tensor<?xi64>, %init: tensor<?x4096xbf16>) -> tensor<?x4096xbf16> {
  // CHECK: fusedops.rmsnorm_rope ins({{.*}}) positions(%{{.*}} : tensor<?xi64>) outs(%{{.*}} : tensor<?x4096xbf16>) head_dim = 128 eps = 9.99999974E-6 style = gptj rotary_fraction = 2.500000e-01 {tile = #fusedops.tile<block = [4], warps = 8>} -> tensor<?x4096xbf16>
  // GENERIC: operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1>, rope_style = #fusedops<rope_style gptj>, rotary_fraction = 2.500000e-01 : f32, tile = #fusedops.tile<block = [4], warps = 8>
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %cos, %sin : tensor<?x4096xbf16>, tensor<4096xbf16>, tensor<?x32xbf16>, tensor<?x32xbf16>)
      positions(%pos : tensor<?xi64>) outs(%init : tensor<?x4096xbf16>)
      head_dim = 128 eps = 1.0e-5 style = gptj rotary_fraction = 0.25
      {tile = #fusedops.tile<block = [4], warps = 8>} -> tensor<?x4096xbf16>
  return %0 : tensor<?x4096xbf16>
}

// CHECK-LABEL: func @rmsnorm_rope_buffers
func.func @rmsnorm_rope_buffers(%x: memref<2x8x128xf32>, %w: memref<128xf32>,
                                %cos: memref<8x64xf32>, %sin: memref<8x64xf32>,
                                %out: memref<2x8x128xf32>) {
  // CHECK: fusedops.rmsnorm_rope ins({{.*}}) outs(%{{.*}} : memref<2x8x128xf32>) head_dim = 64 eps = 0.000000e+00 style = neox{{$}}
  fusedops.rmsnorm_rope ins(%x, %w, %cos, %sin : memref<2x8x128xf32>, memref<128xf32>, memref<8x64xf32>, memref<8x64xf32>)
      outs(%out : memref<2x8x128xf32>) head_dim = 64 eps = 0.0 style = neox
  return
}

// CHECK-LABEL: func @rmsnorm_rope_grad
func.func @rmsnorm_rope_grad(%x: tensor<?x16x256xf16>, %w: tensor<256xf16>,
                             %cos: tensor<32x32xf32>, %sin: tensor<32x32xf32>, %pos: tensor<?x16xi64>,
                             %p: tensor<64x256xf32>) -> (tensor<?x16x256xf16>, tensor<64x256xf32>) {
  // CHECK: fusedops.rmsnorm_rope_grad ins(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x16x256xf16>, tensor<256xf16>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<?x16x256xf16>) positions(%{{.*}} : tensor<?x16xi64>) outs(%{{.*}}, %{{.*}} : tensor<?x16x256xf16>, tensor<64x256xf32>) head_dim = 64 eps = 9.99999997E-7 style = gptj rotary_fraction = 5.000000e-01 -> tensor<?x16x256xf16>, tensor<64x256xf32>
  %0:2 = fusedops.rmsnorm_rope_grad ins(%x, %w, %cos, %sin, %x : tensor<?x16x256xf16>, tensor<256xf16>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<?x16x256xf16>)
      positions(%pos : tensor<?x16xi64>) outs(%x, %p : tensor<?x16x256xf16>, tensor<64x256xf32>)
      head_dim = 64 eps = 1.0e-6 style = gptj rotary_fraction = 0.5 -> tensor<?x16x256xf16>, tensor<64x256xf32>
  return %0#0, %0#1 : tensor<?x16x256xf16>, tensor<64x256xf32>
}

// CHECK-LABEL: func @gated_mlp
func.func @gated_mlp(%x: tensor<?x64xf16>, %wg: tensor<96x64xf16>, %wu: tensor<96x64xf16>,
                     %init: tensor<?x96xf16>) -> (tensor<?x96xf16>, tensor<?x96xf16>, tensor<?x96xf16>) {
  // CHECK: fusedops.gated_mlp ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>) outs(%{{.*}} : tensor<?x96xf16>) activation = silu -> tensor<?x96xf16>
  // CHECK: activation = gelu {tile = #fusedops.tile<block = [128, 128, 32], warps = 4, stages = 3>}
  // CHECK: activation = gelu_tanh {tile = #fusedops.tile<block = [128, 256, 64], warps = 8, stages = 4, cluster = [2, 1]>}
  // GENERIC: "fusedops.gated_mlp"(%{{.*}}) <{activation = #fusedops<activation silu>}>
  // GENERIC: "fusedops.gated_mlp"(%{{.*}}) <{activation = #fusedops<activation gelu>, tile = #fusedops.tile<block = [128, 128, 32], warps = 4, stages = 3>}>
  // GENERIC: "fusedops.gated_mlp"(%{{.*}}) <{activation = #fusedops<activation gelu_tanh>, tile = #fusedops.tile<block = [128, 256, 64], warps = 8, stages = 4, cluster = [2, 1]>}>
  %0 = fusedops.gated_mlp ins(%x, %wg, %wu : tensor<?x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>)
      outs(%init : tensor<?x96xf16>) activation = silu -> tensor<?x96xf16>
  %1 = fusedops.gated_mlp ins(%x, %wg, %wu : tensor<?x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>)
      outs(%init : tensor<?x96xf16>) activation = gelu
      {tile = #fusedops.tile<stages = 3, block = [128, 128, 32], warps = 4>} -> tensor<?x96xf16>
  %2 = fusedops.gated_mlp ins(%x, %wg, %wu : tensor<?x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>)
      outs(%init : tensor<?x96xf16>) activation = gelu_tanh
      {tile = #fusedops.tile<block = [128, 256, 64], warps = 8, stages = 4, cluster = [2, 1]>} -> tensor<?x96xf16>
  return %0, %1, %2 : tensor<?x96xf16>, tensor<?x96xf16>, tensor<?x96xf16>
}

// CHECK-LABEL: func @gated_mlp_grad
func.func @gated_mlp_grad(%x: tensor<?x64xbf16>, %wg: tensor<96x64xbf16>, %wu: tensor<96x64xbf16>,
                          %dh: tensor<?x96xbf16>, %init: tensor<?x96xbf16>) -> (tensor<?x96xbf16>, tensor<?x96xbf16>) {
  // CHECK: fusedops.gated_mlp_grad ins(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x64xbf16>, tensor<96x64xbf16>, tensor<96x64xbf16>, tensor<?x96xbf16>) outs(%{{.*}}, %{{.*}} : tensor<?x96xbf16>, tensor<?x96xbf16>) activation = gelu_tanh {tile = #fusedops.tile<block = [128, 128, 64], warps = 8, stages = 4>} -> tensor<?x96xbf16>, tensor<?x96xbf16>
  // GENERIC: "fusedops.gated_mlp_grad"(%{{.*}}) <{activation = #fusedops<activation gelu_tanh>, tile = #fusedops.tile<block = [128, 128, 64], warps = 8, stages = 4>}>
  %0:2 = fusedops.gated_mlp_grad ins(%x, %wg, %wu, %dh : tensor<?x64xbf16>, tensor<96x64xbf16>, tensor<96x64xbf16>, tensor<?x96xbf16>)
      outs(%init, %init : tensor<?x96xbf16>, tensor<?x96xbf16>) activation = gelu_tanh
      {tile = #fusedops.tile<block = [128, 128, 64], warps = 8, stages = 4>} -> tensor<?x96xbf16>, tensor<?x96xbf16>
  return %0#0, %0#1 : tensor<?x96xbf16>, tensor<?x96xbf16>
}

// CHECK-LABEL: func @gated_mlp_saving
func.func @gated_mlp_saving(%x: tensor<?x64xf16>, %wg: tensor<96x64xf16>, %wu: tensor<96x64xf16>,
                            %init: tensor<?x96xf16>) -> (tensor<?x96xf16>, tensor<?x96xf16>, tensor<?x96xf16>) {
  // CHECK: fusedops.gated_mlp ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>) outs(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x96xf16>, tensor<?x96xf16>, tensor<?x96xf16>) activation = silu -> tensor<?x96xf16>, tensor<?x96xf16>, tensor<?x96xf16>
  %0:3 = fusedops.gated_mlp ins(%x, %wg, %wu : tensor<?x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>)
      outs(%init, %init, %init : tensor<?x96xf16>, tensor<?x96xf16>, tensor<?x96xf16>) activation = silu
      -> tensor<?x96xf16>, tensor<?x96xf16>, tensor<?x96xf16>
  return %0#0, %0#1, %0#2 : tensor<?x96xf16>, tensor<?x96xf16>, tensor<?x96xf16>
}

// CHECK-LABEL: func @gated_act_grad
func.func @gated_act_grad(%g: tensor<?x96xbf16>, %u: tensor<?x96xbf16>, %d: tensor<?x96xbf16>) -> (tensor<?x96xbf16>, tensor<?x96xbf16>) {
  // CHECK: fusedops.gated_act_grad ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x96xbf16>, tensor<?x96xbf16>, tensor<?x96xbf16>) outs(%{{.*}}, %{{.*}} : tensor<?x96xbf16>, tensor<?x96xbf16>) activation = gelu {tile = #fusedops.tile<block = [4], warps = 8>} -> tensor<?x96xbf16>, tensor<?x96xbf16>
  // GENERIC: "fusedops.gated_act_grad"(%{{.*}}) <{activation = #fusedops<activation gelu>, tile = #fusedops.tile<block = [4], warps = 8>}>
  %0:2 = fusedops.gated_act_grad ins(%g, %u, %d : tensor<?x96xbf16>, tensor<?x96xbf16>, tensor<?x96xbf16>)
      outs(%g, %u : tensor<?x96xbf16>, tensor<?x96xbf16>) activation = gelu
      {tile = #fusedops.tile<block = [4], warps = 8>} -> tensor<?x96xbf16>, tensor<?x96xbf16>
  return %0#0, %0#1 : tensor<?x96xbf16>, tensor<?x96xbf16>
}

// CHECK-LABEL: func @fp8_gemm
func.func @fp8_gemm(%a: tensor<?x256xf8E4M3FN>, %b: tensor<384x256xf8E5M2>,
                    %ts: tensor<f32>, %ra: tensor<?xf32>, %rb: tensor<384xf32>,
                    %ba: tensor<?x2xf32>, %bb: tensor<3x2xf32>, %bias: tensor<384xbf16>,
                    %i16: tensor<?x384xf16>, %ibf16: tensor<?x384xbf16>, %i32: tensor<?x384xf32>)
    -> (tensor<?x384xf16>, tensor<?x384xbf16>, tensor<?x384xf32>) {
  // CHECK: fusedops.fp8_gemm ins(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x256xf8E4M3FN>, tensor<384x256xf8E5M2>, tensor<f32>, tensor<f32>) outs(%{{.*}} : tensor<?x384xf16>) granularity = tensor -> tensor<?x384xf16>
  // CHECK: fusedops.fp8_gemm ins({{.*}} : tensor<?x256xf8E4M3FN>, tensor<384x256xf8E5M2>, tensor<?xf32>, tensor<384xf32>) bias(%{{.*}} : tensor<384xbf16>) outs(%{{.*}} : tensor<?x384xbf16>) granularity = row fast_accum -> tensor<?x384xbf16>
  // CHECK: fusedops.fp8_gemm ins({{.*}} : tensor<?x256xf8E4M3FN>, tensor<384x256xf8E5M2>, tensor<?x2xf32>, tensor<3x2xf32>) outs(%{{.*}} : tensor<?x384xf32>) granularity = block128 -> tensor<?x384xf32>
  // GENERIC: granularity = #fusedops<granularity tensor>, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 1>
  // GENERIC: fast_accum, granularity = #fusedops<granularity row>, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1>
  // GENERIC: granularity = #fusedops<granularity block128>
  %0 = fusedops.fp8_gemm ins(%a, %b, %ts, %ts : tensor<?x256xf8E4M3FN>, tensor<384x256xf8E5M2>, tensor<f32>, tensor<f32>)
      outs(%i16 : tensor<?x384xf16>) granularity = tensor -> tensor<?x384xf16>
  %1 = fusedops.fp8_gemm ins(%a, %b, %ra, %rb : tensor<?x256xf8E4M3FN>, tensor<384x256xf8E5M2>, tensor<?xf32>, tensor<384xf32>)
      bias(%bias : tensor<384xbf16>) outs(%ibf16 : tensor<?x384xbf16>) granularity = row fast_accum -> tensor<?x384xbf16>
  %2 = fusedops.fp8_gemm ins(%a, %b, %ba, %bb : tensor<?x256xf8E4M3FN>, tensor<384x256xf8E5M2>, tensor<?x2xf32>, tensor<3x2xf32>)
      outs(%i32 : tensor<?x384xf32>) granularity = block128 -> tensor<?x384xf32>
  return %0, %1, %2 : tensor<?x384xf16>, tensor<?x384xbf16>, tensor<?x384xf32>
}

// CHECK-LABEL: func @quantize_dequantize
func.func @quantize_dequantize(%x: tensor<300x256xbf16>, %qi: tensor<300x256xf8E4M3FN>,
                               %si: tensor<3x2xf32>, %s: tensor<f32>, %qi5: tensor<300x256xf8E5M2>,
                               %xi: tensor<300x256xf32>)
    -> (tensor<300x256xf8E4M3FN>, tensor<3x2xf32>, tensor<300x256xf8E5M2>, tensor<300x256xf32>) {
  // CHECK: %[[Q:.*]]:2 = fusedops.quantize ins(%{{.*}} : tensor<300x256xbf16>) outs(%{{.*}}, %{{.*}} : tensor<300x256xf8E4M3FN>, tensor<3x2xf32>) granularity = block128 -> tensor<300x256xf8E4M3FN>, tensor<3x2xf32>
  // CHECK: fusedops.quantize ins(%{{.*}} : tensor<300x256xbf16>) scale(%{{.*}} : tensor<f32>) outs(%{{.*}} : tensor<300x256xf8E5M2>) granularity = tensor -> tensor<300x256xf8E5M2>
  // CHECK: fusedops.dequantize ins(%[[Q]]#0, %[[Q]]#1 : tensor<300x256xf8E4M3FN>, tensor<3x2xf32>) outs(%{{.*}} : tensor<300x256xf32>) granularity = block128 {tile = #fusedops.tile<block = [64, 128], warps = 4>} -> tensor<300x256xf32>
  // GENERIC: "fusedops.quantize"(%{{.*}}, %{{.*}}, %{{.*}}) <{granularity = #fusedops<granularity block128>, operandSegmentSizes = array<i32: 1, 0, 2>}>
  // GENERIC: "fusedops.quantize"(%{{.*}}, %{{.*}}, %{{.*}}) <{granularity = #fusedops<granularity tensor>, operandSegmentSizes = array<i32: 1, 1, 1>}>
  // GENERIC: "fusedops.dequantize"
  %q, %qs = fusedops.quantize ins(%x : tensor<300x256xbf16>) outs(%qi, %si : tensor<300x256xf8E4M3FN>, tensor<3x2xf32>)
      granularity = block128 -> tensor<300x256xf8E4M3FN>, tensor<3x2xf32>
  %q5 = fusedops.quantize ins(%x : tensor<300x256xbf16>) scale(%s : tensor<f32>) outs(%qi5 : tensor<300x256xf8E5M2>)
      granularity = tensor -> tensor<300x256xf8E5M2>
  %d = fusedops.dequantize ins(%q, %qs : tensor<300x256xf8E4M3FN>, tensor<3x2xf32>) outs(%xi : tensor<300x256xf32>)
      granularity = block128 {tile = #fusedops.tile<block = [64, 128], warps = 4>} -> tensor<300x256xf32>
  return %q, %qs, %q5, %d : tensor<300x256xf8E4M3FN>, tensor<3x2xf32>, tensor<300x256xf8E5M2>, tensor<300x256xf32>
}

// CHECK-LABEL: func @quantize_buffers
func.func @quantize_buffers(%x: memref<?x128xf16>, %q: memref<?x128xf8E4M3FN>, %s: memref<?xf32>,
                            %y: memref<?x128xf16>) {
  // CHECK: fusedops.quantize ins(%{{.*}} : memref<?x128xf16>) outs(%{{.*}}, %{{.*}} : memref<?x128xf8E4M3FN>, memref<?xf32>) granularity = row{{$}}
  // CHECK: fusedops.dequantize ins(%{{.*}}, %{{.*}} : memref<?x128xf8E4M3FN>, memref<?xf32>) outs(%{{.*}} : memref<?x128xf16>) granularity = row{{$}}
  fusedops.quantize ins(%x : memref<?x128xf16>) outs(%q, %s : memref<?x128xf8E4M3FN>, memref<?xf32>) granularity = row
  fusedops.dequantize ins(%q, %s : memref<?x128xf8E4M3FN>, memref<?xf32>) outs(%y : memref<?x128xf16>) granularity = row
  return
}

// A rows hint on an op with dynamic rows: kept through printing and parsing.
// CHECK-LABEL: func.func @rows_hint
// CHECK: fusedops.quantize ins(%{{.*}} : memref<?x128xf16>) outs(%{{.*}}, %{{.*}} : memref<?x128xf8E4M3FN>, memref<?xf32>) granularity = row {fusedops.rows_hint = 256 : i64}
func.func @rows_hint(%x: memref<?x128xf16>, %q: memref<?x128xf8E4M3FN>, %s: memref<?xf32>) {
  fusedops.quantize ins(%x : memref<?x128xf16>) outs(%q, %s : memref<?x128xf8E4M3FN>, memref<?xf32>) granularity = row {fusedops.rows_hint = 256 : i64}
  return
}

// CHECK-LABEL: func @quantize_transposed
// CHECK: fusedops.quantize ins(%{{.*}} : memref<?x256xbf16>) outs(%{{.*}}, %{{.*}}, %{{.*}} : memref<?x256xf8E5M2>, memref<?x2xf32>, memref<256x?xf8E5M2>) granularity = block128
func.func @quantize_transposed(%x: memref<?x256xbf16>, %q: memref<?x256xf8E5M2>, %s: memref<?x2xf32>, %qt: memref<256x?xf8E5M2>) {
  fusedops.quantize ins(%x : memref<?x256xbf16>) outs(%q, %s, %qt : memref<?x256xf8E5M2>, memref<?x2xf32>, memref<256x?xf8E5M2>) granularity = block128
  return
}
