#!/usr/bin/env bash
#===- utils/device-check.sh - GPU checks on the lent GPU machine ----------===#
#
# Runs on the GPU machine (no MLIR, no network) what needs a GPU: the GPU
# GoogleTests, the integration lit tests (fusedops-runner), compute-sanitizer
# and the benchmarks, from binaries built here and carried in .device/:
#
#   ../shared/device/mlir-libs.sh fetch .device/mlir     # Debian's MLIR/LLVM libs
#   utils/device-check.sh --stage                        # copy binaries to .device/bin
#   (device) utils/device-check.sh [tests|lit|python|sanitize|bench|all]
#
# Results go to $OUT (the device tool's output folder) when set.
#
#===----------------------------------------------------------------------===#
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$root/.device/bin
out=${OUT:-$root/.device/out}

if [ "${1:-}" = "--stage" ]; then
  mkdir -p "$bin" "$root/.device/whl"
  build=${BUILD_DIR:-$root/build}
  cp "$build"/unittests/Conversion/FusedOpsToGPU/FusedOpsToGPUTests \
     "$build"/unittests/Runtime/FusedOpsRuntimeTests \
     "$build"/unittests/CAPI/FusedOpsCAPITests \
     "$build"/bench/fusedops-bench "$build"/lib/libFusedOpsRuntime.so \
     "$build"/lib/libFusedOpsCAPI.so "$build"/lib/_fastcall.abi3.so \
     "$build"/bin/fusedops-runner "$build"/bin/fusedops-opt \
     "$build"/bin/fusedops-compile \
     /usr/lib/llvm-22/bin/FileCheck /usr/lib/llvm-22/bin/not \
     /usr/lib/llvm-22/bin/count \
     /usr/lib/x86_64-linux-gnu/libbenchmark.so.1debian "$bin"/
  [ -n "$(ls "$root"/.device/whl/lit-*.whl 2>/dev/null)" ] ||
    python3 -m pip download -q --no-deps -d "$root/.device/whl" lit
  [ -n "$(ls "$root"/.device/whl/pytest-*.whl 2>/dev/null)" ] ||
    python3 -m pip download -q --no-deps -d "$root/.device/whl" \
      pytest pluggy iniconfig packaging
  du -sh "$root/.device"
  exit 0
fi

mkdir -p "$out"
. "$root/.device/mlir/unpack.sh"
export LD_LIBRARY_PATH=$bin:$LD_LIBRARY_PATH
mlir_lib=$root/.device/mlir/root/usr/lib/llvm-22/lib
what=${1:-all}

run_tests() {
  "$bin/FusedOpsRuntimeTests" >"$out/runtime-tests.log" 2>&1
  echo "runtime GoogleTests rc=$?"
  grep -E "FAILED|PASSED|SKIPPED" "$out/runtime-tests.log"
  "$bin/FusedOpsCAPITests" >"$out/capi-tests.log" 2>&1
  echo "compiler C API GoogleTests rc=$?"
  grep -E "FAILED|PASSED|SKIPPED|note" "$out/capi-tests.log"
  "$bin/FusedOpsToGPUTests" >"$out/gpu-tests.log" 2>&1
  echo "GPU GoogleTests rc=$?"
  grep -E "^\[ result|FAILED|PASSED|SKIPPED" "$out/gpu-tests.log"
}

run_lit() {
  python3 -m pip install -q --no-index --no-deps --target /tmp/fusedops-site \
    "$root"/.device/whl/lit-*.whl && export PYTHONPATH=/tmp/fusedops-site
  local exec_root=/tmp/fusedops-lit/test
  mkdir -p "$exec_root/Integration/GPU"
  cat >"$exec_root/lit.site.cfg.py" <<CFG
config.llvm_tools_dir = "$bin"
config.mlir_obj_dir = "/tmp/fusedops-lit"
config.mlir_lib_dir = "$mlir_lib"
config.fusedops_obj_root = "/tmp/fusedops-lit"
config.fusedops_tools_dir = "$bin"
config.fusedops_src_root = "$root"
import lit.llvm
lit.llvm.initialize(lit_config, config)
lit_config.load_config(config, "$root/test/lit.cfg.py")
CFG
  python3 -c 'import sys, lit.main; sys.argv[0] = "lit"; lit.main.main()' \
    -v "$exec_root/Integration" 2>&1 | tee "$out/lit.log" | tail -12
}

run_sanitize() {
  local filter='*masked_tail:*sm80_bf16_gptj*:*sm80_bf16_gelu:*bf16_silu_3x100x200:*f16_silu_3stages:*block_mixed*:*tensor_e5m2_bf16*:*row_e4m3_bf16_k200_sm90a:*block128_e5m2_f16_k4096_sm80:*tensor_e4m3_f32_k200_sm90a:*Graph*'
  for tool in memcheck racecheck; do
    compute-sanitizer --tool $tool "$bin/FusedOpsToGPUTests" \
      --gtest_filter="$filter" >"$out/$tool.log" 2>&1
    echo "$tool rc=$?"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED" "$out/$tool.log"
  done
}

run_bench() {
  "$bin/fusedops-bench" --benchmark_out="$out/bench.json" \
    --benchmark_out_format=json >"$out/bench.log" 2>&1
  echo "bench rc=$?"
  grep -E "manual_time|rror" "$out/bench.log" |
    sed -E 's/ +/ /g; s/bytes_per_second=[^ ]+ //' | cut -c1-160
  python3 "$root/bench/torch_baselines.py" | tee "$out/torch.jsonl"
}

run_example() {
  "$bin/fusedops-runner" "$root/examples/run_llama_block.mlir" -e main \
    --entry-point-result=void \
    --shared-libs=$mlir_lib/libmlir_runner_utils.so.22.1,$mlir_lib/libmlir_c_runner_utils.so.22.1 \
    2>&1 | tee "$out/example.txt"
  echo "example rc=$?"
}

# The Python package's tests (PyTorch API on the GPU) against the carried libraries.
run_python() {
  python3 -c 'import pytest' 2>/dev/null ||
    python3 -m pip install -q --no-index --no-deps --target /tmp/fusedops-pytest \
      "$root"/.device/whl/{pytest,pluggy,iniconfig,packaging}-*.whl
  PYTHONPATH=/tmp/fusedops-pytest${PYTHONPATH:+:$PYTHONPATH} FUSEDOPS_LIBRARY_DIR=$bin \
    python3 -m pytest -q -rs -p no:cacheprovider "$root/python/tests" \
    2>&1 | tee "$out/pytest.log" | tail -25
}

# Every GPU of the machine (issue 12; run it on a two-GPU machine): the
# runtime's device tests, fusedops-runner on GPU 1, the Python suite on GPU 0
# and again on GPU 1 (--device cuda:1), and examples/tensor_parallel.py under
# torchrun on two GPUs with NCCL (its report in $OUT/tp*.json).
run_devices() {
  nvidia-smi -L | tee "$out/gpus.txt"
  "$bin/FusedOpsRuntimeTests" >"$out/runtime-tests.log" 2>&1
  echo "runtime GoogleTests rc=$?"
  grep -E "FAILED|PASSED|SKIPPED" "$out/runtime-tests.log"
  "$bin/fusedops-runner" "$root/examples/run_llama_block.mlir" -e main \
    --device=1 --entry-point-result=void \
    --shared-libs=$mlir_lib/libmlir_runner_utils.so.22.1,$mlir_lib/libmlir_c_runner_utils.so.22.1 \
    >"$out/example-device1.txt" 2>&1
  echo "fusedops-runner --device=1 rc=$? ($(tail -1 "$out/example-device1.txt"))"
  python3 -c 'import pytest' 2>/dev/null ||
    python3 -m pip install -q --no-index --no-deps --target /tmp/fusedops-pytest \
      "$root"/.device/whl/{pytest,pluggy,iniconfig,packaging}-*.whl
  local env="PYTHONPATH=/tmp/fusedops-pytest:$root/python${PYTHONPATH:+:$PYTHONPATH} FUSEDOPS_LIBRARY_DIR=$bin FUSEDOPS_CACHE_DIR=/tmp/fusedops-kc"
  for device in cuda:0 cuda:1; do
    env $env timeout 280 python3 -m pytest -q -rs -p no:cacheprovider --device $device \
      "$root/python/tests" >"$out/pytest-$device.log" 2>&1
    echo "pytest --device $device rc=$? ($(tail -1 "$out/pytest-$device.log"))"
    grep -E "^FAILED|^ERROR" "$out/pytest-$device.log" | head -20
  done
  for extra in "" --fp8-down; do
    env $env timeout 200 python3 -m torch.distributed.run --nproc-per-node 2 \
      "$root/examples/tensor_parallel.py" $extra --report "$out/tp${extra}.json" \
      >"$out/tp${extra}.log" 2>&1
    echo "torchrun tensor_parallel.py $extra rc=$?"
    tail -3 "$out/tp${extra}.log"
  done
}

# The GEMM engine: its GPU tests, the SASS of its kernels (HGMMA/QGMMA present,
# no serialization), and bench/gemm_engine.py (issue 10's shapes and baselines).
run_gemm() {
  timeout 150 "$bin/FusedOpsToGPUTests" --gtest_filter="*GatedMlp*:*Fp8Gemm*" \
    >"$out/gemm-tests.log" 2>&1
  echo "GEMM GPU GoogleTests rc=$?"
  grep -E "^\[ result|FAILED|PASSED|SKIPPED" "$out/gemm-tests.log"
  "$bin/fusedops-compile" "$root/test/Pipelines/gemm_sm90a_ptx.mlir" --chip=sm_90a \
    --cubin=/tmp/gemm.cubin >/dev/null && cuobjdump --dump-sass /tmp/gemm.cubin \
    >"$out/gemm.sass" && grep -cE "HGMMA|QGMMA" "$out/gemm.sass"
  PYTHONPATH=$root/python FUSEDOPS_LIBRARY_DIR=$bin PYTHONUNBUFFERED=1 \
    timeout 300 python3 "$root/bench/gemm_engine.py" --out "$out" "$@"
}

# The memory-bound ops (issue 16): bench/memory_ops.py against same-byte copies
# and torch.compile, then one ncu profile of each case's kernels.
run_memory() {
  local py="PYTHONPATH=$root/python FUSEDOPS_LIBRARY_DIR=$bin PYTHONUNBUFFERED=1"
  env $py timeout 330 python3 "$root/bench/memory_ops.py" --out "$out" "$@"
  echo "memory_ops rc=$?"
  env $py timeout 200 ncu --clock-control none --csv --page details \
    --section SpeedOfLight --section LaunchStats --section Occupancy \
    --section WarpStateStats -k regex:'rmsnorm|quantize' -c 80 \
    python3 "$root/bench/memory_ops.py" --profile "$@" >"$out/ncu-memory.csv" 2>"$out/ncu.err"
  echo "ncu rc=$? ($(wc -l <"$out/ncu-memory.csv") lines)"
}

case "$what" in
  example) run_example ;;
  python) run_python ;;
  tests) run_tests ;;
  lit) run_lit ;;
  sanitize) run_sanitize ;;
  bench) run_bench ;;
  gemm) shift; run_gemm "$@" ;;
  memory) shift; run_memory "$@" ;;
  devices) run_devices ;;
  all) run_example; run_tests; run_lit; run_python; run_sanitize; run_bench ;;
  *) echo "usage: $0 [--stage|example|tests|lit|python|sanitize|bench|gemm|memory|devices|all]"; exit 2 ;;
esac
