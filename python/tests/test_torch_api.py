"""The PyTorch API against PyTorch references computed in float64.

Needs PyTorch (skipped visibly without it); the correctness tests also need a GPU. The argument
checks that raise before anything reaches the GPU run with PyTorch alone.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch API needs PyTorch")

import fusedops  # noqa: E402
from fusedops import errors  # noqa: E402

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def gen() -> torch.Generator:
    g = torch.Generator(device="cpu")
    seed = torch.seed() % (2**31)
    print(f"torch seed: {seed}")
    g.manual_seed(seed)
    return g


@pytest.fixture(params=["extension", "python"])
def fast_path(request, monkeypatch):
    """Runs a test with the cached calls' fast path in the ``_fastcall`` extension (where it
    was built) and again in Python (``FUSEDOPS_FASTCALL=0``), with a kernel per exact shape
    from the first call (``FUSEDOPS_SHAPES=exact``: in ``auto`` mode a shape enters the table
    once it is steady, test_shape_classes.py)."""
    from fusedops import _native, torch_ops

    monkeypatch.setenv("FUSEDOPS_SHAPES", "exact")
    if request.param == "python":
        monkeypatch.setenv("FUSEDOPS_FASTCALL", "0")
    elif _native.fastcall() is None:
        pytest.skip("_fastcall.abi3.so was not built")
    _native._forget_fastcall()
    torch_ops._forget_kernels()
    yield request.param
    monkeypatch.undo()
    _native._forget_fastcall()
    torch_ops._forget_kernels()


def rand(shape, dtype, gen, scale=1.0):
    return (torch.randn(shape, generator=gen, dtype=torch.float32) * scale).to(
        device="cuda", dtype=dtype
    )


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    out, ref = out.double(), ref.double()
    return float((out - ref).norm() / ref.norm())


# ------------------------------------------------------------------------------------------
# References (float64)
# ------------------------------------------------------------------------------------------


def ref_rmsnorm_rope(x, w, cos, sin, eps, head_dim, style, positions=None, frac=1.0):
    x64 = x.double()
    y = x64 * torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + eps) * w.double()
    rot = round(head_dim * frac)
    if positions is None:
        seq = x.shape[-2]
        positions = torch.arange(seq, device=x.device).expand(x.shape[:-1])
    c = cos.double()[positions.long()]  # [..., rot]
    s = sin.double()[positions.long()]
    heads = y.reshape(*y.shape[:-1], -1, head_dim)
    r = heads[..., :rot]
    c, s = c.unsqueeze(-2), s.unsqueeze(-2)
    if style == "neox":
        half = rot // 2
        rotated = torch.cat([-r[..., half:], r[..., :half]], dim=-1)
    else:
        pairs = r.reshape(*r.shape[:-1], rot // 2, 2)
        rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).reshape(r.shape)
    out = heads.clone()
    out[..., :rot] = r * c + rotated * s
    return out.reshape(y.shape)


def ref_act(g, activation):
    if activation == "silu":
        return torch.nn.functional.silu(g)
    return torch.nn.functional.gelu(g, approximate="tanh" if activation == "gelu_tanh" else "none")


def rope_tables(n, rot, style):
    inv = 10000.0 ** (-torch.arange(0, rot, 2, dtype=torch.float64) / rot)
    f = torch.outer(torch.arange(n, dtype=torch.float64), inv)
    a = torch.cat([f, f], -1) if style == "neox" else torch.repeat_interleave(f, 2, -1)
    return a.cos().float().cuda(), a.sin().float().cuda()


# ------------------------------------------------------------------------------------------
# Argument checks (no kernel runs)
# ------------------------------------------------------------------------------------------


def test_cpu_tensors_are_rejected_with_a_fix() -> None:
    x = torch.zeros(2, 4, 128, dtype=torch.float16)
    w = torch.ones(128, dtype=torch.float16)
    c = torch.zeros(8, 64)
    with pytest.raises(errors.DeviceError, match="x is on cpu"):
        fusedops.fused_rmsnorm_rope(x, w, c, c, eps=1e-6, head_dim=64)


def test_public_names() -> None:
    for name in (
        "fused_rmsnorm_rope",
        "fused_gated_mlp",
        "fp8_gemm",
        "quantize_fp8",
        "dequantize_fp8",
        "FusedRMSNormRoPE",
        "FusedGatedMLP",
        "FusedMLP",
        "FP8Linear",
    ):
        assert callable(getattr(fusedops, name))
    for op in ("rmsnorm_rope", "gated_mlp", "quantize", "dequantize", "fp8_gemm"):
        assert hasattr(torch.ops.fusedops, op)


@needs_gpu
def test_bad_arguments_raise_fusedops_errors(gen) -> None:
    x = rand((2, 8, 256), torch.float16, gen)
    w = rand((256,), torch.float16, gen)
    c, s = rope_tables(16, 128, "neox")
    with pytest.raises(errors.DTypeError, match="weight has dtype torch.bfloat16"):
        fusedops.fused_rmsnorm_rope(x, w.bfloat16(), c, s, eps=1e-6, head_dim=128)
    with pytest.raises(errors.ShapeError, match="head_dim must be a positive divisor"):
        fusedops.fused_rmsnorm_rope(x, w, c, s, eps=1e-6, head_dim=100)
    with pytest.raises(errors.ShapeError, match="not contiguous"):
        fusedops.fused_rmsnorm_rope(x.transpose(0, 1), w, c, s, eps=1e-6, head_dim=128)
    with pytest.raises(errors.ArgumentError, match="rope_style must be one of"):
        fusedops.fused_rmsnorm_rope(x, w, c, s, eps=1e-6, head_dim=128, rope_style="llama")
    with pytest.raises(errors.ShapeError, match="cos and sin"):
        fusedops.fused_rmsnorm_rope(
            x, w, c[:, :64].contiguous(), s[:, :64].contiguous(), eps=1e-6, head_dim=128
        )
    with pytest.raises(errors.ShapeError, match="x.shape\\[-2\\] <= 4"):
        fusedops.fused_rmsnorm_rope(x, w, c[:4], s[:4], eps=1e-6, head_dim=128)
    wg = rand((512, 256), torch.float16, gen)
    with pytest.raises(errors.ShapeError, match="up_weight must have"):
        fusedops.fused_gated_mlp(x, wg, wg[:256])
    with pytest.raises(errors.ArgumentError, match="activation must be one of"):
        fusedops.fused_gated_mlp(x, wg, wg, activation="relu")
    a = rand((64, 256), torch.bfloat16, gen)
    with pytest.raises(errors.ArgumentError, match="a_scale must be None"):
        fusedops.fp8_gemm(a, a, a_scale=torch.ones((), device="cuda"))
    qa, sa = fusedops.quantize_fp8(a, granularity="row")
    with pytest.raises(errors.ArgumentError, match="pass a_scale"):
        fusedops.fp8_gemm(qa, a)
    with pytest.raises(errors.ShapeError, match="a_scale must have shape \\(64,\\)"):
        fusedops.fp8_gemm(qa, a, a_scale=sa[:8], granularity="row")
    with pytest.raises(errors.ShapeError, match="same K"):
        fusedops.fp8_gemm(a, a[:, :128].contiguous())


# ------------------------------------------------------------------------------------------
# Correctness
# ------------------------------------------------------------------------------------------


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("style", ["neox", "gptj"])
def test_rmsnorm_rope(dtype, style, gen) -> None:
    x = rand((2, 37, 1024), dtype, gen)
    w = rand((1024,), dtype, gen)
    c, s = rope_tables(64, 128, style)
    out = fusedops.fused_rmsnorm_rope(x, w, c, s, eps=1e-6, head_dim=128, rope_style=style)
    ref = ref_rmsnorm_rope(x, w, c, s, 1e-6, 128, style)
    assert out.dtype == dtype and out.shape == x.shape
    assert rel_err(out, ref) < 1e-2


@needs_gpu
def test_rmsnorm_rope_positions_and_partial_rotary(gen) -> None:
    x = rand((48, 512), torch.bfloat16, gen)
    w = rand((512,), torch.bfloat16, gen)
    c, s = rope_tables(100, 32, "neox")
    pos = torch.randint(0, 100, (48,), generator=gen, dtype=torch.int32).cuda()
    out = fusedops.fused_rmsnorm_rope(
        x, w, c, s, eps=1e-5, head_dim=64, rotary_fraction=0.5, positions=pos
    )
    ref = ref_rmsnorm_rope(x, w, c, s, 1e-5, 64, "neox", positions=pos, frac=0.5)
    assert rel_err(out, ref) < 1e-2


@needs_gpu
@pytest.mark.parametrize(
    "tile",
    [
        "#fusedops.tile<block = [1], warps = 1>",  # a row at a time over a warp
        "#fusedops.tile<block = [1, 4], warps = 1>",  # 4 rows at once, 8 lanes each
        "#fusedops.tile<block = [2, 16], warps = 4>",  # 16 at once, two steps
        "#fusedops.tile<block = [1, 32], warps = 1>",  # a lane a row: every unit in turn
    ],
)
@pytest.mark.parametrize("style", ["neox", "gptj"])
def test_rmsnorm_rope_rows_at_once(tile, style, gen) -> None:
    # QK-norm's narrow rows (a head each): a block takes S rows at once, each over a
    # warp's lanes (block = [R, S]); more rows than the grid covers evenly, positions
    # given, partial rotary: the same result as float64, every tile.
    from fusedops.torch_ops import _tuning

    x = rand((333, 3, 128), torch.bfloat16, gen)
    w = rand((128,), torch.bfloat16, gen)
    c, s = rope_tables(50, 96, style)
    pos = torch.randint(0, 50, (333, 3), generator=gen, dtype=torch.int32).cuda()
    with _tuning(tile):
        out = fusedops.fused_rmsnorm_rope(
            x, w, c, s, head_dim=128, rope_style=style, rotary_fraction=0.75, positions=pos
        )
    ref = ref_rmsnorm_rope(x, w, c, s, 1e-6, 128, style, positions=pos, frac=0.75)
    assert rel_err(out, ref) < 1e-2, tile


@needs_gpu
@pytest.mark.parametrize("activation", ["silu", "gelu", "gelu_tanh"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_gated_mlp(activation, dtype, gen) -> None:
    x = rand((3, 40, 512), dtype, gen)
    wg = rand((768, 512), dtype, gen, 0.05)
    wu = rand((768, 512), dtype, gen, 0.05)
    out = fusedops.fused_gated_mlp(x, wg, wu, activation)
    x64 = x.double()
    ref = ref_act(x64 @ wg.double().T, activation) * (x64 @ wu.double().T)
    assert out.shape == (3, 40, 768)
    assert rel_err(out, ref) < 2e-2


@needs_gpu
@pytest.mark.parametrize("granularity", ["tensor", "row", "block128"])
@pytest.mark.parametrize("fmt", ["e4m3", "e5m2"])
def test_quantize_dequantize_round_trip(granularity, fmt, gen) -> None:
    x = rand((256, 384), torch.bfloat16, gen)
    q, s = fusedops.quantize_fp8(x, fmt=fmt, granularity=granularity)
    assert q.dtype == (torch.float8_e4m3fn if fmt == "e4m3" else torch.float8_e5m2)
    back = fusedops.dequantize_fp8(q, s, granularity=granularity, out_dtype=torch.float32)
    if granularity == "tensor":
        expand = s
    elif granularity == "row":
        expand = s[:, None]
    else:
        expand = s.repeat_interleave(128, 0)[:256].repeat_interleave(128, 1)[:, :384]
    torch.testing.assert_close(back, q.float() * expand, rtol=1e-6, atol=0)
    assert rel_err(back, x) < (0.04 if fmt == "e4m3" else 0.08)


@needs_gpu
@pytest.mark.parametrize("rows", [1, 3, 4096, 20000])
def test_tensor_quantize_one_pass(rows, gen) -> None:
    # One cooperative kernel: every block's absmax meets at a grid barrier (counted in the FP8
    # output's first word), the blocks keep some tiles in registers and read the rest again. At
    # 20000 × 4096 each block takes several batches of tiles; the scale must be the whole
    # tensor's and every byte the float64 quantization with it.
    x = rand((rows, 4096), torch.bfloat16, gen)
    x[rows // 2, 7] = 300.0  # the absmax, away from the first and the last tile
    q, s = fusedops.quantize_fp8(x, granularity="tensor")
    assert float(s) == pytest.approx(300.0 / 448.0, rel=1e-7)
    want = (x.double() / s.double()).clamp(-448, 448).to(torch.float8_e4m3fn)
    mismatch = (q.view(torch.uint8) != want.view(torch.uint8)).sum().item()
    # Only ties of the f32 division may round differently from float64's.
    assert mismatch <= rows * 4096 // 10000


@needs_gpu
def test_tensor_quantize_in_graphs_and_on_two_streams(gen) -> None:
    # The cooperative launch is captured and replayed like any other, and two of them on two
    # streams (each filling the device) neither deadlock nor mix their barriers.
    xs = [rand((8192, 4096), torch.bfloat16, gen, scale) for scale in (1.0, 3.0)]
    expected = [fusedops.quantize_fp8(x, granularity="tensor") for x in xs]
    streams = [torch.cuda.Stream() for _ in xs]
    for stream in streams:
        stream.wait_stream(torch.cuda.current_stream())
    outs = []
    for x, stream in zip(xs, streams):
        with torch.cuda.stream(stream):
            outs.append([fusedops.quantize_fp8(x, granularity="tensor") for _ in range(4)])
    for stream in streams:
        torch.cuda.current_stream().wait_stream(stream)
    for (q, s), runs in zip(expected, outs):
        for q2, s2 in runs:
            assert torch.equal(q2.view(torch.uint8), q.view(torch.uint8))
            assert torch.equal(s2, s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = fusedops.quantize_fp8(xs[0], granularity="tensor")
    xs[0].mul_(2)
    graph.replay()
    torch.cuda.synchronize()
    q, s = fusedops.quantize_fp8(xs[0], granularity="tensor")
    assert torch.equal(captured[1], s) and float(s) == 2 * float(expected[0][1])
    assert torch.equal(captured[0].view(torch.uint8), q.view(torch.uint8))


@needs_gpu
@pytest.mark.parametrize("granularity", ["tensor", "row", "block128"])
def test_fp8_gemm_matches_dequantized_product(granularity, gen) -> None:
    a = rand((96, 512), torch.bfloat16, gen)
    b = rand((256, 512), torch.bfloat16, gen)
    bias = rand((256,), torch.float32, gen)
    qa, sa = fusedops.quantize_fp8(a, granularity=granularity)
    qb, sb = fusedops.quantize_fp8(b, granularity=granularity)
    out = fusedops.fp8_gemm(
        qa, qb, a_scale=sa, b_scale=sb, granularity=granularity, out_dtype=torch.float32, bias=bias
    )
    da = fusedops.dequantize_fp8(qa, sa, granularity=granularity, out_dtype=torch.float32)
    db = fusedops.dequantize_fp8(qb, sb, granularity=granularity, out_dtype=torch.float32)
    ref = da.double() @ db.double().T + bias.double()
    # Hopper's FP8 tensor cores add their products with about 14 mantissa bits before the
    # kernel promotes each K tile's sums to f32 (docs/design/gemm-engine.md; 2.2e-4 measured on
    # an H200); Ampere and Ada kernels sum in f32 throughout.
    bound = 5e-4 if torch.cuda.get_device_capability() >= (9, 0) else 1e-5
    assert rel_err(out, ref) < bound
    # Dynamic quantization from bf16 gives the same result.
    dyn = fusedops.fp8_gemm(a, b, granularity=granularity, out_dtype=torch.float32, bias=bias)
    assert rel_err(dyn, ref) < bound
    assert rel_err(out, a.double() @ b.double().T + bias.double()) < 0.08


# ------------------------------------------------------------------------------------------
# Modules, torch.compile, CUDA graphs, streams
# ------------------------------------------------------------------------------------------


@needs_gpu
def test_fp8_linear_from_linear(gen) -> None:
    lin = torch.nn.Linear(512, 384, bias=True).cuda().bfloat16()
    m = fusedops.FP8Linear.from_linear(lin)
    x = rand((4, 32, 512), torch.bfloat16, gen)
    out = m(x)
    assert out.shape == (4, 32, 384) and out.dtype == torch.bfloat16
    assert rel_err(out, lin(x)) < 0.08


@needs_gpu
def test_llama_block_with_fused_modules_matches_unfused(gen) -> None:
    hidden, inter, head_dim, seq = 512, 1024, 64, 48
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
    norm_w = (1 + 0.1 * torch.randn(hidden)).bfloat16().cuda()
    gate = (torch.randn(inter, hidden) * 0.04).bfloat16().cuda()
    up = (torch.randn(inter, hidden) * 0.04).bfloat16().cuda()
    down = (torch.randn(hidden, inter) * 0.03).bfloat16().cuda()
    x = rand((2, seq, hidden), torch.bfloat16, gen)

    def unfused(x):
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6) * norm_w.float()
        c, s = rope_tables(seq, head_dim, "neox")
        heads = h.reshape(2, seq, -1, head_dim)
        half = head_dim // 2
        rot = torch.cat([-heads[..., half:], heads[..., :half]], -1)
        q = (heads * c[:, None] + rot * s[:, None]).reshape(2, seq, hidden).bfloat16()
        mlp = (torch.nn.functional.silu(q @ gate.T) * (q @ up.T)) @ down.T
        return x + mlp

    norm = fusedops.FusedRMSNormRoPE(
        hidden, head_dim, eps=1e-6, max_positions=seq, device="cuda", dtype=torch.bfloat16
    )
    with torch.no_grad():
        norm.weight.copy_(norm_w)
    mlp = fusedops.FusedMLP.from_weights(gate, up, down)
    mlp8 = fusedops.FusedMLP.from_weights(gate, up, down, fp8_down=True)
    ref = unfused(x)
    with torch.no_grad():
        assert rel_err(x + mlp(norm(x)), ref) < 2e-2
        assert rel_err(x + mlp8(norm(x)), ref) < 5e-2


@needs_gpu
def test_torch_compile_fullgraph(gen) -> None:
    x = rand((4, 16, 256), torch.float16, gen)
    wg = rand((512, 256), torch.float16, gen, 0.05)
    wu = rand((512, 256), torch.float16, gen, 0.05)

    def f(x):
        return fusedops.fused_gated_mlp(x * 2, wg, wu) + 1

    eager = f(x)
    compiled = torch.compile(f, fullgraph=True)(x)
    torch.testing.assert_close(compiled, eager, rtol=2e-3, atol=2e-3)


@needs_gpu
def test_cuda_graph_capture_and_side_stream(gen) -> None:
    x = rand((64, 512), torch.bfloat16, gen)
    w = rand((512,), torch.bfloat16, gen)
    c, s = rope_tables(64, 128, "neox")
    pos = torch.arange(64, dtype=torch.int32, device="cuda")
    call = lambda: fusedops.fused_rmsnorm_rope(  # noqa: E731
        x, w, c, s, eps=1e-6, head_dim=128, positions=pos
    )
    expected = call()  # compiles outside the capture
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        on_side = call()
    torch.cuda.current_stream().wait_stream(side)
    torch.testing.assert_close(on_side, expected, rtol=0, atol=0)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = call()
    x.copy_(rand((64, 512), torch.bfloat16, gen))
    graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(captured, call(), rtol=0, atol=0)


@needs_gpu
def test_gemms_replay_from_a_cuda_graph(gen) -> None:
    # The sm_90a GEMMs read their operands through TMA tensor maps that each launch encodes from
    # the tensors' addresses, on a grid sized by the device's SMs: a captured graph replays them
    # on whatever the captured tensors hold then.
    x = rand((200, 512), torch.bfloat16, gen)
    wg = rand((384, 512), torch.bfloat16, gen, 0.05)
    wu = rand((384, 512), torch.bfloat16, gen, 0.05)
    a = rand((200, 512), torch.bfloat16, gen)
    b = rand((256, 512), torch.bfloat16, gen)
    qa, sa = fusedops.quantize_fp8(a, granularity="row")
    qb, sb = fusedops.quantize_fp8(b, granularity="row")

    def call():
        return (
            fusedops.fused_gated_mlp(x, wg, wu),
            fusedops.fp8_gemm(
                qa, qb, a_scale=sa, b_scale=sb, granularity="row", out_dtype=torch.bfloat16
            ),
        )

    call()  # compiles outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = call()
    x.copy_(rand((200, 512), torch.bfloat16, gen))
    qa.copy_(fusedops.quantize_fp8(rand((200, 512), torch.bfloat16, gen), granularity="row")[0])
    graph.replay()
    torch.cuda.synchronize()
    for got, want in zip(captured, call()):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


@needs_gpu
def test_launch_plans_write_what_the_host_code_writes(gen, monkeypatch) -> None:
    # Every op launches through its plan (cuLaunchKernel alone); FUSEDOPS_LAUNCH=host-code runs
    # the JIT'd host code instead. The two must write the same bits.
    from fusedops import torch_ops

    x = rand((2, 32, 256), torch.float16, gen)
    w = rand((256,), torch.float16, gen)
    c, s = rope_tables(32, 64, "gptj")
    wg = rand((384, 256), torch.float16, gen, 0.05)
    wu = rand((384, 256), torch.float16, gen, 0.05)
    a = rand((64, 256), torch.bfloat16, gen)
    b = rand((128, 256), torch.bfloat16, gen)

    def run_all():
        outs = [
            fusedops.fused_rmsnorm_rope(x, w, c, s, eps=1e-6, head_dim=64, rope_style="gptj"),
            fusedops.fused_gated_mlp(x, wg, wu, activation="gelu"),
        ]
        for granularity in ("tensor", "row", "block128"):
            q, sc = fusedops.quantize_fp8(a, granularity=granularity)
            outs += [q.view(torch.uint8), sc]
            outs.append(fusedops.dequantize_fp8(q, sc, granularity=granularity))
            outs.append(fusedops.fp8_gemm(a, b, granularity=granularity, out_dtype=torch.bfloat16))
        torch.cuda.synchronize()
        return outs

    torch_ops._forget_kernels()
    planned = run_all()
    assert torch_ops._kernels and all(k.plan is not None for k in torch_ops._kernels.values())
    monkeypatch.setenv("FUSEDOPS_LAUNCH", "host-code")
    torch_ops._forget_kernels()
    hosted = run_all()
    assert all(k.plan is None for k in torch_ops._kernels.values())
    torch_ops._forget_kernels()
    for p, h in zip(planned, hosted):
        torch.testing.assert_close(p, h, rtol=0, atol=0)


@needs_gpu
def test_checked_signatures_still_check_every_call(gen, fast_path) -> None:
    # After a call passes the checks, calls with the same shapes and dtypes skip the shape logic
    # but not the per-call checks: device, layout, alignment and autograd still decide.
    x = rand((2, 8, 256), torch.float16, gen)
    w = rand((256,), torch.float16, gen)
    c, s = rope_tables(16, 128, "neox")
    call = lambda x=x, w=w, c=c: fusedops.fused_rmsnorm_rope(  # noqa: E731
        x, w, c, s, eps=1e-6, head_dim=128
    )
    first = call()
    torch.testing.assert_close(call(), first, rtol=0, atol=0)
    # An argument equal to a cached one but of a type the checks refuse is still refused.
    with pytest.raises(errors.ShapeError, match="head_dim must be"):
        fusedops.fused_rmsnorm_rope(x, w, c, s, eps=1e-6, head_dim=128.0)
    with pytest.raises(errors.DeviceError, match="move it to the GPU"):
        call(w=w.cpu())
    with pytest.raises(errors.ShapeError, match="not contiguous"):
        call(x=x.transpose(0, 1).contiguous().transpose(0, 1))
    shifted = rand((257,), torch.float16, gen)[1:]  # contiguous, 2 bytes off 16
    with pytest.raises(errors.ShapeError, match="16-byte boundary"):
        call(w=shifted)
    # A 2-D view 2 bytes off: rejected with the fix; its clone runs.
    q = rand((16 * 4096 + 1,), torch.bfloat16, gen)[1:].view(16, 4096)
    assert q.data_ptr() % 16
    with pytest.raises(errors.ShapeError, match="16-byte boundary"):
        fusedops.quantize_fp8(q)
    got, scale = fusedops.quantize_fp8(q.clone())
    assert got.shape == (16, 4096) and scale.shape == (16,)


@needs_gpu
def test_checked_signatures_skip_the_full_checks(gen, monkeypatch, fast_path) -> None:
    # The first call of a signature runs the full checks and enters the signature in the fast
    # table; later calls launch without them and write what the checked call wrote. A call of
    # another signature takes the full checks again.
    from fusedops import torch_ops

    torch_ops._forget_kernels()
    x = rand((2, 8, 256), torch.float16, gen)
    w = rand((256,), torch.float16, gen)
    c, s = rope_tables(16, 128, "neox")
    wg = rand((384, 256), torch.float16, gen, 0.05)
    a = rand((64, 256), torch.bfloat16, gen)
    b = rand((128, 256), torch.bfloat16, gen)
    qb, sb = fusedops.quantize_fp8(b, granularity="row")
    bias = torch.randn(128, device="cuda")

    def run_all(x=x):
        outs = [
            fusedops.fused_rmsnorm_rope(x, w, c, s, eps=1e-6, head_dim=128),
            fusedops.fused_gated_mlp(x, wg, wg),
            fusedops.dequantize_fp8(qb, sb, granularity="row"),
            fusedops.fp8_gemm(a, b, granularity="row"),  # both operands quantized
            fusedops.fp8_gemm(a, qb, b_scale=sb, granularity="row", bias=bias),  # FP8Linear's
        ]
        q, scale = fusedops.quantize_fp8(a, granularity="block128")
        return outs + [q.view(torch.uint8), scale]

    checked = run_all()
    kernels = list(torch_ops._kernels.values())
    if fast_path == "extension":
        assert all(type(k.run_checked).__name__ == "Launcher" for k in kernels)
    else:
        assert all(k.run_checked.__func__ is torch_ops._Kernel.run_checked for k in kernels)
    # 6 signatures, and the quantize_fp8 calls of b (above) and of a (inside fp8_gemm).
    tables = torch_ops._tables.values()
    assert sum(len(t) for t in tables) == 8
    want = "Table" if fast_path == "extension" else "_CallTable"
    assert all(type(t).__name__ == want for t in tables)

    # The fast path must not need the checks: make them fail loudly.
    def refuse(*args):
        raise AssertionError("a cached signature ran the full checks")

    with monkeypatch.context() as patched:
        patched.setattr(torch_ops, "_check_tensor", refuse)
        fast = run_all()
        torch.cuda.synchronize()
        for f, c_ in zip(fast, checked):
            torch.testing.assert_close(f, c_, rtol=0, atol=0)
        with pytest.raises(AssertionError, match="full checks"):
            run_all(x=rand((2, 9, 256), torch.float16, gen))  # a new signature
    # Autograd, non-contiguous and misaligned inputs of a cached signature leave the fast path.
    with pytest.raises(errors.ShapeError, match="not contiguous"):
        fusedops.fp8_gemm(a, qb.t().contiguous().t(), b_scale=sb, granularity="row", bias=bias)
    with pytest.raises(errors.ShapeError, match="16-byte boundary"):
        fusedops.fp8_gemm(
            rand((64 * 256 + 1,), torch.bfloat16, gen)[1:].view(64, 256), b, granularity="row"
        )
    # An input that requires grad goes through the custom op, whose backward gives its grad.
    xg = x.clone().requires_grad_()
    out = fusedops.fused_gated_mlp(xg, wg, wg)
    torch.testing.assert_close(out.detach(), checked[1], rtol=0, atol=0)
    out.sum().backward()
    assert xg.grad is not None and xg.grad.shape == x.shape
    # A module's weights (nn.Parameters, requiring grad) under torch.no_grad() make a plain
    # eager call: the cached signature's fast path, without the checks; in grad mode, the
    # custom op.
    pg, pu = torch.nn.Parameter(wg.clone()), torch.nn.Parameter(wg.clone())
    with monkeypatch.context() as patched, torch.no_grad():
        patched.setattr(torch_ops, "_check_tensor", refuse)
        out = fusedops.fused_gated_mlp(x, pg, pu)
        torch.testing.assert_close(out, checked[1], rtol=0, atol=0)
        assert not out.requires_grad
    out = fusedops.fused_gated_mlp(x, pg, pu)
    assert out.requires_grad
    torch.testing.assert_close(out.detach(), checked[1], rtol=0, atol=0)


@needs_gpu
def test_tuning_override_has_a_fast_table_of_its_own(gen, monkeypatch) -> None:
    # The tuner's forced tiles must reach every call, cached signature or not.
    from fusedops import _launch, torch_ops

    monkeypatch.setattr(_launch, "PROMOTE_AFTER_S", 0.0)  # steady at the third call

    x = rand((4, 1024), torch.bfloat16, gen)
    w = rand((1024,), torch.bfloat16, gen)
    c, s = rope_tables(4, 128, "neox")
    call = lambda: fusedops.fused_rmsnorm_rope(x, w, c, s, eps=1e-6, head_dim=128)  # noqa: E731
    for _ in range(3):  # a steady shape: in the table from its third call (auto mode)
        call()
    table = torch_ops._tables["rmsnorm_rope"]
    assert len(table) == 1
    with torch_ops._tuning() as seen:
        assert len(table) == 0  # emptied: the first call reaches _kernel and the override
        call()
        assert len(seen.sources) == 1 and len(table) == 1
        call()  # the same kernel, from the table: its source is recorded once
        assert len(seen.sources) == 1 and len(table) == 1
    assert len(table) == 0  # the override's kernel left with it
    call()
    assert len(table) == 1
    torch_ops._forget_kernels()
    assert not torch_ops._kernels
    assert all(len(t) == 0 for t in torch_ops._tables.values())


@pytest.mark.parametrize("activation", ["silu", "gelu", "gelu_tanh"])
def test_gated_mlp_backward_matches_float64_autograd(activation: str, monkeypatch) -> None:
    # The op's backward (GEMMs in the inputs' dtype, the activation's derivative in float32 a
    # block of rows at a time) against autograd of the float64 expression; on the CPU, where
    # it runs the same as on a GPU. Blocks of 4 rows: 15 rows take four, the last one short.
    from fusedops import _autograd

    monkeypatch.setattr(_autograd, "GATED_MLP_BACKWARD_ROWS", 4)
    g = torch.Generator().manual_seed(8)
    x = torch.randn(3, 5, 64, generator=g, dtype=torch.float64, requires_grad=True)
    wg = torch.randn(40, 64, generator=g, dtype=torch.float64, requires_grad=True)
    wu = torch.randn(40, 64, generator=g, dtype=torch.float64, requires_grad=True)
    act = {"silu": torch.nn.functional.silu, "gelu": torch.nn.functional.gelu}.get(
        activation, lambda t: torch.nn.functional.gelu(t, approximate="tanh")
    )
    h = act(x @ wg.T) * (x @ wu.T)
    dh = torch.randn(h.shape, generator=g, dtype=torch.float64)
    want = torch.autograd.grad(h, (x, wg, wu), dh)
    # float64 exactly as the expression; float32 to its rounding; bf16 as PyTorch's own bf16
    # backward of the unfused MLP would be (products rounded to bf16).
    for dtype, bound in ((torch.float64, 1e-12), (torch.float32, 1e-5), (torch.bfloat16, 3e-2)):
        inputs = [t.detach().to(dtype) for t in (x, wg, wu)]
        got = _autograd._gated_mlp_grads(*inputs, activation, dh.to(dtype), (True, True, True))
        for a, b in zip(got, want):
            assert a.dtype == dtype and a.shape == b.shape
            assert float((a.double() - b).norm() / b.norm()) < bound, (dtype, activation)
    dx, dwg, dwu = _autograd._gated_mlp_grads(
        x.detach(), wg.detach(), wu.detach(), activation, dh, (False, True, False)
    )
    assert dx is None and dwu is None and dwg is not None


def test_gated_mlp_op_has_an_autograd_formula() -> None:
    # Through the custom op (fake tensors: no GPU needed), gradients reach every input.
    from torch._subclasses.fake_tensor import FakeTensorMode

    from fusedops import torch_ops  # noqa: F401  (registers the ops)

    with FakeTensorMode():
        x = torch.randn(4, 64, dtype=torch.bfloat16, requires_grad=True)
        wg = torch.randn(48, 64, dtype=torch.bfloat16, requires_grad=True)
        wu = torch.randn(48, 64, dtype=torch.bfloat16, requires_grad=True)
        out = torch.ops.fusedops.gated_mlp(x, wg, wu, "silu")
        assert out.requires_grad and out.shape == (4, 48)
        out.sum().backward()
        assert x.grad.shape == x.shape and x.grad.dtype == torch.bfloat16
        assert wg.grad.shape == wg.shape and wu.grad.shape == wu.shape


def test_fp8_gemm_backward_passes_straight_through_the_quantization() -> None:
    # fp8_gemm on 16-bit operands trains with the straight-through estimator: the gradients
    # are those of a @ b.T + bias, computed in float32 (float64 here, as the formula does for
    # float64 inputs).
    from fusedops import torch_ops

    g = torch.Generator().manual_seed(5)
    a = torch.randn(3, 40, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(24, 40, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(24, generator=g, dtype=torch.float64)
    dout = torch.randn(3, 24, generator=g, dtype=torch.float64)
    want = torch.autograd.grad(a @ b.T + bias, (a, b), dout)
    got = torch_ops._recomputed_grads(
        lambda a, b, *rest: torch_ops._fp8_gemm_torch(a, b, *rest),
        (a.detach(), b.detach()),
        (None, None, bias, "row", torch.bfloat16, False),
        dout,
        (True, True),
    )
    for x, y in zip(got, want):
        assert float((x.double() - y).norm() / y.norm()) < 1e-6
    # A pre-quantized operand is dequantized with its scales (block128: one per 128×128 block,
    # cut to the matrix): the gradient of the other one multiplies by it.
    q = torch.randint(-100, 100, (24, 200), generator=g).to(torch.float64)
    scale = torch.rand(1, 2, generator=g, dtype=torch.float64)
    a2 = torch.randn(3, 200, generator=g, dtype=torch.float64)
    dequantized = q * torch.cat((scale[:, :1].expand(24, 128), scale[:, 1:].expand(24, 72)), 1)
    (da,) = torch_ops._recomputed_grads(
        lambda a, *rest: torch_ops._fp8_gemm_torch(a, *rest),
        (a2,),
        (q, None, scale, None, "block128", torch.bfloat16, False),
        dout,
        (True,),
    )
    assert torch.allclose(da, dout @ dequantized)


@pytest.mark.parametrize("backward", ["e5m2", "e4m3", "dense"])
@pytest.mark.parametrize("granularity", ["tensor", "row", "block128"])
def test_fp8_backward_gemms_on_the_gpu_take_padded_transposes(
    backward: str, granularity: str
) -> None:
    # _fp8_gemm_grads on fake CUDA tensors (no GPU needed): M = 5 and N = 40 are the
    # backward's reduction dims, off the FP8 kernels' multiple of 16 (zero-padded); every
    # gradient in its operand's shape and dtype; FP8 operands (dequantized) take part too.
    from torch._subclasses.fake_tensor import FakeTensorMode

    from fusedops import _native, torch_ops  # noqa: F401  (registers the ops)
    from fusedops._autograd import _fp8_gemm_grads

    with FakeTensorMode():
        a = torch.empty(5, 64, dtype=torch.float16, device="cuda")
        b = torch.empty(40, 64, dtype=torch.float8_e4m3fn, device="cuda")
        b_scale = torch.empty(_native.scale_shape(granularity, 40, 64), device="cuda")
        grad = torch.empty(5, 40, dtype=torch.float16, device="cuda")
        da, db = _fp8_gemm_grads(a, b, None, b_scale, granularity, backward, grad, (True, True))
        assert da.shape == a.shape and da.dtype == torch.float16
        assert db.shape == b.shape and db.dtype == torch.float16
        assert (
            _fp8_gemm_grads(a, b, None, b_scale, granularity, backward, grad, (False, True))[0]
            is None
        )


@pytest.mark.parametrize("backward", ["e5m2", "dense"])
def test_fp8_gemm_train_op_has_an_autograd_formula(backward: str) -> None:
    # Through the custom op (fake tensors: no GPU needed), gradients reach a, b and the bias,
    # each in its own dtype and shape; a pre-quantized operand (FP8Linear's weight) takes none.
    from torch._subclasses.fake_tensor import FakeTensorMode

    device = "cpu"

    from fusedops import torch_ops  # noqa: F401  (registers the ops)

    with FakeTensorMode():
        a = torch.randn(5, 64, dtype=torch.bfloat16, device=device, requires_grad=True)
        b = torch.randn(40, 64, dtype=torch.bfloat16, device=device, requires_grad=True)
        bias = torch.zeros(40, dtype=torch.float32, device=device, requires_grad=True)
        out = torch.ops.fusedops.fp8_gemm_train(
            a, b, None, None, bias, "row", torch.bfloat16, False, backward
        )
        assert out.requires_grad and out.shape == (5, 40) and out.dtype == torch.bfloat16
        out.float().sum().backward()
        assert a.grad.shape == a.shape and a.grad.dtype == torch.bfloat16
        assert b.grad.shape == b.shape and b.grad.dtype == torch.bfloat16
        assert bias.grad.dtype == torch.float32
        qb = torch.empty(40, 64, dtype=torch.float8_e4m3fn, device=device)
        sb = torch.ones(40, dtype=torch.float32, device=device)
        a.grad = None
        out = torch.ops.fusedops.fp8_gemm_train(
            a, qb, None, sb, None, "row", torch.bfloat16, False, backward
        )
        out.float().sum().backward()
        assert a.grad.shape == a.shape and a.grad.dtype == torch.bfloat16


#: Relative error bounds of the backward's gradients against float64 (the straight-through
#: estimator): bf16 GEMMs ("dense"), or FP8 ones with the gradient in e5m2 (the default: its
#: 2 mantissa bits dominate; see test_fp8_linear.GRAD_BOUNDS).
FP8_BACKWARD_BOUNDS = {"dense": 1e-2, "e5m2": 0.12}


@needs_gpu
def test_fp8_linear_trains_its_input_and_bias(gen) -> None:
    # FP8Linear called with gradients on (its bias is a Parameter): the FP8 weight takes no
    # gradient; the input's is dOut · dequantized W (FP8 GEMMs, the default backward), the
    # bias's the sum of dOut.
    lin = torch.nn.Linear(208, 136).cuda().bfloat16()
    m = fusedops.FP8Linear.from_linear(lin)
    x = rand((2, 3, 208), torch.bfloat16, gen).requires_grad_()
    out = m(x)
    assert out.requires_grad and m.weight_fp8.grad is None
    dout = rand(out.shape, torch.bfloat16, gen)
    out.backward(dout)
    w = fusedops.dequantize_fp8(m.weight_fp8, m.weight_scale, granularity="row").double()
    want_x = dout.double() @ w
    assert float((x.grad.double() - want_x).norm() / want_x.norm()) < FP8_BACKWARD_BOUNDS["e5m2"]
    want_bias = dout.double().sum((0, 1))
    assert float((m.bias.grad.double() - want_bias).norm() / want_bias.norm()) < 1e-2


@needs_gpu
@pytest.mark.parametrize("backward", ["e5m2", "dense"])
@pytest.mark.parametrize("granularity", ["tensor", "row", "block128"])
def test_training_through_fp8_gemm(gen, granularity, backward) -> None:
    # Forward on the FP8 kernels (dynamic quantization), backward straight through it:
    # gradients against float64 autograd of a @ b.T + bias, M, N and K off every tile (K a
    # multiple of 16, as the FP8 kernels need).
    a = rand((3, 208), torch.bfloat16, gen).requires_grad_()
    b = rand((136, 208), torch.bfloat16, gen, 0.1).requires_grad_()
    bias = rand((136,), torch.float32, gen).requires_grad_()
    out = fusedops.fp8_gemm(a, b, granularity=granularity, bias=bias, backward=backward)
    ref = a.double() @ b.double().T + bias.double()
    assert float((out.double() - ref).norm() / ref.norm()) < 5e-2  # e4m3 quantization
    dout = rand(out.shape, torch.bfloat16, gen)
    out.backward(dout)
    a64, b64, bias64 = (t.detach().double().requires_grad_() for t in (a, b, bias))
    (a64 @ b64.T + bias64).backward(dout.double())
    for t, want in ((a, a64), (b, b64), (bias, bias64)):
        assert t.grad.dtype == t.dtype
        bound = 1e-2 if t is bias else FP8_BACKWARD_BOUNDS[backward]
        assert float((t.grad.double() - want.grad).norm() / want.grad.norm()) < bound


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_training_through_the_fused_gated_mlp(gen, dtype) -> None:
    # Forward on the GPU kernel, backward through its formula: gradients against float64
    # autograd of the same inputs, M, N and K off every tile (K a multiple of 8, as the
    # kernels' 16-byte copies need).
    x = rand((3, 104), dtype, gen).requires_grad_()
    wg = rand((200, 104), dtype, gen, 0.1).requires_grad_()
    wu = rand((200, 104), dtype, gen, 0.1).requires_grad_()
    out = fusedops.fused_gated_mlp(x, wg, wu, activation="silu")
    dh = rand(out.shape, dtype, gen)
    out.backward(dh)
    x64, wg64, wu64 = (t.detach().double().requires_grad_() for t in (x, wg, wu))
    h = torch.nn.functional.silu(x64 @ wg64.T) * (x64 @ wu64.T)
    h.backward(dh.double())
    bound = 2e-2 if dtype == torch.bfloat16 else 4e-3
    for t, ref in ((x, x64), (wg, wg64), (wu, wu64)):
        assert t.grad.dtype == dtype
        assert float((t.grad.double() - ref.grad).norm() / ref.grad.norm()) < bound


@pytest.mark.parametrize("style", ["neox", "gptj"])
@pytest.mark.parametrize("fraction", [1.0, 0.5])
@pytest.mark.parametrize("with_positions", [False, True])
def test_rmsnorm_rope_backward_function_is_the_kernels(style, fraction, with_positions) -> None:
    # The backward differentiates a PyTorch recomputation: it must compute what the kernel
    # computes (the float64 reference states it), and differentiate correctly (gradcheck).
    import numpy as np

    from fusedops import reference, torch_ops

    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 64, generator=g, dtype=torch.float64)
    w = torch.randn(64, generator=g, dtype=torch.float64)
    rot = int(32 * fraction)
    c = torch.randn(9, rot, generator=g, dtype=torch.float64)
    s = torch.randn(9, rot, generator=g, dtype=torch.float64)
    p = torch.randint(0, 9, (2, 5), generator=g) if with_positions else None
    args = (p, 32, 1e-6, style, fraction)
    got = torch_ops._rmsnorm_rope_torch(x, w, c, s, *args)
    want = reference.rmsnorm_rope(
        x.numpy(),
        w.numpy(),
        c.numpy(),
        s.numpy(),
        eps=1e-6,
        head_dim=32,
        rope_style=style,
        rotary_fraction=fraction,
        positions=None if p is None else p.numpy(),
    )
    assert np.abs(got.numpy() - want).max() < 1e-12
    leaves = [t.clone().requires_grad_() for t in (x[:, :3, :], w, c, s)]
    small = (None if p is None else p[:, :3], *args[1:])
    assert torch.autograd.gradcheck(
        lambda *t: torch_ops._rmsnorm_rope_torch(*t, *small), leaves, eps=1e-6, atol=1e-6
    )


def test_rmsnorm_rope_op_has_an_autograd_formula() -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    from fusedops import torch_ops  # noqa: F401  (registers the ops)

    with FakeTensorMode():
        x = torch.randn(2, 4, 256, dtype=torch.bfloat16, requires_grad=True)
        w = torch.randn(256, dtype=torch.bfloat16, requires_grad=True)
        c, s = torch.randn(8, 128), torch.randn(8, 128)
        out = torch.ops.fusedops.rmsnorm_rope(x, w, c, s, None, 128, 1e-6, "neox", 1.0)
        out.sum().backward()
        assert x.grad.shape == x.shape and x.grad.dtype == torch.bfloat16
        assert w.grad.shape == w.shape and c.grad is None


@needs_gpu
def test_training_through_the_fused_rmsnorm_rope(gen) -> None:
    from fusedops import torch_ops

    x = rand((2, 7, 256), torch.bfloat16, gen).requires_grad_()
    w = (1 + 0.1 * rand((256,), torch.bfloat16, gen)).requires_grad_()
    c, s = rope_tables(16, 128, "neox")
    out = fusedops.fused_rmsnorm_rope(x, w, c, s, eps=1e-6, head_dim=128)
    dy = rand(out.shape, torch.bfloat16, gen)
    out.backward(dy)
    x64, w64 = (t.detach().double().requires_grad_() for t in (x, w))
    ref = torch_ops._rmsnorm_rope_torch(
        x64, w64, c.double(), s.double(), None, 128, 1e-6, "neox", 1.0
    )
    ref.backward(dy.double())
    for t, r in ((x, x64), (w, w64)):
        assert t.grad.dtype == torch.bfloat16
        assert float((t.grad.double() - r.grad).norm() / r.grad.norm()) < 2e-2
