"""Tests for fusedops.reference.

Each operation is compared with an independent, deliberately naive implementation (explicit
Python loops over scalars, or a different mathematical formulation such as complex rotation for
RoPE), on small random inputs that change every run (see conftest.py for the seed).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from collections.abc import Sequence

import numpy as np
import pytest

import fusedops
from fusedops import fp8
from fusedops import reference as ref
from fusedops.errors import ArgumentError, DTypeError, FusedOpsError, ShapeError
from fusedops.fp8 import E4M3FN, E5M2, FP8Format

# ----------------------------------------------------------------------------------------------
# Package
# ----------------------------------------------------------------------------------------------


def test_package_surface() -> None:
    assert fusedops.__version__ == "0.1.0"
    assert fusedops.__all__ == [
        "__version__",
        "errors",
        "reference",
        "FP8Linear",
        "FP8TrainingLinear",
        "FusedGatedMLP",
        "FusedMLP",
        "FusedRMSNorm",
        "FusedRMSNormRoPE",
        "dequantize_fp8",
        "fp8_gemm",
        "fused_add_rms_norm",
        "fused_gated_mlp",
        "fused_rms_norm",
        "fused_rmsnorm_rope",
        "quantize_fp8",
    ]
    assert fusedops.reference is ref


def test_import_does_not_pull_in_torch() -> None:
    code = "import sys, fusedops; assert 'torch' not in sys.modules, 'torch was imported'"
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(fusedops.__file__)))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=package_root)


def test_error_hierarchy() -> None:
    assert issubclass(ShapeError, FusedOpsError) and issubclass(ShapeError, ValueError)
    assert issubclass(DTypeError, FusedOpsError) and issubclass(DTypeError, TypeError)
    assert issubclass(ArgumentError, FusedOpsError) and issubclass(ArgumentError, ValueError)


def test_dtype_tolerance() -> None:
    assert ref.DTYPE_TOLERANCE == {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1.6e-2}


# ----------------------------------------------------------------------------------------------
# RMSNorm + RoPE
# ----------------------------------------------------------------------------------------------


def loop_rmsnorm_rope(
    x: np.ndarray,
    w: np.ndarray,
    cos: np.ndarray,
    sin: np.ndarray,
    eps: float,
    head_dim: int,
    style: str,
    rot: int,
    positions: np.ndarray,
) -> np.ndarray:
    hidden = x.shape[-1]
    rows = x.reshape(-1, hidden).tolist()
    pos = positions.reshape(-1).tolist()
    out = []
    for row, p in zip(rows, pos):
        inv = 1.0 / math.sqrt(sum(v * v for v in row) / hidden + eps)
        y = [row[i] * inv * w[i] for i in range(hidden)]
        o = list(y)
        for base in range(0, hidden, head_dim):
            for j in range(rot // 2):
                if style == "neox":
                    a, b = base + j, base + j + rot // 2
                    ca, sa, cb, sb = (
                        cos[p][j],
                        sin[p][j],
                        cos[p][j + rot // 2],
                        sin[p][j + rot // 2],
                    )
                else:
                    a, b = base + 2 * j, base + 2 * j + 1
                    ca, sa, cb, sb = (
                        cos[p][2 * j],
                        sin[p][2 * j],
                        cos[p][2 * j + 1],
                        sin[p][2 * j + 1],
                    )
                o[a] = y[a] * ca - y[b] * sa
                o[b] = y[b] * cb + y[a] * sb
        out.append(o)
    return np.array(out).reshape(x.shape)


@pytest.mark.parametrize("explicit_positions", [False, True])
@pytest.mark.parametrize("rotary_fraction", [1.0, 0.5, 0.25])
@pytest.mark.parametrize("style", ["neox", "gptj"])
def test_rmsnorm_rope_matches_loops(
    style: str, rotary_fraction: float, explicit_positions: bool, rng: np.random.Generator
) -> None:
    head_dim, n_heads, batch, seq, table_len = 8, 3, 2, 5, 7
    rot = int(head_dim * rotary_fraction)
    x = rng.standard_normal((batch, seq, n_heads * head_dim)) * rng.uniform(0.1, 10)
    w = rng.standard_normal(n_heads * head_dim)
    # Arbitrary (not cos/sin-consistent) tables, so any indexing mix-up changes the result.
    cos = rng.standard_normal((table_len, rot))
    sin = rng.standard_normal((table_len, rot))
    kwargs: dict[str, object] = {"rope_style": style, "rotary_fraction": rotary_fraction}
    if explicit_positions:
        positions = rng.integers(0, table_len, size=(batch, seq))
        kwargs["positions"] = positions
    else:
        positions = np.broadcast_to(np.arange(seq), (batch, seq))
    got = ref.rmsnorm_rope(x, w, cos, sin, eps=1e-5, head_dim=head_dim, **kwargs)  # type: ignore[arg-type]
    expected = loop_rmsnorm_rope(x, w, cos, sin, 1e-5, head_dim, style, rot, positions)
    assert got.dtype == np.float64 and got.shape == x.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_partial_rotary_passes_tail_through(rng: np.random.Generator) -> None:
    x = rng.standard_normal((4, 2 * 16))
    w = rng.standard_normal(32)
    cos, sin = ref.rope_cache(4, 4)
    got = ref.rmsnorm_rope(x, w, cos, sin, eps=0.0, head_dim=16, rotary_fraction=0.25)
    y = x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True)) * w
    for h in range(2):
        tail = slice(h * 16 + 4, (h + 1) * 16)
        np.testing.assert_allclose(got[:, tail], y[:, tail], rtol=1e-14)
    # Position 0 has angle 0: the rotated part is unchanged too.
    np.testing.assert_allclose(got[0], y[0], rtol=1e-14)


@pytest.mark.parametrize("rotary_fraction", [1.0, 0.5])
@pytest.mark.parametrize("style", ["neox", "gptj"])
def test_rope_matches_complex_rotation(
    style: str, rotary_fraction: float, rng: np.random.Generator
) -> None:
    head_dim, n_heads, seq, base = 16, 2, 9, 500.0
    rot = int(head_dim * rotary_fraction)
    x = rng.standard_normal((seq, n_heads * head_dim))
    w = rng.uniform(0.5, 1.5, n_heads * head_dim)
    cos, sin = ref.rope_cache(seq, rot, base=base, style=style)
    got = ref.rmsnorm_rope(
        x,
        w,
        cos,
        sin,
        eps=1e-6,
        head_dim=head_dim,
        rope_style=style,
        rotary_fraction=rotary_fraction,
    )

    y = x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + 1e-6) * w
    theta = np.array([base ** (-2.0 * j / rot) for j in range(rot // 2)])
    expected = y.copy()
    for p in range(seq):
        phase = np.exp(1j * p * theta)
        for h in range(n_heads):
            seg = y[p, h * head_dim : h * head_dim + rot]
            if style == "neox":
                z = (seg[: rot // 2] + 1j * seg[rot // 2 :]) * phase
                new = np.concatenate([z.real, z.imag])
            else:
                z = (seg[0::2] + 1j * seg[1::2]) * phase
                new = np.stack([z.real, z.imag], axis=-1).reshape(-1)
            expected[p, h * head_dim : h * head_dim + rot] = new
    np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-12)


def test_rope_cache_layouts() -> None:
    seq, rot = 6, 8
    cos_n, sin_n = ref.rope_cache(seq, rot, style="neox")
    cos_g, sin_g = ref.rope_cache(seq, rot, style="gptj")
    assert cos_n.shape == sin_n.shape == cos_g.shape == (seq, rot)
    for p in range(seq):
        for j in range(rot // 2):
            angle = p * 10000.0 ** (-2 * j / rot)
            for col in (j, j + rot // 2):  # neox: cat(freqs, freqs)
                assert cos_n[p, col] == pytest.approx(math.cos(angle), rel=1e-13, abs=1e-15)
                assert sin_n[p, col] == pytest.approx(math.sin(angle), rel=1e-13, abs=1e-15)
            for col in (2 * j, 2 * j + 1):  # gptj: repeat_interleave(freqs, 2)
                assert cos_g[p, col] == pytest.approx(math.cos(angle), rel=1e-13, abs=1e-15)
                assert sin_g[p, col] == pytest.approx(math.sin(angle), rel=1e-13, abs=1e-15)
    with pytest.raises(ArgumentError, match="rotary_dim must be even"):
        ref.rope_cache(4, 7)
    with pytest.raises(ArgumentError, match="style must be one of 'neox', 'gptj'"):
        ref.rope_cache(4, 8, style="llama")  # type: ignore[arg-type]


def test_rmsnorm_rope_rank1_with_position(rng: np.random.Generator) -> None:
    x = rng.standard_normal(8)
    cos, sin = rng.standard_normal((2, 5, 8))
    got = ref.rmsnorm_rope(x, np.ones(8), cos, sin, eps=1e-6, head_dim=8, positions=3)
    expected = loop_rmsnorm_rope(x, np.ones(8), cos, sin, 1e-6, 8, "neox", 8, np.array(3))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def _rope_call(**overrides: object) -> np.ndarray:
    args: dict[str, object] = dict(
        x=np.ones((2, 4, 16)),
        weight=np.ones(16),
        cos=np.ones((6, 8)),
        sin=np.zeros((6, 8)),
        eps=1e-6,
        head_dim=8,
    )
    args.update(overrides)
    return ref.rmsnorm_rope(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"head_dim": 6}, ShapeError, r"H=16\) must be a multiple of head_dim=6"),
        ({"head_dim": 0}, ArgumentError, "head_dim must be a positive integer"),
        ({"weight": np.ones(8)}, ShapeError, r"weight must have shape \(16,\)"),
        ({"rotary_fraction": 0.3}, ArgumentError, "even integer.*rotary_fraction = R / 8"),
        ({"rotary_fraction": 0.375}, ArgumentError, "even integer"),  # R = 3 is odd
        ({"rotary_fraction": 1.5}, ArgumentError, "even integer"),
        ({"rotary_fraction": 0.0}, ArgumentError, "rotary_fraction must be finite and > 0"),
        ({"cos": np.ones((6, 4)), "sin": np.ones((6, 4))}, ShapeError, "R = .* = 8 columns"),
        ({"sin": np.ones((5, 8))}, ShapeError, "same shape as cos"),
        ({"cos": np.ones(8)}, ShapeError, "cos must be 2-D"),
        ({"cos": np.ones((3, 8)), "sin": np.ones((3, 8))}, ShapeError, "only cover 3 positions"),
        ({"x": np.ones(16)}, ShapeError, "rank >= 2.*Pass positions"),
        ({"positions": np.zeros((2, 3), dtype=int)}, ShapeError, r"x.shape\[:-1\]"),
        ({"positions": np.full((2, 4), 6)}, ArgumentError, r"\[0, 6\).*such as 6"),
        ({"positions": np.full((2, 4), -1)}, ArgumentError, r"\[0, 6\).*such as -1"),
        ({"positions": np.zeros((2, 4))}, DTypeError, "positions must be an integer array"),
        ({"rope_style": "rotate_half"}, ArgumentError, "rope_style must be one of"),
        ({"eps": -1e-6}, ArgumentError, "eps must be finite and >= 0"),
        ({"x": np.ones((2, 4, 16), dtype=np.int32)}, DTypeError, "x must be a real floating"),
    ],
)
def test_rmsnorm_rope_validation(
    overrides: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        _rope_call(**overrides)


def test_rmsnorm_rope_accepts_other_float_dtypes() -> None:
    base = _rope_call()
    np.testing.assert_array_equal(_rope_call(x=np.ones((2, 4, 16), dtype=np.float16)), base)
    np.testing.assert_array_equal(_rope_call(positions=np.zeros((2, 4), dtype=np.uint8)), base)


# ----------------------------------------------------------------------------------------------
# Gated MLP
# ----------------------------------------------------------------------------------------------

LOOP_ACTIVATIONS = {
    "silu": lambda g: g / (1.0 + math.exp(-g)),
    "gelu": lambda g: 0.5 * g * (1.0 + math.erf(g / math.sqrt(2.0))),
    "gelu_tanh": lambda g: (
        0.5 * g * (1.0 + math.tanh(math.sqrt(2 / math.pi) * (g + 0.044715 * g**3)))
    ),
}


def loop_gated_mlp(x: np.ndarray, wg: np.ndarray, wu: np.ndarray, act: str) -> np.ndarray:
    k = x.shape[-1]
    rows = x.reshape(-1, k).tolist()
    out = []
    for row in rows:
        out_row = []
        for n in range(wg.shape[0]):
            g = sum(row[i] * wg[n, i] for i in range(k))
            u = sum(row[i] * wu[n, i] for i in range(k))
            out_row.append(LOOP_ACTIVATIONS[act](g) * u)
        out.append(out_row)
    return np.array(out).reshape(*x.shape[:-1], wg.shape[0])


@pytest.mark.parametrize("activation", ["silu", "gelu", "gelu_tanh"])
@pytest.mark.parametrize("x_shape", [(2, 3, 16), (16,), (5, 16)])
def test_gated_mlp_matches_loops(
    activation: str, x_shape: Sequence[int], rng: np.random.Generator
) -> None:
    x = rng.standard_normal(x_shape)
    wg = rng.standard_normal((7, 16)) / 2
    wu = rng.standard_normal((7, 16)) / 2
    got = ref.gated_mlp(x, wg, wu, activation)  # type: ignore[arg-type]
    assert got.shape == (*x_shape[:-1], 7) and got.dtype == np.float64
    np.testing.assert_allclose(got, loop_gated_mlp(x, wg, wu, activation), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    ("activation", "value"),
    [
        ("silu", 0.7310585786300049),  # 1 * sigmoid(1)
        ("gelu", 0.8413447460685429),  # Phi(1)
        ("gelu_tanh", 0.8411919906082768),
    ],
)
def test_activation_known_values(activation: str, value: float) -> None:
    got = ref.gated_mlp(np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)), activation)  # type: ignore[arg-type]
    assert got[0, 0] == pytest.approx(value, rel=1e-14)


def test_silu_extreme_inputs_are_warning_free() -> None:
    x = np.array([[1.0], [-1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = ref.gated_mlp(x, np.full((1, 1), 1000.0), np.ones((1, 1)), "silu")
    np.testing.assert_allclose(got[:, 0], [1000.0, 0.0], atol=1e-300)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((np.ones((2, 8)), np.ones((3, 4)), np.ones((3, 4))), ShapeError, "transpose"),
        ((np.ones((2, 8)), np.ones((3, 8)), np.ones((4, 8))), ShapeError, "same .* as gate_"),
        ((np.ones((2, 8)), np.ones(8), np.ones(8)), ShapeError, "gate_weight must be 2-D"),
        ((np.ones((2, 8)), np.ones((3, 8)), np.ones((3, 8)), "relu"), ArgumentError, "'silu'"),
        ((np.ones((2, 8), dtype=int), np.ones((3, 8)), np.ones((3, 8))), DTypeError, "x must"),
        ((np.float64(1.0), np.ones((3, 1)), np.ones((3, 1))), ShapeError, "rank >= 1"),
    ],
)
def test_gated_mlp_validation(args: tuple, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        ref.gated_mlp(*args)


# ----------------------------------------------------------------------------------------------
# Quantization
# ----------------------------------------------------------------------------------------------

GRANULARITIES = ["tensor", "row", "block128"]


def loop_scale_index(granularity: str, m: int, k: int) -> tuple[int, ...]:
    return {"tensor": (), "row": (m,), "block128": (m // 128, k // 128)}[granularity]


def loop_group_amax(x: np.ndarray, granularity: str) -> dict[tuple[int, ...], float]:
    amax: dict[tuple[int, ...], float] = {}
    for m in range(x.shape[0]):
        for k in range(x.shape[1]):
            key = loop_scale_index(granularity, m, k)
            v = float(x[m, k])
            amax[key] = max(amax.get(key, 0.0), abs(v) if math.isfinite(v) else 0.0)
    return amax


def loop_per_element_scale(scale: np.ndarray, granularity: str, shape: tuple) -> np.ndarray:
    out = np.empty(shape)
    for m in range(shape[0]):
        for k in range(shape[1]):
            out[m, k] = scale[loop_scale_index(granularity, m, k)]
    return out


def varied_magnitudes(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Random data whose rows and 128-blocks have very different magnitudes."""
    x = rng.standard_normal(shape)
    x *= np.exp2(rng.integers(-8, 9, size=(shape[0], 1)))
    x *= np.exp2(rng.integers(-4, 5, size=(1, shape[1])))
    return x


@pytest.mark.parametrize(
    ("granularity", "expected"),
    [("tensor", ()), ("row", (130,)), ("block128", (2, 3))],
)
def test_scale_shape(granularity: str, expected: tuple[int, ...]) -> None:
    assert ref.scale_shape(granularity, 130, 257) == expected  # type: ignore[arg-type]
    assert ref.scale_shape("block128", 128, 128) == (1, 1)
    assert ref.scale_shape("block128", 129, 1) == (2, 1)
    with pytest.raises(ArgumentError, match="granularity must be one of 'tensor', 'row'"):
        ref.scale_shape("block", 1, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", [E4M3FN, E5M2], ids=lambda f: f.name)
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_dynamic_quantize_matches_loops(
    granularity: str, fmt: FP8Format, rng: np.random.Generator
) -> None:
    shape = (130, 260)
    x = varied_magnitudes(rng, shape)
    x[rng.integers(0, 130), rng.integers(0, 260)] = np.nan
    x[rng.integers(0, 130), rng.integers(0, 260)] = np.inf
    x[rng.integers(0, 130), rng.integers(0, 260)] = -np.inf
    q, scale = ref.quantize(x, fmt, granularity)  # type: ignore[arg-type]

    assert q.dtype == np.uint8 and q.shape == shape
    assert scale.dtype == np.float32 and isinstance(scale, np.ndarray)
    assert scale.shape == ref.scale_shape(granularity, *shape)  # type: ignore[arg-type]
    expected_scale = np.empty(scale.shape, dtype=np.float32)
    for key, amax in loop_group_amax(x, granularity).items():
        expected_scale[key] = np.float32(max(amax, 1e-12) / fmt.max_finite)
    np.testing.assert_array_equal(scale, expected_scale)

    per_element = loop_per_element_scale(expected_scale.astype(np.float64), granularity, shape)
    np.testing.assert_array_equal(q, fp8.encode(x / per_element, fmt, saturate=True))
    decoded = fp8.decode(q, fmt)
    assert np.array_equal(np.isnan(decoded), np.isnan(x))
    assert np.all(np.abs(decoded[np.isinf(x)]) == fmt.max_finite)
    assert np.all(np.sign(decoded[np.isinf(x)]) == np.sign(x[np.isinf(x)]))


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_quantize_all_zero_and_all_nan_groups(granularity: str) -> None:
    x = np.zeros((3, 5))
    x[1] = np.nan
    q, scale = ref.quantize(x, E4M3FN, granularity)  # type: ignore[arg-type]
    np.testing.assert_array_equal(scale, np.float32(1e-12 / 448.0))
    assert np.all(np.isnan(fp8.decode(q[1], E4M3FN)))
    assert np.all(q[[0, 2]] == 0)


@pytest.mark.parametrize("fmt", [E4M3FN, E5M2], ids=lambda f: f.name)
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_quantize_dequantize_error_bound(
    granularity: str, fmt: FP8Format, rng: np.random.Generator
) -> None:
    # Magnitudes spanning ~2**30 so that every group contains normal and subnormal FP8 values.
    x = rng.choice([-1.0, 1.0], size=(150, 300)) * np.exp2(rng.uniform(-25, 5, size=(150, 300)))
    q, scale = ref.quantize(x, fmt, granularity)  # type: ignore[arg-type]
    deq = ref.dequantize(q, scale, fmt, granularity)  # type: ignore[arg-type]
    assert deq.dtype == np.float64 and deq.shape == x.shape
    s = loop_per_element_scale(scale.astype(np.float64), granularity, x.shape)
    scaled = np.abs(x) / s
    # In range: normal FP8 magnitudes. The group's amax itself may land a hair above max_finite
    # (the scale is rounded to float32) and saturate; its error (~2**-24) is within the bound too.
    normal = scaled >= fmt.min_normal
    assert normal.mean() > 0.3 and (~normal).sum() > 0
    rel = np.abs(deq - x)[normal] / np.abs(x)[normal]
    assert rel.max() <= 2.0 ** -(fmt.mantissa_bits + 1) * (1 + 1e-12)
    abs_err = np.abs(deq - x)[~normal]  # subnormal range: half a subnormal step, times scale
    assert np.all(abs_err <= fmt.min_subnormal / 2 * s[~normal] * (1 + 1e-12))


def test_static_scale_is_rounded_to_float32_and_used(rng: np.random.Generator) -> None:
    x = rng.standard_normal((4, 6))
    q, scale = ref.quantize(x, "e4m3fn", "tensor", scale=0.1)
    assert scale.shape == () and scale.dtype == np.float32 and scale == np.float32(0.1)
    np.testing.assert_array_equal(q, fp8.encode(x / float(np.float32(0.1)), E4M3FN))

    row_scale = rng.uniform(0.5, 2.0, 4)
    q, scale = ref.quantize(x, E5M2, "row", scale=row_scale)
    np.testing.assert_array_equal(scale, row_scale.astype(np.float32))
    per_element = scale.astype(np.float64)[:, None]
    np.testing.assert_array_equal(q, fp8.encode(x / per_element, E5M2))


def test_static_scale_saturates() -> None:
    x = np.array([[1.0, -1000.0, np.inf, np.nan]])
    q, _ = ref.quantize(x, E4M3FN, "row", scale=np.array([1.0]))
    np.testing.assert_array_equal(fp8.decode(q, E4M3FN)[0, :3], [1.0, -448.0, 448.0])
    assert np.isnan(fp8.decode(q, E4M3FN)[0, 3])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"scale": np.ones(3)}, ShapeError, r"scale must have shape \(\)"),
        ({"granularity": "row", "scale": np.ones(5)}, ShapeError, r"shape \(4,\).*per row"),
        ({"granularity": "block128", "scale": np.ones(1)}, ShapeError, r"\(1, 1\).*128x128"),
        ({"scale": 0.0}, ArgumentError, "positive and finite"),
        ({"scale": -1.0}, ArgumentError, "positive and finite"),
        ({"scale": np.nan}, ArgumentError, "positive and finite"),
        ({"scale": np.inf}, ArgumentError, "positive and finite"),
        ({"scale": 1e-50}, ArgumentError, "after rounding to float32"),
        ({"scale": np.array(1, dtype=np.int32)}, DTypeError, "scale must be a real floating"),
        ({"granularity": "channel"}, ArgumentError, "granularity must be one of"),
        ({"fmt": "fp8"}, ArgumentError, "unknown FP8 format"),
        ({"x": np.ones(6)}, ShapeError, r"x must be 2-D with layout \[M, K\]"),
        ({"x": np.ones((4, 6), dtype=np.uint8)}, DTypeError, "FP8 bit patterns"),
        ({"x": np.full((4, 6), 1e300)}, ArgumentError, "too large for a float32 scale"),
    ],
)
def test_quantize_validation(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    args: dict[str, object] = {"x": np.ones((4, 6)), "fmt": E4M3FN, "granularity": "tensor"}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        ref.quantize(**args)  # type: ignore[arg-type]


def test_dequantize_validation() -> None:
    q = np.zeros((4, 6), dtype=np.uint8)
    with pytest.raises(DTypeError, match="uint8"):
        ref.dequantize(q.astype(np.int32), np.float32(1), E4M3FN, "tensor")
    with pytest.raises(ShapeError, match=r"scale must have shape \(4,\)"):
        ref.dequantize(q, np.ones(6, dtype=np.float32), E4M3FN, "row")
    with pytest.raises(ArgumentError, match="positive and finite"):
        ref.dequantize(q, np.zeros(4, dtype=np.float32), E4M3FN, "row")
    with pytest.raises(ShapeError, match="q_bits must be 2-D"):
        ref.dequantize(q.ravel(), np.float32(1), E4M3FN, "tensor")


# ----------------------------------------------------------------------------------------------
# FP8 GEMM
# ----------------------------------------------------------------------------------------------


def loop_fp8_gemm(a, b, sa, sb, a_fmt, b_fmt, granularity, bias):  # type: ignore[no-untyped-def]
    a_table = [fp8.decode(np.uint8(c), a_fmt).item() for c in range(256)]
    b_table = [fp8.decode(np.uint8(c), b_fmt).item() for c in range(256)]
    a_list, b_list = a.tolist(), b.tolist()
    m_, n_, k_ = a.shape[0], b.shape[0], a.shape[1]
    out = np.zeros((m_, n_))
    for m in range(m_):
        for n in range(n_):
            acc = 0.0
            for k in range(k_):
                av = a_table[a_list[m][k]] * float(sa[loop_scale_index(granularity, m, k)])
                bv = b_table[b_list[n][k]] * float(sb[loop_scale_index(granularity, n, k)])
                acc += av * bv
            out[m, n] = acc + (0.0 if bias is None else bias[n])
    return out


@pytest.mark.parametrize(
    ("granularity", "mnk"),
    [
        ("tensor", (3, 4, 20)),
        ("row", (5, 3, 33)),
        ("block128", (3, 130, 260)),
        ("block128", (130, 2, 200)),
    ],
)
@pytest.mark.parametrize("with_bias", [False, True])
def test_fp8_gemm_matches_loops(
    granularity: str, mnk: tuple[int, int, int], with_bias: bool, rng: np.random.Generator
) -> None:
    m, n, k = mnk
    a_q, a_s = ref.quantize(varied_magnitudes(rng, (m, k)), E4M3FN, granularity)  # type: ignore[arg-type]
    b_q, b_s = ref.quantize(varied_magnitudes(rng, (n, k)), E5M2, granularity)  # type: ignore[arg-type]
    bias = rng.standard_normal(n) if with_bias else None
    got = ref.fp8_gemm(
        a_q, b_q, a_s, b_s, a_fmt=E4M3FN, b_fmt="e5m2", granularity=granularity, bias=bias
    )  # type: ignore[arg-type]
    expected = loop_fp8_gemm(a_q, b_q, a_s, b_s, E4M3FN, E5M2, granularity, bias)
    assert got.shape == (m, n) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_fp8_gemm_propagates_nan() -> None:
    a = fp8.encode(np.array([[1.0, np.nan], [1.0, 2.0]]), E4M3FN)
    b = fp8.encode(np.ones((3, 2)), E4M3FN)
    out = ref.fp8_gemm(
        a, b, np.float32(1), np.float32(1), a_fmt=E4M3FN, b_fmt=E4M3FN, granularity="tensor"
    )
    assert np.all(np.isnan(out[0])) and np.array_equal(out[1], [3.0, 3.0, 3.0])


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"b_bits": np.zeros((5, 4), dtype=np.uint8)}, ShapeError, "must share K"),
        ({"b_bits": np.zeros(6, dtype=np.uint8)}, ShapeError, r"b_bits must be 2-D .*\[N, K\]"),
        ({"a_bits": np.zeros((3, 6))}, DTypeError, "a_bits must hold FP8 bit patterns"),
        ({"b_scale": np.ones(3, dtype=np.float32)}, ShapeError, r"b_scale .*\(5,\).*row of B"),
        ({"a_scale": np.ones(5, dtype=np.float32)}, ShapeError, r"a_scale .*\(3,\).*row of A"),
        ({"bias": np.ones(3)}, ShapeError, r"bias must have shape \(5,\)"),
        ({"granularity": "tensor"}, ShapeError, r"a_scale must have shape \(\)"),
    ],
)
def test_fp8_gemm_validation(
    overrides: dict[str, object], error: type[Exception], message: str
) -> None:
    args: dict[str, object] = dict(
        a_bits=np.zeros((3, 6), dtype=np.uint8),
        b_bits=np.zeros((5, 6), dtype=np.uint8),
        a_scale=np.ones(3, dtype=np.float32),
        b_scale=np.ones(5, dtype=np.float32),
        a_fmt=E4M3FN,
        b_fmt=E4M3FN,
        granularity="row",
    )
    args.update(overrides)
    with pytest.raises(error, match=message):
        ref.fp8_gemm(**args)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# relative_error
# ----------------------------------------------------------------------------------------------


def test_relative_error_values() -> None:
    assert ref.relative_error(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 2.0])) == (
        pytest.approx(1.0 / 3.0, rel=1e-15)
    )
    assert ref.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert ref.relative_error(np.ones(3), np.zeros(3)) == math.inf
    assert ref.relative_error(np.array([1.0, np.nan]), np.ones(2)) == math.inf
    assert ref.relative_error(np.ones(2), np.array([1.0, np.nan])) == math.inf
    assert ref.relative_error(np.array([1.0, np.inf]), np.ones(2)) == math.inf
    tiny = np.full(10, 1e-200)
    assert ref.relative_error(tiny * (1 + 1e-3), tiny) == pytest.approx(1e-3, rel=1e-9)
    huge = np.full(10, 1e300)
    assert ref.relative_error(huge * (1 + 1e-3), huge) == pytest.approx(1e-3, rel=1e-9)
    half = np.array([1.0, 2.0], dtype=np.float16)
    assert ref.relative_error(half, np.array([1.0, 2.0])) == 0.0


def test_relative_error_validation() -> None:
    with pytest.raises(ShapeError, match=r"out must have shape \(3,\)"):
        ref.relative_error(np.ones(2), np.ones(3))
    with pytest.raises(DTypeError, match="out must be a real floating"):
        ref.relative_error(np.ones(3, dtype=int), np.ones(3))
