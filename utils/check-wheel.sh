#!/usr/bin/env bash
#===- utils/check-wheel.sh - build the wheel and use it as a user would ---===#
#
# Builds the self-contained wheel (utils/build-wheel.sh checks its libraries:
# nothing needed beyond glibc, RUNPATH $ORIGIN, only the C API exported),
# installs it alone into a fresh virtual environment that sees the system's
# packages (PyTorch, numpy) with no LD_LIBRARY_PATH and no
# FUSEDOPS_LIBRARY_DIR, and compiles a gated MLP with it (PTX for sm_90a, a
# cubin for sm_80 where ptxas is found). utils/run-tests.sh runs it last.
#
#===----------------------------------------------------------------------===#
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
dist=$(mktemp -d)
venv=$(mktemp -d)
trap 'rm -rf "$dist" "$venv"' EXIT

"$root/utils/build-wheel.sh" "$dist"
wheel=$(ls "$dist"/fusedops-*.whl)
case "$(basename "$wheel")" in
  fusedops-*-cp39-abi3-manylinux_2_*_x86_64.whl) ;;
  *) echo "check-wheel: unexpected wheel name $(basename "$wheel")" >&2; exit 1 ;;
esac
echo "wheel: $(basename "$wheel"), $(du -h "$wheel" | cut -f1)"

"$PYTHON" -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install -q --no-deps --no-index "$wheel"
cd "$venv"  # away from the source tree's python/
env -u LD_LIBRARY_PATH -u FUSEDOPS_LIBRARY_DIR "$venv/bin/python" - <<'PY'
import os
import fusedops
from fusedops import _codegen, _native

lib = _native.library_dir()
assert str(lib).startswith(os.path.dirname(fusedops.__file__)), lib
source, _ = _codegen.gated_mlp_source([4, 16, 128], [256, 128], "bf16", activation="silu")
ptx = _native.compile_module(source, chip="sm_90a", fmt="isa")
assert b"wgmma.mma_async" in ptx.kernel_image and ptx.launch_plan("kernel")
print(f"installed wheel: {fusedops.__file__}; {_native.compiler_version()}")
print(f"  sm_90a PTX: {len(ptx.kernel_image)} bytes, with a launch plan")
if "ptxas none" not in _native.compiler_version():
    cubin = _native.compile_module(source, chip="sm_80", fmt="bin")
    assert cubin.kernel_image[:4] == b"\x7fELF"
    print(f"  sm_80 cubin: {len(cubin.kernel_image)} bytes")
PY
# Without a CUDA toolkit (PyTorch from pip only): Triton's ptxas and
# libdevice, where Triton is installed.
if "$venv/bin/python" -c "import triton" 2>/dev/null; then
  env -u LD_LIBRARY_PATH -u FUSEDOPS_LIBRARY_DIR CUDA_HOME=/nonexistent \
    FUSEDOPS_CACHE_DIR="$venv/cache" "$venv/bin/python" - <<'PY'
from fusedops import _codegen, _native

toolkit = _native.default_toolkit()
assert toolkit and "toolkit" in toolkit, toolkit
source, _ = _codegen.gated_mlp_source([4, 16, 128], [256, 128], "bf16", activation="silu")
fmt = _native.jit_format("sm_90a")
module = _native.compile_module(source, chip="sm_90a", fmt=fmt)
print(f"  without a CUDA toolkit: {fmt} for sm_90a through {toolkit}: "
      f"{len(module.kernel_image)} bytes")
PY
fi
