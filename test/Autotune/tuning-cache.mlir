// fusedops-autotune with a tuning cache: a measured entry that matches the
// op, its shape class, element types, attributes, chip and compiler wins
// over the cost model; the fastest driver's entry unless `driver` picks one.
// RUN: fusedops-opt %s -split-input-file --fusedops-autotune="chip=sm_90a cache=%S/Inputs/tuning-cache.json compiler=test-compiler remarks=true" 2>%t.remarks | FileCheck %s
// RUN: FileCheck %s --check-prefix=REMARK < %t.remarks
// RUN: fusedops-opt %s -split-input-file --fusedops-autotune="chip=sm_90a cache=%S/Inputs/tuning-cache.json compiler=test-compiler driver=570.00" | FileCheck %s --check-prefix=DRIVER
// Another compiler's measurements do not apply: the cost model decides.
// RUN: fusedops-opt %s -split-input-file --fusedops-autotune="chip=sm_90a cache=%S/Inputs/tuning-cache.json compiler=other" | FileCheck %s --check-prefix=OTHER
// Broken or foreign caches are reported and ignored.
// RUN: fusedops-opt %s -split-input-file --fusedops-autotune="chip=sm_90a cache=%S/Inputs/future-version.json compiler=test-compiler" 2>&1 >/dev/null | FileCheck %s --check-prefix=VERSION
// RUN: fusedops-opt %s -split-input-file --fusedops-autotune="chip=sm_90a cache=%S/Inputs/truncated.json compiler=test-compiler" 2>&1 >/dev/null | FileCheck %s --check-prefix=TRUNCATED
// RUN: fusedops-opt %s -split-input-file --fusedops-autotune="chip=sm_90a cache=%S/Inputs/truncated.json compiler=test-compiler" 2>/dev/null | FileCheck %s --check-prefix=OTHER
// A well-formed entry whose tile is out of the attribute's bounds (its
// shared-memory estimate overflowed int64 before: issue 14) is ignored.
// RUN: fusedops-opt %s -split-input-file --fusedops-autotune="chip=sm_90a cache=%S/Inputs/huge-tile.json compiler=test-compiler" 2>&1 >/dev/null | FileCheck %s --check-prefix=HUGE
// HUGE: warning: fusedops-autotune: ignoring cached tile '#fusedops.tile<block = [1, 4096], warps = 4, stages = 1125899906842624>' {{.*}}'stages' must be in [1, 64], got 1125899906842624; using the cost model
// A missing cache is no cache: no warning.
// RUN: fusedops-opt %s -split-input-file --fusedops-autotune="chip=sm_90a cache=%t.missing.json compiler=test-compiler" 2>&1 | FileCheck %s --check-prefix=OTHER --implicit-check-not=warning

// M = 3000 falls in the class M<=4096 measured at 4096.
// CHECK-LABEL: func.func @mlp
// CHECK: {tile = #fusedops.tile<block = [128, 128, 32], warps = 8, stages = 5>}
// REMARK: remark: tile #fusedops.tile<block = [128, 128, 32], warps = 8, stages = 5> from the tuning cache (2900.5 us measured on NVIDIA H200, driver 580.159.04)
// DRIVER: {tile = #fusedops.tile<block = [64, 128, 64], warps = 4, stages = 4>}
// OTHER: {tile = #fusedops.tile<block = [128, 192, 64], warps = 8, stages = 3, cluster = [2]>}
// VERSION: warning: ignoring tuning cache {{.*}}future-version.json: tuning cache version 99, but this compiler reads version 1; using the cost model (re-run fusedops-tune to rebuild it)
// TRUNCATED: warning: ignoring tuning cache {{.*}}truncated.json: not JSON
func.func @mlp(%x: memref<3000x4096xbf16>, %wg: memref<11008x4096xbf16>,
               %wu: memref<11008x4096xbf16>, %o: memref<3000x11008xbf16>) {
  fusedops.gated_mlp ins(%x, %wg, %wu : memref<3000x4096xbf16>, memref<11008x4096xbf16>, memref<11008x4096xbf16>) outs(%o : memref<3000x11008xbf16>) activation = silu
  return
}

// -----

// Another shape class (M<=8192): not in the cache.
// CHECK-LABEL: func.func @larger
// CHECK-NOT: block = [128, 128, 32]
// CHECK: {tile = #fusedops.tile<
func.func @larger(%x: memref<8192x4096xbf16>, %wg: memref<11008x4096xbf16>,
                  %wu: memref<11008x4096xbf16>, %o: memref<8192x11008xbf16>) {
  fusedops.gated_mlp ins(%x, %wg, %wu : memref<8192x4096xbf16>, memref<11008x4096xbf16>, memref<11008x4096xbf16>) outs(%o : memref<8192x11008xbf16>) activation = silu
  return
}

// -----

// A cached tile that no longer fits (here: the wrong rank) is reported and
// the cost model decides.
// REMARK: warning: fusedops-autotune: ignoring cached tile '#fusedops.tile<block = [64, 64, 32], warps = 4>' for fusedops.quantize [M<=4096 K=4096] {{.*}}: the op's tile takes 2 block sizes, this one has 3; using the cost model
// CHECK-LABEL: func.func @stale
// CHECK: fusedops.quantize {{.*}} {tile = #fusedops.tile<block = [{{[0-9]+}}, 4096], warps = {{[0-9]+}}>}
func.func @stale(%x: memref<3000x4096xbf16>, %q: memref<3000x4096xf8E4M3FN>, %s: memref<3000xf32>) {
  fusedops.quantize ins(%x : memref<3000x4096xbf16>) outs(%q, %s : memref<3000x4096xf8E4M3FN>, memref<3000xf32>) granularity = row
  return
}
