"""The ``fusedops::<op>`` custom ops (``torch.library``): fake implementations for tracing
(torch.compile, export) and the autograd formulas; and :func:`_dispatch`, which runs a plain
eager call without the dispatcher."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Optional

import torch

from . import _native
from ._autograd import (
    _fp8_gemm_grads,
    _fp8_gemm_torch,
    _gated_mlp_grads,
    _gated_mlp_input_grads,
    _recomputed_grads,
    _rms_norm_torch,
    _rmsnorm_rope_torch,
)
from ._launch import _is_plain, _remember
from ._op_kernels import (
    _add_rms_norm_impl,
    _dequantize_impl,
    _fp8_gemm_impl,
    _gated_act_grad_impl,
    _gated_act_grad_inplace_impl,
    _gated_mlp_grad_impl,
    _gated_mlp_impl,
    _gated_mlp_saving_impl,
    _quantize_impl,
    _quantize_transposed_impl,
    _rms_norm_grad_impl,
    _rms_norm_impl,
    _rmsnorm_rope_grad_impl,
    _rmsnorm_rope_impl,
)
from ._torch_checks import _is_compiling


def _dispatch(
    op: str,
    impl: Callable[..., Any],
    *args: Any,
    remember: Optional[tuple[str, tuple, tuple, Callable[[], Any]]] = None,
) -> Any:
    """Runs ``impl`` directly in plain eager mode, else the ``fusedops::<op>`` custom op.

    The custom op's dispatcher costs tens of microseconds of host time per call; plain eager
    calls (exact ``torch.Tensor`` or ``nn.Parameter`` arguments, none requiring grad where grad
    mode is on, not under torch.compile) do not
    need it. Tracing (torch.compile, export, fake tensors) and autograd go through the custom op,
    which has the fake implementation and the autograd formulas (:func:`_gated_mlp_grads`,
    :func:`_recomputed_grads` of :func:`_rmsnorm_rope_torch`; ``fp8_gemm`` with gradients runs
    ``fusedops::fp8_gemm_train``, whose formula is :func:`_fp8_gemm_torch`).

    ``remember`` = (op, tensors, statics, the call's entry): entered in :data:`_tables` after a
    plain eager call (:func:`_remember`).
    """
    if not _is_compiling():
        for a in args:
            if isinstance(a, torch.Tensor) and not _is_plain(a):
                break
        else:
            out = impl(*args)
            if remember is not None:
                _remember(*remember)
            return out
    return getattr(torch.ops.fusedops, op)(*args)


def _dense(*args: Any) -> list[Any]:
    """The custom ops' arguments with tensors made contiguous and 16-byte aligned.

    The public functions reject non-contiguous tensors; under torch.compile the graph compiler
    may still choose other strides for intermediates, and the kernels (compiled for static,
    contiguous layouts) must not read those as contiguous.
    """
    dense = []
    for a in args:
        if isinstance(a, torch.Tensor):
            a = a.contiguous()
            if a.data_ptr() % 16:  # a view the kernels' vector accesses cannot read
                a = a.clone()
        dense.append(a)
    return dense


def _backward_kernel(op: str, impl: Callable[..., Any], *args: Any) -> Any:
    """A backward kernel's call from an autograd formula: in plain eager mode (the formula runs
    with grad mode off) ``impl`` directly, on the arguments made dense as the custom op makes
    them (an incoming gradient may be a strided view); under tracing the ``fusedops::<op>``
    custom op, whose fake implementation torch.compile needs."""
    return _dispatch(op, lambda *dense: impl(*_dense(*dense)), *args)


def _norm_grads(
    x: torch.Tensor,
    weight: torch.Tensor,
    grad: torch.Tensor,
    residual_grad: Optional[torch.Tensor],
    statics: tuple,
    needed: Sequence[bool],
) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """The norms' backward (rms_norm's, and add_rms_norm's from the sum it normalised): the
    gradients of x (with ``residual_grad``, the gradient of the sum, added) and of the weight,
    None where ``needed`` says not. The rms_norm_grad kernel on a GPU; off it, the
    differentiable PyTorch form recomputed."""
    if x.is_cuda:
        dx, dweight = _backward_kernel(
            "rms_norm_grad", _rms_norm_grad_impl, x, weight, grad, residual_grad, *statics
        )
    else:
        dx, dweight = _recomputed_grads(_rms_norm_torch, (x, weight), statics, grad, needed)
        if residual_grad is not None and dx is not None:
            dx = dx + residual_grad.to(dx.dtype)
    return dx if needed[0] else None, dweight if needed[1] else None


def _register() -> None:
    lib = "fusedops"

    @torch.library.custom_op(f"{lib}::rmsnorm_rope", mutates_args=())
    def rmsnorm_rope(
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
        return _rmsnorm_rope_impl(
            *_dense(x, weight, cos, sin, positions, head_dim, eps, rope_style, rotary_fraction)
        )

    @rmsnorm_rope.register_fake
    def _(x, weight, cos, sin, positions, head_dim, eps, rope_style, rotary_fraction):
        return torch.empty_like(x)

    def rmsnorm_rope_setup(ctx, inputs, output):
        ctx.save_for_backward(*inputs[:5])  # x, weight, cos, sin, positions (or None)
        ctx.statics = inputs[5:]

    def rmsnorm_rope_backward(ctx, grad):
        *tensors, positions = ctx.saved_tensors
        x, weight, cos, sin = tensors
        needed = ctx.needs_input_grad[:4]
        if x.is_cuda and not (needed[2] or needed[3]):
            # The rmsnorm_rope_grad kernel (the tables take no gradient).
            dx, dweight = _backward_kernel(
                "rmsnorm_rope_grad",
                _rmsnorm_rope_grad_impl,
                x, weight, cos, sin, positions, grad, *ctx.statics,
            )  # fmt: skip
            return (
                dx if needed[0] else None,
                dweight if needed[1] else None,
                None, None, None, None, None, None, None,
            )  # fmt: skip
        grads = _recomputed_grads(
            _rmsnorm_rope_torch,
            tensors,
            (positions, *ctx.statics),
            grad,
            ctx.needs_input_grad[:4],
        )
        return (*grads, None, None, None, None, None)

    rmsnorm_rope.register_autograd(rmsnorm_rope_backward, setup_context=rmsnorm_rope_setup)

    @torch.library.custom_op(f"{lib}::rmsnorm_rope_grad", mutates_args=())
    def rmsnorm_rope_grad(
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
        return _rmsnorm_rope_grad_impl(
            *_dense(
                x, weight, cos, sin, positions, grad, head_dim, eps, rope_style, rotary_fraction
            )
        )

    @rmsnorm_rope_grad.register_fake
    def _(x, weight, cos, sin, positions, grad, head_dim, eps, rope_style, rotary_fraction):
        return torch.empty_like(x), torch.empty_like(weight)

    @torch.library.custom_op(f"{lib}::rms_norm", mutates_args=())
    def rms_norm(
        x: torch.Tensor, weight: torch.Tensor, eps: float, weight_offset: float
    ) -> torch.Tensor:
        return _rms_norm_impl(*_dense(x, weight, eps, weight_offset))

    @rms_norm.register_fake
    def _(x, weight, eps, weight_offset):
        return torch.empty_like(x)

    def rms_norm_setup(ctx, inputs, output):
        ctx.save_for_backward(*inputs[:2])  # x, weight
        ctx.statics = inputs[2:]

    def rms_norm_backward(ctx, grad):
        x, weight = ctx.saved_tensors
        dx, dweight = _norm_grads(x, weight, grad, None, ctx.statics, ctx.needs_input_grad[:2])
        return dx, dweight, None, None

    rms_norm.register_autograd(rms_norm_backward, setup_context=rms_norm_setup)

    @torch.library.custom_op(f"{lib}::rms_norm_grad", mutates_args=())
    def rms_norm_grad(
        x: torch.Tensor,
        weight: torch.Tensor,
        grad: torch.Tensor,
        residual_grad: Optional[torch.Tensor],
        eps: float,
        weight_offset: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return _rms_norm_grad_impl(*_dense(x, weight, grad, residual_grad, eps, weight_offset))

    @rms_norm_grad.register_fake
    def _(x, weight, grad, residual_grad, eps, weight_offset):
        return torch.empty_like(x), torch.empty_like(weight)

    @torch.library.custom_op(f"{lib}::add_rms_norm", mutates_args=())
    def add_rms_norm(
        x: torch.Tensor,
        residual: torch.Tensor,
        weight: torch.Tensor,
        eps: float,
        weight_offset: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return _add_rms_norm_impl(*_dense(x, residual, weight, eps, weight_offset))

    @add_rms_norm.register_fake
    def _(x, residual, weight, eps, weight_offset):
        return torch.empty_like(x), torch.empty_like(x)

    def add_rms_norm_setup(ctx, inputs, output):
        # The sum the forward normalised (its output, rounded as stored) and the weight: one
        # saved [rows, H] tensor instead of x and residual.
        ctx.save_for_backward(output[1], inputs[2])
        ctx.statics = inputs[3:]
        ctx.set_materialize_grads(False)

    def add_rms_norm_backward(ctx, grad_out, grad_total):
        total, weight = ctx.saved_tensors
        x_needed, residual_needed, weight_needed = ctx.needs_input_grad[:3]
        if grad_out is None:  # only the sum was used: it passes its gradient to both inputs
            dtotal, dweight = grad_total, None
        else:
            dtotal, dweight = _norm_grads(
                total,
                weight,
                grad_out,
                grad_total,
                ctx.statics,
                (x_needed or residual_needed, weight_needed),
            )
        if dtotal is None and (x_needed or residual_needed):  # neither output had a gradient
            dtotal = torch.zeros_like(total)
        if dweight is None and weight_needed:
            dweight = torch.zeros_like(weight)
        return (
            dtotal if x_needed else None,
            dtotal if residual_needed else None,
            dweight if weight_needed else None,
            None,
            None,
        )

    add_rms_norm.register_autograd(add_rms_norm_backward, setup_context=add_rms_norm_setup)

    @torch.library.custom_op(f"{lib}::gated_mlp", mutates_args=())
    def gated_mlp(
        x: torch.Tensor, gate_weight: torch.Tensor, up_weight: torch.Tensor, activation: str
    ) -> torch.Tensor:
        return _gated_mlp_impl(*_dense(x, gate_weight, up_weight, activation))

    @gated_mlp.register_fake
    def _(x, gate_weight, up_weight, activation):
        return x.new_empty((*x.shape[:-1], gate_weight.shape[0]))

    def gated_mlp_setup(ctx, inputs, output):
        ctx.save_for_backward(*inputs[:3])  # x, gate_weight, up_weight
        ctx.statics = inputs[3:]

    def gated_mlp_backward(ctx, grad):
        grads = _gated_mlp_grads(*ctx.saved_tensors, *ctx.statics, grad, ctx.needs_input_grad[:3])
        return (*grads, None)

    gated_mlp.register_autograd(gated_mlp_backward, setup_context=gated_mlp_setup)

    @torch.library.custom_op(f"{lib}::gated_mlp_saving", mutates_args=())
    def gated_mlp_saving(
        x: torch.Tensor, gate_weight: torch.Tensor, up_weight: torch.Tensor, activation: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # gated_mlp that also stores its pre-activations, for the backward to reload
        # (fused_gated_mlp(..., recompute=False)): outputs out, gate, up.
        return _gated_mlp_saving_impl(*_dense(x, gate_weight, up_weight, activation))

    @gated_mlp_saving.register_fake
    def _(x, gate_weight, up_weight, activation):
        out = x.new_empty((*x.shape[:-1], gate_weight.shape[0]))
        return out, torch.empty_like(out), torch.empty_like(out)

    def gated_mlp_saving_setup(ctx, inputs, output):
        _, gate, up = output
        ctx.mark_non_differentiable(gate, up)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(*inputs[:3], gate, up)  # x, gate_weight, up_weight, gate, up
        ctx.activation = inputs[3]

    def gated_mlp_saving_backward(ctx, grad, grad_gate, grad_up):
        needed = ctx.needs_input_grad[:3]
        if grad is None or not any(needed):
            return None, None, None, None
        x, gate_weight, up_weight, gate, up = ctx.saved_tensors
        # The saved pre-activations' last use: their gradients overwrite them, so the backward
        # allocates no [M, N] tensor (their versions move on: a second backward through this
        # graph, retain_graph=True, is refused by autograd instead of reading gradients).
        torch.ops.fusedops.gated_act_grad_(gate, up, grad, ctx.activation)
        return (*_gated_mlp_input_grads(x, gate_weight, up_weight, gate, up, needed), None)

    gated_mlp_saving.register_autograd(
        gated_mlp_saving_backward, setup_context=gated_mlp_saving_setup
    )

    @torch.library.custom_op(f"{lib}::gated_act_grad", mutates_args=())
    def gated_act_grad(
        gate: torch.Tensor, up: torch.Tensor, grad: torch.Tensor, activation: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return _gated_act_grad_impl(*_dense(gate, up, grad, activation))

    @gated_act_grad.register_fake
    def _(gate, up, grad, activation):
        return torch.empty_like(gate), torch.empty_like(gate)

    @torch.library.custom_op(f"{lib}::gated_act_grad_", mutates_args=("gate", "up"))
    def gated_act_grad_(
        gate: torch.Tensor, up: torch.Tensor, grad: torch.Tensor, activation: str
    ) -> None:
        # gated_act_grad with its outputs written over gate and up.
        if not all(t.is_contiguous() and t.data_ptr() % 16 == 0 for t in (gate, up)):
            grad_gate, grad_up = _gated_act_grad_impl(*_dense(gate, up, grad, activation))
            gate.copy_(grad_gate)
            up.copy_(grad_up)
            return
        _gated_act_grad_inplace_impl(*_dense(gate, up, grad, activation))

    @torch.library.custom_op(f"{lib}::gated_mlp_grad", mutates_args=())
    def gated_mlp_grad(
        x: torch.Tensor,
        gate_weight: torch.Tensor,
        up_weight: torch.Tensor,
        grad: torch.Tensor,
        activation: str,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return _gated_mlp_grad_impl(*_dense(x, gate_weight, up_weight, grad, activation))

    @gated_mlp_grad.register_fake
    def _(x, gate_weight, up_weight, grad, activation):
        return torch.empty_like(grad), torch.empty_like(grad)

    @torch.library.custom_op(f"{lib}::quantize", mutates_args=())
    def quantize(
        x: torch.Tensor,
        fp8_dtype: torch.dtype,
        granularity: str,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return _quantize_impl(*_dense(x, fp8_dtype, granularity))

    @quantize.register_fake
    def _(x, fp8_dtype, granularity):
        rows, cols = x.shape
        return (
            x.new_empty((rows, cols), dtype=fp8_dtype),
            x.new_empty(_native.scale_shape(granularity, rows, cols), dtype=torch.float32),
        )

    @torch.library.custom_op(f"{lib}::quantize_transposed", mutates_args=())
    def quantize_transposed(
        x: torch.Tensor, fp8_dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # Block128 quantize that also writes the values transposed (zero-padded rows).
        return _quantize_transposed_impl(*_dense(x, fp8_dtype))

    @quantize_transposed.register_fake
    def _(x, fp8_dtype):
        rows, cols = x.shape
        return (
            x.new_empty((rows, cols), dtype=fp8_dtype),
            x.new_empty(_native.scale_shape("block128", rows, cols), dtype=torch.float32),
            x.new_empty((cols, _native.quantize_transposed_rows(rows)), dtype=fp8_dtype),
        )

    @torch.library.custom_op(f"{lib}::dequantize", mutates_args=())
    def dequantize(
        q: torch.Tensor, scale: torch.Tensor, granularity: str, out_dtype: torch.dtype
    ) -> torch.Tensor:
        return _dequantize_impl(*_dense(q, scale, granularity, out_dtype))

    @dequantize.register_fake
    def _(q, scale, granularity, out_dtype):
        return q.new_empty(q.shape, dtype=out_dtype)

    @torch.library.custom_op(f"{lib}::fp8_gemm", mutates_args=())
    def fp8_gemm_op(
        a: torch.Tensor,
        b: torch.Tensor,
        a_scale: torch.Tensor,
        b_scale: torch.Tensor,
        bias: Optional[torch.Tensor],
        granularity: str,
        out_dtype: torch.dtype,
        fast_accum: bool,
    ) -> torch.Tensor:
        return _fp8_gemm_impl(
            *_dense(a, b, a_scale, b_scale, bias, granularity, out_dtype, fast_accum)
        )

    @fp8_gemm_op.register_fake
    def _(a, b, a_scale, b_scale, bias, granularity, out_dtype, fast_accum):
        return a.new_empty((a.shape[0], b.shape[0]), dtype=out_dtype)

    @torch.library.custom_op(f"{lib}::fp8_gemm_train", mutates_args=())
    def fp8_gemm_train(
        a: torch.Tensor,
        b: torch.Tensor,
        a_scale: Optional[torch.Tensor],
        b_scale: Optional[torch.Tensor],
        bias: Optional[torch.Tensor],
        granularity: str,
        out_dtype: torch.dtype,
        fast_accum: bool,
        backward: str,
    ) -> torch.Tensor:
        # fp8_gemm with gradients: an operand without a scale is 16-bit and quantized to
        # e4m3 here (the forward is the inference path's kernels), in one autograd node.
        a, b, a_scale, b_scale, bias = _dense(a, b, a_scale, b_scale, bias)
        if a_scale is None:
            a, a_scale = _quantize_impl(a, torch.float8_e4m3fn, granularity)
        if b_scale is None:
            b, b_scale = _quantize_impl(b, torch.float8_e4m3fn, granularity)
        return _fp8_gemm_impl(a, b, a_scale, b_scale, bias, granularity, out_dtype, fast_accum)

    @fp8_gemm_train.register_fake
    def _(a, b, a_scale, b_scale, bias, granularity, out_dtype, fast_accum, backward):
        return a.new_empty((a.shape[0], b.shape[0]), dtype=out_dtype)

    def fp8_gemm_train_setup(ctx, inputs, output):
        ctx.save_for_backward(*inputs[:5])  # a, b, a_scale, b_scale, bias (or Nones)
        ctx.statics = inputs[5:]

    def fp8_gemm_train_backward(ctx, grad):
        a, b, a_scale, b_scale, bias = ctx.saved_tensors
        granularity, out_dtype, fast_accum, backward = ctx.statics
        needed = ctx.needs_input_grad[:2]
        if grad.is_cuda and grad.dtype in (torch.float16, torch.bfloat16):
            grads = _fp8_gemm_grads(a, b, a_scale, b_scale, granularity, backward, grad, needed)
        else:  # the differentiable float32 (float64) form
            grads = _recomputed_grads(
                lambda a, b, *rest: _fp8_gemm_torch(a, b, *rest),
                (a, b),
                (a_scale, b_scale, bias, granularity, out_dtype, fast_accum),
                grad,
                needed,
            )
        grad_bias = grad.float().sum(0) if ctx.needs_input_grad[4] else None
        return (*grads, None, None, grad_bias, None, None, None, None)

    fp8_gemm_train.register_autograd(fp8_gemm_train_backward, setup_context=fp8_gemm_train_setup)


_register()
