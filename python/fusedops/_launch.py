"""The PyTorch API's compiled kernels: the in-memory cache, the call tables and the launch.

A kernel is compiled once per key (op, shapes, dtypes, attributes, chip, compiler and ptxas
versions) from the source its op's builder describes (:mod:`fusedops._codegen`), through the
C API (:mod:`fusedops._native`), and launched on PyTorch's current CUDA stream of its tensors'
device by replaying its launch plan. One compiled module serves every device of its chip; each
device gets its own :class:`_Kernel` (outputs allocated there, plan loaded into its context).
A plain eager call whose signature passed the full checks before is entered in its op's call
table (:data:`_tables`), which later runs it with the per-call checks only. The tuner
(:mod:`fusedops.tune`) forces tiles through :func:`_tuning`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Optional

import torch

from . import _codegen, _native
from .errors import DeviceError, FusedOpsError, RuntimeLaunchError


class _Kernel:
    """A compiled module for one signature: its ``@kernel`` entry, argument descriptors, launch
    plan and the shapes and dtypes of the outputs it writes.

    The kernel is for the call's exact shapes (its module may serve other row counts too: its
    plan is evaluated for these), so the descriptors' sizes and strides are fixed when it is
    built; a launch only passes the data pointers (through the launch plan, or written
    into the host code's descriptors under a lock, so threads can share the kernel). The
    function's arguments are the inputs, then the outputs. Wherever inputs are given, None
    stands for an absent optional tensor (e.g. ``positions``, ``bias``) and is skipped.
    """

    def __init__(
        self,
        module: _native.CompiledModule,
        inputs: Sequence[Optional[torch.Tensor]],
        outputs: Sequence[tuple[Sequence[int], torch.dtype]],
        device: int,
        exact: bool = True,
    ) -> None:
        """Built under ``torch.cuda.device(device)``: the launch plan's kernels load there.
        ``exact``: the module was compiled for these shapes (not for a class of row counts)."""
        self.module = module
        self.device = device
        self.exact = exact
        #: Lookups of this kernel (:func:`_kernel`): a class kernel asked for often enough is
        #: replaced by the kernel of its exact shapes.
        self.calls = 1
        self.created = time.monotonic()
        #: The kernels a table entry of this kernel runs (:class:`_ClassEntry`): itself.
        self.kernels = (self,)
        cuda = torch.device("cuda", device)
        inputs = [t for t in inputs if t is not None]
        self.outputs = tuple((tuple(shape), dtype) for shape, dtype in outputs)
        shapes = [(t.shape, t.stride()) for t in inputs]
        shapes += [(shape, _contiguous_strides(shape)) for shape, _ in self.outputs]
        self.descriptors = []
        for shape, strides in shapes:
            rank = len(shape)
            d = _descriptor_type(rank)()
            if rank:
                d.sizes[:] = list(shape)
                d.strides[:] = list(strides)
            self.descriptors.append(d)
        self.arguments = [ctypes.byref(d) for d in self.descriptors]
        proto = ctypes.CFUNCTYPE(None, *[ctypes.POINTER(type(d)) for d in self.descriptors])
        self.entry = proto(module.function("kernel"))
        self.lock = threading.Lock()
        # The direct path: the kernels' launches replayed with cuLaunchKernel alone.
        self.plan: Optional[_native.LaunchPlan] = None
        if os.environ.get("FUSEDOPS_LAUNCH", "plan") != "host-code":
            # A module with dynamic rows has its plan evaluated for these sizes.
            sizes = [int(size) for shape, _ in shapes for size in shape]
            description = module.launch_plan("kernel", sizes)
            if description is not None:
                try:
                    self.plan = _native.LaunchPlan(module, description)
                except FusedOpsError as e:  # a compiler bug; the host code still works
                    warnings.warn(
                        f"fusedops: launching through the JIT'd host code: {e}",
                        RuntimeWarning,
                        stacklevel=2,
                    )
        self.buffer_type = ctypes.c_void_p * len(self.descriptors)
        # How each output is allocated: with torch.empty_like and no other argument, the cheapest
        # allocation PyTorch offers from Python (a dtype argument costs ~0.15 us, empty_strided
        # ~0.4 us more, new_empty ~1 us): like an input of its shape and dtype, else like a
        # template, a one-element tensor expanded to the output's shape, which empty_like turns
        # into a contiguous tensor of that shape (overlapping memory gets contiguous strides).
        self.allocators = []
        for shape, dtype in self.outputs:
            like = next(
                (i for i, t in enumerate(inputs) if tuple(t.shape) == shape and t.dtype == dtype),
                -1,
            )
            if like >= 0:
                self.allocators.append((torch.empty_like, like, (), {}))
                continue
            template = torch.empty((1,) * len(shape), dtype=dtype, device=cuda).expand(shape)
            if torch.empty_like(template).is_contiguous():
                self.allocators.append((torch.empty_like, -1, (template,), {}))
            else:  # not what PyTorch documents for overlapping tensors; be safe
                strides = _contiguous_strides(shape)
                self.allocators.append(
                    (torch.empty_strided, -1, (shape, strides), {"dtype": dtype, "device": cuda})
                )
        self.allocators = tuple(self.allocators)
        fastcall = _native.fastcall() if self.plan is not None else None
        if fastcall is not None:
            # The same steps as run_checked below, in C: this attribute shadows the method.
            self.run_checked = fastcall.Launcher(
                _native.LaunchPlan.run_address(),
                self.plan.handle,
                self.plan,
                len(inputs),
                device,
                _PLAIN_TYPES,
                _raw_stream,
                (device,),
                self.allocators,
                self.plan.raise_failure,
                torch.is_grad_enabled,
            )

    def _allocate(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [
            make(inputs[like], **kwargs) if like >= 0 else make(*args, **kwargs)
            for make, like, args, kwargs in self.allocators
        ]

    def __call__(self, inputs: Sequence[Optional[torch.Tensor]]) -> list[torch.Tensor]:
        """Allocate the outputs and launch on ``inputs`` (checked by the caller)."""
        present = [t for t in inputs if t is not None]
        outputs = self._allocate(present)
        _launch(self, [*present, *outputs])
        return outputs

    def run_checked(self, inputs: tuple) -> Optional[Sequence[torch.Tensor]]:
        """The fast path of a signature that passed the full checks before (:data:`_tables`).

        Launches on ``inputs`` (None entries, absent optional tensors, skipped) and returns the
        outputs if every input is what that signature assumes and the call is plain eager:
        exactly a ``torch.Tensor`` or ``nn.Parameter`` on this kernel's GPU, contiguous, 16-byte
        aligned,
        not requiring grad where grad mode is on (a module's parameters under ``no_grad``).
        Otherwise returns None and launches nothing: the caller takes the full checks, which say
        what is wrong or route the call through the custom op. Where the ``_fastcall``
        extension is built, its Launcher does these steps instead.
        """
        for t in inputs:
            if t is None:
                continue
            if (
                not _is_plain(t)
                or t.get_device() != self.device  # -1 on the CPU
                or not t.is_contiguous()
                or t.data_ptr() & 15
            ):
                return None
        return self(inputs)


_Tensor = torch.Tensor
# What a plain eager call's tensors are: a module's weights are nn.Parameters.
_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)


def _is_plain(t: torch.Tensor) -> bool:
    """Whether ``t`` needs neither a subclass's dispatch nor autograd: exactly a tensor or a
    parameter, not requiring grad where grad mode is on (``_fastcall`` checks the same)."""
    return type(t) in _PLAIN_TYPES and not (t.requires_grad and torch.is_grad_enabled())


def _contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    strides = []
    step = 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


_descriptor_cache: dict[int, type] = {}


def _descriptor_type(rank: int) -> type:
    """ctypes struct of a ranked memref descriptor (allocated, aligned, offset, sizes, strides)."""
    if rank not in _descriptor_cache:
        fields: list[tuple[str, Any]] = [
            ("allocated", ctypes.c_void_p),
            ("aligned", ctypes.c_void_p),
            ("offset", ctypes.c_int64),
        ]
        if rank:
            fields += [("sizes", ctypes.c_int64 * rank), ("strides", ctypes.c_int64 * rank)]
        _descriptor_cache[rank] = type(f"MemRef{rank}D", (ctypes.Structure,), {"_fields_": fields})
    return _descriptor_cache[rank]


_kernels: dict[tuple, _Kernel] = {}
_kernels_lock = threading.Lock()


class _CallTable:
    """An operator's calls that passed the full checks, by signature: what
    ``fusedops._fastcall.Table`` does, in Python, where the extension is not built.

    Key: the call's non-tensor arguments, the device of its first tensor, then each tensor's shape
    and dtype (None, None for an absent optional tensor). Value: what runs such a call
    (``_Kernel.run_checked``), given the tensors. Calling the table returns that entry's
    outputs, or None where there is no entry or an argument needs the full checks (not exactly
    a ``torch.Tensor`` or ``nn.Parameter``, unhashable).
    """

    def __init__(self) -> None:
        self.entries: dict[tuple, Callable[[tuple], Any]] = {}

    @staticmethod
    def _key(tensors: tuple, statics: tuple) -> Optional[tuple]:
        key = [*statics, None]
        for t in tensors:
            if t is None:
                key += (None, None)
            elif type(t) not in _PLAIN_TYPES:
                return None
            else:
                if key[len(statics)] is None:
                    key[len(statics)] = t.get_device()
                key += (t.shape, t.dtype)
        return tuple(key)

    def __call__(self, tensors: tuple, statics: tuple) -> Any:
        key = self._key(tensors, statics)
        try:
            entry = None if key is None else self.entries.get(key)
        except TypeError:  # unhashable
            return None
        return None if entry is None else entry(tensors)

    def add(self, tensors: tuple, statics: tuple, entry: Callable[[tuple], Any]) -> None:
        key = self._key(tensors, statics)
        if key is None:
            raise TypeError("a table's tensors must be exact tensors or None")
        self.entries[key] = entry

    def clear(self) -> None:
        self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)


_OPS = (
    "rmsnorm_rope",
    "rms_norm",
    "add_rms_norm",
    "gated_mlp",
    "quantize",
    "dequantize",
    "fp8_gemm",
)


def _new_tables() -> dict[str, Any]:
    fastcall = _native.fastcall()
    return {op: fastcall.Table(_PLAIN_TYPES) if fastcall else _CallTable() for op in _OPS}


#: Per operator, the plain eager calls that passed the full checks, by signature, with what runs
#: them (:class:`_CallTable`, or the ``_fastcall`` extension's Table). A later call with the same
#: signature only needs the per-call checks of :meth:`_Kernel.run_checked`. Under the tuner's
#: override (:func:`_tuning`) the tables hold the override's kernels, and are emptied when it
#: begins and ends.
_tables: dict[str, Any] = _new_tables()


#: Whether a lookup in :func:`_kernel` counts as a call of its kernel (not while
#: :func:`_remember` looks up the kernel of the call that just ran).
_counting = True


class _ClassEntry:
    """The table entry of a shape served by class kernels (``auto`` mode): runs ``entry`` (a
    :class:`_Kernel`, or an op's entry over several: its ``kernels``) and counts the calls of
    its class kernels, until the shape is steady (each called PROMOTE_AT_CALL times, the first
    PROMOTE_AFTER_S ago); then it returns None once, so that the call takes the checked path,
    whose :func:`_kernel` compiles the shape's own kernels and :func:`_remember` enters them in
    this entry's place. It holds the kernels only (not the call's tensors)."""

    __slots__ = ("entry", "kernels")

    def __init__(self, entry: Any) -> None:
        self.entry = entry
        self.kernels = tuple(k for k in entry.kernels if not k.exact)

    def __call__(self, tensors: tuple) -> Optional[Sequence[torch.Tensor]]:
        now = time.monotonic()
        for kernel in self.kernels:
            kernel.calls += 1
        if all(_is_steady(kernel, now) for kernel in self.kernels):
            for kernel in self.kernels:
                kernel.calls -= 1  # _kernel counts this call
            return None
        return self.entry.run_checked(tensors)


def _remember(op: str, tensors: tuple, statics: tuple, entry: Callable[[], Any]) -> None:
    """Enter ``entry()`` (the call's compiled kernel, a cache hit) in ``op``'s table.

    In ``auto`` mode a class kernel enters as a :class:`_ClassEntry`, which gives way to the
    shape's own kernel once the shape is steady. Under the tuner's override (:func:`_tuning`)
    the override's kernel enters, until the override ends."""
    global _counting
    _counting = False
    try:
        kernel = entry()
    finally:
        _counting = True
    run = kernel.run_checked
    if not kernel.exact and _shape_mode() == "auto" and _override is None:
        run = _ClassEntry(kernel)
    try:
        _tables[op].add(tensors, statics, run)
    except TypeError:  # unhashable arguments: such calls always take the checks
        pass


def _forget_kernels(keep_modules: bool = False) -> None:
    """Drop every compiled kernel of this process (the next calls compile or load them again),
    e.g. after the tuning cache, ``FUSEDOPS_LAUNCH`` or ``FUSEDOPS_FASTCALL`` changed. With
    ``keep_modules`` the compiled modules stay (the next calls only rebuild their kernels and
    plans: after ``FUSEDOPS_SHAPES`` changed)."""
    with _kernels_lock:
        _tables.clear()
        _tables.update(_new_tables())
        _kernels.clear()
        if not keep_modules:
            _modules.clear()


def _chip_for(device: int) -> str:
    forced = os.environ.get("FUSEDOPS_CHIP")
    if forced:
        return forced
    major, minor = torch.cuda.get_device_capability(device)
    chip = _native.chip_for_capability(major, minor)
    if chip is None:
        raise DeviceError(
            f"fusedops compiles for {_native.known_chips()}; cuda:{device} is "
            f"sm_{major}{minor}; set FUSEDOPS_CHIP to one of those to try the nearest one"
        )
    return chip


_targets: dict[int, tuple[str, str]] = {}


def _target(device: int) -> tuple[str, str]:
    """(chip, compiler version) for GPU ``device`` (its ordinal), looked up once per device."""
    target = _targets.get(device)
    if target is None:
        target = (_chip_for(device), _native.compiler_version())
        _targets[device] = target
    return target


class _TuningOverride:
    """The tuner's hold on kernel selection (:mod:`fusedops.tune`): a forced tile for the
    kernels built while it is set, and the sources of the kernels calls use (the class kernels'
    unless ``exact``), each recorded at its first call: building a source at every call made
    the timed calls of short kernels host-bound (an FP8 GEMM at 4096³ pinned to the default's
    tile timed 0.17 instead of 0.11 ms on an H200, docs/perf/gemm-engine.md v11). Its calls
    also take the fast path (:data:`_tables`) after their first: through the full checks
    every time, FP8 decode kernels of 25 µs timed at 35-80 µs (v12)."""

    def __init__(self) -> None:
        self.tile: Optional[str] = None
        self.exact = False
        self.sources: list[str] = []
        self.seen: set[tuple] = set()


_override: Optional[_TuningOverride] = None


@contextlib.contextmanager
def _tuning(tile: Optional[str] = None, exact: bool = False) -> Iterator[_TuningOverride]:
    """Within the block, kernels are built with ``tile`` (if given; a candidate the tuner
    measures), for the exact shapes with ``exact``, and the source of each kernel the calls use
    is recorded once. Not thread-safe: for the tuner."""
    global _override
    for table in _tables.values():
        table.clear()  # calls must reach _kernel, which applies the override
    saved, _override = _override, _TuningOverride()
    _override.tile = tile
    _override.exact = exact
    try:
        yield _override
    finally:
        _override = saved
        for table in _tables.values():
            table.clear()  # the override's kernels leave with it


#: The compiled modules by (chip, compiler version, source): shared by the devices of a chip and,
#: for a module with dynamic rows, by every row count of its class.
_modules: dict[tuple, _native.CompiledModule] = {}


_SHAPE_MODES = ("auto", "classes", "exact")

#: In ``auto`` mode, a shape (one exact signature: shapes, dtypes, attributes, device) compiles
#: its own kernel in place of its class's at a call that is at least its PROMOTE_AT_CALL-th and
#: comes at least PROMOTE_AFTER_S seconds after its first: a shape still called then is a
#: steady shape (a training step, a benchmark, a decode step), which the exact kernel serves a
#: few percent faster (docs/perf/shape-classes.md). The calls of one forward pass (a prompt
#: length, once per layer of the model: dozens of calls within milliseconds) are not steady,
#: and a generate loop's growing or varying lengths never cost a compile of their own.
PROMOTE_AT_CALL = 3
PROMOTE_AFTER_S = 1.0


def _is_steady(kernel: _Kernel, now: float) -> bool:
    """Whether ``kernel``'s shape is steady: called PROMOTE_AT_CALL times, the first at least
    PROMOTE_AFTER_S before ``now``."""
    return kernel.calls >= PROMOTE_AT_CALL and now - kernel.created >= PROMOTE_AFTER_S


def _shape_mode() -> str:
    """``FUSEDOPS_SHAPES``: ``auto`` (default: kernels per row-count class, and per exact shape
    for steady shapes: PROMOTE_AT_CALL, PROMOTE_AFTER_S), ``classes`` (per class only) or
    ``exact`` (per exact shape, as before classes)."""
    mode = os.environ.get("FUSEDOPS_SHAPES", "auto")
    if mode not in _SHAPE_MODES:
        raise FusedOpsError(
            f"FUSEDOPS_SHAPES must be one of {', '.join(_SHAPE_MODES)}; got {mode!r}"
        )
    return mode


def _rows_class(rows: int) -> Optional[int]:
    """The largest row count of ``rows``' class (16, 64, 256, ..., powers of 4): one kernel with
    dynamic rows, tuned for that count (``fusedops.rows_hint``), serves the class. None where
    ``FUSEDOPS_SHAPES=exact`` asks for a kernel per exact shape."""
    if _shape_mode() == "exact":
        return None
    bound = 16
    while bound < rows:
        bound *= 4
    return bound


def _kernel(
    op: str,
    key: tuple,
    build: Callable[[Optional[int]], tuple[str, list[str]]],
    inputs: Sequence[Optional[torch.Tensor]],
    outputs: Sequence[tuple[Sequence[int], torch.dtype]],
    *,
    rows: Optional[int],
) -> _Kernel:
    """The kernel of ``op`` for ``key`` (the call's exact shapes, dtypes and attributes) on the
    GPU of ``inputs`` (all on one device: :func:`_check_tensor`). Its function takes ``inputs``
    (Nones skipped) and then ``outputs`` (shape, dtype; contiguous) as arguments.

    ``build(rows_hint)`` gives the source: with the rows (``rows``, the product of the row
    sizes; None for an op without row dimensions, compiled for its exact shapes) dynamic and
    ``rows_hint`` their class's bound (:func:`_rows_class`), or static for None. The compiled
    module is shared by the calls whose sources agree (every row count of a class, every device
    of a chip); the kernel, its plan evaluated for the exact sizes, is per exact key and device.
    """
    device = next(t for t in inputs if t is not None).get_device()
    chip, version = _targets.get(device) or _target(device)
    hint = None if rows is None else _rows_class(rows)
    if _override is not None:
        hint = None if _override.exact else hint
        override = _override
        if (device, op, key, hint) not in override.seen:
            override.seen.add((device, op, key, hint))
            override.sources.append(build(hint)[0])
        if override.tile is not None:
            key = (*key, override.tile)
            untiled = build

            def build(hint: Optional[int]) -> tuple[str, list[str]]:
                source, names = untiled(hint)
                return _codegen.with_tile(source, override.tile), names

    full_key = (device, op, chip, version, *key)
    kernel = _kernels.get(full_key)
    if kernel is not None:
        if kernel.exact or _override is not None:
            return kernel
        kernel.calls += _counting
        if not _is_steady(kernel, time.monotonic()) or _shape_mode() != "auto":
            return kernel
        hint = None  # a steady shape: its own kernel replaces the class's below
    with _kernels_lock:
        kernel = _kernels.get(full_key)
        if kernel is None or (hint is None and not kernel.exact):
            source, _ = build(hint)
            module_key = (chip, version, source)
            # Under the device's guard: the host code's constructors and the launch plan load
            # the kernels into this device's context (and no other device gets a context).
            with torch.cuda.device(device):
                module = _modules.get(module_key)
                rt = _native.runtime()
                _native.check_runtime(rt.fusedopsInit(), "initialising the CUDA driver")
                rt.fusedopsTakeAsyncErrorCount()
                if module is None:
                    # The chip table's format: PTX for the Ampere chips lets the driver
                    # compile it for any later card.
                    fmt = _native.jit_format(chip)
                    module = _native.compile_module(source, chip=chip, fmt=fmt)
                kernel = _Kernel(module, inputs, outputs, device, exact=hint is None)
                if rt.fusedopsTakeAsyncErrorCount():
                    raise RuntimeLaunchError(
                        f"loading the {op} kernels failed: "
                        f"{rt.fusedopsGetLastErrorMessage().decode()}"
                    )
            _modules[module_key] = module
            _kernels[full_key] = kernel
    return kernel


try:
    _raw_stream = torch._C._cuda_getCurrentRawStream  # no Stream object per call
except AttributeError:  # pragma: no cover - older PyTorch

    def _raw_stream(index: int) -> int:
        return torch.cuda.current_stream(index).cuda_stream


def _launch(kernel: _Kernel, tensors: Sequence[torch.Tensor]) -> None:
    """Launch ``kernel`` on ``tensors`` (on its device) on PyTorch's current stream there."""
    plan = kernel.plan
    device = kernel.device
    if plan is not None:  # the pointers in a fresh array: no lock, runs may overlap
        pointers = kernel.buffer_type(*[t.data_ptr() for t in tensors])
        plan.run(pointers, _raw_stream(device), device)
        return
    rt = _native.runtime()
    # The host code launches in the current context: the device's, under its guard.
    with kernel.lock, torch.cuda.device(device):
        for d, t in zip(kernel.descriptors, tensors):
            d.allocated = d.aligned = t.data_ptr()
        rt.fusedopsSetCurrentStream(_raw_stream(device))
        try:
            kernel.entry(*kernel.arguments)
        finally:
            rt.fusedopsClearCurrentStream()
    if rt.fusedopsTakeAsyncErrorCount():
        raise RuntimeLaunchError(
            f"launching a fusedops kernel failed: {rt.fusedopsGetLastErrorMessage().decode()}"
        )
