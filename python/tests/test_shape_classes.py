"""One compile per row-count class, not per shape (issue 11).

The rows of every op (the product of its input's sizes but the last: batch × sequence) are
dynamic in the compiled kernels: one kernel per class of row counts (up to 16, 64, 256, 1024,
4096, ... rows: powers of 4), tuned for the class's largest, serves every row count of the class;
each new shape only evaluates the kernel's launch plan for its sizes. So a generate loop over
lengths 1 ... 4096 compiles each op 5 times. A shape still called a second after its first call
(3 calls at least: a steady shape, a training step, a decode step, a benchmark, not the layers of
one forward pass) then gets a kernel compiled for it, a few percent faster (``auto``, the
default); ``FUSEDOPS_SHAPES=classes`` keeps the class kernels, ``exact`` compiles
per shape from the first call.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the PyTorch API needs PyTorch")

import fusedops  # noqa: E402
from fusedops import _launch, _native, torch_ops  # noqa: E402

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

#: Row counts of a generate loop that runs every length: all of 1 ... 70, the class edges up to
#: 4096 and a few between (the lengths in between take the same kernels as their neighbours).
LENGTHS = [*range(1, 71), 255, 256, 257, 700, 1023, 1024, 1025, 3000, 4095, 4096]


class _FakeKernel:
    def __init__(self, exact: bool, created: float) -> None:
        self.exact, self.created, self.calls = exact, created, 1
        self.runs = 0
        self.kernels = (self,)

    def run_checked(self, tensors):
        self.runs += 1
        return ["out"]


class _FakeOpEntry:  # an op's entry over several kernels, as fp8_gemm's quantize + GEMM
    def __init__(self, *kernels) -> None:
        self.kernels = kernels

    def run_checked(self, tensors):
        return [k.run_checked(tensors)[0] for k in self.kernels]


def test_a_class_entry_runs_its_kernels_until_they_are_steady(monkeypatch) -> None:
    # No GPU needed: the table entry of class kernels counts every class kernel of the call and
    # gives way (None: the checked path, which compiles exact kernels) only once all are
    # steady: PROMOTE_AT_CALL calls, the first PROMOTE_AFTER_S ago. Exact parts are not counted.
    import time

    monkeypatch.setattr(_launch, "PROMOTE_AFTER_S", 10.0)
    now = time.monotonic()
    old, new, exact = _FakeKernel(False, now - 20), _FakeKernel(False, now), _FakeKernel(True, 0)
    entry = _launch._ClassEntry(_FakeOpEntry(old, new, exact))
    assert entry.kernels == (old, new)
    for _ in range(5):  # `new` is not 10 s old: the class kernels keep running
        assert entry(("x",)) == ["out", "out", "out"]
    assert old.calls == new.calls == 6 and exact.calls == 1
    new.created = now - 20
    assert entry(("x",)) is None  # steady: the checked path takes this call and counts it
    assert old.calls == new.calls == 6 and old.runs == 5
    single = _launch._ClassEntry(_FakeKernel(False, now))
    assert single(("x",)) == ["out"] and single.kernels[0].calls == 2


def test_row_classes_are_powers_of_four_from_16(monkeypatch) -> None:
    assert [_launch._rows_class(m) for m in (1, 16, 17, 64, 65, 256, 257, 4096, 4097)] == [
        16,
        16,
        64,
        64,
        256,
        256,
        1024,
        4096,
        16384,
    ]
    assert len({_launch._rows_class(m) for m in range(1, 4097)}) == 5
    monkeypatch.setenv("FUSEDOPS_SHAPES", "exact")
    assert _launch._rows_class(37) is None
    monkeypatch.setenv("FUSEDOPS_SHAPES", "static")
    with pytest.raises(fusedops.errors.FusedOpsError, match="auto, classes, exact"):
        _launch._rows_class(37)


@pytest.fixture
def compiles(monkeypatch):
    """Counts the modules compiled during the test (kernel cache cleared first)."""
    torch_ops._forget_kernels()
    seen: list[str] = []
    real = _native.compile_module

    def counting(source, **kwargs):
        seen.append(source)
        return real(source, **kwargs)

    monkeypatch.setattr(_native, "compile_module", counting)
    yield seen
    torch_ops._forget_kernels()


def _ops(m: int, gen: torch.Generator) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each op on ``m`` rows, and its float64 (or exact) reference."""

    def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * scale).to("cuda")

    x = rand(1, m, 256).bfloat16()
    w = (1 + 0.1 * rand(256)).bfloat16()
    angles = torch.outer(torch.arange(4096.0), torch.rand(32, generator=gen)).cuda()
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)
    gate, up = rand(128, 256, scale=0.06).bfloat16(), rand(128, 256, scale=0.06).bfloat16()
    a, b = rand(m, 256).bfloat16(), rand(64, 256).bfloat16()

    xd = x.double()
    normed = xd * torch.rsqrt(xd.pow(2).mean(-1, keepdim=True) + 1e-6) * w.double()
    heads = normed.view(1, m, 4, 64)
    c, s = cos[:m].double().view(1, m, 1, 64), sin[:m].double().view(1, m, 1, 64)
    partner = torch.cat([-heads[..., 32:], heads[..., :32]], -1)
    rope = (heads * c + partner * s).view(1, m, 256)
    mlp = torch.nn.functional.silu(xd @ gate.double().T) * (xd @ up.double().T)

    q, scale = fusedops.quantize_fp8(a, granularity="row")
    gemm_ref = a.double() @ b.double().T
    return {
        "rmsnorm_rope": (fusedops.fused_rmsnorm_rope(x, w, cos, sin), rope),
        "gated_mlp": (fusedops.fused_gated_mlp(x, gate, up), mlp),
        "fp8_gemm": (fusedops.fp8_gemm(a, b, granularity="row"), gemm_ref),
        "dequantize": (
            fusedops.dequantize_fp8(q, scale, granularity="row", out_dtype=torch.float32),
            a.double(),
        ),
    }


def _bound(name: str) -> float:
    # Relative Frobenius error: bf16 outputs, FP8 (e4m3) operands.
    return {"rmsnorm_rope": 8e-3, "gated_mlp": 8e-3, "fp8_gemm": 8e-2, "dequantize": 4e-2}[name]


@needs_gpu
def test_a_generate_loop_compiles_each_op_once_per_class(compiles) -> None:
    gen = torch.Generator().manual_seed(11)
    for m in LENGTHS:
        for name, (got, want) in _ops(m, gen).items():
            err = float((got.double() - want).norm() / want.norm())
            assert err < _bound(name), (name, m, err)
    # rmsnorm_rope, gated_mlp, fp8_gemm (and the quantize of each of its bf16 operands: a's
    # rows vary, b's do not), quantize_fp8, dequantize_fp8: 5 classes of rows each over
    # 1 ... 4096. b's quantize (64 rows, every call) is a steady shape: its own kernel.
    per_op: dict[str, int] = {}
    exact: list[str] = []
    for source in compiles:
        op = next(
            o
            for o in ("rmsnorm_rope", "gated_mlp", "fp8_gemm", "dequantize", "quantize")
            if f"fusedops.{o} " in source
        )
        if "?x" in source:
            per_op[op] = per_op.get(op, 0) + 1
        else:
            exact.append(op)
    print("class compiles per op over", len(LENGTHS), "lengths:", per_op, "exact:", exact)
    assert per_op == {op: 5 for op in per_op} and len(per_op) == 5, per_op
    assert exact == ["quantize"], exact


@needs_gpu
def test_exact_shapes_compile_per_shape_and_agree(compiles, monkeypatch) -> None:
    # FUSEDOPS_SHAPES=exact compiles per shape (static sizes), and gives what the class kernels
    # give within the ops' error bounds.
    by_class = {m: _ops(m, torch.Generator().manual_seed(m)) for m in (3, 17, 300)}
    monkeypatch.setenv("FUSEDOPS_SHAPES", "exact")
    torch_ops._forget_kernels()
    compiles.clear()
    for m, results in by_class.items():
        exact = _ops(m, torch.Generator().manual_seed(m))
        for name, (got, want) in exact.items():
            err = float((got.double() - want).norm() / want.norm())
            assert err < _bound(name), (name, m, err)
            other = results[name][0].double()
            assert float((got.double() - other).norm() / want.norm()) < 2 * _bound(name)
    assert compiles and not any("?x" in source for source in compiles)


@needs_gpu
def test_a_steady_shape_gets_its_own_kernel_at_its_third_call(compiles, monkeypatch) -> None:
    monkeypatch.setattr(_launch, "PROMOTE_AFTER_S", 0.0)  # only the call count here
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 50, 256, generator=gen).bfloat16().cuda()
    gate = (torch.randn(128, 256, generator=gen) * 0.06).bfloat16().cuda()
    outs = []
    table = torch_ops._tables["gated_mlp"]
    for call in range(1, 6):
        outs.append(fusedops.fused_gated_mlp(x, gate, gate))
        dynamic = [source for source in compiles if "?x" in source]
        static = [source for source in compiles if "?x" not in source]
        assert len(dynamic) == 1 and len(static) == (call >= 3), call
        # The class kernel serves the first two calls from the table, then the exact kernel.
        assert len(table) == 1, call
    torch.testing.assert_close(outs[-1], outs[0], rtol=0.02, atol=1e-3)
    # The table runs the exact kernel's own launcher now (no Python in between).
    kernel = next(k for key, k in torch_ops._kernels.items() if key[1] == "gated_mlp")
    assert kernel.exact
    # FUSEDOPS_SHAPES=classes keeps the class kernel however often a shape comes.
    monkeypatch.setenv("FUSEDOPS_SHAPES", "classes")
    torch_ops._forget_kernels()
    compiles.clear()
    for _ in range(5):
        fusedops.fused_gated_mlp(x, gate, gate)
    assert len(compiles) == 1 and "?x" in compiles[0]


@needs_gpu
def test_the_calls_of_one_forward_pass_are_not_a_steady_shape(compiles, monkeypatch) -> None:
    # A prompt's length comes once per layer within one forward pass: dozens of calls within
    # milliseconds. They stay on the class kernel (no compile per prompt length in a generate
    # loop); a shape still called PROMOTE_AFTER_S after its first call gets its own kernel.
    monkeypatch.setattr(_launch, "PROMOTE_AFTER_S", 30.0)
    gen = torch.Generator().manual_seed(5)
    w = torch.randn(512, generator=gen).bfloat16().cuda()
    for rows in (57, 67, 77):
        x = torch.randn(rows, 512, generator=gen).bfloat16().cuda()
        for _layer in range(32):
            fusedops.fused_rms_norm(x, w)
    assert len(compiles) == 2 and all("?x" in source for source in compiles)  # classes 64, 256
    # Each shape's repeated calls ran the class kernel from the fast table.
    table = torch_ops._tables["rms_norm"]
    assert len(table) == 3 and all(k.calls == 32 for k in torch_ops._kernels.values())
    monkeypatch.setattr(_launch, "PROMOTE_AFTER_S", 0.0)  # as if 30 s had passed
    fusedops.fused_rms_norm(x, w)
    assert len(compiles) == 3 and "?x" not in compiles[-1]
    assert len(table) == 3
    fusedops.fused_rms_norm(x, w)  # the exact kernel's entry: no further compile
    assert len(compiles) == 3


@needs_gpu
def test_a_new_shape_of_a_compiled_class_costs_no_compile(compiles) -> None:
    # After the first call of a class, another row count of it only evaluates the plan.
    import time

    gen = torch.Generator().manual_seed(2)
    gate = torch.randn(128, 256, generator=gen).bfloat16().cuda()
    up = torch.randn(128, 256, generator=gen).bfloat16().cuda()
    x = torch.randn(300, 256, generator=gen).bfloat16().cuda()
    fusedops.fused_gated_mlp(x, gate, up)
    torch.cuda.synchronize()
    assert len(compiles) == 1
    times = []
    for m in range(257, 297):
        start = time.perf_counter()
        fusedops.fused_gated_mlp(x[:m].contiguous(), gate, up)
        times.append(time.perf_counter() - start)
    torch.cuda.synchronize()
    assert len(compiles) == 1
    print(f"first call of a new shape in a compiled class: median {sorted(times)[20] * 1e3:.2f} ms")
