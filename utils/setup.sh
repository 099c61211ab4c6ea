#!/usr/bin/env bash
#===- utils/setup.sh - install what fusedops needs on Debian 12 -----------===#
#
# Installs, only where missing: LLVM/MLIR 22 from Debian, the C++ toolchain
# pieces (ninja, cmake, GoogleTest) and the Python test tools (PyTorch
# included). Safe to run again; it does nothing when everything is there.
# Sourced or run by the other utils/ scripts.
#
#===----------------------------------------------------------------------===#
set -euo pipefail

need_apt=()
[ -f /usr/lib/llvm-22/lib/cmake/mlir/MLIRConfig.cmake ] ||
  need_apt+=(llvm-22-dev libmlir-22-dev)
[ -x /usr/lib/llvm-22/bin/mlir-opt ] || need_apt+=(mlir-22-tools)
[ -x /usr/lib/llvm-22/bin/FileCheck ] || need_apt+=(llvm-22-tools)
command -v ninja >/dev/null || need_apt+=(ninja-build)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v g++ >/dev/null || need_apt+=(g++)
# The wheel's standalone libraries (utils/build-wheel.sh) link zlib and zstd
# from their archives.
[ -f /usr/lib/x86_64-linux-gnu/libzstd.a ] || need_apt+=(libzstd-dev)
[ -f /usr/lib/x86_64-linux-gnu/libz.a ] || need_apt+=(zlib1g-dev)
# ...and link it with lld (identical code folding keeps it under 60 MB).
command -v ld.lld >/dev/null || need_apt+=(lld)
[ -f /usr/lib/x86_64-linux-gnu/cmake/GTest/GTestConfig.cmake ] ||
  [ -f /usr/lib/cmake/GTest/GTestConfig.cmake ] || need_apt+=(libgtest-dev)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
    "${need_apt[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import numpy, pytest, setuptools, wheel" 2>/dev/null; then
  echo "setup: installing numpy, pytest, setuptools and wheel for $PYTHON"
  "$PYTHON" -m pip install -q numpy pytest setuptools wheel
fi
# ruff: the Python lint and format check (README, "Style"; not part of the
# test command).
if ! "$PYTHON" -m ruff --version > /dev/null 2>&1; then
  echo "setup: installing ruff for $PYTHON"
  "$PYTHON" -m pip install -q ruff
fi
# PyTorch for the PyTorch API's tests (its CPU-side checks run without a GPU;
# about a minute from PyPI), and transformers, which the Hugging Face
# compatibility tests compare against. FUSEDOPS_NO_TORCH=1 skips both: those
# tests then report themselves skipped.
if [ "${FUSEDOPS_NO_TORCH:-0}" != 1 ]; then
  for package in torch transformers; do
    if ! "$PYTHON" -c "import $package" 2>/dev/null; then
      echo "setup: installing $package for $PYTHON (FUSEDOPS_NO_TORCH=1 skips it)"
      "$PYTHON" -m pip install -q "$package"
    fi
  done
fi
