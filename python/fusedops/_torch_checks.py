"""The argument checks of the PyTorch API (:mod:`fusedops.torch_ops`): every refusal is a typed
:mod:`fusedops.errors` exception that names the argument, what was expected and the fix, raised
before anything runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import torch

from . import _codegen, _native
from .errors import ArgumentError, DeviceError, DTypeError, ShapeError

_is_compiling = torch.compiler.is_compiling

_FLOAT_DTYPES = (torch.float16, torch.bfloat16)
_FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
_FP8_BY_NAME = {"e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2}
_FP8_NAMES = tuple(_FP8_BY_NAME)
_QUANTIZABLE_DTYPES = (*_FLOAT_DTYPES, torch.float32)
_GRANULARITIES = ("tensor", "row", "block128")
_ACTIVATIONS = ("silu", "gelu", "gelu_tanh")
_ROPE_STYLES = ("neox", "gptj")


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


def _row_count(shape: Sequence[int]) -> Optional[int]:
    """The rows of ``shape`` (the product of its sizes but the last) for a kernel's row class,
    or None for a shape without row dimensions (compiled for its exact shape)."""
    if len(shape) < 2:
        return None
    rows = 1
    for size in shape[:-1]:
        rows *= size
    return rows


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
