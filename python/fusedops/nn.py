"""``torch.nn`` modules on the fused kernels of :mod:`fusedops.torch_ops`."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from ._autograd import FP8_BACKWARDS
from ._native import scale_shape as _scale_shape
from ._torch_checks import _choice
from .errors import ArgumentError, ShapeError
from .torch_ops import (
    fp8_gemm,
    fused_add_rms_norm,
    fused_gated_mlp,
    fused_rms_norm,
    fused_rmsnorm_rope,
    quantize_fp8,
)

__all__ = [
    "FP8Linear",
    "FP8TrainingLinear",
    "FusedGatedMLP",
    "FusedMLP",
    "FusedRMSNorm",
    "FusedRMSNormRoPE",
    "rope_tables",
]


ROPE_SCALING_TYPES = ("default", "linear", "llama3", "yarn")


def _scaled_inv_freq(
    rotary_dim: int, base: float, scaling: Optional[dict]
) -> tuple[torch.Tensor, float]:
    """float64 inverse frequencies and the cos/sin (attention) factor of a Hugging Face
    ``rope_scaling``/``rope_parameters`` dict (``transformers.modeling_rope_utils``)."""
    inv_freq = base ** (-torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim)
    kind = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
    if kind not in ROPE_SCALING_TYPES:
        raise ArgumentError(
            f"rope_scaling type {kind!r} is not supported; fusedops builds tables for "
            f"{', '.join(ROPE_SCALING_TYPES)} (or pass your own cos/sin to forward)"
        )
    if kind == "default":
        return inv_freq, 1.0

    def need(key: str) -> float:
        if scaling.get(key) is None:
            raise ArgumentError(f"rope_scaling of type {kind!r} needs {key!r}")
        return float(scaling[key])

    factor = need("factor")
    if kind == "linear":
        return inv_freq / factor, 1.0
    if kind == "llama3":
        low, high = need("low_freq_factor"), need("high_freq_factor")
        old_context = need("original_max_position_embeddings")
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > old_context / low, inv_freq / factor, inv_freq)
        smooth = (old_context / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old_context / high) & (wavelen <= old_context / low)
        return torch.where(medium, smoothed, scaled), 1.0
    # yarn
    old_context = need("original_max_position_embeddings")

    def mscale(scale: float, m: float = 1.0) -> float:
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    attention = scaling.get("attention_factor")
    if attention is None:
        m, m_all = scaling.get("mscale"), scaling.get("mscale_all_dim")
        attention = mscale(factor, m) / mscale(factor, m_all) if m and m_all else mscale(factor)
    beta_fast = scaling.get("beta_fast") or 32
    beta_slow = scaling.get("beta_slow") or 1

    def correction_dim(rotations: float) -> float:
        return rotary_dim * math.log(old_context / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if scaling.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, rotary_dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(rotary_dim // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
    extrapolation = 1 - ramp
    inv_freq = inv_freq / factor * (1 - extrapolation) + inv_freq * extrapolation
    return inv_freq, float(attention)


def rope_tables(
    max_positions: int,
    rotary_dim: int,
    base: float,
    style: str,
    scaling: Optional[dict] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 RoPE tables ``(cos, sin)``, each ``[max_positions, rotary_dim]``, on the CPU.

    Computed in float64 like :func:`fusedops.reference.rope_cache` (HuggingFace's layout:
    ``"neox"`` repeats the frequencies as two halves, ``"gptj"`` interleaves them). ``scaling``
    is a Hugging Face ``rope_scaling`` dict: ``rope_type`` ``"linear"``, ``"llama3"``
    (Llama 3.1) or ``"yarn"`` with its keys (``factor``, ``low_freq_factor``,
    ``high_freq_factor``, ``original_max_position_embeddings``, ``beta_fast``, ``beta_slow``,
    ``mscale``, ``mscale_all_dim``, ``attention_factor``), as ``transformers`` computes them;
    YaRN's attention factor scales the tables.
    """
    inv_freq, attention = _scaled_inv_freq(rotary_dim, base, scaling)
    freqs = torch.outer(torch.arange(max_positions, dtype=torch.float64), inv_freq)
    if style == "neox":
        angles = torch.cat([freqs, freqs], dim=-1)
    else:
        angles = torch.repeat_interleave(freqs, 2, dim=-1)
    return (angles.cos() * attention).float(), (angles.sin() * attention).float()


class FusedRMSNormRoPE(nn.Module):
    """RMSNorm (learned gain) followed by rotary embedding of each head, in one kernel.

    ``forward(x, cos=None, sin=None, positions=None)`` takes ``x`` ``[..., hidden_dim]``
    (``hidden_dim`` a multiple of ``head_dim``); rows use their index along dim -2 as position
    unless ``positions`` (int32, ``x.shape[:-1]``) is given. ``cos``/``sin`` (``[S, rotary_dim]``,
    float32 or ``x``'s dtype) replace the module's own float32 tables, which cover
    ``max_positions`` positions of base ``base``, scaled by ``rope_scaling`` (a Hugging Face
    ``rope_scaling`` dict: linear, llama3 or yarn; see :func:`rope_tables`).
    """

    def __init__(
        self,
        hidden_dim: int,
        head_dim: int,
        eps: float = 1e-6,
        *,
        rope_style: str = "neox",
        rotary_fraction: float = 1.0,
        max_positions: int = 4096,
        base: float = 10000.0,
        rope_scaling: Optional[dict] = None,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        if head_dim <= 0 or hidden_dim % head_dim:
            raise ShapeError(
                f"hidden_dim ({hidden_dim}) must be a multiple of head_dim ({head_dim})"
            )
        rotary = round(head_dim * rotary_fraction)
        if rotary <= 0 or rotary % 2:
            raise ArgumentError(
                f"head_dim * rotary_fraction must be a positive even number; "
                f"got {head_dim} * {rotary_fraction}"
            )
        self.hidden_dim, self.head_dim, self.eps = hidden_dim, head_dim, eps
        self.rope_style, self.rotary_fraction = rope_style, rotary_fraction
        self.weight = nn.Parameter(torch.ones(hidden_dim, device=device, dtype=dtype))
        cos, sin = rope_tables(max_positions, rotary, base, rope_style, rope_scaling)
        self.register_buffer("cos", cos.to(device), persistent=False)
        self.register_buffer("sin", sin.to(device), persistent=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: Optional[torch.Tensor] = None,
        sin: Optional[torch.Tensor] = None,
        positions: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        if (cos is None) != (sin is None):
            raise ArgumentError("give both cos and sin, or neither (the module's own tables)")
        return fused_rmsnorm_rope(
            x,
            self.weight,
            self.cos if cos is None else cos,
            self.sin if sin is None else sin,
            eps=self.eps,
            head_dim=self.head_dim,
            rope_style=self.rope_style,
            rotary_fraction=self.rotary_fraction,
            positions=positions,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.hidden_dim}, head_dim={self.head_dim}, eps={self.eps}, "
            f"rope_style={self.rope_style}"
        )


class FusedRMSNorm(nn.Module):
    """RMSNorm with a learned gain, in one kernel; optionally after a residual add.

    ``forward(x)`` returns ``x · rsqrt(mean(x²) + eps) · (weight_offset + weight)``;
    ``forward(x, residual)`` returns ``(normed, total)`` with ``total = x + residual`` and
    ``normed`` the norm of ``total`` (:func:`fused_add_rms_norm`), the pre-norm layer's residual
    stream in one pass. ``weight_offset=1.0`` is Gemma's ``(1 + weight)`` (its weight starts at
    zero then).
    """

    def __init__(
        self,
        hidden_dim: int,
        eps: float = 1e-6,
        *,
        weight_offset: float = 0.0,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        self.hidden_dim, self.eps, self.weight_offset = hidden_dim, eps, weight_offset
        start = 0.0 if weight_offset else 1.0
        self.weight = nn.Parameter(torch.full((hidden_dim,), start, device=device, dtype=dtype))

    def forward(
        self, x: torch.Tensor, residual: Optional[torch.Tensor] = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if residual is None:
            return fused_rms_norm(x, self.weight, self.eps, weight_offset=self.weight_offset)
        return fused_add_rms_norm(
            x, residual, self.weight, self.eps, weight_offset=self.weight_offset
        )

    def extra_repr(self) -> str:
        offset = f", weight_offset={self.weight_offset}" if self.weight_offset else ""
        return f"{self.hidden_dim}, eps={self.eps}{offset}"


def _fp8_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    weight_scale: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    granularity: str,
    backward: str = "e5m2",
) -> torch.Tensor:
    """``x @ weight.T + bias`` over ``x``'s last dim on the FP8 GEMM (``x`` quantized
    dynamically; ``weight`` too unless its scale is given), in ``x``'s dtype; ``backward``: the
    gradient GEMMs (:func:`fusedops.fp8_gemm`)."""
    y = fp8_gemm(
        x.reshape(-1, x.shape[-1]),
        weight,
        b_scale=weight_scale,
        granularity=granularity,
        out_dtype=x.dtype,
        bias=bias,
        backward=backward,
    )
    return y.reshape(*x.shape[:-1], weight.shape[0])


class FP8Linear(nn.Module):
    """A linear layer whose weight is stored in FP8 (e4m3) with float32 scales.

    Built on the CPU, it keeps its weight unquantized until it is moved to a GPU (``.cuda()``,
    ``.to("cuda")``), which quantizes it; casts (``.half()``, ``.to(dtype)``) leave the FP8
    weight, its scales and the float32 bias as they are. Its state dict holds ``weight_fp8``,
    ``weight_scale`` and ``bias`` (``weight`` before quantization), and it loads those or an
    ``nn.Linear``'s state dict.

    ``forward`` quantizes the input dynamically with the same granularity and runs
    :func:`fusedops.fp8_gemm` (the bias, if any, is added in float32 inside the kernel). The
    output has the input's dtype.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        granularity: str = "row",
        device: Optional[torch.device] = None,
        dtype: torch.dtype = torch.bfloat16,
    ):
        super().__init__()
        self.in_features, self.out_features, self.granularity = (
            in_features,
            out_features,
            granularity,
        )
        weight = torch.empty(out_features, in_features, device=device, dtype=dtype)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        self.register_buffer("weight_fp8", torch.empty(0, device=device))
        self.register_buffer("weight_scale", torch.empty(0, device=device))
        self.bias = (
            nn.Parameter(torch.zeros(out_features, device=device, dtype=torch.float32))
            if bias
            else None
        )
        if weight.is_cuda:
            self.set_weight(weight)
        else:
            self._pending = weight

    def _apply(self, fn, recurse: bool = True):  # type: ignore[no-untyped-def]
        # .cuda()/.to()/.half() reach every floating tensor of a module: the FP8 weight, its
        # float32 scales and the float32 bias only move (a cast would change what the kernel
        # reads), and a weight built on the CPU is quantized once it reaches a GPU.
        kept = {name: self._buffers.pop(name) for name in ("weight_fp8", "weight_scale")}
        bias = self._parameters.pop("bias", None)
        super()._apply(fn, recurse)
        # Where fn sends a tensor that is where these are (a dtype cast keeps the device).
        device = fn(torch.empty(0, device=kept["weight_scale"].device)).device
        for name, tensor in kept.items():
            self._buffers[name] = tensor.to(device)
        self._parameters["bias"] = (
            None
            if bias is None
            else nn.Parameter(bias.detach().to(device), requires_grad=bias.requires_grad)
        )
        pending = self.__dict__.pop("_pending", None)
        if pending is not None:
            if device.type == "cuda":
                self.set_weight(pending.to(device))
            else:
                self._pending = pending.to(device)
        return self

    # state_dict: the quantized weight (weight_fp8, weight_scale) and the bias; a module that
    # has not been on a GPU yet saves its unquantized `weight` instead. Loading takes either, or
    # an nn.Linear's state dict (weight [out, in], bias), quantizing where the module is on a GPU.
    def _save_to_state_dict(self, destination, prefix, keep_vars):  # type: ignore[no-untyped-def]
        super()._save_to_state_dict(destination, prefix, keep_vars)
        pending = self.__dict__.get("_pending")
        if pending is not None:
            del destination[prefix + "weight_fp8"], destination[prefix + "weight_scale"]
            destination[prefix + "weight"] = pending if keep_vars else pending.detach()

    def _load_from_state_dict(  # type: ignore[no-untyped-def]
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
    ):
        ours = {"weight", "weight_fp8", "weight_scale", "bias"}
        if strict:
            unexpected_keys.extend(
                k for k in state_dict if k.startswith(prefix) and k[len(prefix) :] not in ours
            )
        shape = (self.out_features, self.in_features)
        device = self.weight_scale.device
        weight = state_dict.get(prefix + "weight")
        q, scale = state_dict.get(prefix + "weight_fp8"), state_dict.get(prefix + "weight_scale")
        if weight is not None:
            if tuple(weight.shape) != shape:
                errors.append(
                    f"size mismatch for {prefix}weight: expected {shape}, got {tuple(weight.shape)}"
                )
            elif device.type == "cuda":
                self.set_weight(weight.to(device))
                self.__dict__.pop("_pending", None)
            else:
                self._pending = weight.detach().to(device).clone()
        elif q is not None and scale is not None:
            expected_scale = _scale_shape(self.granularity, *shape)
            if tuple(q.shape) != shape or q.dtype != torch.float8_e4m3fn:
                errors.append(
                    f"{prefix}weight_fp8 must be float8_e4m3fn {shape}; got "
                    f"{q.dtype} {tuple(q.shape)}"
                )
            elif tuple(scale.shape) != tuple(expected_scale):
                errors.append(
                    f"{prefix}weight_scale must be {expected_scale} for "
                    f"granularity={self.granularity!r}; got {tuple(scale.shape)}"
                )
            else:
                self.weight_fp8 = q.detach().to(device).clone()
                self.weight_scale = scale.detach().to(device, torch.float32).clone()
                self.__dict__.pop("_pending", None)
        else:
            missing_keys.extend([prefix + "weight_fp8", prefix + "weight_scale"])
        bias = state_dict.get(prefix + "bias")
        if self.bias is None:
            if bias is not None and strict:
                unexpected_keys.append(prefix + "bias")
        elif bias is None:
            missing_keys.append(prefix + "bias")
        elif tuple(bias.shape) != (self.out_features,):
            errors.append(
                f"size mismatch for {prefix}bias: expected ({self.out_features},), "
                f"got {tuple(bias.shape)}"
            )
        else:
            with torch.no_grad():
                self.bias.copy_(bias.float())

    def set_weight(self, weight: torch.Tensor) -> None:
        """Quantizes ``weight`` ``[out_features, in_features]`` (on the GPU) and stores it."""
        if tuple(weight.shape) != (self.out_features, self.in_features):
            raise ShapeError(
                f"weight must be [{self.out_features}, {self.in_features}]; got "
                f"{tuple(weight.shape)}"
            )
        q, s = quantize_fp8(weight.detach().contiguous(), fmt="e4m3", granularity=self.granularity)
        self.weight_fp8, self.weight_scale = q, s

    @classmethod
    def from_linear(cls, linear: nn.Linear, *, granularity: str = "row") -> FP8Linear:
        """An FP8Linear computing what ``linear`` (on the GPU) computes, up to FP8 rounding."""
        w = linear.weight
        if not w.is_cuda:
            raise ArgumentError(
                "move the nn.Linear to the GPU first (linear.cuda()): its weight "
                "is quantized by a GPU kernel"
            )
        m = cls(
            linear.in_features,
            linear.out_features,
            linear.bias is not None,
            granularity=granularity,
            device=w.device,
            dtype=w.dtype,
        )
        with torch.no_grad():
            m.set_weight(w)
            if linear.bias is not None:
                m.bias.copy_(linear.bias.float())
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight_fp8.numel() == 0:
            raise ArgumentError(
                "FP8Linear has no quantized weight yet: move it to the GPU (.cuda() or "
                ".to('cuda'), which quantizes it), call set_weight(weight), or build it "
                "with from_linear"
            )
        return _fp8_linear(x, self.weight_fp8, self.weight_scale, self.bias, self.granularity)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, granularity={self.granularity}"
        )


class FP8TrainingLinear(nn.Linear):
    """An ``nn.Linear`` that trains with FP8 GEMMs: its weight (and bias) stay 16-bit master
    parameters, and each forward quantizes the input and the weight dynamically to e4m3 with
    ``granularity`` and multiplies them on the FP8 kernels (:func:`fusedops.fp8_gemm`). The
    backward passes the gradient straight through the quantization; its GEMMs (dgrad
    ``dOut·W``, wgrad ``dOutᵀ·x``) are FP8 too by default, with current scaling: the gradient
    quantized to e5m2 (``backward="e5m2"``, TransformerEngine's hybrid recipe) or e4m3, the
    transposed weight and input to e4m3; ``backward="dense"`` runs them in the 16-bit dtype.
    Its state dict is an ``nn.Linear``'s; :meth:`to_inference` gives the :class:`FP8Linear` that
    stores the weight in FP8.

    Inputs and the weight are float16/bfloat16 on the GPU; elsewhere the call is refused with
    what to change (an ``nn.Linear`` computes the same in full precision)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        granularity: str = "row",
        backward: str = "e5m2",
        device: Optional[torch.device] = None,
        dtype: torch.dtype = torch.bfloat16,
    ):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        _choice("backward", backward, FP8_BACKWARDS)
        self.granularity = granularity
        self.backward = backward

    @classmethod
    def from_linear(
        cls, linear: nn.Linear, *, granularity: str = "row", backward: str = "e5m2"
    ) -> FP8TrainingLinear:
        """A module with ``linear``'s parameters (copied, same device and dtype)."""
        m = cls(
            linear.in_features,
            linear.out_features,
            linear.bias is not None,
            granularity=granularity,
            backward=backward,
            device=linear.weight.device,
            dtype=linear.weight.dtype,
        )
        m.load_state_dict(linear.state_dict())
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.float()
        return _fp8_linear(x, self.weight, None, bias, self.granularity, self.backward)

    def to_inference(self) -> FP8Linear:
        """The :class:`FP8Linear` of the trained weights (the weight quantized once)."""
        return FP8Linear.from_linear(self, granularity=self.granularity)

    def extra_repr(self) -> str:
        return (
            super().extra_repr()
            + f", granularity={self.granularity}"
            + ("" if self.backward == "e5m2" else f", backward={self.backward}")
        )


class FusedGatedMLP(nn.Module):
    """The gated product of a gated MLP, ``act(x @ gate.T) * (x @ up.T)``, in one kernel.

    ``forward(x)`` maps ``[..., hidden_dim]`` to ``[..., intermediate_dim]``: the two
    projections never reach memory. :class:`FusedMLP` adds the down projection.
    ``recompute``: how the backward gets the projections (see :func:`fused_gated_mlp`).
    """

    def __init__(
        self,
        hidden_dim: int,
        intermediate_dim: int,
        activation: str = "silu",
        *,
        recompute: bool = True,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        self.hidden_dim, self.intermediate_dim, self.activation = (
            hidden_dim,
            intermediate_dim,
            activation,
        )
        self.recompute = recompute
        self.gate_weight = nn.Parameter(
            torch.empty(intermediate_dim, hidden_dim, device=device, dtype=dtype)
        )
        self.up_weight = nn.Parameter(
            torch.empty(intermediate_dim, hidden_dim, device=device, dtype=dtype)
        )
        nn.init.kaiming_uniform_(self.gate_weight, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.up_weight, a=math.sqrt(5))

    @classmethod
    def from_weights(
        cls, gate: torch.Tensor, up: torch.Tensor, activation: str = "silu"
    ) -> FusedGatedMLP:
        """From the ``[I, H]`` gate and up weights of an unfused MLP."""
        m = cls(gate.shape[1], gate.shape[0], activation, device=gate.device, dtype=gate.dtype)
        with torch.no_grad():
            m.gate_weight.copy_(gate)
            m.up_weight.copy_(up)
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_gated_mlp(
            x, self.gate_weight, self.up_weight, self.activation, recompute=self.recompute
        )

    def extra_repr(self) -> str:
        return f"{self.hidden_dim}, {self.intermediate_dim}, activation={self.activation}" + (
            "" if self.recompute else ", recompute=False"
        )


class FusedMLP(nn.Module):
    """LLaMA's MLP: ``down(act(x @ gate.T) * (x @ up.T))``: a :class:`FusedGatedMLP` followed by
    the down projection, an ``nn.Linear`` (no bias) or an :class:`FP8Linear` with
    ``fp8_down=True``. Maps ``[..., hidden_dim]`` to ``[..., hidden_dim]``. ``recompute``: see
    :func:`fused_gated_mlp`.
    """

    def __init__(
        self,
        hidden_dim: int,
        intermediate_dim: int,
        activation: str = "silu",
        *,
        fp8_down: bool = False,
        recompute: bool = True,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        self.gated = FusedGatedMLP(
            hidden_dim,
            intermediate_dim,
            activation,
            recompute=recompute,
            device=device,
            dtype=dtype,
        )
        self.down: nn.Module
        if fp8_down:
            self.down = FP8Linear(
                intermediate_dim,
                hidden_dim,
                bias=False,
                device=device,
                dtype=dtype or torch.bfloat16,
            )
        else:
            self.down = nn.Linear(
                intermediate_dim, hidden_dim, bias=False, device=device, dtype=dtype
            )

    @classmethod
    def from_weights(
        cls,
        gate: torch.Tensor,
        up: torch.Tensor,
        down: torch.Tensor,
        activation: str = "silu",
        *,
        fp8_down: bool = False,
    ) -> FusedMLP:
        """From the ``[I, H]`` gate/up and ``[H, I]`` down weights of an unfused MLP."""
        m = cls(
            gate.shape[1],
            gate.shape[0],
            activation,
            fp8_down=fp8_down,
            device=gate.device,
            dtype=gate.dtype,
        )
        with torch.no_grad():
            m.gated.gate_weight.copy_(gate)
            m.gated.up_weight.copy_(up)
            if fp8_down:
                m.down.set_weight(down)
            else:
                m.down.weight.copy_(down)
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.gated(x))
