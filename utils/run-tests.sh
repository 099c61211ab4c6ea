#!/usr/bin/env bash
#===- utils/run-tests.sh - every test -------------------------------------===#
#
# Installs what is missing, builds, then runs the lit and GoogleTest suites
# (through ctest) and the Python tests, and checks the self-contained wheel
# (utils/check-wheel.sh). GPU tests skip, visibly, on a machine without a
# GPU. `.ci/run` calls exactly this.
#
#===----------------------------------------------------------------------===#
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}

"$root/utils/setup.sh"
"$root/utils/build.sh" all mlir-doc

echo "== ctest: lit and GoogleTest"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"

echo "== pytest: python/"
FUSEDOPS_LIBRARY_DIR="$build/lib" "${PYTHON:-python3}" -m pytest -q -rs "$root/python/tests"

echo "== wheel: self-contained, installed alone into a fresh environment"
"$root/utils/check-wheel.sh"
