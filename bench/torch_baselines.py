"""cuBLAS baselines for the fusedops benchmarks, through PyTorch.

Run on the GPU machine in the same call as ``fusedops-bench`` so that both
sets of numbers come from one card. For each gated-MLP shape it times

* ``two_matmuls``: ``torch.matmul`` of x with Wg and with Wu (cuBLAS), the
  tensor-core work the fused kernel does, and
* ``eager_mlp``: ``silu(x @ Wg.T) * (x @ Wu.T)`` in PyTorch eager,

with CUDA events (median of 20 after 5 warm-ups) and prints JSON lines with
TFLOP/s counted as 4·M·N·K flops.
"""

from __future__ import annotations

import json
import statistics
import sys

import torch

SHAPES = [
    ("f16_llama7b_4096x11008x4096", torch.float16, 4096, 11008, 4096),
    ("bf16_llama3_8b_4096x14336x4096", torch.bfloat16, 4096, 14336, 4096),
    ("f16_decode_64x11008x4096", torch.float16, 64, 11008, 4096),
]


def time_ms(fn, warmup: int = 5, repeat: int = 20) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def main() -> int:
    device = torch.cuda.get_device_name()
    for name, dtype, m, n, k in SHAPES:
        x = torch.randn(m, k, device="cuda", dtype=dtype)
        wg = torch.randn(n, k, device="cuda", dtype=dtype) * 0.03
        wu = torch.randn(n, k, device="cuda", dtype=dtype) * 0.03
        flops = 4.0 * m * n * k
        two = time_ms(lambda: (torch.matmul(x, wg.t()), torch.matmul(x, wu.t())))
        eager = time_ms(lambda: torch.nn.functional.silu(x @ wg.t()) * (x @ wu.t()))
        for variant, ms in (("two_matmuls", two), ("eager_mlp", eager)):
            print(json.dumps({"device": device, "shape": name, "variant": variant,
                              "ms": round(ms, 4),
                              "TFLOP/s": round(flops / ms / 1e9, 1)}))
    fp8_baselines(device)
    return 0


FP8_SHAPES = [
    ("4096x4096x4096", 4096, 4096, 4096),
    ("4096x11008x4096", 4096, 11008, 4096),
]


def fp8_baselines(device: str) -> None:
    """cuBLASLt FP8 (torch._scaled_mm, e4m3, bf16 out) and f16 cuBLAS."""
    for name, m, n, k in FP8_SHAPES:
        flops = 2.0 * m * n * k
        a = torch.randn(m, k, device="cuda").to(torch.float8_e4m3fn)
        b = torch.randn(n, k, device="cuda").to(torch.float8_e4m3fn)
        one = torch.ones((), device="cuda")
        row_a = torch.ones(m, 1, device="cuda")
        row_b = torch.ones(1, n, device="cuda")
        a16 = a.to(torch.float16)
        b16 = b.to(torch.float16)
        runs = {
            "scaled_mm_tensor": lambda: torch._scaled_mm(
                a, b.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16),
            "scaled_mm_row": lambda: torch._scaled_mm(
                a, b.t(), scale_a=row_a, scale_b=row_b, out_dtype=torch.bfloat16),
            "matmul_f16": lambda: torch.matmul(a16, b16.t()),
        }
        for variant, fn in runs.items():
            try:
                ms = time_ms(fn)
            except RuntimeError as error:  # a variant this build lacks
                print(json.dumps({"device": device, "shape": name, "variant": variant,
                                  "error": str(error).splitlines()[0]}))
                continue
            print(json.dumps({"device": device, "shape": name, "variant": variant,
                              "ms": round(ms, 4), "TFLOP/s": round(flops / ms / 1e9, 1)}))


if __name__ == "__main__":
    sys.exit(main())
