// RUN: fusedops-opt %s --fusedops-tensor-map-params -split-input-file -verify-diagnostics | FileCheck %s

// The last `fusedops.tensor_map_params` parameters of a kernel become
// 128-byte grid constants passed by value; its launches pass the maps'
// bytes, loaded from the host pointers.
module attributes {gpu.container_module} {
  gpu.module @k {
    // CHECK-LABEL: llvm.func @gemm(
    // CHECK-SAME: %arg0: !llvm.ptr, %arg1: i64,
    // CHECK-SAME: %arg2: !llvm.ptr {llvm.align = 64 : i64, llvm.byval = !llvm.array<16 x i64>, nvvm.grid_constant},
    // CHECK-SAME: %arg3: !llvm.ptr {llvm.align = 64 : i64, llvm.byval = !llvm.array<16 x i64>, nvvm.grid_constant})
    // CHECK-NOT: fusedops.tensor_map_params
    llvm.func @gemm(%data: !llvm.ptr, %n: i64, %a: !llvm.ptr, %b: !llvm.ptr) attributes {fusedops.tensor_map_params = 2 : i64, gpu.kernel, nvvm.kernel} {
      llvm.return
    }
    // CHECK-LABEL: llvm.func @plain(
    // CHECK-SAME: %arg0: !llvm.ptr)
    llvm.func @plain(%data: !llvm.ptr) attributes {gpu.kernel, nvvm.kernel} {
      llvm.return
    }
  }
  // CHECK-LABEL: llvm.func @host
  // CHECK: %[[A:.*]] = llvm.load %arg2 {alignment = 64 : i64} : !llvm.ptr -> !llvm.array<16 x i64>
  // CHECK: %[[B:.*]] = llvm.load %arg3 {alignment = 64 : i64} : !llvm.ptr -> !llvm.array<16 x i64>
  // CHECK: gpu.launch_func @k::@gemm {{.*}} args(%arg0 : !llvm.ptr, %arg1 : i64, %[[A]] : !llvm.array<16 x i64>, %[[B]] : !llvm.array<16 x i64>)
  // CHECK: gpu.launch_func @k::@plain {{.*}} args(%arg0 : !llvm.ptr)
  llvm.func @host(%data: !llvm.ptr, %n: i64, %a: !llvm.ptr, %b: !llvm.ptr) {
    %c1 = llvm.mlir.constant(1 : index) : i64
    gpu.launch_func @k::@gemm blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) : i64 args(%data : !llvm.ptr, %n : i64, %a : !llvm.ptr, %b : !llvm.ptr)
    gpu.launch_func @k::@plain blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) : i64 args(%data : !llvm.ptr)
    llvm.return
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @k {
    // expected-error @below {{has 'fusedops.tensor_map_params' = 3 but 2 parameters}}
    llvm.func @gemm(%a: !llvm.ptr, %b: !llvm.ptr) attributes {fusedops.tensor_map_params = 3 : i64, gpu.kernel, nvvm.kernel} {
      llvm.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @k {
    // expected-error @below {{parameter 1 is a tensor map ('fusedops.tensor_map_params') but not a generic !llvm.ptr: 'i64'}}
    llvm.func @gemm(%a: !llvm.ptr, %n: i64) attributes {fusedops.tensor_map_params = 1 : i64, gpu.kernel, nvvm.kernel} {
      llvm.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  // expected-error @below {{has 'fusedops.tensor_map_params' but is not an NVVM kernel in a gpu.module}}
  llvm.func @host_side(%a: !llvm.ptr) attributes {fusedops.tensor_map_params = 1 : i64} {
    llvm.return
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @k {
    llvm.func @gemm(%a: !llvm.ptr) attributes {fusedops.tensor_map_params = 1 : i64, gpu.kernel, nvvm.kernel} {
      llvm.return
    }
  }
  llvm.func @host(%n: i64) {
    %c1 = llvm.mlir.constant(1 : index) : i64
    // expected-error @below {{operand 0 is for a tensor-map parameter but is 'i64', not a pointer to the map}}
    gpu.launch_func @k::@gemm blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) : i64 args(%n : i64)
    llvm.return
  }
}
