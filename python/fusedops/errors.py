"""Exception hierarchy for fusedops.

Every error raised on purpose by this package derives from :class:`FusedOpsError`, so callers can
catch one type. Each subclass also derives from the matching built-in exception (``ValueError`` or
``TypeError``) so code written against plain NumPy conventions keeps working. Messages are meant
to be actionable: they state what was received and what to change.
"""

from __future__ import annotations

__all__ = [
    "ArgumentError",
    "CompilationError",
    "DTypeError",
    "DeviceError",
    "FusedOpsError",
    "LibraryNotFoundError",
    "RuntimeLaunchError",
    "ShapeError",
]


class FusedOpsError(Exception):
    """Base class of all errors raised deliberately by fusedops."""


class ShapeError(FusedOpsError, ValueError):
    """An array has the wrong rank or shape, or shapes of several arguments do not agree."""


class DTypeError(FusedOpsError, TypeError):
    """An array's dtype is not accepted (e.g. integers passed where floats are required)."""


class ArgumentError(FusedOpsError, ValueError):
    """A non-shape argument is out of range or not one of the allowed choices.

    Examples: an unknown ``rope_style``, a negative ``eps``, a position index past the end of the
    rotary tables, or a non-positive quantization scale.
    """


class LibraryNotFoundError(FusedOpsError, ImportError):
    """The native libraries (libFusedOpsRuntime.so, libFusedOpsCAPI.so) cannot be loaded."""


class CompilationError(FusedOpsError, RuntimeError):
    """The compiler rejected a module; the message holds its diagnostics."""


class DeviceError(FusedOpsError, RuntimeError):
    """No usable GPU or driver, or a tensor is on the wrong device."""


class RuntimeLaunchError(FusedOpsError, RuntimeError):
    """A kernel could not be loaded or launched, or failed on the GPU."""
