"""What the pieces of a cached fusedops call cost on this host: one line per primitive.

Run on a GPU machine: ``python3 utils/host-costs.py [calls]`` (with the package importable).
Each line is the best of 7 rounds of ``calls`` back-to-back calls, in microseconds per call,
less the empty loop's cost; each round takes every case in turn, so a slow spell of the machine
hits all of them. docs/perf/python-api.md quotes it when deciding what a call does.
"""

import ctypes
import sys
import threading
import time

import torch
import torch.nn.functional as F

import fusedops
import fusedops.nn
from fusedops import _native, torch_ops

calls = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
x = torch.randn(1, 16, 1024, device="cuda", dtype=torch.bfloat16)
w = torch.ones(1024, device="cuda", dtype=torch.bfloat16)
cos, sin = (t.cuda() for t in fusedops.nn.rope_tables(16, 128, 10000.0, "neox"))
dev = x.device


def rmsnorm_rope():
    return fusedops.fused_rmsnorm_rope(x, w, cos, sin, eps=1e-6, head_dim=128)


rmsnorm_rope()
rmsnorm_rope()
(kernel,) = [k for k in torch_ops._kernels.values() if k.plan is not None][:1]
plan, buffers = kernel.plan, kernel.buffer_type()
rt = _native.runtime()
pydll = ctypes.PyDLL(rt._name)
stream = torch._C._cuda_getCurrentRawStream(0)
lock = threading.Lock()
ptrs = [t.data_ptr() for t in (x, w, cos, sin, x)]
array5 = ctypes.c_void_p * 5
signature_parts = (x, w, cos, sin)


def timed(fn):
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    us = (time.perf_counter() - start) / calls * 1e6
    torch.cuda.synchronize()
    return us


def launch_locked():
    with lock:
        for i, p in enumerate(ptrs):
            buffers[i] = p
        plan.run(buffers, stream)


cases = {
    "empty lambda": lambda: None,
    "x.shape": lambda: x.shape,
    "x.dtype": lambda: x.dtype,
    "type(x) is torch.Tensor": lambda: type(x) is torch.Tensor,
    "x.requires_grad": lambda: x.requires_grad,
    "x.get_device()": lambda: x.get_device(),
    "x.is_contiguous()": lambda: x.is_contiguous(),
    "x.data_ptr()": lambda: x.data_ptr(),
    "torch.compiler.is_compiling()": torch.compiler.is_compiling,
    "torch._C._cuda_getCurrentRawStream(0)": lambda: torch._C._cuda_getCurrentRawStream(0),
    "signature tuple (14 items) + dict.get": lambda: {}.get(
        (
            "rmsnorm_rope",
            x.shape,
            x.dtype,
            w.shape,
            w.dtype,
            cos.shape,
            cos.dtype,
            sin.shape,
            sin.dtype,
            None,
            1e-6,
            128,
            "neox",
            1.0,
        )
    ),
    "with lock: pass": lambda: lock.__enter__() and lock.__exit__(None, None, None),
    "torch.empty_like(x)": lambda: torch.empty_like(x),
    "x.new_empty(shape, dtype=)": lambda: x.new_empty((1, 16, 1024), dtype=torch.bfloat16),
    "torch.empty(shape, dtype=, device=)": lambda: torch.empty(
        (1, 16, 1024), dtype=torch.bfloat16, device=dev
    ),
    "torch.empty(shape, dtype=, device=0)": lambda: torch.empty(
        (1, 16, 1024), dtype=torch.bfloat16, device=0
    ),
    "x.new_empty(shape)": lambda: x.new_empty((1, 16, 1024)),
    "torch.empty_like(x, dtype=fp8)": lambda: torch.empty_like(x, dtype=torch.float8_e4m3fn),
    "torch.empty_strided(shape, strides, dtype=, device=)": lambda: torch.empty_strided(
        (1, 16, 1024), (16384, 1024, 1), dtype=torch.bfloat16, device=dev
    ),
    "ctypes array of 5 pointers": lambda: array5(*ptrs),
    "5 buffer stores": lambda: [buffers.__setitem__(i, p) for i, p in enumerate(ptrs)],
    "ctypes call, no work (CDLL)": rt.fusedopsTakeAsyncErrorCount,
    "ctypes call, no work (PyDLL)": pydll.fusedopsTakeAsyncErrorCount,
    "plan.run (ctypes + cuLaunchKernel)": lambda: plan.run(buffers, stream),
    "lock + stores + plan.run": launch_locked,
    "array of 5 + plan.run": lambda: plan.run(array5(*ptrs), stream),
    "kernel.run_checked (checks, alloc, launch)": lambda: kernel.run_checked(signature_parts),
    "_Kernel.run_checked in Python": lambda: torch_ops._Kernel.run_checked(kernel, signature_parts),
    "fusedops.fused_rmsnorm_rope": rmsnorm_rope,
    "torch.add (eager)": lambda: torch.add(x, x),
    "F.rms_norm (eager)": lambda: F.rms_norm(x, (1024,), w, 1e-6),
}
is_compiling = torch.compiler.is_compiling
table = torch_ops._tables["rmsnorm_rope"]


def body_inline():
    # fused_rmsnorm_rope's fast path, written out: what the public function adds to the table.
    if not is_compiling():
        return table((x, w, cos, sin, None), (1e-6, 128, "neox", 1.0))[0]


cases["table call (signature, lookup, launch)"] = body_inline

# The launcher's parts: the same launcher on an empty plan (no cuLaunchKernel) and with an
# allocator that returns an input (no allocation).
extension = _native.fastcall()
if extension is not None:
    empty_plan = ctypes.c_void_p()
    rt.fusedopsLaunchPlanCreate(ctypes.byref(empty_plan))

    def launcher(plan_handle, allocate):
        return extension.Launcher(
            _native.LaunchPlan.run_address(),
            plan_handle,
            None,
            4,
            torch.Tensor,
            torch._C._cuda_getCurrentRawStream,
            (0,),
            ((allocate, 0, (), {}),),
            plan.raise_failure,
        )

    identity = launcher(empty_plan.value, lambda t: t)
    allocating = launcher(empty_plan.value, torch.empty_like)
    cases["launcher: checks + stream + empty plan"] = lambda: identity(signature_parts)
    cases["launcher: ... + empty_like"] = lambda: allocating(signature_parts)
    cases["launcher: ... + empty_like + cuLaunchKernel"] = lambda: kernel.run_checked(
        signature_parts
    )
    buffers0 = (ctypes.c_void_p * 1)()
    cases["ctypes fusedopsLaunchPlanRun, empty plan"] = lambda: rt.fusedopsLaunchPlanRun(
        empty_plan, buffers0, 1, stream
    )
x0 = x[0]
cases["fusedops.quantize_fp8 (row)"] = lambda: fusedops.quantize_fp8(x0, granularity="row")
cases["x.to(float8_e4m3fn) (eager)"] = lambda: x0.to(torch.float8_e4m3fn)
fusedops.quantize_fp8(x0, granularity="row")
fusedops.quantize_fp8(x0, granularity="row")
print(
    f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, Python {sys.version.split()[0]}"
)
print(f"# run_checked: {type(kernel.run_checked).__name__}")
launches = kernel.module.launch_plan("kernel")["launches"]
print(f"# the rmsnorm_rope kernel takes {len(launches[0]['params'])} parameters")
print(f"# us per call: best of 7 rounds of {calls} calls, rounds interleaving the cases;")
print("# the empty lambda's cost subtracted from the others")
best = {name: float("inf") for name in cases}
for _ in range(7):
    for name, fn in cases.items():
        best[name] = min(best[name], timed(fn))
base = best.pop("empty lambda")
print(f"{'(empty lambda call)':50s} {base:7.3f}")
for name, us in best.items():
    print(f"{name:50s} {us - base:7.3f}")
