"""fused_rms_norm and fused_add_rms_norm (issue 11 item 5): the norms of Llama-family models
without RoPE, and the residual add + RMSNorm of a pre-norm layer in one kernel."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch API needs PyTorch")

import fusedops  # noqa: E402
from fusedops import _codegen, reference  # noqa: E402
from fusedops.errors import ArgumentError, DeviceError, DTypeError, ShapeError  # noqa: E402
from fusedops.nn import FusedRMSNorm  # noqa: E402

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# Relative error (max |err| / max |ref|) allowed against float64: one rounding of the output.
TOL = {torch.float16: 2e-3, torch.bfloat16: 1e-2, torch.float32: 1e-5}


def test_source_comes_from_the_c_api() -> None:
    source, names = _codegen.rms_norm_source(
        (None, 4096), "bf16", eps=1e-5, residual=True, weight_offset=1.0, rows_hint=256
    )
    assert names == ["x", "w", "residual", "out", "sum"]
    assert "fusedops.rms_norm ins(%x, %w : memref<?x4096xbf16>, memref<4096xbf16>)" in source
    assert "residual(%residual : memref<?x4096xbf16>)" in source
    assert "weight_offset = 1.000000e+00" in source and "fusedops.rows_hint = 256" in source
    plain, names = _codegen.rms_norm_source((3, 5, 64), "f16", eps=0.0)
    assert names == ["x", "w", "out"] and "residual" not in plain and "weight_offset" not in plain


def test_reference_adds_the_residual_and_the_offset() -> None:
    x = np.array([[3.0, 4.0]])
    out = reference.rms_norm(x, np.array([1.0, 2.0]), eps=0.0)
    np.testing.assert_allclose(out, x / np.sqrt(12.5) * [1.0, 2.0])
    summed = reference.rms_norm(
        np.array([[1.0, 4.0]]),
        np.zeros(2),
        eps=0.0,
        residual=np.array([[2.0, 0.0]]),
        weight_offset=1.0,
    )
    np.testing.assert_allclose(summed, out / [1.0, 2.0])
    with pytest.raises(ShapeError, match="residual"):
        reference.rms_norm(x, np.ones(2), eps=0.0, residual=np.ones((2, 2)))
    with pytest.raises(ArgumentError, match="weight_offset"):
        reference.rms_norm(x, np.ones(2), eps=0.0, weight_offset=float("inf"))


def test_cpu_tensors_are_refused_before_anything_runs() -> None:
    x = torch.ones(4, 8, dtype=torch.bfloat16)
    with pytest.raises(DeviceError, match="x is on cpu"):
        fusedops.fused_rms_norm(x, torch.ones(8, dtype=torch.bfloat16))
    with pytest.raises(DeviceError, match="x is on cpu"):
        fusedops.fused_add_rms_norm(x, x, torch.ones(8, dtype=torch.bfloat16))


def _inputs(shape, dtype, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = (3 * torch.randn(shape, device="cuda", generator=g)).to(dtype)
    r = torch.randn(shape, device="cuda", generator=g).to(dtype)
    w = (1 + 0.2 * torch.randn(shape[-1], device="cuda", generator=g)).to(dtype)
    return x, r, w


def _rel(got: torch.Tensor, want: np.ndarray) -> float:
    want_t = torch.from_numpy(want)
    return float((got.double().cpu() - want_t).abs().max() / want_t.abs().max())


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize(
    "shape",
    [(4096,), (1, 4096), (3, 257, 1000), (5, 33), (2, 7, 8192), (9, 5120)],
    ids=lambda s: "x".join(map(str, s)),
)
def test_rms_norm_matches_float64(dtype, shape) -> None:
    x, _, w = _inputs(shape, dtype, sum(shape))
    out = fusedops.fused_rms_norm(x, w, 1e-5)
    assert out.shape == x.shape and out.dtype == dtype
    want = reference.rms_norm(x.double().cpu().numpy(), w.double().cpu().numpy(), eps=1e-5)
    assert _rel(out, want) < TOL[dtype]


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("shape", [(1, 4096), (3, 257, 1000), (5, 33), (64, 2048)])
@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_add_rms_norm_stores_the_rounded_sum_and_normalises_it(dtype, shape, offset) -> None:
    x, r, w = _inputs(shape, dtype, 7 + sum(shape))
    if offset:
        w = w - 1  # Gemma stores gain - 1
    out, total = fusedops.fused_add_rms_norm(x, r, w, 1e-6, weight_offset=offset)
    assert torch.equal(total, x + r)  # PyTorch's add: in float32, rounded once
    want = reference.rms_norm(
        total.double().cpu().numpy(), w.double().cpu().numpy(), eps=1e-6, weight_offset=offset
    )
    assert _rel(out, want) < TOL[dtype]
    alone = fusedops.fused_rms_norm(total, w, 1e-6, weight_offset=offset)
    assert torch.equal(out, alone)  # the same arithmetic once the sum is known


@needs_gpu
def test_tile_candidates_agree() -> None:
    # Every tile the tuner may pick (rows per block, warps) computes the same bits.
    x, r, w = _inputs((37, 3072), torch.bfloat16, 3)
    want = fusedops.fused_add_rms_norm(x, r, w)
    for tile in [
        "#fusedops.tile<block = [1], warps = 1>",
        "#fusedops.tile<block = [4], warps = 2>",
        "#fusedops.tile<block = [8], warps = 32>",
    ]:
        with fusedops.torch_ops._tuning(tile):
            got = fusedops.fused_add_rms_norm(x, r, w)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]), tile


@needs_gpu
def test_bad_arguments_get_typed_errors() -> None:
    x, r, w = _inputs((4, 256), torch.bfloat16, 1)
    with pytest.raises(ShapeError, match=r"weight must have shape \(256,\)"):
        fusedops.fused_rms_norm(x, w[:128])
    with pytest.raises(DTypeError, match="weight has dtype torch.float16"):
        fusedops.fused_rms_norm(x, w.half())
    with pytest.raises(ShapeError, match=r"residual must have x's shape \(4, 256\)"):
        fusedops.fused_add_rms_norm(x, r[:2], w)
    with pytest.raises(ArgumentError, match="eps must be finite"):
        fusedops.fused_rms_norm(x, w, -1.0)
    with pytest.raises(ArgumentError, match="weight_offset must be a finite number"):
        fusedops.fused_rms_norm(x, w, weight_offset=float("nan"))
    with pytest.raises(ShapeError, match="not contiguous"):
        fusedops.fused_rms_norm(torch.ones(256, 4, device="cuda", dtype=torch.bfloat16).T, w)


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_gradients_match_float64_autograd(dtype) -> None:
    x, r, w = _inputs((3, 257, 384), dtype, 11)
    grad_out = torch.randn_like(x)
    grad_total = torch.randn_like(x)

    def float64_grads(with_residual: bool):
        xs = [t.double().requires_grad_() for t in (x, r, w)]
        total = xs[0] + xs[1] if with_residual else xs[0]
        normed = total * torch.rsqrt(total.pow(2).mean(-1, keepdim=True) + 1e-6) * (xs[2] + 0.5)
        loss = (normed * grad_out.double()).sum()
        if with_residual:
            loss = loss + (total * grad_total.double()).sum()
        loss.backward()
        return [t.grad for t in xs]

    xs = [t.clone().requires_grad_() for t in (x, r, w)]
    out = fusedops.fused_rms_norm(xs[0], xs[2], 1e-6, weight_offset=0.5)
    (out.float() * grad_out.float()).sum().backward()
    want = float64_grads(False)
    for got, ref in [(xs[0].grad, want[0]), (xs[2].grad, want[2])]:
        assert float((got.double() - ref).norm() / ref.norm()) < TOL[dtype] * 2

    xs = [t.clone().requires_grad_() for t in (x, r, w)]
    out, total = fusedops.fused_add_rms_norm(xs[0], xs[1], xs[2], 1e-6, weight_offset=0.5)
    ((out.float() * grad_out.float()).sum() + (total.float() * grad_total.float()).sum()).backward()
    want = float64_grads(True)
    for got, ref in zip([t.grad for t in xs], want):
        assert float((got.double() - ref).norm() / ref.norm()) < TOL[dtype] * 2


def _float64_norm_grads(x, w, grad, residual_grad, eps, offset):
    """rms_norm's gradients by float64 autograd of its formula on the same rounded inputs: dx
    (plus the sum's gradient) and the weight's."""
    x64, w64 = x.double().requires_grad_(), w.double().requires_grad_()
    out = x64 * torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + eps) * (w64 + offset)
    dx, dw = torch.autograd.grad(out, (x64, w64), grad.double())
    return (dx if residual_grad is None else dx + residual_grad.double()), dw


# Relative error (Frobenius) of the backward kernel against float64: dx rounded once to the
# dtype, the weight's gradient summed over every row in float32.
GRAD_TOL = {torch.float16: 2e-3, torch.bfloat16: 8e-3, torch.float32: 1e-5}


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize(
    ("shape", "residual", "offset"),
    [
        ((1, 4096), False, 0.0),  # one row: one block has it, the others store zeros
        ((3, 257, 1000), True, 0.0),  # vectors of 8 (f16) past the row's end
        ((5, 33), False, 1.0),  # width-1 vectors, Gemma's offset
        ((5000, 128), True, 0.0),  # more rows than partial sums: narrow rows, R at once
        ((2, 7, 8192), False, 0.0),
        ((300, 3072), True, 1.0),
    ],
    ids=str,
)
def test_gradient_kernel_matches_float64(dtype, shape, residual, offset) -> None:
    # The rms_norm_grad kernel (dx per row, plus the sum's gradient for add_rms_norm; the
    # weight's gradient as partial sums over runs of consecutive rows, summed).
    x, r, w = _inputs(shape, dtype, 3 + sum(shape))
    grad = torch.randn_like(x)
    residual_grad = r if residual else None
    dx, dw = torch.ops.fusedops.rms_norm_grad(x, w, grad, residual_grad, 1e-6, offset)
    assert dx.shape == x.shape and dx.dtype == dtype and dw.shape == w.shape and dw.dtype == dtype
    want = _float64_norm_grads(x, w, grad, residual_grad, 1e-6, offset)
    for got, ref in zip((dx, dw), want):
        err = float((got.double() - ref).norm() / ref.norm())
        assert err < GRAD_TOL[dtype], err


@needs_gpu
def test_weight_gradient_is_deterministic_and_zero_without_rows() -> None:
    # The module's second kernel sums the partial sums over P in a fixed order: the same
    # inputs give the same bits; with no rows every partial row is zeros, and so is the sum.
    x, _, w = _inputs((4097, 3000), torch.bfloat16, 5)
    grad = torch.randn_like(x)
    first = torch.ops.fusedops.rms_norm_grad(x, w, grad, None, 1e-6, 0.0)
    for _ in range(3):
        again = torch.ops.fusedops.rms_norm_grad(x, w, grad, None, 1e-6, 0.0)
        assert all(torch.equal(a, b) for a, b in zip(first, again))
    empty = x[:0]
    dx, dw = torch.ops.fusedops.rms_norm_grad(empty, w, grad[:0], None, 1e-6, 0.0)
    assert dx.shape == (0, 3000) and torch.equal(dw, torch.zeros_like(w))


@needs_gpu
@pytest.mark.parametrize(
    ("shape", "tile"),
    [
        ((3001, 128), "block = [1], warps = 1"),
        ((3001, 128), "block = [4], warps = 1"),  # a row over 8 lanes, sums shuffled in it
        ((3001, 128), "block = [16], warps = 4"),  # the slots' sums added in shared memory
        ((77, 4096), "block = [1], warps = 4"),
        ((77, 4096), "block = [1], warps = 32"),  # one vector a thread, 32 warps' sums
        ((77, 4096), "block = [2], warps = 2"),
    ],
    ids=str,
)
def test_gradient_tiles_agree_with_float64(shape, tile) -> None:
    x, r, w = _inputs(shape, torch.bfloat16, 17)
    grad = torch.randn_like(x)
    with fusedops.torch_ops._tuning(f"#fusedops.tile<{tile}>"):
        got = torch.ops.fusedops.rms_norm_grad(x, w, grad, r, 1e-6, 0.0)
    want = _float64_norm_grads(x, w, grad, r, 1e-6, 0.0)
    for a, b in zip(got, want):
        assert float((a.double() - b).norm() / b.norm()) < GRAD_TOL[torch.bfloat16]


@needs_gpu
def test_add_rms_norm_backward_through_either_output_alone() -> None:
    # Only the sum used (the residual stream): its gradient passes to x and residual unchanged
    # and the weight gets none; only the normed output used: the kernel without the sum's.
    x, r, w = _inputs((40, 512), torch.bfloat16, 23)
    grad = torch.randn_like(x)
    leaves = [t.clone().requires_grad_() for t in (x, r, w)]
    _, total = fusedops.fused_add_rms_norm(*leaves)
    total.backward(grad)
    assert torch.equal(leaves[0].grad, grad) and torch.equal(leaves[1].grad, grad)
    assert leaves[2].grad is None or not leaves[2].grad.any()
    leaves = [t.clone().requires_grad_() for t in (x, r, w)]
    normed, _ = fusedops.fused_add_rms_norm(*leaves)
    normed.backward(grad)
    want = _float64_norm_grads(x + r, w, grad, None, 1e-6, 0.0)
    pairs = [(leaves[0].grad, want[0]), (leaves[1].grad, want[0]), (leaves[2].grad, want[1])]
    for got, ref in pairs:
        assert float((got.double() - ref).norm() / ref.norm()) < GRAD_TOL[torch.bfloat16]


@needs_gpu
def test_torch_compile_fullgraph_and_cuda_graph() -> None:
    x, r, w = _inputs((16, 1024), torch.bfloat16, 5)

    def layer(x, r, w):
        normed, total = fusedops.fused_add_rms_norm(x, r, w)
        return fusedops.fused_rms_norm(normed * 2, w), total

    want = layer(x, r, w)
    compiled = torch.compile(layer, fullgraph=True)
    got = compiled(x, r, w)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = layer(x, r, w)
    x.add_(1)
    graph.replay()
    again = layer(x, r, w)
    assert torch.equal(captured[0], again[0]) and torch.equal(captured[1], again[1])


@needs_gpu
def test_backward_compiles_with_torch_compile_and_matches_eager() -> None:
    # The backward under torch.compile goes through the rms_norm_grad custom op (its fake
    # implementation); eagerly the autograd formula launches the kernel directly. dx is the
    # kernel's either way; Inductor sums the weight's partial sums in its own order.
    x, r, w = _inputs((48, 1024), torch.bfloat16, 29)
    grad = torch.randn_like(x)

    def step(x, r, w):
        normed, total = fusedops.fused_add_rms_norm(x, r, w)
        out = fusedops.fused_rms_norm(normed, w, weight_offset=1.0)
        return (out.float() * grad.float()).sum() + total.float().sum()

    def grads(fn):
        leaves = [t.clone().requires_grad_() for t in (x, r, w)]
        fn(*leaves).backward()
        return [t.grad for t in leaves]

    want = grads(step)
    got = grads(torch.compile(step, fullgraph=True))
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert float((got[2].double() - want[2]).norm() / want[2].double().norm()) < 1e-2


@needs_gpu
def test_module_with_and_without_residual_and_its_state_dict() -> None:
    norm = FusedRMSNorm(512, eps=1e-5, device="cuda", dtype=torch.bfloat16)
    gemma = FusedRMSNorm(512, 1e-5, weight_offset=1.0, device="cuda", dtype=torch.bfloat16)
    assert torch.equal(norm.weight, torch.ones_like(norm.weight))
    assert torch.equal(gemma.weight, torch.zeros_like(gemma.weight))  # 1 + 0: the same gain
    x, r, _ = _inputs((6, 512), torch.bfloat16, 9)
    with torch.no_grad():
        assert torch.equal(norm(x), gemma(x))
        normed, total = norm(x, r)
    assert torch.equal(total, x + r)
    with torch.no_grad():
        assert torch.equal(normed, norm(total))
    copy = FusedRMSNorm(512, eps=1e-5, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        norm.weight.mul_(1.5)
    copy.load_state_dict(norm.state_dict())
    with torch.no_grad():
        assert torch.equal(copy(x), norm(x))
    assert "weight_offset=1.0" in repr(gemma)


@needs_gpu
def test_repeated_calls_take_the_fast_path(monkeypatch) -> None:
    monkeypatch.setenv("FUSEDOPS_SHAPES", "exact")
    x, r, w = _inputs((8, 2048), torch.bfloat16, 2)
    tables = fusedops.torch_ops._tables
    first = fusedops.fused_add_rms_norm(x, r, w)
    n = len(tables["add_rms_norm"])
    assert n >= 1
    for _ in range(3):
        again = fusedops.fused_add_rms_norm(x, r, w)
        assert torch.equal(again[0], first[0]) and torch.equal(again[1], first[1])
    assert len(tables["add_rms_norm"]) == n
    fusedops.fused_rms_norm(x, w)
    assert len(tables["rms_norm"]) >= 1
