//===- FusedOpsDialect.td - fusedops dialect definition ----*- tablegen -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_DIALECT_FUSEDOPS_IR_FUSEDOPSDIALECT_TD
#define FUSEDOPS_DIALECT_FUSEDOPS_IR_FUSEDOPSDIALECT_TD

include "mlir/IR/OpBase.td"

def FusedOps_Dialect : Dialect {
  let name = "fusedops";
  let cppNamespace = "::mlir::fusedops";
  let summary = "Fused Transformer operators: RMSNorm+RoPE, gated MLP, FP8 GEMM";
  let description = [{
    The `fusedops` dialect describes the operators that dominate Transformer
    time as single ops, so that a compiler can lower each of them to one fused
    GPU kernel:

    * `fusedops.rmsnorm_rope`: RMSNorm over the hidden dimension followed by a
      rotary position embedding applied per attention head;
    * `fusedops.gated_mlp`: `act(x·Wgᵀ) ⊙ (x·Wuᵀ)` with SiLU (SwiGLU) or GELU
      (GeGLU) activations;
    * `fusedops.fp8_gemm`: an FP8 (`f8E4M3FN`/`f8E5M2`) matrix product with
      per-tensor, per-row or 128×128-block scales applied in f32;
    * `fusedops.quantize` / `fusedops.dequantize`: FP8 quantization with
      dynamic (absmax) or static scales at the same granularities.

    All ops are in destination-passing style: they take their outputs as
    `outs` operands. On tensors they return the updated tensors; on memrefs
    they write the buffers in place and return nothing. Upstream
    `one-shot-bufferize` takes the tensor form to the memref form, which the
    lowering to GPU kernels consumes.

    `tensor.cast`s that only erase static sizes fold into fusedops ops through
    the tensor dialect's canonicalization of destination-style ops.

    Every op may carry a `#fusedops.tile<...>` attribute that fixes the tile
    configuration of the kernel it lowers to; the autotuner sets it where the
    user did not. An op whose rows are dynamic may carry
    `fusedops.rows_hint = <n>`: the row count its tile is chosen for (one
    kernel serving a class of row counts is tuned for the class's largest).
  }];
  let useDefaultAttributePrinterParser = 1;
  let hasOperationAttrVerify = 1;
}

/// Base class of every fusedops op.
class FusedOps_Op<string mnemonic, list<Trait> traits = []>
    : Op<FusedOps_Dialect, mnemonic, traits>;

#endif // FUSEDOPS_DIALECT_FUSEDOPS_IR_FUSEDOPSDIALECT_TD
