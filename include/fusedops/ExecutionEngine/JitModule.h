//===- JitModule.h - compile and JIT a module with fusedops ops -*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Compiles MLIR source holding fusedops ops with `fusedops-to-binary`, then
// JIT-compiles the host code with MLIR's ExecutionEngine. The host code's
// mgpu* calls resolve to the fusedops runtime (fusedops-c/Runtime.h), so the
// functions run their kernels on the GPU. The GPU tests, the benchmarks and
// fusedops-runner use it.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_EXECUTIONENGINE_JITMODULE_H
#define FUSEDOPS_EXECUTIONENGINE_JITMODULE_H

#include "fusedops/Pipelines/Pipelines.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Support/LLVM.h"

#include "llvm/ExecutionEngine/Orc/CoreContainers.h"
#include "llvm/ExecutionEngine/Orc/Mangling.h"

#include "llvm/ADT/StringMap.h"

#include <memory>
#include <optional>
#include <string>

namespace mlir {
class ExecutionEngine;
class MLIRContext;

namespace fusedops {

/// The fusedops runtime functions that host code from gpu-to-llvm calls
/// (mgpu*), bound by address: pass to ExecutionEngine::registerSymbols or
/// JitRunnerConfig::runtimeSymbolMap.
llvm::orc::SymbolMap getRuntimeSymbolMap(llvm::orc::MangleAndInterner mangle);

class JitModule {
public:
  ~JitModule();

  /// Compiles `source`. On failure returns null and sets `error` to the
  /// diagnostics.
  static std::unique_ptr<JitModule>
  compile(StringRef source, const FusedOpsToBinaryOptions &options,
          std::string &error);

  /// The format a JIT user embeds for `chip`: PTX ("isa") for the Ampere
  /// chips sm_80 and sm_86, which the driver compiles for the card present
  /// (how their kernels run on a Hopper card), cubin ("bin") otherwise.
  static StringRef getJitFormat(StringRef chip);

  /// `compile` for `chip` in `getJitFormat(chip)`, other options at their
  /// defaults.
  static std::unique_ptr<JitModule>
  compileForChip(StringRef source, StringRef chip, std::string &error);

  /// Runs `fusedops-to-binary` on `source` and returns the lowered module
  /// (host code in the LLVM dialect with the kernels' gpu.binary) as MLIR
  /// bytecode, for a cache to keep; `load` JIT-compiles it without running
  /// the pipeline (no NVVM code generation, no ptxas). On failure returns
  /// std::nullopt and sets `error` to the diagnostics.
  static std::optional<std::string>
  lower(StringRef source, const FusedOpsToBinaryOptions &options,
        std::string &error);

  /// JIT-compiles a module that `lower` returned. On failure (not bytecode,
  /// unreadable, not lowered) returns null and sets `error`.
  static std::unique_ptr<JitModule> load(StringRef lowered, std::string &error);

  /// Address of the C interface (`_mlir_ciface_<name>`) of a function marked
  /// `llvm.emit_c_interface`, or null. Its arguments are pointers to memref
  /// descriptors (StridedMemRefType) in the function's argument order.
  void *lookupCInterface(StringRef name);

  /// The kernels' binary as embedded in the host code (PTX text for
  /// format=isa, cubin bytes for format=bin).
  StringRef getKernelImage() const { return kernelImage; }

  /// The launch plan that `fusedops-launch-plan` wrote on host function
  /// `name`, as JSON, or null if it has none (its host code does more than
  /// launch kernels on its arguments). The JSON is an object
  /// `{"launches": [...]}`; each launch has "module", "kernel", "grid" and
  /// "block" (three numbers each), "shared_memory", "params" and
  /// "param_args": kernel parameter i is the data pointer of function
  /// argument param_args[i] when that is >= 0, else the 8-byte value
  /// params[i]. fusedopsLaunchPlanAdd in fusedops-c/Runtime.h takes these.
  /// A function with dynamic sizes has a plan whose values depend on them:
  /// it is marked `"dynamic": true` and its launches carry "exprs" (the
  /// PlanOp programs of fusedops/Dialect/FusedOps/Transforms/Passes.h, each
  /// with the "field" and "index" it computes, or a "guard"); take its
  /// concrete form for given sizes from the overload below.
  const std::string *getLaunchPlan(StringRef name) const;

  /// The launch plan of `name` for arguments of these sizes (every memref
  /// argument's sizes, in argument order), in the static form above: every
  /// expression evaluated, launches whose guard fails left out. Nothing, with
  /// `error` set, for a function without a plan or sizes whose plan cannot
  /// launch (a size missing, overflow, an empty grid).
  std::optional<std::string> getLaunchPlan(StringRef name,
                                           ArrayRef<int64_t> sizes,
                                           std::string &error) const;

private:
  JitModule();
  static std::unique_ptr<JitModule>
  fromLowered(std::unique_ptr<MLIRContext> context,
              OwningOpRef<ModuleOp> module, std::string &error);
  std::unique_ptr<MLIRContext> context;
  std::unique_ptr<ExecutionEngine> engine;
  std::string kernelImage;
  llvm::StringMap<std::string> launchPlans;
  /// The plans as the pass wrote them (owned by `context`), for
  /// evaluating the dynamic ones.
  llvm::StringMap<ArrayAttr> launchPlanAttrs;
};

} // namespace fusedops
} // namespace mlir

#endif // FUSEDOPS_EXECUTIONENGINE_JITMODULE_H
