"""MLIR source for one fusedops op, in buffer form, as the Python API compiles it.

Each builder returns ``(source, arg_names)``: a module with one function ``@kernel`` marked
``llvm.emit_c_interface`` whose arguments are the op's operands followed by its outputs, as memrefs
with static shapes, in the order of ``arg_names``. Row sizes (all of an input's sizes but the
last, ``m``, ``rows``) may be None: dynamic, for one kernel that serves every row count of a class;
``rows_hint`` is then the row count its tile is chosen for (``fusedops.rows_hint``). The module
is built by the op's C++ builder through the C API (``fusedopsBuildOpSource``): the dialect owns
the syntax, the operand order and the shapes that follow from the others (a norm's weight, a
granularity's scales, a GEMM's output); these functions only name the problem. The argument
checks live in :mod:`fusedops.torch_ops`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Optional

from ._native import build_op_source as _build
from ._native import set_tile as _set_tile
from .errors import ArgumentError

__all__ = [
    "MLIR_ELEMENT_TYPES",
    "dequantize_source",
    "fp8_gemm_source",
    "gated_mlp_source",
    "with_tile",
    "quantize_source",
    "rms_norm_source",
    "rmsnorm_rope_source",
]

#: PyTorch dtype name -> MLIR element type.
MLIR_ELEMENT_TYPES = {
    "float16": "f16",
    "bfloat16": "bf16",
    "float32": "f32",
    "float8_e4m3fn": "f8E4M3FN",
    "float8_e5m2": "f8E5M2",
    "int32": "i32",
}


def _source(op: str, rows_hint: Optional[int] = None, **fields) -> tuple[str, list[str]]:
    if rows_hint is not None:
        fields["rows_hint"] = int(rows_hint)
    source, names = _build(json.dumps({"op": op, **fields}, sort_keys=True))
    return source, list(names)


def _sizes(shape: Sequence[Optional[int]]) -> list[Optional[int]]:
    """A shape for a request: ints, None for a dynamic size."""
    return [None if d is None else int(d) for d in shape]


def _size(size: Optional[int]) -> Optional[int]:
    return None if size is None else int(size)


def rmsnorm_rope_source(
    x_shape: Sequence[Optional[int]],
    dtype: str,
    table_shape: Sequence[Optional[int]],
    table_dtype: str,
    *,
    head_dim: int,
    eps: float,
    style: str,
    rotary_fraction: float = 1.0,
    positions_shape: Optional[Sequence[Optional[int]]] = None,
    positions_dtype: str = "i32",
    rows_hint: Optional[int] = None,
    grad_partials: Optional[int] = None,
) -> tuple[str, list[str]]:
    """The module of ``fusedops.rmsnorm_rope`` (arguments ``x``, ``w``, ``cos``, ``sin``,
    [``positions``], ``out``), or with ``grad_partials`` = P that of
    ``fusedops.rmsnorm_rope_grad`` (arguments ``x``, ``w``, ``cos``, ``sin``, [``positions``],
    ``grad``, ``dx``, ``dw_partials`` [P, hidden] f32, ``dw`` [hidden]: the weight's gradient,
    summed over P by a second kernel)."""
    fields = dict(
        x_shape=_sizes(x_shape),
        dtype=dtype,
        table_shape=_sizes(table_shape),
        table_dtype=table_dtype,
        head_dim=int(head_dim),
        eps=float(eps),
        style=style,
    )
    if rotary_fraction != 1.0:
        fields["rotary_fraction"] = float(rotary_fraction)
    if positions_shape is not None:
        fields["positions_shape"] = _sizes(positions_shape)
        fields["positions_dtype"] = positions_dtype
    if grad_partials is not None:
        return _source("rmsnorm_rope_grad", rows_hint, partials=int(grad_partials), **fields)
    return _source("rmsnorm_rope", rows_hint, **fields)


def rms_norm_source(
    x_shape: Sequence[Optional[int]],
    dtype: str,
    *,
    eps: float,
    residual: bool = False,
    weight_offset: float = 0.0,
    rows_hint: Optional[int] = None,
    grad_partials: Optional[int] = None,
) -> tuple[str, list[str]]:
    """The module of ``fusedops.rms_norm`` (arguments ``x``, ``w``, [``residual``], ``out``,
    [``sum``]), or with ``grad_partials`` = P that of ``fusedops.rms_norm_grad`` (arguments
    ``x``, ``w``, ``grad``, [``residual_grad``], ``dx``, ``dw_partials`` [P, hidden] f32, ``dw``
    [hidden]: the weight's gradient, summed over P by a second kernel; there ``residual`` adds
    the sum's gradient)."""
    fields: dict = dict(x_shape=_sizes(x_shape), dtype=dtype, eps=float(eps))
    if weight_offset != 0.0:
        fields["weight_offset"] = float(weight_offset)
    if grad_partials is not None:
        if residual:
            fields["residual_grad"] = True
        return _source("rms_norm_grad", rows_hint, partials=int(grad_partials), **fields)
    if residual:
        fields["residual"] = True
    return _source("rms_norm", rows_hint, **fields)


def gated_mlp_source(
    x_shape: Sequence[Optional[int]],
    weight_shape: Sequence[int],
    dtype: str,
    *,
    activation: str,
    rows_hint: Optional[int] = None,
    save_preactivations: bool = False,
) -> tuple[str, list[str]]:
    """The module of ``fusedops.gated_mlp``: arguments ``x``, ``wg``, ``wu``, ``out``, and
    with ``save_preactivations`` also ``gate`` and ``up`` (``x·Wgᵀ``, ``x·Wuᵀ``)."""
    x = _sizes(x_shape)
    if len(weight_shape) != 2 or not x or int(weight_shape[1]) != x[-1]:
        raise ArgumentError(f"weights {list(weight_shape)} do not take x of shape {x}")
    fields: dict = dict(x_shape=x, n=int(weight_shape[0]), dtype=dtype, activation=activation)
    if save_preactivations:
        fields["save_preactivations"] = True
    return _source("gated_mlp", rows_hint, **fields)


def gated_act_grad_source(
    shape: Sequence[Optional[int]],
    dtype: str,
    *,
    activation: str,
    rows_hint: Optional[int] = None,
) -> tuple[str, list[str]]:
    """The module of ``fusedops.gated_act_grad``: arguments ``gate``, ``up``, ``grad``, then
    ``grad_gate`` and ``grad_up``, all of ``shape``."""
    return _source(
        "gated_act_grad", rows_hint, shape=_sizes(shape), dtype=dtype, activation=activation
    )


def gated_mlp_grad_source(
    x_shape: Sequence[Optional[int]],
    weight_shape: Sequence[int],
    dtype: str,
    *,
    activation: str,
    rows_hint: Optional[int] = None,
) -> tuple[str, list[str]]:
    """The module of ``fusedops.gated_mlp_grad``: arguments ``x``, ``wg``, ``wu``, ``grad``
    (``[..., N]``), then ``grad_gate`` and ``grad_up``."""
    x = _sizes(x_shape)
    if len(weight_shape) != 2 or not x or int(weight_shape[1]) != x[-1]:
        raise ArgumentError(f"weights {list(weight_shape)} do not take x of shape {x}")
    return _source(
        "gated_mlp_grad",
        rows_hint,
        x_shape=x,
        n=int(weight_shape[0]),
        dtype=dtype,
        activation=activation,
    )


def fp8_gemm_source(
    m: Optional[int],
    n: int,
    k: int,
    a_dtype: str,
    b_dtype: str,
    out_dtype: str,
    *,
    granularity: str,
    bias: bool = False,
    fast_accum: bool = False,
    rows_hint: Optional[int] = None,
) -> tuple[str, list[str]]:
    return _source(
        "fp8_gemm",
        rows_hint,
        m=_size(m),
        n=int(n),
        k=int(k),
        a_dtype=a_dtype,
        b_dtype=b_dtype,
        out_dtype=out_dtype,
        granularity=granularity,
        bias=bool(bias),
        fast_accum=bool(fast_accum),
    )


def quantize_source(
    rows: Optional[int],
    cols: int,
    dtype: str,
    fp8: str,
    *,
    granularity: str,
    rows_hint: Optional[int] = None,
    transposed: bool = False,
) -> tuple[str, list[str]]:
    """Dynamic quantization: ``x`` -> FP8 values ``q`` and float32 scales ``s``, and with
    ``transposed`` (block128) also ``qt`` ``[cols, M']``, the values transposed."""
    fields: dict = dict(
        rows=_size(rows), cols=int(cols), dtype=dtype, fp8=fp8, granularity=granularity
    )
    if transposed:
        fields["transposed"] = True
    return _source("quantize", rows_hint, **fields)


def dequantize_source(
    rows: Optional[int],
    cols: int,
    fp8: str,
    out_dtype: str,
    *,
    granularity: str,
    rows_hint: Optional[int] = None,
) -> tuple[str, list[str]]:
    return _source(
        "dequantize",
        rows_hint,
        rows=_size(rows),
        cols=int(cols),
        fp8=fp8,
        out_dtype=out_dtype,
        granularity=granularity,
    )


def with_tile(source: str, tile: str) -> str:
    """``source`` (one op, as the builders above write it, without a tile) with ``tile``
    (``#fusedops.tile<...>`` text) set on its op: the autotuner's way to build one candidate."""
    return _set_tile(source, tile)
