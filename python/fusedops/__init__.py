"""fusedops: an MLIR-based compiler for fused Transformer kernels (Python side).

This package currently provides the float64 reference implementations of the dialect's operations
(:mod:`fusedops.reference`) against which compiled GPU kernels are tested, built on the bit-exact
FP8 helpers in :mod:`fusedops.fp8`. It deliberately imports nothing beyond NumPy, so the references
can be used on machines without a GPU or PyTorch.
"""

from __future__ import annotations

from . import reference

__version__ = "0.1.0"

__all__ = ["__version__", "reference"]
