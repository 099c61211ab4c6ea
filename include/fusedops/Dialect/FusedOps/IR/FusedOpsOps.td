//===- FusedOpsOps.td - fusedops operations ----------------*- tablegen -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_DIALECT_FUSEDOPS_IR_FUSEDOPSOPS_TD
#define FUSEDOPS_DIALECT_FUSEDOPS_IR_FUSEDOPSOPS_TD

include "fusedops/Dialect/FusedOps/IR/FusedOpsAttrs.td"
include "fusedops/Dialect/FusedOps/IR/FusedOpsDialect.td"
include "fusedops/Dialect/FusedOps/IR/FusedOpsInterfaces.td"
include "mlir/Interfaces/DestinationStyleOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/OpBase.td"

/// Every shaped operand is a ranked tensor (tensor form) or a ranked memref
/// (buffer form, after bufferization). Element types and shapes are checked
/// by the op verifiers, which can name the operand and what was expected.
def FusedOps_Shaped : AnyTypeOf<[AnyRankedTensor, AnyMemRef]>;

/// Base of the fusedops compute ops: destination style, tile-configurable,
/// memory effects only in buffer form.
class FusedOps_ComputeOp<string mnemonic, list<Trait> traits = []>
    : FusedOps_Op<mnemonic, !listconcat(traits, [
        DestinationStyleOpInterface,
        DeclareOpInterfaceMethods<MemoryEffectsOpInterface>,
        DeclareOpInterfaceMethods<FusedOps_TileConfigurableOpInterface,
                                  ["getTileBlockRank"]>
      ])> {
  let hasVerifier = 1;
  code commonExtraClassDeclaration = [{
    /// Destination-style inits: the `outs` operands.
    ::mlir::MutableOperandRange getDpsInitsMutable() {
      return getInitsMutable();
    }
  }];
  let extraClassDeclaration = commonExtraClassDeclaration;
}

//===----------------------------------------------------------------------===//
// RmsNormRopeOp
//===----------------------------------------------------------------------===//

def FusedOps_RmsNormRopeOp : FusedOps_ComputeOp<"rmsnorm_rope",
    [AttrSizedOperandSegments]> {
  let summary = "RMSNorm over the hidden dimension fused with per-head RoPE";
  let description = [{
    Normalises each row of `input [..., H]` by its root mean square, scales it
    by `weight [H]`, and applies a rotary position embedding to every head
    (consecutive `head_dim`-wide chunks of the row). Arithmetic is in f32:

    ```
    y         = x · rsqrt(mean(x², over H) + eps) · weight
    R         = head_dim · rotary_fraction        (rotated dims per head)
    neox:  out[i]   = y[i]·cos[p,i]       − y[i+R/2]·sin[p,i]        i < R/2
           out[i+R/2] = y[i+R/2]·cos[p,i+R/2] + y[i]·sin[p,i+R/2]
    gptj:  out[2i]   = y[2i]·cos[p,2i]     − y[2i+1]·sin[p,2i]
           out[2i+1] = y[2i+1]·cos[p,2i+1] + y[2i]·sin[p,2i+1]
    out[d] = y[d]                                                 R ≤ d < head_dim
    ```

    `cos` and `sin` are `[S, R]` tables laid out as HuggingFace builds them
    (duplicated halves for `neox`, interleaved pairs for `gptj`). The position
    `p` of a row is its index along dimension -2 of `input` (then `input` has
    rank ≥ 2), or, with the `positions` operand (shape `input[:-1]`, i32 or
    i64), the value given for the row: the decoding case. Positions outside
    `[0, S)` are a runtime error; kernels write NaN to such rows so that the
    error cannot pass silently.

    `input`, `weight` and the result share one element type (f16, bf16 or
    f32); `cos`/`sin` are f32 or that type. Leading dimensions may be dynamic.

    Example:

    ```mlir
    %r = fusedops.rmsnorm_rope
        ins(%x, %w, %cos, %sin : tensor<?x2048x4096xf16>, tensor<4096xf16>,
            tensor<2048x64xf32>, tensor<2048x64xf32>)
        outs(%init : tensor<?x2048x4096xf16>)
        head_dim = 64 eps = 9.99999997E-7 style = neox
        -> tensor<?x2048x4096xf16>
    ```
  }];
  let arguments = (ins
    FusedOps_Shaped:$input,
    FusedOps_Shaped:$weight,
    FusedOps_Shaped:$cos,
    FusedOps_Shaped:$sin,
    Optional<FusedOps_Shaped>:$positions,
    Variadic<FusedOps_Shaped>:$inits,
    ConfinedAttr<I64Attr, [IntPositive]>:$head_dim,
    F32Attr:$eps,
    FusedOps_RopeStyleAttr:$rope_style,
    OptionalAttr<F32Attr>:$rotary_fraction,
    OptionalAttr<FusedOps_TileConfigAttr>:$tile
  );
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    `ins` `(` $input `,` $weight `,` $cos `,` $sin `:`
      type($input) `,` type($weight) `,` type($cos) `,` type($sin) `)`
    (`positions` `(` $positions^ `:` type($positions) `)`)?
    `outs` `(` $inits `:` type($inits) `)`
    `head_dim` `=` $head_dim `eps` `=` $eps `style` `=` `` $rope_style
    (`rotary_fraction` `=` $rotary_fraction^)?
    attr-dict (`->` type($results)^)?
  }];
  let builders = [
    OpBuilder<(ins "Value":$input, "Value":$weight, "Value":$cos,
                   "Value":$sin, "Value":$init, "int64_t":$headDim,
                   "float":$eps, "RopeStyle":$ropeStyle,
                   CArg<"Value", "{}">:$positions,
                   CArg<"std::optional<float>", "std::nullopt">:$rotaryFraction), [{
      build($_builder, $_state, getDestinationResultTypes(init), input,
            weight, cos, sin, positions, ValueRange{init},
            $_builder.getI64IntegerAttr(headDim), $_builder.getF32FloatAttr(eps),
            RopeStyleAttr::get($_builder.getContext(), ropeStyle),
            rotaryFraction ? $_builder.getF32FloatAttr(*rotaryFraction)
                           : FloatAttr(),
            TileConfigAttr());
    }]>
  ];
  let extraClassDeclaration = commonExtraClassDeclaration # [{
    /// Number of dimensions rotated in each head (`head_dim · rotary_fraction`).
    /// Only meaningful on a verified op.
    int64_t getRotaryDim();
    /// The tile takes block = [R] or [R, S] (S = 1 by default).
    unsigned getMinTileBlockRank() { return 1; }
  }];
}

//===----------------------------------------------------------------------===//
// RmsNormRopeGradOp
//===----------------------------------------------------------------------===//

def FusedOps_RmsNormRopeGradOp : FusedOps_ComputeOp<"rmsnorm_rope_grad",
    [AttrSizedOperandSegments]> {
  let summary = "the backward of rmsnorm_rope: the gradients of its input "
                "and weight";
  let description = [{
    For `rmsnorm_rope`'s operands and attributes and the gradient `grad` of
    its output (the shape of `input`), computes per row, in f32:

    ```
    dy  = RoPE⁻¹(grad)          (the rotation by −θ; pass-through dims as is)
    g   = dy · weight,   r = rsqrt(mean(x²) + eps)
    dx  = r · g − x · r³ · mean(g · x)
    ```

    stored into the first `outs` (the shape and type of `input`), and the
    weight's gradient `Σ_rows dy · x · r` as partial sums in the second,
    `[P, H]` f32: row `p` holds the sum over the rows `r` with
    `p·C ≤ r < (p+1)·C`, `C = ⌈rows / P⌉` (a fixed assignment of consecutive
    rows, which mostly share a position, so deterministic); the weight's
    gradient is the sum over `P`. With a third `outs` (`[H]`, the weight's
    element type) the op also sums the partials over `P`, in a fixed order,
    into it: the weight's gradient itself. A row whose
    position is out of range gets NaN, as the forward's. The attributes and
    the `positions` operand are `rmsnorm_rope`'s.

    Example:

    ```mlir
    %dx, %dw = fusedops.rmsnorm_rope_grad
        ins(%x, %w, %cos, %sin, %dout : tensor<?x32x128xbf16>,
            tensor<128xbf16>, tensor<4096x128xf32>, tensor<4096x128xf32>,
            tensor<?x32x128xbf16>)
        positions(%pos : tensor<?x32xi32>)
        outs(%dx0, %dw0 : tensor<?x32x128xbf16>, tensor<1056x128xf32>)
        head_dim = 128 eps = 9.99999997E-7 style = neox
        -> tensor<?x32x128xbf16>, tensor<1056x128xf32>
    ```
  }];
  let arguments = (ins
    FusedOps_Shaped:$input,
    FusedOps_Shaped:$weight,
    FusedOps_Shaped:$cos,
    FusedOps_Shaped:$sin,
    FusedOps_Shaped:$grad,
    Optional<FusedOps_Shaped>:$positions,
    Variadic<FusedOps_Shaped>:$inits,
    ConfinedAttr<I64Attr, [IntPositive]>:$head_dim,
    F32Attr:$eps,
    FusedOps_RopeStyleAttr:$rope_style,
    OptionalAttr<F32Attr>:$rotary_fraction,
    OptionalAttr<FusedOps_TileConfigAttr>:$tile
  );
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    `ins` `(` $input `,` $weight `,` $cos `,` $sin `,` $grad `:`
      type($input) `,` type($weight) `,` type($cos) `,` type($sin) `,`
      type($grad) `)`
    (`positions` `(` $positions^ `:` type($positions) `)`)?
    `outs` `(` $inits `:` type($inits) `)`
    `head_dim` `=` $head_dim `eps` `=` $eps `style` `=` `` $rope_style
    (`rotary_fraction` `=` $rotary_fraction^)?
    attr-dict (`->` type($results)^)?
  }];
  let builders = [
    OpBuilder<(ins "Value":$input, "Value":$weight, "Value":$cos,
                   "Value":$sin, "Value":$grad, "Value":$gradInput,
                   "Value":$weightGradPartials, "int64_t":$headDim,
                   "float":$eps, "RopeStyle":$ropeStyle,
                   CArg<"Value", "{}">:$positions,
                   CArg<"std::optional<float>", "std::nullopt">:$rotaryFraction,
                   CArg<"Value", "{}">:$weightGrad), [{
      SmallVector<Value, 3> inits = {gradInput, weightGradPartials};
      if (weightGrad)
        inits.push_back(weightGrad);
      build($_builder, $_state, getDestinationResultTypes(inits),
            input, weight, cos, sin, grad, positions, inits,
            $_builder.getI64IntegerAttr(headDim), $_builder.getF32FloatAttr(eps),
            RopeStyleAttr::get($_builder.getContext(), ropeStyle),
            rotaryFraction ? $_builder.getF32FloatAttr(*rotaryFraction)
                           : FloatAttr(),
            TileConfigAttr());
    }]>
  ];
  let extraClassDeclaration = commonExtraClassDeclaration # [{
    /// Number of dimensions rotated in each head (`head_dim · rotary_fraction`).
    /// Only meaningful on a verified op.
    int64_t getRotaryDim();
    /// The third `outs` (the weight's gradient, summed over the partials),
    /// or null.
    Value getWeightGrad() {
      return getInits().size() > 2 ? getInits()[2] : Value();
    }
  }];
}

//===----------------------------------------------------------------------===//
// RmsNormOp
//===----------------------------------------------------------------------===//

def FusedOps_RmsNormOp : FusedOps_ComputeOp<"rms_norm",
    [AttrSizedOperandSegments]> {
  let summary = "RMSNorm over the hidden dimension, optionally after a "
                "residual add";
  let description = [{
    Normalises each row of `input [..., H]` by its root mean square and
    scales it by `weight_offset + weight [H]`. With a `residual` operand (the
    shape of `input`) the row normalised is the sum `s = input + residual`,
    rounded to the element type, and `s` is the second result: the residual
    stream of a pre-norm Transformer layer, which vLLM's `fused_add_rms_norm`
    computes in place. Arithmetic is in f32, with one rounding per output:

    ```
    s   = round(input + residual)                    (with `residual`)
    out = s · rsqrt(mean(s², over H) + eps) · (weight_offset + weight)
    ```

    `weight_offset` (default 0) is 1 for Gemma's norms, which store
    `weight - 1`. `input`, `residual`, `weight` and the results share one
    element type (f16, bf16 or f32). Leading dimensions may be dynamic.

    Example:

    ```mlir
    %out, %sum = fusedops.rms_norm ins(%x, %w : tensor<?x4096xbf16>, tensor<4096xbf16>)
        residual(%r : tensor<?x4096xbf16>)
        outs(%o, %s : tensor<?x4096xbf16>, tensor<?x4096xbf16>) eps = 9.99999997E-7
        -> tensor<?x4096xbf16>, tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins
    FusedOps_Shaped:$input,
    FusedOps_Shaped:$weight,
    Optional<FusedOps_Shaped>:$residual,
    Variadic<FusedOps_Shaped>:$inits,
    F32Attr:$eps,
    OptionalAttr<F32Attr>:$weight_offset,
    OptionalAttr<FusedOps_TileConfigAttr>:$tile
  );
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    `ins` `(` $input `,` $weight `:` type($input) `,` type($weight) `)`
    (`residual` `(` $residual^ `:` type($residual) `)`)?
    `outs` `(` $inits `:` type($inits) `)`
    `eps` `=` $eps
    (`weight_offset` `=` $weight_offset^)?
    attr-dict (`->` type($results)^)?
  }];
  let builders = [
    /// `inits` are the output, and with a `residual` the sum after it.
    OpBuilder<(ins "Value":$input, "Value":$weight, "ValueRange":$inits,
                   "float":$eps, CArg<"Value", "{}">:$residual,
                   CArg<"std::optional<float>", "std::nullopt">:$weightOffset), [{
      build($_builder, $_state, getDestinationResultTypes(inits), input,
            weight, residual, inits, $_builder.getF32FloatAttr(eps),
            weightOffset ? $_builder.getF32FloatAttr(*weightOffset)
                         : FloatAttr(),
            TileConfigAttr());
    }]>
  ];
  let extraClassDeclaration = commonExtraClassDeclaration # [{
    /// `weight_offset`, 0 when absent.
    float getWeightOffsetValue() {
      std::optional<APFloat> offset = getWeightOffset();
      return offset ? offset->convertToFloat() : 0.0f;
    }
  }];
}

//===----------------------------------------------------------------------===//
// RmsNormGradOp
//===----------------------------------------------------------------------===//

def FusedOps_RmsNormGradOp : FusedOps_ComputeOp<"rms_norm_grad",
    [AttrSizedOperandSegments]> {
  let summary = "the backward of rms_norm: the gradients of its input and "
                "weight";
  let description = [{
    For the rows `x` that `rms_norm` normalised (its `input`, or with a
    residual the sum it stored), its `weight` and `eps`, `weight_offset`,
    and the gradient `grad` of its output (the shape of `input`), computes
    per row, in f32:

    ```
    g   = grad · (weight_offset + weight),   r = rsqrt(mean(x²) + eps)
    dx  = r · g − x · r³ · mean(g · x)  (+ residual_grad)
    ```

    stored into the first `outs` (the shape and type of `input`). With a
    `residual_grad` operand (the gradient of `rms_norm`'s second result, the
    sum) it is added: `dx` is then the gradient of both `input` and
    `residual`, which the sum took unchanged. The weight's gradient
    `Σ_rows grad · x · r` goes as partial sums into the second `outs`,
    `[P, H]` f32: row `p` holds the sum over the rows `r` with
    `p·C ≤ r < (p+1)·C`, `C = ⌈rows / P⌉` (a fixed assignment, so
    deterministic); the weight's gradient is the sum over `P`. With a third
    `outs` (`[H]`, the weight's element type) the op also sums the partials
    over `P`, in a fixed order, into it: the weight's gradient itself.

    Example:

    ```mlir
    %dx, %dw_partials, %dw = fusedops.rms_norm_grad
        ins(%s, %w, %dout : tensor<?x4096xbf16>, tensor<4096xbf16>,
            tensor<?x4096xbf16>)
        residual_grad(%dsum : tensor<?x4096xbf16>)
        outs(%dx0, %dwp0, %dw0 : tensor<?x4096xbf16>, tensor<1056x4096xf32>,
             tensor<4096xbf16>)
        eps = 9.99999997E-7
        -> tensor<?x4096xbf16>, tensor<1056x4096xf32>, tensor<4096xbf16>
    ```
  }];
  let arguments = (ins
    FusedOps_Shaped:$input,
    FusedOps_Shaped:$weight,
    FusedOps_Shaped:$grad,
    Optional<FusedOps_Shaped>:$residual_grad,
    Variadic<FusedOps_Shaped>:$inits,
    F32Attr:$eps,
    OptionalAttr<F32Attr>:$weight_offset,
    OptionalAttr<FusedOps_TileConfigAttr>:$tile
  );
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    `ins` `(` $input `,` $weight `,` $grad `:` type($input) `,`
      type($weight) `,` type($grad) `)`
    (`residual_grad` `(` $residual_grad^ `:` type($residual_grad) `)`)?
    `outs` `(` $inits `:` type($inits) `)`
    `eps` `=` $eps
    (`weight_offset` `=` $weight_offset^)?
    attr-dict (`->` type($results)^)?
  }];
  let builders = [
    OpBuilder<(ins "Value":$input, "Value":$weight, "Value":$grad,
                   "Value":$gradInput, "Value":$weightGradPartials,
                   "float":$eps, CArg<"Value", "{}">:$residualGrad,
                   CArg<"std::optional<float>", "std::nullopt">:$weightOffset,
                   CArg<"Value", "{}">:$weightGrad), [{
      SmallVector<Value, 3> inits = {gradInput, weightGradPartials};
      if (weightGrad)
        inits.push_back(weightGrad);
      build($_builder, $_state, getDestinationResultTypes(inits),
            input, weight, grad, residualGrad, inits,
            $_builder.getF32FloatAttr(eps),
            weightOffset ? $_builder.getF32FloatAttr(*weightOffset)
                         : FloatAttr(),
            TileConfigAttr());
    }]>
  ];
  let extraClassDeclaration = commonExtraClassDeclaration # [{
    /// `weight_offset`, 0 when absent.
    float getWeightOffsetValue() {
      std::optional<APFloat> offset = getWeightOffset();
      return offset ? offset->convertToFloat() : 0.0f;
    }
    /// The third `outs` (the weight's gradient, summed over the partials),
    /// or null.
    Value getWeightGrad() {
      return getInits().size() > 2 ? getInits()[2] : Value();
    }
  }];
}

//===----------------------------------------------------------------------===//
// GatedMlpOp
//===----------------------------------------------------------------------===//

def FusedOps_GatedMlpOp : FusedOps_ComputeOp<"gated_mlp"> {
  let summary = "gated MLP: act(x·Wgᵀ) ⊙ (x·Wuᵀ)";
  let description = [{
    Computes `out[..., n] = act(Σ_k x[..., k]·Wg[n, k]) · (Σ_k x[..., k]·Wu[n, k])`
    for `input [..., K]`, `gate_weight [N, K]` and `up_weight [N, K]` (the
    `nn.Linear` weight layout), accumulating in f32. The two `[..., N]`
    projections are intermediate values of one kernel: they never reach
    memory, unless the op has three `outs` (`%out, %gate, %up`): then it
    also stores them, `gate = x·Wgᵀ` and `up = x·Wuᵀ`, for a backward that
    reloads them (`gated_act_grad`) instead of recomputing them
    (`gated_mlp_grad`). All operands and the results share one element type,
    f16 or bf16
    (the tensor-core operand types: an f32 gated MLP would silently run in
    TF32, so f32 operands are refused and must be converted); leading
    dimensions may be dynamic.

    Example:

    ```mlir
    %h = fusedops.gated_mlp
        ins(%x, %wg, %wu : tensor<?x4096xbf16>, tensor<11008x4096xbf16>,
            tensor<11008x4096xbf16>)
        outs(%init : tensor<?x11008xbf16>) activation = silu
        {tile = #fusedops.tile<block = [128, 128, 32], warps = 4, stages = 3>}
        -> tensor<?x11008xbf16>
    ```
  }];
  let arguments = (ins
    FusedOps_Shaped:$input,
    FusedOps_Shaped:$gate_weight,
    FusedOps_Shaped:$up_weight,
    Variadic<FusedOps_Shaped>:$inits,
    FusedOps_ActivationAttr:$activation,
    OptionalAttr<FusedOps_TileConfigAttr>:$tile
  );
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    `ins` `(` $input `,` $gate_weight `,` $up_weight `:`
      type($input) `,` type($gate_weight) `,` type($up_weight) `)`
    `outs` `(` $inits `:` type($inits) `)`
    `activation` `=` `` $activation
    attr-dict (`->` type($results)^)?
  }];
  let builders = [
    OpBuilder<(ins "Value":$input, "Value":$gateWeight, "Value":$upWeight,
                   "Value":$init, "Activation":$activation), [{
      build($_builder, $_state, getDestinationResultTypes(init), input,
            gateWeight, upWeight, ValueRange{init},
            ActivationAttr::get($_builder.getContext(), activation),
            TileConfigAttr());
    }]>
  ];
}

//===----------------------------------------------------------------------===//
// GatedMlpGradOp
//===----------------------------------------------------------------------===//

def FusedOps_GatedMlpGradOp : FusedOps_ComputeOp<"gated_mlp_grad"> {
  let summary = "gated_mlp's backward through act and ⊙: the gradients of "
                "its two projections";
  let description = [{
    For the gradient `grad [..., N]` of `gated_mlp`'s output with respect to
    a loss, computes the gradients of its two projections,

    ```
    g = x·Wgᵀ,  u = x·Wuᵀ           (recomputed: one GEMM, as gated_mlp's)
    grad_gate[..., n] = grad · u · act′(g)
    grad_up[..., n]   = grad · act(g)
    ```

    for `input [..., K]`, `gate_weight [N, K]` and `up_weight [N, K]`, in f32
    from the f32 accumulators, stored into `outs(%grad_gate, %grad_up)`
    `[..., N]`. The rest of the backward are plain GEMMs of these:
    `dx = grad_gate·Wg + grad_up·Wu`, `dWg = grad_gateᵀ·x`,
    `dWu = grad_upᵀ·x`. The projections are recomputed rather than saved by
    the forward, so a training step keeps no `[..., N]` activation of the
    gated MLP between its forward and backward. Operands and results share
    one element type, f16 or bf16, as `gated_mlp`'s; leading dimensions may
    be dynamic.

    Example:

    ```mlir
    %dg, %du = fusedops.gated_mlp_grad
        ins(%x, %wg, %wu, %dh : tensor<?x4096xbf16>, tensor<11008x4096xbf16>,
            tensor<11008x4096xbf16>, tensor<?x11008xbf16>)
        outs(%dg0, %du0 : tensor<?x11008xbf16>, tensor<?x11008xbf16>)
        activation = silu -> tensor<?x11008xbf16>, tensor<?x11008xbf16>
    ```
  }];
  let arguments = (ins
    FusedOps_Shaped:$input,
    FusedOps_Shaped:$gate_weight,
    FusedOps_Shaped:$up_weight,
    FusedOps_Shaped:$grad,
    Variadic<FusedOps_Shaped>:$inits,
    FusedOps_ActivationAttr:$activation,
    OptionalAttr<FusedOps_TileConfigAttr>:$tile
  );
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    `ins` `(` $input `,` $gate_weight `,` $up_weight `,` $grad `:`
      type($input) `,` type($gate_weight) `,` type($up_weight) `,`
      type($grad) `)`
    `outs` `(` $inits `:` type($inits) `)`
    `activation` `=` `` $activation
    attr-dict (`->` type($results)^)?
  }];
  let builders = [
    OpBuilder<(ins "Value":$input, "Value":$gateWeight, "Value":$upWeight,
                   "Value":$grad, "Value":$gradGate, "Value":$gradUp,
                   "Activation":$activation), [{
      build($_builder, $_state,
            getDestinationResultTypes(ValueRange{gradGate, gradUp}), input,
            gateWeight, upWeight, grad,
            ValueRange{gradGate, gradUp},
            ActivationAttr::get($_builder.getContext(), activation),
            TileConfigAttr());
    }]>
  ];
}

//===----------------------------------------------------------------------===//
// GatedActGradOp
//===----------------------------------------------------------------------===//

def FusedOps_GatedActGradOp : FusedOps_ComputeOp<"gated_act_grad"> {
  let summary = "the backward of act(gate) ⊙ up, from saved pre-activations";
  let description = [{
    Elementwise, for the pre-activations `gate` and `up` a `gated_mlp` with
    three `outs` stored and the gradient `grad` of its output:

    ```
    grad_gate = grad · up · act′(gate),   grad_up = grad · act(gate)
    ```

    in f32, stored into `outs(%grad_gate, %grad_up)`. The same gradients as
    `gated_mlp_grad`, which recomputes the pre-activations with a GEMM where
    this reads them: it moves five `[..., N]` tensors through memory and
    does no GEMM, at the cost of keeping `gate` and `up` from the forward to
    the backward. All operands share one shape and element type (f16 or
    bf16); leading dimensions may be dynamic.

    Example:

    ```mlir
    %dg, %du = fusedops.gated_act_grad
        ins(%g, %u, %dh : tensor<?x11008xbf16>, tensor<?x11008xbf16>,
            tensor<?x11008xbf16>)
        outs(%dg0, %du0 : tensor<?x11008xbf16>, tensor<?x11008xbf16>)
        activation = silu -> tensor<?x11008xbf16>, tensor<?x11008xbf16>
    ```
  }];
  let arguments = (ins
    FusedOps_Shaped:$gate,
    FusedOps_Shaped:$up,
    FusedOps_Shaped:$grad,
    Variadic<FusedOps_Shaped>:$inits,
    FusedOps_ActivationAttr:$activation,
    OptionalAttr<FusedOps_TileConfigAttr>:$tile
  );
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    `ins` `(` $gate `,` $up `,` $grad `:`
      type($gate) `,` type($up) `,` type($grad) `)`
    `outs` `(` $inits `:` type($inits) `)`
    `activation` `=` `` $activation
    attr-dict (`->` type($results)^)?
  }];
  let builders = [
    OpBuilder<(ins "Value":$gate, "Value":$up, "Value":$grad,
                   "Value":$gradGate, "Value":$gradUp,
                   "Activation":$activation), [{
      build($_builder, $_state,
            getDestinationResultTypes(ValueRange{gradGate, gradUp}), gate, up,
            grad, ValueRange{gradGate, gradUp},
            ActivationAttr::get($_builder.getContext(), activation),
            TileConfigAttr());
    }]>
  ];
}

//===----------------------------------------------------------------------===//
// Fp8GemmOp
//===----------------------------------------------------------------------===//

def FusedOps_Fp8GemmOp : FusedOps_ComputeOp<"fp8_gemm",
    [AttrSizedOperandSegments]> {
  let summary = "scaled FP8 matrix product: (A·sa)·(B·sb)ᵀ + bias";
  let description = [{
    Computes `out[m, n] = Σ_k A[m,k]·sa(m,k) · B[n,k]·sb(n,k) + bias[n]` in
    f32 for `lhs A [M, K]` and `rhs B [N, K]` in `f8E4M3FN` or `f8E5M2` (the
    two may differ). The scales are f32 and shaped by `granularity`:

    | granularity | lhs_scale                  | rhs_scale                  |
    |-------------|----------------------------|----------------------------|
    | `tensor`    | `tensor<f32>`              | `tensor<f32>`              |
    | `row`       | `[M]`                      | `[N]`                      |
    | `block128`  | `[⌈M/128⌉, ⌈K/128⌉]`       | `[⌈N/128⌉, ⌈K/128⌉]`       |

    The optional `bias [N]` is f32 or the result's element type. The result
    `[M, N]` is f16, bf16 or f32. `M` may be dynamic.

    The sums are f32. Hopper's FP8 warpgroup MMAs add their products with
    about 14 bits of mantissa, so there the kernel adds each K tile's (at most
    128 of K) products to f32 sums ("promotion", as cuBLASLt does by default).
    `fast_accum` lets the kernel skip that and keep the tensor cores' own
    sums over all of K: faster, less accurate, allowed with `tensor` and `row`
    scales (`block128` scales are applied per 128 of K, on promoted sums).
    Where the FP8 MMAs accumulate in f32 (sm_80 decodes to f16, sm_89
    mma.sync) it changes nothing.

    Example:

    ```mlir
    %c = fusedops.fp8_gemm
        ins(%a, %b, %sa, %sb : tensor<?x4096xf8E4M3FN>, tensor<4096x4096xf8E4M3FN>,
            tensor<f32>, tensor<f32>)
        outs(%init : tensor<?x4096xbf16>) granularity = tensor
        -> tensor<?x4096xbf16>
    %d = fusedops.fp8_gemm
        ins(%a, %b, %sa, %sb : tensor<?x4096xf8E4M3FN>, tensor<4096x4096xf8E4M3FN>,
            tensor<?xf32>, tensor<4096xf32>)
        outs(%init : tensor<?x4096xbf16>) granularity = row fast_accum
        -> tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins
    FusedOps_Shaped:$lhs,
    FusedOps_Shaped:$rhs,
    FusedOps_Shaped:$lhs_scale,
    FusedOps_Shaped:$rhs_scale,
    Optional<FusedOps_Shaped>:$bias,
    Variadic<FusedOps_Shaped>:$inits,
    FusedOps_ScaleGranularityAttr:$granularity,
    UnitAttr:$fast_accum,
    OptionalAttr<FusedOps_TileConfigAttr>:$tile
  );
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    `ins` `(` $lhs `,` $rhs `,` $lhs_scale `,` $rhs_scale `:`
      type($lhs) `,` type($rhs) `,` type($lhs_scale) `,` type($rhs_scale) `)`
    (`bias` `(` $bias^ `:` type($bias) `)`)?
    `outs` `(` $inits `:` type($inits) `)`
    `granularity` `=` `` $granularity (`fast_accum` $fast_accum^)?
    attr-dict (`->` type($results)^)?
  }];
  let builders = [
    OpBuilder<(ins "Value":$lhs, "Value":$rhs, "Value":$lhsScale,
                   "Value":$rhsScale, "Value":$init,
                   "ScaleGranularity":$granularity,
                   CArg<"Value", "{}">:$bias), [{
      build($_builder, $_state, getDestinationResultTypes(init), lhs, rhs,
            lhsScale, rhsScale, bias, ValueRange{init},
            ScaleGranularityAttr::get($_builder.getContext(), granularity),
            /*fast_accum=*/UnitAttr(), TileConfigAttr());
    }]>
  ];
}

//===----------------------------------------------------------------------===//
// QuantizeOp
//===----------------------------------------------------------------------===//

def FusedOps_QuantizeOp : FusedOps_ComputeOp<"quantize",
    [AttrSizedOperandSegments]> {
  let summary = "FP8 quantization with dynamic (absmax) or static scales";
  let description = [{
    Quantizes `input [M, K]` (f16, bf16 or f32) to `f8E4M3FN` or `f8E5M2`
    with one f32 scale per group of elements chosen by `granularity` (see
    `fusedops.fp8_gemm` for the scale shapes).

    *Dynamic* (no `scale` operand; two inits, values and scales): for each
    group, `amax = max |x|` over its finite elements,
    `scale = max(amax, 1e-12) / fp8_max` (448 for e4m3, 57344 for e5m2) is
    written to the scale init, and `q = saturate(round(x / scale))`.

    *Static* (a `scale` operand; one init): `q = saturate(round(x / scale))`
    with the given positive, finite scales.

    *Transposed* (dynamic `block128` only; a third init `[K, M']`, `M'` the
    rows rounded up to a multiple of 16): also writes `qᵀ`, zero past row
    `M`: the K-major operand of a GEMM that reduces over M (a weight
    gradient's `xᵀ`), with the scales transposed: a 128×128 block's scale is
    the same for the values and their transpose. One read of `x` gives both.

    Rounding is to nearest, ties to even. Saturation clamps finite values
    and ±inf to ±fp8_max; NaN stays NaN.

    `quantize(dequantize(q, s), scale = s)` with the same granularity folds
    to `q` when the dequantized values are f32: `q` has at most 4 significant
    bits, so `q·s` and `(q·s)/s` lose nothing that rounding to FP8 could
    see, for every normal f32 scale. The reverse, `dequantize(quantize(x))`,
    is not `x` and is never folded.

    Example:

    ```mlir
    %q, %s = fusedops.quantize ins(%x : tensor<?x4096xbf16>)
        outs(%qi, %si : tensor<?x4096xf8E4M3FN>, tensor<?xf32>)
        granularity = row -> tensor<?x4096xf8E4M3FN>, tensor<?xf32>
    ```
  }];
  let arguments = (ins
    FusedOps_Shaped:$input,
    Optional<FusedOps_Shaped>:$scale,
    Variadic<FusedOps_Shaped>:$inits,
    FusedOps_ScaleGranularityAttr:$granularity,
    OptionalAttr<FusedOps_TileConfigAttr>:$tile
  );
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    `ins` `(` $input `:` type($input) `)`
    (`scale` `(` $scale^ `:` type($scale) `)`)?
    `outs` `(` $inits `:` type($inits) `)`
    `granularity` `=` `` $granularity
    attr-dict (`->` type($results)^)?
  }];
  let builders = [
    /// Dynamic quantization: `inits` are the values and the scales. Static
    /// quantization: `scale` is given and `inits` holds the values only.
    OpBuilder<(ins "Value":$input, "ValueRange":$inits,
                   "ScaleGranularity":$granularity,
                   CArg<"Value", "{}">:$scale), [{
      build($_builder, $_state, getDestinationResultTypes(inits), input,
            scale, inits,
            ScaleGranularityAttr::get($_builder.getContext(), granularity),
            TileConfigAttr());
    }]>
  ];
  let hasFolder = 1;
  let extraClassDeclaration = commonExtraClassDeclaration # [{
    /// True when the op computes its scales (no `scale` operand).
    bool isDynamic() { return !getScale(); }
    /// The init of the transposed values, or null.
    Value getTransposedInit() {
      return isDynamic() && getInits().size() == 3 ? getInits()[2] : Value();
    }
    /// M' of the transposed values `[K, M']`: `rows` rounded up to a
    /// multiple of 16 (a 16-byte row stride for FP8), dynamic stays dynamic.
    static int64_t getTransposedRows(int64_t rows) {
      return ShapedType::isDynamic(rows) ? rows : llvm::alignTo(rows, 16);
    }
  }];
}

//===----------------------------------------------------------------------===//
// DequantizeOp
//===----------------------------------------------------------------------===//

def FusedOps_DequantizeOp : FusedOps_ComputeOp<"dequantize"> {
  let summary = "FP8 dequantization: q · scale";
  let description = [{
    Computes `out = f32(q) · scale` for `input [M, K]` in `f8E4M3FN` or
    `f8E5M2` and f32 scales shaped by `granularity` (see `fusedops.fp8_gemm`),
    rounded to the result's element type (f16, bf16 or f32).

    Example:

    ```mlir
    %x = fusedops.dequantize ins(%q, %s : tensor<?x4096xf8E4M3FN>, tensor<?xf32>)
        outs(%init : tensor<?x4096xf32>) granularity = row -> tensor<?x4096xf32>
    ```
  }];
  let arguments = (ins
    FusedOps_Shaped:$input,
    FusedOps_Shaped:$scale,
    Variadic<FusedOps_Shaped>:$inits,
    FusedOps_ScaleGranularityAttr:$granularity,
    OptionalAttr<FusedOps_TileConfigAttr>:$tile
  );
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    `ins` `(` $input `,` $scale `:` type($input) `,` type($scale) `)`
    `outs` `(` $inits `:` type($inits) `)`
    `granularity` `=` `` $granularity
    attr-dict (`->` type($results)^)?
  }];
  let builders = [
    OpBuilder<(ins "Value":$input, "Value":$scale, "Value":$init,
                   "ScaleGranularity":$granularity), [{
      build($_builder, $_state, getDestinationResultTypes(init), input, scale,
            ValueRange{init},
            ScaleGranularityAttr::get($_builder.getContext(), granularity),
            TileConfigAttr());
    }]>
  ];
}

#endif // FUSEDOPS_DIALECT_FUSEDOPS_IR_FUSEDOPSOPS_TD
