"""The PyTorch forms the custom ops' autograd formulas differentiate.

The gated MLP's backward on the GPU runs the dialect's ``gated_mlp_grad`` kernel (the two
projections recomputed by one GEMM, their gradients from its f32 accumulators) and then the
GEMMs of dx, dWg and dWu in PyTorch (:func:`_gated_mlp_grads`); rmsnorm_rope's runs
``rmsnorm_rope_grad`` and rms_norm's and add_rms_norm's run ``rms_norm_grad`` (``_custom_ops``).
Off the GPU, and for rmsnorm_rope where the tables need a gradient, the backward recomputes the
forward from the saved inputs with these differentiable PyTorch functions, in float32 (float64
for float64 inputs), and differentiates it (:func:`_recomputed_grads`). Each states the
kernel's function; the tests hold them to the float64 references of :mod:`fusedops.reference`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Optional

import torch

from . import _native
from ._torch_checks import _FP8_BY_NAME

_TORCH_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "silu": torch.nn.functional.silu,
    "gelu": torch.nn.functional.gelu,
    "gelu_tanh": lambda g: torch.nn.functional.gelu(g, approximate="tanh"),
}


#: Rows of the gated MLP's backward whose activation derivative is computed at once: bounds
#: its float32 temporaries (4096 rows × 11008 columns: 180 MB each).
GATED_MLP_BACKWARD_ROWS = 4096


def _gated_mlp_grads(
    x: torch.Tensor,
    gate_weight: torch.Tensor,
    up_weight: torch.Tensor,
    activation: str,
    grad: torch.Tensor,
    needed: Sequence[bool],
) -> list[Optional[torch.Tensor]]:
    """The backward of ``fused_gated_mlp``: ``g = x·Wgᵀ``, ``u = x·Wuᵀ`` recomputed, then
    ``dG = dH ⊙ u ⊙ act′(g)``, ``dU = dH ⊙ act(g)``, ``dX = dG·Wg + dU·Wu``, ``dWg = dGᵀ·x``,
    ``dWu = dUᵀ·x``. Each gradient in its input's dtype, None where ``needed`` says not.

    On the GPU (16-bit tensors, as the forward takes them) ``dG`` and ``dU`` come from the
    ``fusedops::gated_mlp_grad`` kernel: the recomputing GEMM with the derivative in its
    epilogue, from the f32 accumulators. Elsewhere (the CPU, float32 or float64: the form the
    tests differentiate) ``g`` and ``u`` are recomputed in the inputs' dtype and the derivative
    taken by autograd in float32 (float64 for float64 inputs), GATED_MLP_BACKWARD_ROWS rows at a
    time. The GEMMs of ``dX``, ``dWg`` and ``dWu`` are PyTorch's, in the inputs' dtype, as its
    backward of the unfused MLP computes them (float32 accumulation on the tensor cores)."""
    if not any(needed):
        return [None, None, None]
    if x.is_cuda and x.dtype in (torch.float16, torch.bfloat16):
        dg, du = torch.ops.fusedops.gated_mlp_grad(x, gate_weight, up_weight, grad, activation)
    else:
        x2 = x.reshape(-1, x.shape[-1])
        dg, du = _gated_mlp_activation_grads(x2, gate_weight, up_weight, activation, grad)
    return _gated_mlp_input_grads(x, gate_weight, up_weight, dg, du, needed)


def _gated_mlp_input_grads(
    x: torch.Tensor,
    gate_weight: torch.Tensor,
    up_weight: torch.Tensor,
    dg: torch.Tensor,
    du: torch.Tensor,
    needed: Sequence[bool],
) -> list[Optional[torch.Tensor]]:
    """``dX = dG·Wg + dU·Wu``, ``dWg = dGᵀ·x``, ``dWu = dUᵀ·x`` from the projections'
    gradients (any shape of M·N elements), PyTorch's GEMMs in the inputs' dtype; None where
    ``needed`` says not."""
    k, n = x.shape[-1], gate_weight.shape[0]
    x2 = x.reshape(-1, k)
    dg, du = dg.reshape(-1, n), du.reshape(-1, n)
    dx = None
    if needed[0]:  # the second product accumulated into the first (no third M×K tensor)
        dx = (dg @ gate_weight).addmm_(du, up_weight).reshape(x.shape)
    dwg = (dg.T @ x2).to(gate_weight.dtype) if needed[1] else None
    dwu = (du.T @ x2).to(up_weight.dtype) if needed[2] else None
    return [dx, dwg, dwu]


def _gated_mlp_activation_grads(
    x2: torch.Tensor,
    gate_weight: torch.Tensor,
    up_weight: torch.Tensor,
    activation: str,
    grad: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``dG``, ``dU`` ``[M, N]`` of the gated MLP in PyTorch (the form of
    :func:`_gated_mlp_grads` off the GPU)."""
    compute = torch.float64 if x2.dtype == torch.float64 else torch.float32
    act = _TORCH_ACTIVATIONS[activation]
    dh = grad.reshape(-1, gate_weight.shape[0])
    g = x2 @ gate_weight.T
    u = x2 @ up_weight.T
    dg, du = torch.empty_like(g), torch.empty_like(u)
    for start in range(0, g.shape[0], GATED_MLP_BACKWARD_ROWS):
        rows = slice(start, start + GATED_MLP_BACKWARD_ROWS)
        with torch.enable_grad():
            gc = g[rows].to(compute).requires_grad_(True)
            uc = u[rows].to(compute).requires_grad_(True)
            dgc, duc = torch.autograd.grad(act(gc) * uc, (gc, uc), dh[rows].to(compute))
        dg[rows], du[rows] = dgc, duc
    return dg, du


def _operand_torch(
    t: torch.Tensor, scale: Optional[torch.Tensor], granularity: str, compute: torch.dtype
) -> torch.Tensor:
    """An ``fp8_gemm`` operand as the training form sees it: a 16-bit operand as it is (its
    quantization taken as the identity), an FP8 one dequantized with its scales."""
    x = t.to(compute)
    if scale is None:
        return x
    if granularity == "tensor":
        return x * scale.to(compute)
    if granularity == "row":
        return x * scale.to(compute).reshape(-1, 1)
    rows, cols = x.shape  # block128: each scale covers a 128×128 block
    full = scale.to(compute).repeat_interleave(128, 0)[:rows].repeat_interleave(128, 1)
    return x * full[:, :cols]


def _fp8_gemm_torch(
    a: torch.Tensor,
    b: torch.Tensor,
    a_scale: Optional[torch.Tensor],
    b_scale: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    granularity: str,
    out_dtype: torch.dtype,
    fast_accum: bool,
) -> torch.Tensor:
    """The training form of ``fp8_gemm`` in float32 (float64 for float64 operands):
    ``A @ B.T (+ bias)`` with 16-bit operands as they are (the straight-through estimator of
    their quantization) and FP8 ones dequantized, so that its backward gives
    ``dA = dOut·B``, ``dB = dOutᵀ·A`` in float32 GEMMs (the form off the GPU; on it
    :func:`_fp8_gemm_grads`)."""
    compute = torch.float64 if a.dtype == torch.float64 else torch.float32
    out = (
        _operand_torch(a, a_scale, granularity, compute)
        @ _operand_torch(b, b_scale, granularity, compute).T
    )
    return out + bias.to(compute) if bias is not None else out


#: The gradient GEMMs of ``fp8_gemm``'s backward on the GPU: FP8 with current (dynamic)
#: scaling, the gradient quantized to e5m2 (TransformerEngine's hybrid recipe) or e4m3 and the
#: operands to e4m3; or ``"dense"``: GEMMs in the gradient's 16-bit dtype.
FP8_BACKWARDS = ("e5m2", "e4m3", "dense")


def _fp8_gemm_grads(
    a: torch.Tensor,
    b: torch.Tensor,
    a_scale: Optional[torch.Tensor],
    b_scale: Optional[torch.Tensor],
    granularity: str,
    backward: str,
    grad: torch.Tensor,
    needed: Sequence[bool],
) -> list[Optional[torch.Tensor]]:
    """``dA = dOut·B`` and ``dB = dOutᵀ·A`` of ``fp8_gemm`` on the GPU (``grad`` 16-bit), with
    the straight-through estimator of the forward's quantization: a 16-bit operand as it is, an
    FP8 one dequantized (with the forward's ``granularity``). Each gradient in its operand's
    dtype where that is 16-bit; None where ``needed`` says not.

    ``backward`` (:data:`FP8_BACKWARDS`) picks the GEMMs. ``"dense"`` multiplies in ``grad``'s
    dtype. The FP8 forms quantize ``dOut`` (to ``backward``'s format), ``A`` and ``B`` (e4m3)
    with 128×128 block scales, whatever the forward's granularity, each by one kernel that
    also writes the values transposed (``quantize_transposed``): a block's scale is the same
    for a tensor and its transpose, so the K-major operands the FP8 GEMMs need (``Bᵀ`` for
    dgrad, ``dOutᵀ`` and ``Aᵀ`` for wgrad) come with the transposed scale grids, as
    TransformerEngine's column-wise copies. Each GEMM's reduction dim is zero-padded to the
    kernels' multiple of 16 (the transposed values' rows, ``dOut``'s columns); the sums are
    promoted to float32 every 128 of it."""
    dtype = grad.dtype

    def dense(t: torch.Tensor, scale: Optional[torch.Tensor]) -> torch.Tensor:
        if scale is None:
            return t.to(dtype)
        return torch.ops.fusedops.dequantize(t, scale, granularity, dtype)

    def typed(g: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return g.to(like.dtype) if like.dtype in (torch.float16, torch.bfloat16) else g

    a16, b16 = dense(a, a_scale), dense(b, b_scale)
    if backward == "dense":
        da = grad @ b16 if needed[0] else None
        db = grad.T @ a16 if needed[1] else None
        return [None if da is None else typed(da, a), None if db is None else typed(db, b)]
    ops = torch.ops.fusedops
    e4m3 = torch.float8_e4m3fn
    n = grad.shape[1]
    padded = _native.quantize_transposed_rows(n)  # N', as Bᵀ's rows are padded
    grad = torch.nn.functional.pad(grad, (0, padded - n)) if padded != n else grad
    q_grad, s_grad, qt_grad = ops.quantize_transposed(grad, _FP8_BY_NAME[backward])
    da = db = None
    if needed[0]:  # dA [M, K] = dOut [M, N'] · (Bᵀ [K, N'])ᵀ
        _, s_b, qt_b = ops.quantize_transposed(b16, e4m3)
        da = ops.fp8_gemm(q_grad, qt_b, s_grad, s_b.T.contiguous(), None, "block128", dtype, False)
    if needed[1]:  # dB [N, K] = dOutᵀ [N, M'] · (Aᵀ [K, M'])ᵀ
        _, s_a, qt_a = ops.quantize_transposed(a16, e4m3)
        db = ops.fp8_gemm(
            qt_grad[:n],
            qt_a,
            s_grad.T.contiguous(),
            s_a.T.contiguous(),
            None,
            "block128",
            dtype,
            False,
        )
    return [None if da is None else typed(da, a), None if db is None else typed(db, b)]


def _recomputed_grads(
    forward: Callable[..., Any],
    tensors: Sequence[torch.Tensor],
    statics: Sequence[Any],
    grad: Any,
    needed: Sequence[bool],
) -> list[Optional[torch.Tensor]]:
    """The backward of an op without a backward kernel: ``forward(*tensors, *statics)`` (its
    differentiable PyTorch form) recomputed from the saved inputs and differentiated; each
    gradient in its input's dtype, None where ``needed`` says not. Unfused: the path where no
    backward kernel serves the call."""
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_(n) for t, n in zip(tensors, needed)]
        out = forward(*leaves, *statics)
        # Several outputs and their grads (autograd materializes the grads of unused outputs
        # as zeros), or one.
        outs, grads_in = (out, grad) if isinstance(out, tuple) else ((out,), (grad,))
        wanted = [t for t, n in zip(leaves, needed) if n]
        grads = iter(
            torch.autograd.grad(outs, wanted, [g.to(o.dtype) for o, g in zip(outs, grads_in)])
            if wanted
            else ()
        )
    return [next(grads).to(t.dtype) if n else None for t, n in zip(tensors, needed)]


def _rmsnorm_rope_torch(
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
    """The kernel's function in differentiable PyTorch (the custom op's arguments, as checked
    by :func:`fused_rmsnorm_rope`), in float32 (float64 for float64 inputs): RMSNorm over the
    last dim, then RoPE of each head's first ``head_dim * rotary_fraction`` dims at each row's
    position (:func:`fusedops.reference.rmsnorm_rope` states it). The backward recomputes it."""
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    xf = x.to(compute)
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * weight.to(compute)
    hidden = x.shape[-1]
    heads = y.reshape(*x.shape[:-1], hidden // head_dim, head_dim)
    rot = round(head_dim * rotary_fraction)
    yr = heads[..., :rot]
    if positions is None:
        positions = torch.arange(x.shape[-2], device=x.device).expand(x.shape[:-1])
    c = cos.to(compute)[positions.long()].unsqueeze(-2)
    s = sin.to(compute)[positions.long()].unsqueeze(-2)
    if rope_style == "neox":
        half = rot // 2
        partner = torch.cat((-yr[..., half:], yr[..., :half]), dim=-1)
    else:  # gptj: pairs (2i, 2i + 1)
        partner = torch.stack((-yr[..., 1::2], yr[..., 0::2]), dim=-1).flatten(-2)
    rotated = yr * c + partner * s
    return torch.cat((rotated, heads[..., rot:]), dim=-1).reshape(x.shape)


def _rms_norm_torch(
    x: torch.Tensor, weight: torch.Tensor, eps: float, weight_offset: float
) -> torch.Tensor:
    """``fused_rms_norm`` in differentiable PyTorch, in float32 (float64 for float64 inputs):
    ``x · rsqrt(mean(x²) + eps) · (weight_offset + weight)``. The backward recomputes it."""
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    xf = x.to(compute)
    scale = weight.to(compute) + weight_offset
    return xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * scale


def _add_rms_norm_torch(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float, weight_offset: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``fused_add_rms_norm`` in differentiable PyTorch: ``(normed, total)``. The sum's rounding
    to the inputs' dtype is taken as the identity in the backward (as for an unfused add)."""
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    total = x.to(compute) + residual.to(compute)
    return _rms_norm_torch(total, weight, eps, weight_offset), total
