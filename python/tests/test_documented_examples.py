"""The usage the README documents (issue 11), run exactly as written, against float64.

The block below is the documented text verbatim (only the imports added); each result is then
compared with an unfused float64 computation of what the text says it computes.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch API needs PyTorch")

import fusedops  # noqa: E402
from fusedops import reference  # noqa: E402

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    out, ref = out.double(), ref.double()
    return float((out - ref).norm() / ref.norm())


def rmsnorm_rope64(x, weight, cos, sin, eps, head_dim):
    """float64 RMSNorm + NeoX RoPE with each row's index along dim -2 as its position."""
    y = reference.rmsnorm_rope(
        x.detach().double().cpu().numpy(),
        weight.detach().double().cpu().numpy(),
        cos.detach().double().cpu().numpy(),
        sin.detach().double().cpu().numpy(),
        eps=eps,
        head_dim=head_dim,
    )
    return torch.from_numpy(y).to(x.device)


@needs_gpu
def test_documented_functions_run_as_written() -> None:
    from fusedops import fp8_gemm, fused_gated_mlp, fused_rmsnorm_rope

    torch.manual_seed(0)
    # --- the documented text ---
    x = torch.randn(2, 1024, 4096, device="cuda", dtype=torch.float16)
    weight = torch.randn(4096, device="cuda", dtype=torch.float16)
    cos = torch.randn(1024, 64, device="cuda", dtype=torch.float16)
    sin = torch.randn(1024, 64, device="cuda", dtype=torch.float16)
    output = fused_rmsnorm_rope(x, weight, cos, sin)  # head_dim from cos, eps default
    # ---
    assert rel_err(output, rmsnorm_rope64(x, weight, cos, sin, 1e-6, 64)) < 2e-3

    # --- the documented text ---
    gate_weight = torch.randn(11264, 4096, device="cuda", dtype=torch.float16)
    up_weight = torch.randn(11264, 4096, device="cuda", dtype=torch.float16)
    output = fused_gated_mlp(x, gate_weight, up_weight, activation="silu")
    # ---
    # Unit-variance weights give |x·w| ~ 64 and products ~ 4000; the rare products past
    # float16's 65504 are inf in the output, as in an unfused float16 computation.
    x64 = x.double()
    ref = torch.nn.functional.silu(x64 @ gate_weight.double().T) * (x64 @ up_weight.double().T)
    assert output.shape == (2, 1024, 11264)
    finite = ref.abs() < 65000
    assert finite.double().mean() > 0.9999
    assert rel_err(output[finite], ref[finite]) < 5e-3
    assert bool((output[~finite].abs() > 60000).all())
    del ref

    # --- the documented text ---
    a = torch.randn(1024, 4096, device="cuda", dtype=torch.float16)
    b = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)
    output = fp8_gemm(a, b)
    # ---
    # b is [N, K] (F.linear's convention); both operands are quantized to e4m3 per row.
    assert rel_err(output, a.double() @ b.double().T) < 6e-2


@needs_gpu
def test_documented_training_runs_as_written() -> None:
    torch.manual_seed(0)
    # --- the documented text ---
    x = torch.randn(8, 512, 4096, device="cuda", dtype=torch.bfloat16)
    mlp = fusedops.FusedMLP(4096, 11008, device="cuda", dtype=torch.bfloat16)
    proj = fusedops.FP8TrainingLinear(4096, 4096, device="cuda")  # bf16 weight, FP8 GEMMs
    opt = torch.optim.AdamW([*mlp.parameters(), *proj.parameters()], lr=1e-3)
    loss = proj(mlp(x)).float().pow(2).mean()
    loss.backward()
    opt.step()
    # ---
    params = [*mlp.parameters(), *proj.parameters()]
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in params)
    # (The gradients' values against float64 are test_torch_api's and test_fp8_linear's.)
    for _ in range(3):
        opt.zero_grad()
        later = proj(mlp(x)).float().pow(2).mean()
        later.backward()
        opt.step()
    assert float(later) < float(loss)


@needs_gpu
def test_documented_block_runs_as_written() -> None:
    from fusedops import FP8Linear, FusedGatedMLP, FusedRMSNormRoPE

    # --- the documented text ---
    class TransformerBlock(torch.nn.Module):
        def __init__(self, hidden_dim=4096, head_dim=64, intermediate_dim=11264):
            super().__init__()
            self.norm = FusedRMSNormRoPE(hidden_dim, head_dim)
            self.mlp = FusedGatedMLP(hidden_dim, intermediate_dim, activation="silu")
            self.proj = FP8Linear(intermediate_dim, hidden_dim)

        def forward(self, x, cos, sin):
            x = self.norm(x, cos, sin)
            x = self.mlp(x)
            x = self.proj(x)
            return x

    # ---
    torch.manual_seed(0)
    # Built on the CPU, then moved: FP8Linear quantizes its weight on arrival, and .half()
    # leaves its FP8 weight FP8 and its scales and bias float32.
    block = TransformerBlock().cuda().half()
    assert block.proj.weight_fp8.dtype == torch.float8_e4m3fn
    assert block.proj.weight_scale.dtype == torch.float32
    assert block.proj.bias.dtype == torch.float32 and block.proj.bias.is_cuda
    assert block.norm.weight.dtype == torch.float16

    x = torch.randn(2, 1024, 4096, device="cuda", dtype=torch.float16)
    cos, sin = fusedops.nn.rope_tables(1024, 64, 10000.0, "neox")
    cos, sin = cos.cuda(), sin.cuda()
    with torch.no_grad():
        y = block(x, cos, sin)
        # Without tables the module uses its own (base 10000, the same as these).
        assert rel_err(block.norm(x), block.norm(x, cos, sin)) < 1e-3
    assert y.shape == (2, 1024, 4096) and y.dtype == torch.float16

    # Unfused float64: the same weights, the FP8 weight as stored (dequantized).
    with torch.no_grad():
        h = rmsnorm_rope64(x, block.norm.weight, cos, sin, 1e-6, 64)
        g = block.mlp.gate_weight.double()
        u = block.mlp.up_weight.double()
        h = torch.nn.functional.silu(h @ g.T) * (h @ u.T)
        w8 = block.proj.weight_fp8.double() * block.proj.weight_scale.double()[:, None]
        ref = h @ w8.T + block.proj.bias.double()
    # The input to the projection is quantized to e4m3 per row, as FP8Linear documents.
    assert rel_err(y, ref) < 6e-2


@needs_gpu
def test_fp8_linear_state_after_moves() -> None:
    lin = fusedops.FP8Linear(256, 128)  # on the CPU: nothing quantized yet
    with pytest.raises(fusedops.errors.ArgumentError, match=r"move it to the GPU \(\.cuda\(\)"):
        lin(torch.randn(4, 256, dtype=torch.bfloat16))
    lin = lin.to("cuda", torch.float16)
    assert lin.weight_fp8.shape == (128, 256) and lin.weight_fp8.dtype == torch.float8_e4m3fn
    assert lin.weight_scale.dtype == torch.float32
    x = torch.randn(4, 256, device="cuda", dtype=torch.float16)
    assert lin(x).dtype == torch.float16
