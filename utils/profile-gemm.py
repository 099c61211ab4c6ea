#!/usr/bin/env python3
"""One call of each GEMM op at issue 10's shapes, for a profiler to look at.

    ncu --clock-control none --set full --profile-from-start off python3 utils/profile-gemm.py \
        [CASE...]

CASE: ``mlp`` (gated MLP bf16 16384×4096→11264), ``mlp8192`` (8192×8192→28672) and
``compiled-mlp8192`` (its baseline: torch.compile of the unfused expression, cuBLAS's GEMMs and
an elementwise kernel), ``fp8`` (FP8 4096³ tensor scales), ``fp8row``
(4096³ row scales), ``scaled-mm`` (the baseline: ``torch._scaled_mm`` on the ``fp8`` case's
inputs), ``mlp-decode`` (gated MLP bf16 M = 64, 4096→11008), ``mlp-decode1`` (the same at M = 1),
``fp8-decode`` (FP8 row M = 16, 4096→11008), ``fp8-decode1`` (the same at M = 1),
``scaled-mm-decode1`` (``torch._scaled_mm`` on row-scaled M = 1 inputs); default ``mlp fp8``.
Each case makes its inputs, then calls the op twice: a compile and warm-up, then the call to
profile, alone between ``cudaProfilerStart`` and ``cudaProfilerStop`` (ncu's
``--profile-from-start off`` then sees its kernels only). Prints nothing. ``FUSEDOPS_SHAPES=exact``
profiles the exact-shape kernel (the one a steady shape gets) in place of the rows class's. A
``#fusedops.tile<...>`` argument pins the GEMM tile of the cases after it (``-`` for the
compiler's pick again).
"""

import contextlib
import sys

import torch

import fusedops
from fusedops.torch_ops import _tuning


def gated(m: int, n: int, k: int):
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    wg = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * k**-0.5
    wu = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * k**-0.5
    return lambda: fusedops.fused_gated_mlp(x, wg, wu, "silu")


def compiled_mlp(m: int, n: int, k: int):
    """The baseline of the gated MLP: torch.compile of silu(x @ Wg.T) * (x @ Wu.T)."""
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    wg = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * k**-0.5
    wu = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * k**-0.5
    fn = torch.compile(lambda: torch.nn.functional.silu(x @ wg.T) * (x @ wu.T))
    return fn


def fp8(m: int, n: int, k: int, granularity: str):
    qa, sa = fusedops.quantize_fp8(
        torch.randn(m, k, device="cuda", dtype=torch.bfloat16), granularity=granularity
    )
    qb, sb = fusedops.quantize_fp8(
        torch.randn(n, k, device="cuda", dtype=torch.bfloat16), granularity=granularity
    )
    return lambda: fusedops.fp8_gemm(qa, qb, a_scale=sa, b_scale=sb, granularity=granularity)


def scaled_mm(m: int, n: int, k: int, granularity: str = "tensor"):
    qa, sa = fusedops.quantize_fp8(
        torch.randn(m, k, device="cuda", dtype=torch.bfloat16), granularity=granularity
    )
    qb, sb = fusedops.quantize_fp8(
        torch.randn(n, k, device="cuda", dtype=torch.bfloat16), granularity=granularity
    )
    qbt = qb.T
    if granularity == "row":
        sa, sb = sa.reshape(-1, 1), sb.reshape(1, -1)
    return lambda: torch._scaled_mm(qa, qbt, scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16)


CASES = {
    "mlp": lambda: gated(16384, 11264, 4096),
    "mlp8192": lambda: gated(8192, 28672, 8192),
    "compiled-mlp8192": lambda: compiled_mlp(8192, 28672, 8192),
    "fp8": lambda: fp8(4096, 4096, 4096, "tensor"),
    "fp8row": lambda: fp8(4096, 4096, 4096, "row"),
    "scaled-mm": lambda: scaled_mm(4096, 4096, 4096),
    "mlp-decode": lambda: gated(64, 11008, 4096),
    "mlp-decode1": lambda: gated(1, 11008, 4096),
    "fp8-decode": lambda: fp8(16, 11008, 4096, "row"),
    "fp8-decode1": lambda: fp8(1, 11008, 4096, "row"),
    "scaled-mm-decode1": lambda: scaled_mm(1, 11008, 4096, "row"),
}

args = sys.argv[1:] or ["mlp", "fp8"]
for name in args:
    if name not in CASES and name != "-" and not name.startswith("#fusedops.tile<"):
        sys.exit(f"profile-gemm: unknown case {name!r}; one of {', '.join(CASES)}")
tile = None
for name in args:
    if name == "-" or name.startswith("#fusedops.tile<"):
        tile = None if name == "-" else name
        continue
    call = CASES[name]()  # inputs (quantized with the compiler's own tiles)
    with _tuning(tile) if tile else contextlib.nullcontext():
        call()
        torch.cuda.synchronize()
        torch.cuda.profiler.start()  # ncu --profile-from-start off: this call's kernels only
        call()
        torch.cuda.synchronize()
        torch.cuda.profiler.stop()
