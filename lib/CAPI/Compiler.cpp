//===- Compiler.cpp - C API of the in-process compiler --------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Implements fusedops-c/Compiler.h over JitModule. Nothing here throws or
// aborts on bad input: every failure becomes a status and a message.
//
//===----------------------------------------------------------------------===//

#include "fusedops-c/Compiler.h"

#include "Internal.h"

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"
#include "fusedops/ExecutionEngine/JitModule.h"
#include "fusedops/Pipelines/Pipelines.h"
#include "fusedops/Target/Chips.h"

#include "llvm/Config/llvm-config.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

using mlir::fusedops::FusedOpsToBinaryOptions;
using mlir::fusedops::JitModule;

struct fusedops_jit_st {
  std::unique_ptr<JitModule> module;
};

namespace {
thread_local std::string lastError;

fusedops_compile_status fail(fusedops_compile_status status,
                             std::string message) {
  lastError = std::move(message);
  return status;
}
/// The pipeline options of the C API's arguments (pass options are not
/// copyable, hence the out-parameter).
void setOptions(FusedOpsToBinaryOptions &options, const char *chip,
                const char *format, unsigned optLevel, const char *toolkit,
                const char *tuningCache) {
  options.chip = chip;
  options.format = format;
  options.optLevel = optLevel;
  if (toolkit)
    options.toolkit = toolkit;
  if (tuningCache)
    options.tuningCache = tuningCache;
}

/// Hands `module` out as a handle, or reports `error` if there is none.
fusedops_compile_status handOut(std::unique_ptr<JitModule> module,
                                const std::string &error, fusedops_jit *jit) {
  if (!module)
    return fail(FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE,
                error.empty() ? "compilation failed" : error);
  *jit = new fusedops_jit_st{std::move(module)};
  lastError.clear();
  return FUSEDOPS_COMPILE_SUCCESS;
}
} // namespace

fusedops_compile_status fusedopsCapiFail(fusedops_compile_status status,
                                         std::string message) {
  return fail(status, std::move(message));
}

char *fusedopsCapiCopyOut(const std::string &text) {
  char *buffer = static_cast<char *>(std::malloc(text.size() + 1));
  if (buffer)
    std::memcpy(buffer, text.c_str(), text.size() + 1);
  return buffer;
}

extern "C" {

const char *fusedopsCompilerVersion(void) {
  static const std::string version =
      mlir::fusedops::getCompilerVersion(FusedOpsToBinaryOptions());
  return version.c_str();
}

const char *fusedopsToolkitPath(const char *toolkit) {
  thread_local std::string path;
  FusedOpsToBinaryOptions options;
  if (toolkit)
    options.toolkit = toolkit;
  path = mlir::fusedops::findToolkit(options);
  return path.c_str();
}

const char *fusedopsPtxasPath(const char *toolkit) {
  thread_local std::string path;
  FusedOpsToBinaryOptions options;
  if (toolkit)
    options.toolkit = toolkit;
  path = mlir::fusedops::findPtxas(options);
  return path.c_str();
}

const char *fusedopsCompilerGetLastError(void) { return lastError.c_str(); }

const char *fusedopsKnownChips(void) {
  static const std::string names = mlir::fusedops::getKnownChipNames();
  return names.c_str();
}

const char *fusedopsChipForComputeCapability(int major, int minor) {
  const mlir::fusedops::ChipInfo *chip =
      mlir::fusedops::lookupChipForComputeCapability(major, minor);
  return chip ? chip->name : nullptr;
}

const char *fusedopsChipJitFormat(const char *chip) {
  const mlir::fusedops::ChipInfo *info =
      chip ? mlir::fusedops::lookupChip(chip) : nullptr;
  return info ? info->jitFormat : nullptr;
}

int fusedopsScaleShape(const char *granularity, int64_t rows, int64_t cols,
                       int64_t shape[2], int *rank) {
  if (!granularity || !shape || !rank || rows < 0 || cols < 0)
    return -1;
  std::optional<mlir::fusedops::ScaleGranularity> kind =
      mlir::fusedops::symbolizeScaleGranularity(granularity);
  if (!kind)
    return -1;
  llvm::SmallVector<int64_t> sizes =
      mlir::fusedops::getScaleShape(*kind, rows, cols);
  for (size_t i = 0; i < sizes.size(); ++i)
    shape[i] = sizes[i];
  *rank = static_cast<int>(sizes.size());
  return 0;
}

int64_t fusedopsQuantizeTransposedRows(int64_t rows) {
  return rows < 0 ? -1 : mlir::fusedops::QuantizeOp::getTransposedRows(rows);
}

fusedops_compile_status
fusedopsJitCompile(const char *source, size_t size, const char *chip,
                   const char *format, unsigned optLevel, const char *toolkit,
                   const char *tuningCache, fusedops_jit *jit) {
  if (!jit)
    return fail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                "fusedopsJitCompile needs a handle pointer");
  *jit = nullptr;
  if (!source || !chip || !format)
    return fail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                "fusedopsJitCompile needs source, chip and format");
  FusedOpsToBinaryOptions options;
  setOptions(options, chip, format, optLevel, toolkit, tuningCache);
  std::string error;
  std::unique_ptr<JitModule> module =
      JitModule::compile(llvm::StringRef(source, size), options, error);
  return handOut(std::move(module), error, jit);
}

fusedops_compile_status fusedopsJitLower(const char *source, size_t size,
                                         const char *chip, const char *format,
                                         unsigned optLevel, const char *toolkit,
                                         const char *tuningCache, void **data,
                                         size_t *dataSize) {
  if (!data || !dataSize || !source || !chip || !format)
    return fail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                "fusedopsJitLower needs source, chip, format and out pointers");
  *data = nullptr;
  *dataSize = 0;
  FusedOpsToBinaryOptions options;
  setOptions(options, chip, format, optLevel, toolkit, tuningCache);
  std::string error;
  std::optional<std::string> bytes =
      JitModule::lower(llvm::StringRef(source, size), options, error);
  if (!bytes)
    return fail(FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE,
                error.empty() ? "compilation failed" : error);
  void *buffer = std::malloc(bytes->size());
  if (!buffer)
    return fail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                "out of memory for the lowered module");
  std::memcpy(buffer, bytes->data(), bytes->size());
  *data = buffer;
  *dataSize = bytes->size();
  lastError.clear();
  return FUSEDOPS_COMPILE_SUCCESS;
}

fusedops_compile_status fusedopsJitLoad(const void *data, size_t size,
                                        fusedops_jit *jit) {
  if (!jit || !data)
    return fail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                "fusedopsJitLoad needs data and a handle pointer");
  *jit = nullptr;
  std::string error;
  std::unique_ptr<JitModule> module = JitModule::load(
      llvm::StringRef(static_cast<const char *>(data), size), error);
  return handOut(std::move(module), error, jit);
}

void fusedopsBufferFree(void *data) { std::free(data); }

void *fusedopsJitLookup(fusedops_jit jit, const char *name) {
  if (!jit || !name) {
    fail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
         "fusedopsJitLookup needs a handle and a name");
    return nullptr;
  }
  void *address = jit->module->lookupCInterface(name);
  if (!address)
    fail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
         std::string("no function @") + name +
             " with llvm.emit_c_interface in the module");
  return address;
}

size_t fusedopsJitGetKernelImage(fusedops_jit jit, const void **data) {
  if (!jit || !data)
    return 0;
  llvm::StringRef image = jit->module->getKernelImage();
  *data = image.data();
  return image.size();
}

const char *fusedopsJitGetLaunchPlan(fusedops_jit jit, const char *name) {
  if (!jit || !name)
    return nullptr;
  const std::string *plan = jit->module->getLaunchPlan(name);
  return plan ? plan->c_str() : nullptr;
}

fusedops_compile_status fusedopsJitGetLaunchPlanForSizes(
    fusedops_jit jit, const char *name, const int64_t *sizes, size_t numSizes,
    char **json) {
  if (!jit || !name || !json || (numSizes && !sizes))
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                            "fusedopsJitGetLaunchPlanForSizes needs a module, "
                            "a name, the sizes and an output pointer");
  *json = nullptr;
  std::string error;
  std::optional<std::string> plan = jit->module->getLaunchPlan(
      name, llvm::ArrayRef<int64_t>(sizes, numSizes), error);
  if (!plan)
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT, error);
  *json = fusedopsCapiCopyOut(*plan);
  if (!*json)
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                            "out of memory");
  return FUSEDOPS_COMPILE_SUCCESS;
}

void fusedopsJitDestroy(fusedops_jit jit) { delete jit; }

} // extern "C"
