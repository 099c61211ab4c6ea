#!/usr/bin/env bash
# Installs the build into a fresh prefix and builds test/Install/consumer
# against it with find_package(FusedOps): the way another MLIR project uses
# fusedops as a lowering backend. Run by ctest (test `install-consumer`).
#   check-install.sh <build dir> <source dir>
set -euo pipefail
build=$1; src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -G Ninja -S "$src/test/Install/consumer" -B "$work/consumer" \
  -DCMAKE_BUILD_TYPE=Release \
  -DFusedOps_DIR="$work/prefix/lib/cmake/fusedops" \
  -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir >/dev/null
ninja -C "$work/consumer" >/dev/null
"$work/consumer/consumer" | tee "$work/out.txt"
grep -q 'fusedops.dequantize' "$work/out.txt"
grep -q '#fusedops.tile<block = \[8, 16\], warps = 1>' "$work/out.txt"
echo "install-consumer: the installed package builds and runs a consumer"
