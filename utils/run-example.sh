#!/usr/bin/env bash
#===- utils/run-example.sh - the main job ---------------------------------===#
#
# Installs what is missing, builds the tools and runs them on the bundled
# example (examples/llama_block.mlir): parse and verify, round trip through
# the generic form, bufferize, then compile to PTX and cubin for sm_90a and
# sm_80. Where a GPU is present it runs the block on it
# (examples/run_llama_block.mlir, fusedops-runner) and checks the results.
# Prints what it did at each step.
#
#===----------------------------------------------------------------------===#
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
example=${1:-$root/examples/llama_block.mlir}
out=$build/example
opt=$build/bin/fusedops-opt

"$root/utils/setup.sh"
"$root/utils/build.sh" fusedops-opt fusedops-compile fusedops-runner
mkdir -p "$out"

step() { printf '\n== %s\n' "$*"; }

step "parse and verify $example"
"$opt" "$example" -o "$out/pretty.mlir"
grep -o 'fusedops\.[a-z_0-9]*' "$out/pretty.mlir" | sort | uniq -c |
  awk '{printf "   %-24s x%s\n", $2, $1}'

step "round trip: pretty -> generic -> pretty"
"$opt" "$out/pretty.mlir" --mlir-print-op-generic -o "$out/generic.mlir"
"$opt" "$out/generic.mlir" -o "$out/pretty2.mlir"
if cmp -s "$out/pretty.mlir" "$out/pretty2.mlir"; then
  echo "   identical after the round trip"
else
  echo "   round trip changed the IR:"; diff "$out/pretty.mlir" "$out/pretty2.mlir"
  exit 1
fi

step "canonicalize and bufferize (one-shot-bufferize)"
"$opt" "$out/pretty.mlir" -canonicalize \
  --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" \
  -o "$out/buffers.mlir"
echo "   buffer form written to $out/buffers.mlir:"
grep -E 'fusedops\.|memref.alloc' "$out/buffers.mlir" | sed 's/^ */     /' | cut -c1-140

for chip in sm_90a sm_80; do
  step "compile to PTX and cubin for $chip (fusedops-compile)"
  "$build/bin/fusedops-compile" "$example" --chip=$chip \
    --ptx="$out/llama_block.$chip.ptx" --cubin="$out/llama_block.$chip.cubin" \
    -o "$out/llama_block.$chip.llvm.mlir" | sed 's/^/   /'
  printf '   kernels: %s\n' "$(grep -o '^.visible .entry [a-z_0-9]*' \
    "$out/llama_block.$chip.ptx" | awk '{print $3}' | tr '\n' ' ')"
done

step "run on the GPU (examples/run_llama_block.mlir, fusedops-runner)"
if python3 - <<'PY'
import ctypes, sys
try:
    cuda = ctypes.CDLL("libcuda.so.1")
except OSError:
    sys.exit(1)
count = ctypes.c_int(0)
sys.exit(0 if cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0
         and count.value > 0 else 1)
PY
then
  libs=/usr/lib/llvm-22/lib
  "$build/bin/fusedops-runner" "$root/examples/run_llama_block.mlir" -e main \
    --entry-point-result=void \
    --shared-libs=$libs/libmlir_runner_utils.so.22.1,$libs/libmlir_c_runner_utils.so.22.1 \
    | tee "$out/run.txt" | sed 's/^/   /'
  # q_rot must be exactly 1 and h = silu(8)*8 = 63.98, 64 in bf16.
  if grep -q 'nan' "$out/run.txt" ||
     [ "$(grep -c '^\[\[1, \+1\|^ \[1, \+1' "$out/run.txt")" -lt 1 ]; then
    echo "   unexpected results: see $out/run.txt"; exit 1
  fi
  echo "   results as expected (q_rot = 1, h = 64)"
else
  echo "   no GPU here: compiled, not run (the device check runs it: utils/device-check.sh example)"
fi

step "done: outputs in $out"
