"""Loads fusedops' C libraries with ctypes and wraps the in-process compiler.

Two shared libraries make up the native side:

* ``libFusedOpsRuntime.so`` (``fusedops-c/Runtime.h``): the CUDA driver wrapper that compiled host
  code calls to load and launch kernels. Loaded with ``RTLD_GLOBAL`` first.
* ``libFusedOpsCAPI.so`` (``fusedops-c/Compiler.h``): parses MLIR, runs ``fusedops-to-binary`` and
  JIT-compiles the host code, in this process.

They are searched in ``$FUSEDOPS_LIBRARY_DIR``, then the package's own ``_lib`` folder (a wheel),
then ``build/lib`` of the source tree this package sits in. ctypes works on every CPython 3.9+, so
no extension module has to be built per Python version.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path
from typing import Optional

from .errors import CompilationError, LibraryNotFoundError, RuntimeLaunchError

__all__ = ["CompiledModule", "compile_module", "compiler_version", "library_dir", "runtime"]

_RUNTIME = "libFusedOpsRuntime.so"
_CAPI = "libFusedOpsCAPI.so"
_lock = threading.Lock()
_libs: Optional[tuple[ctypes.CDLL, ctypes.CDLL]] = None


def _candidate_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("FUSEDOPS_LIBRARY_DIR")
    if env:
        dirs.append(Path(env))
    here = Path(__file__).resolve().parent
    dirs.append(here / "_lib")
    dirs.append(here.parent.parent / "build" / "lib")
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
            capi = ctypes.CDLL(str(d / _CAPI), mode=ctypes.RTLD_GLOBAL)
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
        capi.fusedopsJitCompile.restype = ctypes.c_int
        capi.fusedopsJitCompile.argtypes = [
            c_char_p,
            c_size_t,
            c_char_p,
            c_char_p,
            ctypes.c_uint,
            c_char_p,
            ctypes.POINTER(c_void_p),
        ]
        capi.fusedopsJitLookup.restype = c_void_p
        capi.fusedopsJitLookup.argtypes = [c_void_p, c_char_p]
        capi.fusedopsJitGetKernelImage.restype = c_size_t
        capi.fusedopsJitGetKernelImage.argtypes = [c_void_p, ctypes.POINTER(c_void_p)]
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
        _libs = (rt, capi)
        return _libs


def runtime() -> ctypes.CDLL:
    """The loaded ``libFusedOpsRuntime.so``."""
    return _load()[0]


def compiler_version() -> str:
    """fusedops C API, LLVM/MLIR and ptxas versions, e.g. ``fusedops-capi 1; llvm 22.1.8; ...``."""
    return _load()[1].fusedopsCompilerVersion().decode()


class CompiledModule:
    """A module compiled and JIT-linked in this process; owns the native handle."""

    def __init__(self, handle: int, capi: ctypes.CDLL, source: str) -> None:
        self._handle: Optional[int] = handle
        self._capi = capi
        self.source = source

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

    def close(self) -> None:
        if self._handle is not None:
            self._capi.fusedopsJitDestroy(self._handle)
            self._handle = None

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
) -> CompiledModule:
    """Compile MLIR ``source`` for ``chip`` in this process. Needs no GPU."""
    _, capi = _load()
    handle = ctypes.c_void_p()
    data = source.encode()
    status = capi.fusedopsJitCompile(
        data,
        len(data),
        chip.encode(),
        fmt.encode(),
        opt_level,
        toolkit.encode() if toolkit else None,
        ctypes.byref(handle),
    )
    if status != 0 or not handle.value:
        message = capi.fusedopsCompilerGetLastError().decode()
        raise CompilationError(f"fusedops could not compile the module for {chip}:\n{message}")
    return CompiledModule(handle.value, capi, source)


def check_runtime(status: int, what: str) -> None:
    """Raise :class:`RuntimeLaunchError` with the runtime's message if ``status`` is an error."""
    if status != 0:
        message = runtime().fusedopsGetLastErrorMessage().decode()
        raise RuntimeLaunchError(f"{what} failed: {message}")
