// fusedops-compile checks that its outputs were written: a full device is an
// error (it used to end in "LLVM ERROR: IO failure on output stream" after
// printing "wrote"), and it never overwrites its own input (issue 14).
// RUN: not fusedops-compile %s --chip=sm_80 --ptx=/dev/full 2>&1 | FileCheck %s --check-prefix=FULL
// RUN: cp %s %t.input.mlir
// RUN: not fusedops-compile %t.input.mlir --chip=sm_80 --ptx=%t.input.mlir 2>&1 | FileCheck %s --check-prefix=SELF
// RUN: diff %s %t.input.mlir
// RUN: fusedops-compile %s --chip=sm_80 --ptx=%t.ptx -o %t.lowered.mlir | FileCheck %s --check-prefix=WROTE
// RUN: FileCheck %s --check-prefix=PTX < %t.ptx
// --help lists the tool's own options, not LLVM's hundreds (issue 14).
// RUN: fusedops-compile --help | FileCheck %s --check-prefix=HELP

// FULL: error: cannot write /dev/full: No space left on device
// FULL-NOT: wrote
// SELF: error: not writing {{.*}}input.mlir: it is the input file
// WROTE: wrote {{.*}}.ptx (isa, sm_80, {{[0-9]+}} bytes)
// PTX: .target sm_80
// HELP: fusedops-compile options:
// HELP: --chip=<string>
// HELP: --cubin=<string>
// HELP: --ptx=<string>
// HELP-NOT: amdgpu
func.func @dequantize(%q: memref<64x256xf8E4M3FN>, %s: memref<64xf32>, %o: memref<64x256xbf16>) {
  fusedops.dequantize ins(%q, %s : memref<64x256xf8E4M3FN>, memref<64xf32>) outs(%o : memref<64x256xbf16>) granularity = row
  return
}
