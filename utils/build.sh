#!/usr/bin/env bash
#===- utils/build.sh - configure and build fusedops -----------------------===#
#
# Usage: utils/build.sh [ninja targets...]   (build directory: $BUILD_DIR,
# default build/). Configures once with Debian's LLVM/MLIR 22.
#
#===----------------------------------------------------------------------===#
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}

if [ ! -f "$build/build.ninja" ]; then
  cmake -G Ninja -S "$root" -B "$build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit
fi
ninja -C "$build" "$@"

# The Python package ships the native libraries it loads: `pip install ./python`
# after a build installs them with it (python/fusedops/_lib is not tracked).
# _fastcall.abi3.so (the optional extension, built where Python's headers are)
# goes with them.
if [ -f "$build/lib/libFusedOpsCAPI.so" ] && [ -f "$build/lib/libFusedOpsRuntime.so" ]; then
  mkdir -p "$root/python/fusedops/_lib"
  cp "$build/lib/libFusedOpsCAPI.so" "$build/lib/libFusedOpsRuntime.so" \
     "$root/python/fusedops/_lib/"
  if [ -f "$build/lib/_fastcall.abi3.so" ]; then
    cp "$build/lib/_fastcall.abi3.so" "$root/python/fusedops/_lib/"
  fi
fi
