// The FP8 quantize and dequantize kernels and their launches. The chips
// share them except for the FP8 conversions: software (integer arithmetic)
// on sm_80, cvt instructions on pairs on sm_90a.
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_90a" -split-input-file | FileCheck %s --check-prefixes=CHECK,SM90
// RUN: fusedops-opt %s --convert-fusedops-to-gpu="chip=sm_80" -split-input-file | FileCheck %s --check-prefixes=CHECK,SM80

// Dynamic row scales, K = 4096 in bf16: 16-byte vectors of 8, 512 per row,
// four per thread: 128 threads own a row; four warps meet in shared memory.
// Loads need no branch (rows past M load row M-1). The row's first thread
// writes its scale; x/scale comes from the scale's reciprocal and two FMAs;
// q goes out as 8-byte vectors.
// CHECK-LABEL: func.func @row_dynamic
//  CHECK-SAME:   (%[[X:.*]]: memref<?x4096xbf16>, %[[Q:.*]]: memref<?x4096xf8E4M3FN>, %[[S:.*]]: memref<?xf32>)
//       CHECK:   %[[M:.*]] = memref.dim %[[X]], %c0
//       CHECK:   %[[ANY:.*]] = arith.cmpi ugt, %[[M]]
//       CHECK:   scf.if %[[ANY]] {
//       CHECK:     gpu.launch_func @fusedops_kernels::@quantize_row_dynamic blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in (%c128, %{{.*}}, %{{.*}}) args(%[[X]] : memref<?x4096xbf16>, %[[Q]] : memref<?x4096xf8E4M3FN>, %[[S]] : memref<?xf32>)
//   CHECK-NOT:   fusedops.
//       CHECK: gpu.module @fusedops_kernels
//       CHECK:   gpu.func @quantize_row_dynamic({{.*}}) workgroup(%[[RED:.*]] : memref<4xf32, #gpu.address_space<workgroup>>) kernel attributes {known_block_size = array<i32: 128, 1, 1>}
//       CHECK:     %[[LAST:.*]] = arith.subi %{{.*}}, %c1
//       CHECK:     %[[LOADROW:.*]] = arith.minui %{{.*}}, %[[LAST]] : index
//   CHECK-NOT:     scf.if
//       CHECK:     vector.load %{{.*}}[%[[LOADROW]], %{{.*}}] {alignment = 16 : i64} : memref<?x4096xbf16>, vector<8xbf16>
// Absmax over finite values: |x|·0 + |x| is NaN for ±inf and NaN, which
// maxnum skips.
//       CHECK:     %[[ABS:.*]] = math.absf
//       CHECK:     math.fma %[[ABS]], %{{.*}}, %[[ABS]] : vector<8xf32>
//       CHECK:     vector.reduction <maxnumf>
//       CHECK:     gpu.shuffle  xor
//       CHECK:     gpu.barrier
//       CHECK:     memref.load %[[RED]]
//       CHECK:     arith.maximumf %{{.*}}, %{{.*}} : f32
//       CHECK:     %[[SCALE:.*]] = arith.divf %{{.*}}, %{{.*}} : f32
//       CHECK:     %[[RCP:.*]] = arith.divf %{{.*}}, %[[SCALE]] : f32
//       CHECK:     memref.store %[[SCALE]], %{{.*}}[%{{.*}}] : memref<?xf32>
//       CHECK:     %[[Q0:.*]] = arith.mulf
//       CHECK:     %[[NEG:.*]] = arith.negf %[[Q0]]
//       CHECK:     %[[REM:.*]] = math.fma %[[NEG]]
//       CHECK:     math.fma %[[REM]], %{{.*}}, %[[Q0]] : vector<8xf32>
//   CHECK-NOT:     arith.truncf
// sm_90a: cvt.rn.satfinite on pairs, x's sign bytes or-ed in.
//       SM90:     nvvm.convert.f32x2.to.f8x2 {{.*}} {rnd = #nvvm.fp_rnd_mode<rn>, sat = #nvvm.sat_mode<satfinite>} : vector<2xi8>(f8E4M3FN)
//       SM90:     vector.shuffle %{{.*}}, %{{.*}} [3, 7, 11, 15, 19, 23, 27, 31] : vector<32xi8>, vector<32xi8>
//       SM90:     arith.ori %{{.*}}, %{{.*}} : vector<2xi32>
// sm_80: the software encode, integer arithmetic.
//   SM80-NOT:     nvvm.convert
//       SM80:     math.copysign
//       SM80:     arith.minui
//       SM80:     arith.trunci %{{.*}} : vector<8xi32> to vector<8xi8>
//       CHECK:     arith.bitcast %{{.*}} : vector<8xi8> to vector<8xf8E4M3FN>
//       CHECK:     vector.store %{{.*}} {alignment = 8 : i64} : memref<?x4096xf8E4M3FN>, vector<8xf8E4M3FN>
func.func @row_dynamic(%x: memref<?x4096xbf16>, %q: memref<?x4096xf8E4M3FN>, %s: memref<?xf32>) {
  fusedops.quantize ins(%x : memref<?x4096xbf16>) outs(%q, %s : memref<?x4096xf8E4M3FN>, memref<?xf32>)
      granularity = row
  return
}

// -----

// Short rows: K = 200 in f32 is 50 vectors of 4; 16 threads per row, 8 rows
// per block of 128 threads, reduced by shuffles within the row's lanes only.
// CHECK-LABEL: func.func @row_dynamic_short_rows
//       CHECK:   %[[BLOCKS:.*]] = arith.ceildivui %{{.*}}, %c8
//       CHECK:   gpu.launch_func @fusedops_kernels::@quantize_row_dynamic blocks in (%[[BLOCKS]], %{{.*}}, %{{.*}}) threads in (%c128,
//       CHECK:   gpu.func @quantize_row_dynamic
//   CHECK-NOT:     workgroup
//  CHECK-SAME:     known_block_size = array<i32: 128, 1, 1>
//       CHECK:     vector.load %{{.*}} {alignment = 16 : i64} : memref<3x200xf32>, vector<4xf32>
//   CHECK-NOT:     gpu.barrier
//       CHECK:     gpu.shuffle  xor %{{.*}}, %c8_i32
//       CHECK:     gpu.shuffle  xor %{{.*}}, %c4_i32
//       CHECK:     gpu.shuffle  xor %{{.*}}, %c2_i32
//       CHECK:     gpu.shuffle  xor %{{.*}}, %c1_i32
//   CHECK-NOT:     gpu.barrier
//       SM90:     nvvm.convert.f32x2.to.f8x2 {{.*}} : vector<2xi8>(f8E5M2)
// e5m2's NaN is 0x7E: a 0x7F from the instruction is turned into it.
//       SM90:     arith.xori %{{.*}}, %{{.*}} : vector<1xi32>
//       CHECK:     vector.store %{{.*}} {alignment = 4 : i64} : memref<3x200xf8E5M2>, vector<4xf8E5M2>
func.func @row_dynamic_short_rows(%x: memref<3x200xf32>, %q: memref<3x200xf8E5M2>, %s: memref<3xf32>) {
  fusedops.quantize ins(%x : memref<3x200xf32>) outs(%q, %s : memref<3x200xf8E5M2>, memref<3xf32>)
      granularity = row
  return
}

// -----

// Dynamic tensor scale in one cooperative kernel (vectors of 8 cover whole
// words of the FP8 output, on which the grid barrier waits): a persistent
// grid, min(tiles, SMs · blocks per SM), with that many blocks per SM asked
// of ptxas (the SM count is asked before the first launch, which keeps the
// launches in one async region). The init kernel runs on the same grid:
// block 0 sets the scale of an all-zero tensor (also for M = 0, on a grid of
// one) and zeroes the arrival count (q's first word), each block its
// wake-up word. Each block reads its streamed tiles in batches (4 tiles a
// batch, one loop) and keeps its last 4 in registers; thread 0 raises the
// scale with a u32 atomic max and counts the block in after a release
// fence; the block that counts last wakes every block (a relaxed store to
// each one's word after an acq_rel fence); each block waits on its own word
// (acquire, with a back-off), reads the scale, converts the held tiles,
// then reads the streamed ones again (second loop) and converts them. The
// kernel's name tells the runtime to launch it cooperatively.
// CHECK-LABEL: func.func @tensor_dynamic
//  CHECK-SAME:   (%[[X:.*]]: memref<?x200xf16>, %[[Q:.*]]: memref<?x200xf8E4M3FN>, %[[S:.*]]: memref<f32>)
//       CHECK:   scf.if
//       CHECK:     %[[SMS:.*]] = llvm.call @mgpuMultiprocessorCount() : () -> i32
//       CHECK:     %[[SMSI:.*]] = arith.index_castui %[[SMS]] : i32 to index
//       CHECK:     %[[RESIDENT:.*]] = arith.muli %[[SMSI]], %c2{{.*}} : index
//       CHECK:     %[[GRID:.*]] = arith.minui %{{.*}}, %[[RESIDENT]] : index
//       CHECK:     gpu.launch_func @fusedops_kernels::@quantize_tensor_scale_init blocks in (%[[GRID]], %c1{{.*}}, %c1{{.*}}) threads in (%c1{{.*}}, %c1{{.*}}, %c1{{.*}}) args(%[[S]] : memref<f32>, %[[Q]] : memref<?x200xf8E4M3FN>)
//       CHECK:     gpu.launch_func @fusedops_kernels::@quantize_tensor_dynamic__cooperative blocks in (%[[GRID]], %c1{{.*}}, %c1{{.*}}) threads in (%c256{{[_0-9]*}}, {{.*}} args(%[[X]] : memref<?x200xf16>, %[[Q]] : memref<?x200xf8E4M3FN>, %[[S]] : memref<f32>)
//       CHECK:   } else {
//       CHECK:     gpu.launch_func @fusedops_kernels::@quantize_tensor_scale_init blocks in (%c1{{.*}}, %c1{{.*}}, %c1{{.*}})
//       CHECK:   }
//       CHECK:   gpu.func @quantize_tensor_scale_init(%{{.*}}: memref<f32>, %[[IQ:.*]]: memref<?x200xf8E4M3FN>) kernel attributes {known_block_size = array<i32: 1, 1, 1>}
//       CHECK:     memref.store %{{.*}}, %{{.*}}[] : memref<f32>
//       CHECK:     %[[ROWS:.*]] = memref.dim %[[IQ]], %c0
//       CHECK:     %[[ANY:.*]] = arith.cmpi ult, %c0{{.*}}, %[[ROWS]]
//       CHECK:     scf.if %[[ANY]]
//       CHECK:       llvm.getelementptr
//       CHECK:       llvm.store %c0_i32, %{{.*}} {alignment = 4 : i64} : i32, !llvm.ptr<1>
//       CHECK:       llvm.store %c0_i32, %{{.*}} {alignment = 4 : i64} : i32, !llvm.ptr<1>
//       CHECK:   gpu.func @quantize_tensor_dynamic__cooperative({{.*}}) workgroup(%{{.*}} : memref<8xf32, #gpu.address_space<workgroup>>, %[[LAST:.*]] : memref<1xi32, #gpu.address_space<workgroup>>) kernel attributes {known_block_size = array<i32: 256, 1, 1>, nvvm.minctasm = 2 : i32}
//       CHECK:     %[[HELD:.*]] = arith.minui %{{.*}}, %c4
//       CHECK:     %[[STREAMED:.*]] = arith.subi %{{.*}}, %[[HELD]]
//       CHECK:     scf.for %{{.*}} = %c0 to %[[STREAMED]] step %c4{{.*}} iter_args(%{{.*}} = %{{.*}}) -> (f32)
// CHECK-COUNT-4:     vector.load %{{.*}} {alignment = 16 : i64} : memref<?x200xf16>, vector<8xf16>
//       CHECK:       scf.yield
//       CHECK:     gpu.barrier
//       CHECK:     %[[CLEADER:.*]] = arith.cmpi eq, %{{.*}}, %c0
//       CHECK:     scf.if %[[CLEADER]]
//       CHECK:       llvm.atomicrmw umax %{{.*}}, %{{.*}} syncscope("device") monotonic : !llvm.ptr<1>, i32
//       CHECK:       llvm.fence syncscope("device") release
//       CHECK:       llvm.atomicrmw add %{{.*}}, %c1_i32{{.*}} syncscope("device") monotonic : !llvm.ptr<1>, i32
//       CHECK:       memref.store %{{.*}}, %[[LAST]][%c0{{.*}}]
//       CHECK:     gpu.barrier
//       CHECK:     memref.load %[[LAST]][%c0{{.*}}]
//       CHECK:     scf.if
//       CHECK:       llvm.fence syncscope("device") acq_rel
//       CHECK:       scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c256
//       CHECK:         llvm.store %c1_i32{{.*}} atomic syncscope("device") monotonic
//       CHECK:     scf.if %[[CLEADER]]
//       CHECK:       scf.while
//       CHECK:         llvm.load %{{.*}} atomic syncscope("device") acquire
//       CHECK:         nvvm.nanosleep
//       CHECK:     gpu.barrier
//       CHECK:     llvm.load %{{.*}} atomic syncscope("device") monotonic
//       CHECK:     vector.store %{{.*}} {alignment = 8 : i64} : memref<?x200xf8E4M3FN>, vector<8xf8E4M3FN>
//       CHECK:     scf.for %{{.*}} = %c0 to %[[STREAMED]] step %c4
//       CHECK:       vector.store %{{.*}} : memref<?x200xf8E4M3FN>, vector<8xf8E4M3FN>
func.func @tensor_dynamic(%x: memref<?x200xf16>, %q: memref<?x200xf8E4M3FN>, %s: memref<f32>) {
  fusedops.quantize ins(%x : memref<?x200xf16>) outs(%q, %s : memref<?x200xf8E4M3FN>, memref<f32>)
      granularity = tensor
  return
}

// -----

// Where vectors are narrower than the FP8 output's first word (K = 202 in
// f16: pairs), dynamic tensor scales take three launches: the scale of an
// all-zero tensor, one u32 atomic max per block, then the elementwise
// kernel, which takes the tiles in reverse block order (the first pass's
// last tiles, still in L2, first).
// CHECK-LABEL: func.func @tensor_dynamic_two_pass
//  CHECK-SAME:   (%[[X:.*]]: memref<?x202xf16>, %[[Q:.*]]: memref<?x202xf8E4M3FN>, %[[S:.*]]: memref<f32>)
//       CHECK:   scf.if
//       CHECK:     gpu.launch_func @fusedops_kernels::@quantize_tensor_scale_init blocks in (%c1{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c1{{.*}}, %c1{{.*}}, %c1{{.*}}) args(%[[S]] : memref<f32>)
//       CHECK:     gpu.launch_func @fusedops_kernels::@quantize_tensor_absmax {{.*}} threads in (%c256{{[_0-9]*}}, {{.*}} args(%[[X]] : memref<?x202xf16>, %[[S]] : memref<f32>)
//       CHECK:     gpu.launch_func @fusedops_kernels::@quantize_tensor {{.*}} threads in (%c256{{[_0-9]*}}, {{.*}} args(%[[X]] : memref<?x202xf16>, %[[S]] : memref<f32>, %[[Q]] : memref<?x202xf8E4M3FN>)
//       CHECK:   } else {
//       CHECK:     gpu.launch_func @fusedops_kernels::@quantize_tensor_scale_init blocks in
//       CHECK:   }
//       CHECK:   gpu.func @quantize_tensor_scale_init(%{{.*}}: memref<f32>) kernel attributes {known_block_size = array<i32: 1, 1, 1>}
//       CHECK:     memref.store %{{.*}}, %{{.*}}[] : memref<f32>
//       CHECK:   gpu.func @quantize_tensor_absmax({{.*}}) workgroup(%{{.*}} : memref<8xf32, #gpu.address_space<workgroup>>)
//       CHECK:     vector.load %{{.*}} {alignment = 4 : i64} : memref<?x202xf16>, vector<2xf16>
//       CHECK:     gpu.barrier
//       CHECK:     memref.extract_aligned_pointer_as_index
//       CHECK:     llvm.atomicrmw umax %{{.*}}, %{{.*}} syncscope("device") monotonic : !llvm.ptr<1>, i32
//       CHECK:   gpu.func @quantize_tensor(
//       CHECK:     %[[BX:.*]] = gpu.block_id  x
//       CHECK:     %[[GX:.*]] = gpu.grid_dim  x
//       CHECK:     %[[LAST:.*]] = arith.subi %[[GX]], %c1
//       CHECK:     arith.subi %[[LAST]], %[[BX]]
//       CHECK:     %[[TS:.*]] = memref.load %{{.*}}[] : memref<f32>
//       CHECK:     vector.load %{{.*}} {alignment = 4 : i64} : memref<?x202xf16>, vector<2xf16>
//       CHECK:     vector.broadcast %[[TS]]
//       CHECK:     vector.store %{{.*}} {alignment = 2 : i64} : memref<?x202xf8E4M3FN>, vector<2xf8E4M3FN>
//   CHECK-NOT:   __cooperative
func.func @tensor_dynamic_two_pass(%x: memref<?x202xf16>, %q: memref<?x202xf8E4M3FN>, %s: memref<f32>) {
  fusedops.quantize ins(%x : memref<?x202xf16>) outs(%q, %s : memref<?x202xf8E4M3FN>, memref<f32>)
      granularity = tensor
  return
}

// -----

// Dynamic block128 scales: one block of 8 warps per 128×128 scale block;
// thread 0 writes scale[by, bx]. Compiled for 3 blocks an SM (ptxas: 80
// registers instead of 91, which allow 2): each block holds its tile in
// registers, and more blocks keep more loads in flight.
// CHECK-LABEL: func.func @block128_dynamic
//       CHECK:   %[[ROWS:.*]] = arith.ceildivui %{{.*}}, %c128
//       CHECK:   gpu.launch_func @fusedops_kernels::@quantize_block128_dynamic blocks in (%[[ROWS]], %c3, %{{.*}}) threads in (%c256,
//       CHECK:   gpu.func @quantize_block128_dynamic({{.*}}) workgroup(%{{.*}} : memref<8xf32, #gpu.address_space<workgroup>>) kernel attributes {known_block_size = array<i32: 256, 1, 1>, nvvm.minctasm = 3 : i32}
//       CHECK:     %[[BX:.*]] = gpu.block_id  x
//       CHECK:     %[[BY:.*]] = gpu.block_id  y
//       CHECK:     vector.load %{{.*}} {alignment = 16 : i64} : memref<?x320xbf16>, vector<8xbf16>
//       CHECK:     gpu.barrier
//       CHECK:     memref.store %{{.*}}, %{{.*}}[%[[BX]], %[[BY]]] : memref<?x3xf32>
//       CHECK:     vector.store %{{.*}} : memref<?x320xf8E5M2>, vector<8xf8E5M2>
func.func @block128_dynamic(%x: memref<?x320xbf16>, %q: memref<?x320xf8E5M2>, %s: memref<?x3xf32>) {
  fusedops.quantize ins(%x : memref<?x320xbf16>) outs(%q, %s : memref<?x320xf8E5M2>, memref<?x3xf32>)
      granularity = block128
  return
}

// -----

// Static scales need no reduction: the elementwise kernel looks up each
// vector's scale. A user's tile is used as given. The reciprocal route to
// x/scale needs a scale in [2^-126, 2^126); others divide.
// CHECK-LABEL: func.func @row_static
//       CHECK:   gpu.launch_func @fusedops_kernels::@quantize_row blocks in ({{.*}}) threads in (%c64, {{.*}}) args(%{{.*}} : memref<?x4096xf16>, %{{.*}} : memref<?xf32>, %{{.*}} : memref<?x4096xf8E4M3FN>)
//       CHECK:   gpu.func @quantize_row(
//   CHECK-NOT:     workgroup
//  CHECK-SAME:     known_block_size = array<i32: 64, 1, 1>
//   CHECK-NOT:     gpu.shuffle
//       CHECK:     vector.load %{{.*}} : memref<?x4096xf16>, vector<8xf16>
//       CHECK:     %[[S:.*]] = memref.load %{{.*}}[%{{.*}}] : memref<?xf32>
//       CHECK:     arith.divf %{{.*}}, %[[S]] : f32
//       CHECK:     arith.cmpf oge, %[[S]], %{{.*}} : f32
//       CHECK:     arith.cmpf olt, %[[S]], %{{.*}} : f32
//       CHECK:     scf.if %{{.*}} -> (vector<8xf32>) {
//       CHECK:       math.fma
//       CHECK:     } else {
//       CHECK:       arith.divf %{{.*}}, %{{.*}} : vector<8xf32>
//       CHECK:     vector.store %{{.*}} : memref<?x4096xf8E4M3FN>, vector<8xf8E4M3FN>
func.func @row_static(%x: memref<?x4096xf16>, %s: memref<?xf32>, %q: memref<?x4096xf8E4M3FN>) {
  fusedops.quantize ins(%x : memref<?x4096xf16>) scale(%s : memref<?xf32>) outs(%q : memref<?x4096xf8E4M3FN>)
      granularity = row {tile = #fusedops.tile<block = [2, 1024], warps = 2>}
  return
}

// -----

// Dequantize: f32 output takes 4-element vectors (16-byte stores, 4-byte FP8
// loads). sm_80 decodes with integer arithmetic and one exact f32
// subtraction, sm_90a with cvt.rn.f16x2 on pairs; both or the code's sign
// back into the product (the multiplication drops NaN signs).
// CHECK-LABEL: func.func @dequantize_block128
//       CHECK:   gpu.launch_func @fusedops_kernels::@dequantize_block128 blocks in (%{{.*}}, %c1{{.*}}, %{{.*}}) threads in (%c256,
//       CHECK:   gpu.func @dequantize_block128(
//       CHECK:     vector.load %{{.*}} {alignment = 4 : i64} : memref<?x4096xf8E5M2>, vector<4xf8E5M2>
//       CHECK:     arith.divui %{{.*}}, %c128
//       CHECK:     memref.load %{{.*}}[%{{.*}}, %{{.*}}] : memref<?x32xf32>
//       CHECK:     arith.bitcast %{{.*}} : vector<4xf8E5M2> to vector<4xi8>
//       SM80:     arith.extui %{{.*}} : vector<4xi8> to vector<4xi32>
//       SM80:     arith.subf
//       SM90:     nvvm.convert.f8x2.to.f16x2 %{{.*}} : vector<2xi8>(f8E5M2) -> vector<2xf16>
//       SM90:     arith.extf %{{.*}} : vector<4xf16> to vector<4xf32>
//       CHECK:     vector.shuffle %{{.*}}, %{{.*}} [4, 4, 4, 0, 4, 4, 4, 1, 4, 4, 4, 2, 4, 4, 4, 3]
//       CHECK:     arith.mulf %{{.*}}, %{{.*}} : vector<4xf32>
//       CHECK:     arith.ori %{{.*}}, %{{.*}} : vector<4xi32>
//       CHECK:     vector.store %{{.*}} {alignment = 16 : i64} : memref<?x4096xf32>, vector<4xf32>
func.func @dequantize_block128(%q: memref<?x4096xf8E5M2>, %s: memref<?x32xf32>, %o: memref<?x4096xf32>) {
  fusedops.dequantize ins(%q, %s : memref<?x4096xf8E5M2>, memref<?x32xf32>) outs(%o : memref<?x4096xf32>)
      granularity = block128
  return
}

// -----

// Dequantize to bf16 with one tensor scale, loaded once per thread; K = 100
// takes 4-element vectors.
// CHECK-LABEL: func.func @dequantize_tensor
//       CHECK:   gpu.launch_func @fusedops_kernels::@dequantize_tensor
//       CHECK:   gpu.func @dequantize_tensor(
//   CHECK-NOT:     gpu.grid_dim
//       CHECK:     memref.load %{{.*}}[] : memref<f32>
//       CHECK:     vector.load %{{.*}} : memref<?x100xf8E4M3FN>, vector<4xf8E4M3FN>
//       CHECK:     arith.truncf %{{.*}} : vector<4xf32> to vector<4xbf16>
//       CHECK:     vector.store %{{.*}} {alignment = 8 : i64} : memref<?x100xbf16>, vector<4xbf16>
func.func @dequantize_tensor(%q: memref<?x100xf8E4M3FN>, %s: memref<f32>, %o: memref<?x100xbf16>) {
  fusedops.dequantize ins(%q, %s : memref<?x100xf8E4M3FN>, memref<f32>) outs(%o : memref<?x100xbf16>)
      granularity = tensor
  return
}

// -----

// Dynamic block128 with the values also transposed (a third init, [K, M']
// with M' = M rounded up to 16): each vector's 8 FP8 codes are written down a
// column of the block's transpose in shared memory (128 rows of 132 bytes),
// zeros for rows past M; after a barrier each thread copies 16-byte pieces
// of its rows to qᵀ, inside K and M'.
// CHECK-LABEL: func.func @block128_transposed
// CHECK: gpu.launch_func @fusedops_kernels::@quantize_block128_transposed blocks in (%{{.*}}, %c2, %c1{{.*}}) threads in (%c256,
// CHECK-SAME: args(%{{.*}} : memref<?x200xbf16>, %{{.*}} : memref<?x200xf8E4M3FN>, %{{.*}} : memref<?x2xf32>, %{{.*}} : memref<200x?xf8E4M3FN>)
// CHECK: gpu.func @quantize_block128_transposed(%[[X:.*]]: memref<?x200xbf16>, %[[Q:.*]]: memref<?x200xf8E4M3FN>, %{{.*}}: memref<?x2xf32>, %[[QT:.*]]: memref<200x?xf8E4M3FN>) workgroup(%{{.*}} : memref<8xf32, #gpu.address_space<workgroup>>, %[[T:.*]] : memref<16896xi8, #gpu.address_space<workgroup>>)
// CHECK: vector.store %{{.*}}, %[[Q]]
// CHECK: %[[BYTES:.*]] = arith.bitcast %{{.*}} : vector<8xf8E4M3FN> to vector<8xi8>
// CHECK: %[[KEPT:.*]] = arith.select %{{.*}}, %[[BYTES]], %{{.*}} : vector<8xi8>
// CHECK: %[[B0:.*]] = vector.extract %[[KEPT]][0] : i8 from vector<8xi8>
// CHECK: memref.store %[[B0]], %[[T]][%{{.*}}] : memref<16896xi8, #gpu.address_space<workgroup>>
// CHECK: gpu.barrier
// CHECK: %[[MP:.*]] = memref.dim %[[QT]], %c1
// CHECK: %[[PIECE:.*]] = vector.load %[[T]][%{{.*}}] {alignment = 4 : i64} : memref<16896xi8, #gpu.address_space<workgroup>>, vector<16xi8>
// CHECK: %[[CODES:.*]] = arith.bitcast %[[PIECE]] : vector<16xi8> to vector<16xf8E4M3FN>
// CHECK: vector.store %[[CODES]], %[[QT]][%{{.*}}, %{{.*}}] {alignment = 16 : i64} : memref<200x?xf8E4M3FN>, vector<16xf8E4M3FN>
func.func @block128_transposed(%x: memref<?x200xbf16>, %q: memref<?x200xf8E4M3FN>, %s: memref<?x2xf32>, %qt: memref<200x?xf8E4M3FN>) {
  fusedops.quantize ins(%x : memref<?x200xbf16>) outs(%q, %s, %qt : memref<?x200xf8E4M3FN>, memref<?x2xf32>, memref<200x?xf8E4M3FN>) granularity = block128 {tile = #fusedops.tile<block = [128, 128], warps = 8>}
  return
}

// -----

// f16 rows widen by cvt: ptxas gives the 8-warp kernel 117 registers, and 7/8
// of them would still allow only 2 blocks an SM: no block count is imposed.
// CHECK-LABEL: func.func @block128_f16
//       CHECK:   gpu.func @quantize_block128_dynamic({{.*}}) kernel attributes {known_block_size = array<i32: 256, 1, 1>} {
func.func @block128_f16(%x: memref<?x256xf16>, %q: memref<?x256xf8E4M3FN>, %s: memref<?x2xf32>) {
  fusedops.quantize ins(%x : memref<?x256xf16>) outs(%q, %s : memref<?x256xf8E4M3FN>, memref<?x2xf32>)
      granularity = block128
  return
}
