// fusedops-to-binary chooses tiles with fusedops-autotune: the cost model's
// without a tuning cache, or a forced one for experiments; a forced tile that
// does not fit is an error naming the op and the reason.
// RUN: fusedops-opt %s --fusedops-to-binary="chip=sm_90a format=isa" | FileCheck %s --check-prefix=MODEL
// RUN: fusedops-opt %s --fusedops-to-binary='chip=sm_90a format=isa force-tile="#fusedops.tile<block = [4, 2048], warps = 8>"' | FileCheck %s --check-prefix=FORCED
// RUN: not fusedops-opt %s --fusedops-to-binary='chip=sm_90a format=isa force-tile="#fusedops.tile<block = [8, 2048], warps = 1>"' 2>&1 | FileCheck %s --check-prefix=NOFIT
// RUN: fusedops-opt %s --fusedops-to-binary="chip=sm_90a format=isa tuning-cache=%t.none.json" | FileCheck %s --check-prefix=MODEL

// The kernel declares its block size: the cost model's 4 warps, the forced 8.
// MODEL: .maxntid 128, 1, 1
// FORCED: .maxntid 256, 1, 1
// NOFIT: error: fusedops-autotune: forced tile #fusedops.tile<block = [8, 2048], warps = 1> does not fit: 'fusedops.dequantize' op 'tile' {{.*}} gives each thread 64 vectors of 8 elements to hold in registers; use more warps or a smaller block (at most 32 vectors per thread)
func.func @dequantize(%q: memref<1024x2048xf8E4M3FN>, %s: memref<1024xf32>, %o: memref<1024x2048xbf16>)
    attributes {llvm.emit_c_interface} {
  fusedops.dequantize ins(%q, %s : memref<1024x2048xf8E4M3FN>, memref<1024xf32>) outs(%o : memref<1024x2048xbf16>) granularity = row
  return
}
