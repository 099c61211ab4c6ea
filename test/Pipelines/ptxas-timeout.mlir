// format=bin assembles PTX with fusedops-assemble-ptx, which stops a ptxas
// that hangs and reports it (MLIR's serializer waited without a limit:
// issue 14). A fake toolkit whose ptxas answers --version and then sleeps.
// RUN: rm -rf %t.cuda && mkdir -p %t.cuda/bin %t.cuda/nvvm/libdevice
// RUN: touch %t.cuda/nvvm/libdevice/libdevice.10.bc
// RUN: cp %S/Inputs/hanging-ptxas.sh %t.cuda/bin/ptxas && chmod +x %t.cuda/bin/ptxas
// RUN: not fusedops-opt %s --fusedops-to-binary="chip=sm_90a format=bin toolkit=%t.cuda ptxas-timeout=1" 2>&1 | FileCheck %s
// A ptxas that fails is reported with its output.
// RUN: not fusedops-opt %s --fusedops-assemble-ptx="ptxas=%S/Inputs/failing-ptxas.sh" 2>&1 | FileCheck %s --check-prefix=FAIL

// CHECK: error: {{.*}}ptxas did not finish within 1 s and was stopped; raise the pipeline's ptxas-timeout or check the toolkit
// FAIL: error: {{.*}}failing-ptxas.sh failed (exit 3):
// FAIL-NEXT: ptxas fatal : no good
func.func @dequantize(%q: memref<64x256xf8E4M3FN>, %s: memref<64xf32>, %o: memref<64x256xbf16>) {
  fusedops.dequantize ins(%q, %s : memref<64x256xf8E4M3FN>, memref<64xf32>) outs(%o : memref<64x256xbf16>) granularity = row
  return
}

gpu.module @k [#nvvm.target<chip = "sm_90a">] {
}
gpu.binary @already [#gpu.object<#nvvm.target<chip = "sm_90a">, assembly = ".version 8.4">]
