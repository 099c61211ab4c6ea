"""MLIR source for one fusedops op, in buffer form, as the Python API compiles it.

Each builder returns ``(source, arg_names)``: a module with one function ``@kernel`` marked
``llvm.emit_c_interface`` whose arguments are the op's operands followed by its outputs, as memrefs
with static shapes, in the order of ``arg_names``. The functions are pure string builders; the
argument checks live in :mod:`fusedops.torch_ops`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from ._native import scale_shape as _scale_shape

__all__ = [
    "MLIR_ELEMENT_TYPES",
    "dequantize_source",
    "fp8_gemm_source",
    "gated_mlp_source",
    "memref_type",
    "with_tile",
    "quantize_source",
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


def memref_type(shape: Sequence[int], element: str) -> str:
    """``memref<2x3xf16>``; a rank-0 shape gives ``memref<f16>``."""
    dims = "".join(f"{int(d)}x" for d in shape)
    return f"memref<{dims}{element}>"


def _function(args: Sequence[tuple[str, str]], body: str) -> tuple[str, list[str]]:
    """``@kernel`` taking ``args`` (name, memref type) around the op ``body``, and the argument
    names: what every builder returns."""
    params = ", ".join(f"%{name}: {ty}" for name, ty in args)
    source = (
        f"func.func @kernel({params}) attributes {{llvm.emit_c_interface}} {{\n"
        f"  {body}\n  return\n}}\n"
    )
    return source, [name for name, _ in args]


def rmsnorm_rope_source(
    x_shape: Sequence[int],
    dtype: str,
    table_shape: Sequence[int],
    table_dtype: str,
    *,
    head_dim: int,
    eps: float,
    style: str,
    rotary_fraction: float = 1.0,
    positions_shape: Optional[Sequence[int]] = None,
    positions_dtype: str = "i32",
) -> tuple[str, list[str]]:
    x = memref_type(x_shape, dtype)
    w = memref_type([x_shape[-1]], dtype)
    t = memref_type(table_shape, table_dtype)
    args = [("x", x), ("w", w), ("cos", t), ("sin", t)]
    pos = ""
    if positions_shape is not None:
        p = memref_type(positions_shape, positions_dtype)
        args.append(("positions", p))
        pos = f" positions(%positions : {p})"
    args.append(("out", x))
    frac = f" rotary_fraction = {float(rotary_fraction)!r}" if rotary_fraction != 1.0 else ""
    body = (
        f"fusedops.rmsnorm_rope ins(%x, %w, %cos, %sin : {x}, {w}, {t}, {t}){pos} "
        f"outs(%out : {x}) head_dim = {int(head_dim)} eps = {float(eps):e} style = {style}{frac}"
    )
    return _function(args, body)


def gated_mlp_source(
    x_shape: Sequence[int],
    weight_shape: Sequence[int],
    dtype: str,
    *,
    activation: str,
) -> tuple[str, list[str]]:
    x = memref_type(x_shape, dtype)
    w = memref_type(weight_shape, dtype)
    o = memref_type([*x_shape[:-1], weight_shape[0]], dtype)
    args = [("x", x), ("wg", w), ("wu", w), ("out", o)]
    body = (
        f"fusedops.gated_mlp ins(%x, %wg, %wu : {x}, {w}, {w}) outs(%out : {o}) "
        f"activation = {activation}"
    )
    return _function(args, body)


def fp8_gemm_source(
    m: int,
    n: int,
    k: int,
    a_dtype: str,
    b_dtype: str,
    out_dtype: str,
    *,
    granularity: str,
    bias: bool = False,
    fast_accum: bool = False,
) -> tuple[str, list[str]]:
    a = memref_type([m, k], a_dtype)
    b = memref_type([n, k], b_dtype)
    sa = memref_type(_scale_shape(granularity, m, k), "f32")
    sb = memref_type(_scale_shape(granularity, n, k), "f32")
    o = memref_type([m, n], out_dtype)
    args = [("a", a), ("b", b), ("sa", sa), ("sb", sb)]
    bias_clause = ""
    if bias:
        bt = memref_type([n], "f32")
        args.append(("bias", bt))
        bias_clause = f" bias(%bias : {bt})"
    args.append(("out", o))
    body = (
        f"fusedops.fp8_gemm ins(%a, %b, %sa, %sb : {a}, {b}, {sa}, {sb}){bias_clause} "
        f"outs(%out : {o}) granularity = {granularity}{' fast_accum' if fast_accum else ''}"
    )
    return _function(args, body)


def quantize_source(
    rows: int,
    cols: int,
    dtype: str,
    fp8: str,
    *,
    granularity: str,
) -> tuple[str, list[str]]:
    """Dynamic quantization: ``x`` -> FP8 values ``q`` and float32 scales ``s``."""
    x = memref_type([rows, cols], dtype)
    q = memref_type([rows, cols], fp8)
    s = memref_type(_scale_shape(granularity, rows, cols), "f32")
    args = [("x", x), ("q", q), ("s", s)]
    body = f"fusedops.quantize ins(%x : {x}) outs(%q, %s : {q}, {s}) granularity = {granularity}"
    return _function(args, body)


def dequantize_source(
    rows: int,
    cols: int,
    fp8: str,
    out_dtype: str,
    *,
    granularity: str,
) -> tuple[str, list[str]]:
    q = memref_type([rows, cols], fp8)
    s = memref_type(_scale_shape(granularity, rows, cols), "f32")
    o = memref_type([rows, cols], out_dtype)
    args = [("q", q), ("s", s), ("out", o)]
    body = (
        f"fusedops.dequantize ins(%q, %s : {q}, {s}) outs(%out : {o}) granularity = {granularity}"
    )
    return _function(args, body)


def with_tile(source: str, tile: str) -> str:
    """``source`` (one op, as the builders above write it) with ``tile`` (``#fusedops.tile<...>``
    text) set on its op: the autotuner's way to build one candidate."""
    marker = "\n  return\n"
    if marker not in source or "{tile = " in source:
        raise ValueError("with_tile takes a builder's source without a tile")
    return source.replace(marker, f" {{tile = {tile}}}{marker}", 1)
