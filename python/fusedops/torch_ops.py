"""PyTorch API: functions that compile a fusedops op for the tensors given and launch it.

Each call checks its arguments (device, dtype, shape, contiguity: nothing is silently copied or
cast), has the C API build the op in the fusedops dialect (:mod:`fusedops._codegen`), compiles it
in this process (:mod:`fusedops._native`) once per key, and launches the kernel on PyTorch's
current CUDA stream of the tensors' GPU (:mod:`fusedops._launch`). The key is (op, shapes,
dtypes, attributes, chip, compiler and ptxas versions); compiled modules are kept in memory for
the life of the process and serve every GPU of their chip. Any GPU of the machine works; the
tensors of one call must be on one GPU.

The public functions go through ``torch.library`` custom ops (``fusedops::<name>``) with fake
implementations, so ``torch.compile(fullgraph=True)`` traces them and CUDA graphs capture them
(call once before capturing, so the compilation happens outside the capture).

Chip: the tensors' device's (sm_80, sm_86, sm_89, sm_90a). ``FUSEDOPS_CHIP`` overrides it, e.g.
``FUSEDOPS_CHIP=sm_80`` runs the Ampere kernels as PTX on a Hopper card.
"""

from __future__ import annotations

from typing import Optional

import torch

# The training forms, the compiled kernels (cache, call tables, launch) and the checks live
# beside this module; the tuner and the tests reach these names here.
from ._autograd import (  # noqa: F401
    FP8_BACKWARDS,
    _add_rms_norm_torch,
    _fp8_gemm_torch,
    _gated_mlp_grads,
    _recomputed_grads,
    _rms_norm_torch,
    _rmsnorm_rope_torch,
)
from ._custom_ops import _dispatch
from ._launch import (  # noqa: F401
    _forget_kernels,
    _is_plain,
    _Kernel,
    _kernel,
    _kernels,
    _launch,
    _remember,
    _tables,
    _target,
    _tuning,
)
from ._op_kernels import (
    _add_rms_norm_impl,
    _dequantize_impl,
    _dequantize_kernel,
    _fp8_gemm_impl,
    _fp8_gemm_kernel,
    _Fp8GemmCall,
    _gated_mlp_impl,
    _gated_mlp_kernel,
    _quantize_impl,
    _quantize_kernel,
    _rms_norm_impl,
    _rms_norm_kernel,
    _rmsnorm_rope_impl,
    _rmsnorm_rope_kernel,
)
from ._torch_checks import (
    _ACTIVATIONS,
    _FLOAT_DTYPES,
    _FP8_BY_NAME,
    _FP8_DTYPES,
    _FP8_NAMES,
    _GRANULARITIES,
    _QUANTIZABLE_DTYPES,
    _ROPE_STYLES,
    _check_norm,
    _check_scale,
    _check_tensor,
    _choice,
    _is_compiling,
)
from .errors import ArgumentError, DTypeError, ShapeError

__all__ = [
    "dequantize_fp8",
    "fp8_gemm",
    "fused_add_rms_norm",
    "fused_gated_mlp",
    "fused_rms_norm",
    "fused_rmsnorm_rope",
    "quantize_fp8",
]


def fused_rmsnorm_rope(
    x: torch.Tensor,
    weight: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    *,
    eps: float = 1e-6,
    head_dim: Optional[int] = None,
    rope_style: str = "neox",
    rotary_fraction: float = 1.0,
    positions: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """RMSNorm over the last dim of ``x`` ``[..., H]`` fused with RoPE on each ``head_dim`` head.

    ``weight`` is ``[H]`` in ``x``'s dtype; ``cos``/``sin`` are ``[S, R]`` tables (float32 or
    ``x``'s dtype) with ``R = head_dim * rotary_fraction`` laid out for ``rope_style``;
    ``head_dim`` defaults to ``R / rotary_fraction`` (the tables' width for full rotary);
    ``positions`` (int32 or int64, ``x.shape[:-1]``) gives each row's table row, by default its
    index along dim -2. Hugging Face's gathered ``(cos, sin)``, ``[B, S, R]`` for ``x``
    ``[B, S, H]`` (one table row per token, no ``positions``), are taken as they are.
    Semantics: :func:`fusedops.reference.rmsnorm_rope`.
    """
    if (
        isinstance(cos, torch.Tensor)
        and isinstance(sin, torch.Tensor)
        and isinstance(x, torch.Tensor)
        and cos.dim() == 3
        and positions is None
    ):
        # Gathered tables: token (b, s) uses row b·S + s of the flattened tables, which is its
        # row index along dim -2 of x viewed as [1, B·S, H]: no positions tensor needed.
        if x.dim() != 3 or cos.shape[:2] != x.shape[:2] or sin.shape != cos.shape:
            raise ShapeError(
                "gathered cos/sin must be [batch, seq, rotary_dim] matching x [batch, seq, "
                f"hidden]; got x {tuple(x.shape)}, cos {tuple(cos.shape)}, sin "
                f"{tuple(getattr(sin, 'shape', ()))}"
            )
        batch, seq, hidden = x.shape
        out = fused_rmsnorm_rope(
            x.reshape(1, batch * seq, hidden),
            weight,
            cos.reshape(batch * seq, cos.shape[-1]),
            sin.reshape(batch * seq, sin.shape[-1]),
            eps=eps,
            head_dim=head_dim,
            rope_style=rope_style,
            rotary_fraction=rotary_fraction,
        )
        return out.reshape(batch, seq, hidden)
    if head_dim is None:
        if not (isinstance(cos, torch.Tensor) and cos.dim() == 2):
            raise ShapeError(
                "cos must be a [max_positions, rotary_dim] tensor (head_dim is inferred from "
                f"its width); got {getattr(cos, 'shape', type(cos).__name__)}"
            )
        width = cos.shape[-1] / float(rotary_fraction) if rotary_fraction else 0.0
        if width != int(width) or width <= 0:
            raise ShapeError(
                f"head_dim cannot be inferred: cos has {cos.shape[-1]} columns, which is not "
                f"head_dim * rotary_fraction ({rotary_fraction}) for a whole head_dim; pass "
                "head_dim="
            )
        head_dim = int(width)
    # head_dim's type too: 128.0 == 128, but only an int passes the checks.
    tensors, statics = (
        (x, weight, cos, sin, positions),
        (eps, head_dim, type(head_dim), rope_style, rotary_fraction),
    )
    if not _is_compiling():  # under dynamo the checks below are traced instead
        outputs = _tables["rmsnorm_rope"](tensors, statics)
        if outputs is not None:
            return outputs[0]
    x = _check_tensor("x", x, _FLOAT_DTYPES)
    weight = _check_tensor("weight", weight, (x.dtype,), ("x", x))
    cos = _check_tensor("cos", cos, (torch.float32, x.dtype), ("x", x))
    sin = _check_tensor("sin", sin, (cos.dtype,), ("x", x))
    _choice("rope_style", rope_style, _ROPE_STYLES)
    hidden = x.shape[-1]
    if not isinstance(head_dim, int) or head_dim <= 0 or hidden % head_dim:
        raise ShapeError(
            f"head_dim must be a positive divisor of x.shape[-1] = {hidden}; got {head_dim!r}"
        )
    if weight.shape != (hidden,):
        raise ShapeError(
            f"weight must have shape ({hidden},) to match x {tuple(x.shape)}; got "
            f"{tuple(weight.shape)}"
        )
    rotary = round(head_dim * rotary_fraction)
    if cos.dim() != 2 or cos.shape[1] != rotary or sin.shape != cos.shape:
        raise ShapeError(
            f"cos and sin must both be [max_positions, {rotary}] (head_dim * "
            f"rotary_fraction); got {tuple(cos.shape)} and {tuple(sin.shape)}"
        )
    if not (eps >= 0.0) or eps == float("inf"):
        raise ArgumentError(f"eps must be finite and >= 0; got {eps!r}")
    if positions is not None:
        positions = _check_tensor("positions", positions, (torch.int32, torch.int64), ("x", x))
        if positions.shape != x.shape[:-1]:
            raise ShapeError(
                f"positions must have shape {tuple(x.shape[:-1])} (x.shape[:-1]); "
                f"got {tuple(positions.shape)}"
            )
    elif x.dim() < 2 or x.shape[-2] > cos.shape[0]:
        raise ShapeError(
            f"without positions, x needs rank >= 2 and x.shape[-2] <= "
            f"{cos.shape[0]} rows of the tables; got x {tuple(x.shape)}"
        )
    rope_fraction = float(rotary_fraction)
    eps = float(eps)
    return _dispatch(
        "rmsnorm_rope",
        _rmsnorm_rope_impl,
        x,
        weight,
        cos,
        sin,
        positions,
        head_dim,
        eps,
        rope_style,
        rope_fraction,
        remember=(
            "rmsnorm_rope",
            tensors,
            statics,
            lambda: _rmsnorm_rope_kernel(
                x, weight, cos, sin, positions, head_dim, eps, rope_style, rope_fraction
            ),
        ),
    )


def fused_rms_norm(
    x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, *, weight_offset: float = 0.0
) -> torch.Tensor:
    """RMSNorm over the last dim of ``x`` ``[..., H]``: ``x · rsqrt(mean(x²) + eps) ·
    (weight_offset + weight)``, in float32 with one rounding to ``x``'s dtype (float16, bfloat16
    or float32). ``weight`` is ``[H]`` in ``x``'s dtype; ``weight_offset=1.0`` is Gemma's
    ``(1 + weight)``. Semantics: :func:`fusedops.reference.rms_norm`.
    """
    tensors, statics = (x, weight), (eps, weight_offset)
    if not _is_compiling():  # under dynamo the checks below are traced instead
        outputs = _tables["rms_norm"](tensors, statics)
        if outputs is not None:
            return outputs[0]
    x, weight, _, eps, weight_offset = _check_norm(x, weight, None, eps, weight_offset)
    return _dispatch(
        "rms_norm",
        _rms_norm_impl,
        x,
        weight,
        eps,
        weight_offset,
        remember=(
            "rms_norm",
            tensors,
            statics,
            lambda: _rms_norm_kernel(x, weight, None, eps, weight_offset),
        ),
    )


def fused_add_rms_norm(
    x: torch.Tensor,
    residual: torch.Tensor,
    weight: torch.Tensor,
    eps: float = 1e-6,
    *,
    weight_offset: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual add and RMSNorm in one pass: returns ``(normed, total)`` with ``total = x +
    residual`` (rounded to ``x``'s dtype, as an unfused add stores it) and ``normed`` =
    :func:`fused_rms_norm` of ``total``. vLLM's ``fused_add_rms_norm`` computes the same in place
    (``x`` ← ``normed``, ``residual`` ← ``total``); here both are new tensors.
    Semantics: :func:`fusedops.reference.rms_norm` with ``residual``.
    """
    tensors, statics = (x, weight, residual), (eps, weight_offset)
    if not _is_compiling():  # under dynamo the checks below are traced instead
        outputs = _tables["add_rms_norm"](tensors, statics)
        if outputs is not None:
            return outputs[0], outputs[1]
    x, weight, residual, eps, weight_offset = _check_norm(x, weight, residual, eps, weight_offset)
    return _dispatch(
        "add_rms_norm",
        _add_rms_norm_impl,
        x,
        residual,
        weight,
        eps,
        weight_offset,
        remember=(
            "add_rms_norm",
            tensors,
            statics,
            lambda: _rms_norm_kernel(x, weight, residual, eps, weight_offset),
        ),
    )


def fused_gated_mlp(
    x: torch.Tensor,
    gate_weight: torch.Tensor,
    up_weight: torch.Tensor,
    activation: str = "silu",
    *,
    recompute: bool = True,
) -> torch.Tensor:
    """``act(x @ gate_weight.T) * (x @ up_weight.T)`` for ``x`` ``[..., K]``, weights ``[N, K]``.

    ``activation`` is ``"silu"`` (SwiGLU), ``"gelu"`` or ``"gelu_tanh"`` (GeGLU).

    With gradients, the backward needs the projections ``x @ gate_weight.T`` and
    ``x @ up_weight.T``. ``recompute=True`` (the default) keeps nothing of them: the backward
    recomputes them with one GEMM (the ``gated_mlp_grad`` kernel). ``recompute=False`` has the
    forward store them and the backward read them (``gated_act_grad``): a GEMM less, at the cost
    of two ``[..., N]`` tensors kept from the forward to the backward. Without gradients both
    are the same kernel.
    """
    tensors, statics = (x, gate_weight, up_weight), (activation,)
    if not _is_compiling():  # under dynamo the checks below are traced instead
        outputs = _tables["gated_mlp"](tensors, statics)
        if outputs is not None:
            return outputs[0]
    x = _check_tensor("x", x, _FLOAT_DTYPES)
    gate_weight = _check_tensor("gate_weight", gate_weight, (x.dtype,), ("x", x))
    up_weight = _check_tensor("up_weight", up_weight, (x.dtype,), ("x", x))
    _choice("activation", activation, _ACTIVATIONS)
    if gate_weight.dim() != 2 or gate_weight.shape[1] != x.shape[-1]:
        raise ShapeError(
            f"gate_weight must be [N, {x.shape[-1]}] (x's last dim); got {tuple(gate_weight.shape)}"
        )
    if up_weight.shape != gate_weight.shape:
        raise ShapeError(
            f"up_weight must have gate_weight's shape {tuple(gate_weight.shape)}; "
            f"got {tuple(up_weight.shape)}"
        )
    if not recompute and torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return torch.ops.fusedops.gated_mlp_saving(x, gate_weight, up_weight, activation)[0]
    return _dispatch(
        "gated_mlp",
        _gated_mlp_impl,
        x,
        gate_weight,
        up_weight,
        activation,
        remember=(
            "gated_mlp",
            tensors,
            statics,
            lambda: _gated_mlp_kernel(x, gate_weight, up_weight, activation),
        ),
    )


def quantize_fp8(
    x: torch.Tensor,
    *,
    fmt: str = "e4m3",
    granularity: str = "row",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic FP8 quantization of ``x`` ``[M, K]``: returns ``(q, scale)`` with
    ``x ≈ q.float() * scale`` per group (see :func:`fusedops.reference.quantize`)."""
    tensors, statics = (x,), (fmt, granularity)
    if not _is_compiling():  # under dynamo the checks below are traced instead
        outputs = _tables["quantize"](tensors, statics)
        if outputs is not None:
            return outputs[0], outputs[1]
    x = _check_tensor("x", x, _QUANTIZABLE_DTYPES)
    if x.dim() != 2:
        raise ShapeError(f"x must be 2-D [M, K]; got shape {tuple(x.shape)} (reshape it first)")
    _choice("fmt", fmt, _FP8_NAMES)
    _choice("granularity", granularity, _GRANULARITIES)
    fp8_dtype = _FP8_BY_NAME[fmt]
    return _dispatch(
        "quantize",
        _quantize_impl,
        x,
        fp8_dtype,
        granularity,
        remember=(
            "quantize",
            tensors,
            statics,
            lambda: _quantize_kernel(x, fp8_dtype, granularity),
        ),
    )


def dequantize_fp8(
    q: torch.Tensor,
    scale: torch.Tensor,
    *,
    granularity: str = "row",
    out_dtype: torch.dtype = torch.bfloat16,
) -> torch.Tensor:
    """``q.float() * scale`` per group, in ``out_dtype`` (float16, bfloat16 or float32)."""
    tensors, statics = (q, scale), (granularity, out_dtype)
    if not _is_compiling():  # under dynamo the checks below are traced instead
        outputs = _tables["dequantize"](tensors, statics)
        if outputs is not None:
            return outputs[0]
    q = _check_tensor("q", q, _FP8_DTYPES)
    if q.dim() != 2:
        raise ShapeError(f"q must be 2-D [M, K]; got shape {tuple(q.shape)}")
    _choice("granularity", granularity, _GRANULARITIES)
    if out_dtype not in _FLOAT_DTYPES + (torch.float32,):
        raise DTypeError(f"out_dtype must be float16, bfloat16 or float32; got {out_dtype}")
    scale = _check_scale("scale", scale, granularity, q.shape[0], q.shape[1], ("q", q))
    return _dispatch(
        "dequantize",
        _dequantize_impl,
        q,
        scale,
        granularity,
        out_dtype,
        remember=(
            "dequantize",
            tensors,
            statics,
            lambda: _dequantize_kernel(q, scale, granularity, out_dtype),
        ),
    )


def fp8_gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    a_scale: Optional[torch.Tensor] = None,
    b_scale: Optional[torch.Tensor] = None,
    granularity: str = "tensor",
    out_dtype: Optional[torch.dtype] = None,
    bias: Optional[torch.Tensor] = None,
    fast_accum: bool = False,
    backward: str = "e5m2",
) -> torch.Tensor:
    """``(a * a_scale) @ (b * b_scale).T (+ bias)`` with ``a`` ``[M, K]`` and ``b`` ``[N, K]``.

    FP8 operands (float8_e4m3fn / float8_e5m2) need their scales; float16/bfloat16 operands are
    quantized dynamically to e4m3 with ``granularity`` first (their scale must be ``None``).
    ``out_dtype`` defaults to ``a``'s dtype for 16-bit inputs and bfloat16 for FP8 inputs;
    ``bias`` is float32 ``[N]``. The sums are float32, promoted from the tensor cores every 128
    of K on Hopper (as ``torch._scaled_mm`` by default); ``fast_accum=True`` skips that
    promotion for ``tensor`` and ``row`` scales: faster, less accurate (``use_fast_accum``).

    With gradients, the backward passes the gradient straight through the quantization
    (``dA = dOut·B``, ``dB = dOutᵀ·A``, FP8 operands dequantized) on the GPU's GEMMs chosen by
    ``backward``: ``"e5m2"`` (the default, TransformerEngine's hybrid recipe) or ``"e4m3"``
    quantize the gradient to that format and the operands to e4m3, each along the reduction
    dim with ``granularity``, for the FP8 kernels; ``"dense"`` multiplies in the gradient's
    16-bit dtype (cuBLAS).
    """
    tensors = (a, b, a_scale, b_scale, bias)
    statics = (granularity, out_dtype, fast_accum, backward)
    if not _is_compiling():  # under dynamo the checks below are traced instead
        outputs = _tables["fp8_gemm"](tensors, statics)
        if outputs is not None:
            return outputs[0]
    _choice("granularity", granularity, _GRANULARITIES)
    _choice("backward", backward, FP8_BACKWARDS)
    if not isinstance(fast_accum, bool):
        raise ArgumentError(f"fast_accum must be True or False; got {fast_accum!r}")
    a = _check_tensor("a", a, _FLOAT_DTYPES + _FP8_DTYPES)
    b = _check_tensor("b", b, _FLOAT_DTYPES + _FP8_DTYPES, ("a", a))
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ShapeError(
            f"a must be [M, K] and b [N, K] with the same K; got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    if out_dtype is None:
        out_dtype = a.dtype if a.dtype in _FLOAT_DTYPES else torch.bfloat16
    if out_dtype not in _FLOAT_DTYPES + (torch.float32,):
        raise DTypeError(f"out_dtype must be float16, bfloat16 or float32; got {out_dtype}")
    operands = []
    for name, t, s in (("a", a, a_scale), ("b", b, b_scale)):
        if t.dtype in _FP8_DTYPES:
            if s is None:
                raise ArgumentError(
                    f"{name} is FP8 ({t.dtype}): pass {name}_scale, or pass "
                    f"{name} in float16/bfloat16 to quantize it dynamically"
                )
            s = _check_scale(f"{name}_scale", s, granularity, t.shape[0], t.shape[1], ("a", a))
        else:
            if s is not None:
                raise ArgumentError(
                    f"{name} is {t.dtype}, so it is quantized dynamically; "
                    f"{name}_scale must be None (quantize it yourself with "
                    "quantize_fp8 to choose the scale)"
                )
        operands.append((t, s))
    if bias is not None:
        bias = _check_tensor("bias", bias, (torch.float32,), ("a", a))
        if tuple(bias.shape) != (b.shape[0],):
            raise ShapeError(f"bias must be float32 [{b.shape[0]}]; got {tuple(bias.shape)}")
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (a, b, bias)):
        # Training (or a module called with gradients on): one autograd node that quantizes
        # the 16-bit operands and multiplies; its backward passes the gradient straight
        # through the quantization (_fp8_gemm_grads).
        (ta, sa), (tb, sb) = operands
        return torch.ops.fusedops.fp8_gemm_train(
            ta, tb, sa, sb, bias, granularity, out_dtype, fast_accum, backward
        )
    (qa, sa), (qb, sb) = [
        (t, s) if s is not None else quantize_fp8(t, fmt="e4m3", granularity=granularity)
        for t, s in operands
    ]

    def fast_entry() -> _Fp8GemmCall:
        quantize = {
            name: _quantize_kernel(t, torch.float8_e4m3fn, granularity)
            for name, t in (("a", a), ("b", b))
            if t.dtype not in _FP8_DTYPES
        }
        gemm = _fp8_gemm_kernel(qa, qb, sa, sb, bias, granularity, out_dtype, fast_accum)
        return _Fp8GemmCall(quantize.get("a"), quantize.get("b"), gemm)

    return _dispatch(
        "fp8_gemm",
        _fp8_gemm_impl,
        qa,
        qb,
        sa,
        sb,
        bias,
        granularity,
        out_dtype,
        fast_accum,
        remember=("fp8_gemm", tensors, statics, fast_entry),
    )
