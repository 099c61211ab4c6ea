// fusedops-assemble-ptx assembles each PTX object for the chip of its own
// #nvvm.target: a gpu.module that names sm_90 keeps it when the pipeline
// builds for sm_80 (ptxas once refused the sm_90 PTX under -arch=sm_80: a
// fuzz finding, seed 1 case 1450).
// REQUIRES: ptxas
// RUN: fusedops-opt %s --fusedops-to-binary="chip=sm_80 format=bin" | FileCheck %s

// CHECK: gpu.binary @k {{ *}}[#gpu.object<#nvvm.target<chip = "sm_90">, properties = {{{.*}}}, bin =
// CHECK: gpu.binary @fusedops_kernels {{ *}}[#gpu.object<#nvvm.target<O = 3, chip = "sm_80"{{.*}}>, properties = {{{.*}}}, bin =
func.func @dequantize(%q: memref<64x256xf8E4M3FN>, %s: memref<64xf32>, %o: memref<64x256xbf16>) {
  fusedops.dequantize ins(%q, %s : memref<64x256xf8E4M3FN>, memref<64xf32>) outs(%o : memref<64x256xbf16>) granularity = row
  return
}

gpu.module @k [#nvvm.target<chip = "sm_90">] {
}
