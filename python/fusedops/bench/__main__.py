"""Entry point of ``python -m fusedops.bench``; see :mod:`fusedops.bench`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("fusedops.bench needs PyTorch with CUDA: pip install torch")

import fusedops
import fusedops.nn
from fusedops import _native

from .cases import (  # noqa: F401 - re-exported for scripts
    SUITES,
    Progress,
    _check,
    _rope_tables,
    measure_ceilings,
    rel_err,
    time_ms,
)

#: Each fusedops call of the host-time measurement and the eager PyTorch op it is held against:
#: the eager op doing the same job, or its main part (quantize_fp8's cast; its scales would take
#: more eager ops). torch.add, the cheapest eager op, is measured too.
HOST_PAIRS = {
    "fusedops.fused_rmsnorm_rope": "F.rms_norm (eager)",
    "fusedops.fused_gated_mlp": "F.linear (eager)",
    "fusedops.quantize_fp8 (row)": "x.to(float8_e4m3fn) (eager)",
    "fusedops.dequantize_fp8 (row)": "q.to(bfloat16) (eager)",
    "fusedops.fp8_gemm (FP8 operands)": "torch._scaled_mm (eager)",
    "fusedops.fused_rmsnorm_rope (fast path in Python)": "F.rms_norm (eager)",
    "fusedops.fused_rmsnorm_rope (JIT'd host code)": "F.rms_norm (eager)",
}

#: The variants of the fused_rmsnorm_rope call measured besides the default: the environment
#: each runs under (the package's switches: no _fastcall extension; no launch plans).
HOST_VARIANTS = {
    "fusedops.fused_rmsnorm_rope (fast path in Python)": {"FUSEDOPS_FASTCALL": "0"},
    "fusedops.fused_rmsnorm_rope (JIT'd host code)": {"FUSEDOPS_LAUNCH": "host-code"},
}


def measure_host_overhead(calls: int = 2000, rounds: int = 5) -> dict[str, float]:
    """Host microseconds per call, enqueuing back to back on a tiny input (GPU never the limit).

    Compares fusedops calls (second and later calls: the kernel is compiled and cached) through
    their launch plans and, for one op, the slower paths of :data:`HOST_VARIANTS`, with PyTorch
    eager ops on the same tensors (:data:`HOST_PAIRS`). Each entry is the best of
    ``rounds`` rounds of ``calls`` calls; the rounds take the entries in turn, so a slow spell of
    the machine hits all of them.
    """
    from fusedops import torch_ops

    x = torch.randn(1, 16, 1024, device="cuda", dtype=torch.bfloat16)
    w = torch.ones(1024, device="cuda", dtype=torch.bfloat16)
    wg = torch.randn(256, 1024, device="cuda", dtype=torch.bfloat16) * 0.03
    cos, sin = _rope_tables(16, 128)
    q, qs = fusedops.quantize_fp8(x[0], granularity="row")
    wq, ws = fusedops.quantize_fp8(wg, granularity="row")
    wq_t = wq.t()
    one = torch.ones((), device="cuda")
    rmsnorm_rope = lambda: fusedops.fused_rmsnorm_rope(  # noqa: E731
        x, w, cos, sin, eps=1e-6, head_dim=128
    )
    fns = {
        "fusedops.fused_rmsnorm_rope": rmsnorm_rope,
        "fusedops.fused_gated_mlp": lambda: fusedops.fused_gated_mlp(x, wg, wg),
        "fusedops.quantize_fp8 (row)": lambda: fusedops.quantize_fp8(x[0], granularity="row"),
        "fusedops.dequantize_fp8 (row)": lambda: fusedops.dequantize_fp8(q, qs, granularity="row"),
        "fusedops.fp8_gemm (FP8 operands)": lambda: fusedops.fp8_gemm(
            q, wq, a_scale=qs, b_scale=ws, granularity="row"
        ),
        "torch.add (eager)": lambda: torch.add(x, x),
        "x.to(float8_e4m3fn) (eager)": lambda: x[0].to(torch.float8_e4m3fn),
        "row quantization in eager ops (abs, amax, 2 div, cast)": lambda: (
            x[0] / (x[0].abs().amax(1, keepdim=True) / 448.0)
        ).to(torch.float8_e4m3fn),
        "q.to(bfloat16) (eager)": lambda: q.to(torch.bfloat16),
        "F.rms_norm (eager)": lambda: F.rms_norm(x, (1024,), w, 1e-6),
        "F.linear (eager)": lambda: F.linear(x, wg),
        "torch._scaled_mm (eager)": lambda: torch._scaled_mm(
            q, wq_t, scale_a=one, scale_b=one, out_dtype=torch.bfloat16
        ),
    }
    result: dict[str, float] = {}

    def measure(name: str, fn: Any) -> None:
        for _ in range(20):
            fn()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        us = (time.perf_counter() - start) / calls * 1e6
        torch.cuda.synchronize()
        result[name] = min(us, result.get(name, us))

    def switch(environment: dict[str, Optional[str]]) -> dict[str, Optional[str]]:
        saved = {k: os.environ.get(k) for k in environment}
        for k, v in environment.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _native._forget_fastcall()
        torch_ops._forget_kernels()
        return saved

    for _ in range(rounds):
        for name, fn in fns.items():
            measure(name, fn)
        for name, environment in HOST_VARIANTS.items():
            saved = switch(dict(environment))
            try:
                measure(name, rmsnorm_rope)
            finally:
                switch(saved)
    return result


def host_markdown(host: dict[str, float]) -> list[str]:
    """The host-time table: each fusedops call beside its eager counterpart."""
    lines = [
        "Host time per call, enqueuing back to back on a tiny input (µs, best of 5 rounds; "
        "second and later calls):",
        "",
        "| fusedops call | µs | eager PyTorch op | µs | fusedops / eager |",
        "|---|---:|---|---:|---:|",
    ]
    for name, eager in HOST_PAIRS.items():
        if name in host and eager in host:
            lines.append(
                f"| {name} | {host[name]:.1f} | {eager} | {host[eager]:.1f} | "
                f"{host[name] / host[eager]:.2f} |"
            )
    others = [n for n in host if n not in HOST_PAIRS and n not in HOST_PAIRS.values()]
    lines += [f"| {n} | {host[n]:.1f} | | | |" for n in others]
    return lines


def run(ops: list[str], out_dir: Path) -> dict:
    device = torch.cuda.get_device_name()
    ceilings = measure_ceilings()
    host = measure_host_overhead()
    total = sum(len(SUITES[o]) for o in ops)
    progress = Progress(total)
    rows = []
    for op in ops:
        for label, make in SUITES[op]:
            impls, ref, tol, meta = make()
            results = {}
            for impl, fn in impls.items():
                entry: dict[str, Any] = {}
                try:
                    out = fn()
                    torch.cuda.synchronize()
                    if impl not in meta.get("unchecked", set()):
                        err = _check(impl, out, ref, tol, meta)
                        entry["rel_err"] = err
                        if not (err <= tol):
                            entry["error"] = f"wrong result: rel. error {err:.2e} > {tol:.0e}"
                    if "error" not in entry:
                        ms = time_ms(fn)
                        entry["ms"] = ms
                        if "bytes" in meta:
                            entry["GBps"] = meta["bytes"] / ms / 1e6
                            entry["pct_of_ceiling"] = 100 * entry["GBps"] / ceilings["copy_GBps"]
                        else:
                            entry["TFLOPs"] = meta["flops"] / ms / 1e9
                            peak = ceilings[
                                "dense_fp8_TFLOPs" if op == "fp8_gemm" else "dense_bf16_TFLOPs"
                            ]
                            entry["pct_of_ceiling"] = 100 * entry["TFLOPs"] / peak
                except Exception as e:  # report, keep going with the other implementations
                    entry["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
                results[impl] = entry
            base = results.get("fusedops", {}).get("ms")
            for entry in results.values():
                if base and "ms" in entry:
                    entry["fusedops_speedup"] = entry["ms"] / base
            rows.append({"op": op, "shape": label, "results": results})
            progress.step(f"{op} {label}")
            del impls, ref
            torch.cuda.empty_cache()
    report = {
        "device": device,
        "torch": torch.__version__,
        "compiler": _native.compiler_version(),
        "ceilings": ceilings,
        "host_us_per_call": host,
        "rows": rows,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(report, indent=1))
    md = markdown(report)
    (out_dir / "bench.md").write_text(md)
    print(md)
    plot(report, out_dir / "bench.png")
    return report


def markdown(report: dict) -> str:
    c = report["ceilings"]
    lines = [
        f"# fusedops benchmark on {report['device']}",
        "",
        f"torch {report['torch']}; {report['compiler']}. Ceilings measured in this run: copy "
        f"{c['copy_GBps']:.0f} GB/s, bf16 dense GEMM {c['dense_bf16_TFLOPs']:.0f} TFLOP/s "
        f"(the GEMM ops' ceiling), FP8 dense GEMM (cuBLASLt, 8192³) "
        f"{c['dense_fp8_TFLOPs']:.0f} TFLOP/s (fp8_gemm's ceiling). "
        "Medians of 20 CUDA-event timings, L2 flushed before each; every checked output "
        "matched the float64 reference before it was timed.",
        "",
        "| op | shape | implementation | ms | rate | % of ceiling | fusedops speedup | "
        "rel. error |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        for impl, e in row["results"].items():
            if "error" in e:
                lines.append(
                    f"| {row['op']} | {row['shape']} | {impl} | – | – | – | – | {e['error']} |"
                )
                continue
            rate = f"{e['GBps']:.0f} GB/s" if "GBps" in e else f"{e['TFLOPs']:.0f} TFLOP/s"
            speed = f"{e['fusedops_speedup']:.2f}×" if "fusedops_speedup" in e else "–"
            err = f"{e['rel_err']:.1e}" if "rel_err" in e else "not checked"
            lines.append(
                f"| {row['op']} | {row['shape']} | {impl} | {e['ms']:.3f} | {rate} | "
                f"{e['pct_of_ceiling']:.1f}% | {speed} | {err} |"
            )
    lines += ["", *host_markdown(report["host_us_per_call"])]
    lines.append("")
    lines.append(
        "fusedops speedup = that implementation's time / fusedops' time (>1: fusedops is faster)."
    )
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(matplotlib is not installed: no plot written to {path})", file=sys.stderr)
        return
    rows = report["rows"]
    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 1.2), 5))
    impls = sorted({i for r in rows for i in r["results"]})
    width = 0.8 / max(len(impls), 1)
    for j, impl in enumerate(impls):
        vals = [r["results"].get(impl, {}).get("pct_of_ceiling", 0) for r in rows]
        ax.bar([i + j * width for i in range(len(rows))], vals, width, label=impl)
    ax.set_xticks([i + 0.4 for i in range(len(rows))])
    ax.set_xticklabels([f"{r['op']}\n{r['shape'][:22]}" for r in rows], fontsize=7)
    ax.set_ylabel("% of ceiling measured in the same run")
    ax.set_title(report["device"])
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fusedops.bench", description=__doc__)
    parser.add_argument(
        "ops",
        nargs="*",
        metavar="op",
        help=f"operators to run, of {', '.join(SUITES)} (default: all)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(os.environ.get("OUT", "bench-out")),
        help="folder for bench.md, bench.json, bench.png (default: $OUT or ./bench-out)",
    )
    parser.add_argument(
        "--host-only",
        action="store_true",
        help="measure only the host time per call (printed as a table; nothing written)",
    )
    args = parser.parse_args(argv)
    unknown = [o for o in args.ops if o not in SUITES]
    if unknown:
        parser.error(f"unknown operator {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    if not torch.cuda.is_available():
        print("fusedops.bench needs a CUDA GPU; PyTorch sees none", file=sys.stderr)
        return 2
    if args.host_only:
        print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}")
        print("\n".join(host_markdown(measure_host_overhead())))
        return 0
    run(args.ops or list(SUITES), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
