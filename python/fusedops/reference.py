"""float64 NumPy reference implementations of the fusedops dialect's operations.

Why: every compiled kernel is tested by comparing its output with these functions. They are
written for clarity and numerical headroom rather than speed: all arithmetic is done in float64,
so the reference's own rounding error (~1e-16) is negligible next to the per-dtype tolerances in
:data:`DTYPE_TOLERANCE`, and any mismatch can be blamed on the kernel. FP8 data is handled through
:mod:`fusedops.fp8`, which is bit-exact.

Every function validates its arguments and raises :class:`~fusedops.errors.ShapeError`,
:class:`~fusedops.errors.DTypeError` or :class:`~fusedops.errors.ArgumentError` with a message that
says what to change, so a mis-wired test fails loudly instead of comparing garbage.

Operations:

* :func:`rmsnorm_rope` - RMSNorm followed by rotary position embedding (NeoX or GPT-J layout,
  optionally partial rotary), with the :func:`rope_cache` helper for the cos/sin tables;
* :func:`gated_mlp` - ``act(x Wg^T) * (x Wu^T)`` with SiLU / exact GELU / tanh-GELU;
* :func:`quantize` / :func:`dequantize` - FP8 quantization with per-tensor, per-row or 128x128
  block scales;
* :func:`fp8_gemm` - scaled FP8 GEMM ``A B^T (+ bias)``;
* :func:`relative_error` - the error metric the GPU tests use with :data:`DTYPE_TOLERANCE`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import fp8
from ._checks import (
    as_float64,
    as_index_array,
    as_uint8_bits,
    require_choice,
    require_ndim,
    require_positive_int,
    require_real,
    require_shape,
)
from .errors import ArgumentError, ShapeError
from .fp8 import FormatLike

__all__ = [
    "BLOCK_SIZE",
    "DTYPE_TOLERANCE",
    "MIN_AMAX",
    "Activation",
    "Granularity",
    "RopeStyle",
    "dequantize",
    "fp8_gemm",
    "gated_mlp",
    "quantize",
    "relative_error",
    "rmsnorm_rope",
    "rope_cache",
    "scale_shape",
]

RopeStyle = Literal["neox", "gptj"]
Activation = Literal["silu", "gelu", "gelu_tanh"]
Granularity = Literal["tensor", "row", "block128"]

_ROPE_STYLES = ("neox", "gptj")
_ACTIVATIONS = ("silu", "gelu", "gelu_tanh")
_GRANULARITIES = ("tensor", "row", "block128")

#: Edge length of the square blocks that share one scale with ``granularity="block128"``.
BLOCK_SIZE = 128

#: Lower bound applied to a group's amax before computing a dynamic scale, so that all-zero
#: (or all-non-finite) groups get a tiny positive scale instead of zero.
MIN_AMAX = 1e-12

#: Per-output-dtype bounds on :func:`relative_error` (kernel output vs. these float64 references)
#: that the GPU tests use. They are a few units of the dtype's rounding error (float32: 2**-24,
#: float16: 2**-11, bfloat16: 2**-8), leaving room for accumulation-order differences and for
#: intermediate roundings inside fused kernels, while still catching indexing or formula bugs,
#: which produce errors of order 1. FP8 paths are compared after mirroring the FP8 rounding
#: exactly (quantize / fp8_gemm take the kernel's FP8 bytes and scales), so the same bounds apply
#: to their higher-precision outputs.
DTYPE_TOLERANCE: dict[str, float] = {
    "float32": 1e-5,
    "float16": 2e-3,
    "bfloat16": 1.6e-2,
}


# --------------------------------------------------------------------------------------------
# RMSNorm + RoPE
# --------------------------------------------------------------------------------------------


def _rotary_dim(head_dim: int, rotary_fraction: float) -> int:
    """``head_dim * rotary_fraction`` as an int, checked to be even and in ``(0, head_dim]``."""
    frac = require_real("rotary_fraction", rotary_fraction, minimum=0.0, inclusive=False)
    exact = head_dim * frac
    rounded = round(exact)
    if abs(exact - rounded) > 1e-9 * head_dim or rounded % 2 or not 0 < rounded <= head_dim:
        raise ArgumentError(
            f"head_dim * rotary_fraction must be an even integer in (0, head_dim], got "
            f"{head_dim} * {rotary_fraction!r} = {exact!r}; choose rotary_fraction = "
            f"R / {head_dim} for an even R <= {head_dim}"
        )
    return int(rounded)


def _row_positions(
    row_shape: tuple[int, ...], positions: ArrayLike | None, seq_len: int
) -> NDArray[np.int64]:
    """Position (row index into cos/sin) of every row of ``x``; shape ``row_shape``."""
    if positions is None:
        if len(row_shape) < 1:
            raise ShapeError(
                "x must have rank >= 2 ([..., S, H]) when positions is None, because the "
                "position of a row is its index along dim -2; got a 1-D x. Pass positions "
                "explicitly or add a sequence dimension"
            )
        if row_shape[-1] > seq_len:
            raise ShapeError(
                f"x has {row_shape[-1]} rows along dim -2 but cos/sin only cover {seq_len} "
                f"positions; pass cos/sin with at least {row_shape[-1]} rows"
            )
        return np.broadcast_to(np.arange(row_shape[-1], dtype=np.int64), row_shape)
    pos = as_index_array("positions", positions)
    require_shape("positions", pos, row_shape, "one position per row of x, i.e. x.shape[:-1]")
    if pos.size and (int(pos.min()) < 0 or int(pos.max()) >= seq_len):
        bad = pos[(pos < 0) | (pos >= seq_len)]
        raise ArgumentError(
            f"positions must lie in [0, {seq_len}) (the number of rows of cos/sin); found "
            f"out-of-range values such as {int(bad.flat[0])}. Extend cos/sin or fix positions"
        )
    return pos


def rmsnorm_rope(
    x: ArrayLike,
    weight: ArrayLike,
    cos: ArrayLike,
    sin: ArrayLike,
    *,
    eps: float,
    head_dim: int,
    rope_style: RopeStyle = "neox",
    rotary_fraction: float = 1.0,
    positions: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """RMSNorm over the last dim followed by rotary embedding of each head.

    Args:
        x: ``[..., H]`` activations; ``H`` must be a multiple of ``head_dim``.
        weight: ``[H]`` RMSNorm gain.
        cos, sin: ``[S, R]`` rotary tables with ``R = head_dim * rotary_fraction``, laid out for
            ``rope_style`` (see :func:`rope_cache`). Only ``cos[p]`` / ``sin[p]`` of a row's
            position ``p`` are used.
        eps: added to the mean square before the square root (finite, ``>= 0``).
        head_dim: size of each head; heads are consecutive ``head_dim`` chunks of ``H``.
        rope_style: ``"neox"`` rotates pairs ``(i, i + R/2)``; ``"gptj"`` rotates ``(2i, 2i+1)``.
        rotary_fraction: fraction of each head that is rotated; dims ``[R, head_dim)`` of every
            head pass through normalized but unrotated.
        positions: ``None`` to use each row's index along dim -2 (``x`` must then have rank >= 2
            and ``x.shape[-2] <= S``), or an integer array of shape ``x.shape[:-1]`` giving
            every row's position in ``[0, S)``.

    Returns:
        float64 array with the shape of ``x``:
        ``y = x / sqrt(mean(x**2) + eps) * weight``, then for each head and ``i < R/2``
        (NeoX, ``h = R/2``)::

            out[i]     = y[i]     * cos[p, i]     - y[i + h] * sin[p, i]
            out[i + h] = y[i + h] * cos[p, i + h] + y[i]     * sin[p, i + h]

        or (GPT-J)::

            out[2i]     = y[2i]     * cos[p, 2i]     - y[2i + 1] * sin[p, 2i]
            out[2i + 1] = y[2i + 1] * cos[p, 2i + 1] + y[2i]     * sin[p, 2i + 1]
    """
    xa = as_float64("x", x)
    if xa.ndim < 1:
        raise ShapeError("x must have rank >= 1 with layout [..., H], got a scalar")
    hidden = xa.shape[-1]
    w = as_float64("weight", weight)
    require_shape("weight", w, (hidden,), "[H], the last dim of x")
    hd = require_positive_int("head_dim", head_dim)
    if hidden % hd:
        raise ShapeError(
            f"the last dim of x (H={hidden}) must be a multiple of head_dim={hd}; check head_dim "
            "or that x is laid out [..., num_heads * head_dim]"
        )
    rot = _rotary_dim(hd, rotary_fraction)
    c = as_float64("cos", cos)
    s = as_float64("sin", sin)
    require_ndim("cos", c, 2, "[S, R]")
    require_shape("sin", s, c.shape, "the same shape as cos")
    if c.shape[1] != rot:
        raise ShapeError(
            f"cos/sin must have R = head_dim * rotary_fraction = {rot} columns, got shape "
            f"{tuple(c.shape)}; build them with rope_cache(seq_len, {rot}, style=...)"
        )
    eps_f = require_real("eps", eps, minimum=0.0)
    style = require_choice("rope_style", rope_style, _ROPE_STYLES)
    pos = _row_positions(xa.shape[:-1], positions, c.shape[0])

    inv_rms = 1.0 / np.sqrt(np.mean(xa * xa, axis=-1, keepdims=True) + eps_f)
    y = xa * inv_rms * w

    heads = y.reshape(*xa.shape[:-1], hidden // hd, hd)
    yr = heads[..., :rot]
    # [..., 1, R]: the row's table entries, broadcast over its heads.
    cp = c[pos][..., np.newaxis, :]
    sp = s[pos][..., np.newaxis, :]
    if style == "neox":
        half = rot // 2
        y1, y2 = yr[..., :half], yr[..., half:]
        rotated = np.concatenate(
            [
                y1 * cp[..., :half] - y2 * sp[..., :half],
                y2 * cp[..., half:] + y1 * sp[..., half:],
            ],
            axis=-1,
        )
    else:
        ye, yo = yr[..., 0::2], yr[..., 1::2]
        new_even = ye * cp[..., 0::2] - yo * sp[..., 0::2]
        new_odd = yo * cp[..., 1::2] + ye * sp[..., 1::2]
        rotated = np.stack([new_even, new_odd], axis=-1).reshape(yr.shape)
    out: NDArray[np.float64] = heads.copy()
    out[..., :rot] = rotated
    return out.reshape(xa.shape)


def rms_norm(
    x: ArrayLike,
    weight: ArrayLike,
    *,
    eps: float,
    residual: ArrayLike | None = None,
    weight_offset: float = 0.0,
) -> NDArray[np.float64]:
    """RMSNorm over the last dim: ``x / sqrt(mean(x**2) + eps) * (weight_offset + weight)``.

    Args:
        x: ``[..., H]`` activations.
        weight: ``[H]`` gain (Gemma stores ``gain - 1`` and uses ``weight_offset=1``).
        eps: added to the mean square before the square root (finite, ``>= 0``).
        residual: ``None``, or an array of ``x``'s shape added to ``x`` first; the caller rounds
            the sum to the kernel's dtype where it compares with a kernel (the kernel normalises
            the sum it stores, rounded), e.g. ``rms_norm(round(x + r), w, eps=eps)``.
        weight_offset: a finite number added to every weight.

    Returns:
        float64 array with the shape of ``x``.
    """
    xa = as_float64("x", x)
    if xa.ndim < 1:
        raise ShapeError("x must have rank >= 1 with layout [..., H], got a scalar")
    w = as_float64("weight", weight)
    require_shape("weight", w, (xa.shape[-1],), "[H], the last dim of x")
    if residual is not None:
        r = as_float64("residual", residual)
        require_shape("residual", r, xa.shape, "the shape of x")
        xa = xa + r
    eps_f = require_real("eps", eps, minimum=0.0)
    offset = require_real("weight_offset", weight_offset, minimum=-math.inf)
    inv_rms = 1.0 / np.sqrt(np.mean(xa * xa, axis=-1, keepdims=True) + eps_f)
    out: NDArray[np.float64] = xa * inv_rms * (w + offset)
    return out


def rope_cache(
    seq_len: int, rotary_dim: int, base: float = 10000.0, style: RopeStyle = "neox"
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Standard RoPE tables ``(cos, sin)``, each ``[seq_len, rotary_dim]``, in float64.

    With ``inv_freq[j] = base ** (-2j / rotary_dim)`` for ``j < rotary_dim / 2`` and
    ``freqs[p, j] = p * inv_freq[j]``, the angle layout matches HuggingFace:
    ``"neox"`` uses ``cat(freqs, freqs)`` (column ``i`` and ``i + R/2`` share a frequency),
    ``"gptj"`` uses ``repeat_interleave(freqs, 2)`` (columns ``2j`` and ``2j+1`` share one).
    (HuggingFace computes these in float32; here they are float64.)
    """
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 0:
        raise ArgumentError(f"seq_len must be a non-negative integer, got {seq_len!r}")
    rdim = require_positive_int("rotary_dim", rotary_dim)
    if rdim % 2:
        raise ArgumentError(f"rotary_dim must be even (dims are rotated in pairs), got {rdim}")
    base_f = require_real("base", base, minimum=0.0, inclusive=False)
    style_s = require_choice("style", style, _ROPE_STYLES)
    inv_freq = base_f ** (-np.arange(0, rdim, 2, dtype=np.float64) / rdim)
    freqs = np.outer(np.arange(int(seq_len), dtype=np.float64), inv_freq)
    if style_s == "neox":
        angles = np.concatenate([freqs, freqs], axis=-1)
    else:
        angles = np.repeat(freqs, 2, axis=-1)
    return np.cos(angles), np.sin(angles)


# --------------------------------------------------------------------------------------------
# Gated MLP
# --------------------------------------------------------------------------------------------

_erf = np.frompyfunc(math.erf, 1, 1)


def _silu(g: NDArray[np.float64]) -> NDArray[np.float64]:
    # Overflow-free sigmoid: exp is only ever taken of a non-positive number.
    z = np.exp(-np.abs(g))
    sigmoid = np.where(g >= 0, 1.0 / (1.0 + z), z / (1.0 + z))
    return g * sigmoid


def _gelu(g: NDArray[np.float64]) -> NDArray[np.float64]:
    erf = np.asarray(_erf(g / math.sqrt(2.0)), dtype=np.float64)
    return 0.5 * g * (1.0 + erf)


def _gelu_tanh(g: NDArray[np.float64]) -> NDArray[np.float64]:
    return 0.5 * g * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (g + 0.044715 * g**3)))


_ACTIVATION_FNS = {"silu": _silu, "gelu": _gelu, "gelu_tanh": _gelu_tanh}


def gated_mlp(
    x: ArrayLike,
    gate_weight: ArrayLike,
    up_weight: ArrayLike,
    activation: Activation = "silu",
) -> NDArray[np.float64]:
    """Gated MLP front half: ``act(x @ gate_weight.T) * (x @ up_weight.T)``.

    Args:
        x: ``[..., K]``.
        gate_weight, up_weight: ``[N, K]`` each (PyTorch ``nn.Linear`` layout).
        activation: ``"silu"`` (``g * sigmoid(g)``), ``"gelu"`` (exact, ``0.5 g (1 + erf(g/√2))``)
            or ``"gelu_tanh"`` (``0.5 g (1 + tanh(√(2/π) (g + 0.044715 g³)))``).

    Returns:
        float64 ``[..., N]``.
    """
    xa = as_float64("x", x)
    if xa.ndim < 1:
        raise ShapeError("x must have rank >= 1 with layout [..., K], got a scalar")
    wg = as_float64("gate_weight", gate_weight)
    wu = as_float64("up_weight", up_weight)
    require_ndim("gate_weight", wg, 2, "[N, K]")
    require_shape("up_weight", wu, wg.shape, "the same [N, K] shape as gate_weight")
    if wg.shape[1] != xa.shape[-1]:
        raise ShapeError(
            f"gate_weight/up_weight must be [N, K] with K = x.shape[-1] = {xa.shape[-1]}, got "
            f"shape {tuple(wg.shape)}; weights use the nn.Linear layout [out_features, "
            "in_features] (transpose them if they are [K, N])"
        )
    act = require_choice("activation", activation, _ACTIVATIONS)
    gate = xa @ wg.T
    up = xa @ wu.T
    return _ACTIVATION_FNS[act](gate) * up


# --------------------------------------------------------------------------------------------
# FP8 quantization and GEMM
# --------------------------------------------------------------------------------------------


def scale_shape(granularity: Granularity, rows: int, cols: int) -> tuple[int, ...]:
    """Shape of the scale array for a ``[rows, cols]`` tensor quantized with ``granularity``.

    ``"tensor"`` -> ``()``; ``"row"`` -> ``(rows,)``;
    ``"block128"`` -> ``(ceil(rows / 128), ceil(cols / 128))``.
    """
    return _scale_shape(require_choice("granularity", granularity, _GRANULARITIES), rows, cols)


def _scale_shape(granularity: str, rows: int, cols: int) -> tuple[int, ...]:
    if granularity == "tensor":
        return ()
    if granularity == "row":
        return (int(rows),)
    return (-(-int(rows) // BLOCK_SIZE), -(-int(cols) // BLOCK_SIZE))


def _expand_scale(
    scale: NDArray[np.float64], granularity: str, rows: int, cols: int
) -> NDArray[np.float64]:
    """Broadcast a validated scale array to one float64 scale per element of ``[rows, cols]``."""
    if granularity == "tensor":
        return np.broadcast_to(scale, (rows, cols))
    if granularity == "row":
        return np.broadcast_to(scale[:, np.newaxis], (rows, cols))
    blocks = np.repeat(np.repeat(scale, BLOCK_SIZE, axis=0), BLOCK_SIZE, axis=1)
    return blocks[:rows, :cols]


def _group_amax(xa: NDArray[np.float64], granularity: str) -> NDArray[np.float64]:
    """max |x| over the finite elements of each scale group (0 for a group with none)."""
    finite_abs = np.where(np.isfinite(xa), np.abs(xa), 0.0)
    if granularity == "tensor":
        return np.asarray(finite_abs.max(initial=0.0), dtype=np.float64)
    if granularity == "row":
        return np.asarray(finite_abs.max(axis=1, initial=0.0), dtype=np.float64)
    rows, cols = xa.shape
    rb, cb = _scale_shape("block128", rows, cols)
    padded = np.zeros((rb * BLOCK_SIZE, cb * BLOCK_SIZE))
    padded[:rows, :cols] = finite_abs
    blocks = padded.reshape(rb, BLOCK_SIZE, cb, BLOCK_SIZE)
    return np.asarray(blocks.max(axis=(1, 3), initial=0.0), dtype=np.float64)


def _checked_scale(
    name: str, scale: ArrayLike, granularity: str, rows: int, cols: int, matrix: str
) -> NDArray[np.float64]:
    """Validate a user-supplied scale's dtype, shape and values; return it as float64."""
    s = as_float64(name, scale)
    expected = _scale_shape(granularity, rows, cols)
    layout = {
        "tensor": "a single scale: pass a 0-d array or a Python float",
        "row": f"one scale per row of {matrix}",
        "block128": f"one scale per 128x128 block of {matrix}, i.e. [ceil(rows/128), "
        "ceil(cols/128)]",
    }[granularity]
    require_shape(name, s, expected, f"granularity={granularity!r}: {layout}")
    bad = ~(np.isfinite(s) & (s > 0))
    if np.any(bad):
        raise ArgumentError(
            f"{name} must be positive and finite everywhere; found {float(s[bad].flat[0])!r}. "
            "Scales are amax / fmt.max_finite; clamp amax away from zero before dividing"
        )
    return s


def _as_matrix(name: str, value: ArrayLike, layout: str) -> NDArray[np.float64]:
    arr = as_float64(name, value)
    require_ndim(name, arr, 2, layout)
    return arr


def quantize(
    x: ArrayLike,
    fmt: FormatLike,
    granularity: Granularity,
    scale: ArrayLike | None = None,
) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """Quantize ``x`` ``[M, K]`` to FP8 with scales of the given granularity.

    The FP8 value stored for element ``x[m, k]`` is ``encode(x[m, k] / s)`` (saturating: NaN stays
    NaN, values beyond range including ±inf become ±``fmt.max_finite``) where ``s`` is the scale of
    the element's group (see :func:`scale_shape`). A 128x128 block at the bottom/right edge covers
    only the elements that exist.

    Dynamic (``scale=None``): ``s = float32(max(amax, MIN_AMAX) / fmt.max_finite)`` where ``amax``
    is the largest ``|x|`` over the group's finite elements (0 if it has none). The division is done
    in float64 and rounded once to float32; the float32 value is then used for quantizing.

    Static (``scale`` given): ``scale`` must have the granularity's shape and be positive and
    finite. It is rounded to float32 first (kernels keep scales in float32), and the rounded value
    is used and returned.

    Returns:
        ``(q_bits, scale)``: uint8 ``[M, K]`` FP8 codes and the float32 scales actually used.
    """
    xa = _as_matrix("x", x, "[M, K]")
    f = fp8.get_format(fmt)
    gran = require_choice("granularity", granularity, _GRANULARITIES)
    rows, cols = xa.shape
    if scale is None:
        amax = _group_amax(xa, gran)
        with np.errstate(over="ignore"):  # reported just below
            scale32 = np.asarray(np.maximum(amax, MIN_AMAX) / f.max_finite, dtype=np.float32)
        if not np.all(np.isfinite(scale32)):
            raise ArgumentError(
                "x has finite values too large for a float32 scale (|x| > "
                f"{float(np.finfo(np.float32).max) * f.max_finite:.3g}); rescale x first"
            )
    else:
        given = _checked_scale("scale", scale, gran, rows, cols, "x")
        with np.errstate(over="ignore", under="ignore"):  # reported just below
            scale32 = np.asarray(given, dtype=np.float32)
        if scale32.size and not np.all((scale32 > 0) & np.isfinite(scale32)):
            raise ArgumentError(
                "scale must stay positive and finite after rounding to float32; got values "
                "outside the float32 range [1.4e-45, 3.4e38]"
            )
    per_element = _expand_scale(scale32.astype(np.float64), gran, rows, cols)
    with np.errstate(over="ignore"):  # overflow to inf saturates to max_finite, as intended
        q = fp8.encode(xa / per_element, f, saturate=True)
    return q, scale32


def dequantize(
    q_bits: ArrayLike, scale: ArrayLike, fmt: FormatLike, granularity: Granularity
) -> NDArray[np.float64]:
    """Inverse of :func:`quantize`: ``decode(q_bits) * scale`` broadcast per group, in float64.

    ``q_bits`` is uint8 ``[M, K]``; ``scale`` has the shape given by :func:`scale_shape` and must be
    positive and finite (it is used as given, in float64).
    """
    q = as_uint8_bits("q_bits", q_bits)
    require_ndim("q_bits", q, 2, "[M, K]")
    f = fp8.get_format(fmt)
    gran = require_choice("granularity", granularity, _GRANULARITIES)
    rows, cols = q.shape
    s = _checked_scale("scale", scale, gran, rows, cols, "q_bits")
    return _dequantize_unchecked(q, s, f, gran)


def _dequantize_unchecked(
    q: NDArray[np.uint8], scale: NDArray[np.float64], fmt: fp8.FP8Format, granularity: str
) -> NDArray[np.float64]:
    rows, cols = q.shape
    return fp8.decode(q, fmt) * _expand_scale(scale, granularity, rows, cols)


def fp8_gemm(
    a_bits: ArrayLike,
    b_bits: ArrayLike,
    a_scale: ArrayLike,
    b_scale: ArrayLike,
    *,
    a_fmt: FormatLike,
    b_fmt: FormatLike,
    granularity: Granularity,
    bias: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Scaled FP8 GEMM ``out = dequant(A) @ dequant(B).T (+ bias)``, accumulated in float64.

    Args:
        a_bits: uint8 ``[M, K]`` FP8 codes of A (format ``a_fmt``).
        b_bits: uint8 ``[N, K]`` FP8 codes of B (format ``b_fmt``); B is stored row-major by
            output column, as for ``nn.Linear`` weights.
        a_scale, b_scale: scales of A and B, shaped per :func:`scale_shape` for ``[M, K]`` and
            ``[N, K]`` respectively; both use ``granularity``.
        bias: optional ``[N]`` added to every output row.

    Returns:
        float64 ``[M, N]`` with
        ``out[m, n] = sum_k decode(A)[m, k] sa(m, k) * decode(B)[n, k] sb(n, k) + bias[n]``.
    """
    a = as_uint8_bits("a_bits", a_bits)
    b = as_uint8_bits("b_bits", b_bits)
    require_ndim("a_bits", a, 2, "[M, K]")
    require_ndim("b_bits", b, 2, "[N, K] (the output is A @ B.T)")
    if a.shape[1] != b.shape[1]:
        raise ShapeError(
            f"a_bits [M, K] and b_bits [N, K] must share K, got shapes {tuple(a.shape)} and "
            f"{tuple(b.shape)}; B must be [N, K] (transpose a [K, N] B before quantizing)"
        )
    gran = require_choice("granularity", granularity, _GRANULARITIES)
    (m, k), n = a.shape, b.shape[0]
    sa = _checked_scale("a_scale", a_scale, gran, m, k, "A")
    sb = _checked_scale("b_scale", b_scale, gran, n, k, "B")
    a_val = _dequantize_unchecked(a, sa, fp8.get_format(a_fmt), gran)
    b_val = _dequantize_unchecked(b, sb, fp8.get_format(b_fmt), gran)
    out: NDArray[np.float64] = a_val @ b_val.T
    if bias is not None:
        bias_a = as_float64("bias", bias)
        require_shape("bias", bias_a, (b.shape[0],), "[N], one value per row of B")
        out = out + bias_a
    return out


# --------------------------------------------------------------------------------------------
# Comparison metric
# --------------------------------------------------------------------------------------------


def relative_error(out: ArrayLike, ref: ArrayLike) -> float:
    """Relative error ``||out - ref|| / ||ref||`` (Frobenius norms, computed in float64).

    Returns ``inf`` if either array contains a NaN or an infinity (such outputs are never
    acceptable under a relative bound; compare special values separately if expected), and for a
    non-zero ``out`` against an all-zero ``ref``; ``0.0`` if both are all zero.
    """
    o = as_float64("out", out)
    r = as_float64("ref", ref)
    require_shape("out", o, r.shape, "the shape of ref")
    if not (np.all(np.isfinite(o)) and np.all(np.isfinite(r))):
        return math.inf
    # Scale by the largest magnitude first so the norms cannot overflow or underflow.
    peak = float(max(np.max(np.abs(o), initial=0.0), np.max(np.abs(r), initial=0.0)))
    if peak == 0.0:
        return 0.0
    diff = float(np.linalg.norm((o - r).ravel() / peak))
    ref_norm = float(np.linalg.norm(r.ravel() / peak))
    if ref_norm == 0.0:
        return math.inf if diff > 0.0 else 0.0
    return diff / ref_norm
