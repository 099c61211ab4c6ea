"""RoPE tables with Hugging Face's rope scaling (issue 11): linear, Llama 3.1's llama3 and YaRN,
against transformers' own frequencies where transformers is installed."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch API needs PyTorch")

from fusedops import nn as fnn  # noqa: E402
from fusedops.errors import ArgumentError  # noqa: E402

LLAMA31 = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}
YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8192}
YARN_MSCALE = dict(YARN, mscale=1.0, mscale_all_dim=0.707, beta_fast=16, beta_slow=2)


def test_default_tables_are_the_plain_frequencies() -> None:
    cos, sin = fnn.rope_tables(64, 32, 10000.0, "neox")
    inv = 10000.0 ** (-torch.arange(0, 32, 2, dtype=torch.float64) / 32)
    angles = torch.arange(64, dtype=torch.float64)[:, None] * inv
    assert torch.allclose(cos[:, :16].double(), angles.cos(), atol=1e-7)
    assert torch.allclose(sin[:, 16:].double(), angles.sin(), atol=1e-7)


def test_linear_scaling_divides_the_position() -> None:
    scaled, _ = fnn.rope_tables(256, 64, 10000.0, "neox", {"rope_type": "linear", "factor": 4.0})
    plain, _ = fnn.rope_tables(64, 64, 10000.0, "neox")
    assert torch.allclose(scaled[::4], plain, atol=1e-6)


def test_yarn_scales_the_tables_by_its_attention_factor() -> None:
    cos, sin = fnn.rope_tables(8, 64, 10000.0, "neox", YARN)
    factor = 0.1 * math.log(4.0) + 1.0
    assert torch.allclose(cos[0], torch.full((64,), factor, dtype=torch.float32))
    assert torch.allclose((cos.double() ** 2 + sin.double() ** 2), torch.tensor(factor**2).double())


def test_unsupported_scalings_are_refused() -> None:
    with pytest.raises(ArgumentError, match="'longrope' is not supported.*linear, llama3, yarn"):
        fnn.rope_tables(8, 64, 10000.0, "neox", {"rope_type": "longrope", "factor": 2.0})
    with pytest.raises(ArgumentError, match="'llama3' needs 'low_freq_factor'"):
        fnn.rope_tables(8, 64, 10000.0, "neox", {"rope_type": "llama3", "factor": 8.0})


@pytest.mark.parametrize(
    "scaling, base",
    [
        ({"rope_type": "linear", "factor": 2.0}, 10000.0),
        (LLAMA31, 500000.0),
        (YARN, 10000.0),
        (YARN_MSCALE, 10000.0),
    ],
    ids=["linear", "llama3", "yarn", "yarn-mscale"],
)
def test_frequencies_match_transformers(scaling: dict, base: float) -> None:
    transformers = pytest.importorskip("transformers")
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    params = dict(scaling, rope_theta=base)
    try:  # transformers 5: rope_parameters; 4.x: rope_scaling and rope_theta
        config = transformers.LlamaConfig(
            hidden_size=4096,
            num_attention_heads=32,
            max_position_embeddings=65536,
            rope_parameters=params,
        )
        assert config.rope_parameters["rope_type"] == scaling["rope_type"]
    except (TypeError, AttributeError, AssertionError, KeyError):
        config = transformers.LlamaConfig(
            hidden_size=4096,
            num_attention_heads=32,
            max_position_embeddings=65536,
            rope_scaling=scaling,
            rope_theta=base,
        )
    inv_hf, attention_hf = ROPE_INIT_FUNCTIONS[scaling["rope_type"]](config, "cpu")
    inv, attention = fnn._scaled_inv_freq(128, base, scaling)
    assert torch.allclose(inv, inv_hf.double(), rtol=2e-6, atol=0)
    assert attention == pytest.approx(float(attention_hf), rel=1e-9)
