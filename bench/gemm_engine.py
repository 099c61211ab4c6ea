#!/usr/bin/env python3
"""The GEMM ops against what users have, at the shapes of issue 10 (python bench/gemm_engine.py).

Every fusedops output is first checked against a float64 reference of the same (dequantized)
inputs; then fusedops and its baselines are timed in the same run on the same card (CUDA
events, median of 20 after warm-up, L2 flushed before each call; fusedops.bench.cases.time_ms):

* fused_gated_mlp (bf16, f16) against torch.compile of silu(x@Wg.T) * (x@Wu.T), and eager;
* fp8_gemm e4m3 pre-quantized (tensor, row; block128 beside) against torch._scaled_mm, whose
  error on the same inputs is reported too; promoted (the default) against _scaled_mm's default,
  fast_accum against _scaled_mm(use_fast_accum=True);
* fp8_gemm on bf16 inputs (quantization included) against fp16 cuBLAS a @ b.T;
* decode (M = 1, 16, 64): the weight bytes over the time against the device copy rate, and the
  time of a plain read of as many bytes (``amax`` of an int32 buffer, timed alike) beside it: what
  the card streams at that size under this timing.

Times the kernels a steady shape gets: FUSEDOPS_SHAPES=exact unless the environment says
otherwise (in the default ``auto`` mode a shape's first second runs its rows class's kernel,
and the exact one would replace it part-way through a measurement: decode rows mixed the two,
docs/perf/gemm-engine.md v12).

Writes gemm_engine.json (every number) and gemm_engine.md (the table) to --out ($OUT or .).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import fusedops
import torch
import torch.nn.functional as F
from fusedops.bench.cases import measure_ceilings, rel_err, time_ms

torch._dynamo.config.cache_size_limit = 64

ROWS: list[dict] = []
# Results over these errors against float64 are wrong, not slow: the run fails (exit 1) and
# names them, and the rows say so. (v7's decode rows were once recorded with errors of 44 and
# NaN beside their times.) Measured: bf16 1.7e-3, FP8 1.7e-3 (fast_accum 2.6e-3), FP8 of bf16
# inputs 3.7e-2 (the quantization).
MAX_ERROR = {"gated_mlp": 1e-2, "fp8_gemm": 1e-2, "fp8_gemm(bf16 in, row)": 1e-1}
WRONG: list[str] = []


def check(op: str, shape: tuple, err: float) -> None:
    """Records a wrong result (the caller still times it: a wrong kernel's time is evidence)."""
    if not err <= MAX_ERROR[op.split(" fast_accum")[0]]:
        WRONG.append(f"{op} {shape}: error {err:.3g} against float64")


def record(**row) -> None:
    ROWS.append(row)
    parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()]
    print(" ".join(parts), flush=True)


def _silu_mlp(x, wg, wu):
    return F.silu(x @ wg.T) * (x @ wu.T)


_compiled_mlp = torch.compile(_silu_mlp)


_read_ms: dict[int, float] = {}


def read_same_bytes_ms(nbytes: int, repeat: int) -> float:
    """The time of reading ``nbytes`` once (``amax`` of an int32 buffer), timed as the ops are."""
    if nbytes not in _read_ms:
        buf = torch.ones(nbytes // 4, dtype=torch.int32, device="cuda")
        _read_ms[nbytes] = time_ms(lambda: buf.amax(), repeat=repeat)
    return _read_ms[nbytes]


def decode_columns(weight_bytes: int, t_f: float, copy_bps: float, repeat: int) -> dict:
    t_r = read_same_bytes_ms(weight_bytes, repeat)
    return dict(
        weight_bw_of_copy=weight_bytes / (t_f * 1e-3) / copy_bps,
        read_same_bytes_ms=t_r,
        read_bw_of_copy=weight_bytes / (t_r * 1e-3) / copy_bps,
    )


def gated_mlp(m: int, k: int, n: int, dtype: torch.dtype, copy_bps: float, repeat: int) -> None:
    g = torch.Generator(device="cuda").manual_seed(m * 7 + n)
    x = torch.randn(m, k, device="cuda", dtype=dtype, generator=g)
    wg = torch.randn(n, k, device="cuda", dtype=dtype, generator=g) * k**-0.5
    wu = torch.randn(n, k, device="cuda", dtype=dtype, generator=g) * k**-0.5
    out = fusedops.fused_gated_mlp(x, wg, wu, "silu")
    x64 = x.double()
    ref = F.silu(x64 @ wg.double().T) * (x64 @ wu.double().T)
    err = rel_err(out, ref)
    check("gated_mlp", (m, k, n, str(dtype)), err)
    err_compiled = rel_err(_compiled_mlp(x, wg, wu), ref)
    del x64, ref
    t_f = time_ms(lambda: fusedops.fused_gated_mlp(x, wg, wu, "silu"), repeat=repeat)
    t_c = time_ms(lambda: _compiled_mlp(x, wg, wu), repeat=repeat)
    t_e = time_ms(lambda: _silu_mlp(x, wg, wu), repeat=repeat)
    flops = 4.0 * m * n * k
    weight_bytes = 2 * n * k * x.element_size()
    record(
        op="gated_mlp",
        dtype=str(dtype).split(".")[-1],
        m=m,
        k=k,
        n=n,
        err=err,
        err_torch_compile=err_compiled,
        fusedops_ms=t_f,
        torch_compile_ms=t_c,
        eager_ms=t_e,
        fusedops_tflops=flops / t_f / 1e9,
        vs_torch_compile=t_c / t_f,
        vs_eager=t_e / t_f,
        **(decode_columns(weight_bytes, t_f, copy_bps, repeat) if m <= 64 else {}),
    )


def fp8_gemm(
    m: int, k: int, n: int, granularity: str, copy_bps: float, repeat: int, fast_accum: bool = False
) -> None:
    g = torch.Generator(device="cuda").manual_seed(m * 5 + n)
    a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16, generator=g)
    b = torch.randn(n, k, device="cuda", dtype=torch.bfloat16, generator=g)
    qa, sa = fusedops.quantize_fp8(a, granularity=granularity)
    qb, sb = fusedops.quantize_fp8(b, granularity=granularity)
    call = lambda: fusedops.fp8_gemm(  # noqa: E731
        qa,
        qb,
        a_scale=sa,
        b_scale=sb,
        granularity=granularity,
        out_dtype=torch.bfloat16,
        fast_accum=fast_accum,
    )
    out = call()
    if granularity == "block128":
        da = (
            qa.double().reshape(m, k)
            * sa.double().repeat_interleave(128, 0)[:m].repeat_interleave(128, 1)[:, :k]
        )
        db = (
            qb.double() * sb.double().repeat_interleave(128, 0)[:n].repeat_interleave(128, 1)[:, :k]
        )
    else:
        shape = (-1, 1) if granularity == "row" else ()
        da, db = qa.double() * sa.double().reshape(shape), qb.double() * sb.double().reshape(shape)
    ref = da @ db.T
    err = rel_err(out, ref)
    check("fp8_gemm", (m, k, n, granularity, fast_accum), err)
    row = dict(
        op="fp8_gemm" + (" fast_accum" if fast_accum else ""),
        granularity=granularity,
        m=m,
        k=k,
        n=n,
        err=err,
    )
    t_f = time_ms(call, repeat=repeat)
    row.update(fusedops_ms=t_f, fusedops_tflops=2.0 * m * n * k / t_f / 1e9)
    if granularity != "block128":
        scale_a = sa.reshape(-1, 1) if granularity == "row" else sa
        scale_b = sb.reshape(1, -1) if granularity == "row" else sb
        qbt = qb.T
        scaled = lambda: torch._scaled_mm(  # noqa: E731
            qa,
            qbt,
            scale_a=scale_a,
            scale_b=scale_b,
            out_dtype=torch.bfloat16,
            use_fast_accum=fast_accum,
        )
        row["err_scaled_mm"] = rel_err(scaled(), ref)
        t_s = time_ms(scaled, repeat=repeat)
        row.update(scaled_mm_ms=t_s, vs_scaled_mm=t_s / t_f)
    if m <= 64:
        row.update(decode_columns(n * k, t_f, copy_bps, repeat))
    del da, db, ref
    record(**row)


def fp8_gemm_bf16_inputs(m: int, k: int, n: int, repeat: int) -> None:
    g = torch.Generator(device="cuda").manual_seed(m + n)
    a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16, generator=g)
    b = torch.randn(n, k, device="cuda", dtype=torch.bfloat16, generator=g)
    call = lambda: fusedops.fp8_gemm(a, b, granularity="row")  # noqa: E731
    ref = a.double() @ b.double().T
    err = rel_err(call(), ref)
    check("fp8_gemm(bf16 in, row)", (m, k, n), err)
    del ref
    a16, b16 = a.half(), b.half()
    t_f = time_ms(call, repeat=repeat)
    t_c = time_ms(lambda: a16 @ b16.T, repeat=repeat)
    record(
        op="fp8_gemm(bf16 in, row)",
        m=m,
        k=k,
        n=n,
        err=err,
        fusedops_ms=t_f,
        cublas_f16_ms=t_c,
        vs_cublas_f16=t_c / t_f,
    )


def markdown(ceilings: dict) -> str:
    lines = [
        f"# GEMM engine benchmark ({torch.cuda.get_device_name()}, torch {torch.__version__})",
        "",
        f"Device copy: {ceilings['copy_GBps'] / 1e3:.2f} TB/s, bf16 GEMM "
        f"{ceilings['dense_bf16_TFLOPs']:.0f} TFLOP/s, FP8 _scaled_mm "
        f"{ceilings['dense_fp8_TFLOPs']:.0f} TFLOP/s (same run). "
        f"FUSEDOPS_SHAPES={os.environ.get('FUSEDOPS_SHAPES')}.",
        "",
    ]
    keys = sorted(
        {k for r in ROWS for k in r}, key=lambda k: list(ROWS[0]).index(k) if k in ROWS[0] else 100
    )
    lines.append("| " + " | ".join(keys) + " |")
    lines.append("|" + "---|" * len(keys))
    for r in ROWS:
        cells = [f"{r[k]:.4g}" if isinstance(r.get(k), float) else str(r.get(k, "")) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    if WRONG:
        lines += ["", "**Wrong results** (their times mean nothing):", ""]
        lines += [f"* {w}" for w in WRONG]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    parser.add_argument("--quick", action="store_true", help="one shape per group")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("groups", nargs="*", default=["mlp", "fp8", "bf16in", "decode"])
    args = parser.parse_args()
    os.environ.setdefault("FUSEDOPS_SHAPES", "exact")
    ceilings = measure_ceilings()
    copy_bps = ceilings["copy_GBps"] * 1e9
    mlp_shapes = [(16384, 4096, 11264), (4096, 4096, 11008), (8192, 8192, 28672)]
    fp8_shapes = [(4096, 4096, 4096), (8192, 8192, 8192), (16384, 4096, 11264)]
    if args.quick:
        mlp_shapes, fp8_shapes = mlp_shapes[:1], fp8_shapes[:1]
    r = args.repeat

    def write() -> None:  # after each group: a run cut short keeps what it measured
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gemm_engine.json").write_text(
            json.dumps(
                {
                    "device": torch.cuda.get_device_name(),
                    "shapes_mode": os.environ.get("FUSEDOPS_SHAPES"),
                    "ceilings": ceilings,
                    "rows": ROWS,
                },
                indent=1,
            )
        )
        (args.out / "gemm_engine.md").write_text(markdown(ceilings))

    if "mlp" in args.groups:
        for dtype in (torch.bfloat16, torch.float16):
            for m, k, n in mlp_shapes:
                gated_mlp(m, k, n, dtype, copy_bps, r)
        write()
    if "fp8" in args.groups:
        for m, k, n in fp8_shapes:
            for granularity in ("tensor", "row", "block128"):
                fp8_gemm(m, k, n, granularity, copy_bps, r)
            for granularity in ("tensor", "row"):
                fp8_gemm(m, k, n, granularity, copy_bps, r, fast_accum=True)
        write()
    if "bf16in" in args.groups:
        fp8_gemm_bf16_inputs(8192, 8192, 8192, r)
        write()
    if "decode" in args.groups:
        for m in (1, 16, 64):
            gated_mlp(m, 4096, 11008, torch.bfloat16, copy_bps, r)
            fp8_gemm(m, 4096, 11008, "row", copy_bps, r)
    write()
    print(markdown(ceilings))
    if WRONG:
        print("gemm_engine: WRONG RESULTS (the times of these rows mean nothing):", file=sys.stderr)
        for w in WRONG:
            print(f"  {w}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
