#!/usr/bin/env python3
"""Decode-shape tile sweep of the sm_90a GEMMs (python bench/decode_tiles.py --out DIR).

Issue 10 asks decode (M <= 64, the weights streamed once) to run at >= 80 % of the copy rate
on the weight bytes. This times the GEMM ops at M = 1, 16, 64, N = 11008, K = 4096 with each
tile of a small grid of one-MMA-warpgroup tiles (narrow BN, several K widths and ring depths:
wider than the autotuner's candidates), each checked against float64 first, beside the default
pick and the baselines (eager bf16 GEMMs, `_scaled_mm`, a cuBLAS GEMV over the same bytes), with
the L2 flush both ways (fusedops.bench.cases.FLUSH_MODE). Writes decode_tiles.json/.md.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F

import fusedops
import fusedops.bench.cases as cases
from fusedops.torch_ops import _tuning

N, K = 11008, 4096


def tiles(element_bytes: int) -> list[str]:
    out = []
    for bn in (16, 32, 64, 128):
        for row_bytes in (64, 128):
            for stages in (4, 6, 8, 12, 16):
                per_stage = (64 + bn * (2 if element_bytes == 2 else 1)) * row_bytes
                if per_stage * stages > 200 * 1024:
                    continue
                out.append(
                    f"#fusedops.tile<block = [64, {bn}, {row_bytes // element_bytes}], "
                    f"warps = 4, stages = {stages}>"
                )
    return out


def sweep(op: str, m: int, rows: list, copy_bps: float, all_tiles: bool) -> None:
    g = torch.Generator(device="cuda").manual_seed(m)
    if op == "gated_mlp":
        x = torch.randn(m, K, device="cuda", dtype=torch.bfloat16, generator=g)
        wg = torch.randn(N, K, device="cuda", dtype=torch.bfloat16, generator=g) * K**-0.5
        wu = torch.randn(N, K, device="cuda", dtype=torch.bfloat16, generator=g) * K**-0.5
        ref = F.silu(x.double() @ wg.double().T) * (x.double() @ wu.double().T)
        call = lambda: fusedops.fused_gated_mlp(x, wg, wu, "silu")  # noqa: E731
        baselines = {"eager": lambda: F.silu(x @ wg.T) * (x @ wu.T)}
        weight_bytes, element_bytes = 2 * N * K * 2, 2
    else:
        a = torch.randn(m, K, device="cuda", dtype=torch.bfloat16, generator=g)
        b = torch.randn(N, K, device="cuda", dtype=torch.bfloat16, generator=g)
        qa, sa = fusedops.quantize_fp8(a, granularity="row")
        qb, sb = fusedops.quantize_fp8(b, granularity="row")
        ref = (qa.double() * sa.double().reshape(-1, 1)) @ (
            qb.double() * sb.double().reshape(-1, 1)
        ).T
        scale_a, scale_b, qbt = sa.reshape(-1, 1), sb.reshape(1, -1), qb.T
        call = lambda: fusedops.fp8_gemm(qa, qb, a_scale=sa, b_scale=sb, granularity="row")  # noqa: E731
        baselines = {
            "_scaled_mm": lambda: torch._scaled_mm(
                qa, qbt, scale_a=scale_a, scale_b=scale_b, out_dtype=torch.bfloat16
            )
        }
        weight_bytes, element_bytes = N * K, 1
    gemv_w = torch.randn(weight_bytes // (2 * K), K, device="cuda", dtype=torch.bfloat16)
    gemv_x = torch.randn(max(m, 1), K, device="cuda", dtype=torch.bfloat16)
    baselines["cuBLAS GEMM, same bytes bf16"] = lambda: gemv_x @ gemv_w.T

    def measure(label: str, fn, tile: str = "") -> None:
        for mode in ("clean", "dirty"):
            cases.FLUSH_MODE = mode
            ms = cases.time_ms(fn, warmup=3, repeat=30)
            rows.append(
                dict(
                    op=op,
                    m=m,
                    what=label,
                    tile=tile,
                    flush=mode,
                    us=ms * 1e3,
                    of_copy=weight_bytes / (ms * 1e-3) / copy_bps,
                )
            )
        cases.FLUSH_MODE = "clean"
        r = rows[-2]
        print(
            f"{op} m={m} {label} {tile}: {r['us']:.1f} us clean, {rows[-1]['us']:.1f} dirty, "
            f"{r['of_copy']:.0%} of copy",
            flush=True,
        )

    for label, fn in baselines.items():
        measure(label, fn)
    err = cases.rel_err(call(), ref)
    if not err < 1e-2:  # a wrong result is not a time
        raise SystemExit(f"decode_tiles: {op} m={m}: the default's error is {err:.3g}")
    measure("fusedops default", call)
    if op == "fp8_gemm":
        measure(
            "fusedops default, fast_accum",
            lambda: fusedops.fp8_gemm(
                qa, qb, a_scale=sa, b_scale=sb, granularity="row", fast_accum=True
            ),
        )
    for tile in tiles(element_bytes) if all_tiles else []:
        try:
            with _tuning(tile):
                out = call()
                err = cases.rel_err(out, ref)
                if not err < 1e-2:
                    print(f"{tile}: error {err}", flush=True)
                    continue
                measure("fusedops", call, tile)
        except Exception as e:  # a tile the compiler refuses
            print(f"{tile}: {str(e).splitlines()[0][:120]}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    parser.add_argument("--m", type=int, nargs="*", default=[1, 16, 64])
    parser.add_argument(
        "--sweep-m", type=int, nargs="*", default=[1, 16, 64], help="the M whose tiles are swept"
    )
    parser.add_argument("--ops", nargs="*", default=["fp8_gemm", "gated_mlp"])
    args = parser.parse_args()
    ceilings = cases.measure_ceilings()
    copy_bps = ceilings["copy_GBps"] * 1e9
    rows: list = []
    for op in args.ops:
        for m in args.m:
            sweep(op, m, rows, copy_bps, m in args.sweep_m)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "decode_tiles.json").write_text(
        json.dumps(dict(ceilings=ceilings, rows=rows), indent=1)
    )
    lines = [
        f"# Decode tiles ({torch.cuda.get_device_name()}), ceilings {ceilings}",
        "",
        "| op | m | what | tile | flush | us | of copy |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["op"], r["m"], r["flush"], r["us"])):
        lines.append(
            f"| {r['op']} | {r['m']} | {r['what']} | {r['tile']} | {r['flush']} | "
            f"{r['us']:.1f} | {r['of_copy']:.0%} |"
        )
    (args.out / "decode_tiles.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
