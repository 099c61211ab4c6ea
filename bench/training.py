#!/usr/bin/env python3
"""Training step of the fused ops against unfused PyTorch and torch.compile (issue 15).

    python bench/training.py [--tokens 16384] [--out DIR]

Forward + backward, bf16, at LLaMA-7B sizes (hidden 4096, intermediate 11008, 32 heads of 128),
in one run on one card:

* mlp: ``down(silu(x·Wgᵀ) ⊙ (x·Wuᵀ))`` and its gradients (x, Wg, Wu, Wd): fused_gated_mlp
  + F.linear (its backward: the gated_mlp_grad kernel and PyTorch's GEMMs) against the unfused
  module in eager PyTorch and under torch.compile; also with ``recompute=False`` (the forward
  saves the projections, the backward's gated_act_grad reads them), and the fused forward with
  the previous backward (PyTorch's recompute and float32 derivative);
* fp8_linear: ``x·Wᵀ`` (4096 → 11008) and its gradients: FP8TrainingLinear's function
  (``fp8_gemm`` of the 16-bit operands, row-wise current scaling) with its FP8 backward
  (gradient in e5m2 or e4m3) and with ``backward="dense"``, against the bf16 GEMM in eager
  PyTorch and under torch.compile;
* qk_norm_rope: per-head RMSNorm + RoPE of q and k ([tokens, 32, 128] each, a weight per
  head dim, positions of each token) and their gradients: fused_rmsnorm_rope against eager and
  torch.compile.

Each variant: time per step (CUDA events, median of 10 after warm-up, each step synchronized;
and per step of ten run back to back, as a training loop runs them) and the peak memory the
step allocates above its inputs and parameters (torch.cuda.max_memory_allocated), with the
loss and gradients checked against the eager unfused step. Writes training.json and
training.md to --out; with --profile also profile-<case>.md: each variant's kernels by device
time per step (torch.profiler); with --timeline also timeline-<case>.md: where the GPU idles
within a step (each gap between kernels, the kernels around it and what the host did in it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F

import fusedops

torch._dynamo.config.cache_size_limit = 64
HIDDEN, INTER, HEADS, HEAD_DIM = 4096, 11008, 32, 128


def unfused_mlp(x, wg, wu, wd):
    return F.linear(F.silu(F.linear(x, wg)) * F.linear(x, wu), wd)


def fused_mlp(x, wg, wu, wd):
    return F.linear(fusedops.fused_gated_mlp(x, wg, wu), wd)


def fused_mlp_saved(x, wg, wu, wd):
    return F.linear(fusedops.fused_gated_mlp(x, wg, wu, recompute=False), wd)


def unfused_linear(x, w):
    return F.linear(x, w)


def fp8_linear(backward):
    return lambda x, w: fusedops.fp8_gemm(x, w, granularity="row", backward=backward)


class _PyTorchBackwardGatedMlp(torch.autograd.Function):
    """The fused forward with the backward of v2 (before the gated_mlp_grad kernel): g and u
    recomputed by PyTorch's GEMMs, the derivative by autograd in float32 a block of rows at a
    time. Timed beside the kernel's backward, in the same run."""

    @staticmethod
    def forward(ctx, x, wg, wu):
        ctx.save_for_backward(x, wg, wu)
        return fusedops.fused_gated_mlp(x, wg, wu)

    @staticmethod
    def backward(ctx, grad):
        from fusedops import _autograd

        x, wg, wu = ctx.saved_tensors
        x2 = x.reshape(-1, x.shape[-1])
        dg, du = _autograd._gated_mlp_activation_grads(x2, wg, wu, "silu", grad)
        return ((dg @ wg + du @ wu).reshape(x.shape), dg.T @ x2, du.T @ x2)


def fused_mlp_pytorch_backward(x, wg, wu, wd):
    return F.linear(_PyTorchBackwardGatedMlp.apply(x, wg, wu), wd)


def rope_tables(tokens: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / 10000 ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.float64) / HEAD_DIM)
    angles = torch.outer(torch.arange(tokens, dtype=torch.float64), inv)
    angles = torch.cat([angles, angles], -1)
    return angles.cos().float().to(device), angles.sin().float().to(device)


def unfused_qk(q, k, wq, wk, cos, sin, positions):
    def one(t, w):
        t32 = t.float()
        normed = (t32 * torch.rsqrt(t32.pow(2).mean(-1, keepdim=True) + 1e-6) * w.float()).to(
            t.dtype
        )
        c = cos[positions].to(t.dtype)  # [tokens, heads, head_dim]
        s = sin[positions].to(t.dtype)
        half = HEAD_DIM // 2
        rotated = torch.cat([-normed[..., half:], normed[..., :half]], -1)
        return normed * c + rotated * s

    return one(q, wq), one(k, wk)


def fused_qk(q, k, wq, wk, cos, sin, positions):
    return (
        fusedops.fused_rmsnorm_rope(q, wq, cos, sin, positions=positions),
        fusedops.fused_rmsnorm_rope(k, wk, cos, sin, positions=positions),
    )


def step_fn(forward, inputs):
    """One training step: forward, a scalar loss, backward; returns the loss."""

    def step():
        for t in inputs:
            t.grad = None
        out = forward(*inputs)
        outs = out if isinstance(out, tuple) else (out,)
        loss = sum(o.float().pow(2).mean() for o in outs)
        loss.backward()
        return loss

    return step


def measure(name: str, variant: str, step, inputs) -> dict:
    loss = step()  # warm-up: compiles, allocates the grads
    torch.cuda.synchronize()
    for _ in range(2):
        step()
    torch.cuda.synchronize()
    grads = [t.grad.detach().clone() for t in inputs]
    for t in inputs:
        t.grad = None
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    times = []
    for _ in range(10):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    # Back to back, as a training loop runs (no synchronization between steps): the host
    # enqueues the next step while the GPU runs this one.
    loops = []
    for _ in range(3):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(10):
            step()
        stop.record()
        stop.synchronize()
        loops.append(start.elapsed_time(stop) / 10)
    return {
        "case": name,
        "variant": variant,
        "ms": statistics.median(times),
        "loop_ms": statistics.median(loops),
        "peak_mib": peak / 2**20,
        "loss": float(loss),
        "grads": grads,
    }


def profile(step, steps: int = 3) -> list[tuple[str, float, int]]:
    """(kernel, device ms per step, launches per step) of ``step``, longest first."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    step()
    torch.cuda.synchronize()
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    kernels = [
        (e.key, e.device_time_total / 1e3 / steps, e.count // steps)
        for e in prof.key_averages()
        if e.device_time_total > 0
    ]
    return sorted(kernels, key=lambda k: -k[1])


def timeline(step, steps: int = 3) -> dict:
    """Where the GPU idles within ``step``, run as measure() times it (each step followed by a
    synchronization): a torch.profiler trace of host ops, launches and kernels. Per step: the
    time from the step's start on the host to its first kernel (the lead), the GPU's busy
    time, every gap between consecutive kernels (with whether the next kernel's launch came
    after the GPU went idle, i.e. the host was late, and which host ops ran in the gap), and
    the host's synchronizing or allocating driver calls."""
    import os
    import tempfile

    from torch.profiler import ProfilerActivity, record_function
    from torch.profiler import profile as torch_profile

    step()
    torch.cuda.synchronize()
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            with record_function("training step"):
                step()
            torch.cuda.synchronize()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    prof.export_chrome_trace(path)
    events = json.loads(Path(path).read_text()).get("traceEvents", [])
    os.unlink(path)
    complete = [e for e in events if e.get("ph") == "X" and "dur" in e]
    kernels = sorted(
        (e for e in complete if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")),
        key=lambda e: e["ts"],
    )
    api = [e for e in complete if e.get("cat") in ("cuda_runtime", "cuda_driver")]
    launches = {e["args"]["correlation"]: e for e in api if "correlation" in e.get("args", {})}
    host_ops = sorted((e for e in complete if e.get("cat") == "cpu_op"), key=lambda e: e["ts"])
    starts = sorted(
        (
            e
            for e in complete
            if e.get("name") == "training step" and e.get("cat") in ("user_annotation", "cpu_op")
        ),
        key=lambda e: e["ts"],
    )
    per_step = []
    for i, s in enumerate(starts):
        end = starts[i + 1]["ts"] if i + 1 < len(starts) else float("inf")
        ks = [k for k in kernels if s["ts"] <= k["ts"] < end]
        if not ks:
            continue
        last = max(k["ts"] + k["dur"] for k in ks)
        per_step.append(
            {
                "lead_us": ks[0]["ts"] - s["ts"],
                "host_us": s["dur"],
                "gpu_us": last - s["ts"],
                "busy_us": sum(k["dur"] for k in ks),
            }
        )
    gaps = []
    for prev, nxt in itertools.pairwise(kernels):
        idle = nxt["ts"] - (prev["ts"] + prev["dur"])
        if idle <= 2 or any(prev["ts"] < s["ts"] <= nxt["ts"] for s in starts):
            continue  # between steps: the lead above
        launch = launches.get(nxt.get("args", {}).get("correlation"))
        gap = {
            "us": idle,
            "before": prev["name"],
            "after": nxt["name"],
            # > 0: the launch call began after the GPU had gone idle.
            "launch_late_us": (launch["ts"] - (prev["ts"] + prev["dur"])) if launch else None,
        }
        lo, hi = prev["ts"] + prev["dur"], nxt["ts"]
        ops = [o for o in host_ops if o["ts"] < hi and o["ts"] + o["dur"] > lo]
        gap["host_ops"] = [
            (o["name"], round(min(hi, o["ts"] + o["dur"]) - max(lo, o["ts"]), 1))
            for o in sorted(ops, key=lambda o: -o["dur"])[:6]
        ]
        gaps.append(gap)
    blocking = {}
    for e in api:
        name = e["name"]
        if not any(w in name for w in ("Synchronize", "Malloc", "Free", "ModuleLoad", "Memcpy")):
            continue
        if not any(s["ts"] <= e["ts"] < s["ts"] + s["dur"] for s in starts):
            continue  # the benchmark's own synchronization between steps
        n, us = blocking.get(name, (0, 0.0))
        blocking[name] = (n + 1, us + e["dur"])
    n = max(len(per_step), 1)
    return {
        "steps": len(per_step),
        "per_step": per_step,
        "lead_ms": sum(p["lead_us"] for p in per_step) / 1e3 / n,
        "host_ms": sum(p["host_us"] for p in per_step) / 1e3 / n,
        "gpu_ms": sum(p["gpu_us"] for p in per_step) / 1e3 / n,
        "busy_ms": sum(p["busy_us"] for p in per_step) / 1e3 / n,
        "idle_ms": sum(g["us"] for g in gaps) / 1e3 / n,
        "kernels_per_step": len(kernels) / n,
        "gaps": sorted(gaps, key=lambda g: -g["us"]),
        "blocking": {k: (c / n, us / n) for k, (c, us) in blocking.items()},
    }


def timeline_lines(variant: str, t: dict) -> list[str]:
    lines = [
        f"## {variant}",
        "",
        (
            f"Per step (mean of {t['steps']}): {t['kernels_per_step']:.0f} kernels; from the "
            f"step's start on the host to its last kernel's end {t['gpu_ms']:.3f} ms = lead to "
            f"the first kernel {t['lead_ms']:.3f} + kernels {t['busy_ms']:.3f} + gaps between "
            f"kernels {t['idle_ms']:.3f}; the host's step took {t['host_ms']:.3f} ms."
        ),
        "",
    ]
    if t["blocking"]:
        lines += ["| driver/runtime call (host) | calls a step | µs a step |", "|---|---|---|"]
        lines += [
            f"| `{k}` | {c:.1f} | {us:.1f} |"
            for k, (c, us) in sorted(t["blocking"].items(), key=lambda kv: -kv[1][1])
        ]
        lines.append("")
    lines += [
        "| gap µs | before | after | launch late µs | host ops in the gap (µs) |",
        "|---|---|---|---|---|",
    ]
    for g in t["gaps"][:12]:
        late = "" if g["launch_late_us"] is None else f"{g['launch_late_us']:.1f}"
        ops = ", ".join(f"`{n[:40]}` {d}" for n, d in g["host_ops"])
        lines.append(
            f"| {g['us']:.1f} | `{g['before'][:50]}` | `{g['after'][:50]}` | {late} | {ops} |"
        )
    lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=16384)
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument(
        "--profile", action="store_true", help="also each variant's kernels (profile-<case>.md)"
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="also where each variant's GPU idles within a step (timeline-<case>.md)",
    )
    parser.add_argument("--cases", nargs="+", help="only these cases (default: all)")
    args = parser.parse_args()
    dev = torch.device("cuda")
    g = torch.Generator(device="cuda").manual_seed(0)

    def param(*shape, scale=1.0):
        t = torch.randn(*shape, device=dev, generator=g) * scale
        return t.bfloat16().requires_grad_(True)

    rows = []
    n = args.tokens
    mlp_inputs = [
        param(n, HIDDEN),
        param(INTER, HIDDEN, scale=HIDDEN**-0.5),
        param(INTER, HIDDEN, scale=HIDDEN**-0.5),
        param(HIDDEN, INTER, scale=INTER**-0.5),
    ]
    cos, sin = rope_tables(n, dev)
    positions = torch.arange(n, device=dev, dtype=torch.int32).view(n, 1).expand(n, HEADS)
    positions = positions.contiguous()
    qk_inputs = [
        param(n, HEADS, HEAD_DIM),
        param(n, HEADS, HEAD_DIM),
        (1 + 0.1 * torch.randn(HEAD_DIM, device=dev, generator=g)).bfloat16().requires_grad_(),
        (1 + 0.1 * torch.randn(HEAD_DIM, device=dev, generator=g)).bfloat16().requires_grad_(),
    ]
    linear_inputs = [param(n, HIDDEN), param(INTER, HIDDEN, scale=HIDDEN**-0.5)]
    cases = {
        "mlp": (unfused_mlp, fused_mlp, mlp_inputs, ()),
        "fp8_linear": (unfused_linear, fp8_linear("e5m2"), linear_inputs, ()),
        "qk_norm_rope": (unfused_qk, fused_qk, qk_inputs, (cos, sin, positions)),
    }
    for name, (unfused, fused, inputs, extra) in cases.items():
        if args.cases and name not in args.cases:
            continue

        def bind(f, extra=extra):
            return lambda *t: f(*t, *extra)

        variants = {
            "eager": bind(unfused),
            "torch.compile": torch.compile(bind(unfused)),
            "fusedops": bind(fused),
        }
        if name == "mlp":
            variants["fusedops recompute=False"] = bind(fused_mlp_saved)
            variants["fusedops, v2 backward (PyTorch)"] = bind(fused_mlp_pytorch_backward)
        if name == "fp8_linear":
            variants["fusedops"] = fp8_linear("e5m2")
            variants["fusedops backward=e4m3"] = fp8_linear("e4m3")
            variants["fusedops backward=dense"] = fp8_linear("dense")
        results = {v: measure(name, v, step_fn(f, inputs), inputs) for v, f in variants.items()}
        if args.profile:
            lines = [f"# {name}: kernels per step, device ms (torch.profiler)", ""]
            for v, f in variants.items():
                kernels = profile(step_fn(f, inputs))
                total = sum(k[1] for k in kernels)
                lines += [f"## {v}: {total:.3f} ms of kernels", "", "| kernel | ms | launches |"]
                lines += ["|---|---|---|"]
                lines += [f"| `{k[:90]}` | {ms:.3f} | {c} |" for k, ms, c in kernels[:14]]
                lines.append("")
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"profile-{name}.md").write_text("\n".join(lines))
        if args.timeline:
            lines = [f"# {name}: GPU idle time within a step (torch.profiler trace)", ""]
            for v, f in variants.items():
                lines += timeline_lines(v, timeline(step_fn(f, inputs)))
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"timeline-{name}.md").write_text("\n".join(lines))
        ref = results["eager"]
        ref_grads = ref["grads"]
        for r in results.values():
            errs = [
                float((a.double() - b.double()).norm() / b.double().norm())
                for a, b in zip(r.pop("grads"), ref_grads)
            ]
            r["grad_rel_err_max"] = max(errs)
            rows.append(r)
        for v in variants:
            r = results[v]
            r["speed_vs_torch_compile"] = results["torch.compile"]["ms"] / r["ms"]
            r["loop_speed_vs_torch_compile"] = results["torch.compile"]["loop_ms"] / r["loop_ms"]
            r["peak_vs_eager"] = r["peak_mib"] / ref["peak_mib"]
            print(
                f"{name:13s} {v:32s} {r['ms']:8.3f} ms (loop {r['loop_ms']:.3f})  peak "
                f"{r['peak_mib']:8.1f} MiB  x compile {r['speed_vs_torch_compile']:.2f} (loop "
                f"{r['loop_speed_vs_torch_compile']:.2f})  peak/eager "
                f"{r['peak_vs_eager']:.2f}  grad err {r['grad_rel_err_max']:.1e}",
                flush=True,
            )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "training.json").write_text(json.dumps(rows, indent=1))
    lines = [
        f"# Training step, {n} tokens, bf16 ({torch.cuda.get_device_name()})",
        "",
        (
            "ms: a synchronized step (median of 10); loop ms: ten steps back to back, as a "
            "training loop runs them (median of 3 such loops, per step)."
        ),
        "",
        (
            "| case | variant | ms | loop ms | peak MiB | torch.compile / this | same, loop | "
            "peak / eager | max grad err |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['case']} | {r['variant']} | {r['ms']:.3f} | {r['loop_ms']:.3f} | "
        f"{r['peak_mib']:.1f} | {r['speed_vs_torch_compile']:.2f} | "
        f"{r['loop_speed_vs_torch_compile']:.2f} | {r['peak_vs_eager']:.2f} | "
        f"{r['grad_rel_err_max']:.1e} |"
        for r in rows
    ]
    (args.out / "training.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
