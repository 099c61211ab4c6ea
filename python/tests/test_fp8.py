"""Tests for fusedops.fp8: exhaustive decode, round trips, rounding ties, saturation and NaN rules.

Expected values are derived by hand from the OCP FP8 specification, independently of the
implementation; ml_dtypes (if installed) is used as a second, external cross-check.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from fusedops import fp8
from fusedops.errors import ArgumentError, DTypeError, FusedOpsError
from fusedops.fp8 import E4M3FN, E5M2, FP8Format

FORMATS = [E4M3FN, E5M2]
ALL_CODES = np.arange(256, dtype=np.uint8)


def hand_decode(code: int, fmt: FP8Format) -> float:
    """Straightforward per-code decoding with exact rational arithmetic."""
    sign = -1 if code & 0x80 else 1
    e_all = (1 << fmt.exponent_bits) - 1
    m_all = (1 << fmt.mantissa_bits) - 1
    exp_field = (code >> fmt.mantissa_bits) & e_all
    mant = code & m_all
    if fmt.has_inf and exp_field == e_all:
        return sign * math.inf if mant == 0 else math.nan
    if not fmt.has_inf and exp_field == e_all and mant == m_all:
        return math.nan
    frac = Fraction(mant, 1 << fmt.mantissa_bits)
    if exp_field == 0:
        value = frac * Fraction(2) ** (1 - fmt.bias)
    else:
        value = (1 + frac) * Fraction(2) ** (exp_field - fmt.bias)
    return math.copysign(float(value), sign)


def finite_codes(fmt: FP8Format) -> np.ndarray:
    values = fp8.decode(ALL_CODES, fmt)
    return ALL_CODES[np.isfinite(values)]


def same_bits_or_both_nan(a: np.ndarray, b: np.ndarray) -> None:
    """Equal float64 arrays, with matching signed zeros; NaNs compare equal to NaNs."""
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a[~np.isnan(a)]), np.signbit(b[~np.isnan(b)]))


# ----------------------------------------------------------------------------------------------
# Format descriptions
# ----------------------------------------------------------------------------------------------


def test_format_constants() -> None:
    assert (E4M3FN.exponent_bits, E4M3FN.mantissa_bits, E4M3FN.bias) == (4, 3, 7)
    assert E4M3FN.max_finite == 448.0 and not E4M3FN.has_inf
    assert E4M3FN.min_normal == 2.0**-6 and E4M3FN.min_subnormal == 2.0**-9
    assert (E4M3FN.max_finite_bits, E4M3FN.nan_bits, E4M3FN.inf_bits) == (0x7E, 0x7F, None)

    assert (E5M2.exponent_bits, E5M2.mantissa_bits, E5M2.bias) == (5, 2, 15)
    assert E5M2.max_finite == 57344.0 and E5M2.has_inf
    assert E5M2.min_normal == 2.0**-14 and E5M2.min_subnormal == 2.0**-16
    assert (E5M2.max_finite_bits, E5M2.nan_bits, E5M2.inf_bits) == (0x7B, 0x7E, 0x7C)


def test_format_rejects_inconsistent_fields() -> None:
    with pytest.raises(ArgumentError, match="max_finite=500.0 disagrees.*448"):
        FP8Format("bad", exponent_bits=4, mantissa_bits=3, bias=7, max_finite=500.0, has_inf=False)
    with pytest.raises(ArgumentError, match="must be 7"):
        FP8Format("bad", exponent_bits=4, mantissa_bits=4, bias=7, max_finite=448.0, has_inf=False)


def test_get_format() -> None:
    assert fp8.get_format("e4m3fn") is E4M3FN
    assert fp8.get_format(E5M2) is E5M2
    with pytest.raises(ArgumentError, match="unknown FP8 format 'e4m3'.*'e4m3fn'"):
        fp8.get_format("e4m3")


# ----------------------------------------------------------------------------------------------
# Decode
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_decode_all_codes_matches_hand_derivation(fmt: FP8Format) -> None:
    expected = np.array([hand_decode(c, fmt) for c in range(256)])
    decoded = fp8.decode(ALL_CODES, fmt)
    assert decoded.dtype == np.float64 and decoded.shape == (256,)
    same_bits_or_both_nan(decoded, expected)


HAND_VALUES = {
    "e4m3fn": {
        0x00: 0.0, 0x80: -0.0,
        0x01: 2.0**-9, 0x81: -(2.0**-9),  # min subnormal
        0x07: 7 * 2.0**-9,  # max subnormal
        0x08: 2.0**-6,  # min normal
        0x38: 1.0, 0x39: 1.125, 0x3F: 1.875, 0x40: 2.0,
        0x78: 256.0, 0x7D: 416.0, 0x7E: 448.0, 0xFE: -448.0,  # 0x7E = max finite
    },
    "e5m2": {
        0x00: 0.0, 0x80: -0.0,
        0x01: 2.0**-16, 0x03: 3 * 2.0**-16,  # min / max subnormal
        0x04: 2.0**-14,  # min normal
        0x3C: 1.0, 0x3D: 1.25, 0x3F: 1.75,
        0x78: 32768.0, 0x7A: 49152.0, 0x7B: 57344.0, 0xFB: -57344.0,  # 0x7B = max finite
        0x7C: math.inf, 0xFC: -math.inf,
    },
}  # fmt: skip
NAN_CODES = {"e4m3fn": {0x7F, 0xFF}, "e5m2": {0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF}}


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_decode_landmark_codes(fmt: FP8Format) -> None:
    decoded = fp8.decode(ALL_CODES, fmt)
    for code, value in HAND_VALUES[fmt.name].items():
        assert decoded[code] == value, hex(code)
        assert math.copysign(1.0, decoded[code]) == math.copysign(1.0, value), hex(code)
    assert set(np.flatnonzero(np.isnan(decoded)).tolist()) == NAN_CODES[fmt.name]
    n_inf = int(np.isinf(decoded).sum())
    assert n_inf == (2 if fmt.has_inf else 0)
    assert decoded[fmt.max_finite_bits] == fmt.max_finite
    assert np.nanmax(decoded[np.isfinite(decoded)]) == fmt.max_finite


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_decode_is_monotonic_in_code(fmt: FP8Format) -> None:
    positive = fp8.decode(np.arange(fmt.max_finite_bits + 1, dtype=np.uint8), fmt)
    assert np.all(np.diff(positive) > 0)
    negative = fp8.decode(np.arange(0x80, 0x80 + fmt.max_finite_bits + 1, dtype=np.uint8), fmt)
    np.testing.assert_array_equal(negative, -positive)


def test_decode_preserves_shape_and_rejects_non_uint8() -> None:
    bits = np.array([[0x38, 0x40], [0x00, 0x7E]], dtype=np.uint8)
    np.testing.assert_array_equal(fp8.decode(bits, "e4m3fn"), [[1.0, 2.0], [0.0, 448.0]])
    assert fp8.decode(np.uint8(0x38), E4M3FN).shape == ()
    with pytest.raises(DTypeError, match="uint8") as info:
        fp8.decode(np.array([56, 64]), E4M3FN)
    assert isinstance(info.value, TypeError) and isinstance(info.value, FusedOpsError)
    with pytest.raises(DTypeError, match="uint8"):
        fp8.decode(np.array([1.0]), E4M3FN)


# ----------------------------------------------------------------------------------------------
# Encode
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("saturate", [True, False])
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_every_finite_value_round_trips(fmt: FP8Format, saturate: bool) -> None:
    codes = finite_codes(fmt)
    assert codes.size == (254 if fmt.name == "e4m3fn" else 248)
    np.testing.assert_array_equal(fp8.encode(fp8.decode(codes, fmt), fmt, saturate), codes)
    # Also through float32 and float16 inputs, which represent every FP8 value exactly.
    for dtype in (np.float32, np.float16):
        values = fp8.decode(codes, fmt).astype(dtype)
        np.testing.assert_array_equal(fp8.encode(values, fmt, saturate), codes)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_midpoints_round_to_even_and_neighbours_round_to_nearest(fmt: FP8Format) -> None:
    # Adjacent positive finite codes c, c+1 (this includes 0 -> min subnormal and the
    # max subnormal -> min normal step). Their midpoint is exact in float64.
    lo_codes = np.arange(fmt.max_finite_bits, dtype=np.uint8)
    lo = fp8.decode(lo_codes, fmt)
    hi = fp8.decode(lo_codes + 1, fmt)
    mid = (lo + hi) / 2
    even = np.where(lo_codes % 2 == 0, lo_codes, lo_codes + 1).astype(np.uint8)
    np.testing.assert_array_equal(fp8.encode(mid, fmt), even)
    np.testing.assert_array_equal(fp8.encode(np.nextafter(mid, 0.0), fmt), lo_codes)
    np.testing.assert_array_equal(fp8.encode(np.nextafter(mid, np.inf), fmt), lo_codes + 1)
    np.testing.assert_array_equal(fp8.encode(-mid, fmt), even | 0x80)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (1.0625, 0x38),  # halfway 1.0 (mantissa 000) / 1.125 (001): even -> 1.0
        (1.1875, 0x3A),  # halfway 1.125 (001) / 1.25 (010): even -> 1.25
        (1.0625 + 2.0**-40, 0x39),  # just above the tie: no double rounding via float32
        (2.0**-10, 0x00),  # half the min subnormal: tie between 0 and 0x01 -> 0
        (3 * 2.0**-10, 0x02),  # halfway 0x01 / 0x02 -> 0x02
        (15 * 2.0**-10, 0x08),  # halfway max subnormal 0x07 / min normal 0x08 -> 0x08
        (-(2.0**-10), 0x80),  # underflow keeps the sign
        (1e-30, 0x00),
        (5e-324, 0x00),  # float64 subnormal input
        (-0.0, 0x80),
        (464.0, 0x7E),  # halfway 448 / (480, not representable): even -> 448
    ],
)
def test_e4m3fn_rounding_cases(value: float, code: int) -> None:
    assert fp8.encode(np.array(value), E4M3FN) == code
    assert fp8.encode(np.array(value), E4M3FN, saturate=False) == code


def test_e5m2_rounding_cases() -> None:
    assert fp8.encode(np.array(1.125), E5M2) == 0x3C  # halfway 1.0 / 1.25 -> 1.0 (even)
    assert fp8.encode(np.array(1.375), E5M2) == 0x3E  # halfway 1.25 / 1.5 -> 1.5 (even)
    assert fp8.encode(np.array(2.0**-17), E5M2) == 0x00
    assert fp8.encode(np.array(2.0**-17 * 1.0000001), E5M2) == 0x01


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_saturation(fmt: FP8Format) -> None:
    top = fmt.max_finite_bits
    big = np.array(
        [
            fmt.max_finite,
            fmt.max_finite * 1.01,
            fmt.max_finite * 1.2,
            1e6,
            1e300,
            np.finfo(np.float64).max,
            np.inf,
        ]
    )
    np.testing.assert_array_equal(fp8.encode(big, fmt), np.full(big.shape, top))
    np.testing.assert_array_equal(fp8.encode(-big, fmt), np.full(big.shape, top | 0x80))
    np.testing.assert_array_equal(fp8.round_to(-big, fmt), -fmt.max_finite)


def test_overflow_without_saturation() -> None:
    # e4m3fn has no inf: overflow and inf become NaN (sign kept).
    x = np.array([448.0, 464.0, 464.01, 480.0, 1e9, np.inf, -np.inf, -1e9])
    np.testing.assert_array_equal(
        fp8.encode(x, E4M3FN, saturate=False), [0x7E, 0x7E, 0x7F, 0x7F, 0x7F, 0x7F, 0xFF, 0xFF]
    )
    # e5m2: IEEE behaviour; 61440 is halfway 57344 (odd mantissa) / 65536 -> rounds to inf.
    x = np.array([57344.0, 61439.0, 61440.0, 1e9, np.inf, -np.inf, -61440.0])
    np.testing.assert_array_equal(
        fp8.encode(x, E5M2, saturate=False), [0x7B, 0x7B, 0x7C, 0x7C, 0x7C, 0xFC, 0xFC]
    )


@pytest.mark.parametrize("saturate", [True, False])
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_nan_is_kept(fmt: FP8Format, saturate: bool) -> None:
    bits = fp8.encode(np.array([np.nan, -np.nan, 1.0]), fmt, saturate)
    assert bits[0] == fmt.nan_bits and bits[1] == fmt.nan_bits | 0x80
    assert np.isnan(fp8.decode(bits[:2], fmt)).all()
    assert np.isnan(fp8.round_to(np.array([np.nan]), fmt)).all()


def test_encode_shapes_dtypes_and_inputs() -> None:
    assert fp8.encode(np.zeros((2, 0, 3)), E4M3FN).shape == (2, 0, 3)
    out = fp8.encode(np.ones((2, 3, 4), dtype=np.float32), E5M2)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4) and np.all(out == 0x3C)
    assert fp8.encode(1.0, "e4m3fn").shape == ()
    np.testing.assert_array_equal(fp8.encode([1, -2, 1000], E4M3FN), [0x38, 0xC0, 0x7E])
    with pytest.raises(DTypeError, match="real floating-point array or an integer array"):
        fp8.encode(np.array([True]), E4M3FN)
    with pytest.raises(DTypeError):
        fp8.encode(np.array([1 + 2j]), E4M3FN)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_round_to_is_nearest_representable(fmt: FP8Format, rng: np.random.Generator) -> None:
    x = rng.standard_normal(2000) * np.exp2(rng.uniform(-18, 17, 2000))
    x = x[np.abs(x) <= fmt.max_finite]
    grid = fp8.decode(finite_codes(fmt), fmt)
    rounded = fp8.round_to(x, fmt)
    assert np.all(np.isin(rounded, grid))
    best = np.min(np.abs(x[:, None] - grid[None, :]), axis=1)
    np.testing.assert_array_equal(np.abs(rounded - x), best)


# ----------------------------------------------------------------------------------------------
# External cross-check (optional dependency)
# ----------------------------------------------------------------------------------------------

ML_TYPES = {"e4m3fn": "float8_e4m3fn", "e5m2": "float8_e5m2"}


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_matches_ml_dtypes(fmt: FP8Format, rng: np.random.Generator) -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    ml_type = getattr(ml_dtypes, ML_TYPES[fmt.name])

    same_bits_or_both_nan(fp8.decode(ALL_CODES, fmt), ALL_CODES.view(ml_type).astype(np.float64))

    # ml_dtypes converts non-saturating and (from float64) with double rounding, so compare on
    # float16 / float32 inputs, where a single rounding is guaranteed.
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    singles = rng.integers(0, 1 << 32, size=200_000, dtype=np.uint64).astype(np.uint32)
    with np.errstate(invalid="ignore"):
        singles = singles.view(np.float32)
        for x in (halves, singles):
            expected = x.astype(ml_type).view(np.uint8)
            np.testing.assert_array_equal(fp8.encode(x, fmt, saturate=False), expected)
            clipped = np.clip(x, -fmt.max_finite, fmt.max_finite)
            expected_sat = clipped.astype(ml_type).view(np.uint8)
            np.testing.assert_array_equal(fp8.encode(x, fmt, saturate=True), expected_sat)
