//===- fusedops-runner.cpp - JIT-run modules with fusedops ops ------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// mlir-runner for fusedops: parses a module, lowers it with
// `fusedops-to-binary` (so it may hold fusedops ops, gpu.alloc/memcpy and
// calls to the runner utilities), JIT-compiles the host code and runs the
// entry point. GPU calls go to the fusedops runtime, which needs no CUDA
// toolkit at run time: this is how the integration tests run on a GPU
// machine that has no MLIR install.
//
//   fusedops-runner test.mlir --chip=sm_90a -e main --entry-point-result=void \
//       --shared-libs=libmlir_runner_utils.so,libmlir_c_runner_utils.so
//
//===----------------------------------------------------------------------===//

#include "fusedops-c/Runtime.h"
#include "fusedops/ExecutionEngine/JitModule.h"
#include "fusedops/InitFusedOps.h"
#include "mlir/ExecutionEngine/JitRunner.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/InitAllDialects.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/TargetSelect.h"

using namespace mlir;

static llvm::cl::opt<std::string>
    chip("chip",
         llvm::cl::desc("Target chip: sm_80, sm_86, sm_89, sm_90 or sm_90a"),
         llvm::cl::init("sm_90a"));
static llvm::cl::opt<std::string> format(
    "format",
    llvm::cl::desc("Kernel binary: bin (cubin) or isa (PTX, compiled by the "
                   "driver: how sm_80 code runs on a later card)"),
    llvm::cl::init("bin"));
static llvm::cl::opt<int>
    device("device",
           llvm::cl::desc("GPU to run on (its ordinal, as CUDA numbers the "
                          "GPUs this process sees)"),
           llvm::cl::init(0));

static LogicalResult lowerModule(Operation *op, JitRunnerOptions &) {
  // The device's context must be current before the JIT'd code's
  // constructors load the kernels (they load into the current context).
  if (device != 0 && fusedopsSetDevice(device) != FUSEDOPS_SUCCESS)
    return op->emitError() << "--device=" << device << ": "
                           << fusedopsGetLastErrorMessage();
  PassManager pm(op->getContext());
  fusedops::FusedOpsToBinaryOptions options;
  options.chip = chip;
  options.format = format;
  if (failed(fusedops::buildFusedOpsToBinaryPipeline(
          pm, options,
          [&](const Twine &message) { return op->emitError() << message; })))
    return failure();
  return pm.run(op);
}

int main(int argc, char **argv) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();

  DialectRegistry registry;
  registerAllDialects(registry);
  fusedops::registerAllDialects(registry);
  fusedops::registerPipelineDependencies(registry);

  JitRunnerConfig config;
  config.mlirTransformer = lowerModule;
  config.runtimesymbolMap = fusedops::getRuntimeSymbolMap;
  int status = JitRunnerMain(argc, argv, registry, config);
  // The mgpu* calls of the JIT'd code cannot return errors; the runtime
  // counts them. A run with any is a failed run, whatever it printed.
  if (int errors = fusedopsTakeAsyncErrorCount()) {
    llvm::errs() << "fusedops-runner: " << errors
                 << " GPU runtime call(s) failed (the last: "
                 << fusedopsGetLastErrorMessage()
                 << "); what the program printed is not a valid result\n";
    return status ? status : 1;
  }
  return status;
}
