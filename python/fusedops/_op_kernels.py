"""The compiled kernel of each op for a call's tensors (:func:`fusedops._launch._kernel`: the
source from the op's C++ builder, one module per row-count class or exact shape) and the
implementations the custom ops and the plain eager calls of :mod:`fusedops.torch_ops` run."""

from __future__ import annotations

from typing import Optional

import torch

from . import _codegen, _native
from ._launch import _Kernel, _kernel, _launch
from ._torch_checks import _mlir, _row_count, _row_sizes


def _rmsnorm_rope_kernel(
    x: torch.Tensor,
    weight: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    positions: Optional[torch.Tensor],
    head_dim: int,
    eps: float,
    rope_style: str,
    rotary_fraction: float,
    grad: Optional[torch.Tensor] = None,
) -> _Kernel:
    """The kernel of ``rmsnorm_rope``, or with ``grad`` that of ``rmsnorm_rope_grad`` (inputs
    ``x``, ``weight``, ``cos``, ``sin``, ``positions``, ``grad``; outputs ``dx``, the weight
    gradient's partial sums (:func:`_grad_partials` rows, scratch) and the weight's gradient)."""
    partials = None if grad is None else _grad_partials(x)
    key = (
        x.shape,
        x.dtype,
        cos.shape,
        cos.dtype,
        None if positions is None else positions.shape,
        None if positions is None else positions.dtype,
        head_dim,
        eps,
        rope_style,
        rotary_fraction,
        partials,
    )

    def build(rows_hint: Optional[int]) -> tuple[str, list[str]]:
        rows = _row_sizes(x.shape, rows_hint)
        # A class's kernel takes tables of any length too (HF's have a row per token).
        table = cos.shape if rows_hint is None else (None, cos.shape[-1])
        return _codegen.rmsnorm_rope_source(
            (*rows, x.shape[-1]),
            _mlir(x.dtype),
            table,
            _mlir(cos.dtype),
            head_dim=head_dim,
            eps=eps,
            style=rope_style,
            rotary_fraction=rotary_fraction,
            positions_shape=None if positions is None else rows,
            positions_dtype="i64"
            if positions is not None and positions.dtype == torch.int64
            else "i32",
            rows_hint=rows_hint,
            grad_partials=partials,
        )

    if grad is None:
        return _kernel(
            "rmsnorm_rope",
            key,
            build,
            [x, weight, cos, sin, positions],
            [(x.shape, x.dtype)],
            rows=_row_count(x.shape),
        )
    return _kernel(
        "rmsnorm_rope_grad",
        key,
        build,
        [x, weight, cos, sin, positions, grad],
        _grad_outputs(x, weight, partials),
        rows=_row_count(x.shape),
    )


def _grad_outputs(x: torch.Tensor, weight: torch.Tensor, partials: int) -> list:
    """The outputs of a norm's backward kernel: ``dx``, the weight gradient's ``partials``
    partial sums (f32) and the weight's gradient, their sum."""
    return [
        (x.shape, x.dtype),
        ((partials, x.shape[-1]), torch.float32),
        ((x.shape[-1],), weight.dtype),
    ]


def _grad_partials(x: torch.Tensor, per_sm: int = 8) -> int:
    """Rows P of a norm backward's weight-gradient partial sums (rmsnorm_rope_grad,
    rms_norm_grad) for rows ``x``: the blocks of its grid, ``per_sm`` per SM of ``x``'s GPU (a
    block takes ⌈rows / P⌉ consecutive rows), fewer for fewer rows (a power of two at least
    the rows, so that a class kernel of dynamic rows serves many row counts): each partial row
    is written and summed whether its block had rows or not. rmsnorm_rope_grad takes 8 (at the
    training benchmark's QK shape 124 µs of kernel against 130 at 4 and 132-145 at 12 and
    16), rms_norm_grad 4 for 16-bit x (the kernel, 5 blocks per SM, faster than at 8 and its
    weight-gradient sum 3.9 instead of 6.8 µs at 16384×4096) and 8 for f32 x (238 µs at 4
    against 224-233 at 8; docs/perf/memory-ops.md v11)."""
    device = x.get_device()
    sms = _sms_per_gpu.get(device)
    if sms is None:
        sms = torch.cuda.get_device_properties(device).multi_processor_count
        _sms_per_gpu[device] = sms
    rows = _row_count(x.shape)
    return min(per_sm * sms, 1 << max(rows - 1, 0).bit_length())


#: The SMs per GPU index (a device query costs host time on every backward).
_sms_per_gpu: dict[int, int] = {}


def _rmsnorm_rope_grad_impl(
    x: torch.Tensor,
    weight: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    positions: Optional[torch.Tensor],
    grad: torch.Tensor,
    head_dim: int,
    eps: float,
    rope_style: str,
    rotary_fraction: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``rmsnorm_rope``'s input gradient and its weight gradient (in ``weight``'s dtype,
    summed over the partial sums by the module's second kernel)."""
    kernel = _rmsnorm_rope_kernel(
        x, weight, cos, sin, positions, head_dim, eps, rope_style, rotary_fraction, grad
    )
    dx, _, dw = kernel([x, weight, cos, sin, positions, grad])
    return dx, dw


def _rmsnorm_rope_impl(
    x: torch.Tensor,
    weight: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    positions: Optional[torch.Tensor],
    head_dim: int,
    eps: float,
    rope_style: str,
    rotary_fraction: float,
) -> torch.Tensor:
    kernel = _rmsnorm_rope_kernel(
        x, weight, cos, sin, positions, head_dim, eps, rope_style, rotary_fraction
    )
    return kernel([x, weight, cos, sin, positions])[0]


def _rms_norm_kernel(
    x: torch.Tensor,
    weight: torch.Tensor,
    residual: Optional[torch.Tensor],
    eps: float,
    weight_offset: float,
    grad: Optional[torch.Tensor] = None,
) -> _Kernel:
    """The kernel of ``rms_norm`` (``residual`` None) or ``add_rms_norm``: arguments ``x``,
    ``weight``, ``residual`` and the outputs (``normed``, ``total``). With ``grad``, that of
    ``rms_norm_grad`` (``residual``: the sum's gradient, added): arguments ``x``, ``weight``,
    ``grad``, ``residual`` and the outputs of :func:`_grad_outputs`."""
    has_residual = residual is not None
    op = "add_rms_norm" if has_residual else "rms_norm"
    if grad is None:
        partials = None
        inputs = [x, weight, residual]
        outputs = [(x.shape, x.dtype)] * (2 if has_residual else 1)
    else:
        op += "_grad"
        partials = _grad_partials(x, per_sm=8 if x.dtype == torch.float32 else 4)
        inputs = [x, weight, grad, residual]
        outputs = _grad_outputs(x, weight, partials)
    return _kernel(
        op,
        (x.shape, x.dtype, eps, weight_offset, partials),
        lambda hint: _codegen.rms_norm_source(
            (*_row_sizes(x.shape, hint), x.shape[-1]),
            _mlir(x.dtype),
            eps=eps,
            residual=has_residual,
            weight_offset=weight_offset,
            rows_hint=hint,
            grad_partials=partials,
        ),
        inputs,
        outputs,
        rows=_row_count(x.shape),
    )


def _rms_norm_grad_impl(
    x: torch.Tensor,
    weight: torch.Tensor,
    grad: torch.Tensor,
    residual_grad: Optional[torch.Tensor],
    eps: float,
    weight_offset: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``rms_norm``'s input gradient (plus ``residual_grad``, the gradient of
    ``add_rms_norm``'s sum, where given) and its weight gradient (in ``weight``'s dtype) from
    the ``rms_norm_grad`` kernel; ``x`` is the rows the forward normalised."""
    kernel = _rms_norm_kernel(x, weight, residual_grad, eps, weight_offset, grad)
    dx, _, dw = kernel([x, weight, grad, residual_grad])
    return dx, dw


def _rms_norm_impl(
    x: torch.Tensor, weight: torch.Tensor, eps: float, weight_offset: float
) -> torch.Tensor:
    return _rms_norm_kernel(x, weight, None, eps, weight_offset)([x, weight])[0]


def _add_rms_norm_impl(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float, weight_offset: float
) -> tuple[torch.Tensor, torch.Tensor]:
    kernel = _rms_norm_kernel(x, weight, residual, eps, weight_offset)
    out, total = kernel([x, weight, residual])
    return out, total


def _gated_mlp_kernel(
    x: torch.Tensor,
    gate_weight: torch.Tensor,
    up_weight: torch.Tensor,
    activation: str,
    save_preactivations: bool = False,
) -> _Kernel:
    """The kernel of ``gated_mlp``: arguments ``x``, ``gate_weight``, ``up_weight``, then the
    output, and with ``save_preactivations`` the pre-activations ``gate`` and ``up``."""
    out = ((*x.shape[:-1], gate_weight.shape[0]), x.dtype)
    return _kernel(
        "gated_mlp_saving" if save_preactivations else "gated_mlp",
        (x.shape, gate_weight.shape, x.dtype, activation),
        lambda hint: _codegen.gated_mlp_source(
            (*_row_sizes(x.shape, hint), x.shape[-1]),
            gate_weight.shape,
            _mlir(x.dtype),
            activation=activation,
            rows_hint=hint,
            save_preactivations=save_preactivations,
        ),
        [x, gate_weight, up_weight],
        [out] * (3 if save_preactivations else 1),
        rows=_row_count(x.shape),
    )


def _gated_mlp_saving_impl(
    x: torch.Tensor, gate_weight: torch.Tensor, up_weight: torch.Tensor, activation: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``gated_mlp``'s output and its pre-activations ``x·Wgᵀ``, ``x·Wuᵀ``, from one kernel."""
    kernel = _gated_mlp_kernel(x, gate_weight, up_weight, activation, save_preactivations=True)
    out, gate, up = kernel([x, gate_weight, up_weight])
    return out, gate, up


def _gated_act_grad_kernel(
    gate: torch.Tensor, up: torch.Tensor, grad: torch.Tensor, activation: str
) -> _Kernel:
    """The kernel of ``gated_act_grad``: arguments ``gate``, ``up``, ``grad``, then
    ``grad_gate`` and ``grad_up``. It issues all of a thread's loads before its stores, so the
    outputs may be the inputs ``gate`` and ``up`` themselves."""
    return _kernel(
        "gated_act_grad",
        (gate.shape, gate.dtype, activation),
        lambda hint: _codegen.gated_act_grad_source(
            (*_row_sizes(gate.shape, hint), gate.shape[-1]),
            _mlir(gate.dtype),
            activation=activation,
            rows_hint=hint,
        ),
        [gate, up, grad],
        [(gate.shape, gate.dtype)] * 2,
        rows=_row_count(gate.shape),
    )


def _gated_act_grad_impl(
    gate: torch.Tensor, up: torch.Tensor, grad: torch.Tensor, activation: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``grad ⊙ up ⊙ act′(gate)`` and ``grad ⊙ act(gate)`` (contiguous, 16-byte aligned CUDA
    tensors of one shape and 16-bit dtype)."""
    grad_gate, grad_up = _gated_act_grad_kernel(gate, up, grad, activation)([gate, up, grad])
    return grad_gate, grad_up


def _gated_act_grad_inplace_impl(
    gate: torch.Tensor, up: torch.Tensor, grad: torch.Tensor, activation: str
) -> None:
    """:func:`_gated_act_grad_impl` written over ``gate`` and ``up`` (the backward's last use
    of the saved pre-activations): no new ``[M, N]`` tensors."""
    _launch(_gated_act_grad_kernel(gate, up, grad, activation), [gate, up, grad, gate, up])


def _gated_mlp_impl(
    x: torch.Tensor, gate_weight: torch.Tensor, up_weight: torch.Tensor, activation: str
) -> torch.Tensor:
    return _gated_mlp_kernel(x, gate_weight, up_weight, activation)([x, gate_weight, up_weight])[0]


def _gated_mlp_grad_kernel(
    x: torch.Tensor,
    gate_weight: torch.Tensor,
    up_weight: torch.Tensor,
    grad: torch.Tensor,
    activation: str,
) -> _Kernel:
    """The kernel of ``gated_mlp_grad``: arguments ``x``, ``gate_weight``, ``up_weight``,
    ``grad``, then ``grad_gate`` and ``grad_up`` (``[..., N]`` each)."""
    out = ((*x.shape[:-1], gate_weight.shape[0]), x.dtype)
    return _kernel(
        "gated_mlp_grad",
        (x.shape, gate_weight.shape, x.dtype, activation),
        lambda hint: _codegen.gated_mlp_grad_source(
            (*_row_sizes(x.shape, hint), x.shape[-1]),
            gate_weight.shape,
            _mlir(x.dtype),
            activation=activation,
            rows_hint=hint,
        ),
        [x, gate_weight, up_weight, grad],
        [out, out],
        rows=_row_count(x.shape),
    )


def _gated_mlp_grad_impl(
    x: torch.Tensor,
    gate_weight: torch.Tensor,
    up_weight: torch.Tensor,
    grad: torch.Tensor,
    activation: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``grad ⊙ u ⊙ act′(g)`` and ``grad ⊙ act(g)`` for ``g = x·Wgᵀ``, ``u = x·Wuᵀ`` recomputed
    by the kernel (contiguous, 16-byte aligned CUDA tensors of one 16-bit dtype)."""
    kernel = _gated_mlp_grad_kernel(x, gate_weight, up_weight, grad, activation)
    grad_gate, grad_up = kernel([x, gate_weight, up_weight, grad])
    return grad_gate, grad_up


def _quantize_kernel(x: torch.Tensor, fp8_dtype: torch.dtype, granularity: str) -> _Kernel:
    rows, cols = x.shape
    return _kernel(
        "quantize",
        (rows, cols, x.dtype, fp8_dtype, granularity),
        lambda hint: _codegen.quantize_source(
            None if hint else rows,
            cols,
            _mlir(x.dtype),
            _mlir(fp8_dtype),
            granularity=granularity,
            rows_hint=hint,
        ),
        [x],
        [((rows, cols), fp8_dtype), (_native.scale_shape(granularity, rows, cols), torch.float32)],
        rows=rows,
    )


def _quantize_impl(
    x: torch.Tensor,
    fp8_dtype: torch.dtype,
    granularity: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    q, s = _quantize_kernel(x, fp8_dtype, granularity)([x])
    return q, s


def _quantize_transposed_impl(
    x: torch.Tensor, fp8_dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Block128 quantization of ``x`` ``[M, K]`` that also writes the values transposed,
    ``[K, M']`` (M' from :func:`_native.quantize_transposed_rows`, zeros past M), in one read
    of ``x``: returns ``q``, the scales, ``qt``."""
    rows, cols = x.shape
    kernel = _kernel(
        "quantize_transposed",
        (rows, cols, x.dtype, fp8_dtype),
        lambda hint: _codegen.quantize_source(
            None if hint else rows,
            cols,
            _mlir(x.dtype),
            _mlir(fp8_dtype),
            granularity="block128",
            rows_hint=hint,
            transposed=True,
        ),
        [x],
        [
            ((rows, cols), fp8_dtype),
            (_native.scale_shape("block128", rows, cols), torch.float32),
            ((cols, _native.quantize_transposed_rows(rows)), fp8_dtype),
        ],
        rows=rows,
    )
    q, s, qt = kernel([x])
    return q, s, qt


def _dequantize_kernel(
    q: torch.Tensor, scale: torch.Tensor, granularity: str, out_dtype: torch.dtype
) -> _Kernel:
    rows, cols = q.shape
    return _kernel(
        "dequantize",
        (rows, cols, q.dtype, out_dtype, granularity),
        lambda hint: _codegen.dequantize_source(
            None if hint else rows,
            cols,
            _mlir(q.dtype),
            _mlir(out_dtype),
            granularity=granularity,
            rows_hint=hint,
        ),
        [q, scale],
        [((rows, cols), out_dtype)],
        rows=rows,
    )


def _dequantize_impl(
    q: torch.Tensor, scale: torch.Tensor, granularity: str, out_dtype: torch.dtype
) -> torch.Tensor:
    return _dequantize_kernel(q, scale, granularity, out_dtype)([q, scale])[0]


def _fp8_gemm_kernel(
    a: torch.Tensor,
    b: torch.Tensor,
    a_scale: torch.Tensor,
    b_scale: torch.Tensor,
    bias: Optional[torch.Tensor],
    granularity: str,
    out_dtype: torch.dtype,
    fast_accum: bool = False,
) -> _Kernel:
    m, k = a.shape
    n = b.shape[0]
    return _kernel(
        "fp8_gemm",
        (m, n, k, a.dtype, b.dtype, out_dtype, granularity, bias is not None, fast_accum),
        lambda hint: _codegen.fp8_gemm_source(
            None if hint else m,
            n,
            k,
            _mlir(a.dtype),
            _mlir(b.dtype),
            _mlir(out_dtype),
            granularity=granularity,
            bias=bias is not None,
            fast_accum=fast_accum,
            rows_hint=hint,
        ),
        [a, b, a_scale, b_scale, bias],
        [((m, n), out_dtype)],
        rows=m,
    )


def _fp8_gemm_impl(
    a: torch.Tensor,
    b: torch.Tensor,
    a_scale: torch.Tensor,
    b_scale: torch.Tensor,
    bias: Optional[torch.Tensor],
    granularity: str,
    out_dtype: torch.dtype,
    fast_accum: bool = False,
) -> torch.Tensor:
    kernel = _fp8_gemm_kernel(a, b, a_scale, b_scale, bias, granularity, out_dtype, fast_accum)
    return kernel([a, b, a_scale, b_scale, bias])[0]


class _Fp8GemmCall:
    """The :data:`_tables` entry of :func:`fp8_gemm`: the quantize kernels of the 16-bit operands
    (None for FP8 operands, whose scales are given) and the GEMM kernel."""

    def __init__(
        self, quantize_a: Optional[_Kernel], quantize_b: Optional[_Kernel], gemm: _Kernel
    ) -> None:
        self.quantize_a, self.quantize_b, self.gemm = quantize_a, quantize_b, gemm
        #: The kernels of the call, and whether each was compiled for the exact shapes (not for
        #: a class of row counts): see _launch._kernel and _ClassEntry.
        self.kernels = tuple(k for k in (quantize_a, quantize_b, gemm) if k is not None)
        self.exact = all(k.exact for k in self.kernels)

    def run_checked(self, inputs: tuple) -> Optional[list[torch.Tensor]]:
        a, b, a_scale, b_scale, bias = inputs
        if self.quantize_a is not None:
            quantized = self.quantize_a.run_checked((a,))
            if quantized is None:
                return None
            a, a_scale = quantized
        if self.quantize_b is not None:
            quantized = self.quantize_b.run_checked((b,))
            if quantized is None:
                return None
            b, b_scale = quantized
        return self.gemm.run_checked((a, b, a_scale, b_scale, bias))
