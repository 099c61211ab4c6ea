// fusedops-runner without a GPU (or with any failing runtime call) fails:
// it used to print uninitialized memory as the result and exit 0 (issue 14).
// UNSUPPORTED: cuda
// RUN: not fusedops-runner %fusedops_src_root/test/Integration/GPU/rmsnorm_rope.mlir --chip=sm_80 --format=isa -e main --entry-point-result=void --shared-libs=%mlir_runner_utils,%mlir_c_runner_utils 2>&1 | FileCheck %s

// CHECK: fusedops runtime: {{.*}}cannot load the CUDA driver
// CHECK: fusedops-runner: {{[0-9]+}} GPU runtime call(s) failed (the last: {{.*}}); what the program printed is not a valid result
