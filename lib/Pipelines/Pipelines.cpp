//===- Pipelines.cpp - fusedops-to-binary and its pieces ------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// The pipeline follows upstream's gpu-lower-to-nvvm-pipeline
// (mlir/lib/Dialect/GPU/Pipelines/GPUToNVVMPipeline.cpp) with two changes:
// it starts from fusedops ops (bufferize, then convert-fusedops-to-gpu), and
// it checks the chip, format and toolchain before adding a pass, so that a
// request the toolchain cannot serve is an error message rather than an
// abort inside LLVM.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Pipelines/Pipelines.h"

#include "fusedops/Autotune/Passes.h"
#include "fusedops/Conversion/Passes.h"
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h"
#include "fusedops/Target/Chips.h"
#include "mlir/Conversion/AffineToStandard/AffineToStandard.h"
#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/BufferizationToMemRef/BufferizationToMemRef.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/GPUCommon/GPUCommonPass.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVMPass.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/NVGPUToNVVM/NVGPUToNVVM.h"
#include "mlir/Conversion/NVVMToLLVM/NVVMToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/OneShotAnalysis.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Config/llvm-config.h"

#include <mutex>

using namespace mlir;
using namespace mlir::fusedops;

FailureOr<unsigned> mlir::fusedops::getPtxVersionForChip(StringRef chip,
                                                         std::string &error) {
  if (const ChipInfo *info = lookupChip(chip))
    return info->ptxVersion;
  error = ("unsupported chip '" + chip + "'; fusedops builds for " +
           getKnownChipNames())
              .str();
  return failure();
}

std::optional<unsigned> mlir::fusedops::parsePtxasVersion(StringRef text) {
  size_t at = text.find("release ");
  if (at == StringRef::npos)
    return std::nullopt;
  StringRef rest = text.drop_front(at + strlen("release "));
  unsigned major = 0, minor = 0;
  if (rest.consumeInteger(10, major) || !rest.consume_front(".") ||
      rest.consumeInteger(10, minor))
    return std::nullopt;
  return major * 10 + minor;
}

unsigned mlir::fusedops::getMaxPtxVersionForPtxas(unsigned ptxasVersion) {
  // CUDA 12.x reads PTX 8.x (12.0 -> 8.0 ... 12.8 -> 8.7, 12.9 -> 8.8);
  // CUDA 13.0 reads 9.0; CUDA 11.8 reads 7.8, 11.x older reads 7.x.
  unsigned major = ptxasVersion / 10, minor = ptxasVersion % 10;
  if (major >= 13)
    return 90 + (major - 13) * 10 + minor;
  if (major == 12)
    return std::min(80 + minor, 88u);
  if (major == 11)
    return 70 + minor;
  return 60;
}

std::string
mlir::fusedops::findToolkit(const FusedOpsToBinaryOptions &options) {
  if (!options.toolkit.empty())
    return options.toolkit;
  if (const char *home = std::getenv("CUDA_HOME"))
    return home;
  return "/usr/local/cuda";
}

/// Runs `ptxas --version` and returns its release as major * 10 + minor.
static FailureOr<unsigned> queryPtxasVersion(StringRef ptxas,
                                             std::string &error) {
  SmallString<128> output;
  int fd = -1;
  if (llvm::sys::fs::createTemporaryFile("fusedops-ptxas", "txt", fd, output)) {
    error = "cannot create a temporary file to query ptxas";
    return failure();
  }
  llvm::sys::fs::closeFile(fd);
  std::optional<StringRef> redirects[] = {std::nullopt, StringRef(output),
                                          StringRef(output)};
  std::string message;
  int status = llvm::sys::ExecuteAndWait(ptxas, {ptxas, "--version"},
                                         std::nullopt, redirects,
                                         /*SecondsToWait=*/30, 0, &message);
  auto text = llvm::MemoryBuffer::getFile(output);
  llvm::sys::fs::remove(output);
  std::optional<unsigned> version;
  if (status == 0 && text)
    version = parsePtxasVersion((*text)->getBuffer());
  if (!version) {
    // Say what went wrong: ptxas did not run, failed, or its output (in
    // TMPDIR) could not be read back or did not name a release.
    std::string reason =
        !message.empty() ? message
        : status != 0    ? "it exited with status " + std::to_string(status)
        : !text          ? "its output could not be read back from " +
                      output.str().str() + " (is TMPDIR full or unwritable?)"
                : "its output names no release";
    error = ("cannot read the version of " + ptxas + ": " + reason).str();
    return failure();
  }
  return *version;
}

std::string mlir::fusedops::findPtxas(const FusedOpsToBinaryOptions &options) {
  SmallString<128> ptxas(findToolkit(options));
  llvm::sys::path::append(ptxas, "bin", "ptxas");
  if (llvm::sys::fs::can_execute(ptxas))
    return ptxas.str().str();
  llvm::ErrorOr<std::string> onPath = llvm::sys::findProgramByName("ptxas");
  return onPath ? *onPath : std::string();
}

FailureOr<unsigned>
mlir::fusedops::getPtxasVersion(const FusedOpsToBinaryOptions &options,
                                std::string &error, std::string *path) {
  std::string ptxas = findPtxas(options);
  if (ptxas.empty()) {
    SmallString<128> expected(findToolkit(options));
    llvm::sys::path::append(expected, "bin", "ptxas");
    error = ("format=" + options.format + " needs ptxas, found neither " +
             expected +
             " nor one on PATH; install the CUDA toolkit, pass "
             "toolkit=<dir>, or use format=isa for PTX")
                .str();
    return failure();
  }
  if (path)
    *path = ptxas;
  return queryPtxasVersion(ptxas, error);
}

std::string
mlir::fusedops::getCompilerVersion(const FusedOpsToBinaryOptions &options) {
  static std::mutex mutex;
  static llvm::StringMap<std::string> versions;
  std::lock_guard<std::mutex> lock(mutex);
  auto [it, inserted] = versions.try_emplace(options.toolkit.getValue());
  if (inserted) {
    std::string error;
    FailureOr<unsigned> ptxas = getPtxasVersion(options, error);
    it->second = std::string("fusedops-capi 5; llvm ") + LLVM_VERSION_STRING +
                 "; ptxas " +
                 (succeeded(ptxas) ? std::to_string(*ptxas / 10) + "." +
                                         std::to_string(*ptxas % 10)
                                   : std::string("none"));
  }
  return it->second;
}

LogicalResult mlir::fusedops::buildFusedOpsToBinaryPipeline(
    OpPassManager &pm, const FusedOpsToBinaryOptions &options,
    function_ref<LogicalResult(const Twine &)> errorHandler) {
  std::string error;
  FailureOr<unsigned> ptxVersion = getPtxVersionForChip(options.chip, error);
  if (failed(ptxVersion))
    return errorHandler(error);
  StringRef format = options.format;
  if (format != "isa" && format != "bin" && format != "fatbin")
    return errorHandler("unknown format '" + format +
                        "'; expected isa (PTX), bin (cubin) or fatbin");
  if (options.optLevel > 3)
    return errorHandler("opt-level must be 0 to 3, got " +
                        Twine(options.optLevel));

  // Every format links libdevice (erf, tanh and other math the kernels
  // call). MLIR's serializer reports a missing one as an error but goes on,
  // writing PTX with unresolved __nv_* calls that fails only when loaded:
  // refuse here instead.
  {
    SmallString<128> libdevice(findToolkit(options));
    llvm::sys::path::append(libdevice, "nvvm", "libdevice", "libdevice.10.bc");
    if (!llvm::sys::fs::is_regular_file(libdevice))
      return errorHandler(
          "the kernels link the CUDA toolkit's libdevice, but " + libdevice +
          " is not a file; install the CUDA toolkit, set "
          "CUDA_HOME or pass toolkit=<dir>");
  }
  std::string ptxas;
  if (format != "isa") {
    // cubin and fatbin come from ptxas: it must exist and read our PTX.
    FailureOr<unsigned> ptxasVersion = getPtxasVersion(options, error, &ptxas);
    if (failed(ptxasVersion))
      return errorHandler(error);
    unsigned readable = getMaxPtxVersionForPtxas(*ptxasVersion);
    if (readable < *ptxVersion)
      return errorHandler(
          Twine(ptxas) + " (CUDA " + Twine(*ptxasVersion / 10) + "." +
          Twine(*ptxasVersion % 10) + ") reads PTX up to " +
          Twine(readable / 10) + "." + Twine(readable % 10) + ", but " +
          options.chip + " needs PTX " + Twine(*ptxVersion / 10) + "." +
          Twine(*ptxVersion % 10) + "; use a newer CUDA toolkit or format=isa");
  }

  // fusedops ops: tensors to buffers, buffers to kernels and launches.
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  // Free intermediate buffers, and put those kernels use in GPU memory.
  bufferization::BufferDeallocationPipelineOptions deallocation;
  bufferization::buildBufferDeallocationPipeline(pm, deallocation);
  pm.addPass(createConvertBufferizationToMemRefPass());
  pm.addPass(createFusedOpsDeviceBuffers());
  // Tiles: measured ones from the tuning cache, else the cost model's.
  FusedOpsAutotuneOptions autotune;
  autotune.chip = options.chip;
  autotune.cache = options.tuningCache;
  autotune.compiler = getCompilerVersion(options);
  autotune.force = options.forceTile;
  pm.addPass(createFusedOpsAutotune(autotune));
  ConvertFusedOpsToGPUOptions toGPU;
  toGPU.chip = options.chip;
  pm.addPass(createConvertFusedOpsToGPU(toGPU));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  // Functions that only launch kernels on their arguments get a plan a
  // runtime can replay with cuLaunchKernel alone.
  pm.addPass(createFusedOpsLaunchPlan());
  // Host-side gpu.alloc/memcpy/launch_func become async ops on a stream, the
  // form gpu-to-llvm lowers.
  pm.addNestedPass<func::FuncOp>(createGpuAsyncRegionPass());

  // Common lowering, as upstream.
  pm.addPass(createConvertNVGPUToNVVMPass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertNVVMToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  GpuNVVMAttachTargetOptions nvvmTarget;
  nvvmTarget.chip = options.chip;
  nvvmTarget.features = "+ptx" + std::to_string(*ptxVersion);
  nvvmTarget.optLevel = options.optLevel;
  pm.addPass(createGpuNVVMAttachTarget(nvvmTarget));
  pm.addPass(createLowerAffinePass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());

  // Kernels: GPU to NVVM (vector, memref, math included).
  OpPassManager &kernels = pm.nest<gpu::GPUModuleOp>();
  kernels.addPass(createStripDebugInfoPass());
  kernels.addPass(createConvertGpuOpsToNVVMOps());
  kernels.addPass(createCanonicalizerPass());
  kernels.addPass(createCSEPass());
  kernels.addPass(createReconcileUnrealizedCastsPass());

  // Host: tensor maps passed by value, launches to runtime calls, kernels
  // to the binary.
  pm.addPass(createFusedOpsTensorMapParams());
  pm.addPass(createGpuToLLVMConversionPass());
  GpuModuleToBinaryPassOptions toBinary;
  // cubins: PTX here, assembled by our pass, which stops a ptxas that
  // hangs (MLIR's serializer waits for it without a limit).
  toBinary.compilationTarget =
      format == "bin" ? std::string("isa") : format.str();
  toBinary.toolkitPath = findToolkit(options);
  pm.addPass(createGpuModuleToBinaryPass(toBinary));
  if (format == "bin") {
    FusedOpsAssemblePtxOptions assemble;
    assemble.ptxas = ptxas;
    assemble.chip = options.chip;
    assemble.optLevel = options.optLevel;
    assemble.timeout = options.ptxasTimeout;
    pm.addPass(createFusedOpsAssemblePtx(assemble));
  }
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  return success();
}

void mlir::fusedops::registerFusedOpsPipelines() {
  registerPassPipeline(
      "fusedops-to-binary",
      "Lower fusedops ops to GPU kernels in a gpu.binary (PTX, cubin or "
      "fatbin) and host code in the LLVM dialect that launches them",
      [](OpPassManager &pm, StringRef text,
         function_ref<LogicalResult(const Twine &)> errorHandler) {
        FusedOpsToBinaryOptions options;
        if (failed(options.parseFromString(text)))
          return failure();
        return buildFusedOpsToBinaryPipeline(pm, options, errorHandler);
      },
      [](function_ref<void(const mlir::detail::PassOptions &)> optionsHandler) {
        optionsHandler(FusedOpsToBinaryOptions());
      });
}
