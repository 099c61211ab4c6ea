#!/usr/bin/env python3
"""Tile sweep of the sm_90a GEMM ops at issue 10's large shapes (python bench/gemm_tiles.py).

For each shape: the baseline (torch.compile of the unfused gated MLP, or `torch._scaled_mm`), the
default pick, then every tile given (by default the cooperative tiles beside the ping-pong ones:
BM 64 with two MMA warpgroups taking tiles in turns), each checked against float64 first (a
wrong result is reported, never timed as a win) and timed with fusedops.bench.cases.time_ms
(L2 flushed, warm-up, median). A tile the compiler refuses is printed with its reason.
Writes gemm_tiles.json and gemm_tiles.md to --out.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F

import fusedops
from fusedops.bench.cases import rel_err, time_ms
from fusedops.errors import FusedOpsError
from fusedops.torch_ops import _tuning

torch._dynamo.config.cache_size_limit = 64


def tile(bm: int, bn: int, bk: int, warps: int, stages: int) -> str:
    return f"#fusedops.tile<block = [{bm}, {bn}, {bk}], warps = {warps}, stages = {stages}>"


# Cooperative (BM 128, two MMA warpgroups per tile) and ping-pong (BM 64, two warpgroups in turns).
TILES = {
    "gated_mlp": [tile(128, 128, 64, 8, s) for s in (4,)]
    + [tile(64, bn, 64, 8, s) for bn in (128, 96) for s in (4, 5, 6)],
    "fp8_gemm": [tile(128, 128, 128, 8, 5), tile(128, 256, 128, 8, 4)]
    + [tile(64, bn, 128, 8, s) for bn in (128, 256) for s in (4, 5, 6)],
}
SHAPES = {
    "gated_mlp": [(16384, 4096, 11264), (4096, 4096, 11008), (8192, 8192, 28672)],
    "fp8_gemm": [(4096, 4096, 4096), (8192, 8192, 8192), (16384, 4096, 11264)],
}


def problem(op: str, m: int, k: int, n: int, granularity: str):
    g = torch.Generator(device="cuda").manual_seed(m + n)
    if op == "gated_mlp":
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16, generator=g)
        wg = torch.randn(n, k, device="cuda", dtype=torch.bfloat16, generator=g) * k**-0.5
        wu = torch.randn(n, k, device="cuda", dtype=torch.bfloat16, generator=g) * k**-0.5
        ref = F.silu(x.double() @ wg.double().T) * (x.double() @ wu.double().T)
        compiled = torch.compile(lambda: F.silu(x @ wg.T) * (x @ wu.T))
        return ref, (lambda: fusedops.fused_gated_mlp(x, wg, wu, "silu")), compiled
    a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16, generator=g)
    b = torch.randn(n, k, device="cuda", dtype=torch.bfloat16, generator=g)
    qa, sa = fusedops.quantize_fp8(a, granularity=granularity)
    qb, sb = fusedops.quantize_fp8(b, granularity=granularity)
    shape = (-1, 1) if granularity == "row" else ()
    ref = (qa.double() * sa.double().reshape(shape)) @ (qb.double() * sb.double().reshape(shape)).T
    scale_a = sa.reshape(-1, 1) if granularity == "row" else sa
    scale_b = sb.reshape(1, -1) if granularity == "row" else sb
    qbt = qb.T

    def baseline():
        return torch._scaled_mm(qa, qbt, scale_a=scale_a, scale_b=scale_b, out_dtype=torch.bfloat16)

    def call():
        return fusedops.fp8_gemm(
            qa, qb, a_scale=sa, b_scale=sb, granularity=granularity, out_dtype=torch.bfloat16
        )

    return ref, call, baseline


def measure(rows: list, case: dict, call, label: str, tile_text: str, repeat: int) -> bool:
    """Checks ``call`` against float64, then times it; False for a wrong result (not timed)."""
    err = rel_err(call(), case["ref"])
    ms = time_ms(call, repeat=repeat) if err < 1e-2 else float("nan")
    base_ms = case["baseline_ms"]
    row = {key: case[key] for key in ("op", "m", "k", "n")}
    row.update(what=label, tile=tile_text, err=err, ms=ms, tflops=case["flop"] / ms / 1e9)
    row.update(baseline_ms=base_ms, vs_baseline=base_ms / ms)
    rows.append(row)
    print(
        f"{row['op']} {row['m']}x{row['k']}x{row['n']} {label} {tile_text}: err {err:.3g} "
        f"{ms:.4g} ms ({row['tflops']:.0f} TFLOP/s), baseline {base_ms:.4g} ms: "
        f"{row['vs_baseline']:.3f}x",
        flush=True,
    )
    return err < 1e-2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    parser.add_argument("--ops", nargs="*", default=["gated_mlp", "fp8_gemm"])
    parser.add_argument("--granularity", default="tensor", choices=["tensor", "row"])
    parser.add_argument("--shapes", nargs="*", default=None, help="MxKxN, e.g. 4096x4096x4096")
    parser.add_argument("--tiles", nargs="*", default=None, help="#fusedops.tile<...> texts")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    right = True
    for op in args.ops:
        shapes = SHAPES[op]
        if args.shapes:
            shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes]
        for m, k, n in shapes:
            ref, call, baseline = problem(op, m, k, n, args.granularity)
            case = {"op": op, "m": m, "k": k, "n": n, "ref": ref}
            case["flop"] = 2.0 * m * n * k * (2 if op == "gated_mlp" else 1)
            case["baseline_ms"] = time_ms(baseline, repeat=args.repeat)
            right &= measure(rows, case, call, "default", "", args.repeat)
            for text in args.tiles or TILES[op]:
                try:
                    with _tuning(text):
                        right &= measure(rows, case, call, "tile", text, args.repeat)
                except FusedOpsError as e:  # a tile the compiler refuses
                    print(f"{op} {m}x{k}x{n} {text}: refused: {str(e).splitlines()[0][:160]}")
            del case, ref
            torch.cuda.empty_cache()
    (args.out / "gemm_tiles.json").write_text(json.dumps(rows, indent=1))
    title = (
        f"# GEMM tile sweep ({torch.cuda.get_device_name()}, torch {torch.__version__}; "
        f"fp8 granularity {args.granularity}; baseline: torch.compile / torch._scaled_mm)"
    )
    head = "| op | m×k→n | what | tile | err | ms | TFLOP/s | baseline ms | vs baseline |"
    lines = [title, "", head, "|---" * 9 + "|"]
    for r in rows:
        lines.append(
            f"| {r['op']} | {r['m']}×{r['k']}→{r['n']} | {r['what']} | `{r['tile']}` | "
            f"{r['err']:.3g} | {r['ms']:.4g} | {r['tflops']:.0f} | {r['baseline_ms']:.4g} | "
            f"{r['vs_baseline']:.3f} |"
        )
    (args.out / "gemm_tiles.md").write_text("\n".join(lines) + "\n")
    return 0 if right else 1


if __name__ == "__main__":
    raise SystemExit(main())
