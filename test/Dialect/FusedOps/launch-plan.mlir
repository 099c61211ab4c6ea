// RUN: fusedops-opt %s --fusedops-launch-plan | FileCheck %s

// Only the functions whose host work is launching kernels on their own
// arguments get a plan; each memref operand becomes the kernel parameters
// gpu-to-llvm passes (allocated, aligned, offset, sizes, strides).

module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @one(%a: memref<4x8xf16>) kernel { gpu.return }
    gpu.func @two(%a: memref<32x8xf16>, %n: index, %b: memref<8xf32, strided<[1], offset: 3>>) kernel { gpu.return }
    gpu.func @dyn(%a: memref<?x8xf16>) kernel { gpu.return }
    gpu.func @scalar(%a: memref<f32>) kernel { gpu.return }
    gpu.func @tma(%a: memref<64x4096xbf16>, %map: !llvm.ptr) kernel { gpu.return }
  }
  llvm.func @mgpuTensorMapEncode2D(!llvm.ptr, !llvm.ptr, i32, i64, i64, i64, i32, i32, i32) -> i32
  llvm.func @mgpuMultiprocessorCount() -> i32

  // CHECK-LABEL: func.func @two_launches
  // CHECK-SAME: fusedops.launch_plan = [
  // CHECK-SAME: {block = array<i64: 128, 1, 1>, grid = array<i64: 2, 1, 1>, grid_per_sm = 0 : i64, kernel = "one", module = "kernels", param_args = array<i64: 1, 1, -1, -1, -1, -1, -1>, params = array<i64: 0, 0, 0, 4, 8, 8, 1>, shared_memory = 0 : i64, tensor_maps = array<i64>},
  // CHECK-SAME: {block = array<i64: 64, 2, 1>, grid = array<i64: 1, 1, 1>, grid_per_sm = 0 : i64, kernel = "one", module = "kernels", param_args = array<i64: 0, 0, -1, -1, -1, -1, -1>, params = array<i64: 0, 0, 0, 4, 8, 8, 1>, shared_memory = 1024 : i64, tensor_maps = array<i64>}]
  func.func @two_launches(%x: memref<4x8xf16>, %y: memref<4x8xf16>) {
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c64 = arith.constant 64 : index
    %c128 = arith.constant 128 : index
    %smem = arith.constant 1024 : i32
    gpu.launch_func @kernels::@one blocks in (%c2, %c1, %c1) threads in (%c128, %c1, %c1) args(%y : memref<4x8xf16>)
    gpu.launch_func @kernels::@one blocks in (%c1, %c1, %c1) threads in (%c64, %c2, %c1) dynamic_shared_memory_size %smem args(%x : memref<4x8xf16>)
    return
  }

  // Views of arguments keep the base pointer: the view's own offset, sizes
  // and strides go in the plan. Index constants are 8-byte parameters.
  // CHECK-LABEL: func.func @views
  // CHECK-SAME: param_args = array<i64: 0, 0, -1, -1, -1, -1, -1, -1, 1, 1, -1, -1, -1>
  // CHECK-SAME: params = array<i64: 0, 0, 0, 32, 8, 8, 1, 16, 0, 0, 3, 8, 1>
  func.func @views(%x: memref<2x16x8xf16>, %t: memref<16xf32>) {
    %c1 = arith.constant 1 : index
    %c16 = arith.constant 16 : index
    %flat = memref.collapse_shape %x [[0, 1], [2]] : memref<2x16x8xf16> into memref<32x8xf16>
    %part = memref.subview %t[3] [8] [1] : memref<16xf32> to memref<8xf32, strided<[1], offset: 3>>
    %cast = memref.cast %part : memref<8xf32, strided<[1], offset: 3>> to memref<8xf32, strided<[1], offset: 3>>
    gpu.launch_func @kernels::@two blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%flat : memref<32x8xf16>, %c16 : index, %cast : memref<8xf32, strided<[1], offset: 3>>)
    return
  }

  // A function without launches is not counted.
  // CHECK-LABEL: func.func @no_launch
  // CHECK-NOT: fusedops.launch_plan
  func.func @no_launch(%x: memref<4x8xf16>) {
    return
  }

  // CHECK-LABEL: func.func @rank0
  // CHECK-SAME: params = array<i64: 0, 0, 0>
  func.func @rank0(%x: memref<f32>) {
    %c1 = arith.constant 1 : index
    gpu.launch_func @kernels::@scalar blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%x : memref<f32>)
    return
  }

  // Host work other than launching: no plan.
  // CHECK-LABEL: func.func @allocates
  // CHECK-NOT: fusedops.launch_plan
  func.func @allocates() {
    %c1 = arith.constant 1 : index
    %b = gpu.alloc () : memref<4x8xf16>
    gpu.launch_func @kernels::@one blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%b : memref<4x8xf16>)
    gpu.dealloc %b : memref<4x8xf16>
    return
  }

  // A grid and a descriptor that depend on the arguments' sizes: the plan
  // keeps them as programs (PlanOp, reverse Polish) over every memref
  // argument's sizes in order: grid x = ceildiv(size 0, 4) (Size 0, Const 4,
  // CeilDivU); parameter 3, the descriptor's size 0, is Size 0.
  // CHECK-LABEL: func.func @dynamic
  // CHECK-SAME: exprs = [{field = "grid", index = 0 : i64, program = array<i64: 1, 0, 0, 4, 7>}, {field = "params", index = 3 : i64, program = array<i64: 1, 0>}]
  // CHECK-SAME: grid = array<i64: 0, 1, 1>
  // CHECK-SAME: params = array<i64: 0, 0, 0, 0, 8, 8, 1>
  func.func @dynamic(%x: memref<?x8xf16>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %n = memref.dim %x, %c0 : memref<?x8xf16>
    %g = arith.ceildivui %n, %c4 : index
    gpu.launch_func @kernels::@dyn blocks in (%g, %c1, %c1) threads in (%c1, %c1, %c1) args(%x : memref<?x8xf16>)
    return
  }

  // A collapsed view of an argument with two dynamic sizes (sizes 0 and 1
  // of argument 0; argument 1's sizes follow, from 3), a guard on its rows
  // (Size 0, Size 1, Mul, Const 0, Cmp ugt) and an else branch (the same,
  // Const 0, Cmp eq): each launch carries the guards it runs under, and the
  // descriptor's size 0 is the product of the collapsed sizes.
  // CHECK-LABEL: func.func @dynamic_view
  // CHECK-SAME: exprs = [{field = "guard", index = 0 : i64, program = array<i64: 1, 0, 1, 1, 4, 0, 0, 16, 8>}, {field = "grid", index = 0 : i64, program = array<i64: 1, 0, 1, 1, 4>}, {field = "params", index = 3 : i64, program = array<i64: 1, 0, 1, 1, 4>}]
  // CHECK-SAME: kernel = "dyn"
  // CHECK-SAME: exprs = [{field = "guard", index = 0 : i64, program = array<i64: 1, 0, 1, 1, 4, 0, 0, 16, 8, 0, 0, 16, 0>}]
  // CHECK-SAME: kernel = "one"
  func.func @dynamic_view(%x: memref<?x?x8xf16>, %y: memref<4x8xf16>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %flat = memref.collapse_shape %x [[0, 1], [2]] : memref<?x?x8xf16> into memref<?x8xf16>
    %n = memref.dim %flat, %c0 : memref<?x8xf16>
    %go = arith.cmpi ugt, %n, %c0 : index
    scf.if %go {
      gpu.launch_func @kernels::@dyn blocks in (%n, %c1, %c1) threads in (%c1, %c1, %c1) args(%flat : memref<?x8xf16>)
    } else {
      gpu.launch_func @kernels::@one blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%y : memref<4x8xf16>)
    }
    return
  }

  // A size of a view other than a collapse: no plan.
  // CHECK-LABEL: func.func @dynamic_subview
  // CHECK-NOT: fusedops.launch_plan
  func.func @dynamic_subview(%x: memref<?x8xf16>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = memref.dim %x, %c0 : memref<?x8xf16>
    %v = memref.subview %x[1, 0] [%n, 8] [1, 1] : memref<?x8xf16> to memref<?x8xf16, strided<[8, 1], offset: 8>>
    %m = memref.dim %v, %c0 : memref<?x8xf16, strided<[8, 1], offset: 8>>
    gpu.launch_func @kernels::@dyn blocks in (%m, %c1, %c1) threads in (%c1, %c1, %c1) args(%x : memref<?x8xf16>)
    return
  }

  // A scalar operand that is not known now: no plan.
  // CHECK-LABEL: func.func @runtime_scalar
  // CHECK-NOT: fusedops.launch_plan
  func.func @runtime_scalar(%x: memref<32x8xf16>, %n: index, %t: memref<16xf32>) {
    %v = memref.subview %t[3] [8] [1] : memref<16xf32> to memref<8xf32, strided<[1], offset: 3>>
    %c1 = arith.constant 1 : index
    gpu.launch_func @kernels::@two blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%x : memref<32x8xf16>, %n : index, %v : memref<8xf32, strided<[1], offset: 3>>)
    return
  }

  // Launches inside a loop: no plan.
  // CHECK-LABEL: func.func @loop
  // CHECK-NOT: fusedops.launch_plan
  func.func @loop(%x: memref<4x8xf16>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    scf.for %i = %c0 to %c4 step %c1 {
      gpu.launch_func @kernels::@one blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%x : memref<4x8xf16>)
    }
    return
  }
  // What the sm_90a GEMMs' host code does: encode a tensor map of an
  // argument into a stack slot, size a persistent grid by the device's SMs,
  // launch only where the rows are non-zero and the map was encoded. The
  // plan keeps the map's description (parameter 7: argument 0, 2-byte
  // elements, 64 x 4096, rows 8192 bytes apart, boxes of 64 x 64, 128-byte
  // swizzle), the tiles (the grid) and the blocks per SM; the runtime
  // encodes the map and caps the grid at each run.
  // CHECK-LABEL: func.func @tensor_map
  // CHECK-SAME: grid = array<i64: 172, 1, 1>, grid_per_sm = 2 : i64
  // CHECK-SAME: param_args = array<i64: 0, 0, -1, -1, -1, -1, -1, -1>, params = array<i64: 0, 0, 0, 64, 4096, 4096, 1, 0>
  // CHECK-SAME: tensor_maps = array<i64: 7, 0, 2, 64, 4096, 8192, 64, 64, 128>
  func.func @tensor_map(%x: memref<64x4096xbf16>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c172 = arith.constant 172 : index
    %c256 = arith.constant 256 : index
    %c0_i32 = arith.constant 0 : i32
    %c2_i32 = arith.constant 2 : i32
    %c64_i32 = arith.constant 64 : i32
    %c128_i32 = arith.constant 128 : i32
    %c1_i64 = arith.constant 1 : i64
    %c64_i64 = arith.constant 64 : i64
    %c4096_i64 = arith.constant 4096 : i64
    %c8192_i64 = arith.constant 8192 : i64
    %rows = arith.constant 64 : index
    %map = llvm.alloca %c1_i64 x !llvm.array<16 x i64> {alignment = 64 : i64} : (i64) -> !llvm.ptr
    %p = memref.extract_aligned_pointer_as_index %x : memref<64x4096xbf16> -> index
    %p64 = arith.index_castui %p : index to i64
    %ptr = llvm.inttoptr %p64 : i64 to !llvm.ptr
    %ok = llvm.call @mgpuTensorMapEncode2D(%map, %ptr, %c2_i32, %c64_i64, %c4096_i64, %c8192_i64, %c64_i32, %c64_i32, %c128_i32) : (!llvm.ptr, !llvm.ptr, i32, i64, i64, i64, i32, i32, i32) -> i32
    %encoded = arith.cmpi ne, %ok, %c0_i32 : i32
    %live = arith.select %encoded, %rows, %c0 : index
    %sms32 = llvm.call @mgpuMultiprocessorCount() : () -> i32
    %sms = arith.index_castui %sms32 : i32 to index
    %resident = arith.muli %sms, %c2 : index
    %grid = arith.minui %c172, %resident : index
    %go = arith.cmpi ugt, %live, %c0 : index
    scf.if %go {
      gpu.launch_func @kernels::@tma blocks in (%grid, %c1, %c1) threads in (%c256, %c1, %c1) args(%x : memref<64x4096xbf16>, %map : !llvm.ptr)
    }
    return
  }

  // One block per SM: the product with 1 folds away.
  // CHECK-LABEL: func.func @one_block_per_sm
  // CHECK-SAME: grid = array<i64: 8, 1, 1>, grid_per_sm = 1 : i64
  func.func @one_block_per_sm(%x: memref<4x8xf16>) {
    %c1 = arith.constant 1 : index
    %c8 = arith.constant 8 : index
    %sms32 = llvm.call @mgpuMultiprocessorCount() : () -> i32
    %sms = arith.index_castui %sms32 : i32 to index
    %grid = arith.minui %c8, %sms : index
    gpu.launch_func @kernels::@one blocks in (%grid, %c1, %c1) threads in (%c1, %c1, %c1) args(%x : memref<4x8xf16>)
    return
  }

  // A map of memory the function allocates: no plan.
  // CHECK-LABEL: func.func @tensor_map_of_local
  // CHECK-NOT: fusedops.launch_plan
  func.func @tensor_map_of_local() {
    %c1 = arith.constant 1 : index
    %c2_i32 = arith.constant 2 : i32
    %c64_i32 = arith.constant 64 : i32
    %c128_i32 = arith.constant 128 : i32
    %c1_i64 = arith.constant 1 : i64
    %c64_i64 = arith.constant 64 : i64
    %c4096_i64 = arith.constant 4096 : i64
    %c8192_i64 = arith.constant 8192 : i64
    %b = gpu.alloc () : memref<64x4096xbf16>
    %map = llvm.alloca %c1_i64 x !llvm.array<16 x i64> {alignment = 64 : i64} : (i64) -> !llvm.ptr
    %p = memref.extract_aligned_pointer_as_index %b : memref<64x4096xbf16> -> index
    %p64 = arith.index_castui %p : index to i64
    %ptr = llvm.inttoptr %p64 : i64 to !llvm.ptr
    %ok = llvm.call @mgpuTensorMapEncode2D(%map, %ptr, %c2_i32, %c64_i64, %c4096_i64, %c8192_i64, %c64_i32, %c64_i32, %c128_i32) : (!llvm.ptr, !llvm.ptr, i32, i64, i64, i64, i32, i32, i32) -> i32
    gpu.launch_func @kernels::@tma blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%b : memref<64x4096xbf16>, %map : !llvm.ptr)
    return
  }

  // A guard that depends on the data: no plan.
  // CHECK-LABEL: func.func @data_guard
  // CHECK-NOT: fusedops.launch_plan
  func.func @data_guard(%x: memref<4x8xf16>, %flag: i1) {
    %c1 = arith.constant 1 : index
    scf.if %flag {
      gpu.launch_func @kernels::@one blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%x : memref<4x8xf16>)
    }
    return
  }

  // CHECK-LABEL: func.func @last
  func.func @last() {
    return
  }
}
