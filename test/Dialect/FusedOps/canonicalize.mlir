// RUN: fusedops-opt %s -canonicalize -split-input-file | FileCheck %s

// quantize(dequantize(q, s), scale = s) is q when the dequantized values are
// f32.
// CHECK-LABEL: func @fold_requantize
//  CHECK-SAME:   (%[[Q:.*]]: tensor<64x256xf8E4M3FN>
//   CHECK-NOT:   fusedops.
//       CHECK:   return %[[Q]]
func.func @fold_requantize(%q: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>) -> tensor<64x256xf8E4M3FN> {
  %e = tensor.empty() : tensor<64x256xf32>
  %qi = tensor.empty() : tensor<64x256xf8E4M3FN>
  %d = fusedops.dequantize ins(%q, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%e : tensor<64x256xf32>) granularity = row -> tensor<64x256xf32>
  %r = fusedops.quantize ins(%d : tensor<64x256xf32>) scale(%s : tensor<64xf32>) outs(%qi : tensor<64x256xf8E4M3FN>) granularity = row -> tensor<64x256xf8E4M3FN>
  return %r : tensor<64x256xf8E4M3FN>
}

// -----

// The same with block scales and e5m2.
// CHECK-LABEL: func @fold_requantize_block
//  CHECK-SAME:   (%[[Q:.*]]: tensor<300x256xf8E5M2>
//       CHECK:   return %[[Q]]
func.func @fold_requantize_block(%q: tensor<300x256xf8E5M2>, %s: tensor<3x2xf32>) -> tensor<300x256xf8E5M2> {
  %e = tensor.empty() : tensor<300x256xf32>
  %qi = tensor.empty() : tensor<300x256xf8E5M2>
  %d = fusedops.dequantize ins(%q, %s : tensor<300x256xf8E5M2>, tensor<3x2xf32>) outs(%e : tensor<300x256xf32>) granularity = block128 -> tensor<300x256xf32>
  %r = fusedops.quantize ins(%d : tensor<300x256xf32>) scale(%s : tensor<3x2xf32>) outs(%qi : tensor<300x256xf8E5M2>) granularity = block128 -> tensor<300x256xf8E5M2>
  return %r : tensor<300x256xf8E5M2>
}

// -----

// dequantize(quantize(x)) is not x: it must stay.
// CHECK-LABEL: func @no_fold_dequantize_of_quantize
//       CHECK:   %[[QS:.*]]:2 = fusedops.quantize
//       CHECK:   %[[D:.*]] = fusedops.dequantize ins(%[[QS]]#0, %[[QS]]#1
//       CHECK:   return %[[D]]
func.func @no_fold_dequantize_of_quantize(%x: tensor<64x256xf32>) -> tensor<64x256xf32> {
  %qi = tensor.empty() : tensor<64x256xf8E4M3FN>
  %si = tensor.empty() : tensor<64xf32>
  %e = tensor.empty() : tensor<64x256xf32>
  %q, %s = fusedops.quantize ins(%x : tensor<64x256xf32>) outs(%qi, %si : tensor<64x256xf8E4M3FN>, tensor<64xf32>) granularity = row -> tensor<64x256xf8E4M3FN>, tensor<64xf32>
  %d = fusedops.dequantize ins(%q, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%e : tensor<64x256xf32>) granularity = row -> tensor<64x256xf32>
  return %d : tensor<64x256xf32>
}

// -----

// Dynamic quantization recomputes the scale: no fold.
// CHECK-LABEL: func @no_fold_dynamic_requantize
//       CHECK:   fusedops.dequantize
//       CHECK:   %[[R:.*]]:2 = fusedops.quantize
//       CHECK:   return %[[R]]#0
func.func @no_fold_dynamic_requantize(%q: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>) -> tensor<64x256xf8E4M3FN> {
  %e = tensor.empty() : tensor<64x256xf32>
  %qi = tensor.empty() : tensor<64x256xf8E4M3FN>
  %si = tensor.empty() : tensor<64xf32>
  %d = fusedops.dequantize ins(%q, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%e : tensor<64x256xf32>) granularity = row -> tensor<64x256xf32>
  %r, %rs = fusedops.quantize ins(%d : tensor<64x256xf32>) outs(%qi, %si : tensor<64x256xf8E4M3FN>, tensor<64xf32>) granularity = row -> tensor<64x256xf8E4M3FN>, tensor<64xf32>
  return %r : tensor<64x256xf8E4M3FN>
}

// -----

// Another scale: no fold.
// CHECK-LABEL: func @no_fold_other_scale
//       CHECK:   fusedops.dequantize
//       CHECK:   %[[R:.*]] = fusedops.quantize
//       CHECK:   return %[[R]]
func.func @no_fold_other_scale(%q: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %t: tensor<64xf32>) -> tensor<64x256xf8E4M3FN> {
  %e = tensor.empty() : tensor<64x256xf32>
  %qi = tensor.empty() : tensor<64x256xf8E4M3FN>
  %d = fusedops.dequantize ins(%q, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%e : tensor<64x256xf32>) granularity = row -> tensor<64x256xf32>
  %r = fusedops.quantize ins(%d : tensor<64x256xf32>) scale(%t : tensor<64xf32>) outs(%qi : tensor<64x256xf8E4M3FN>) granularity = row -> tensor<64x256xf8E4M3FN>
  return %r : tensor<64x256xf8E4M3FN>
}

// -----

// Dequantizing to f16 can overflow or lose bits: no fold.
// CHECK-LABEL: func @no_fold_f16_intermediate
//       CHECK:   fusedops.dequantize
//       CHECK:   %[[R:.*]] = fusedops.quantize
//       CHECK:   return %[[R]]
func.func @no_fold_f16_intermediate(%q: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>) -> tensor<64x256xf8E4M3FN> {
  %e = tensor.empty() : tensor<64x256xf16>
  %qi = tensor.empty() : tensor<64x256xf8E4M3FN>
  %d = fusedops.dequantize ins(%q, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%e : tensor<64x256xf16>) granularity = row -> tensor<64x256xf16>
  %r = fusedops.quantize ins(%d : tensor<64x256xf16>) scale(%s : tensor<64xf32>) outs(%qi : tensor<64x256xf8E4M3FN>) granularity = row -> tensor<64x256xf8E4M3FN>
  return %r : tensor<64x256xf8E4M3FN>
}

// -----

// Another FP8 format: no fold.
// CHECK-LABEL: func @no_fold_other_format
//       CHECK:   %[[R:.*]] = fusedops.quantize
//       CHECK:   return %[[R]]
func.func @no_fold_other_format(%q: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>) -> tensor<64x256xf8E5M2> {
  %e = tensor.empty() : tensor<64x256xf32>
  %qi = tensor.empty() : tensor<64x256xf8E5M2>
  %d = fusedops.dequantize ins(%q, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%e : tensor<64x256xf32>) granularity = row -> tensor<64x256xf32>
  %r = fusedops.quantize ins(%d : tensor<64x256xf32>) scale(%s : tensor<64xf32>) outs(%qi : tensor<64x256xf8E5M2>) granularity = row -> tensor<64x256xf8E5M2>
  return %r : tensor<64x256xf8E5M2>
}

// -----

// Casts that only erase static sizes fold into the op (the tensor dialect's
// pattern for destination-style ops); a refined init changes the result type
// and a cast back keeps the users' type.
// CHECK-LABEL: func @fold_tensor_cast
//  CHECK-SAME:   (%[[X:.*]]: tensor<8x64xf16>, %[[WG:.*]]: tensor<96x64xf16>, %[[WU:.*]]: tensor<96x64xf16>)
//       CHECK:   %[[E:.*]] = tensor.empty() : tensor<8x96xf16>
//       CHECK:   %[[R:.*]] = fusedops.gated_mlp ins(%[[X]], %[[WG]], %[[WU]] : tensor<8x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>) outs(%[[E]] : tensor<8x96xf16>) activation = silu {tile = #fusedops.tile<block = [64, 64, 32], warps = 4>} -> tensor<8x96xf16>
//       CHECK:   %[[C:.*]] = tensor.cast %[[R]] : tensor<8x96xf16> to tensor<?x96xf16>
//       CHECK:   return %[[C]]
func.func @fold_tensor_cast(%x: tensor<8x64xf16>, %wg: tensor<96x64xf16>, %wu: tensor<96x64xf16>) -> tensor<?x96xf16> {
  %c = tensor.cast %x : tensor<8x64xf16> to tensor<?x64xf16>
  %i = tensor.empty() : tensor<8x96xf16>
  %ic = tensor.cast %i : tensor<8x96xf16> to tensor<?x96xf16>
  %0 = fusedops.gated_mlp ins(%c, %wg, %wu : tensor<?x64xf16>, tensor<96x64xf16>, tensor<96x64xf16>) outs(%ic : tensor<?x96xf16>) activation = silu {tile = #fusedops.tile<block = [64, 64, 32], warps = 4>} -> tensor<?x96xf16>
  return %0 : tensor<?x96xf16>
}

// -----

// A cast that adds static information is not folded.
// CHECK-LABEL: func @keep_refining_cast
//       CHECK:   %[[C:.*]] = tensor.cast
//       CHECK:   fusedops.dequantize ins(%[[C]],
func.func @keep_refining_cast(%q: tensor<?x256xf8E4M3FN>, %s: tensor<f32>, %o: tensor<64x256xf16>) -> tensor<64x256xf16> {
  %c = tensor.cast %q : tensor<?x256xf8E4M3FN> to tensor<64x256xf8E4M3FN>
  %0 = fusedops.dequantize ins(%c, %s : tensor<64x256xf8E4M3FN>, tensor<f32>) outs(%o : tensor<64x256xf16>) granularity = tensor -> tensor<64x256xf16>
  return %0 : tensor<64x256xf16>
}

// -----

// Unused ops in tensor form have no effects and go; in buffer form they write
// memory and stay.
// CHECK-LABEL: func @dead_ops
//   CHECK-NOT:   fusedops.rmsnorm_rope {{.*}} -> tensor
//       CHECK:   fusedops.rmsnorm_rope {{.*}} outs(%{{.*}} : memref<2x8x128xf32>)
//   CHECK-NOT:   fusedops.
func.func @dead_ops(%x: tensor<2x8x128xf32>, %w: tensor<128xf32>, %cs: tensor<8x64xf32>,
                    %bx: memref<2x8x128xf32>, %bw: memref<128xf32>, %bcs: memref<8x64xf32>, %bo: memref<2x8x128xf32>) {
  %e = tensor.empty() : tensor<2x8x128xf32>
  %0 = fusedops.rmsnorm_rope ins(%x, %w, %cs, %cs : tensor<2x8x128xf32>, tensor<128xf32>, tensor<8x64xf32>, tensor<8x64xf32>) outs(%e : tensor<2x8x128xf32>) head_dim = 64 eps = 1.0e-6 style = neox -> tensor<2x8x128xf32>
  fusedops.rmsnorm_rope ins(%bx, %bw, %bcs, %bcs : memref<2x8x128xf32>, memref<128xf32>, memref<8x64xf32>, memref<8x64xf32>) outs(%bo : memref<2x8x128xf32>) head_dim = 64 eps = 1.0e-6 style = neox
  return
}
