#!/usr/bin/env bash
#===- utils/check-wheel-gpu.sh - the wheel alone on a GPU machine ---------===#
#
# Usage (on a machine with the NVIDIA driver and PyTorch, without MLIR or
# Debian's LLVM): utils/check-wheel-gpu.sh WHEEL [DIR of pytest wheels]
#
# Installs only WHEEL into a fresh virtual environment that sees the
# system's packages (PyTorch, numpy), then, with no LD_LIBRARY_PATH, no
# FUSEDOPS_LIBRARY_DIR and away from the source tree: says where fusedops
# and its libraries come from and what they need; times the first call of
# the README's gated MLP from an empty kernel cache with ptxas and with the
# driver's PTX JIT (FUSEDOPS_NO_PTXAS=1, the driver's own cache off); runs
# the Python test suite (python/tests, copied) against the installed
# package. Logs go to $OUT (default /tmp/fusedops-wheel-gpu). With VENV set,
# the environment is made there and kept (to benchmark the wheel after).
#
#===----------------------------------------------------------------------===#
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
wheel=$(realpath "$1")
whl=$(realpath "${2:-$root/.device/whl}")
out=${OUT:-/tmp/fusedops-wheel-gpu}
mkdir -p "$out"
venv=${VENV:-$(mktemp -d)}
work=$(mktemp -d)
# Where the venv module has no pip (Debian/Ubuntu without python3-venv's
# ensurepip), the system's pip installs into the environment.
if python3 -m venv --system-site-packages "$venv" 2>/dev/null; then
  pip=("$venv/bin/python" -m pip)
else
  rm -rf "$venv" && python3 -m venv --system-site-packages --without-pip "$venv" || exit 1
  pip=(python3 -m pip --python "$venv/bin/python")
fi
# --system-site-packages sees the base interpreter's packages; where
# python3 is itself a virtual environment (PyTorch installed in it), a .pth
# file adds its site-packages after the new environment's own.
site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
python3 -c "import site, sys; print('\n'.join(p for p in site.getsitepackages() if p))" \
  > "$site/zz-outer-environment.pth"
"${pip[@]}" install -q --no-deps --no-index "$wheel" || exit 1
"$venv/bin/python" -c "import pytest" 2>/dev/null ||
  "${pip[@]}" install -q --no-deps --no-index "$whl"/*.whl
# The tests at python/tests of a folder that has examples/ (one test compiles
# the bundled example) but not the package's source.
mkdir -p "$work/python"
cp -r "$root/python/tests" "$work/python/tests"
cp -r "$root/examples" "$work/examples"
cd "$work"
run() { env -u LD_LIBRARY_PATH -u FUSEDOPS_LIBRARY_DIR -u PYTHONPATH "$@"; }

run "$venv/bin/python" - <<'PY' 2>&1 | tee "$out/installed.log"
import os, subprocess, fusedops, torch
from fusedops import _native
lib = _native.library_dir()
print("fusedops from", os.path.dirname(fusedops.__file__))
print("libraries from", lib, "|", _native.compiler_version())
print("device:", torch.cuda.get_device_name(), "| torch", torch.__version__)
for so in sorted(os.listdir(lib)):
    needed = [l.split()[0] for l in subprocess.run(["ldd", os.path.join(lib, so)],
              capture_output=True, text=True).stdout.splitlines() if "=>" in l]
    print(f"  {so}: ldd {' '.join(needed)}")
PY

for mode in ptxas driver-jit; do
  extra=()
  [ "$mode" = driver-jit ] && extra=(FUSEDOPS_NO_PTXAS=1 CUDA_CACHE_DISABLE=1)
  run env "${extra[@]}" FUSEDOPS_CACHE_DIR="$work/cache-$mode" "$venv/bin/python" - "$mode" <<'PY' 2>&1 | tee -a "$out/first-call.log"
import sys, time, torch, fusedops
from fusedops import _native
x = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
wg = torch.randn(11008, 4096, device="cuda", dtype=torch.bfloat16) * 4096**-0.5
wu = torch.randn(11008, 4096, device="cuda", dtype=torch.bfloat16) * 4096**-0.5
torch.cuda.synchronize()
times = []
for _ in range(2):
    t = time.perf_counter()
    h = fusedops.fused_gated_mlp(x, wg, wu, activation="silu")
    torch.cuda.synchronize()
    times.append(time.perf_counter() - t)
ref = torch.nn.functional.silu(x.double() @ wg.double().T) * (x.double() @ wu.double().T)
err = float((h.double() - ref).norm() / ref.norm())
print(f"{sys.argv[1]}: format {_native.jit_format('sm_90a')}, first call {times[0]*1e3:.0f} ms "
      f"(compile + load), second {times[1]*1e3:.2f} ms; error vs float64 {err:.2e}")
PY
done

# test_wheel_contents builds a wheel from the package's source, which is not
# here: it runs in the source tree (utils/run-tests.sh).
run timeout "${PYTEST_TIMEOUT:-600}" "$venv/bin/python" -m pytest -q -rs -p no:cacheprovider \
  --deselect python/tests/test_packaging.py::test_wheel_contents \
  python/tests/test_documented_examples.py python/tests 2>&1 | tee "$out/pytest.log" | tail -25
