//===- Passes.td - fusedops autotuning passes --------------*- tablegen -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_AUTOTUNE_PASSES_TD
#define FUSEDOPS_AUTOTUNE_PASSES_TD

include "mlir/Pass/PassBase.td"

def FusedOpsAutotune : Pass<"fusedops-autotune", "ModuleOp"> {
  let summary = "Choose the tile of every fusedops op that has none";
  let description = [{
    Sets `#fusedops.tile<...>` on every op with a `TileConfigurableOpInterface`
    that has no tile, for the target `chip`, and leaves tiles a user wrote
    alone. The tile comes from, in order:

    1. `force`: the given tile, for experiments; an op it does not fit is an
       error that says why;
    2. the tuning cache at `cache` (see `fusedops/Autotune/TuningCache.h`):
       the measured winner of an entry whose key (op, shape class, element
       types, attributes, chip, `compiler`) matches, and whose `driver`
       matches if one is given (else the fastest entry under any driver);
       a cached tile that no longer fits falls back to the cost model with a
       warning, and an unreadable, corrupt or foreign-version cache is
       reported with a warning and ignored;
    3. the cost model (`fusedops/Autotune/CostModel.h`): every candidate
       tile of the op's kernel strategy that the strategy accepts, ranked by
       predicted time; the fastest wins, ties to the strategy's order.

    The result depends only on the module, the options and the cache file:
    the pass is deterministic. Run it on the buffer form, before
    `convert-fusedops-to-gpu` (the `fusedops-to-binary` pipeline does). With
    `remarks`, each chosen tile is reported as a remark naming its source.

    Example:

    ```mlir
    fusedops.gated_mlp ins(%x, %wg, %wu : ...) outs(%o : ...) activation = silu
    // becomes
    fusedops.gated_mlp ins(%x, %wg, %wu : ...) outs(%o : ...) activation = silu
        tile = #fusedops.tile<block = [128, 64, 32], warps = 4, stages = 3>
    ```
  }];
  let options = [
    Option<"chip", "chip", "std::string", /*default=*/"\"sm_90a\"",
           "Target chip, a row of the chip table: sm_80, sm_86, sm_89, sm_90 or sm_90a">,
    Option<"cache", "cache", "std::string", /*default=*/"\"\"",
           "Tuning cache file (JSON); empty: the cost model only">,
    Option<"compiler", "compiler", "std::string", /*default=*/"\"\"",
           "Compiler and ptxas identity cache entries must match "
           "(fusedopsCompilerVersion; the pipeline fills it in)">,
    Option<"driver", "driver", "std::string", /*default=*/"\"\"",
           "CUDA driver version cache entries must match; empty: any">,
    Option<"force", "force", "std::string", /*default=*/"\"\"",
           "A #fusedops.tile<...> to give every op without a tile">,
    Option<"remarks", "remarks", "bool", /*default=*/"false",
           "Report each chosen tile and where it came from as a remark">
  ];
}

#endif // FUSEDOPS_AUTOTUNE_PASSES_TD
