"""What Hugging Face models hand the rotary embedding (issue 11): int64 position_ids and
already-gathered ``(cos, sin)`` of shape ``[batch, seq, rotary_dim]`` in the model's dtype."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch API needs PyTorch")

import fusedops  # noqa: E402
from fusedops.errors import ShapeError  # noqa: E402

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_gathered_tables_must_match_x() -> None:
    x = torch.zeros(2, 8, 256, dtype=torch.bfloat16)
    w = torch.ones(256, dtype=torch.bfloat16)
    cos = torch.zeros(2, 7, 64, dtype=torch.bfloat16)
    with pytest.raises(ShapeError, match=r"gathered cos/sin must be \[batch, seq, rotary_dim\]"):
        fusedops.fused_rmsnorm_rope(x, w, cos, cos)


@needs_gpu
@pytest.mark.parametrize("style", ["neox", "gptj"])
def test_int64_positions_and_gathered_tables_match_int32_positions(style: str) -> None:
    gen = torch.Generator(device="cuda").manual_seed(7)
    batch, seq, hidden, head_dim, max_pos = 3, 37, 1024, 128, 4096
    x = torch.randn(batch, seq, hidden, device="cuda", dtype=torch.bfloat16, generator=gen)
    w = (1 + 0.1 * torch.randn(hidden, device="cuda", generator=gen)).bfloat16()
    cos, sin = fusedops.nn.rope_tables(max_pos, head_dim, 10000.0, style)
    cos, sin = cos.cuda().bfloat16(), sin.cuda().bfloat16()  # the model's dtype, as HF has them
    position_ids = torch.randint(0, max_pos, (batch, seq), device="cuda", generator=gen)
    assert position_ids.dtype == torch.int64

    kw = dict(eps=1e-6, head_dim=head_dim, rope_style=style)
    want = fusedops.fused_rmsnorm_rope(x, w, cos, sin, positions=position_ids.int(), **kw)
    got64 = fusedops.fused_rmsnorm_rope(x, w, cos, sin, positions=position_ids, **kw)
    # HF's rotary embedding gives each token its own row: cos[position_ids].
    gathered = fusedops.fused_rmsnorm_rope(x, w, cos[position_ids], sin[position_ids], **kw)
    assert torch.equal(got64, want)
    assert torch.equal(gathered, want)
