"""fusedops: an MLIR-based compiler for fused Transformer kernels (Python side).

* :mod:`fusedops.reference` and :mod:`fusedops.fp8`: float64 reference implementations and
  bit-exact FP8 helpers; they import nothing beyond NumPy.
* With PyTorch installed, the PyTorch API: the functions :func:`fused_rmsnorm_rope`,
  :func:`fused_gated_mlp`, :func:`fp8_gemm`, :func:`quantize_fp8`, :func:`dequantize_fp8` and the
  modules :class:`FusedRMSNormRoPE`, :class:`FusedGatedMLP` (the gated product),
  :class:`FusedMLP` (with the down projection), :class:`FP8Linear` and
  :class:`FP8TrainingLinear` (its 16-bit master weight trained on FP8 GEMMs), which compile
  fusedops ops in this process (through ``libFusedOpsCAPI.so``) and launch them on the current
  CUDA stream. They are imported lazily, on first use, so ``import fusedops`` needs no PyTorch.
"""

from __future__ import annotations

from typing import Any

from . import errors

__version__ = "0.1.0"

_TORCH_API = {
    "fused_rmsnorm_rope": "torch_ops",
    "fused_rms_norm": "torch_ops",
    "fused_add_rms_norm": "torch_ops",
    "fused_gated_mlp": "torch_ops",
    "fp8_gemm": "torch_ops",
    "quantize_fp8": "torch_ops",
    "dequantize_fp8": "torch_ops",
    "FusedRMSNormRoPE": "nn",
    "FusedRMSNorm": "nn",
    "FusedGatedMLP": "nn",
    "FusedMLP": "nn",
    "FP8Linear": "nn",
    "FP8TrainingLinear": "nn",
}

__all__ = ["__version__", "errors", "reference", *sorted(_TORCH_API)]


def __getattr__(name: str) -> Any:
    if name == "reference":  # float64 oracles for tests and users, not for the API's own use
        import importlib

        value = importlib.import_module(".reference", __name__)
        globals()[name] = value
        return value
    if name in _TORCH_API:
        import importlib

        try:
            module = importlib.import_module(f".{_TORCH_API[name]}", __name__)
        except ModuleNotFoundError as e:
            if e.name != "torch":
                raise
            raise ModuleNotFoundError(
                f"fusedops.{name} is part of the PyTorch API and needs PyTorch, which is not "
                "installed: pip install torch (or pip install 'fusedops[torch]'). "
                "fusedops.reference and fusedops.fp8 work without it.",
                name="torch",
            ) from e
        value = getattr(module, name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'fusedops' has no attribute {name!r}")
