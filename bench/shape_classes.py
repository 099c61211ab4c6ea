#!/usr/bin/env python3
"""Kernels per row-count class against kernels per exact shape (python bench/shape_classes.py).

The PyTorch API compiles one kernel with dynamic rows per class of row counts (16, 64, 256, ...
rows), tuned for the class's largest, and a kernel of its own for a steady shape (3 calls, still
called a second after its first: docs/perf/shape-classes.md). This times, in one process on one card, each op at the shapes of
the benchmark reports through the class kernel (``FUSEDOPS_SHAPES=classes``: what a shape gets
on its first two calls) and through the kernel compiled for the exact shape
(``FUSEDOPS_SHAPES=exact``: what ``auto`` gives a steady shape), with the same timer (L2
flushed before each call; three rounds of both, interleaved, the median of each), and prints
``case exact_ms classes_ms ratio`` (ratio = exact / classes: below 1 means the class kernel is
slower). ``--out DIR`` writes shape-classes.md and .json there. Also: the compile count of a
generate loop over lengths 1 ... 4096 and the first-call time of a new shape in a compiled class.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import torch

import fusedops
from fusedops import _native, torch_ops
from fusedops.bench.cases import rel_err, time_ms


def cases() -> dict:
    g = torch.Generator(device="cuda").manual_seed(0)

    def rand(*shape, dtype=torch.bfloat16, scale=1.0):
        return (torch.randn(*shape, device="cuda", generator=g) * scale).to(dtype)

    def rope(seq, dim):
        a = torch.outer(
            torch.arange(seq, device="cuda", dtype=torch.float32),
            torch.rand(dim // 2, device="cuda", generator=g),
        )
        return torch.cat([a.cos()] * 2, -1), torch.cat([a.sin()] * 2, -1)

    out = {}
    for m, k, n in (
        (16384, 4096, 11264),
        (4096, 4096, 11008),
        (100, 4096, 11008),
        (16, 4096, 11008),
        (1, 4096, 11008),
    ):
        x, wg, wu = rand(m, k), rand(n, k, scale=k**-0.5), rand(n, k, scale=k**-0.5)
        out[f"gated_mlp bf16 {m}x{k}->{n}"] = lambda x=x, wg=wg, wu=wu: fusedops.fused_gated_mlp(
            x, wg, wu
        )
    for m, k, n in ((4096, 4096, 4096), (8192, 8192, 8192), (100, 4096, 4096), (16, 4096, 4096)):
        qa, sa = fusedops.quantize_fp8(rand(m, k), granularity="row")
        qb, sb = fusedops.quantize_fp8(rand(n, k), granularity="row")
        out[f"fp8_gemm row {m}x{k}x{n}"] = lambda qa=qa, qb=qb, sa=sa, sb=sb: fusedops.fp8_gemm(
            qa, qb, a_scale=sa, b_scale=sb, granularity="row"
        )
    for b, s, h in ((8, 2048, 4096), (1, 4096, 4096), (4, 2048, 4096), (1, 100, 4096)):
        x, w = rand(b, s, h), (1 + 0.1 * rand(h)).bfloat16()
        cos, sin = rope(max(s, 4096), 128)
        out[f"rmsnorm_rope bf16 {b}x{s}x{h}"] = lambda x=x, w=w, c=cos, s_=sin: (
            fusedops.fused_rmsnorm_rope(x, w, c, s_)
        )
    for m, k in ((4096, 4096), (8192, 8192), (100, 4096)):
        x = rand(m, k)
        out[f"quantize row {m}x{k}"] = lambda x=x: fusedops.quantize_fp8(x, granularity="row")
        out[f"quantize tensor {m}x{k}"] = lambda x=x: fusedops.quantize_fp8(x, granularity="tensor")
    return out


def run(mode: str, fn):
    """``fn`` timed through the kernels of ``mode``: the call tables and kernels are dropped,
    the compiled modules kept (so switching modes costs no compile after the first round)."""
    os.environ["FUSEDOPS_SHAPES"] = mode
    torch_ops._forget_kernels(keep_modules=True)
    result = fn()
    torch.cuda.synchronize()
    return time_ms(fn), result


def interleaved(fn, rounds: int = 3):
    """Median time of ``fn`` per mode over ``rounds`` rounds of (exact, classes), so that clock
    and thermal drift affect both alike; and each mode's last result."""
    import statistics

    times: dict[str, list[float]] = {"exact": [], "classes": []}
    results = {}
    for _ in range(rounds):
        for mode in times:
            ms, results[mode] = run(mode, fn)
            times[mode].append(ms)
    return {m: statistics.median(t) for m, t in times.items()}, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--cases", default="", help="only the cases whose name matches this")
    parser.add_argument("--no-loop", action="store_true", help="skip the generate loop")
    args = parser.parse_args()
    rows = []
    for name, fn in cases().items():
        if not re.search(args.cases, name):
            continue
        medians, results = interleaved(fn)
        exact_ms, exact = medians["exact"], results["exact"]
        classes_ms, classes = medians["classes"], results["classes"]
        first = exact[0] if isinstance(exact, tuple) else exact
        second = classes[0] if isinstance(classes, tuple) else classes
        diff = rel_err(second.float(), first.float()) if first.numel() else 0.0
        rows.append(
            {
                "case": name,
                "exact_ms": exact_ms,
                "classes_ms": classes_ms,
                "ratio": exact_ms / classes_ms,
                "rel_diff": diff,
            }
        )
        print(
            f"{name:40s} exact {exact_ms:8.4f} ms  classes {classes_ms:8.4f} ms  "
            f"ratio {exact_ms / classes_ms:5.2f}  diff {diff:.1e}",
            flush=True,
        )

    if args.no_loop:
        return
    # A generate loop: every length 1 ... 4096 through the gated MLP (small weights).
    os.environ["FUSEDOPS_SHAPES"] = "classes"
    torch_ops._forget_kernels()
    compiled = []
    real = _native.compile_module

    def counting(source, **kwargs):
        compiled.append(source)
        return real(source, **kwargs)

    _native.compile_module = counting
    wg = torch.randn(512, 1024, device="cuda").bfloat16()
    started = time.perf_counter()
    firsts = []
    for m in range(1, 4097):
        x = torch.randn(m, 1024, device="cuda").bfloat16()
        before = len(compiled)
        t = time.perf_counter()
        fusedops.fused_gated_mlp(x, wg, wg)
        if len(compiled) == before:
            firsts.append(time.perf_counter() - t)
    torch.cuda.synchronize()
    loop = {
        "lengths": 4096,
        "compiles": len(compiled),
        "seconds": time.perf_counter() - started,
        "first_call_of_new_shape_ms_median": 1e3 * sorted(firsts)[len(firsts) // 2],
    }
    _native.compile_module = real
    print(json.dumps(loop))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "shape-classes.json").write_text(
            json.dumps({"cases": rows, "loop": loop}, indent=1)
        )
        lines = [
            f"# Class kernels vs exact-shape kernels ({torch.cuda.get_device_name()})",
            "",
            "| case | exact ms | classes ms | exact/classes | rel. diff |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['case']} | {r['exact_ms']:.4f} | {r['classes_ms']:.4f} | "
            f"{r['ratio']:.2f} | {r['rel_diff']:.1e} |"
            for r in rows
        ]
        lines += [
            "",
            f"Generate loop (gated MLP, M = 1 ... 4096): {loop['compiles']} compiles, "
            f"{loop['seconds']:.1f} s in all; a new shape of a compiled class: "
            f"{loop['first_call_of_new_shape_ms_median']:.2f} ms (median).",
        ]
        (args.out / "shape-classes.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
