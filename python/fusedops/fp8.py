"""Bit-exact FP8 (OCP e4m3fn and e5m2) encode/decode in pure NumPy.

Why this module exists: fused kernels store FP8 tensors as raw bytes, and the GPU tests must know
*exactly* which byte a correct kernel produces for a given float, including the corner cases that
differ between libraries (ties, subnormals, overflow, NaN). The conversions here are derived
directly from the bit layout, have no dependency beyond NumPy, and round from float64 in a single
step (no double rounding through float32/float16).

Formats (1 sign bit, E exponent bits, M mantissa bits, bias B):

* ``E4M3FN`` (E=4, M=3, B=7): no infinities; the only NaN codes are ``0x7F`` and ``0xFF``
  (exponent and mantissa all ones), so exponent field 15 holds ordinary values up to 448.
* ``E5M2`` (E=5, M=2, B=15): IEEE-754-like; exponent field 31 holds ±inf (mantissa 0) and NaN
  (mantissa != 0). Largest finite value 57344.

Conversion rules implemented by :func:`encode`:

* round to nearest, ties to even, with gradual underflow (subnormals); results that round to zero
  keep the sign of the input (``-1e-30 -> 0x80``);
* NaN encodes as the format's canonical quiet NaN (``0x7F`` for e4m3fn, ``0x7E`` for e5m2) with the
  input's sign bit (``0xFF`` / ``0xFE`` for a negative NaN), as ml_dtypes does;
* ``saturate=True`` (the default, matching the kernels' ``satfinite`` conversions): finite values
  whose rounded magnitude exceeds ``max_finite``, and ±inf, become ±``max_finite``;
* ``saturate=False``: such values become ±inf for e5m2 and NaN for e4m3fn (which has no inf).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import as_float64, as_uint8_bits
from .errors import ArgumentError

__all__ = [
    "E4M3FN",
    "E5M2",
    "FORMATS",
    "FP8Format",
    "decode",
    "encode",
    "get_format",
    "round_to",
]


@dataclass(frozen=True)
class FP8Format:
    """Description of an 8-bit floating-point format.

    ``has_inf`` selects between the two special-value conventions in use: ``True`` means
    IEEE-style (all-ones exponent reserved for inf/NaN), ``False`` means the "FN" convention (no
    inf; only the all-ones exponent *and* mantissa pattern is NaN). ``max_finite`` is redundant
    with the other fields and is checked against them on construction.
    """

    name: str
    exponent_bits: int
    mantissa_bits: int
    bias: int
    max_finite: float
    has_inf: bool

    def __post_init__(self) -> None:
        if self.exponent_bits < 1 or self.mantissa_bits < 1:
            raise ArgumentError(
                f"FP8Format {self.name!r}: exponent_bits and mantissa_bits must both be >= 1"
            )
        if self.exponent_bits + self.mantissa_bits != 7:
            raise ArgumentError(
                f"FP8Format {self.name!r}: exponent_bits + mantissa_bits must be 7 (1 bit is the "
                f"sign), got {self.exponent_bits} + {self.mantissa_bits}"
            )
        expected = float(_decode_magnitude(self, self.max_finite_bits))
        if float(self.max_finite) != expected:
            raise ArgumentError(
                f"FP8Format {self.name!r}: max_finite={self.max_finite} disagrees with the bit "
                f"layout, which gives {expected}; fix max_finite or the layout fields"
            )

    @property
    def min_normal(self) -> float:
        """Smallest positive normal value, ``2**(1 - bias)``."""
        return math.ldexp(1.0, 1 - self.bias)

    @property
    def min_subnormal(self) -> float:
        """Smallest positive (subnormal) value, ``2**(1 - bias - mantissa_bits)``."""
        return math.ldexp(1.0, 1 - self.bias - self.mantissa_bits)

    @property
    def max_finite_bits(self) -> int:
        """Code of ``+max_finite`` (``0x7E`` for e4m3fn, ``0x7B`` for e5m2)."""
        top_exp = (1 << self.exponent_bits) - 1
        mant_ones = (1 << self.mantissa_bits) - 1
        if self.has_inf:
            return ((top_exp - 1) << self.mantissa_bits) | mant_ones
        return (top_exp << self.mantissa_bits) | (mant_ones - 1)

    @property
    def nan_bits(self) -> int:
        """Canonical positive quiet-NaN code (``0x7F`` for e4m3fn, ``0x7E`` for e5m2)."""
        top_exp = (1 << self.exponent_bits) - 1
        if self.has_inf:
            return (top_exp << self.mantissa_bits) | (1 << (self.mantissa_bits - 1))
        return 0x7F

    @property
    def inf_bits(self) -> int | None:
        """Code of ``+inf`` (``0x7C`` for e5m2), or ``None`` if the format has no infinity."""
        if not self.has_inf:
            return None
        return ((1 << self.exponent_bits) - 1) << self.mantissa_bits


def _decode_magnitude(fmt: FP8Format, codes: ArrayLike) -> NDArray[np.float64]:
    """Magnitude encoded by the low 7 bits of ``codes`` (inf/NaN codes handled separately)."""
    c = np.asarray(codes, dtype=np.int64) & 0x7F
    mant = c & ((1 << fmt.mantissa_bits) - 1)
    exp_field = c >> fmt.mantissa_bits
    # value = significand * 2**(scale_exp), with the implicit leading 1 only for normal numbers;
    # exponent field 0 (subnormal) uses the same scale as exponent field 1.
    significand = np.where(exp_field == 0, mant, mant + (1 << fmt.mantissa_bits))
    scale_exp = np.maximum(exp_field, 1) - fmt.bias - fmt.mantissa_bits
    values: NDArray[np.float64] = np.ldexp(significand.astype(np.float64), scale_exp)
    return values


E4M3FN = FP8Format(
    name="e4m3fn", exponent_bits=4, mantissa_bits=3, bias=7, max_finite=448.0, has_inf=False
)
E5M2 = FP8Format(
    name="e5m2", exponent_bits=5, mantissa_bits=2, bias=15, max_finite=57344.0, has_inf=True
)

#: Built-in formats by name, as accepted by :func:`get_format`.
FORMATS: dict[str, FP8Format] = {E4M3FN.name: E4M3FN, E5M2.name: E5M2}

FormatLike = Union[FP8Format, str]


def get_format(fmt: FormatLike) -> FP8Format:
    """Return the :class:`FP8Format` for ``fmt`` (a format object or a name in :data:`FORMATS`)."""
    if isinstance(fmt, FP8Format):
        return fmt
    if isinstance(fmt, str) and fmt in FORMATS:
        return FORMATS[fmt]
    raise ArgumentError(
        f"unknown FP8 format {fmt!r}; pass fusedops.fp8.E4M3FN / E5M2 or one of the names "
        f"{sorted(FORMATS)}"
    )


@functools.cache
def _decode_table(fmt: FP8Format) -> NDArray[np.float64]:
    """float64 value of each of the 256 codes of ``fmt`` (read-only)."""
    codes = np.arange(256, dtype=np.int64)
    magnitude = _decode_magnitude(fmt, codes)
    exp_field = (codes & 0x7F) >> fmt.mantissa_bits
    mant = codes & ((1 << fmt.mantissa_bits) - 1)
    top = exp_field == (1 << fmt.exponent_bits) - 1
    if fmt.has_inf:
        magnitude = np.where(top & (mant == 0), np.inf, magnitude)
        magnitude = np.where(top & (mant != 0), np.nan, magnitude)
    else:
        magnitude = np.where(top & (mant == (1 << fmt.mantissa_bits) - 1), np.nan, magnitude)
    table = np.where(codes & 0x80, -magnitude, magnitude)
    table.setflags(write=False)
    return table


def decode(bits: ArrayLike, fmt: FormatLike) -> NDArray[np.float64]:
    """Decode FP8 bit patterns (dtype uint8, any shape) to their exact float64 values."""
    f = get_format(fmt)
    codes = as_uint8_bits("bits", bits)
    return _decode_table(f)[codes]


def encode(x: ArrayLike, fmt: FormatLike, saturate: bool = True) -> NDArray[np.uint8]:
    """Encode ``x`` (any shape, real floats or integers) to FP8 bit patterns of format ``fmt``.

    Rounds once from float64 to nearest, ties to even; see the module docstring for the
    NaN / inf / overflow rules and the meaning of ``saturate``.
    """
    f = get_format(fmt)
    values = as_float64("x", x, allow_int=True)
    m = f.mantissa_bits
    emin = 1 - f.bias  # unbiased exponent of the smallest normal; subnormals share its quantum
    emax = math.frexp(f.max_finite)[1] - 1  # unbiased exponent of max_finite

    sign = np.signbit(values).astype(np.int64) << 7
    magnitude = np.abs(values)
    is_nan = np.isnan(values)
    is_inf = np.isinf(values)
    # Anything >= 2**(emax + 1) overflows; capping keeps the integer arithmetic below small.
    cap = math.ldexp(1.0, emax + 2)
    finite_mag = np.where(is_nan | is_inf, 0.0, np.minimum(magnitude, cap))

    # Exponent e with 2**e <= |x| < 2**(e+1), clamped below at emin (subnormal range).
    _, frexp_exp = np.frexp(finite_mag)
    exp = np.where(finite_mag == 0.0, emin, np.maximum(frexp_exp.astype(np.int64) - 1, emin))
    # Number of quanta 2**(exp - m) in |x|: scaling by a power of two is exact, so rint performs
    # the single correctly-rounded (ties-to-even) step. r lies in [0, 2**(m + 1)].
    r = np.rint(np.ldexp(finite_mag, m - exp)).astype(np.int64)
    # FP8 codes increase monotonically with magnitude, which makes this formula valid for normal
    # numbers, for subnormals (exp == emin, r < 2**m) and for a carry into the next binade
    # (r == 2**(m + 1)).
    code = ((exp + f.bias - 1) << m) + r

    overflow = (code > f.max_finite_bits) | is_inf
    if saturate:
        code = np.where(overflow, f.max_finite_bits, code)
    else:
        code = np.where(overflow, f.nan_bits if f.inf_bits is None else f.inf_bits, code)
    code = np.where(is_nan, f.nan_bits, code)
    return np.asarray(code | sign, dtype=np.uint8)


def round_to(x: ArrayLike, fmt: FormatLike, saturate: bool = True) -> NDArray[np.float64]:
    """Round ``x`` to the nearest value representable in ``fmt``: ``decode(encode(x))``."""
    return decode(encode(x, fmt, saturate=saturate), fmt)
