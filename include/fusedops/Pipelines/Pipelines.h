//===- Pipelines.h - fusedops pass pipelines --------------------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_PIPELINES_PIPELINES_H
#define FUSEDOPS_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassOptions.h"

#include <string>

namespace mlir {
class OpPassManager;

namespace fusedops {

/// Options of `fusedops-to-binary`: from fusedops ops (tensor or buffer
/// form) to a `gpu.binary` holding the kernels, with host code in the LLVM
/// dialect that launches them.
struct FusedOpsToBinaryOptions
    : public PassPipelineOptions<FusedOpsToBinaryOptions> {
  PassOptions::Option<std::string> chip{
      *this, "chip",
      llvm::cl::desc("Target chip: sm_80, sm_86, sm_89, sm_90 or sm_90a"),
      llvm::cl::init("sm_90a")};
  PassOptions::Option<std::string> format{
      *this, "format",
      llvm::cl::desc("What gpu.binary holds: isa (PTX), bin (cubin) or "
                     "fatbin"),
      llvm::cl::init("bin")};
  PassOptions::Option<unsigned> optLevel{
      *this, "opt-level", llvm::cl::desc("NVVM optimisation level, 0 to 3"),
      llvm::cl::init(3)};
  PassOptions::Option<std::string> toolkit{
      *this, "toolkit",
      llvm::cl::desc("CUDA toolkit (ptxas, libdevice); default: $CUDA_HOME, "
                     "else /usr/local/cuda"),
      llvm::cl::init("")};
  PassOptions::Option<std::string> tuningCache{
      *this, "tuning-cache",
      llvm::cl::desc("Tuning cache (JSON) fusedops-autotune takes measured "
                     "tiles from; empty: the cost model only"),
      llvm::cl::init("")};
  PassOptions::Option<unsigned> ptxasTimeout{
      *this, "ptxas-timeout",
      llvm::cl::desc("Seconds one ptxas run may take (format=bin) before it "
                     "is stopped and reported"),
      llvm::cl::init(600)};
  PassOptions::Option<std::string> forceTile{
      *this, "force-tile",
      llvm::cl::desc("A #fusedops.tile<...> for every op without a tile "
                     "(experiments)"),
      llvm::cl::init("")};
};

/// What built a kernel, for caches to key on: the fusedops version, the
/// LLVM/MLIR version and the ptxas release `options` finds, e.g.
/// "fusedops-capi 5; llvm 22.1.8; ptxas 13.0" ("ptxas none" without one).
/// Computed once per toolkit.
std::string getCompilerVersion(const FusedOpsToBinaryOptions &options);

/// The PTX ISA version fusedops emits for `chip` (e.g. 80 for sm_90a).
/// Fails with a message for a chip it does not serve.
FailureOr<unsigned> getPtxVersionForChip(StringRef chip, std::string &error);

/// Parses `ptxas --version` output ("... release 13.0, V13.0.48") into
/// major * 10 + minor; std::nullopt if there is no release number.
std::optional<unsigned> parsePtxasVersion(StringRef versionText);

/// The PTX ISA version a ptxas release reads at most (e.g. 90 for 13.0).
unsigned getMaxPtxVersionForPtxas(unsigned ptxasVersion);

/// The CUDA toolkit folder the pipeline uses (libdevice, ptxas): the
/// `toolkit` option, else $CUDA_HOME, else /usr/local/cuda.
std::string findToolkit(const FusedOpsToBinaryOptions &options);

/// The ptxas format=bin/fatbin runs: the toolkit's bin/ptxas, else one on
/// PATH; "" if there is none.
std::string findPtxas(const FusedOpsToBinaryOptions &options);

/// The release (major * 10 + minor) of the ptxas that format=bin/fatbin
/// uses with `options` (its toolkit, else $CUDA_HOME, /usr/local/cuda, PATH);
/// stores its path in `*path` if given. Fails with a message in `error`.
FailureOr<unsigned> getPtxasVersion(const FusedOpsToBinaryOptions &options,
                                    std::string &error,
                                    std::string *path = nullptr);

/// Builds the pipeline into `pm`. Checks the options and the toolchain
/// first: an unknown chip or format, or a ptxas too old for the chip, is
/// reported through `errorHandler` and nothing is added.
LogicalResult buildFusedOpsToBinaryPipeline(
    OpPassManager &pm, const FusedOpsToBinaryOptions &options,
    function_ref<LogicalResult(const Twine &)> errorHandler);

/// Registers `fusedops-to-binary` (and the pieces below it) with the pass
/// pipeline registry, for fusedops-opt and mlir-opt-like tools.
void registerFusedOpsPipelines();

} // namespace fusedops
} // namespace mlir

#endif // FUSEDOPS_PIPELINES_PIPELINES_H
