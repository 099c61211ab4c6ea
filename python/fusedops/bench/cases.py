"""What ``python -m fusedops.bench`` and ``python -m fusedops.tune`` share: CUDA-event timing
with the L2 flushed, the ceilings, and the benchmark cases (each: implementations to time, a
float64 reference, a tolerance and the work done) per operator and Llama-like shape."""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any, Callable

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("fusedops.bench needs PyTorch with CUDA: pip install torch")

import fusedops
import fusedops.nn

Fn = Callable[[], torch.Tensor]

# ------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------

_flush_buf: torch.Tensor | None = None
# "dirty": overwrite 256 MB (the previous method): the L2 is then full of dirty lines that the
# timed call pays to write back (~50 MB, ~12 us at the copy rate: a large share of a decode
# GEMM's time); "clean" (the default): read 256 MB, so that the L2 holds clean lines of an
# unrelated buffer and earlier outputs were written back before the timed call starts.
FLUSH_MODE = "clean"


def _flush_l2() -> None:
    global _flush_buf
    if _flush_buf is None:
        _flush_buf = torch.ones(64 * 1024 * 1024, dtype=torch.int32, device="cuda")
    if FLUSH_MODE == "dirty":
        _flush_buf.fill_(1)
    else:
        _flush_buf.amax()


def time_ms(
    fn: Callable[[], Any], warmup: int = 3, repeat: int = 20, warmup_ms: float = 20.0
) -> float:
    """Median time of ``fn`` in ms (CUDA events, L2 flushed before each timed call: FLUSH_MODE).

    Warm-up: ``warmup`` calls, then calls until ``warmup_ms`` of device time went by, so that
    the clocks have ramped up after an idle pause (a compile): short kernels timed right after
    one measured up to 2x slower (decode tiles on an H200, docs/perf/gemm-engine.md v7)."""
    for _ in range(warmup):
        fn()
    start = torch.cuda.Event(enable_timing=True)
    stop = torch.cuda.Event(enable_timing=True)
    spent, calls = 0.0, 1
    while spent < warmup_ms and calls < 1 << 16:
        start.record()
        for _ in range(calls):
            fn()
        stop.record()
        torch.cuda.synchronize()
        spent += start.elapsed_time(stop)
        calls *= 2
    times = []
    for _ in range(repeat):
        _flush_l2()
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def kernel_device_ms(fn: Callable[[], Any], calls: int = 20) -> tuple[dict[str, float], float]:
    """Device ms per call of each kernel ``fn`` launches (torch.profiler, by kernel name) and
    the host ms per call (synchronized, under the profiler), over ``calls`` calls."""
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
        host = (time.perf_counter() - start) * 1e3 / calls
    kernels: dict[str, float] = {}
    for event in prof.key_averages():
        device_us = getattr(event, "device_time_total", 0.0)
        if event.device_type == torch.autograd.DeviceType.CUDA and device_us:
            kernels[event.key] = kernels.get(event.key, 0.0) + device_us / calls / 1e3
    return kernels, host


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.time()

    def step(self, label: str) -> None:
        self.done += 1
        width = 30
        filled = width * self.done // max(self.total, 1)
        elapsed = time.time() - self.start
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"{elapsed:5.0f}s {label[:50]:<50}"
        )
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    out, ref = out.double(), ref.double()
    return float((out - ref).norm() / ref.norm())


# ------------------------------------------------------------------------------------------
# Ceilings
# ------------------------------------------------------------------------------------------


def measure_ceilings() -> dict[str, float]:
    n = 1 << 30
    src = torch.empty(n, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src))
    copy_gbs = 2 * n / ms / 1e6
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    ms = time_ms(lambda: a @ b)
    gemm_tflops = 2 * 8192**3 / ms / 1e9
    one = torch.ones((), device="cuda")
    qa, qb = a.to(torch.float8_e4m3fn), b.to(torch.float8_e4m3fn).T
    ms = time_ms(
        lambda: torch._scaled_mm(qa, qb, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    )
    fp8_tflops = 2 * 8192**3 / ms / 1e9

    return {"copy_GBps": copy_gbs, "dense_bf16_TFLOPs": gemm_tflops, "dense_fp8_TFLOPs": fp8_tflops}


# ------------------------------------------------------------------------------------------
# Cases: each returns {impl: fn}, a float64 reference, a tolerance, and the work done
# ------------------------------------------------------------------------------------------


def _rope_tables(n: int, rot: int) -> tuple[torch.Tensor, torch.Tensor]:
    cos, sin = fusedops.nn.rope_tables(n, rot, 10000.0, "neox")
    return cos.cuda(), sin.cuda()


def _eager_rmsnorm_rope(x, w, cos, sin, eps: float, head_dim: int):
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps) * w.float()
    seq = x.shape[-2]
    heads = h.view(*h.shape[:-1], -1, head_dim)
    half = head_dim // 2
    rot = torch.cat([-heads[..., half:], heads[..., :half]], -1)
    c, s = cos[:seq, None, :], sin[:seq, None, :]
    return (heads * c + rot * s).view(x.shape).to(x.dtype)


def case_rmsnorm_rope(batch: int, seq: int, hidden: int, head_dim: int = 128):
    x = torch.randn(batch, seq, hidden, device="cuda", dtype=torch.bfloat16)
    w = (1 + 0.1 * torch.randn(hidden, device="cuda")).bfloat16()
    cos, sin = _rope_tables(seq, head_dim)
    eps = 1e-6
    eager = lambda: _eager_rmsnorm_rope(x, w, cos, sin, eps, head_dim)  # noqa: E731
    compiled_fn = torch.compile(_eager_rmsnorm_rope)
    impls = {
        "fusedops": lambda: fusedops.fused_rmsnorm_rope(x, w, cos, sin, eps=eps, head_dim=head_dim),
        "eager": eager,
        "torch.compile": lambda: compiled_fn(x, w, cos, sin, eps, head_dim),
    }
    x64 = x.double()
    y = x64 * torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + eps) * w.double()
    heads = y.view(batch, seq, -1, head_dim)
    half = head_dim // 2
    rot = torch.cat([-heads[..., half:], heads[..., :half]], -1)
    ref = (heads * cos.double()[:, None] + rot * sin.double()[:, None]).view(x.shape)
    nbytes = 2 * x.numel() * 2 + w.numel() * 2 + 2 * cos.numel() * 4
    return impls, ref, 1e-2, {"bytes": nbytes}


def case_gated_mlp(m: int, n: int, k: int):
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    wg = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * k**-0.5
    wu = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * k**-0.5
    w_cat = torch.cat([wg, wu], 0)

    def eager_fn(x, wg, wu):
        return F.silu(x @ wg.T) * (x @ wu.T)

    compiled_fn = torch.compile(eager_fn)
    impls = {
        "fusedops": lambda: fusedops.fused_gated_mlp(x, wg, wu, "silu"),
        "eager": lambda: eager_fn(x, wg, wu),
        "torch.compile": lambda: compiled_fn(x, wg, wu),
        "cuBLAS GEMM only": lambda: x @ w_cat.T,
    }
    x64 = x.double()
    ref = F.silu(x64 @ wg.double().T) * (x64 @ wu.double().T)
    return impls, ref, 2e-2, {"flops": 4 * m * n * k, "unchecked": {"cuBLAS GEMM only"}}


def case_fp8_gemm(m: int, n: int, k: int):
    a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, k, device="cuda", dtype=torch.bfloat16)
    qa, sa = fusedops.quantize_fp8(a, granularity="tensor")
    qb, sb = fusedops.quantize_fp8(b, granularity="tensor")
    bt = b.T  # cuBLASLt wants the second operand column-major
    qbt = qb.T

    def eager_fn(qa, qbt, sa, sb):
        return torch._scaled_mm(qa, qbt, scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16)

    impls = {
        "fusedops": lambda: fusedops.fp8_gemm(
            qa, qb, a_scale=sa, b_scale=sb, granularity="tensor", out_dtype=torch.bfloat16
        ),
        "cuBLASLt FP8 (_scaled_mm)": lambda: eager_fn(qa, qbt, sa, sb),
        "torch.compile": (lambda f: lambda: f(qa, qbt, sa, sb))(torch.compile(eager_fn)),
        "cuBLAS bf16 matmul": lambda: a @ bt,
    }
    ref = (qa.double() * sa.double()) @ (qb.double() * sb.double()).T
    return impls, ref, 1e-2, {"flops": 2 * m * n * k, "unchecked": {"cuBLAS bf16 matmul"}}


def case_quantize(m: int, k: int, granularity: str):
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)

    def eager_fn(x):
        xf = x.float()
        if granularity == "row":
            amax = xf.abs().amax(-1, keepdim=True)
        else:
            amax = xf.abs().amax()
        s = amax.clamp(min=1e-12) / 448.0
        return (xf / s).clamp(-448, 448).to(torch.float8_e4m3fn), s

    compiled_fn = torch.compile(eager_fn)
    impls = {
        "fusedops": lambda: fusedops.quantize_fp8(x, granularity=granularity),
        "eager": lambda: eager_fn(x),
        "torch.compile": lambda: compiled_fn(x),
    }
    ref = x.double()
    nbytes = x.numel() * 2 + x.numel() + (m * 4 if granularity == "row" else 4)
    return impls, ref, 0.04, {"bytes": nbytes, "dequantize": True}


def case_dequantize(m: int, k: int, granularity: str):
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    q, s = fusedops.quantize_fp8(x, granularity=granularity)
    torch.cuda.synchronize()

    def eager_fn(q, s):
        return (q.float() * (s if s.dim() == 0 else s[:, None])).to(torch.bfloat16)

    compiled_fn = torch.compile(eager_fn)
    impls = {
        "fusedops": lambda: fusedops.dequantize_fp8(
            q, s, granularity=granularity, out_dtype=torch.bfloat16
        ),
        "eager": lambda: eager_fn(q, s),
        "torch.compile": lambda: compiled_fn(q, s),
    }
    ref = q.double() * (s.double() if s.dim() == 0 else s.double()[:, None])
    nbytes = q.numel() * 3 + s.numel() * 4
    return impls, ref, 1e-2, {"bytes": nbytes}


SUITES: dict[str, list[tuple[str, Callable[[], Any]]]] = {
    "rmsnorm_rope": [
        ("1x4096x4096 (Llama-2 7B prefill)", lambda: case_rmsnorm_rope(1, 4096, 4096)),
        ("4x2048x4096", lambda: case_rmsnorm_rope(4, 2048, 4096)),
        ("1x8192x8192 (Llama 70B)", lambda: case_rmsnorm_rope(1, 8192, 8192)),
    ],
    "gated_mlp": [
        ("M=4096 N=11008 K=4096 (Llama-2 7B)", lambda: case_gated_mlp(4096, 11008, 4096)),
        ("M=4096 N=14336 K=4096 (Llama-3 8B)", lambda: case_gated_mlp(4096, 14336, 4096)),
        ("M=256 N=14336 K=4096 (decode batch)", lambda: case_gated_mlp(256, 14336, 4096)),
    ],
    "fp8_gemm": [
        ("M=N=K=4096", lambda: case_fp8_gemm(4096, 4096, 4096)),
        ("M=4096 N=14336 K=4096", lambda: case_fp8_gemm(4096, 14336, 4096)),
        ("M=8192 N=8192 K=8192", lambda: case_fp8_gemm(8192, 8192, 8192)),
    ],
    "quantize": [
        ("4096x4096 row", lambda: case_quantize(4096, 4096, "row")),
        ("8192x8192 row", lambda: case_quantize(8192, 8192, "row")),
        ("8192x8192 tensor", lambda: case_quantize(8192, 8192, "tensor")),
    ],
    "dequantize": [
        ("4096x4096 row", lambda: case_dequantize(4096, 4096, "row")),
        ("8192x8192 row", lambda: case_dequantize(8192, 8192, "row")),
        ("4096x14336 tensor", lambda: case_dequantize(4096, 14336, "tensor")),
    ],
}


def _check(name: str, out: Any, ref: torch.Tensor, tol: float, meta: dict) -> float | None:
    if meta.get("dequantize"):
        q, s = out
        out = q.double() * (s.double() if s.dim() == 0 else s.double().reshape(-1, 1))
    return rel_err(out, ref)
