"""The PyTorch API on every GPU of the machine (issue 12).

A call runs on its tensors' GPU, whatever the current device is, on PyTorch's current stream
there, and leaves the current device alone; tensors of one call on two devices get a typed
error naming both. One compiled module serves every GPU of a chip (the runtime loads it into
each device's context on first use); kernels and call tables are kept per device.

The whole suite also runs on another GPU with ``--device cuda:1`` (conftest.py). Tests that
need two GPUs skip, saying so, on a machine with one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import fusedops  # noqa: E402
from fusedops import _launch, torch_ops  # noqa: E402
from fusedops.errors import DeviceError  # noqa: E402

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
needs_gpu = pytest.mark.skipif(GPUS < 1, reason="needs a CUDA GPU")
needs_two = pytest.mark.skipif(GPUS < 2, reason=f"needs two GPUs; this machine has {GPUS}")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _env() -> dict[str, str]:
    """This process's environment, with the fusedops being tested importable."""
    package = str(Path(fusedops.__file__).resolve().parents[1])
    return dict(os.environ, PYTHONPATH=os.pathsep.join([package, os.environ.get("PYTHONPATH", "")]))


def _inputs(device: torch.device) -> dict[str, torch.Tensor]:
    """The same values on every device (drawn on the CPU)."""
    gen = torch.Generator().manual_seed(12)

    def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * scale).to(device)

    angles = torch.outer(torch.arange(64.0), torch.rand(32, generator=gen))
    return {
        "x": rand(2, 64, 512).bfloat16(),
        "w": (1 + 0.1 * rand(512)).bfloat16(),
        "cos": torch.cat([angles.cos()] * 2, -1).to(device),
        "sin": torch.cat([angles.sin()] * 2, -1).to(device),
        "gate": rand(384, 512, scale=0.05).bfloat16(),
        "up": rand(384, 512, scale=0.05).bfloat16(),
        "a": rand(96, 512).bfloat16(),
        "b": rand(256, 512).bfloat16(),
    }


def _every_op(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    q, s = fusedops.quantize_fp8(t["a"], granularity="row")
    return {
        "rmsnorm_rope": fusedops.fused_rmsnorm_rope(t["x"], t["w"], t["cos"], t["sin"]),
        "gated_mlp": fusedops.fused_gated_mlp(t["x"], t["gate"], t["up"]),
        "fp8_gemm": fusedops.fp8_gemm(t["a"], t["b"]),
        "quantize": q,
        "dequantize": fusedops.dequantize_fp8(q, s, granularity="row"),
    }


@needs_gpu
@pytest.mark.parametrize("index", range(max(GPUS, 1)))
def test_every_op_runs_on_its_tensors_gpu(index: int) -> None:
    # From device 0 (the usual current device in a process that uses several GPUs), each op
    # runs on the tensors' GPU, its outputs are there, and device 0 stays current. The results
    # are the same bits on every GPU (the same chip runs the same kernels).
    device = torch.device("cuda", index)
    with torch.cuda.device(0):
        out = _every_op(_inputs(device))
        again = _every_op(_inputs(device))  # the call tables' path
        assert torch.cuda.current_device() == 0
    here = _every_op(_inputs(torch.device("cuda", 0)))
    for name, value in out.items():
        assert value.device == device, name
        torch.testing.assert_close(value.cpu(), again[name].cpu(), rtol=0, atol=0)
        if torch.cuda.get_device_capability(index) == torch.cuda.get_device_capability(0):
            torch.testing.assert_close(value.cpu(), here[name].cpu(), rtol=0, atol=0)


@needs_two
def test_tensors_on_two_gpus_get_an_error_naming_both() -> None:
    t0, t1 = _inputs(torch.device("cuda", 0)), _inputs(torch.device("cuda", 1))
    with pytest.raises(DeviceError, match=r"weight is on cuda:1 but x is on cuda:0"):
        fusedops.fused_rmsnorm_rope(t0["x"], t1["w"], t0["cos"], t0["sin"])
    with pytest.raises(DeviceError, match=r"up_weight is on cuda:1 but x is on cuda:0"):
        fusedops.fused_gated_mlp(t0["x"], t0["gate"], t1["up"])
    with pytest.raises(DeviceError, match=r"b is on cuda:0 but a is on cuda:1"):
        fusedops.fp8_gemm(t1["a"], t0["b"])
    q, s = fusedops.quantize_fp8(t0["a"])
    with pytest.raises(DeviceError, match=r"scale is on cuda:1 but q is on cuda:0"):
        fusedops.dequantize_fp8(q, s.to("cuda:1"))
    # After the same call succeeded on one GPU (its signature is in the call table), a call
    # mixing devices still gets the error, not a launch.
    fusedops.fused_gated_mlp(t0["x"], t0["gate"], t0["up"])
    with pytest.raises(DeviceError, match=r"gate_weight is on cuda:1"):
        fusedops.fused_gated_mlp(t0["x"], t1["gate"], t0["up"])


@needs_two
def test_the_same_signature_on_two_gpus_keeps_one_entry_per_gpu(monkeypatch) -> None:
    # Layers of one shape on two GPUs (device_map placement) alternate without recompiling or
    # dropping to the checked path: one kernel and one call-table entry per device, one
    # compiled module for both.
    monkeypatch.setattr(_launch, "PROMOTE_AFTER_S", 0.0)  # steady at the third call
    torch_ops._forget_kernels()
    t0, t1 = _inputs(torch.device("cuda", 0)), _inputs(torch.device("cuda", 1))
    for _ in range(3):
        a = fusedops.fused_gated_mlp(t0["x"], t0["gate"], t0["up"])
        b = fusedops.fused_gated_mlp(t1["x"], t1["gate"], t1["up"])
    assert a.device.index == 0 and b.device.index == 1
    torch.testing.assert_close(a.cpu(), b.cpu(), rtol=0, atol=0)
    kernels = [k for key, k in torch_ops._kernels.items() if key[1] == "gated_mlp"]
    assert sorted(k.device for k in kernels) == [0, 1]
    assert kernels[0].module is kernels[1].module
    assert len(torch_ops._tables["gated_mlp"]) == 2


@needs_two
def test_streams_and_graphs_of_another_gpu() -> None:
    # On GPU 1 under its own side stream: the launch is ordered on that stream. Then a CUDA
    # graph captured on GPU 1 replays the fused ops on what its tensors hold then.
    device = torch.device("cuda", 1)
    t = _inputs(device)
    expected = fusedops.fused_gated_mlp(t["x"], t["gate"], t["up"])
    side = torch.cuda.Stream(device)
    with torch.cuda.stream(side):
        x = t["x"] * 1  # written on the side stream
        out = fusedops.fused_gated_mlp(x, t["gate"], t["up"])
    side.synchronize()
    torch.testing.assert_close(out, expected, rtol=0, atol=0)

    with torch.cuda.device(device):
        static_x = t["x"].clone()
        fusedops.fused_gated_mlp(static_x, t["gate"], t["up"])  # compiled before the capture
        fusedops.fused_rmsnorm_rope(static_x, t["w"], t["cos"], t["sin"])
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        # A stream of this GPU: torch.cuda.graph's default capture stream is made once per
        # process, on the device current then, and would stay on GPU 1 for later tests.
        with torch.cuda.graph(graph, stream=torch.cuda.Stream(device)):
            mlp = fusedops.fused_gated_mlp(static_x, t["gate"], t["up"])
            rope = fusedops.fused_rmsnorm_rope(static_x, t["w"], t["cos"], t["sin"])
        fresh = _inputs(device)["x"] * 0.5
        static_x.copy_(fresh)
        graph.replay()
        torch.cuda.synchronize()
    torch.testing.assert_close(
        mlp, fusedops.fused_gated_mlp(fresh, t["gate"], t["up"]), rtol=0, atol=0
    )
    torch.testing.assert_close(
        rope, fusedops.fused_rmsnorm_rope(fresh, t["w"], t["cos"], t["sin"]), rtol=0, atol=0
    )


@needs_two
def test_threads_launch_on_their_own_gpus() -> None:
    # Fresh threads (no CUDA context current on them) each run on their own GPU.
    results: dict[int, torch.Tensor] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            t = _inputs(torch.device("cuda", index))
            for _ in range(5):
                results[index] = fusedops.fused_gated_mlp(t["x"], t["gate"], t["up"])
            torch.cuda.synchronize(index)
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1, 1, 0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    torch.testing.assert_close(results[0].cpu(), results[1].cpu(), rtol=0, atol=0)


@needs_two
def test_a_model_placed_on_two_gpus() -> None:
    # device_map-style placement in one process: the first half of the layers on cuda:0, the
    # rest on cuda:1, activations moved between them; every layer a fused MLP, every other one
    # with an FP8Linear down projection (quantized when it reaches its GPU). The result is the
    # one the same model gives on one GPU.
    import copy

    from fusedops.nn import FusedMLP

    torch.manual_seed(3)
    layers = [FusedMLP(256, 512, fp8_down=i % 2 == 1, dtype=torch.bfloat16) for i in range(4)]
    on_one = [copy.deepcopy(layer).to("cuda:0") for layer in layers]
    on_two = [layer.to(f"cuda:{i // 2}") for i, layer in enumerate(layers)]
    x = torch.randn(3, 17, 256, dtype=torch.bfloat16)
    with torch.no_grad():
        one, two = x.to("cuda:0"), x
        for a, b in zip(on_one, on_two):
            one = a(one)
            two = b(two.to(b.gated.gate_weight.device))
    assert two.device == torch.device("cuda", 1)
    assert torch.isfinite(one).all()
    torch.testing.assert_close(two.cpu(), one.cpu())


@needs_two
def test_only_the_tensors_gpu_gets_a_context() -> None:
    # A process that uses only cuda:1 must not create a context (hundreds of MB) on cuda:0: the
    # compile, the module loads and the launches all happen in cuda:1's context.
    code = """
import ctypes, torch, fusedops
cuda = ctypes.CDLL("libcuda.so.1")
def active(i):
    flags, on = ctypes.c_uint(), ctypes.c_int()
    assert cuda.cuDevicePrimaryCtxGetState(i, ctypes.byref(flags), ctypes.byref(on)) == 0
    return on.value
x = torch.randn(4, 64, 256, device="cuda:1", dtype=torch.bfloat16)
w = torch.randn(384, 256, device="cuda:1", dtype=torch.bfloat16) * 0.05
before = active(0)
out = fusedops.fused_gated_mlp(x, w, w)
out = fusedops.fused_gated_mlp(x, w, w)
torch.cuda.synchronize(1)
print(before, active(0), active(1), out.device)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env())
    assert done.returncode == 0, done.stderr
    before, after, used, device = done.stdout.split()
    assert (after, used, device) == (before, "1", "cuda:1"), done.stdout


@needs_two
def test_tensor_parallel_example_under_torchrun(tmp_path: Path) -> None:
    # examples/tensor_parallel.py: a LLaMA-style block in Megatron layout on two GPUs with NCCL,
    # checked against the same block on one GPU.
    report = tmp_path / "tp.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            str(EXAMPLES / "tensor_parallel.py"),
            "--tokens",
            "512",
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "matches the one-GPU block" in done.stdout, done.stdout
