"""FP8Linear as an nn.Module (issue 11): state dicts in and out, nn.Linear checkpoints, moves."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch API needs PyTorch")

import fusedops  # noqa: E402
from fusedops.errors import ArgumentError  # noqa: E402

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_unquantized_module_saves_and_loads_its_weight() -> None:
    # On the CPU nothing is quantized yet: the state dict holds the weight itself, no empty
    # FP8 buffers, and it loads into another CPU module.
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32)
    m = fusedops.FP8Linear(64, 32)
    m.load_state_dict(linear.state_dict())  # an nn.Linear checkpoint
    sd = m.state_dict()
    assert sorted(sd) == ["bias", "weight"]
    assert torch.equal(sd["weight"], linear.weight.detach())
    assert torch.equal(sd["bias"], linear.bias.detach())
    again = fusedops.FP8Linear(64, 32)
    again.load_state_dict(sd)
    assert torch.equal(again.state_dict()["weight"], linear.weight.detach())


def test_bad_state_dicts_are_refused_with_the_key() -> None:
    m = fusedops.FP8Linear(64, 32)
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: expected \(32, 64\)"):
        m.load_state_dict({"weight": torch.zeros(64, 32), "bias": torch.zeros(32)})
    with pytest.raises(RuntimeError, match="Unexpected key.*extra"):
        m.load_state_dict({"weight": torch.zeros(32, 64), "bias": torch.zeros(32), "extra": 1})
    with pytest.raises(RuntimeError, match="Missing key.*weight_fp8"):
        m.load_state_dict({"bias": torch.zeros(32)})
    q = torch.zeros(32, 64).to(torch.float8_e4m3fn)
    with pytest.raises(RuntimeError, match=r"weight_scale must be \(32,\)"):
        m.load_state_dict({"weight_fp8": q, "weight_scale": torch.ones(3), "bias": torch.zeros(32)})


@needs_gpu
def test_quantized_state_round_trips_and_linear_checkpoints_load_on_the_gpu() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 128).cuda().half()
    x = torch.randn(8, 256, device="cuda", dtype=torch.float16)
    m = fusedops.FP8Linear(256, 128).cuda()
    m.load_state_dict(linear.state_dict())  # quantized on load: the module is on the GPU
    assert m.weight_fp8.dtype == torch.float8_e4m3fn and m.weight_fp8.is_cuda
    with torch.no_grad():
        ref = linear(x).double()
        assert float((m(x).double() - ref).norm() / ref.norm()) < 6e-2
    # Saved quantized; loads into a CPU module and runs the same once moved.
    sd = m.state_dict()
    assert sorted(sd) == ["bias", "weight_fp8", "weight_scale"]
    other = fusedops.FP8Linear(256, 128)
    other.load_state_dict(sd)
    other = other.cuda()
    assert torch.equal(other.weight_fp8.view(torch.uint8), m.weight_fp8.view(torch.uint8))
    assert torch.equal(other(x), m(x))


def test_training_linear_is_an_nn_linear() -> None:
    # Its parameters and state dict are an nn.Linear's (checkpoints load both ways).
    lin = torch.nn.Linear(64, 32, dtype=torch.bfloat16)
    m = fusedops.FP8TrainingLinear.from_linear(lin, granularity="block128")
    assert isinstance(m, torch.nn.Linear) and m.granularity == "block128"
    assert m.state_dict().keys() == lin.state_dict().keys()
    assert torch.equal(m.weight, lin.weight) and m.weight.requires_grad
    back = torch.nn.Linear(64, 32, dtype=torch.bfloat16)
    back.load_state_dict(m.state_dict())
    assert torch.equal(back.bias, lin.bias)
    assert "granularity=block128" in repr(m)


def test_training_linear_refuses_an_unknown_backward() -> None:
    with pytest.raises(ArgumentError, match="backward must be one of e5m2, e4m3, dense"):
        fusedops.FP8TrainingLinear(64, 32, backward="fp16")


#: Relative (Frobenius) error of an FP8 backward's gradients against the float64 product of
#: the 16-bit operands (the straight-through estimator): the two quantized operands' rounding,
#: RMS 2^-3/√12 ≈ 3.6 % for e4m3 and 7.2 % for e5m2 per element, adds in quadrature for
#: uncorrelated data (≈ 5 % and 8 %); "dense" is bf16 GEMMs.
GRAD_BOUNDS = {"dense": 1e-2, "e4m3": 0.08, "e5m2": 0.12}


@needs_gpu
@pytest.mark.parametrize("backward", ["e5m2", "e4m3", "dense"])
@pytest.mark.parametrize("granularity", ["tensor", "row", "block128"])
@pytest.mark.parametrize("m, n, k", [(1, 64, 64), (3, 200, 144), (257, 136, 272)])
def test_fp8_gemm_gradients(backward: str, granularity: str, m: int, n: int, k: int) -> None:
    # dA = dOut·B and dB = dOutᵀ·A of the 16-bit operands, through the dynamic quantization
    # (the forward's granularity; the backward's FP8 GEMMs quantize with 128×128 blocks);
    # M, N off the tiles and not multiples of 16 (the backward pads its reduction dims). The
    # FP8 forms also against the float64 product of exactly the values they quantize to (the
    # GEMMs' own error: float32 sums, bf16 outputs).
    torch.manual_seed(m + n + k)
    a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    b = torch.randn(n, k, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    out = fusedops.fp8_gemm(a, b, granularity=granularity, backward=backward)
    grad = torch.randn_like(out)
    out.backward(grad)
    g64, a64, b64 = grad.double(), a.detach().double(), b.detach().double()
    for got, want in ((a.grad, g64 @ b64), (b.grad, g64.T @ a64)):
        assert got.dtype == torch.bfloat16
        err = float((got.double() - want).norm() / want.norm())
        assert err < GRAD_BOUNDS[backward], (backward, err)
    if backward == "dense":
        return

    def rounded(t: torch.Tensor, fmt: str) -> torch.Tensor:
        # t as the backward quantizes it, in float64.
        q, s = fusedops.quantize_fp8(t.contiguous(), fmt=fmt, granularity="block128")
        deq = fusedops.dequantize_fp8(q, s, granularity="block128", out_dtype=torch.float32)
        return deq.double()

    g_q = rounded(grad, backward)
    a_q, b_q = rounded(a.detach(), "e4m3"), rounded(b.detach(), "e4m3")
    for got, want in ((a.grad, g_q @ b_q), (b.grad, g_q.T @ a_q)):
        assert float((got.double() - want).norm() / want.norm()) < 5e-3


@needs_gpu
@pytest.mark.parametrize("backward", ["e5m2", "dense"])
def test_training_linear_learns_on_fp8_gemms(backward: str) -> None:
    # A regression to a fixed linear map. The backward passes straight through the
    # quantization: dW = dOutᵀ·x and db = Σ dOut of the forward's own output (float64 here);
    # SGD steps (lr near 1 / the loss's curvature 2 / out_features) lower the loss by >10×.
    torch.manual_seed(0)
    target = torch.nn.Linear(256, 128).cuda()
    m = fusedops.FP8TrainingLinear(256, 128, backward=backward, device="cuda")
    x = torch.randn(512, 256, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        y = target(x.float()).bfloat16()
    out = m(x)
    loss = (out.float() - y.float()).pow(2).mean()
    loss.backward()
    dout = (2 * (out.double() - y.double()) / out.numel()).bfloat16().double()
    assert float((m.bias.grad.double() - dout.sum(0)).norm() / dout.sum(0).norm()) < 1e-2
    want = dout.T @ x.double()
    err = float((m.weight.grad.double() - want).norm() / want.norm())
    assert err < GRAD_BOUNDS[backward]
    opt = torch.optim.SGD(m.parameters(), lr=32.0)
    first = float(loss)
    for _ in range(60):
        opt.zero_grad()
        loss = (m(x).float() - y.float()).pow(2).mean()
        loss.backward()
        opt.step()
    assert float(loss) < first / 10
    served = m.to_inference()
    assert isinstance(served, fusedops.FP8Linear)
    with torch.no_grad():
        assert float((served(x).float() - m(x).float()).norm() / m(x).float().norm()) < 2e-2


@needs_gpu
@pytest.mark.parametrize("fmt", [torch.float8_e4m3fn, torch.float8_e5m2], ids=["e4m3", "e5m2"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("m, k", [(1, 256), (3, 200), (257, 136), (300, 384)])
def test_quantize_transposed_writes_the_transpose_of_block128_quantize(fmt, dtype, m, k) -> None:
    # quantize_transposed: the block128 kernel's values and scales, and its third output is
    # exactly their transpose, [K, M'] with M' = M rounded up to 16, zeros past M.
    from fusedops import _native, torch_ops  # noqa: F401  (registers the ops)

    x = (torch.randn(m, k, device="cuda") * 3).to(dtype)
    q, s, qt = torch.ops.fusedops.quantize_transposed(x, fmt)
    want_q, want_s = torch.ops.fusedops.quantize(x, fmt, "block128")
    assert torch.equal(q.view(torch.uint8), want_q.view(torch.uint8))
    assert torch.equal(s, want_s)
    padded = _native.quantize_transposed_rows(m)
    assert padded % 16 == 0 and m <= padded < m + 16
    assert qt.shape == (k, padded) and qt.dtype == fmt
    assert torch.equal(qt[:, :m].view(torch.uint8), q.view(torch.uint8).T)
    assert not qt[:, m:].view(torch.uint8).any()
