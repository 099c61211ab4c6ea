//===- FusedOpsAttrs.td - fusedops attributes and enums ----*- tablegen -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_DIALECT_FUSEDOPS_IR_FUSEDOPSATTRS_TD
#define FUSEDOPS_DIALECT_FUSEDOPS_IR_FUSEDOPSATTRS_TD

include "fusedops/Dialect/FusedOps/IR/FusedOpsDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def FusedOps_RopeStyle : I32EnumAttr<"RopeStyle",
    "how the rotated dimensions of a head are paired", [
      I32EnumAttrCase<"neox", 0>,
      I32EnumAttrCase<"gptj", 1>
    ]> {
  let cppNamespace = "::mlir::fusedops";
  let genSpecializedAttr = 0;
  let description = [{
    `neox` pairs dimension `i` with `i + R/2` (the "rotate half" layout of
    GPT-NeoX and LLaMA); `gptj` pairs dimension `2i` with `2i + 1` (the
    interleaved layout of GPT-J).
  }];
}
def FusedOps_RopeStyleAttr : EnumAttr<FusedOps_Dialect, FusedOps_RopeStyle,
                                      "rope_style">;

def FusedOps_Activation : I32EnumAttr<"Activation",
    "the activation applied to the gate projection", [
      I32EnumAttrCase<"silu", 0>,
      I32EnumAttrCase<"gelu", 1>,
      I32EnumAttrCase<"gelu_tanh", 2>
    ]> {
  let cppNamespace = "::mlir::fusedops";
  let genSpecializedAttr = 0;
  let description = [{
    `silu(g) = g·sigmoid(g)` (SwiGLU); `gelu(g) = g·Φ(g)` with the exact erf
    form (GeGLU); `gelu_tanh` is the tanh approximation
    `0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³)))`.
  }];
}
def FusedOps_ActivationAttr : EnumAttr<FusedOps_Dialect, FusedOps_Activation,
                                       "activation">;

def FusedOps_ScaleGranularity : I32EnumAttr<"ScaleGranularity",
    "which elements share one FP8 scale", [
      I32EnumAttrCase<"tensor", 0>,
      I32EnumAttrCase<"row", 1>,
      I32EnumAttrCase<"block128", 2>
    ]> {
  let cppNamespace = "::mlir::fusedops";
  let genSpecializedAttr = 0;
  let description = [{
    For a matrix `[M, K]`: `tensor` has one scale (a rank-0 tensor), `row` one
    scale per row (`[M]`), `block128` one scale per 128×128 block
    (`[ceildiv(M, 128), ceildiv(K, 128)]`). For the GEMM's `B [N, K]`, `row`
    scales are per output column.
  }];
}
def FusedOps_ScaleGranularityAttr : EnumAttr<FusedOps_Dialect,
                                             FusedOps_ScaleGranularity,
                                             "granularity">;

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

class FusedOps_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<FusedOps_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

def FusedOps_TileConfigAttr : FusedOps_Attr<"TileConfig", "tile"> {
  let summary = "the tile configuration of the kernel an op lowers to";
  let description = [{
    Fixes how the kernel for one op is tiled:

    * `block`: the block tile, outermost dimension first. GEMM-like ops
      (`gated_mlp`, `fp8_gemm`) take `[BM, BN, BK]`; `rmsnorm_rope` takes
      `[rows]` (rows a thread block takes in turn) or `[rows, at_once]`
      (each step `at_once` consecutive rows, each over a warp's lanes: for
      narrow rows such as QK-norm's heads); `rmsnorm_rope_grad` takes
      `[at_once]`; `quantize`/`dequantize` take `[rows, cols]`.
    * `warps`: warps per thread block (a power of two, at most 32).
    * `stages`: depth of the shared-memory software pipeline (default 1);
      for the dynamic `tensor` quantize's one-pass kernel, the tiles a block
      keeps in registers across its grid barrier; the row kernels
      (`rmsnorm_rope` and the norm backwards) take 1.
    * `cluster`: thread-block cluster shape, Hopper only (optional; at most
      3 dims, product at most 16). The sm_90a GEMM mainloop builds `[2]`:
      two blocks computing vertically adjacent tiles, each loading half of
      every B tile for both (TMA multicast); the other kernels take none.

    Example:

    ```mlir
    #fusedops.tile<block = [128, 128, 32], warps = 4, stages = 3>
    #fusedops.tile<block = [128, 192, 64], warps = 8, stages = 3, cluster = [2]>
    ```

    The autotuner writes this attribute on ops that have none; a tile the user
    wrote is never overridden.
  }];
  let parameters = (ins
    ArrayRefParameter<"int64_t", "block tile sizes, outermost first">:$block,
    "int64_t":$warps,
    DefaultValuedParameter<"int64_t", "1", "software pipeline depth">:$stages,
    OptionalArrayRefParameter<"int64_t", "thread-block cluster shape">:$cluster
  );
  // Hand-written: keys in any order, `stages` and `cluster` optional, and
  // errors that name the parameter.
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Number of threads per block implied by `warps`.
    int64_t getNumThreads() const { return getWarps() * 32; }
  }];
}

#endif // FUSEDOPS_DIALECT_FUSEDOPS_IR_FUSEDOPSATTRS_TD
