// fusedops-to-binary checks its options and the toolchain before it runs.
// RUN: not fusedops-opt %s --fusedops-to-binary="chip=sm_75" 2>&1 | FileCheck %s --check-prefix=CHIP
// RUN: not fusedops-opt %s --fusedops-to-binary="format=elf" 2>&1 | FileCheck %s --check-prefix=FORMAT
// RUN: not fusedops-opt %s --fusedops-to-binary="opt-level=9" 2>&1 | FileCheck %s --check-prefix=OPT
// RUN: rm -rf %t.cuda && mkdir -p %t.cuda/nvvm/libdevice && touch %t.cuda/nvvm/libdevice/libdevice.10.bc
// RUN: env PATH=/nonexistent not fusedops-opt %s --fusedops-to-binary="format=bin toolkit=%t.cuda" 2>&1 | FileCheck %s --check-prefix=TOOLKIT
// RUN: not fusedops-opt %s --fusedops-to-binary="format=isa toolkit=%t.nowhere" 2>&1 | FileCheck %s --check-prefix=LIBDEVICE
// RUN: not fusedops-compile %s 2>&1 | FileCheck %s --check-prefix=NOTHING

// CHIP: unsupported chip 'sm_75'; fusedops builds for sm_80, sm_86, sm_89, sm_90 and sm_90a
// FORMAT: unknown format 'elf'; expected isa (PTX), bin (cubin) or fatbin
// OPT: opt-level must be 0 to 3, got 9
// TOOLKIT: format=bin needs ptxas, found neither {{.*}}.cuda/bin/ptxas nor one on PATH; install the CUDA toolkit, pass toolkit=<dir>, or use format=isa for PTX
// Without libdevice MLIR's serializer reported an error but wrote PTX with
// unresolved __nv_* calls, and the tools exited 0 (issue 14).
// LIBDEVICE: the kernels link the CUDA toolkit's libdevice, but {{.*}}.nowhere/nvvm/libdevice/libdevice.10.bc is not a file; install the CUDA toolkit, set CUDA_HOME or pass toolkit=<dir>
// NOTHING: fusedops-compile: nothing to write; give --ptx=<file>, --cubin=<file> and/or -o <file>

func.func @empty() {
  return
}
