#!/usr/bin/env python3
"""Pins GEMM tiles through a tuning cache, for A/B runs of tiles on the path users take.

    python3 utils/pin-tiles.py FILE OP:MxKxN[:GRANULARITY]:TILE ...
    FUSEDOPS_TUNING_CACHE=FILE python3 bench/gemm_engine.py decode

OP is ``gated_mlp`` (bf16) or ``fp8_gemm`` (e4m3, GRANULARITY ``row`` by default); TILE a
``#fusedops.tile<...>`` text. Each problem is called once to learn the sources of its kernels
(its rows class's and its exact shape's, as ``fusedops.tune`` does), and TILE is recorded for
both in FILE with a nominal time of 1 µs: later processes that read FILE build those kernels
with TILE, and their calls keep the fast path (``fusedops.torch_ops._tuning``, which pins tiles
within one process, sends every call through the slow path: FP8 decode kernels of 25 µs timed
at 35-80 µs pinned on an H200).
"""

import sys
from pathlib import Path

import torch

import fusedops
from fusedops import tune
from fusedops.torch_ops import _target, _tuning


def problem(op: str, m: int, k: int, n: int, granularity: str):
    if op == "gated_mlp":
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        wg = torch.randn(n, k, device="cuda", dtype=torch.bfloat16)
        return lambda: fusedops.fused_gated_mlp(x, wg, wg, "silu")
    qa, sa = fusedops.quantize_fp8(torch.randn(m, k, device="cuda"), granularity=granularity)
    qb, sb = fusedops.quantize_fp8(torch.randn(n, k, device="cuda"), granularity=granularity)
    return lambda: fusedops.fp8_gemm(qa, qb, a_scale=sa, b_scale=sb, granularity=granularity)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.exit(__doc__)
    path = Path(argv[0])
    chip, _ = _target(torch.cuda.current_device())
    for spec in argv[1:]:
        parts = spec.split(":", 3) if spec.count(":") >= 3 else spec.split(":", 2)
        if len(parts) < 3 or parts[0] not in ("gated_mlp", "fp8_gemm"):
            sys.exit(f"pin-tiles: expected OP:MxKxN[:GRANULARITY]:TILE, got {spec!r}")
        op, shape, tile = parts[0], parts[1], parts[-1]
        granularity = parts[2] if len(parts) == 4 else "row"
        m, k, n = (int(v) for v in shape.split("x"))
        call = problem(op, m, k, n, granularity)
        sources = set()
        for exact in (False, True):
            with _tuning(exact=exact) as seen:
                call()
            sources.update(seen.sources)
        for source in sorted(sources):
            warning = tune.record(
                path,
                source,
                chip=chip,
                tile=tile,
                microseconds=1.0,  # nominal: a pin, not a measurement
                candidates=1,
                driver=tune.driver_version(),
                device=torch.cuda.get_device_name(),
            )
            if warning:
                print(f"pin-tiles: {warning}", file=sys.stderr)
            got = tune.lookup(path, source, chip=chip)
            if got != tile:
                sys.exit(f"pin-tiles: {path} gives {got} for {op} {shape}, not {tile}")
        print(f"pin-tiles: {op} {shape}: {tile} ({len(sources)} kernels)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
