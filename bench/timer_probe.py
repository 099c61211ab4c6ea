#!/usr/bin/env python3
"""What the decode time at M = 1 measures (python bench/timer_probe.py).

Gated MLP decode at M = 1 measured 70-72 us in runs where it was the first case of the process
and 53 us in a run where it came after a minute of large GEMMs (docs/perf/gemm-engine.md v8).
This times the same call (and eager, and FP8 row at M = 1) three ways in one process:
fusedops.bench.cases.time_ms first thing (cold), the same after 2 s of sustained GEMM load
(hot), and back-to-back calls without the L2 flush or a synchronization between them (the
kernel's throughput, no host gaps: 180 MB of weights do not fit the 50 MB L2).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

import fusedops
from fusedops.bench.cases import rel_err, time_ms

K, N = 4096, 11008


def back_to_back_us(fn, calls: int = 200) -> float:
    fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        fn()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / calls * 1e3


def run(m: int, tag: str) -> None:
    print(f"--- M = {m}, {tag}", flush=True)
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(m, K, device="cuda", dtype=torch.bfloat16, generator=g)
    wg = torch.randn(N, K, device="cuda", dtype=torch.bfloat16, generator=g) * K**-0.5
    wu = torch.randn(N, K, device="cuda", dtype=torch.bfloat16, generator=g) * K**-0.5
    qx, sx = fusedops.quantize_fp8(x, granularity="row")
    qw, sw = fusedops.quantize_fp8(wg, granularity="row")
    ref = F.silu(x.double() @ wg.double().T) * (x.double() @ wu.double().T)
    cases = {
        "fused_gated_mlp": lambda: fusedops.fused_gated_mlp(x, wg, wu, "silu"),
        "eager": lambda: F.silu(x @ wg.T) * (x @ wu.T),
        "fp8_gemm row": lambda: fusedops.fp8_gemm(
            qx, qw, a_scale=sx, b_scale=sw, granularity="row"
        ),
    }
    print(f"error of fused_gated_mlp vs float64: {rel_err(cases['fused_gated_mlp'](), ref):.3g}")
    for label, fn in cases.items():
        print(f"cold  {label}: {time_ms(fn, repeat=30) * 1e3:.1f} us (time_ms)", flush=True)
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    t = time.time()
    while time.time() - t < 1.0:
        a @ a
        torch.cuda.synchronize()
    for label, fn in cases.items():
        print(f"hot   {label}: {time_ms(fn, repeat=30) * 1e3:.1f} us (time_ms)", flush=True)
    for label, fn in cases.items():
        print(f"b2b   {label}: {back_to_back_us(fn):.1f} us (back to back, no flush)", flush=True)
    for label, fn in cases.items():
        print(f"again {label}: {time_ms(fn, repeat=30) * 1e3:.1f} us (time_ms)", flush=True)


def main() -> None:
    # M = 1 with fresh allocations, then M = 16, then M = 1 again with the weights placed in
    # memory the allocator reuses (a 4 GB tensor allocated and freed first).
    run(1, "first in the process")
    run(16, "second")
    junk = torch.empty(4 << 30, dtype=torch.uint8, device="cuda")
    del junk
    run(1, "after a 4 GB allocation was freed")


if __name__ == "__main__":
    main()
