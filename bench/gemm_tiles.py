#!/usr/bin/env python3
"""Tile sweep of the sm_90a GEMM ops at issue 10's large shapes (python bench/gemm_tiles.py).

For each shape: the baseline (torch.compile of the unfused gated MLP, or `torch._scaled_mm`), the
default pick, then every tile given (by default the best cooperative tiles of the earlier sweeps,
each alone and as a 2×1 cluster), each checked against float64 first (a
wrong result is reported, never timed as a win) and timed with fusedops.bench.cases.time_ms
(L2 flushed, warm-up, median), all of a shape's entries in turn for --rounds rounds (the machine's
clocks drift by ~10 % over a run: interleaving moves every entry alike), reporting the median
round. A tile the compiler refuses is printed with its reason.
Writes gemm_tiles.json and gemm_tiles.md to --out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F

import fusedops
from fusedops.bench.cases import rel_err, time_ms
from fusedops.errors import FusedOpsError
from fusedops.torch_ops import _tuning

torch._dynamo.config.cache_size_limit = 64


def tile(bm: int, bn: int, bk: int, warps: int, stages: int, cluster: int = 1) -> str:
    text = f"#fusedops.tile<block = [{bm}, {bn}, {bk}], warps = {warps}, stages = {stages}"
    return text + (f", cluster = [{cluster}]>" if cluster > 1 else ">")


# The cooperative tiles (BM 128, two MMA warpgroups per tile) the sweeps measured best, each
# alone and as a 2×1 cluster (two row tiles sharing the B tiles, multicast).
TILES = {
    "gated_mlp": [tile(128, bn, 64, 8, s, c) for bn, s in ((192, 3), (128, 4)) for c in (1, 2)],
    "fp8_gemm": [tile(128, bn, 128, 8, s, c) for bn, s in ((128, 5), (192, 4)) for c in (1, 2)],
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


def pinned(tile_text: str, exact: bool):
    """The block in which calls use ``tile_text`` (none: the compiler's pick, as users get it)."""
    return _tuning(tile_text, exact=exact) if tile_text else contextlib.nullcontext()


def check(case: dict, call, label: str, tile_text: str, exact: bool) -> dict:
    """Checks ``call`` against float64; a wrong result is reported and never timed."""
    with pinned(tile_text, exact):
        err = rel_err(call(), case["ref"])
    row = {key: case[key] for key in ("op", "m", "k", "n")}
    row.update(what=label, tile=tile_text, err=err, times=[])
    if err >= 1e-2:
        print(f"{row['op']} {row['m']}x{row['k']}x{row['n']} {tile_text}: WRONG, err {err:.3g}")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    parser.add_argument("--ops", nargs="*", default=["gated_mlp", "fp8_gemm"])
    parser.add_argument("--granularity", default="tensor", choices=["tensor", "row"])
    parser.add_argument("--shapes", nargs="*", default=None, help="MxKxN, e.g. 4096x4096x4096")
    parser.add_argument("--tiles", nargs="*", default=None, help="#fusedops.tile<...> texts")
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per measurement")
    parser.add_argument(
        "--rounds", type=int, default=3, help="measurements per entry, interleaved across entries"
    )
    parser.add_argument(
        "--exact",
        action="store_true",
        help="pinned tiles compile for the exact shape, as fusedops.tune measures them (else for "
        "the shape class, with dynamic rows)",
    )
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
            flop = 2.0 * m * n * k * (2 if op == "gated_mlp" else 1)
            entries = [(check(case, call, "default", "", args.exact), call)]
            for text in args.tiles or TILES[op]:
                try:
                    entries.append((check(case, call, "tile", text, args.exact), call))
                except FusedOpsError as e:  # a tile the compiler refuses
                    print(f"{op} {m}x{k}x{n} {text}: refused: {str(e).splitlines()[0][:160]}")
            base_row = {key: case[key] for key in ("op", "m", "k", "n")}
            base_row.update(what="baseline", tile="", err=rel_err(baseline(), ref), times=[])
            entries.insert(0, (base_row, baseline))
            # Interleaved: every entry once per round, so that a clock or thermal drift over
            # the run moves all of them alike; the median over rounds is reported.
            for _ in range(args.rounds):
                for row, fn in entries:
                    if row["err"] >= 1e-2 and row["what"] != "baseline":
                        continue
                    with pinned(row["tile"], args.exact):
                        row["times"].append(time_ms(fn, repeat=args.repeat))
            base_ms = statistics.median(base_row["times"])
            for row, _ in entries:
                right &= row["what"] == "baseline" or row["err"] < 1e-2
                ms = statistics.median(row["times"]) if row["times"] else float("nan")
                row.update(ms=ms, tflops=flop / ms / 1e9, baseline_ms=base_ms)
                row["vs_baseline"] = base_ms / ms
                rows.append(row)
                print(
                    f"{op} {m}x{k}x{n} {row['what']} {row['tile']}: err {row['err']:.3g} "
                    f"{ms:.4g} ms ({row['tflops']:.0f} TFLOP/s; rounds "
                    f"{', '.join(f'{t:.4g}' for t in row['times'])}), "
                    f"{row['vs_baseline']:.3f}x baseline",
                    flush=True,
                )
            del case, ref, entries
            torch.cuda.empty_cache()
    (args.out / "gemm_tiles.json").write_text(json.dumps(rows, indent=1))
    title = (
        f"# GEMM tile sweep ({torch.cuda.get_device_name()}, torch {torch.__version__}; "
        f"fp8 granularity {args.granularity}; baseline: torch.compile / torch._scaled_mm; "
        f"median of {args.rounds} interleaved rounds of {args.repeat} calls)"
    )
    head = "| op | m×k→n | what | tile | err | ms | TFLOP/s | rounds (ms) | vs baseline |"
    lines = [title, "", head, "|---" * 9 + "|"]
    for r in rows:
        rounds = ", ".join(f"{t:.4g}" for t in r["times"])
        lines.append(
            f"| {r['op']} | {r['m']}×{r['k']}→{r['n']} | {r['what']} | `{r['tile']}` | "
            f"{r['err']:.3g} | {r['ms']:.4g} | {r['tflops']:.0f} | {rounds} | "
            f"{r['vs_baseline']:.3f} |"
        )
    (args.out / "gemm_tiles.md").write_text("\n".join(lines) + "\n")
    return 0 if right else 1


if __name__ == "__main__":
    raise SystemExit(main())
