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

from collections.abc import Sequence
from typing import Any, Callable, Optional

import torch

from . import _codegen, _native

# The compiled kernels (cache, call tables, launch) and the training forms live beside this
# module; the tuner and the tests reach these names here.
from ._autograd import (  # noqa: F401
    _add_rms_norm_torch,
    _fp8_gemm_torch,
    _gated_mlp_grads,
    _recomputed_grads,
    _rms_norm_torch,
    _rmsnorm_rope_torch,
)
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
from .errors import (
    ArgumentError,
    DeviceError,
    DTypeError,
    ShapeError,
)

__all__ = [
    "dequantize_fp8",
    "fp8_gemm",
    "fused_add_rms_norm",
    "fused_gated_mlp",
    "fused_rms_norm",
    "fused_rmsnorm_rope",
    "quantize_fp8",
]

_FLOAT_DTYPES = (torch.float16, torch.bfloat16)
_FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
_FP8_BY_NAME = {"e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2}
_FP8_NAMES = tuple(_FP8_BY_NAME)
_QUANTIZABLE_DTYPES = (*_FLOAT_DTYPES, torch.float32)
_GRANULARITIES = ("tensor", "row", "block128")
_ACTIVATIONS = ("silu", "gelu", "gelu_tanh")
_ROPE_STYLES = ("neox", "gptj")


# ------------------------------------------------------------------------------------------
# Argument checks
# ------------------------------------------------------------------------------------------


def _check_tensor(
    name: str,
    t: Any,
    dtypes: Sequence[torch.dtype],
    first: Optional[tuple[str, torch.Tensor]] = None,
) -> torch.Tensor:
    """``t`` if it is a contiguous, non-empty tensor of one of ``dtypes`` on a GPU: the GPU of
    ``first`` (the call's first tensor, checked before, and its name) where given.

    So all the arguments of a call are on one device once each has passed. Written for speed on
    the accepted path (it runs for every tensor of every call): ``is_cuda`` and
    ``get_device()`` instead of building a ``torch.device``.
    """
    if not isinstance(t, torch.Tensor):
        raise ArgumentError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    device = t.get_device()  # -1 for CPU tensors
    if device < 0:
        if not torch.cuda.is_available():
            raise DeviceError(
                f"{name} is on {t.device}; fusedops runs on an NVIDIA GPU and "
                "PyTorch sees none (torch.cuda.is_available() is False)"
            )
        raise DeviceError(f"{name} is on {t.device}; move it to the GPU with {name}.cuda()")
    if first is not None and device != first[1].get_device():
        raise DeviceError(
            f"{name} is on {t.device} but {first[0]} is on {first[1].device}; the tensors of "
            f"a call must be on one GPU (move {name} with {name}.to({first[0]}.device))"
        )
    if t.dtype not in dtypes:
        names = ", ".join(str(d) for d in dtypes)
        raise DTypeError(
            f"{name} has dtype {t.dtype}; expected one of {names}; "
            f"convert it with {name}.to(<dtype>) if that is intended"
        )
    if not t.is_contiguous():
        raise ShapeError(
            f"{name} is not contiguous (strides {tuple(t.stride())}); pass {name}.contiguous()"
        )
    if t.numel() == 0:
        raise ShapeError(f"{name} is empty (shape {tuple(t.shape)})")
    if not _is_compiling() and t.data_ptr() % 16:  # fake tensors have no address
        # The kernels' 16-byte vector accesses would fault (and a fault ends the CUDA context).
        raise ShapeError(
            f"{name} starts {t.data_ptr() % 16} bytes past a 16-byte boundary (a view at storage "
            f"offset {t.storage_offset()}); pass {name}.clone()"
        )
    return t


def _row_sizes(shape: Sequence[int], rows_hint: Optional[int]) -> tuple[Optional[int], ...]:
    """The row sizes (all but the last) of ``shape`` as a kernel sees them: dynamic (None) for
    a kernel that serves a class of row counts (``rows_hint`` given), else as they are."""
    rows = tuple(shape[:-1])
    return (None,) * len(rows) if rows_hint is not None else rows


def _choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ArgumentError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _mlir(dtype: torch.dtype) -> str:
    return _codegen.MLIR_ELEMENT_TYPES[str(dtype).replace("torch.", "")]


# ------------------------------------------------------------------------------------------
# Implementations (custom ops below)
# ------------------------------------------------------------------------------------------


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
) -> _Kernel:
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
        )

    return _kernel(
        "rmsnorm_rope",
        key,
        build,
        [x, weight, cos, sin, positions],
        [(x.shape, x.dtype)],
        rows=x.numel() // x.shape[-1] if x.dim() > 1 else None,
    )


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


def _rms_norm_kernel(
    x: torch.Tensor,
    weight: torch.Tensor,
    residual: Optional[torch.Tensor],
    eps: float,
    weight_offset: float,
) -> _Kernel:
    """The kernel of ``rms_norm`` (``residual`` None) or ``add_rms_norm``: arguments ``x``,
    ``weight``, ``residual`` and the outputs (``normed``, ``total``)."""
    has_residual = residual is not None
    outputs = [(x.shape, x.dtype)] * (2 if has_residual else 1)
    return _kernel(
        "add_rms_norm" if has_residual else "rms_norm",
        (x.shape, x.dtype, eps, weight_offset),
        lambda hint: _codegen.rms_norm_source(
            (*_row_sizes(x.shape, hint), x.shape[-1]),
            _mlir(x.dtype),
            eps=eps,
            residual=has_residual,
            weight_offset=weight_offset,
            rows_hint=hint,
        ),
        [x, weight, residual],
        outputs,
        rows=x.numel() // x.shape[-1] if x.dim() > 1 else None,
    )


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


def _check_norm(
    x: Any, weight: Any, residual: Any, eps: Any, weight_offset: Any
) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], float, float]:
    x = _check_tensor("x", x, (*_FLOAT_DTYPES, torch.float32))
    weight = _check_tensor("weight", weight, (x.dtype,), ("x", x))
    if weight.shape != (x.shape[-1],):
        raise ShapeError(
            f"weight must have shape ({x.shape[-1]},) to match x {tuple(x.shape)}; got "
            f"{tuple(weight.shape)}"
        )
    if residual is not None:
        residual = _check_tensor("residual", residual, (x.dtype,), ("x", x))
        if residual.shape != x.shape:
            raise ShapeError(
                f"residual must have x's shape {tuple(x.shape)}; got {tuple(residual.shape)}"
            )
    if not isinstance(eps, (int, float)) or not (0.0 <= eps < float("inf")):
        raise ArgumentError(f"eps must be finite and >= 0; got {eps!r}")
    if not isinstance(weight_offset, (int, float)) or not (abs(weight_offset) < float("inf")):
        raise ArgumentError(
            f"weight_offset must be a finite number (1.0 for Gemma's norms); got {weight_offset!r}"
        )
    return x, weight, residual, float(eps), float(weight_offset)


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


def _gated_mlp_kernel(
    x: torch.Tensor, gate_weight: torch.Tensor, up_weight: torch.Tensor, activation: str
) -> _Kernel:
    return _kernel(
        "gated_mlp",
        (x.shape, gate_weight.shape, x.dtype, activation),
        lambda hint: _codegen.gated_mlp_source(
            (*_row_sizes(x.shape, hint), x.shape[-1]),
            gate_weight.shape,
            _mlir(x.dtype),
            activation=activation,
            rows_hint=hint,
        ),
        [x, gate_weight, up_weight],
        [((*x.shape[:-1], gate_weight.shape[0]), x.dtype)],
        rows=x.numel() // x.shape[-1] if x.dim() > 1 else None,
    )


def _gated_mlp_impl(
    x: torch.Tensor, gate_weight: torch.Tensor, up_weight: torch.Tensor, activation: str
) -> torch.Tensor:
    return _gated_mlp_kernel(x, gate_weight, up_weight, activation)([x, gate_weight, up_weight])[0]


def fused_gated_mlp(
    x: torch.Tensor, gate_weight: torch.Tensor, up_weight: torch.Tensor, activation: str = "silu"
) -> torch.Tensor:
    """``act(x @ gate_weight.T) * (x @ up_weight.T)`` for ``x`` ``[..., K]``, weights ``[N, K]``.

    ``activation`` is ``"silu"`` (SwiGLU), ``"gelu"`` or ``"gelu_tanh"`` (GeGLU).
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


def _check_scale(
    name: str,
    scale: Any,
    granularity: str,
    rows: int,
    cols: int,
    first: tuple[str, torch.Tensor],
) -> torch.Tensor:
    scale = _check_tensor(name, scale, (torch.float32,), first)
    want = _native.scale_shape(granularity, rows, cols)
    if tuple(scale.shape) != want:
        raise ShapeError(
            f"{name} must have shape {want} for granularity={granularity} and a "
            f"[{rows}, {cols}] operand; got {tuple(scale.shape)}"
        )
    return scale


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
) -> torch.Tensor:
    """``(a * a_scale) @ (b * b_scale).T (+ bias)`` with ``a`` ``[M, K]`` and ``b`` ``[N, K]``.

    FP8 operands (float8_e4m3fn / float8_e5m2) need their scales; float16/bfloat16 operands are
    quantized dynamically to e4m3 with ``granularity`` first (their scale must be ``None``).
    ``out_dtype`` defaults to ``a``'s dtype for 16-bit inputs and bfloat16 for FP8 inputs;
    ``bias`` is float32 ``[N]``. The sums are float32, promoted from the tensor cores every 128
    of K on Hopper (as ``torch._scaled_mm`` by default); ``fast_accum=True`` skips that
    promotion for ``tensor`` and ``row`` scales: faster, less accurate (``use_fast_accum``).
    """
    tensors, statics = (a, b, a_scale, b_scale, bias), (granularity, out_dtype, fast_accum)
    if not _is_compiling():  # under dynamo the checks below are traced instead
        outputs = _tables["fp8_gemm"](tensors, statics)
        if outputs is not None:
            return outputs[0]
    _choice("granularity", granularity, _GRANULARITIES)
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
        # through the quantization (_fp8_gemm_torch).
        (ta, sa), (tb, sb) = operands
        return torch.ops.fusedops.fp8_gemm_train(
            ta, tb, sa, sb, bias, granularity, out_dtype, fast_accum
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


_is_compiling = torch.compiler.is_compiling


# ------------------------------------------------------------------------------------------
# torch.library registration
# ------------------------------------------------------------------------------------------


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
        grads = _recomputed_grads(
            _rmsnorm_rope_torch,
            tensors,
            (positions, *ctx.statics),
            grad,
            ctx.needs_input_grad[:4],
        )
        return (*grads, None, None, None, None, None)

    rmsnorm_rope.register_autograd(rmsnorm_rope_backward, setup_context=rmsnorm_rope_setup)

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
        grads = _recomputed_grads(
            _rms_norm_torch, ctx.saved_tensors, ctx.statics, grad, ctx.needs_input_grad[:2]
        )
        return (*grads, None, None)

    rms_norm.register_autograd(rms_norm_backward, setup_context=rms_norm_setup)

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
        ctx.save_for_backward(*inputs[:3])  # x, residual, weight
        ctx.statics = inputs[3:]

    def add_rms_norm_backward(ctx, grad_out, grad_total):
        grads = _recomputed_grads(
            _add_rms_norm_torch,
            ctx.saved_tensors,
            ctx.statics,
            (grad_out, grad_total),
            ctx.needs_input_grad[:3],
        )
        return (*grads, None, None)

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
    def _(a, b, a_scale, b_scale, bias, granularity, out_dtype, fast_accum):
        return a.new_empty((a.shape[0], b.shape[0]), dtype=out_dtype)

    def fp8_gemm_train_setup(ctx, inputs, output):
        ctx.save_for_backward(*inputs[:5])  # a, b, a_scale, b_scale, bias (or Nones)
        ctx.statics = inputs[5:]

    def fp8_gemm_train_backward(ctx, grad):
        a, b, a_scale, b_scale, bias = ctx.saved_tensors
        grads = _recomputed_grads(
            lambda a, b, *rest: _fp8_gemm_torch(a, b, *rest),
            (a, b),
            (a_scale, b_scale, bias, *ctx.statics),
            grad,
            ctx.needs_input_grad[:2],
        )
        grad_bias = grad.float().sum(0) if ctx.needs_input_grad[4] else None
        return (*grads, None, None, grad_bias, None, None, None)

    fp8_gemm_train.register_autograd(fp8_gemm_train_backward, setup_context=fp8_gemm_train_setup)


_register()
