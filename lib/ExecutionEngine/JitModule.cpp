//===- JitModule.cpp - compile and JIT a module with fusedops ops ---------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/ExecutionEngine/JitModule.h"

#include "fusedops-c/Runtime.h"
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h"
#include "fusedops/InitFusedOps.h"
#include "fusedops/Support/SourceLimits.h"
#include "fusedops/Target/Chips.h"
#include "mlir/Bytecode/BytecodeReader.h"
#include "mlir/Bytecode/BytecodeWriter.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ExecutionEngine/Orc/Mangling.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/TargetSelect.h"

using namespace mlir;
using namespace mlir::fusedops;

/// The JSON form of a `fusedops.launch_plan` attribute (see
/// JitModule::getLaunchPlan), or nothing if the attribute is not one the
/// launch-plan pass writes (a module from elsewhere keeps its host code).
static std::optional<std::string> launchPlanToJson(ArrayAttr plan) {
  llvm::json::Array launches;
  for (Attribute entry : plan) {
    auto dict = dyn_cast<DictionaryAttr>(entry);
    if (!dict)
      return std::nullopt;
    auto module = dict.getAs<StringAttr>("module");
    auto kernel = dict.getAs<StringAttr>("kernel");
    auto grid = dict.getAs<DenseI64ArrayAttr>("grid");
    auto block = dict.getAs<DenseI64ArrayAttr>("block");
    auto shared = dict.getAs<IntegerAttr>("shared_memory");
    auto params = dict.getAs<DenseI64ArrayAttr>("params");
    auto paramArgs = dict.getAs<DenseI64ArrayAttr>("param_args");
    auto maps = dict.getAs<DenseI64ArrayAttr>("tensor_maps");
    auto gridPerSm = dict.getAs<IntegerAttr>("grid_per_sm");
    if (!module || !kernel || !grid || grid.size() != 3 || !block ||
        block.size() != 3 || !shared || !params || !paramArgs ||
        params.size() != paramArgs.size() || !maps || !gridPerSm ||
        maps.size() % kTensorMapPlanFields != 0)
      return std::nullopt;
    // Each tensor map: the fields of fusedopsLaunchPlanSetTensorMap.
    llvm::json::Array tensorMaps;
    for (int64_t i = 0, e = maps.size(); i < e;
         i += static_cast<int64_t>(kTensorMapPlanFields)) {
      ArrayRef<int64_t> f = maps.asArrayRef().slice(i, kTensorMapPlanFields);
      tensorMaps.push_back(llvm::json::Object{
          {"param", f[0]},
          {"arg", f[1]},
          {"element_bytes", f[2]},
          {"rows", f[3]},
          {"cols", f[4]},
          {"row_stride_bytes", f[5]},
          {"box_rows", f[6]},
          {"box_cols", f[7]},
          {"swizzle_bytes", f[8]},
      });
    }
    auto numbers = [](ArrayRef<int64_t> values) {
      return llvm::json::Array(values);
    };
    launches.push_back(llvm::json::Object{
        {"module", module.getValue()},
        {"kernel", kernel.getValue()},
        {"grid", numbers(grid.asArrayRef())},
        {"block", numbers(block.asArrayRef())},
        {"shared_memory", shared.getInt()},
        {"params", numbers(params.asArrayRef())},
        {"param_args", numbers(paramArgs.asArrayRef())},
        {"tensor_maps", std::move(tensorMaps)},
        {"grid_per_sm", gridPerSm.getInt()},
    });
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::json::Value(
      llvm::json::Object{{"launches", std::move(launches)}});
  return text;
}

JitModule::JitModule() = default;
JitModule::~JitModule() = default;

/// The runtime functions host code calls, bound by address so that they
/// resolve whatever the process exports.
llvm::orc::SymbolMap
mlir::fusedops::getRuntimeSymbolMap(llvm::orc::MangleAndInterner mangle) {
  llvm::orc::SymbolMap symbols;
  auto add = [&](const char *name, void *address) {
    symbols[mangle(name)] =
        llvm::orc::ExecutorSymbolDef(llvm::orc::ExecutorAddr::fromPtr(address),
                                     llvm::JITSymbolFlags::Exported);
  };
  add("mgpuModuleLoad", reinterpret_cast<void *>(&mgpuModuleLoad));
  add("mgpuModuleLoadJIT", reinterpret_cast<void *>(&mgpuModuleLoadJIT));
  add("mgpuModuleUnload", reinterpret_cast<void *>(&mgpuModuleUnload));
  add("mgpuModuleGetFunction",
      reinterpret_cast<void *>(&mgpuModuleGetFunction));
  add("mgpuLaunchKernel", reinterpret_cast<void *>(&mgpuLaunchKernel));
  add("mgpuMemAlloc", reinterpret_cast<void *>(&mgpuMemAlloc));
  add("mgpuMemFree", reinterpret_cast<void *>(&mgpuMemFree));
  add("mgpuMemcpy", reinterpret_cast<void *>(&mgpuMemcpy));
  add("mgpuMemset32", reinterpret_cast<void *>(&mgpuMemset32));
  add("mgpuStreamCreate", reinterpret_cast<void *>(&mgpuStreamCreate));
  add("mgpuStreamSynchronize",
      reinterpret_cast<void *>(&mgpuStreamSynchronize));
  add("mgpuStreamDestroy", reinterpret_cast<void *>(&mgpuStreamDestroy));
  add(kMultiprocessorCountFnName.data(),
      reinterpret_cast<void *>(&mgpuMultiprocessorCount));
  add(kTensorMapEncodeFnName.data(),
      reinterpret_cast<void *>(&mgpuTensorMapEncode2D));
  return symbols;
}

static void initialiseNativeTarget() {
  static bool initialised = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    return true;
  }();
  (void)initialised;
}

static std::unique_ptr<MLIRContext> makeContext() {
  DialectRegistry registry;
  // Ours and the upstream dialects the pipeline works with (a module with
  // others is refused when parsed, naming the dialect).
  fusedops::registerAllDialects(registry);
  registerPipelineDialects(registry);
  registerPipelineDependencies(registry);
  return std::make_unique<MLIRContext>(registry);
}

/// Ends every lowered module lower() returns, before its SHA-256.
static constexpr StringLiteral kLoweredTrailerMagic =
    "\nfusedops-lowered-sha256:";

namespace {
/// Collects a context's diagnostics, and messages of our own written to
/// `stream()`, into `error` for as long as it lives.
class DiagnosticCollector {
public:
  DiagnosticCollector(MLIRContext *ctx, std::string &error)
      : os(error), handler(ctx, [this](Diagnostic &diag) {
          os << diag.getLocation() << ": " << diag << "\n";
          sawError |= diag.getSeverity() == DiagnosticSeverity::Error;
          return success();
        }) {}
  llvm::raw_ostream &stream() { return os; }
  /// Whether an error was reported, also by a pass that then succeeded
  /// (MLIR's serializer reports some problems so and goes on).
  bool hasErrors() const { return sawError; }

private:
  llvm::raw_string_ostream os;
  bool sawError = false;
  ScopedDiagnosticHandler handler;
};
} // namespace

/// Parses `source` and runs fusedops-to-binary on it.
static OwningOpRef<ModuleOp>
parseAndLower(MLIRContext *ctx, StringRef source,
              const FusedOpsToBinaryOptions &options,
              DiagnosticCollector &diagnostics) {
  if (std::optional<std::string> tooDeep = checkSourceNesting(source)) {
    diagnostics.stream() << *tooDeep << "\n";
    return nullptr;
  }
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(source, ctx);
  if (!module)
    return nullptr;
  PassManager pm(ctx);
  if (failed(buildFusedOpsToBinaryPipeline(pm, options,
                                           [&](const Twine &message) {
                                             diagnostics.stream()
                                                 << message << "\n";
                                             return failure();
                                           })) ||
      failed(pm.run(*module)) || diagnostics.hasErrors())
    return nullptr;
  return module;
}

std::unique_ptr<JitModule>
JitModule::fromLowered(std::unique_ptr<MLIRContext> context,
                       OwningOpRef<ModuleOp> module, std::string &error) {
  initialiseNativeTarget();
  std::unique_ptr<JitModule> jit(new JitModule());
  jit->context = std::move(context);
  llvm::raw_string_ostream diagnostics(error);
  module->walk([&](gpu::BinaryOp binary) {
    for (Attribute object : binary.getObjects())
      if (auto gpuObject = dyn_cast<gpu::ObjectAttr>(object))
        jit->kernelImage = gpuObject.getObject().getValue().str();
  });

  module->walk([&](LLVM::LLVMFuncOp func) {
    if (auto plan = func->getAttrOfType<ArrayAttr>(kLaunchPlanAttrName))
      if (std::optional<std::string> json = launchPlanToJson(plan))
        jit->launchPlans[func.getSymName()] = std::move(*json);
  });

  auto transformer = makeOptimizingTransformer(/*optLevel=*/2, /*sizeLevel=*/0,
                                               /*targetMachine=*/nullptr);
  ExecutionEngineOptions engineOptions;
  engineOptions.transformer = transformer;
  auto engine = ExecutionEngine::create(*module, engineOptions);
  if (!engine) {
    diagnostics << "JIT compilation failed: "
                << llvm::toString(engine.takeError()) << "\n";
    return nullptr;
  }
  jit->engine = std::move(*engine);
  jit->engine->registerSymbols(getRuntimeSymbolMap);
  // Runs the global constructors, among them the one that loads the kernels'
  // module (mgpuModuleLoad) into the global the launches read.
  jit->engine->initialize();
  return jit;
}

std::unique_ptr<JitModule>
JitModule::compile(StringRef source, const FusedOpsToBinaryOptions &options,
                   std::string &error) {
  std::unique_ptr<MLIRContext> context = makeContext();
  DiagnosticCollector diagnostics(context.get(), error);
  OwningOpRef<ModuleOp> module =
      parseAndLower(context.get(), source, options, diagnostics);
  if (!module)
    return nullptr;
  return fromLowered(std::move(context), std::move(module), error);
}

StringRef JitModule::getJitFormat(StringRef chip) {
  const ChipInfo *info = lookupChip(chip);
  return info ? info->jitFormat : "bin";
}

std::unique_ptr<JitModule> JitModule::compileForChip(StringRef source,
                                                     StringRef chip,
                                                     std::string &error) {
  FusedOpsToBinaryOptions options;
  options.chip = chip.str();
  options.format = getJitFormat(chip).str();
  return compile(source, options, error);
}

std::optional<std::string>
JitModule::lower(StringRef source, const FusedOpsToBinaryOptions &options,
                 std::string &error) {
  std::unique_ptr<MLIRContext> context = makeContext();
  DiagnosticCollector diagnostics(context.get(), error);
  OwningOpRef<ModuleOp> module =
      parseAndLower(context.get(), source, options, diagnostics);
  if (!module)
    return std::nullopt;
  std::string bytes;
  llvm::raw_string_ostream os(bytes);
  if (failed(writeBytecodeToFile(*module, os))) {
    diagnostics.stream() << "cannot write the lowered module as bytecode\n";
    return std::nullopt;
  }
  // A trailer with the bytecode's SHA-256: bytecode damaged on its way
  // (a disk, a cache) could still parse, and then run wrong kernels.
  std::array<uint8_t, 32> digest = llvm::SHA256::hash(llvm::ArrayRef(
      reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()));
  bytes += kLoweredTrailerMagic;
  bytes.append(reinterpret_cast<const char *>(digest.data()), digest.size());
  return bytes;
}

std::unique_ptr<JitModule> JitModule::load(StringRef lowered,
                                           std::string &error) {
  std::unique_ptr<MLIRContext> context = makeContext();
  DiagnosticCollector diagnostics(context.get(), error);
  // The trailer lower() wrote: magic and the bytecode's SHA-256.
  const size_t trailer = kLoweredTrailerMagic.size() + 32;
  if (lowered.size() < trailer ||
      !lowered.drop_back(32).ends_with(kLoweredTrailerMagic)) {
    diagnostics.stream() << "not a lowered fusedops module (no fusedops "
                            "trailer: pass what lower() returned)\n";
    return nullptr;
  }
  StringRef stored = lowered.take_back(32);
  lowered = lowered.drop_back(trailer);
  std::array<uint8_t, 32> digest = llvm::SHA256::hash(llvm::ArrayRef(
      reinterpret_cast<const uint8_t *>(lowered.data()), lowered.size()));
  if (StringRef(reinterpret_cast<const char *>(digest.data()), 32) != stored) {
    diagnostics.stream() << "the lowered module is damaged (its SHA-256 does "
                            "not match); compile it again\n";
    return nullptr;
  }
  if (!isBytecode(llvm::MemoryBufferRef(lowered, "lowered"))) {
    diagnostics.stream()
        << "not a lowered fusedops module (no MLIR bytecode header)\n";
    return nullptr;
  }
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(lowered, context.get());
  if (!module)
    return nullptr;
  bool holdsFusedOps =
      module
          ->walk([](Operation *op) {
            Dialect *dialect = op->getDialect();
            return dialect && dialect->getNamespace() == "fusedops"
                       ? WalkResult::interrupt()
                       : WalkResult::advance();
          })
          .wasInterrupted();
  if (holdsFusedOps) {
    diagnostics.stream()
        << "the module still holds fusedops ops: pass what lower() returned\n";
    return nullptr;
  }
  return fromLowered(std::move(context), std::move(module), error);
}

const std::string *JitModule::getLaunchPlan(StringRef name) const {
  auto it = launchPlans.find(name);
  return it == launchPlans.end() ? nullptr : &it->second;
}

void *JitModule::lookupCInterface(StringRef name) {
  auto address = engine->lookup(("_mlir_ciface_" + name).str());
  if (!address) {
    llvm::consumeError(address.takeError());
    return nullptr;
  }
  return *address;
}
