#!/usr/bin/env bash
#===- utils/run-example.sh - the main job ---------------------------------===#
#
# Installs what is missing, builds fusedops-opt and runs it on the bundled
# example (examples/llama_block.mlir): parse and verify, round trip through
# the generic form, canonicalize, and bufferize to the buffer form that the
# GPU lowering consumes. Prints what it did at each step.
#
#===----------------------------------------------------------------------===#
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
example=${1:-$root/examples/llama_block.mlir}
out=$build/example
opt=$build/bin/fusedops-opt

"$root/utils/setup.sh"
"$root/utils/build.sh" fusedops-opt
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

step "done: outputs in $out"
