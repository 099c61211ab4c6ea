//===- Passes.td - fusedops dialect transforms -------------*- tablegen -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_DIALECT_FUSEDOPS_TRANSFORMS_PASSES_TD
#define FUSEDOPS_DIALECT_FUSEDOPS_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def FusedOpsDeviceBuffers : Pass<"fusedops-device-buffers", "ModuleOp"> {
  let summary = "Allocate the buffers fusedops ops use in GPU memory";
  let description = [{
    After bufferization, the intermediate buffers of a host function are
    `memref.alloc`s in host memory, but fusedops ops run as GPU kernels. This
    pass turns every `memref.alloc` whose buffer reaches a fusedops op
    (directly or through view-like ops: casts, reshapes, subviews) into a
    `gpu.alloc`, and every `memref.dealloc` of a GPU buffer (a `gpu.alloc`,
    a view of one, or one a called function returns) into a `gpu.dealloc`.
    Buffers the host reads or writes itself are left alone. Run it after
    `buffer-deallocation-pipeline` so that intermediates are freed.

    Example:

    ```mlir
    %b = memref.alloc(%n) : memref<?x1024xbf16>
    fusedops.rmsnorm_rope ... outs(%b : memref<?x1024xbf16>) ...
    memref.dealloc %b : memref<?x1024xbf16>
    // becomes
    %b = gpu.alloc (%n) : memref<?x1024xbf16>
    fusedops.rmsnorm_rope ... outs(%b : memref<?x1024xbf16>) ...
    gpu.dealloc %b : memref<?x1024xbf16>
    ```
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

def FusedOpsLaunchPlan : Pass<"fusedops-launch-plan", "ModuleOp"> {
  let summary = "Describe each host function's launches for a direct launcher";
  let description = [{
    Runs on host code after `convert-fusedops-to-gpu`, before
    `gpu-async-region`. A host function whose body is nothing but
    `gpu.launch_func`s with constant block and shared-memory sizes whose
    operands are the function's own identity-layout memref arguments (and
    arith ops feeding the sizes) needs none of its
    host code at run time: a launcher only has to call `cuLaunchKernel` for
    each launch with the kernel parameters that `gpu-to-llvm` would pass.
    This pass writes those parameters on the function as
    `fusedops.launch_plan`, which survives the rest of the pipeline (it is
    copied to the `llvm.func`), so a runtime can launch from a lowered,
    cached module without running its JIT-compiled host code.

    Each launch is a dictionary: the kernel's `module` and `kernel` names,
    `grid`, `block`, `shared_memory`, and the kernel's parameters as
    `gpu-to-llvm` expands them (a memref becomes its descriptor: allocated
    pointer, aligned pointer, offset, sizes, strides): `params[i]` is the
    value of parameter `i` unless `param_args[i]` is a function argument
    number, in which case the parameter is that argument's data pointer.
    Functions with dynamic sizes get a plan too: the grids, descriptor
    sizes and strides, tensor-map fields and guards (`scf.if` on the sizes,
    then and else branches) that depend on the arguments' sizes (through
    `memref.dim` of an argument or of a `memref.collapse_shape` of one) are
    kept in the launch's `exprs`: `{field, index, program}` with `field`
    one of "grid", "params", "tensor_maps" or "guard" and `program` a
    `PlanOp` program (Passes.h) over every memref argument's sizes; the
    plan's own value there is a placeholder. `JitModule::getLaunchPlan`
    evaluates them for a call's sizes. Functions with any other host work
    (allocations, copies, loops, subviews of dynamic arguments) get no plan
    and keep only their host code (`-mlir-pass-statistics` counts both kinds
    in LLVM builds with statistics enabled).

    Example:

    ```mlir
    func.func @kernel(%x: memref<2x256xf16>, %q: memref<2x256xf8E4M3FN>,
                      %s: memref<2x1xf32>) attributes {llvm.emit_c_interface} {
      gpu.launch_func @fusedops_kernels::@quantize_row blocks in (%c2, %c1, %c1)
          threads in (%c256, %c1, %c1) args(%x : ..., %q : ..., %s : ...)
      return
    }
    // gets
    //   fusedops.launch_plan = [{block = array<i64: 256, 1, 1>,
    //     grid = array<i64: 2, 1, 1>, kernel = "quantize_row",
    //     module = "fusedops_kernels", param_args = array<i64: 0, 0, -1, ...>,
    //     params = array<i64: 0, 0, 0, 2, 256, 256, 1, ...>, shared_memory = 0},
    //    ...]
    ```
  }];
  let statistics = [
    Statistic<"numPlanned", "planned-functions",
              "Host functions given a launch plan">,
    Statistic<"numUnplanned", "unplanned-functions",
              "Host functions with launches that keep only their host code">
  ];
}

def FusedOpsTensorMapParams : Pass<"fusedops-tensor-map-params", "ModuleOp"> {
  let summary = "Pass kernels' tensor maps by value as grid constants";
  let description = [{
    A kernel with `fusedops.tensor_map_params = N` (the sm_90a GEMMs of
    `convert-fusedops-to-gpu`) takes, as its last N parameters, TMA tensor
    maps (CUDA `CUtensorMap`, 128 bytes) that its launches pass as pointers to
    host memory. Run after the kernels are in the LLVM dialect
    (`convert-gpu-to-nvvm`) and before `gpu-to-llvm`, this pass makes each of
    those parameters what `cp.async.bulk.tensor` needs: a 128-byte,
    64-byte-aligned `byval` parameter marked `nvvm.grid_constant` (PTX
    `.param .align 64 .b8 p[128]`, read in place through its address), and
    makes every `gpu.launch_func` of the kernel pass the 128 bytes themselves
    (an `llvm.load` of the host pointer) instead of the pointer.
    `fusedops-to-binary` runs it; a pipeline of one's own must too: without
    it the kernel would read a host address as a tensor map. A kernel whose
    attribute does not fit its parameters is an error.

    Example:

    ```mlir
    llvm.func @gated_mlp(..., %a: !llvm.ptr, %b: !llvm.ptr, %c: !llvm.ptr)
        attributes {fusedops.tensor_map_params = 3 : i64, nvvm.kernel}
    gpu.launch_func @k::@gated_mlp ... args(..., %mapA : !llvm.ptr, ...)
    // becomes
    llvm.func @gated_mlp(..., %a: !llvm.ptr {llvm.align = 64 : i64,
        llvm.byval = !llvm.array<16 x i64>, nvvm.grid_constant}, ...)
    %0 = llvm.load %mapA : !llvm.ptr -> !llvm.array<16 x i64>
    gpu.launch_func @k::@gated_mlp ... args(..., %0 : !llvm.array<16 x i64>, ...)
    ```
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect",
                           "::mlir::NVVM::NVVMDialect"];
}

def FusedOpsAssemblePtx : Pass<"fusedops-assemble-ptx", "ModuleOp"> {
  let summary = "Assemble the PTX objects of gpu.binary ops into cubins with ptxas, under a time limit";
  let description = [{
    Runs after `gpu-module-to-binary` with `format=isa`: every PTX object of a
    `gpu.binary` becomes a cubin object assembled by `ptxas` for the chip of
    its `#nvvm.target` (`chip` for other targets) at `opt-level`. Unlike MLIR's own serializer, which waits for ptxas without
    a limit, a ptxas that runs past `timeout` seconds is stopped and
    reported, and any failure is an error of the pass. `fusedops-to-binary`
    uses it for `format=bin`.

    Example: `#gpu.object<#nvvm.target<chip = "sm_90a">, "...ptx...">` becomes
    `#gpu.object<#nvvm.target<chip = "sm_90a">, bin = "...cubin...">`.
  }];
  let options = [
    Option<"ptxas", "ptxas", "std::string", /*default=*/"\"\"",
           "The ptxas executable">,
    Option<"chip", "chip", "std::string", /*default=*/"\"sm_90a\"",
           "Target chip (-arch) of objects whose target is not NVVM's">,
    Option<"optLevel", "opt-level", "unsigned", /*default=*/"3",
           "ptxas optimisation level">,
    Option<"timeout", "timeout", "unsigned", /*default=*/"600",
           "Seconds one ptxas run may take before it is stopped (0: no limit)">
  ];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

#endif // FUSEDOPS_DIALECT_FUSEDOPS_TRANSFORMS_PASSES_TD
