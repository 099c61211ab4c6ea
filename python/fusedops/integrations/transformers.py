"""Hugging Face ``transformers`` models on fusedops kernels, patched in place.

:func:`patch_gated_mlps` replaces every gated MLP of a loaded model (Llama, Mistral, Qwen2/3,
Gemma's GeGLU and any module with the same layout) by a :class:`FusedGatedMLPAdapter` that keeps
the module's own ``gate_proj``/``up_proj``/``down_proj`` (so parameters are shared and state dict
keys unchanged: checkpoints save and load as before) and computes ``act(x·Wgᵀ) ⊙ (x·Wuᵀ)`` in one
fused kernel. ``transformers`` itself is not imported: modules are recognized by their layout.

:func:`patch_attention_norms` runs the q/k RMSNorm and RoPE of Qwen3 and OLMo-2 attentions as one
:func:`~fusedops.fused_rmsnorm_rope` call each for q and k; it recognizes them by class name and
checks the structure it relies on. :func:`patch_rms_norms` runs the other RMSNorms on
:func:`~fusedops.fused_rms_norm`; :func:`patch_fp8_linears` (opt-in) replaces linear layers by
:class:`~fusedops.FP8Linear`. :func:`patch_model` applies them.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import ArgumentError
from ..nn import FP8Linear
from ..torch_ops import fused_gated_mlp, fused_rms_norm, fused_rmsnorm_rope

__all__ = [
    "FusedGatedMLPAdapter",
    "activation_of",
    "patch_attention_norms",
    "patch_fp8_linears",
    "patch_gated_mlps",
    "patch_model",
    "patch_rms_norms",
]

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


_HALF_DTYPES = (torch.float16, torch.bfloat16)


def _kernel_accepts(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the fused kernels run on ``x`` with ``weight``: a non-empty contiguous
    float16/bfloat16 CUDA tensor at a 16-byte boundary, the weight in its dtype and on its
    device."""
    return (
        x.is_cuda
        and x.dtype in _HALF_DTYPES
        and weight.dtype == x.dtype
        and weight.device == x.device
        and x.numel() > 0
        and x.is_contiguous()
        and (torch.compiler.is_compiling() or x.data_ptr() % 16 == 0)
    )


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
        return _kernel_accepts(x, self.gate_proj.weight)

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


def _check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise ArgumentError(
            f"model must be a torch.nn.Module (a loaded transformers model); got "
            f"{type(model).__name__}"
        )


def patch_gated_mlps(model: nn.Module) -> dict[str, str]:
    """Replaces, in place, every gated MLP of ``model`` by a :class:`FusedGatedMLPAdapter`.

    A module is patched when it has ``gate_proj``, ``up_proj`` and ``down_proj`` ``nn.Linear``
    children (gate and up without bias) and an ``act_fn`` fusedops has. Returns
    ``{module name: "fused <activation>" or why it was left alone}`` for every module with a
    ``gate_proj``, so that a caller sees what was patched and what was not.
    """
    _check_model(model)
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


# ------------------------------------------------------------------------------------------
# Attention: q/k RMSNorm fused with RoPE
# ------------------------------------------------------------------------------------------

# Attention classes whose q/k norm and RoPE fusedops knows, and the layout of their norms:
# "per_head" normalizes each head_dim-wide head (Qwen3, on q viewed as [b, s, heads, head_dim]),
# "full_width" the whole projection before it is split into heads (OLMo-2).
_QK_NORM_LAYOUTS = {"Qwen3Attention": "per_head", "Olmo2Attention": "full_width"}
# Hugging Face RMSNorm classes fusedops runs (:func:`patch_rms_norms`), with their weight
# offset: each computes (offset + weight) · x / rms(x) in float32 (Llama's rounds x / rms(x) to
# the input's dtype before the weight); Gemma's store gain - 1.
_RMS_NORM_OFFSETS = {
    "LlamaRMSNorm": 0.0,
    "MistralRMSNorm": 0.0,
    "Qwen2RMSNorm": 0.0,
    "Qwen3RMSNorm": 0.0,
    "Olmo2RMSNorm": 0.0,
    "GemmaRMSNorm": 1.0,
    "Gemma2RMSNorm": 1.0,
    "Gemma3RMSNorm": 1.0,
}
# The q/k norms fused with RoPE: those without an offset (fused_rmsnorm_rope has none).
_QK_NORM_CLASSES = {"Qwen3RMSNorm", "Olmo2RMSNorm"}
_FUSED_CLASSES: dict[type, type] = {}  # original class -> its fusedops subclass


def _eps_of(norm: nn.Module) -> float | None:
    """The epsilon of a Hugging Face RMSNorm (``variance_epsilon`` or ``eps``), or None."""
    for name in ("variance_epsilon", "eps"):
        eps = getattr(norm, name, None)
        if isinstance(eps, (int, float)) and not isinstance(eps, bool):
            return float(eps)
    return None


def _fused_path_enabled(hidden_states: torch.Tensor, attention: nn.Module) -> bool:
    """Whether a patched attention takes its fused path for ``hidden_states``; if not, it runs
    the original forward unchanged."""
    return _kernel_accepts(hidden_states, attention.q_norm.weight)


def _rebind_globals(fn: Callable, overrides: dict[str, Any]) -> Callable | None:
    """A copy of ``fn`` whose innermost function (under ``functools.wraps`` decorators such as
    transformers' ``deprecate_kwarg``) sees ``overrides`` in place of its module's globals; the
    decorators are copied with it. None if a decorator does not hold the function it wraps in
    one closure cell. The module's globals themselves are left alone (other models, and modules
    not patched, still see them)."""
    if not isinstance(fn, types.FunctionType):
        return None
    inner = getattr(fn, "__wrapped__", None)
    if inner is None:
        namespace = dict(fn.__globals__)
        namespace.update(overrides)
        copy = types.FunctionType(
            fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__
        )
    else:
        new_inner = _rebind_globals(inner, overrides)
        cells = fn.__closure__ or ()
        holding = [i for i, cell in enumerate(cells) if _cell_holds(cell, inner)]
        if new_inner is None or len(holding) != 1:
            return None
        closure = tuple(
            types.CellType(new_inner) if i == holding[0] else cell for i, cell in enumerate(cells)
        )
        copy = types.FunctionType(
            fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, closure
        )
    functools.update_wrapper(copy, fn)  # name, doc, __dict__ (and __wrapped__, reset below)
    copy.__kwdefaults__ = fn.__kwdefaults__
    if inner is not None:
        copy.__wrapped__ = new_inner
    else:
        del copy.__wrapped__
    return copy


def _cell_holds(cell: Any, value: Any) -> bool:
    try:
        return cell.cell_contents is value
    except ValueError:  # an empty cell
        return False


def _rope_already_applied(q: torch.Tensor, k: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
    """``apply_rotary_pos_emb`` in a patched attention's forward: q_norm/k_norm rotated q and k."""
    return q, k


@functools.lru_cache(maxsize=8)
def _token_rows_cached(
    batch: int, seq: int, heads: int, table_batch: int, device: torch.device
) -> torch.Tensor:
    return _token_rows(batch, seq, heads, table_batch, device)


def _token_rows(
    batch: int, seq: int, heads: int, table_batch: int, device: torch.device
) -> torch.Tensor:
    """``positions`` [batch·seq, heads] (int32) for the heads of the tokens of ``x`` [batch, seq]:
    token (b, s)'s row of the flattened tables [table_batch·seq, R] (table_batch is 1 where one
    set of tables serves every sequence of the batch)."""
    rows = torch.arange(table_batch * seq, device=device, dtype=torch.int32)
    rows = rows.view(table_batch, seq, 1).expand(batch, seq, heads)
    return rows.reshape(batch * seq, heads).contiguous()  # a view where it can: copy it


class _FusedRMSNorm:
    """Mixed into a Hugging Face RMSNorm class (:data:`_RMS_NORM_OFFSETS`) by
    :func:`patch_rms_norms` and :func:`patch_attention_norms`. As a plain norm it is one
    :func:`fused_rms_norm` call where the kernel takes ``x`` (and the original norm where it does
    not). As the q_norm/k_norm of a patched attention on its fused path (``_fusedops_rope`` set
    to the step's ``(cos, sin, apply_rotary_pos_emb)``) it returns the normalized and rotated
    heads, as one :func:`fused_rmsnorm_rope` call where the kernel takes ``x`` and as the
    original norm and RoPE where it does not."""

    _fusedops_rope: tuple[torch.Tensor, torch.Tensor, Callable] | None = None
    _fusedops_head_dim: int
    _fusedops_per_head: bool
    _fusedops_offset: float  # set on the class
    weight: nn.Parameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rope = self._fusedops_rope
        if rope is None:
            if not _kernel_accepts(x, self.weight):
                return super().forward(x)  # type: ignore[misc]
            return fused_rms_norm(
                x, self.weight, _eps_of(self), weight_offset=self._fusedops_offset
            )
        cos, sin, apply_rope = rope
        head_dim, weight = self._fusedops_head_dim, self.weight
        per_head = self._fusedops_per_head
        if not (
            _kernel_accepts(x, weight)
            and x.dim() == (4 if per_head else 3)  # [b, s, heads, head_dim] or [b, s, width]
            and x.shape[1] == cos.shape[1]
            and cos.shape[0] in (1, x.shape[0])
        ):
            return self._norm_then_rope(x, cos, sin, apply_rope)
        eps = _eps_of(self)
        if per_head:
            # Rows of head_dim, each taking its token's row of the flattened tables.
            batch, seq, heads, _ = x.shape
            rows = _token_rows if torch.compiler.is_compiling() else _token_rows_cached
            positions = rows(batch, seq, heads, cos.shape[0], x.device)
            out = fused_rmsnorm_rope(
                x.reshape(batch * seq, heads, head_dim),
                weight,
                cos.reshape(-1, head_dim),
                sin.reshape(-1, head_dim),
                eps=eps,
                head_dim=head_dim,
                positions=positions,
            )
            return out.view(x.shape)
        if cos.shape[0] == 1:  # one set of tables for the whole batch: row s for token (b, s)
            cos, sin = cos[0], sin[0]
        return fused_rmsnorm_rope(x, weight, cos, sin, eps=eps, head_dim=head_dim)

    def _norm_then_rope(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, apply_rope: Callable
    ) -> torch.Tensor:
        """The original norm, then the original RoPE (which the patched forward skips) on the
        heads in the layout the forward gives it, [batch, heads, seq, head_dim]."""
        y = super().forward(x)  # type: ignore[misc]
        if self._fusedops_per_head:  # [b, s, heads, head_dim]
            heads = y.transpose(1, 2)
            return apply_rope(heads, heads, cos, sin)[0].transpose(1, 2)
        batch, seq = y.shape[:2]  # [b, s, heads·head_dim]
        heads = y.view(batch, seq, -1, self._fusedops_head_dim).transpose(1, 2)
        return apply_rope(heads, heads, cos, sin)[0].transpose(1, 2).reshape(y.shape)


class _FusedQKNormRopeAttention:
    """Mixed into an attention class by :func:`patch_attention_norms`. Its forward is the
    original one; where the fused path applies (the kernel takes the hidden states, and
    ``position_embeddings`` are ``(cos, sin)`` of shape [batch or 1, seq, head_dim]), it runs a
    copy of the original forward in which ``apply_rotary_pos_emb`` returns q and k as they are,
    while q_norm and k_norm (:class:`_FusedRMSNorm`) normalize and rotate them in one kernel."""

    _fusedops_forward: Callable  # the original forward, RoPE skipped
    _fusedops_globals: dict[str, Any]  # the original forward's module globals (not a copy)
    _fusedops_arguments: tuple[int, int]  # positional indices of hidden_states, position_embeddings

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        tables = self._fusedops_tables(args, kwargs)
        if tables is None:
            return super().forward(*args, **kwargs)  # type: ignore[misc]
        rope = (*tables, self._fusedops_globals["apply_rotary_pos_emb"])
        q_norm, k_norm = self.q_norm, self.k_norm  # type: ignore[attr-defined]
        q_norm._fusedops_rope = k_norm._fusedops_rope = rope
        try:
            return type(self)._fusedops_forward(self, *args, **kwargs)
        finally:
            q_norm._fusedops_rope = k_norm._fusedops_rope = None

    def _fusedops_tables(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(cos, sin)`` for the fused path, or None where it does not apply."""
        hidden_at, tables_at = self._fusedops_arguments
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else _at(args, hidden_at)
        pair = (
            kwargs["position_embeddings"]
            if "position_embeddings" in kwargs
            else _at(args, tables_at)
        )
        if not (
            isinstance(hidden, torch.Tensor)
            and hidden.dim() == 3
            and _fused_path_enabled(hidden, self)  # type: ignore[arg-type]
            and isinstance(pair, (tuple, list))
            and len(pair) == 2
            and all(isinstance(t, torch.Tensor) for t in pair)
        ):
            return None
        cos, sin = pair
        batch, seq = hidden.shape[:2]
        if not (
            cos.dim() == 3
            and cos.shape[0] in (1, batch)
            and cos.shape[1:] == (seq, self.head_dim)  # type: ignore[attr-defined]
            and sin.shape == cos.shape
            and cos.device == hidden.device
            and sin.device == hidden.device
        ):
            return None  # e.g. partial rotary tables, which the original RoPE itself rejects
        if cos.dtype not in (torch.float32, hidden.dtype) or sin.dtype != cos.dtype:
            cos, sin = cos.float(), sin.float()
        return cos.contiguous(), sin.contiguous()


def _original_class(module: nn.Module) -> type:
    """``module``'s class before fusedops patched it (its class if it was not patched)."""
    cls = type(module)
    return cls.__bases__[1] if cls in _FUSED_CLASSES.values() else cls


def _at(args: tuple[Any, ...], index: int) -> Any:
    return args[index] if 0 <= index < len(args) else None


def _restore_fused(base: type) -> nn.Module:
    """Unpickles (or deep-copies) a patched module as ``base``'s fusedops subclass; its state
    follows."""
    cls = _fused_class(base)
    return cls.__new__(cls)


def _reduce_fused(self: nn.Module, protocol: int) -> tuple[Any, ...]:
    # The subclasses are made at run time: what is pickled names the original class.
    reduced = object.__reduce_ex__(self, protocol)
    return (_restore_fused, (type(self).__bases__[1],), *reduced[2:])


def _fused_class(base: type) -> type:
    """``base``'s fusedops subclass, made once per class: an attention's (``base`` a class of
    :data:`_QK_NORM_LAYOUTS`) with the original forward, RoPE skipped, or its norms'."""
    cls = _FUSED_CLASSES.get(base)
    if cls is not None:
        return cls
    namespace: dict[str, Any] = {"__module__": __name__, "__reduce_ex__": _reduce_fused}
    if base.__name__ in _QK_NORM_LAYOUTS:
        forward = _skipping_rope(base)
        if forward is None:
            raise ArgumentError(
                f"{base.__qualname__}.forward cannot be patched by fusedops under transformers "
                f"{_transformers_version()} (a decorator hides it); load the model unpatched"
            )
        inner = inspect.unwrap(base.forward)
        parameters = [p.name for p in inspect.signature(inner).parameters.values()][1:]
        namespace["_fusedops_forward"] = forward
        namespace["_fusedops_globals"] = inner.__globals__
        namespace["_fusedops_arguments"] = (
            parameters.index("hidden_states"),
            parameters.index("position_embeddings"),
        )
        mixin: type = _FusedQKNormRopeAttention
    else:
        mixin = _FusedRMSNorm
        namespace["_fusedops_offset"] = _RMS_NORM_OFFSETS[base.__name__]
    cls = type(f"FusedOps{base.__name__}", (mixin, base), namespace)
    cls.__qualname__ = cls.__name__
    _FUSED_CLASSES[base] = cls
    return cls


def _skipping_rope(base: type) -> Callable | None:
    """``base.forward`` with ``apply_rotary_pos_emb`` skipped, or None if it cannot be made."""
    return _rebind_globals(base.forward, {"apply_rotary_pos_emb": _rope_already_applied})


def _transformers_version() -> str:
    module = sys.modules.get("transformers")
    return getattr(module, "__version__", "(unknown version)")


def _why_not_attention(module: nn.Module) -> str | None:
    """Why ``module``'s q/k norm and RoPE cannot run on fusedops, or None if they can."""
    name = type(module).__name__
    layout = _QK_NORM_LAYOUTS.get(name)
    if layout is None:
        if not (hasattr(module, "q_norm") and hasattr(module, "k_norm")):
            return f"no q_norm/k_norm ({name} normalizes neither queries nor keys)"
        known = ", ".join(sorted(_QK_NORM_LAYOUTS))
        return f"{name} is not an attention whose q/k norm fusedops knows ({known})"
    # The projections are not touched (LoRA or quantized linears are fine): only their widths.
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
        if not isinstance(getattr(module, proj, None), nn.Module):
            return f"no {proj} module"
    head_dim = getattr(module, "head_dim", None)
    if not isinstance(head_dim, int) or head_dim <= 0 or head_dim % 2:
        return f"head_dim {head_dim!r} is not a positive even int"
    widths = {}
    for proj in ("q_proj", "k_proj"):
        out = getattr(getattr(module, proj), "out_features", None)
        if not isinstance(out, int) or out % head_dim:
            return f"{proj} has {out!r} outputs, not a whole number of {head_dim}-wide heads"
        widths[proj] = out
    for norm_name, proj in (("q_norm", "q_proj"), ("k_norm", "k_proj")):
        norm = getattr(module, norm_name, None)
        if (
            not isinstance(norm, nn.Module)
            or _original_class(norm).__name__ not in _QK_NORM_CLASSES
        ):
            known = ", ".join(sorted(_QK_NORM_CLASSES))
            return (
                f"{norm_name} is a {type(norm).__name__}, not an RMSNorm fusedops knows ({known})"
            )
        weight = getattr(norm, "weight", None)
        if not isinstance(weight, nn.Parameter) or _eps_of(norm) is None:
            return f"{norm_name} has no weight parameter or no eps (variance_epsilon)"
        width = head_dim if layout == "per_head" else widths[proj]
        if tuple(weight.shape) != (width,):
            return (
                f"{norm_name}.weight has shape {tuple(weight.shape)}, not ({width},) "
                f"(a {layout.replace('_', '-')} norm)"
            )
    inner = inspect.unwrap(type(module).forward)
    names = set(getattr(getattr(inner, "__code__", None), "co_names", ()))
    if not {"q_norm", "k_norm", "apply_rotary_pos_emb"} <= names:
        return (
            f"{name}.forward does not call q_norm, k_norm and apply_rotary_pos_emb (a layout of "
            f"transformers {_transformers_version()} this fusedops does not know)"
        )
    parameters = list(inspect.signature(inner).parameters.values())[1:]
    positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
    if positional[:2] != ["hidden_states", "position_embeddings"]:
        return (
            f"{name}.forward does not take (hidden_states, position_embeddings) (transformers "
            f"before 4.48 computed the rotary tables inside the attention)"
        )
    if type(module) not in _FUSED_CLASSES and _skipping_rope(type(module)) is None:
        return f"{name}.forward is wrapped by a decorator fusedops cannot see through"
    return None


def patch_attention_norms(model: nn.Module) -> dict[str, str]:
    """Runs, in place, the q/k RMSNorm and RoPE of every Qwen3 and OLMo-2 attention of ``model``
    as :func:`fusedops.fused_rmsnorm_rope` calls, one for q and one for k.

    Patched are ``Qwen3Attention`` (q_norm/k_norm over each head_dim-wide head) and
    ``Olmo2Attention`` (over the whole q/k projection), each with ``q/k/v/o_proj`` modules,
    RMSNorms ``q_norm``/``k_norm`` and a forward that takes ``position_embeddings = (cos, sin)``
    and calls ``apply_rotary_pos_emb`` (the layout of transformers 4.48 onwards; checked with
    4.51, 4.57 and 5.24). Other attentions are reported left alone, with the reason.
    The attention and its two norms keep their objects, parameters, hooks and state dict keys:
    only their classes become fusedops subclasses of theirs (``FusedOpsQwen3Attention``...;
    ``isinstance`` still holds, pickling names the original classes). The patched forward is the
    original forward: where the kernel runs (float16/bfloat16 CUDA hidden states and norm
    weights, ``(cos, sin)`` of shape [batch or 1, seq, head_dim], as prefill and every decode
    step of ``generate()`` with a KV cache give them), a copy of it whose
    ``apply_rotary_pos_emb`` returns q and k unchanged, as the norms already rotated them;
    elsewhere (CPU, float32, partial rotary tables) the original forward itself.

    The fused norm is computed in float32 with one rounding at the end, so it differs from
    Hugging Face's (which rounds before the weight) by rounding. Returns ``{module name:
    "fused q/k rmsnorm+rope (<layout>)" or "left alone: <why>"}`` for every module with a
    ``q_proj`` and a ``k_proj``; modules patched before are not reported again.
    """
    _check_model(model)
    report: dict[str, str] = {}
    for name, module in list(model.named_modules()):
        if isinstance(module, _FusedQKNormRopeAttention):
            continue
        if not (hasattr(module, "q_proj") and hasattr(module, "k_proj")):
            continue
        reason = _why_not_attention(module)
        if reason is not None:
            report[name] = f"left alone: {reason}"
            continue
        layout = _QK_NORM_LAYOUTS[type(module).__name__]
        for norm in (module.q_norm, module.k_norm):
            norm.__class__ = _fused_class(_original_class(norm))
            norm._fusedops_rope = None
            norm._fusedops_head_dim = module.head_dim
            norm._fusedops_per_head = layout == "per_head"
        module.__class__ = _fused_class(type(module))
        report[name] = f"fused q/k rmsnorm+rope ({layout.replace('_', '-')})"
    return report


def _why_not_norm(module: nn.Module) -> str | None:
    """Why ``module`` (an ``*RMSNorm``) cannot run on fusedops, or None if it can."""
    name = type(module).__name__
    if name not in _RMS_NORM_OFFSETS:
        known = ", ".join(sorted(_RMS_NORM_OFFSETS))
        return f"{name} is not an RMSNorm fusedops knows ({known})"
    weight = getattr(module, "weight", None)
    if not isinstance(weight, nn.Parameter) or weight.dim() != 1 or _eps_of(module) is None:
        return "no 1-D weight parameter or no eps (variance_epsilon)"
    return None


def patch_rms_norms(model: nn.Module) -> dict[str, str]:
    """Runs, in place, every Hugging Face RMSNorm of ``model`` as one :func:`fused_rms_norm`
    kernel: the layer norms of Llama, Mistral, Qwen2/3, OLMo-2 and Gemma 1-3 (``1 + weight``)
    models (:data:`_RMS_NORM_OFFSETS`), and the q/k norms that :func:`patch_attention_norms`
    does not fuse with RoPE. As there, each norm keeps its object, parameter and state dict key;
    only its class becomes a fusedops subclass of its own. The kernel runs on float16/bfloat16
    CUDA inputs whose weight has their dtype (float32 norm weights, CPU tensors: the original
    forward). It computes in float32 with one rounding (Llama's norm rounds before the weight).

    The residual add before a norm stays in the model's own code (a decoder layer's forward):
    :func:`fusedops.fused_add_rms_norm` fuses the two where a model is written for it.
    Returns ``{module name: "fused rms_norm" or "left alone: <why>"}`` for every module whose
    class name ends in ``RMSNorm``; modules patched before are not reported again.
    """
    _check_model(model)
    report: dict[str, str] = {}
    for name, module in list(model.named_modules()):
        if isinstance(module, _FusedRMSNorm) or not type(module).__name__.endswith("RMSNorm"):
            continue
        reason = _why_not_norm(module)
        if reason is not None:
            report[name] = f"left alone: {reason}"
            continue
        module.__class__ = _fused_class(type(module))
        report[name] = "fused rms_norm"
    return report


def _on_gpu(t: torch.Tensor) -> bool:
    return t.is_cuda


def _why_not_fp8(
    name: str, linear: nn.Linear, skip: tuple[str, ...], fused: set[int]
) -> str | None:
    """Why the ``nn.Linear`` ``name`` is not replaced by an :class:`FP8Linear`, or None."""
    if any(name == s or name.endswith("." + s) for s in skip):
        return f"skipped ({', '.join(skip)})"
    if id(linear) in fused:
        return "its weight feeds a fused gated MLP kernel (gate_proj/up_proj)"
    weight = linear.weight
    if weight.dtype not in _HALF_DTYPES:
        return f"weight is {weight.dtype}; FP8Linear replaces float16/bfloat16 layers"
    if linear.in_features % 16:
        return f"in_features {linear.in_features} is not a multiple of 16 (the FP8 GEMM's K)"
    if not _on_gpu(weight):
        return f"on {weight.device}: move the model to the GPU first (a GPU kernel quantizes it)"
    return None


def patch_fp8_linears(
    model: nn.Module, *, granularity: str = "row", skip: tuple[str, ...] = ("lm_head",)
) -> dict[str, str]:
    """Replaces, in place, the ``nn.Linear`` layers of ``model`` by :class:`fusedops.FP8Linear`
    (weights quantized to e4m3 once, with ``granularity`` scales; inputs quantized per call):
    attention projections, down projections, any other linear, but not those whose name ends in
    one of ``skip`` (the output head, often tied to the embedding), the gate/up projections a
    :class:`FusedGatedMLPAdapter` reads, layers that are not float16/bfloat16 on a GPU, or
    whose ``in_features`` is not a multiple of 16. For inference: the 16-bit weight is dropped
    (memory: half), the state dict holds ``weight_fp8``/``weight_scale`` instead of ``weight``,
    and an ``FP8Linear`` loads the original checkpoint. Exactly ``nn.Linear`` layers are
    replaced (not LoRA or quantized subclasses). Returns ``{name: "fp8 <granularity>" or "left
    alone: <why>"}`` for every ``nn.Linear``."""
    _check_model(model)
    fused = {
        id(linear)
        for module in model.modules()
        if isinstance(module, FusedGatedMLPAdapter)
        for linear in (module.gate_proj, module.up_proj)
    }
    report: dict[str, str] = {}
    for name, module in list(model.named_modules()):
        if type(module) is not nn.Linear:
            continue
        reason = _why_not_fp8(name, module, tuple(skip), fused)
        if reason is not None:
            report[name] = f"left alone: {reason}"
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, FP8Linear.from_linear(module, granularity=granularity))
        report[name] = f"fp8 {granularity}"
    return report


def patch_model(model: nn.Module, *, fp8_linears: bool = False) -> dict[str, str]:
    """Applies every fusedops patch to ``model`` in place (:func:`patch_gated_mlps`,
    :func:`patch_attention_norms`, then :func:`patch_rms_norms` for the other norms, and with
    ``fp8_linears`` :func:`patch_fp8_linears`) and returns their reports merged."""
    report = {
        **patch_gated_mlps(model),
        **patch_attention_norms(model),
        **patch_rms_norms(model),
    }
    if fp8_linears:
        report.update(patch_fp8_linears(model))
    return report
