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

/// The value of PlanOp program `program` for argument sizes `sizes`, or an
/// error (a malformed program, a size it does not have, overflow, division
/// by zero).
static FailureOr<int64_t> evaluateProgram(ArrayRef<int64_t> program,
                                          ArrayRef<int64_t> sizes,
                                          std::string &error) {
  SmallVector<int64_t, 8> stack;
  auto bad = [&](const Twine &why) {
    error = ("launch plan expression: " + why).str();
    return failure();
  };
  for (size_t pc = 0; pc < program.size(); ++pc) {
    auto op = static_cast<PlanOp>(program[pc]);
    if (op == PlanOp::Const || op == PlanOp::Size) {
      if (pc + 1 >= program.size())
        return bad("operand missing");
      int64_t operand = program[++pc];
      if (op == PlanOp::Const) {
        stack.push_back(operand);
        continue;
      }
      if (operand < 0 || static_cast<uint64_t>(operand) >= sizes.size())
        return bad("reads size " + Twine(operand) + " of " +
                   Twine(sizes.size()) + " given");
      stack.push_back(sizes[operand]);
      continue;
    }
    if (op == PlanOp::Select) {
      if (stack.size() < 3)
        return bad("stack underflow");
      int64_t f = stack.pop_back_val(), t = stack.pop_back_val();
      stack.back() = stack.back() ? t : f;
      continue;
    }
    if (stack.size() < 2)
      return bad("stack underflow");
    int64_t b = stack.pop_back_val(), a = stack.back();
    auto ua = static_cast<uint64_t>(a), ub = static_cast<uint64_t>(b);
    int64_t result = 0;
    bool divides = op == PlanOp::DivU || op == PlanOp::DivS ||
                   op == PlanOp::CeilDivU || op == PlanOp::CeilDivS ||
                   op == PlanOp::FloorDivS || op == PlanOp::RemU ||
                   op == PlanOp::RemS;
    if (divides && b == 0)
      return bad("division by zero");
    if (divides && b == -1 && a == std::numeric_limits<int64_t>::min() &&
        (op == PlanOp::DivS || op == PlanOp::CeilDivS ||
         op == PlanOp::FloorDivS || op == PlanOp::RemS))
      return bad("signed division overflow");
    switch (op) {
    case PlanOp::Add:
      if (__builtin_add_overflow(a, b, &result))
        return bad("overflow");
      break;
    case PlanOp::Sub:
      if (__builtin_sub_overflow(a, b, &result))
        return bad("overflow");
      break;
    case PlanOp::Mul:
      if (__builtin_mul_overflow(a, b, &result))
        return bad("overflow");
      break;
    case PlanOp::DivU:
      result = static_cast<int64_t>(ua / ub);
      break;
    case PlanOp::DivS:
      result = a / b;
      break;
    case PlanOp::CeilDivU:
      result = static_cast<int64_t>(ua == 0 ? 0 : (ua - 1) / ub + 1);
      break;
    case PlanOp::CeilDivS:
      result = a / b + ((a % b != 0) && ((a < 0) == (b < 0)) ? 1 : 0);
      break;
    case PlanOp::FloorDivS:
      result = a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
      break;
    case PlanOp::RemU:
      result = static_cast<int64_t>(ua % ub);
      break;
    case PlanOp::RemS:
      result = a % b;
      break;
    case PlanOp::MinU:
      result = static_cast<int64_t>(std::min(ua, ub));
      break;
    case PlanOp::MaxU:
      result = static_cast<int64_t>(std::max(ua, ub));
      break;
    case PlanOp::MinS:
      result = std::min(a, b);
      break;
    case PlanOp::MaxS:
      result = std::max(a, b);
      break;
    case PlanOp::Cmp: {
      if (pc + 1 >= program.size())
        return bad("predicate missing");
      std::optional<arith::CmpIPredicate> predicate =
          arith::symbolizeCmpIPredicate(program[++pc]);
      if (!predicate)
        return bad("unknown predicate " + Twine(program[pc]));
      result = arith::applyCmpPredicate(*predicate, APInt(64, ua, false),
                                        APInt(64, ub, false));
      break;
    }
    default:
      return bad("unknown operation " + Twine(program[pc]));
    }
    stack.back() = result;
  }
  if (stack.size() != 1)
    return bad("leaves " + Twine(stack.size()) + " values");
  return stack.back();
}

/// The JSON form of a `fusedops.launch_plan` attribute (see
/// JitModule::getLaunchPlan), or nothing with `error` set if the attribute
/// is not one the launch-plan pass writes (a module from elsewhere keeps its
/// host code) or its expressions do not evaluate. With `sizes`, every
/// expression is evaluated and the launches whose guard fails are left out;
/// without, expressions are passed on ("exprs") and the plan is marked
/// "dynamic".
static std::optional<std::string>
launchPlanToJson(ArrayAttr plan, std::optional<ArrayRef<int64_t>> sizes,
                 std::string &error) {
  llvm::json::Array launches;
  bool dynamic = false;
  for (Attribute entry : plan) {
    error = "not a launch plan the fusedops-launch-plan pass wrote";
    auto dict = dyn_cast<DictionaryAttr>(entry);
    if (!dict)
      return std::nullopt;
    auto module = dict.getAs<StringAttr>("module");
    auto kernel = dict.getAs<StringAttr>("kernel");
    auto gridAttr = dict.getAs<DenseI64ArrayAttr>("grid");
    auto block = dict.getAs<DenseI64ArrayAttr>("block");
    auto shared = dict.getAs<IntegerAttr>("shared_memory");
    auto paramsAttr = dict.getAs<DenseI64ArrayAttr>("params");
    auto paramArgs = dict.getAs<DenseI64ArrayAttr>("param_args");
    auto mapsAttr = dict.getAs<DenseI64ArrayAttr>("tensor_maps");
    auto gridPerSm = dict.getAs<IntegerAttr>("grid_per_sm");
    auto exprs = dict.getAs<ArrayAttr>("exprs");
    if (!module || !kernel || !gridAttr || gridAttr.size() != 3 || !block ||
        block.size() != 3 || !shared || !paramsAttr || !paramArgs ||
        paramsAttr.size() != paramArgs.size() || !mapsAttr || !gridPerSm ||
        mapsAttr.size() % kTensorMapPlanFields != 0)
      return std::nullopt;
    SmallVector<int64_t> grid(gridAttr.asArrayRef()),
        params(paramsAttr.asArrayRef()), maps(mapsAttr.asArrayRef());
    llvm::json::Array programs;
    bool guarded = true;
    for (Attribute attr : exprs ? exprs.getValue() : ArrayRef<Attribute>()) {
      auto expr = dyn_cast<DictionaryAttr>(attr);
      auto field = expr ? expr.getAs<StringAttr>("field") : StringAttr();
      auto index = expr ? expr.getAs<IntegerAttr>("index") : IntegerAttr();
      auto program =
          expr ? expr.getAs<DenseI64ArrayAttr>("program") : DenseI64ArrayAttr();
      if (!field || !index || !program)
        return std::nullopt;
      int64_t at = index.getInt();
      SmallVector<int64_t> *target =
          field == "grid"          ? &grid
          : field == "params"      ? &params
          : field == "tensor_maps" ? &maps
                                   : nullptr;
      if ((!target && field != "guard") ||
          (target && (at < 0 || static_cast<size_t>(at) >= target->size())))
        return std::nullopt;
      if (!sizes) {
        programs.push_back(llvm::json::Object{
            {"field", field.getValue()},
            {"index", at},
            {"program", llvm::json::Array(program.asArrayRef())}});
        continue;
      }
      FailureOr<int64_t> value =
          evaluateProgram(program.asArrayRef(), *sizes, error);
      if (failed(value))
        return std::nullopt;
      if (!target)
        guarded = guarded && *value != 0;
      else
        (*target)[at] = *value;
    }
    dynamic = dynamic || !programs.empty();
    if (!guarded)
      continue; // Host code skips it for these sizes (e.g. no rows).
    if (sizes) {
      for (int64_t n : grid)
        if (n <= 0 || n > std::numeric_limits<uint32_t>::max()) {
          error = "launch plan of " + kernel.getValue().str() +
                  ": the grid for these sizes is " + std::to_string(n) +
                  " blocks in one dimension; 1 to 2^32 - 1 can launch";
          return std::nullopt;
        }
      for (size_t i = 2; i < maps.size(); ++i)
        if (i % kTensorMapPlanFields >= 2 && maps[i] < 0) {
          error = "launch plan of " + kernel.getValue().str() +
                  ": a tensor map field is negative for these sizes";
          return std::nullopt;
        }
    }
    // Each tensor map: the fields of fusedopsLaunchPlanSetTensorMap.
    llvm::json::Array tensorMaps;
    for (size_t i = 0; i < maps.size(); i += kTensorMapPlanFields) {
      ArrayRef<int64_t> f = ArrayRef(maps).slice(i, kTensorMapPlanFields);
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
    llvm::json::Object launch{
        {"module", module.getValue()},
        {"kernel", kernel.getValue()},
        {"grid", numbers(grid)},
        {"block", numbers(block.asArrayRef())},
        {"shared_memory", shared.getInt()},
        {"params", numbers(params)},
        {"param_args", numbers(paramArgs.asArrayRef())},
        {"tensor_maps", std::move(tensorMaps)},
        {"grid_per_sm", gridPerSm.getInt()},
    };
    if (!programs.empty())
      launch["exprs"] = std::move(programs);
    launches.push_back(std::move(launch));
  }
  error.clear();
  llvm::json::Object object{{"launches", std::move(launches)}};
  if (dynamic)
    object["dynamic"] = true;
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::json::Value(std::move(object));
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
    std::string ignored;
    if (auto plan = func->getAttrOfType<ArrayAttr>(kLaunchPlanAttrName))
      if (std::optional<std::string> json =
              launchPlanToJson(plan, std::nullopt, ignored)) {
        jit->launchPlans[func.getSymName()] = std::move(*json);
        jit->launchPlanAttrs[func.getSymName()] = plan;
      }
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

std::optional<std::string>
JitModule::getLaunchPlan(StringRef name, ArrayRef<int64_t> sizes,
                         std::string &error) const {
  auto it = launchPlanAttrs.find(name);
  if (it == launchPlanAttrs.end()) {
    error = "function '" + name.str() + "' has no launch plan";
    return std::nullopt;
  }
  if (llvm::any_of(sizes, [](int64_t size) { return size < 0; })) {
    error = "sizes must not be negative";
    return std::nullopt;
  }
  return launchPlanToJson(it->second, sizes, error);
}

void *JitModule::lookupCInterface(StringRef name) {
  auto address = engine->lookup(("_mlir_ciface_" + name).str());
  if (!address) {
    llvm::consumeError(address.takeError());
    return nullptr;
  }
  return *address;
}
