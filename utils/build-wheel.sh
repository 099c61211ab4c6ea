#!/usr/bin/env bash
#===- utils/build-wheel.sh - the self-contained Python wheel ---------------===#
#
# Usage: utils/build-wheel.sh [out dir]   (default dist/; build directory:
# $WHEEL_BUILD_DIR, default build-wheel/)
#
# Builds the three native libraries the package loads with MLIR and LLVM
# linked statically into libFusedOpsCAPI.so (FUSEDOPS_STANDALONE_LIBS: their
# symbols hidden, only the C API exported, RUNPATH $ORIGIN, stripped), checks
# them (utils/check-wheel-libs.py: nothing needed beyond glibc, no build
# paths, the size) and writes
# dist/fusedops-<version>-cp39-abi3-manylinux_2_<N>_x86_64.whl, N being the
# newest glibc the libraries use. At run time the wheel needs the NVIDIA
# driver, and ptxas for cubins (the CUDA toolkit, or the nvidia-cuda-nvcc
# wheel's; else compile with fmt="isa" and let the driver compile the PTX).
#
#===----------------------------------------------------------------------===#
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${WHEEL_BUILD_DIR:-$root/build-wheel}
out=$(realpath -m "${1:-$root/dist}")
PYTHON=${PYTHON:-python3}

if [ ! -f "$build/build.ninja" ]; then
  cmake -G Ninja -S "$root" -B "$build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
    -DFUSEDOPS_STANDALONE_LIBS=ON -DFUSEDOPS_BUILD_TESTS=OFF
fi
ninja -C "$build" FusedOpsCAPI FusedOpsRuntime FusedOpsPythonFastCall

libs=("$build/lib/libFusedOpsCAPI.so" "$build/lib/libFusedOpsRuntime.so"
      "$build/lib/_fastcall.abi3.so")
report=$("$PYTHON" "$root/utils/check-wheel-libs.py" "${libs[@]}")
echo "$report"
platform=$(echo "$report" | sed -n 's/^tag: //p')

# The package from the source tree, with these libraries in fusedops/_lib.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -r "$root/python/fusedops" "$root/python/pyproject.toml" \
  "$root/python/README.md" "$root/python/build_backend" "$stage/"
find "$stage" -name __pycache__ -prune -exec rm -rf {} +
rm -rf "$stage/fusedops/_lib"
mkdir -p "$stage/fusedops/_lib" "$out"
cp "${libs[@]}" "$stage/fusedops/_lib/"
# The package's backend packs these libraries (no build) and tags the wheel
# cp39-abi3 for the manylinux platform the check found.
FUSEDOPS_PREBUILT_LIBS=1 FUSEDOPS_WHEEL_PLATFORM="$platform" \
  "$PYTHON" -m pip wheel -q --no-deps --no-build-isolation -w "$stage/dist" "$stage"
cp "$stage"/dist/fusedops-*-cp39-abi3-"$platform".whl "$out/"
ls -la "$out"/fusedops-*-cp39-abi3-"$platform".whl
