"""Loads fusedops' C libraries with ctypes and wraps the in-process compiler.

Two shared libraries make up the native side:

* ``libFusedOpsRuntime.so`` (``fusedops-c/Runtime.h``): the CUDA driver wrapper that compiled host
  code calls to load and launch kernels. Loaded with ``RTLD_GLOBAL`` first: the JIT-compiled host
  code finds its ``mgpu*`` functions among the process's symbols.
* ``libFusedOpsCAPI.so`` (``fusedops-c/Compiler.h``): parses MLIR, runs ``fusedops-to-binary`` and
  JIT-compiles the host code, in this process. Loaded with ``RTLD_LOCAL``: its LLVM and MLIR must
  not take the place of another LLVM in the process (Triton's, which torch.compile imports, crashed
  on import after a global load).

They are searched in ``$FUSEDOPS_LIBRARY_DIR``, then ``build/lib`` of the source tree this package
sits in (a checkout), then the package's own ``_lib`` folder (an installed wheel). ctypes works on
every CPython 3.9+, so no extension module has to be built per Python version.

Beside them may sit ``_fastcall.abi3.so`` (``lib/Bindings/Python/FastCall.c``), an optional
extension on CPython's limited API (one binary for 3.9+) that runs a cached PyTorch call's checks,
allocations and launch in one call (:func:`fastcall`); without it, or with ``FUSEDOPS_FASTCALL=0``,
the package does the same steps in Python.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.util
import json
import os
import stat
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from .errors import ArgumentError, CompilationError, LibraryNotFoundError, RuntimeLaunchError

__all__ = [
    "CompiledModule",
    "LaunchPlan",
    "cache_dir",
    "cache_key",
    "compile_module",
    "compiler_version",
    "library_dir",
    "runtime",
    "tuning_cache_path",
]

_RUNTIME = "libFusedOpsRuntime.so"
_CAPI = "libFusedOpsCAPI.so"
_FASTCALL = "_fastcall.abi3.so"
# The extension's interface version (FastCall.c's INTERFACE): a file from another build, whose
# Launcher takes other arguments, is refused (the Python path runs) instead of failing each call.
FASTCALL_INTERFACE = 3
_lock = threading.Lock()
_libs: Optional[tuple[ctypes.CDLL, ctypes.CDLL]] = None


def _candidate_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("FUSEDOPS_LIBRARY_DIR")
    if env:
        dirs.append(Path(env))
    here = Path(__file__).resolve().parent
    # A source checkout's own build first: fresher than the copy in _lib.
    dirs.append(here.parent.parent / "build" / "lib")
    dirs.append(here / "_lib")
    return dirs


def library_dir() -> Path:
    """The folder the native libraries are loaded from; raises if none holds both."""
    tried = _candidate_dirs()
    for d in tried:
        if (d / _RUNTIME).is_file() and (d / _CAPI).is_file():
            return d
    where = ", ".join(str(d) for d in tried)
    raise LibraryNotFoundError(
        f"cannot find {_RUNTIME} and {_CAPI} (looked in {where}); build them with "
        "`utils/build.sh` from the repository root, or set FUSEDOPS_LIBRARY_DIR to the folder "
        "that holds them"
    )


def _load() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    global _libs
    if _libs is not None:
        return _libs
    with _lock:
        if _libs is not None:
            return _libs
        d = library_dir()
        try:
            rt = ctypes.CDLL(str(d / _RUNTIME), mode=ctypes.RTLD_GLOBAL)
            capi = ctypes.CDLL(str(d / _CAPI), mode=ctypes.RTLD_LOCAL)
        except OSError as e:
            raise LibraryNotFoundError(
                f"cannot load the fusedops libraries from {d}: {e}; libFusedOpsCAPI.so needs "
                "libMLIR.so.22.1 and libLLVM.so.22.1 (Debian: apt-get install libmlir-22-dev, "
                "or put them on LD_LIBRARY_PATH)"
            ) from e
        c_char_p, c_void_p, c_size_t = ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t
        capi.fusedopsCompilerVersion.restype = c_char_p
        capi.fusedopsCompilerVersion.argtypes = []
        capi.fusedopsCompilerGetLastError.restype = c_char_p
        capi.fusedopsCompilerGetLastError.argtypes = []
        capi.fusedopsKnownChips.restype = c_char_p
        capi.fusedopsKnownChips.argtypes = []
        capi.fusedopsChipForComputeCapability.restype = c_char_p
        capi.fusedopsChipForComputeCapability.argtypes = [ctypes.c_int, ctypes.c_int]
        capi.fusedopsToolkitPath.restype = c_char_p
        capi.fusedopsToolkitPath.argtypes = [c_char_p]
        capi.fusedopsPtxasPath.restype = c_char_p
        capi.fusedopsPtxasPath.argtypes = [c_char_p]
        capi.fusedopsChipJitFormat.restype = c_char_p
        capi.fusedopsChipJitFormat.argtypes = [c_char_p]
        capi.fusedopsScaleShape.restype = ctypes.c_int
        capi.fusedopsScaleShape.argtypes = [
            c_char_p,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.POINTER(ctypes.c_int64),
            ctypes.POINTER(ctypes.c_int),
        ]
        capi.fusedopsQuantizeTransposedRows.restype = ctypes.c_int64
        capi.fusedopsQuantizeTransposedRows.argtypes = [ctypes.c_int64]
        # fusedopsJitCompile and fusedopsJitLower take the same compile arguments
        # (source, size, chip, format, optLevel, toolkit, tuningCache), then their outputs.
        compile_args = [c_char_p, c_size_t, c_char_p, c_char_p, ctypes.c_uint, c_char_p, c_char_p]
        capi.fusedopsJitCompile.restype = ctypes.c_int
        capi.fusedopsJitCompile.argtypes = [*compile_args, ctypes.POINTER(c_void_p)]
        capi.fusedopsJitLower.restype = ctypes.c_int
        capi.fusedopsJitLower.argtypes = [
            *compile_args,
            ctypes.POINTER(c_void_p),
            ctypes.POINTER(c_size_t),
        ]
        capi.fusedopsJitLoad.restype = ctypes.c_int
        capi.fusedopsJitLoad.argtypes = [c_char_p, c_size_t, ctypes.POINTER(c_void_p)]
        capi.fusedopsBufferFree.restype = None
        capi.fusedopsBufferFree.argtypes = [c_void_p]
        capi.fusedopsJitLookup.restype = c_void_p
        capi.fusedopsJitLookup.argtypes = [c_void_p, c_char_p]
        capi.fusedopsJitGetKernelImage.restype = c_size_t
        capi.fusedopsJitGetKernelImage.argtypes = [c_void_p, ctypes.POINTER(c_void_p)]
        capi.fusedopsTuneCandidates.restype = ctypes.c_int
        capi.fusedopsTuneCandidates.argtypes = [
            c_char_p,
            c_size_t,
            c_char_p,
            ctypes.POINTER(c_void_p),
        ]
        capi.fusedopsBuildOpSource.restype = ctypes.c_int
        capi.fusedopsBuildOpSource.argtypes = [c_char_p, ctypes.POINTER(c_void_p)]
        capi.fusedopsSetTile.restype = ctypes.c_int
        capi.fusedopsSetTile.argtypes = [c_char_p, c_size_t, c_char_p, ctypes.POINTER(c_void_p)]
        capi.fusedopsTuningCacheRecord.restype = ctypes.c_int
        capi.fusedopsTuningCacheRecord.argtypes = [
            c_char_p,
            c_char_p,
            c_size_t,
            c_char_p,
            c_char_p,
            ctypes.c_double,
            ctypes.c_int64,
            c_char_p,
            c_char_p,
            ctypes.POINTER(c_void_p),
        ]
        capi.fusedopsTuningCacheCheck.restype = ctypes.c_int
        capi.fusedopsTuningCacheCheck.argtypes = [c_char_p, ctypes.POINTER(c_void_p)]
        capi.fusedopsTuningCacheLookup.restype = ctypes.c_int
        # (path, source, size, chip, driver, tile out)
        capi.fusedopsTuningCacheLookup.argtypes = [
            c_char_p,
            c_char_p,
            c_size_t,
            c_char_p,
            c_char_p,
            ctypes.POINTER(c_void_p),
        ]
        capi.fusedopsJitGetLaunchPlan.restype = c_char_p
        capi.fusedopsJitGetLaunchPlan.argtypes = [c_void_p, c_char_p]
        capi.fusedopsJitGetLaunchPlanForSizes.restype = ctypes.c_int
        capi.fusedopsJitGetLaunchPlanForSizes.argtypes = [
            c_void_p,
            c_char_p,
            ctypes.POINTER(ctypes.c_int64),
            c_size_t,
            ctypes.POINTER(c_void_p),
        ]
        capi.fusedopsJitDestroy.restype = None
        capi.fusedopsJitDestroy.argtypes = [c_void_p]
        rt.fusedopsGetLastErrorMessage.restype = c_char_p
        rt.fusedopsGetLastErrorMessage.argtypes = []
        rt.fusedopsInit.restype = ctypes.c_int
        rt.fusedopsInit.argtypes = []
        rt.fusedopsGetDeviceArch.restype = ctypes.c_int
        rt.fusedopsGetDeviceArch.argtypes = [ctypes.POINTER(ctypes.c_int)] * 2
        rt.fusedopsSetCurrentStream.restype = None
        rt.fusedopsSetCurrentStream.argtypes = [c_void_p]
        rt.fusedopsClearCurrentStream.restype = None
        rt.fusedopsClearCurrentStream.argtypes = []
        rt.fusedopsTakeAsyncErrorCount.restype = ctypes.c_int
        rt.fusedopsTakeAsyncErrorCount.argtypes = []
        rt.fusedopsModuleLoad.restype = ctypes.c_int
        rt.fusedopsModuleLoad.argtypes = [c_char_p, c_size_t, ctypes.POINTER(c_void_p)]
        rt.fusedopsModuleUnload.restype = ctypes.c_int
        rt.fusedopsModuleUnload.argtypes = [c_void_p]
        rt.fusedopsModuleGetFunction.restype = ctypes.c_int
        rt.fusedopsModuleGetFunction.argtypes = [c_void_p, c_char_p, ctypes.POINTER(c_void_p)]
        rt.fusedopsLaunchPlanCreate.restype = ctypes.c_int
        rt.fusedopsLaunchPlanCreate.argtypes = [ctypes.POINTER(c_void_p)]
        uint3 = ctypes.c_uint32 * 3
        int64s = ctypes.POINTER(ctypes.c_int64)
        rt.fusedopsLaunchPlanAdd.restype = ctypes.c_int
        rt.fusedopsLaunchPlanAdd.argtypes = [
            c_void_p,
            c_void_p,
            uint3,
            uint3,
            ctypes.c_uint32,
            c_size_t,
            int64s,
            int64s,
        ]
        u32, u64 = ctypes.c_uint32, ctypes.c_uint64
        rt.fusedopsLaunchPlanSetTensorMap.restype = ctypes.c_int
        rt.fusedopsLaunchPlanSetTensorMap.argtypes = [
            c_void_p,
            c_size_t,
            c_size_t,
            u32,
            u64,
            u64,
            u64,
            u32,
            u32,
            u32,
        ]
        rt.fusedopsLaunchPlanSetGridPerSm.restype = ctypes.c_int
        rt.fusedopsLaunchPlanSetGridPerSm.argtypes = [c_void_p, u32]
        rt.fusedopsLaunchPlanRun.restype = ctypes.c_int
        rt.fusedopsLaunchPlanRun.argtypes = [c_void_p, ctypes.POINTER(c_void_p), c_size_t, c_void_p]
        rt.fusedopsLaunchPlanRunOnDevice.restype = ctypes.c_int
        rt.fusedopsLaunchPlanRunOnDevice.argtypes = [
            c_void_p,
            ctypes.c_int,
            ctypes.POINTER(c_void_p),
            c_size_t,
            c_void_p,
        ]
        for name in ("fusedopsGetDeviceCount", "fusedopsGetDevice"):
            getattr(rt, name).restype = ctypes.c_int
            getattr(rt, name).argtypes = [ctypes.POINTER(ctypes.c_int)]
        rt.fusedopsSetDevice.restype = ctypes.c_int
        rt.fusedopsSetDevice.argtypes = [ctypes.c_int]
        rt.fusedopsLaunchPlanDestroy.restype = ctypes.c_int
        rt.fusedopsLaunchPlanDestroy.argtypes = [c_void_p]
        _libs = (rt, capi)
        return _libs


def runtime() -> ctypes.CDLL:
    """The loaded ``libFusedOpsRuntime.so``."""
    return _load()[0]


_fastcall_module: Optional[object] = None
_fastcall_loaded = False


def fastcall() -> Optional[Any]:
    """The ``fusedops._fastcall`` extension from :func:`library_dir`, or None where it was not
    built or ``FUSEDOPS_FASTCALL=0``. A file that does not load is warned about once."""
    global _fastcall_module, _fastcall_loaded
    if _fastcall_loaded:
        return _fastcall_module
    with _lock:
        if not _fastcall_loaded:
            _fastcall_module = None
            try:
                path: Optional[Path] = library_dir() / _FASTCALL
            except LibraryNotFoundError:  # the first compile says so
                path = None
            if (
                os.environ.get("FUSEDOPS_FASTCALL", "1") != "0"
                and path is not None
                and path.is_file()
            ):
                try:
                    spec = importlib.util.spec_from_file_location("fusedops._fastcall", path)
                    assert spec is not None and spec.loader is not None
                    module = importlib.util.module_from_spec(spec)
                    spec.loader.exec_module(module)
                    found = getattr(module, "INTERFACE", None)
                    if found != FASTCALL_INTERFACE:
                        raise ImportError(
                            f"its interface is {found}, this package's {FASTCALL_INTERFACE}: "
                            "it is from another build; rebuild it (utils/build.sh)"
                        )
                    _fastcall_module = module
                except (ImportError, OSError, AssertionError) as e:
                    warnings.warn(
                        f"fusedops: {path} does not load ({e}); calls take the Python path",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            _fastcall_loaded = True
    return _fastcall_module


def _forget_fastcall() -> None:
    """Look for the extension again on the next :func:`fastcall` (tests switch it)."""
    global _fastcall_module, _fastcall_loaded
    with _lock:
        _fastcall_module, _fastcall_loaded = None, False


def compiler_version() -> str:
    """fusedops C API, LLVM/MLIR and ptxas versions, e.g. ``fusedops-capi 5; llvm 22.1.8; ...``."""
    return _load()[1].fusedopsCompilerVersion().decode()


def known_chips() -> str:
    """The chips the compiler builds for, as a phrase: ``sm_80, sm_86, ... and sm_90a``."""
    return _load()[1].fusedopsKnownChips().decode()


def chip_for_capability(major: int, minor: int) -> Optional[str]:
    """The chip the compiler builds for on a card of compute capability ``major.minor``."""
    name = _load()[1].fusedopsChipForComputeCapability(major, minor)
    return name.decode() if name else None


def jit_format(chip: str) -> str:
    """``bin`` (cubin) or ``isa`` (PTX): what ``chip``'s kernels are JIT-compiled to.

    The chip table's format, except that without a ``ptxas`` (see :func:`default_toolkit`) a
    cubin becomes PTX, which the driver compiles when it loads it (and keeps in its own cache,
    ``~/.nv/ComputeCache``).
    """
    fmt = _load()[1].fusedopsChipJitFormat(chip.encode())
    if not fmt:
        raise CompilationError(f"unknown chip {chip!r}; fusedops builds for {known_chips()}")
    if fmt == b"bin" and find_ptxas() is None:
        return "isa"
    return fmt.decode()


@functools.lru_cache(maxsize=4096)
def scale_shape(granularity: str, rows: int, cols: int) -> tuple[int, ...]:
    """The shape of the scales of a ``[rows, cols]`` matrix quantized with ``granularity``:
    ``()`` (tensor), ``(rows,)`` (row), ``(ceil(rows/128), ceil(cols/128))`` (block128). The
    dialect's rule, which the ops verify, asked of the compiler (``fusedopsScaleShape``)."""
    shape = (ctypes.c_int64 * 2)()
    rank = ctypes.c_int()
    if _load()[1].fusedopsScaleShape(
        str(granularity).encode(), int(rows), int(cols), shape, ctypes.byref(rank)
    ):
        raise ArgumentError(
            f"no scales for granularity {granularity!r} of a [{rows}, {cols}] matrix: the "
            "granularity is 'tensor', 'row' or 'block128' and the sizes are not negative"
        )
    return tuple(shape[: rank.value])


def quantize_transposed_rows(rows: int) -> int:
    """M' of the transposed values ``[K, M']`` that block128 quantization also writes for
    ``rows`` rows (rounded up to a multiple of 16: a 16-byte row stride for the FP8 GEMM):
    the dialect's rule (``fusedopsQuantizeTransposedRows``)."""
    padded = _load()[1].fusedopsQuantizeTransposedRows(int(rows))
    if padded < 0:
        raise ArgumentError(f"no transposed values of {rows} rows: rows are not negative")
    return padded


def _take_string(capi: ctypes.CDLL, out: ctypes.c_void_p) -> str:
    try:
        return ctypes.string_at(out).decode()
    finally:
        capi.fusedopsBufferFree(out)


@functools.lru_cache(maxsize=4096)
def build_op_source(request: str) -> tuple[str, tuple[str, ...]]:
    """The module the PyTorch API compiles for one op call, built by the op's C++ builder
    (``fusedopsBuildOpSource``; ``request`` is its JSON) and the names of ``@kernel``'s
    arguments in order. A request the dialect refuses raises :class:`ArgumentError` with the
    compiler's reason."""
    capi = _load()[1]
    out = ctypes.c_void_p()
    if capi.fusedopsBuildOpSource(request.encode(), ctypes.byref(out)) != 0:
        raise ArgumentError(capi.fusedopsCompilerGetLastError().decode())
    reply = json.loads(_take_string(capi, out))
    return reply["source"], tuple(reply["args"])


def set_tile(source: str, tile: str) -> str:
    """``source`` (one op without a tile) with ``tile`` (``#fusedops.tile<...>`` text) on its op
    (``fusedopsSetTile``): one candidate of the tuner."""
    capi = _load()[1]
    data = source.encode()
    out = ctypes.c_void_p()
    if capi.fusedopsSetTile(data, len(data), tile.encode(), ctypes.byref(out)) != 0:
        raise ArgumentError(capi.fusedopsCompilerGetLastError().decode())
    return _take_string(capi, out)


_LIBDEVICE = os.path.join("nvvm", "libdevice", "libdevice.10.bc")


def _system_toolkit() -> str:
    """The toolkit the compiler uses when none is given ($CUDA_HOME, else /usr/local/cuda)."""
    return _load()[1].fusedopsToolkitPath(None).decode()


def _package_dir(name: str) -> Optional[str]:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def default_toolkit() -> Optional[str]:
    """The CUDA toolkit the compiler uses when none is given: ``None`` (the compiler's own
    choice, ``$CUDA_HOME`` or /usr/local/cuda) where that has libdevice; else the
    ``nvidia-cuda-nvcc`` wheel's; else a folder in the kernel cache that links Triton's bundled
    ptxas and libdevice (PyTorch installs Triton), so that a machine with only the driver and
    PyTorch from pip compiles too. ``None`` where none of them exists (the compiler then says
    what to install)."""
    if os.path.isfile(os.path.join(_system_toolkit(), _LIBDEVICE)):
        return None
    nvcc = _package_dir("nvidia.cuda_nvcc")
    if nvcc and os.path.isfile(os.path.join(nvcc, _LIBDEVICE)):
        return nvcc
    triton = _package_dir("triton")
    if not triton:
        return None
    nvidia = os.path.join(triton, "backends", "nvidia")
    libdevice = os.path.join(nvidia, "lib", "libdevice.10.bc")
    if not os.path.isfile(libdevice):
        return None
    base = cache_dir() or Path(tempfile.gettempdir()) / f"fusedops-{os.getuid()}"
    shim = base / "toolkit" / hashlib.sha256(nvidia.encode()).hexdigest()[:16]
    links = {shim / _LIBDEVICE: libdevice}
    ptxas = os.path.join(nvidia, "bin", "ptxas")
    if os.access(ptxas, os.X_OK):
        links[shim / "bin" / "ptxas"] = ptxas
    for link, target in links.items():
        if link.is_symlink() and os.readlink(link) == target:
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.{os.getpid()}")
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, link)
    return str(shim)


def find_ptxas() -> Optional[str]:
    """The ``ptxas`` cubins are assembled with: the toolkit's (:func:`default_toolkit`), else
    the one on ``PATH``; ``None`` where there is none, or where ``FUSEDOPS_NO_PTXAS=1`` asks
    for PTX that the driver compiles (to compare first-call times, or to avoid a broken
    ptxas)."""
    if os.environ.get("FUSEDOPS_NO_PTXAS", "").lower() in ("1", "true", "yes"):
        return None
    toolkit = default_toolkit()
    path = _load()[1].fusedopsPtxasPath(toolkit.encode() if toolkit else None).decode()
    return path or None


class CompiledModule:
    """A module compiled and JIT-linked in this process; owns the native handle."""

    def __init__(self, handle: int, capi: ctypes.CDLL, source: str) -> None:
        self._handle: Optional[int] = handle
        self._capi = capi
        self.source = source
        # The kernels' image loaded by the runtime, for the launch plans (loaded into each
        # device's context on first use there): one per module, shared by its plans.
        self._runtime_module: Optional[int] = None
        self._lock = threading.Lock()

    def runtime_module(self) -> int:
        """The kernels' image loaded with the runtime (``fusedops_module``), once; the launch
        plans of every shape and device share it. Valid while this module lives."""
        with self._lock:
            if self._runtime_module is None:
                image = self.kernel_image
                handle = ctypes.c_void_p()
                check_runtime(
                    runtime().fusedopsModuleLoad(image, len(image), ctypes.byref(handle)),
                    "loading the kernels' image",
                )
                self._runtime_module = handle.value
            return self._runtime_module

    def function(self, name: str) -> int:
        """Address of ``_mlir_ciface_<name>``; raises if the module has no such function."""
        if self._handle is None:
            raise CompilationError("the module was released")
        address = self._capi.fusedopsJitLookup(self._handle, name.encode())
        if not address:
            raise CompilationError(self._capi.fusedopsCompilerGetLastError().decode())
        return int(address)

    @property
    def kernel_image(self) -> bytes:
        """The kernels as embedded in the host code: PTX text or cubin bytes."""
        if self._handle is None:
            return b""
        data = ctypes.c_void_p()
        size = self._capi.fusedopsJitGetKernelImage(self._handle, ctypes.byref(data))
        return ctypes.string_at(data, size) if size else b""

    def launch_plan(self, name: str, sizes: Optional[Sequence[int]] = None) -> Optional[dict]:
        """The launch plan of host function ``name`` (see :class:`LaunchPlan`), or None if its
        host code does more than launch kernels on its arguments.

        A function with dynamic sizes has a plan marked ``"dynamic"`` whose values depend on
        its arguments' sizes: with ``sizes`` (every memref argument's sizes, in argument order)
        this is its form for arguments of those sizes, which :class:`LaunchPlan` takes."""
        if self._handle is None:
            raise CompilationError("the module was released")
        text = self._capi.fusedopsJitGetLaunchPlan(self._handle, name.encode())
        if not text:
            return None
        plan = json.loads(text)
        if sizes is None or not plan.get("dynamic"):
            return plan
        values = (ctypes.c_int64 * len(sizes))(*sizes)
        out = ctypes.c_void_p()
        status = self._capi.fusedopsJitGetLaunchPlanForSizes(
            self._handle, name.encode(), values, len(sizes), ctypes.byref(out)
        )
        if status != 0:
            raise CompilationError(self._capi.fusedopsCompilerGetLastError().decode())
        return json.loads(_take_string(self._capi, out))

    def close(self) -> None:
        if self._runtime_module is not None:
            runtime().fusedopsModuleUnload(self._runtime_module)
            self._runtime_module = None
        if self._handle is not None:
            self._capi.fusedopsJitDestroy(self._handle)
            self._handle = None

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order varies
        try:
            self.close()
        except Exception:
            pass


class LaunchPlan:
    """Launches a host function's kernels directly: one ``cuLaunchKernel`` per kernel.

    Built from the plan that the ``fusedops-launch-plan`` pass wrote on a function that only
    launches kernels on its arguments (:meth:`CompiledModule.launch_plan`). Running it takes the
    arguments' data pointers in the function's argument order and a stream, and skips the
    JIT-compiled host code and its runtime calls. Launches the kernels of the module's runtime
    image (:meth:`CompiledModule.runtime_module`), which it keeps alive. A plan marked
    ``"dynamic"`` must first be evaluated for its arguments' sizes
    (:meth:`CompiledModule.launch_plan` with ``sizes``).
    """

    def __init__(self, module: CompiledModule, plan: dict) -> None:
        if plan.get("dynamic") or any("exprs" in launch for launch in plan["launches"]):
            raise ArgumentError(
                "this launch plan depends on its arguments' sizes: take it from "
                "CompiledModule.launch_plan(name, sizes)"
            )
        rt = runtime()
        self._rt = rt
        self._owner = module
        self._plan: Optional[int] = None
        self._module = module.runtime_module()
        plan_handle = ctypes.c_void_p()
        check_runtime(rt.fusedopsLaunchPlanCreate(ctypes.byref(plan_handle)), "creating a plan")
        self._plan = plan_handle.value
        self.num_buffers = 0
        for launch in plan["launches"]:
            function = ctypes.c_void_p()
            kernel = launch["kernel"]
            check_runtime(
                rt.fusedopsModuleGetFunction(self._module, kernel.encode(), ctypes.byref(function)),
                f"finding kernel {kernel}",
            )
            params, args = launch["params"], launch["param_args"]
            n = len(params)
            check_runtime(
                rt.fusedopsLaunchPlanAdd(
                    self._plan,
                    function,
                    (ctypes.c_uint32 * 3)(*launch["grid"]),
                    (ctypes.c_uint32 * 3)(*launch["block"]),
                    launch["shared_memory"],
                    n,
                    (ctypes.c_int64 * n)(*params),
                    (ctypes.c_int64 * n)(*args),
                ),
                f"planning the launch of {kernel}",
            )
            # TMA tensor maps (sm_90a GEMMs), encoded by each run for its buffers.
            for m in launch.get("tensor_maps", []):
                check_runtime(
                    rt.fusedopsLaunchPlanSetTensorMap(
                        self._plan,
                        m["param"],
                        m["arg"],
                        m["element_bytes"],
                        m["rows"],
                        m["cols"],
                        m["row_stride_bytes"],
                        m["box_rows"],
                        m["box_cols"],
                        m["swizzle_bytes"],
                    ),
                    f"planning the tensor maps of {kernel}",
                )
                self.num_buffers = max(self.num_buffers, m["arg"] + 1)
            if launch.get("grid_per_sm", 0):  # persistent: grid capped at the device's SMs
                check_runtime(
                    rt.fusedopsLaunchPlanSetGridPerSm(self._plan, launch["grid_per_sm"]),
                    f"planning the grid of {kernel}",
                )
            self.num_buffers = max([self.num_buffers, *(a + 1 for a in args)])
        self.launches = len(plan["launches"])

    @staticmethod
    def run_address() -> int:
        """The address of ``fusedopsLaunchPlanRunOnDevice`` (for :func:`fastcall`'s launchers)."""
        address = ctypes.cast(runtime().fusedopsLaunchPlanRunOnDevice, ctypes.c_void_p).value
        assert address
        return address

    @property
    def handle(self) -> int:
        """The native ``fusedops_launch_plan`` (valid while this object lives)."""
        if self._plan is None:
            raise RuntimeLaunchError("the launch plan was closed")
        return self._plan

    def raise_failure(self, status: int) -> None:
        """Raise the error of a failed ``fusedopsLaunchPlanRunOnDevice`` (status and message)."""
        raise RuntimeLaunchError(
            f"launching a fusedops kernel failed (status {status}): "
            f"{self._rt.fusedopsGetLastErrorMessage().decode()}"
        )

    def run(self, buffers: ctypes.Array, stream: int, device: int = -1) -> None:
        """Launch on ``stream`` of GPU ``device`` (-1: the current context's) with ``buffers``
        (a ``c_void_p`` array of that device's data pointers)."""
        if self._rt.fusedopsLaunchPlanRunOnDevice(
            self._plan, device, buffers, len(buffers), stream
        ):
            raise RuntimeLaunchError(
                f"launching a fusedops kernel failed: "
                f"{self._rt.fusedopsGetLastErrorMessage().decode()}"
            )

    def close(self) -> None:
        if self._plan is not None:
            self._rt.fusedopsLaunchPlanDestroy(self._plan)
            self._plan = None

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order varies
        try:
            self.close()
        except Exception:
            pass


def compile_module(
    source: str,
    *,
    chip: str,
    fmt: str = "bin",
    opt_level: int = 3,
    toolkit: Optional[str] = None,
    disk_cache: bool = True,
    tuning_cache: Optional[Path] = None,
) -> CompiledModule:
    """Compile MLIR ``source`` for ``chip`` in this process. Needs no GPU.

    With ``disk_cache`` (and the cache not disabled, see :func:`cache_dir`) the lowered module is
    looked up in, and else written to, the on-disk kernel cache, so later processes skip the
    pipeline and ptxas. Ops without a tile take the measured one from the tuning cache
    (``tuning_cache``, by default :func:`tuning_cache_path`) where it has one, else the cost
    model's.
    """
    _, capi = _load()
    if toolkit is None:
        toolkit = default_toolkit()
    tuning = usable_tuning_cache(tuning_cache if tuning_cache is not None else tuning_cache_path())
    tuning_arg = str(tuning).encode() if tuning else None
    directory = cache_dir() if disk_cache else None
    if directory is None:
        handle = ctypes.c_void_p()
        data = source.encode()
        status = capi.fusedopsJitCompile(
            data,
            len(data),
            chip.encode(),
            fmt.encode(),
            opt_level,
            toolkit.encode() if toolkit else None,
            tuning_arg,
            ctypes.byref(handle),
        )
        if status != 0 or not handle.value:
            raise CompilationError(_compile_failure(capi, chip))
        return CompiledModule(handle.value, capi, source)
    key = cache_key(
        source,
        chip=chip,
        fmt=fmt,
        opt_level=opt_level,
        toolkit=toolkit,
        tuning=_file_digest(tuning),
    )
    path = directory / f"{key}.fokc"
    lowered = _read_entry(path, key)
    if lowered is not None:
        module = _load_lowered(capi, lowered, source)
        if module is not None:
            return module
        warnings.warn(
            f"fusedops: the kernel cache entry {path} did not load; recompiling", stacklevel=3
        )
    lowered = _lower(capi, source, chip, fmt, opt_level, toolkit, tuning_arg)
    _write_entry(path, key, lowered)
    module = _load_lowered(capi, lowered, source)
    if module is None:
        raise CompilationError(
            "fusedops could not load a module it has just compiled: "
            + capi.fusedopsCompilerGetLastError().decode()
        )
    return module


# ------------------------------------------------------------------------------------------
# The on-disk kernel cache
# ------------------------------------------------------------------------------------------

#: First line of every cache entry; the second is a JSON header, the rest the payload.
CACHE_MAGIC = b"fusedops kernel cache\n"
#: Version of the entry layout; entries of another version are ignored and rewritten.
CACHE_FORMAT = 1
#: The header is one short JSON line (format, key, compiler, size, sha256): a longer one is
#: not ours, and is not parsed.
MAX_HEADER_BYTES = 4096


def cache_dir() -> Optional[Path]:
    """The kernel cache folder, or None when the cache is disabled.

    ``$FUSEDOPS_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/fusedops``, else
    ``~/.cache/fusedops``; ``FUSEDOPS_DISABLE_DISK_CACHE=1`` disables it.
    """
    if os.environ.get("FUSEDOPS_DISABLE_DISK_CACHE", "").lower() in ("1", "true", "yes"):
        return None
    env = os.environ.get("FUSEDOPS_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "fusedops"


def tuning_cache_path() -> Optional[Path]:
    """The tuning cache the compiler takes measured tiles from (``fusedops-tune`` writes it).

    ``$FUSEDOPS_TUNING_CACHE`` if set (``none`` turns tuned tiles off), else ``tuning.json``
    in ``$XDG_CACHE_HOME/fusedops`` or ``~/.cache/fusedops``.
    """
    env = os.environ.get("FUSEDOPS_TUNING_CACHE")
    if env:
        return None if env.lower() == "none" else Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "fusedops" / "tuning.json"


def usable_tuning_cache(path: Optional[Path]) -> Optional[Path]:
    """``path`` if it holds a tuning cache this compiler reads; None if there is none there, and
    None with a warning if what is there is unreadable, corrupt or of another version (it is
    then ignored, never trusted; ``fusedops-tune`` moves it aside when it next writes). The
    compiler decides (``fusedopsTuningCacheCheck``): the format is its own."""
    if path is None:
        return None
    capi = _load()[1]
    message = ctypes.c_void_p()
    status = capi.fusedopsTuningCacheCheck(str(path).encode(), ctypes.byref(message))
    if status > 0:
        return path
    if status < 0:
        try:
            text = ctypes.string_at(message).decode() if message.value else str(path)
        finally:
            capi.fusedopsBufferFree(message)
        warnings.warn(f"fusedops: {text}", RuntimeWarning, stacklevel=3)
    return None


#: The largest cache file read (kernel-cache entries, the tuning cache's digest); a bigger one is
#: not a file fusedops wrote.
MAX_CACHE_FILE_BYTES = 256 << 20


def _read_regular_file(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file (links followed) of at most
    :data:`MAX_CACHE_FILE_BYTES`: a FIFO would block, ``/dev/zero`` would never end.

    Raises FileNotFoundError where there is no file and OSError with the reason otherwise.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(f"{path} is not a regular file (a directory, FIFO or device)")
    if st.st_size > MAX_CACHE_FILE_BYTES:
        raise OSError(f"{path} has {st.st_size} bytes; at most {MAX_CACHE_FILE_BYTES} are read")
    with open(path, "rb") as f:
        return f.read(MAX_CACHE_FILE_BYTES + 1)


def _file_digest(path: Optional[Path]) -> str:
    if path is None:
        return ""
    try:
        return hashlib.sha256(_read_regular_file(path)).hexdigest()
    except OSError:
        return ""


def cache_key(
    source: str,
    *,
    chip: str,
    fmt: str,
    opt_level: int,
    toolkit: Optional[str] = None,
    tuning: str = "",
) -> str:
    """SHA-256 over everything the compiled module depends on: the op's MLIR (its shapes,
    dtypes and attributes), chip, format, optimisation level, toolkit, the compiler's, LLVM's
    and ptxas' versions, and ``tuning``, the digest of the tuning cache the tiles came from."""
    parts = [
        f"format {CACHE_FORMAT}",
        compiler_version(),
        chip,
        fmt,
        str(opt_level),
        toolkit or "",
        source,
        tuning,
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _read_entry(path: Path, key: str) -> Optional[bytes]:
    """The payload of a valid entry; None (with a warning for a bad one) otherwise."""
    try:
        blob = _read_regular_file(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        warnings.warn(f"fusedops: cannot read the kernel cache entry {path}: {e}", stacklevel=4)
        return None
    reason = None
    if not blob.startswith(CACHE_MAGIC):
        reason = "it is not a fusedops cache entry"
    else:
        header_end = blob.find(b"\n", len(CACHE_MAGIC), len(CACHE_MAGIC) + MAX_HEADER_BYTES)
        try:
            header = json.loads(blob[len(CACHE_MAGIC) : header_end]) if header_end >= 0 else None
        except (ValueError, RecursionError):  # RecursionError: a deeply nested header
            header = None
        payload = blob[header_end + 1 :] if header_end >= 0 else b""
        if not isinstance(header, dict) or header_end < 0:
            reason = "its header is unreadable"
        elif header.get("format") != CACHE_FORMAT:
            reason = f"it has format {header.get('format')!r}, this fusedops reads {CACHE_FORMAT}"
        elif header.get("key") != key or header.get("compiler") != compiler_version():
            reason = "it was written for another module or compiler version"
        elif header.get("size") != len(payload):
            size = header.get("size")
            if type(size) is int and len(payload) < size:
                reason = f"it is truncated ({len(payload)} of {size} bytes)"
            else:  # a size of another type (27604 vs "27604"), or bytes appended
                reason = f"its payload has {len(payload)} bytes where its header says {size!r}"
        elif header.get("sha256") != hashlib.sha256(payload).hexdigest():
            reason = "its checksum does not match (corrupt)"
        else:
            return payload
    warnings.warn(
        f"fusedops: ignoring the kernel cache entry {path}: {reason}; recompiling", stacklevel=4
    )
    return None


def _write_entry(path: Path, key: str, payload: bytes) -> None:
    """Writes an entry atomically (a temporary file in the same folder, then rename), so a
    concurrent reader sees the old entry or the new one, never a partial one."""
    header = {
        "format": CACHE_FORMAT,
        "key": key,
        "compiler": compiler_version(),
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    data = CACHE_MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".fokc", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        warnings.warn(
            f"fusedops: cannot write the kernel cache entry {path}: {e}; kernels will be "
            "recompiled in every process (set FUSEDOPS_CACHE_DIR to a writable folder, or "
            "FUSEDOPS_DISABLE_DISK_CACHE=1)",
            stacklevel=4,
        )
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _compile_failure(capi: ctypes.CDLL, chip: str) -> str:
    message = capi.fusedopsCompilerGetLastError().decode()
    return f"fusedops could not compile the module for {chip}:\n{message}"


def _lower(
    capi: ctypes.CDLL,
    source: str,
    chip: str,
    fmt: str,
    opt_level: int,
    toolkit: Optional[str],
    tuning: Optional[bytes],
) -> bytes:
    data = source.encode()
    out = ctypes.c_void_p()
    size = ctypes.c_size_t()
    status = capi.fusedopsJitLower(
        data,
        len(data),
        chip.encode(),
        fmt.encode(),
        opt_level,
        toolkit.encode() if toolkit else None,
        tuning,
        ctypes.byref(out),
        ctypes.byref(size),
    )
    if status != 0 or not out.value:
        raise CompilationError(_compile_failure(capi, chip))
    try:
        return ctypes.string_at(out, size.value)
    finally:
        capi.fusedopsBufferFree(out)


def _load_lowered(capi: ctypes.CDLL, lowered: bytes, source: str) -> Optional[CompiledModule]:
    handle = ctypes.c_void_p()
    if capi.fusedopsJitLoad(lowered, len(lowered), ctypes.byref(handle)) != 0 or not handle.value:
        return None
    return CompiledModule(handle.value, capi, source)


def check_runtime(status: int, what: str) -> None:
    """Raise :class:`RuntimeLaunchError` with the runtime's message if ``status`` is an error."""
    if status != 0:
        message = runtime().fusedopsGetLastErrorMessage().decode()
        raise RuntimeLaunchError(f"{what} failed: {message}")
