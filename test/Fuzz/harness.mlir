// fusedops-fuzz finds what it must: a crash, a fatal error and a hang,
// injected into the pipeline stage of every case whose source holds a
// string, are each reported with the case, the stage and the chip, kept
// (case-*.mlir) and minimized (case-*.min.mlir, without a newline) to the
// string itself; and the fuzzer fails. ctest runs the real, bounded fuzz
// (test/CMakeLists.txt).
//
// REQUIRES: fusedops-fuzz
// RUN: rm -rf %t && mkdir %t
// RUN: not fusedops-fuzz --seed=7 --cases=12 --chip=sm_90a --cache-every=0 \
// RUN:   --inject=crash:gated_mlp --minimize-seconds=60 --out=%t/crash \
// RUN:   2>&1 | FileCheck %s --check-prefix=CRASH
// RUN: cat %t/crash/case-7-*.min.mlir | FileCheck %s --check-prefix=MIN --match-full-lines
// RUN: cat %t/crash/case-7-*.txt | FileCheck %s --check-prefix=ABOUT
//
// CRASH: FAIL case {{[0-9]+}} (generated:gated_mlp{{(_grad)?}}): signal 11 in fusedopsJitLower for sm_90a
// CRASH: fusedops-fuzz: seed 7, cases 0..12 (12 of 12) in {{[0-9]+}} s, {{[1-9][0-9]*}} failing
// MIN: {{(gated_mlp)+}}
// ABOUT: failure: signal 11 in fusedopsJitLower for sm_90a
// ABOUT: reproduce: fusedops-fuzz --seed=7 --replay={{[0-9]+}} --input={{.*}}.min.mlir
//
// RUN: not fusedops-fuzz --seed=7 --cases=20 --chip=sm_80 --cache-every=0 \
// RUN:   --inject=abort:fp8_gemm --minimize-seconds=0 --out=%t/abort \
// RUN:   2>&1 | FileCheck %s --check-prefix=ABORT
// ABORT: FAIL case {{[0-9]+}} (generated:fp8_gemm): exit 1 in fusedopsJitLower for sm_80
//
// RUN: not fusedops-fuzz --seed=7 --cases=12 --chip=sm_89 --cache-every=0 \
// RUN:   --inject=hang:quantize --case-timeout=2 --minimize-seconds=0 \
// RUN:   --out=%t/hang 2>&1 | FileCheck %s --check-prefix=HANG
// HANG: FAIL case {{[0-9]+}} (generated:{{(de)?}}quantize): hang in fusedopsJitLower for sm_89
//
// Without faults the same cases pass, and each chip's row counts them.
// RUN: fusedops-fuzz --seed=7 --cases=12 --cache-every=2 --out=%t/clean \
// RUN:   | FileCheck %s --check-prefix=CLEAN
// CLEAN: cases 0..12 (12 of 12) in {{[0-9]+}} s, 0 failing
// CLEAN: sm_80 12
// CLEAN: sm_90a 12
// CLEAN: hostile tuning caches: 6
