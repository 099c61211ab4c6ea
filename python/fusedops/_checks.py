"""Private argument-validation helpers shared by :mod:`fusedops.fp8` and :mod:`fusedops.reference`.

Centralised so every public function rejects bad input the same way, with a message that names the
argument, shows what was received, and says what to change.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import ArgumentError, DTypeError, ShapeError


def is_float_dtype(dtype: np.dtype[Any]) -> bool:
    """True for NumPy floating dtypes and ml_dtypes' extension floats (bfloat16, float8_*).

    ml_dtypes registers its types with ``kind == 'V'`` (or ``'f'`` for some), so they are
    recognised by name; this avoids importing ml_dtypes, which is not a dependency.
    """
    if dtype.kind == "f":
        return True
    return dtype.kind == "V" and dtype.name.startswith(("bfloat", "float"))


def as_float64(name: str, value: ArrayLike, *, allow_int: bool = False) -> NDArray[np.float64]:
    """Convert ``value`` to a float64 array, rejecting dtypes that are not real floats.

    Integer (and boolean) arrays are rejected unless ``allow_int`` is set, because they almost
    always mean the wrong array was passed (e.g. FP8 bit patterns instead of values).
    """
    arr = np.asarray(value)
    ok = is_float_dtype(arr.dtype) or (allow_int and arr.dtype.kind in "iu")
    if not ok:
        wanted = "a real floating-point array" + (" or an integer array" if allow_int else "")
        hint = ""
        if arr.dtype == np.uint8:
            hint = " (uint8 looks like FP8 bit patterns: decode them with fusedops.fp8.decode)"
        elif arr.dtype.kind in "iub":
            hint = f"; convert it with np.asarray({name}, dtype=np.float64)"
        raise DTypeError(f"{name} must be {wanted}, got dtype {arr.dtype}{hint}")
    # Casting a signalling NaN raises NumPy's "invalid value" warning; the NaN itself is kept.
    with np.errstate(invalid="ignore"):
        return np.asarray(arr, dtype=np.float64)


def as_uint8_bits(name: str, value: ArrayLike) -> NDArray[np.uint8]:
    """Return ``value`` as a uint8 array of FP8 bit patterns; any other dtype is an error."""
    arr = np.asarray(value)
    if arr.dtype != np.uint8:
        raise DTypeError(
            f"{name} must hold FP8 bit patterns as dtype uint8, got dtype {arr.dtype}; "
            "produce them with fusedops.fp8.encode, or reinterpret raw bytes with "
            ".view(np.uint8)"
        )
    return arr


def as_index_array(name: str, value: ArrayLike) -> NDArray[np.int64]:
    """Convert ``value`` to an int64 array, rejecting floats and booleans."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise DTypeError(
            f"{name} must be an integer array, got dtype {arr.dtype}; "
            f"pass e.g. np.asarray({name}, dtype=np.int64)"
        )
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ArgumentError(f"{name} has values that do not fit in int64")
    return arr.astype(np.int64)


def require_ndim(name: str, arr: NDArray[Any], ndim: int, layout: str) -> None:
    """Raise :class:`ShapeError` unless ``arr`` has exactly ``ndim`` dimensions."""
    if arr.ndim != ndim:
        raise ShapeError(
            f"{name} must be {ndim}-D with layout {layout}, got shape {tuple(arr.shape)}"
        )


def require_shape(name: str, arr: NDArray[Any], shape: Sequence[int], why: str) -> None:
    """Raise :class:`ShapeError` unless ``arr.shape == shape``; ``why`` explains the expectation."""
    if tuple(arr.shape) != tuple(shape):
        raise ShapeError(
            f"{name} must have shape {tuple(shape)} ({why}), got shape {tuple(arr.shape)}"
        )


def require_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices`` else raise :class:`ArgumentError`."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ArgumentError(f"{name} must be one of {options}; got {value!r}")
    return value


def require_positive_int(name: str, value: object) -> int:
    """Return ``value`` as ``int`` if it is a positive integer (not bool), else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) <= 0:
        raise ArgumentError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def require_real(name: str, value: object, *, minimum: float, inclusive: bool = True) -> float:
    """Return ``value`` as ``float`` if finite and ``>= minimum`` (``> minimum`` if exclusive)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentError(f"{name} must be a real number, got {value!r}")
    f = float(value)
    in_range = f >= minimum if inclusive else f > minimum
    if not (math.isfinite(f) and in_range):
        bound = ">=" if inclusive else ">"
        raise ArgumentError(f"{name} must be finite and {bound} {minimum}, got {value!r}")
    return f
