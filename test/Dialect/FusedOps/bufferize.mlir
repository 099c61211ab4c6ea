// One-shot bufferization takes fusedops ops from tensors to buffers.
// RUN: fusedops-opt %s -split-input-file --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" | FileCheck %s

// tensor.empty inits become allocations; the ops write them in place and
// the next op reads the first one's buffer.
// CHECK-LABEL: func @norm_then_mlp
//  CHECK-SAME:   (%[[X:.*]]: memref<?x4096xbf16>, %[[W:.*]]: memref<4096xbf16>, %[[COS:.*]]: memref<2048x128xf32>, %[[SIN:.*]]: memref<2048x128xf32>, %[[POS:.*]]: memref<?xi32>, %[[WG:.*]]: memref<11008x4096xbf16>, %[[WU:.*]]: memref<11008x4096xbf16>)
//       CHECK:   %[[N:.*]] = memref.alloc(%{{.*}}) {{.*}} : memref<?x4096xbf16>
//       CHECK:   fusedops.rmsnorm_rope ins(%[[X]], %[[W]], %[[COS]], %[[SIN]] : memref<?x4096xbf16>, memref<4096xbf16>, memref<2048x128xf32>, memref<2048x128xf32>) positions(%[[POS]] : memref<?xi32>) outs(%[[N]] : memref<?x4096xbf16>) head_dim = 128 eps = 9.99999974E-6 style = neox{{$}}
//       CHECK:   %[[H:.*]] = memref.alloc(%{{.*}}) {{.*}} : memref<?x11008xbf16>
//       CHECK:   fusedops.gated_mlp ins(%[[N]], %[[WG]], %[[WU]] : {{.*}}) outs(%[[H]] : memref<?x11008xbf16>) activation = silu {tile = #fusedops.tile<block = [128, 128, 32], warps = 4, stages = 3>}{{$}}
//   CHECK-NOT:   memref.copy
//       CHECK:   return %[[N]], %[[H]]
func.func @norm_then_mlp(%x: tensor<?x4096xbf16>, %w: tensor<4096xbf16>, %cos: tensor<2048x128xf32>, %sin: tensor<2048x128xf32>,
                         %pos: tensor<?xi32>, %wg: tensor<11008x4096xbf16>, %wu: tensor<11008x4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?x11008xbf16>) {
  %c0 = arith.constant 0 : index
  %m = tensor.dim %x, %c0 : tensor<?x4096xbf16>
  %e = tensor.empty(%m) : tensor<?x4096xbf16>
  %n = fusedops.rmsnorm_rope ins(%x, %w, %cos, %sin : tensor<?x4096xbf16>, tensor<4096xbf16>, tensor<2048x128xf32>, tensor<2048x128xf32>) positions(%pos : tensor<?xi32>) outs(%e : tensor<?x4096xbf16>) head_dim = 128 eps = 1.0e-5 style = neox -> tensor<?x4096xbf16>
  %e2 = tensor.empty(%m) : tensor<?x11008xbf16>
  %h = fusedops.gated_mlp ins(%n, %wg, %wu : tensor<?x4096xbf16>, tensor<11008x4096xbf16>, tensor<11008x4096xbf16>) outs(%e2 : tensor<?x11008xbf16>) activation = silu {tile = #fusedops.tile<block = [128, 128, 32], warps = 4, stages = 3>} -> tensor<?x11008xbf16>
  return %n, %h : tensor<?x4096xbf16>, tensor<?x11008xbf16>
}

// -----

// An init given by the caller is written in place: no allocation, no copy.
// CHECK-LABEL: func @in_place
//  CHECK-SAME:   (%[[A:.*]]: memref<64x128xf8E4M3FN>, %[[B:.*]]: memref<96x128xf8E4M3FN>, %[[S:.*]]: memref<f32>, %[[O:.*]]: memref<64x96xf16>)
//   CHECK-NOT:   memref.alloc
//   CHECK-NOT:   memref.copy
//       CHECK:   fusedops.fp8_gemm ins(%[[A]], %[[B]], %[[S]], %[[S]] : {{.*}}) outs(%[[O]] : memref<64x96xf16>) granularity = tensor{{$}}
//       CHECK:   return %[[O]]
func.func @in_place(%a: tensor<64x128xf8E4M3FN>, %b: tensor<96x128xf8E4M3FN>, %s: tensor<f32>, %o: tensor<64x96xf16>) -> tensor<64x96xf16> {
  %r = fusedops.fp8_gemm ins(%a, %b, %s, %s : tensor<64x128xf8E4M3FN>, tensor<96x128xf8E4M3FN>, tensor<f32>, tensor<f32>) outs(%o : tensor<64x96xf16>) granularity = tensor -> tensor<64x96xf16>
  return %r : tensor<64x96xf16>
}

// -----

// The old contents of an init are never read: when the init is still needed
// afterwards the op gets a fresh buffer, and nothing is copied into it.
// CHECK-LABEL: func @init_still_live
//  CHECK-SAME:   (%[[Q:.*]]: memref<64x256xf8E4M3FN>, %[[S:.*]]: memref<64xf32>, %[[O:.*]]: memref<64x256xf32>)
//       CHECK:   %[[NEW:.*]] = memref.alloc() {{.*}} : memref<64x256xf32>
//   CHECK-NOT:   memref.copy
//       CHECK:   fusedops.dequantize ins(%[[Q]], %[[S]] : {{.*}}) outs(%[[NEW]] : memref<64x256xf32>) granularity = row{{$}}
//       CHECK:   return %[[O]], %[[NEW]]
func.func @init_still_live(%q: tensor<64x256xf8E4M3FN>, %s: tensor<64xf32>, %o: tensor<64x256xf32>) -> (tensor<64x256xf32>, tensor<64x256xf32>) {
  %r = fusedops.dequantize ins(%q, %s : tensor<64x256xf8E4M3FN>, tensor<64xf32>) outs(%o : tensor<64x256xf32>) granularity = row -> tensor<64x256xf32>
  return %o, %r : tensor<64x256xf32>, tensor<64x256xf32>
}

// -----

// Both inits of a dynamic quantize bufferize; both results are replaced.
// CHECK-LABEL: func @quantize_two_inits
//       CHECK:   %[[Q:.*]] = memref.alloc() {{.*}} : memref<256x512xf8E5M2>
//       CHECK:   %[[S:.*]] = memref.alloc() {{.*}} : memref<2x4xf32>
//       CHECK:   fusedops.quantize ins(%{{.*}} : memref<256x512xbf16>) outs(%[[Q]], %[[S]] : memref<256x512xf8E5M2>, memref<2x4xf32>) granularity = block128{{$}}
//       CHECK:   return %[[Q]], %[[S]]
func.func @quantize_two_inits(%x: tensor<256x512xbf16>) -> (tensor<256x512xf8E5M2>, tensor<2x4xf32>) {
  %qi = tensor.empty() : tensor<256x512xf8E5M2>
  %si = tensor.empty() : tensor<2x4xf32>
  %q, %s = fusedops.quantize ins(%x : tensor<256x512xbf16>) outs(%qi, %si : tensor<256x512xf8E5M2>, tensor<2x4xf32>) granularity = block128 -> tensor<256x512xf8E5M2>, tensor<2x4xf32>
  return %q, %s : tensor<256x512xf8E5M2>, tensor<2x4xf32>
}

// -----

// gated_mlp_grad writes both gradients in place of their tensor.empty inits.
// CHECK-LABEL: func @mlp_grad
//  CHECK-SAME:   (%[[X:.*]]: memref<?x64xbf16>, %[[WG:.*]]: memref<96x64xbf16>, %[[WU:.*]]: memref<96x64xbf16>, %[[D:.*]]: memref<?x96xbf16>)
//       CHECK:   %[[DG:.*]] = memref.alloc(%{{.*}}) {{.*}} : memref<?x96xbf16>
//       CHECK:   %[[DU:.*]] = memref.alloc(%{{.*}}) {{.*}} : memref<?x96xbf16>
//       CHECK:   fusedops.gated_mlp_grad ins(%[[X]], %[[WG]], %[[WU]], %[[D]] : {{.*}}) outs(%[[DG]], %[[DU]] : memref<?x96xbf16>, memref<?x96xbf16>) activation = silu{{$}}
//   CHECK-NOT:   memref.copy
//       CHECK:   return %[[DG]], %[[DU]]
func.func @mlp_grad(%x: tensor<?x64xbf16>, %wg: tensor<96x64xbf16>, %wu: tensor<96x64xbf16>, %d: tensor<?x96xbf16>) -> (tensor<?x96xbf16>, tensor<?x96xbf16>) {
  %c0 = arith.constant 0 : index
  %m = tensor.dim %x, %c0 : tensor<?x64xbf16>
  %e1 = tensor.empty(%m) : tensor<?x96xbf16>
  %e2 = tensor.empty(%m) : tensor<?x96xbf16>
  %r:2 = fusedops.gated_mlp_grad ins(%x, %wg, %wu, %d : tensor<?x64xbf16>, tensor<96x64xbf16>, tensor<96x64xbf16>, tensor<?x96xbf16>) outs(%e1, %e2 : tensor<?x96xbf16>, tensor<?x96xbf16>) activation = silu -> tensor<?x96xbf16>, tensor<?x96xbf16>
  return %r#0, %r#1 : tensor<?x96xbf16>, tensor<?x96xbf16>
}
