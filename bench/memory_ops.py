#!/usr/bin/env python3
"""The memory-bound ops against the copy of the same bytes (issue 16: python bench/memory_ops.py).

Every case moves R bytes in and W bytes out. It is timed (CUDA events, median of --repeat after
warm-up, L2 flushed before each call: fusedops.bench.cases.time_ms) beside, in the same run:

* a device-to-device copy of (R + W) / 2 bytes, which moves the same R + W bytes: the rate the
  card reaches at this size (`of_copy`), and the full-size copy rate (`of_peak_copy`);
* torch.compile of the same computation (rms_norm and add_rms_norm, rms_norm's backward,
  rmsnorm_rope, quantize, dequantize);
* at decode sizes (1-64 rows), an empty kernel launch timed the same way (`vs_empty`).

Each fusedops output is checked against a float64 reference first. Writes memory_ops.json and
memory_ops.md to --out ($OUT or .). `--profile` runs each case once after warm-up, for ncu.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import fusedops
import fusedops.nn
import fusedops.torch_ops
import torch
from fusedops.bench.cases import rel_err, time_ms

torch._dynamo.config.cache_size_limit = 256

ROWS: list[dict] = []
_copy_cache: dict[int, float] = {}


def copy_ms(nbytes: int, repeat: int) -> float:
    """A copy of nbytes (moving 2 * nbytes), timed like the ops."""
    if nbytes not in _copy_cache:
        src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
        dst = torch.empty_like(src)
        _copy_cache[nbytes] = time_ms(lambda: dst.copy_(src), repeat=repeat)
    return _copy_cache[nbytes]


def _rmsnorm_rope_eager(x, w, cos, sin, eps: float, head_dim: int, style: str):
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps) * w.float()
    rows = h.shape[-2]
    heads = h.view(*h.shape[:-1], -1, head_dim)
    c, s = cos[:rows, None, :].float(), sin[:rows, None, :].float()
    if style == "neox":
        half = head_dim // 2
        rot = torch.cat([-heads[..., half:], heads[..., :half]], -1)
    else:
        pairs = heads.view(*heads.shape[:-1], head_dim // 2, 2)
        rot = torch.stack([-pairs[..., 1], pairs[..., 0]], -1).view(heads.shape)
    return (heads * c + rot * s).view(x.shape).to(x.dtype)


_compiled_rmsnorm_rope = torch.compile(_rmsnorm_rope_eager)


def _rms_norm_eager(x, w, eps: float, offset: float):
    h = x.float()
    return (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps) * (w.float() + offset)).to(
        x.dtype
    )


def _add_rms_norm_eager(x, r, w, eps: float, offset: float):
    total = x + r
    return _rms_norm_eager(total, w, eps, offset), total


_compiled_rms_norm = torch.compile(_rms_norm_eager)
_compiled_add_rms_norm = torch.compile(_add_rms_norm_eager)


def _rms_norm_grad_eager(x, w, grad, residual_grad, eps: float, offset: float):
    """rms_norm's backward written out (what torch.compile fuses for the backward of an unfused
    RMSNorm): dx (plus the sum's gradient) and the weight's gradient."""
    h = x.float()
    rstd = torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    g = grad.float() * (w.float() + offset)
    dx = rstd * g - h * rstd.pow(3) * (g * h).mean(-1, keepdim=True)
    if residual_grad is not None:
        dx = dx + residual_grad.float()
    return dx.to(x.dtype), (grad.float() * h * rstd).sum(0).to(w.dtype)


_compiled_rms_norm_grad = torch.compile(_rms_norm_grad_eager)


def _quantize_eager(x, granularity: str):
    xf = x.float()
    if granularity == "row":
        amax = xf.abs().amax(-1, keepdim=True)
    elif granularity == "tensor":
        amax = xf.abs().amax()
    else:
        m, k = xf.shape
        blocks = xf.view(m // 128, 128, k // 128, 128).abs().amax((1, 3))
        amax = blocks.repeat_interleave(128, 0).repeat_interleave(128, 1)
    s = amax.clamp(min=1e-12) / 448.0
    return (xf / s).clamp(-448, 448).to(torch.float8_e4m3fn), s


_compiled_quantize = torch.compile(_quantize_eager)


def _dequantize_eager(q, s, granularity: str):
    if granularity == "row":
        s = s[:, None]
    elif granularity == "block128":
        s = s.repeat_interleave(128, 0).repeat_interleave(128, 1)
    return (q.float() * s).to(torch.bfloat16)


_compiled_dequantize = torch.compile(_dequantize_eager)


def run_case(
    op: str,
    config: str,
    rows: int,
    cols: int,
    fused: Callable[[], Any],
    compiled: Callable[[], Any] | None,
    check: Callable[[], float],
    bytes_moved: int,
    args: argparse.Namespace,
) -> None:
    err = check()
    if args.profile:
        fused()
        torch.cuda.synchronize()
        return
    t_f = time_ms(fused, repeat=args.repeat)
    t_copy = copy_ms(bytes_moved // 2, args.repeat)
    row = {
        "op": op,
        "config": config,
        "rows": rows,
        "cols": cols,
        "MB": bytes_moved / 1e6,
        "err": err,
        "fusedops_us": t_f * 1e3,
        "copy_us": t_copy * 1e3,
        "of_copy": t_copy / t_f,
        "of_peak_copy": bytes_moved / (t_f * 1e-3) / args.peak_copy_bps,
    }
    if args.label:
        row["variant"] = args.label
    if args.tile:
        row["tile"] = args.tile
    if compiled is not None and not args.no_compile:
        t_c = time_ms(compiled, repeat=args.repeat)
        row.update(torch_compile_us=t_c * 1e3, vs_torch_compile=t_c / t_f)
    if rows <= 64:
        row["vs_empty"] = t_f / args.empty_ms
    ROWS.append(row)
    print(
        " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
        flush=True,
    )


def rmsnorm_rope_cases(args: argparse.Namespace) -> None:
    # (rows, hidden, head_dim, dtype, style, rotary_fraction, positions)
    configs = [
        (1, 4096, 128, torch.bfloat16, "neox", 1.0, True),
        (16, 4096, 128, torch.bfloat16, "neox", 1.0, True),
        (64, 4096, 128, torch.bfloat16, "neox", 1.0, True),
        (1024, 4096, 128, torch.bfloat16, "neox", 1.0, False),  # 16 MB
        (4096, 4096, 128, torch.bfloat16, "neox", 1.0, False),  # 64 MB (report's 1x4096x4096)
        (4096, 4096, 64, torch.float16, "neox", 1.0, False),
        (4096, 4096, 128, torch.bfloat16, "gptj", 1.0, False),
        (4096, 4096, 128, torch.bfloat16, "neox", 0.5, True),
        (8192, 4096, 128, torch.bfloat16, "neox", 1.0, False),  # 128 MB
        (16384, 4096, 64, torch.float16, "neox", 1.0, False),  # the seed's 8x2048x4096
        (8192, 8192, 128, torch.bfloat16, "neox", 1.0, False),  # 256 MB (Llama 70B)
        # QK-norm: each head a row (16384 tokens x 32 heads of 128, the training benchmark's
        # shape), a token's heads at its position: rows taken several at once ([R, S] tiles).
        (16384 * 32, 128, 128, torch.bfloat16, "neox", 1.0, True),
    ]
    for rows, hidden, head_dim, dtype, style, fraction, with_positions in configs:
        g = torch.Generator(device="cuda").manual_seed(rows + hidden)
        x = torch.randn(rows, hidden, device="cuda", dtype=dtype, generator=g)
        w = (1 + 0.1 * torch.randn(hidden, device="cuda", generator=g)).to(dtype)
        rot = int(head_dim * fraction)
        per_head = hidden == head_dim  # QK-norm's rows: 32 heads a token
        table = rows // 32 if per_head else max(rows, 4096)
        cos, sin = fusedops.nn.rope_tables(table, rot, 10000.0, style)
        cos, sin = cos.cuda(), sin.cuda()
        if per_head:
            positions = torch.arange(rows, device="cuda", dtype=torch.int32) // 32
        elif with_positions:
            positions = torch.randint(
                0, table, (rows,), device="cuda", dtype=torch.int32, generator=g
            )
        else:
            positions = None
        kwargs = dict(eps=1e-6, head_dim=head_dim, rope_style=style, rotary_fraction=fraction)

        def fused(x=x, w=w, cos=cos, sin=sin, positions=positions, kwargs=kwargs):
            return fusedops.fused_rmsnorm_rope(x, w, cos, sin, positions=positions, **kwargs)

        def check(fused=fused, x=x, w=w, cos=cos, sin=sin, positions=positions, kwargs=kwargs):
            out = fused()
            ref = fusedops.reference.rmsnorm_rope(
                x.double().cpu().numpy(),
                w.double().cpu().numpy(),
                cos.double().cpu().numpy(),
                sin.double().cpu().numpy(),
                eps=1e-6,
                head_dim=kwargs["head_dim"],
                rope_style=kwargs["rope_style"],
                rotary_fraction=kwargs["rotary_fraction"],
                positions=None if positions is None else positions.cpu().numpy(),
            )
            return rel_err(out, torch.from_numpy(ref).cuda())

        compiled = None
        if fraction == 1.0 and positions is None:
            seq_cos, seq_sin = cos[:rows], sin[:rows]

            def compiled(x=x, w=w, c=seq_cos, s=seq_sin, hd=head_dim, st=style):
                return _compiled_rmsnorm_rope(x.unsqueeze(0), w, c, s, 1e-6, hd, st)

        moved = 2 * x.numel() * x.element_size() + w.numel() * w.element_size()
        moved += 2 * min(rows, table) * rot * cos.element_size()  # the table rows read
        name = f"{str(dtype).split('.')[-1]} h{head_dim} {style}" + (
            f" rot{fraction:g}" if fraction != 1.0 else ""
        )
        name += " positions" if with_positions else ""
        run_case("rmsnorm_rope", name, rows, hidden, fused, compiled, check, moved, args)


def rms_norm_cases(args: argparse.Namespace) -> None:
    # (rows, hidden, dtype, residual, weight_offset)
    configs = [
        (1, 4096, torch.bfloat16, False, 0.0),
        (16, 4096, torch.bfloat16, False, 0.0),
        (64, 4096, torch.bfloat16, True, 0.0),
        (1024, 4096, torch.bfloat16, False, 0.0),  # 16 MB
        (4096, 4096, torch.bfloat16, False, 0.0),  # 64 MB
        (16384, 4096, torch.bfloat16, False, 0.0),  # 256 MB
        (8192, 8192, torch.bfloat16, False, 0.0),
        (4096, 3072, torch.float16, False, 1.0),  # Gemma's (1 + w)
        (1024, 4096, torch.bfloat16, True, 0.0),  # 32 MB
        (4096, 4096, torch.bfloat16, True, 0.0),
        (16384, 4096, torch.bfloat16, True, 0.0),  # 512 MB
        (8192, 8192, torch.float16, True, 0.0),
    ]
    for rows, hidden, dtype, with_residual, offset in configs:
        g = torch.Generator(device="cuda").manual_seed(rows + hidden)
        x = torch.randn(rows, hidden, device="cuda", dtype=dtype, generator=g)
        r = torch.randn(rows, hidden, device="cuda", dtype=dtype, generator=g)
        w = (1 + 0.1 * torch.randn(hidden, device="cuda", generator=g)).to(dtype)
        if with_residual:

            def fused(x=x, r=r, w=w, offset=offset):
                return fusedops.fused_add_rms_norm(x, r, w, 1e-6, weight_offset=offset)

            def compiled(x=x, r=r, w=w, offset=offset):
                return _compiled_add_rms_norm(x, r, w, 1e-6, offset)

        else:

            def fused(x=x, w=w, offset=offset):
                return fusedops.fused_rms_norm(x, w, 1e-6, weight_offset=offset)

            def compiled(x=x, w=w, offset=offset):
                return _compiled_rms_norm(x, w, 1e-6, offset)

        def check(fused=fused, x=x, r=r, w=w, offset=offset, with_residual=with_residual):
            out = fused()
            total = x
            if with_residual:
                out, total = out
                if not torch.equal(total, x + r):
                    return float("inf")  # the sum must be the rounded x + r, bit for bit
            ref = fusedops.reference.rms_norm(
                total.double().cpu().numpy(),
                w.double().cpu().numpy(),
                eps=1e-6,
                weight_offset=offset,
            )
            return rel_err(out, torch.from_numpy(ref).cuda())

        streams = 4 if with_residual else 2
        moved = streams * x.numel() * x.element_size() + w.numel() * w.element_size()
        name = str(dtype).split(".")[-1] + (" +residual" if with_residual else "")
        name += f" offset{offset:g}" if offset else ""
        op = "add_rms_norm" if with_residual else "rms_norm"
        run_case(op, name, rows, hidden, fused, compiled, check, moved, args)


def rms_norm_grad_cases(args: argparse.Namespace) -> None:
    # The backward kernel (rms_norm_grad) with its partial sums' reduction, as the autograd
    # formula runs it. (rows, hidden, dtype, with the sum's gradient, weight_offset)
    from fusedops._op_kernels import _rms_norm_grad_impl

    configs = [
        (1, 4096, torch.bfloat16, False, 0.0),
        (64, 4096, torch.bfloat16, True, 0.0),
        (1024, 4096, torch.bfloat16, False, 0.0),  # 24 MB
        (4096, 4096, torch.bfloat16, False, 0.0),  # 96 MB
        (16384, 4096, torch.bfloat16, False, 0.0),  # 384 MB: a training step's norm
        (16384, 4096, torch.bfloat16, True, 0.0),  # 512 MB: add_rms_norm's
        (8192, 8192, torch.bfloat16, False, 0.0),
        (4096, 3072, torch.float16, False, 1.0),  # Gemma's (1 + w)
        (16384, 4096, torch.float32, False, 0.0),
    ]
    for rows, hidden, dtype, with_residual, offset in configs:
        g = torch.Generator(device="cuda").manual_seed(rows + hidden)
        x = torch.randn(rows, hidden, device="cuda", dtype=dtype, generator=g)
        grad = torch.randn(rows, hidden, device="cuda", dtype=dtype, generator=g)
        rg = torch.randn_like(grad) if with_residual else None
        w = (1 + 0.1 * torch.randn(hidden, device="cuda", generator=g)).to(dtype)

        def fused(x=x, w=w, grad=grad, rg=rg, offset=offset):
            return _rms_norm_grad_impl(x, w, grad, rg, 1e-6, offset)

        def compiled(x=x, w=w, grad=grad, rg=rg, offset=offset):
            return _compiled_rms_norm_grad(x, w, grad, rg, 1e-6, offset)

        def check(fused=fused, x=x, w=w, grad=grad, rg=rg, offset=offset):
            dx, dw = fused()
            rg64 = None if rg is None else rg.double()
            want_dx, want_dw = _rms_norm_grad_eager(
                x.double(), w.double(), grad.double(), rg64, 1e-6, offset
            )
            return max(rel_err(dx, want_dx), rel_err(dw, want_dw))

        streams = 4 if with_residual else 3
        moved = streams * x.numel() * x.element_size() + 2 * w.numel() * w.element_size()
        name = str(dtype).split(".")[-1] + (" +residual_grad" if with_residual else "")
        name += f" offset{offset:g}" if offset else ""
        run_case("rms_norm_grad", name, rows, hidden, fused, compiled, check, moved, args)


def quantize_cases(args: argparse.Namespace) -> None:
    configs = [
        (1, 4096, "row", "e4m3"),
        (16, 4096, "row", "e4m3"),
        (64, 4096, "row", "e4m3"),
        (1024, 4096, "row", "e4m3"),  # 12 MB
        (4096, 4096, "row", "e4m3"),  # 48 MB
        (4096, 4096, "row", "e5m2"),
        (4096, 4096, "tensor", "e4m3"),
        (4096, 4096, "block128", "e4m3"),
        (8192, 8192, "row", "e4m3"),  # 201 MB
        (8192, 8192, "tensor", "e4m3"),
        (8192, 8192, "block128", "e4m3"),
        # The one-pass tensor kernel from decode sizes to past what the blocks hold.
        (1, 4096, "tensor", "e4m3"),
        (64, 4096, "tensor", "e4m3"),
        (1024, 4096, "tensor", "e4m3"),  # 12 MB
        (2048, 4096, "tensor", "e4m3"),  # 25 MB
        (8192, 4096, "tensor", "e4m3"),  # 100 MB
        (16384, 4096, "tensor", "e4m3"),  # 201 MB
    ]
    wanted = args.granularities.split(",")
    for rows, cols, granularity, fmt in configs:
        if granularity not in wanted:
            continue
        g = torch.Generator(device="cuda").manual_seed(rows * 3 + cols)
        x = torch.randn(rows, cols, device="cuda", dtype=torch.bfloat16, generator=g)

        def fused(x=x, granularity=granularity, fmt=fmt):
            return fusedops.quantize_fp8(x, fmt=fmt, granularity=granularity)

        def check(fused=fused, x=x, granularity=granularity):
            q, s = fused()
            back = fusedops.dequantize_fp8(q, s, granularity=granularity, out_dtype=torch.float32)
            return rel_err(back, x.double())

        compiled = None
        if fmt == "e4m3" and (granularity != "block128" or rows % 128 == 0):

            def compiled(x=x, granularity=granularity):
                return _compiled_quantize(x, granularity)

        scales = {"row": rows, "tensor": 1, "block128": -(-rows // 128) * -(-cols // 128)}
        moved = x.numel() * 2 + x.numel() + 4 * scales[granularity]
        config = f"{granularity} {fmt}"
        run_case("quantize", config, rows, cols, fused, compiled, check, moved, args)


def dequantize_cases(args: argparse.Namespace) -> None:
    configs = [
        (16, 4096, "row"),
        (4096, 4096, "row"),
        (4096, 14336, "tensor"),
        (4096, 4096, "block128"),
        (8192, 8192, "row"),
    ]
    for rows, cols, granularity in configs:
        g = torch.Generator(device="cuda").manual_seed(rows * 5 + cols)
        x = torch.randn(rows, cols, device="cuda", dtype=torch.bfloat16, generator=g)
        q, s = fusedops.quantize_fp8(x, granularity=granularity)

        def fused(q=q, s=s, granularity=granularity):
            return fusedops.dequantize_fp8(q, s, granularity=granularity)

        def check(fused=fused, q=q, s=s, granularity=granularity):
            ref = _dequantize_eager(q.double(), s.double(), granularity)
            return rel_err(fused(), ref)

        def compiled(q=q, s=s, granularity=granularity):
            return _compiled_dequantize(q, s, granularity)

        moved = q.numel() + q.numel() * 2 + 4 * s.numel()
        run_case("dequantize", granularity, rows, cols, fused, compiled, check, moved, args)


def markdown(report: dict) -> str:
    lines = [
        f"# Memory-bound ops on {report['device']}",
        "",
        f"torch {report['torch']}; {report['compiler']}. Full-size copy rate in this run: "
        f"{report['peak_copy_GBps']:.0f} GB/s; empty kernel launch {report['empty_us']:.1f} µs "
        "(timed like the ops: CUDA events around one call, L2 flushed before it).",
        "",
        "| op | config | rows×cols | MB moved | fusedops µs | copy of same bytes µs "
        "| % of that copy | % of peak copy | vs torch.compile | vs empty launch | rel. error |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        tc = f"{r['vs_torch_compile']:.2f}×" if "vs_torch_compile" in r else "—"
        empty = f"{r['vs_empty']:.2f}×" if "vs_empty" in r else "—"
        lines.append(
            f"| {r['op']} | {r['config']} | {r['rows']}×{r['cols']} | {r['MB']:.2f} "
            f"| {r['fusedops_us']:.1f} | {r['copy_us']:.1f} | {100 * r['of_copy']:.1f}% "
            f"| {100 * r['of_peak_copy']:.1f}% | {tc} | {empty} | {r['err']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--ops", default="rms_norm,rms_norm_grad,rmsnorm_rope,quantize,dequantize")
    parser.add_argument("--profile", action="store_true", help="one call per case, for ncu")
    parser.add_argument("--tile", help="force this #fusedops.tile<...> on every fusedops kernel")
    parser.add_argument("--label", help="a name for this run's rows (a library variant)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument(
        "--granularities", default="row,tensor,block128", help="the quantize cases to run"
    )
    args = parser.parse_args()
    ops = args.ops.split(",")
    if not args.profile:
        n = 1 << 30
        args.peak_copy_bps = 2 * n / (copy_ms(n, args.repeat) * 1e-3)
        tiny = torch.zeros(1, device="cuda")
        args.empty_ms = time_ms(lambda: tiny.add_(0), repeat=args.repeat)
    override = fusedops.torch_ops._tuning(args.tile) if args.tile else contextlib.nullcontext()
    with torch.no_grad(), override:
        for op, cases in (
            ("rms_norm", rms_norm_cases),
            ("rms_norm_grad", rms_norm_grad_cases),
            ("rmsnorm_rope", rmsnorm_rope_cases),
            ("quantize", quantize_cases),
            ("dequantize", dequantize_cases),
        ):
            if op in ops:
                cases(args)
    if args.profile:
        return 0
    report = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "compiler": fusedops._native.compiler_version(),
        "peak_copy_GBps": args.peak_copy_bps / 1e9,
        "empty_us": args.empty_ms * 1e3,
        "rows": ROWS,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "memory_ops" + (f"-{args.label}" if args.label else "")
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    (out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
