"""Hugging Face ``transformers`` models on fusedops kernels, patched in place.

:func:`patch_gated_mlps` replaces every gated MLP of a loaded model (Llama, Mistral, Qwen2/3,
Gemma's GeGLU and any module with the same layout) by a :class:`FusedGatedMLPAdapter` that keeps
the module's own ``gate_proj``/``up_proj``/``down_proj`` (so parameters are shared and state dict
keys unchanged: checkpoints save and load as before) and computes ``act(x·Wgᵀ) ⊙ (x·Wuᵀ)`` in one
fused kernel. ``transformers`` itself is not imported: modules are recognized by their layout.
"""

from __future__ import annotations

import torch
from torch import nn

from ..torch_ops import fused_gated_mlp

__all__ = ["FusedGatedMLPAdapter", "activation_of", "patch_gated_mlps"]

# Activation modules (by class name, across transformers versions) and what fusedops calls them.
_ACTIVATIONS = {
    "SiLU": "silu",
    "SiLUActivation": "silu",
    "GELUActivation": "gelu",
    "GELUTanh": "gelu_tanh",
    "PytorchGELUTanh": "gelu_tanh",
    "GELUPytorchTanh": "gelu_tanh",
    "NewGELUActivation": "gelu_tanh",
}


def activation_of(module: nn.Module) -> str | None:
    """fusedops' name for the activation ``module`` computes, or None if it has none."""
    if isinstance(module, nn.GELU):
        return "gelu_tanh" if module.approximate == "tanh" else "gelu"
    name = _ACTIVATIONS.get(type(module).__name__)
    if name == "gelu" and getattr(module, "act", None) is not None:
        # GELUActivation(use_gelu_python=True) is the same erf GELU in Python.
        return "gelu"
    return name


class FusedGatedMLPAdapter(nn.Module):
    """A Hugging Face gated MLP (``down_proj(act_fn(gate_proj(x)) * up_proj(x))``) whose gated
    product runs as one fusedops kernel where it can: ``x`` on a CUDA device in float16 or
    bfloat16, in the weights' dtype and on their device. It trains there too: the fused op's
    backward recomputes the two products from the saved ``x`` and weights (no M×N
    intermediates are kept for it). Elsewhere (CPU, other dtypes) it computes what the original
    module did."""

    def __init__(self, mlp: nn.Module, activation: str):
        super().__init__()
        self.gate_proj, self.up_proj, self.down_proj = mlp.gate_proj, mlp.up_proj, mlp.down_proj
        self.act_fn = mlp.act_fn
        self.activation = activation

    def _fusable(self, x: torch.Tensor) -> bool:
        weight = self.gate_proj.weight
        if not (x.is_cuda and x.dtype in (torch.float16, torch.bfloat16)):
            return False
        return weight.dtype == x.dtype and weight.device == x.device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._fusable(x):
            gate, up = self.gate_proj.weight, self.up_proj.weight
            if not (
                torch.is_grad_enabled()
                and (x.requires_grad or gate.requires_grad or up.requires_grad)
            ):
                # Detached weights are plain tensors: the call takes the cached fast path.
                gate, up = gate.detach(), up.detach()
            h = fused_gated_mlp(x, gate, up, self.activation)
        else:
            h = self.act_fn(self.gate_proj(x)) * self.up_proj(x)
        return self.down_proj(h)

    def extra_repr(self) -> str:
        return f"activation={self.activation}"


def _why_not(module: nn.Module) -> str | None:
    """Why ``module`` is not a gated MLP fusedops can run, or None if it is one."""
    for name in ("gate_proj", "up_proj", "down_proj"):
        if not isinstance(getattr(module, name, None), nn.Linear):
            return f"no nn.Linear {name}"
    if module.gate_proj.bias is not None or module.up_proj.bias is not None:
        return "gate_proj/up_proj have a bias (the fused kernel has none)"
    if module.gate_proj.weight.shape != module.up_proj.weight.shape:
        return "gate_proj and up_proj differ in shape"
    act = getattr(module, "act_fn", None)
    if not isinstance(act, nn.Module) or activation_of(act) is None:
        return f"activation {type(act).__name__} is not one fusedops has (SiLU, GELU, tanh GELU)"
    return None


def patch_gated_mlps(model: nn.Module) -> dict[str, str]:
    """Replaces, in place, every gated MLP of ``model`` by a :class:`FusedGatedMLPAdapter`.

    A module is patched when it has ``gate_proj``, ``up_proj`` and ``down_proj`` ``nn.Linear``
    children (gate and up without bias) and an ``act_fn`` fusedops has. Returns
    ``{module name: "fused <activation>" or why it was left alone}`` for every module with a
    ``gate_proj``, so that a caller sees what was patched and what was not.
    """
    report: dict[str, str] = {}
    for name, module in list(model.named_modules()):
        if not name or isinstance(module, FusedGatedMLPAdapter):
            continue  # the root cannot be replaced in place; patch its parent's view instead
        if not hasattr(module, "gate_proj"):
            continue
        reason = _why_not(module)
        if reason is not None:
            report[name] = f"left alone: {reason}"
            continue
        activation = activation_of(module.act_fn)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, FusedGatedMLPAdapter(module, activation))
        report[name] = f"fused {activation}"
    return report
