// fusedops-to-binary checks its options and the toolchain before it runs.
// RUN: not fusedops-opt %s --fusedops-to-binary="chip=sm_75" 2>&1 | FileCheck %s --check-prefix=CHIP
// RUN: not fusedops-opt %s --fusedops-to-binary="format=elf" 2>&1 | FileCheck %s --check-prefix=FORMAT
// RUN: not fusedops-opt %s --fusedops-to-binary="opt-level=9" 2>&1 | FileCheck %s --check-prefix=OPT
// RUN: env PATH=/nonexistent not fusedops-opt %s --fusedops-to-binary="format=bin toolkit=/nonexistent" 2>&1 | FileCheck %s --check-prefix=TOOLKIT
// RUN: not fusedops-compile %s 2>&1 | FileCheck %s --check-prefix=NOTHING

// CHIP: unsupported chip 'sm_75'; fusedops builds for sm_80, sm_86, sm_89, sm_90 and sm_90a
// FORMAT: unknown format 'elf'; expected isa (PTX), bin (cubin) or fatbin
// OPT: opt-level must be 0 to 3, got 9
// TOOLKIT: format=bin needs ptxas, found neither /nonexistent/bin/ptxas nor one on PATH; install the CUDA toolkit, pass toolkit=<dir>, or use format=isa for PTX
// NOTHING: fusedops-compile: nothing to write; give --ptx=<file>, --cubin=<file> and/or -o <file>

func.func @empty() {
  return
}
