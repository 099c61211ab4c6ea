//===- OpSource.cpp - C API: the source of one fusedops op ----------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// fusedopsBuildOpSource (fusedops-c/Compiler.h): the module the PyTorch API
// compiles for one op call, built with the ops' C++ builders and printed by
// MLIR, so that an op's syntax, its operand order and the shape rules that
// tie operands together (the weight of a norm, the scales of a granularity,
// the output of a GEMM) live in the dialect alone.
//
//===----------------------------------------------------------------------===//

#include "fusedops-c/Compiler.h"

#include "Internal.h"

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"
#include "fusedops/Support/SourceLimits.h"
#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <string>

using namespace mlir;
using namespace mlir::fusedops;

namespace {
/// One op's request (a JSON object) read field by field; the first problem
/// is kept and reported, naming the field.
class Request {
public:
  Request(const llvm::json::Object &object, MLIRContext *ctx)
      : object(object), ctx(ctx) {}

  std::string error;

  /// Sizes and counts: below 2^48, so that no product of two overflows.
  static constexpr int64_t kMaxSize = int64_t(1) << 48;

  int64_t integer(StringRef field) {
    std::optional<int64_t> value = object.getInteger(field);
    if (!value || *value < 0 || *value >= kMaxSize) {
      fail(field, "an integer from 0 to 2^48");
      return 0;
    }
    return *value;
  }
  double number(StringRef field) {
    std::optional<double> value = object.getNumber(field);
    if (!value)
      fail(field, "a number");
    return value.value_or(0);
  }
  /// An optional boolean: absent is false.
  bool flag(StringRef field) {
    if (!has(field))
      return false;
    std::optional<bool> value = object.getBoolean(field);
    if (!value)
      fail(field, "true or false");
    return value.value_or(false);
  }
  bool has(StringRef field) { return object.get(field) != nullptr; }
  std::string text(StringRef field) {
    std::optional<StringRef> value = object.getString(field);
    if (!value)
      fail(field, "a string");
    return value.value_or("").str();
  }
  /// A row count, or null for dynamic rows.
  int64_t rows(StringRef field) {
    if (const llvm::json::Value *value = object.get(field))
      if (value->getAsNull())
        return ShapedType::kDynamic;
    return integer(field);
  }
  /// A list of sizes. With `dynamicRows`, its row sizes (all but the last,
  /// or all of them with `allRows`) may be null: dynamic.
  SmallVector<int64_t> shape(StringRef field, bool dynamicRows = false,
                             bool allRows = false) {
    SmallVector<int64_t> sizes;
    const llvm::json::Array *array = object.getArray(field);
    if (!array) {
      fail(field, "a list of sizes");
      return sizes;
    }
    for (auto [i, size] : llvm::enumerate(*array)) {
      bool isRow = dynamicRows && (allRows || i + 1 < array->size());
      if (isRow && size.getAsNull()) {
        sizes.push_back(ShapedType::kDynamic);
        continue;
      }
      std::optional<int64_t> value = size.getAsInteger();
      if (!value || *value < 0 || *value >= kMaxSize) {
        fail(field, dynamicRows ? "a list of sizes from 0 to 2^48, the row "
                                  "sizes (all but the last) or null (dynamic)"
                                : "a list of sizes from 0 to 2^48");
        return {};
      }
      sizes.push_back(*value);
    }
    return sizes;
  }
  /// An element type by its MLIR name ("bf16", "f8E4M3FN", "i32").
  Type element(StringRef field) {
    std::string name = text(field);
    if (!error.empty())
      return {};
    Type type = parseType(name, ctx, /*numRead=*/nullptr,
                          /*isKnownNullTerminated=*/false);
    if (!type || !type.isIntOrFloat()) {
      fail(field, "an MLIR element type (f16, bf16, f32, f8E4M3FN, f8E5M2, "
                  "i32, i64)");
      return {};
    }
    return type;
  }
  /// An enum attribute's value by its spelling in the dialect.
  template <typename Enum>
  Enum spelled(StringRef field, std::optional<Enum> (*symbolize)(StringRef)) {
    std::string name = text(field);
    std::optional<Enum> value = symbolize(name);
    if (!value && error.empty())
      error = "'" + field.str() + "' is '" + name +
              "', which the dialect does not spell";
    return value.value_or(Enum());
  }

private:
  void fail(StringRef field, StringRef expected) {
    if (error.empty())
      error = "'" + field.str() + "' must be " + expected.str();
  }
  const llvm::json::Object &object;
  MLIRContext *ctx;
};

/// `@kernel` with one argument per (name, type), in order, marked for the C
/// interface; `buildOp` fills its body from the arguments.
struct KernelBuilder {
  SmallVector<std::string> names;
  SmallVector<Type> types;

  Value arg(func::FuncOp f, StringRef name) {
    for (auto [i, n] : llvm::enumerate(names))
      if (n == name)
        return f.getArgument(i);
    return {};
  }
  void add(StringRef name, Type type) {
    names.push_back(name.str());
    types.push_back(type);
  }
};

/// Why `request` is refused before parsing, or nothing: llvm::json::parse
/// recurses once per nesting level, so a hostile request nested a million
/// deep would overflow the caller's stack. Requests are two levels deep.
std::optional<std::string> checkRequestShape(StringRef request) {
  constexpr size_t kMaxBytes = 1 << 20;
  constexpr int64_t kMaxDepth = 8;
  if (request.size() > kMaxBytes)
    return "the request is " + std::to_string(request.size()) +
           " bytes; at most " + std::to_string(kMaxBytes);
  if (getJsonNesting(request) > kMaxDepth)
    return "the request nests deeper than " + std::to_string(kMaxDepth) +
           " levels";
  return std::nullopt;
}

MemRefType memref(ArrayRef<int64_t> shape, Type element) {
  return MemRefType::get(shape, element);
}

/// The rows P of a norm backward's weight-gradient partial sums
/// ("partials"), at least 1; sets `request.error` otherwise.
int64_t weightGradPartials(Request &request) {
  int64_t partials = request.integer("partials");
  if (request.error.empty() && partials < 1)
    request.error = "'partials' must be at least 1";
  return partials;
}

/// Declares the op's arguments in `kernel` and returns the function that
/// builds the op from them, or null with `request.error` set.
std::function<void(OpBuilder &, Location, func::FuncOp)>
declare(StringRef op, Request &request, KernelBuilder &kernel,
        MLIRContext *ctx) {
  if (op == "rmsnorm_rope" || op == "rmsnorm_rope_grad") {
    SmallVector<int64_t> x = request.shape("x_shape", /*dynamicRows=*/true);
    Type dtype = request.element("dtype");
    // The table's positions may be dynamic too: Hugging Face's gathered
    // tables have a row per token.
    SmallVector<int64_t> table =
        request.shape("table_shape", /*dynamicRows=*/true);
    Type tableType = request.element("table_dtype");
    int64_t headDim = request.integer("head_dim");
    auto eps = static_cast<float>(request.number("eps"));
    RopeStyle style = request.spelled<RopeStyle>("style", symbolizeRopeStyle);
    std::optional<float> fraction;
    if (request.has("rotary_fraction"))
      fraction = static_cast<float>(request.number("rotary_fraction"));
    bool positions = request.has("positions_shape");
    if (request.error.empty() && x.empty())
      request.error = "'x_shape' is empty";
    if (!request.error.empty())
      return {};
    kernel.add("x", memref(x, dtype));
    kernel.add("w", memref({x.back()}, dtype));
    kernel.add("cos", memref(table, tableType));
    kernel.add("sin", memref(table, tableType));
    if (positions) {
      SmallVector<int64_t> shape = request.shape(
          "positions_shape", /*dynamicRows=*/true, /*allRows=*/true);
      Type type = request.has("positions_dtype")
                      ? request.element("positions_dtype")
                      : IntegerType::get(ctx, 32);
      if (!request.error.empty())
        return {};
      kernel.add("positions", memref(shape, type));
    }
    if (op == "rmsnorm_rope_grad") {
      int64_t partials = weightGradPartials(request);
      if (!request.error.empty())
        return {};
      kernel.add("grad", memref(x, dtype));
      kernel.add("dx", memref(x, dtype));
      kernel.add("dw_partials",
                 memref({partials, x.back()}, Float32Type::get(ctx)));
      kernel.add("dw", memref({x.back()}, dtype));
      return [=, &kernel](OpBuilder &b, Location loc, func::FuncOp f) {
        RmsNormRopeGradOp::create(
            b, loc, kernel.arg(f, "x"), kernel.arg(f, "w"),
            kernel.arg(f, "cos"), kernel.arg(f, "sin"), kernel.arg(f, "grad"),
            kernel.arg(f, "dx"), kernel.arg(f, "dw_partials"), headDim, eps,
            style, kernel.arg(f, "positions"), fraction, kernel.arg(f, "dw"));
      };
    }
    kernel.add("out", memref(x, dtype));
    return [=, &kernel](OpBuilder &b, Location loc, func::FuncOp f) {
      RmsNormRopeOp::create(b, loc, kernel.arg(f, "x"), kernel.arg(f, "w"),
                            kernel.arg(f, "cos"), kernel.arg(f, "sin"),
                            kernel.arg(f, "out"), headDim, eps, style,
                            kernel.arg(f, "positions"), fraction);
    };
  }
  if (op == "rms_norm" || op == "rms_norm_grad") {
    bool grad = op == "rms_norm_grad";
    SmallVector<int64_t> x = request.shape("x_shape", /*dynamicRows=*/true);
    Type dtype = request.element("dtype");
    auto eps = static_cast<float>(request.number("eps"));
    // The forward's residual operand (and its sum), or the backward's sum
    // gradient.
    bool residual = request.flag(grad ? "residual_grad" : "residual");
    int64_t partials = grad ? weightGradPartials(request) : 0;
    std::optional<float> offset;
    if (request.has("weight_offset"))
      offset = static_cast<float>(request.number("weight_offset"));
    if (request.error.empty() && x.empty())
      request.error = "'x_shape' is empty";
    if (!request.error.empty())
      return {};
    kernel.add("x", memref(x, dtype));
    kernel.add("w", memref({x.back()}, dtype));
    if (grad) {
      kernel.add("grad", memref(x, dtype));
      if (residual)
        kernel.add("residual_grad", memref(x, dtype));
      kernel.add("dx", memref(x, dtype));
      kernel.add("dw_partials",
                 memref({partials, x.back()}, Float32Type::get(ctx)));
      kernel.add("dw", memref({x.back()}, dtype));
      return [=, &kernel](OpBuilder &b, Location loc, func::FuncOp f) {
        RmsNormGradOp::create(b, loc, kernel.arg(f, "x"), kernel.arg(f, "w"),
                              kernel.arg(f, "grad"), kernel.arg(f, "dx"),
                              kernel.arg(f, "dw_partials"), eps,
                              kernel.arg(f, "residual_grad"), offset,
                              kernel.arg(f, "dw"));
      };
    }
    if (residual)
      kernel.add("residual", memref(x, dtype));
    kernel.add("out", memref(x, dtype));
    if (residual)
      kernel.add("sum", memref(x, dtype));
    return [=, &kernel](OpBuilder &b, Location loc, func::FuncOp f) {
      SmallVector<Value> inits = {kernel.arg(f, "out")};
      if (residual)
        inits.push_back(kernel.arg(f, "sum"));
      RmsNormOp::create(b, loc, kernel.arg(f, "x"), kernel.arg(f, "w"), inits,
                        eps, kernel.arg(f, "residual"), offset);
    };
  }
  if (op == "gated_mlp" || op == "gated_mlp_grad") {
    SmallVector<int64_t> x = request.shape("x_shape", /*dynamicRows=*/true);
    int64_t n = request.integer("n");
    Type dtype = request.element("dtype");
    Activation activation =
        request.spelled<Activation>("activation", symbolizeActivation);
    if (!request.error.empty())
      return {};
    if (x.empty()) {
      request.error = "'x_shape' is empty";
      return {};
    }
    SmallVector<int64_t> out(x);
    out.back() = n;
    kernel.add("x", memref(x, dtype));
    kernel.add("wg", memref({n, x.back()}, dtype));
    kernel.add("wu", memref({n, x.back()}, dtype));
    if (op == "gated_mlp" && request.flag("save_preactivations")) {
      kernel.add("out", memref(out, dtype));
      kernel.add("gate", memref(out, dtype));
      kernel.add("up", memref(out, dtype));
      return [=, &kernel](OpBuilder &b, Location loc, func::FuncOp f) {
        GatedMlpOp::create(
            b, loc, TypeRange{}, kernel.arg(f, "x"), kernel.arg(f, "wg"),
            kernel.arg(f, "wu"),
            ValueRange{kernel.arg(f, "out"), kernel.arg(f, "gate"),
                       kernel.arg(f, "up")},
            ActivationAttr::get(b.getContext(), activation), TileConfigAttr());
      };
    }
    if (op == "gated_mlp_grad") {
      kernel.add("grad", memref(out, dtype));
      kernel.add("grad_gate", memref(out, dtype));
      kernel.add("grad_up", memref(out, dtype));
      return [=, &kernel](OpBuilder &b, Location loc, func::FuncOp f) {
        GatedMlpGradOp::create(b, loc, kernel.arg(f, "x"), kernel.arg(f, "wg"),
                               kernel.arg(f, "wu"), kernel.arg(f, "grad"),
                               kernel.arg(f, "grad_gate"),
                               kernel.arg(f, "grad_up"), activation);
      };
    }
    kernel.add("out", memref(out, dtype));
    return [=, &kernel](OpBuilder &b, Location loc, func::FuncOp f) {
      GatedMlpOp::create(b, loc, kernel.arg(f, "x"), kernel.arg(f, "wg"),
                         kernel.arg(f, "wu"), kernel.arg(f, "out"), activation);
    };
  }
  if (op == "gated_act_grad") {
    SmallVector<int64_t> shape = request.shape("shape", /*dynamicRows=*/true);
    Type dtype = request.element("dtype");
    Activation activation =
        request.spelled<Activation>("activation", symbolizeActivation);
    if (!request.error.empty())
      return {};
    if (shape.empty()) {
      request.error = "'shape' is empty";
      return {};
    }
    for (StringRef name : {"gate", "up", "grad", "grad_gate", "grad_up"})
      kernel.add(name, memref(shape, dtype));
    return [=, &kernel](OpBuilder &b, Location loc, func::FuncOp f) {
      GatedActGradOp::create(b, loc, kernel.arg(f, "gate"), kernel.arg(f, "up"),
                             kernel.arg(f, "grad"), kernel.arg(f, "grad_gate"),
                             kernel.arg(f, "grad_up"), activation);
    };
  }
  if (op == "fp8_gemm" || op == "quantize" || op == "dequantize") {
    ScaleGranularity granularity = request.spelled<ScaleGranularity>(
        "granularity", symbolizeScaleGranularity);
    auto scales = [&](int64_t rows, int64_t cols) {
      return memref(getScaleShape(granularity, rows, cols),
                    Float32Type::get(ctx));
    };
    if (op == "fp8_gemm") {
      int64_t m = request.rows("m"), n = request.integer("n"),
              k = request.integer("k");
      Type a = request.element("a_dtype"), bType = request.element("b_dtype"),
           out = request.element("out_dtype");
      bool bias = request.flag("bias"), fastAccum = request.flag("fast_accum");
      if (!request.error.empty())
        return {};
      kernel.add("a", memref({m, k}, a));
      kernel.add("b", memref({n, k}, bType));
      kernel.add("sa", scales(m, k));
      kernel.add("sb", scales(n, k));
      if (bias)
        kernel.add("bias", memref({n}, Float32Type::get(ctx)));
      kernel.add("out", memref({m, n}, out));
      return [=, &kernel](OpBuilder &b, Location loc, func::FuncOp f) {
        auto gemm = Fp8GemmOp::create(b, loc, kernel.arg(f, "a"),
                                      kernel.arg(f, "b"), kernel.arg(f, "sa"),
                                      kernel.arg(f, "sb"), kernel.arg(f, "out"),
                                      granularity, kernel.arg(f, "bias"));
        if (fastAccum)
          gemm.setFastAccum(true);
      };
    }
    int64_t rows = request.rows("rows"), cols = request.integer("cols");
    Type fp8 = request.element("fp8");
    Type other = request.element(op == "quantize" ? "dtype" : "out_dtype");
    if (!request.error.empty())
      return {};
    if (op == "quantize") {
      // "transposed": also qᵀ [cols, rows rounded up to 16] (block128).
      bool transposed = request.flag("transposed");
      if (!request.error.empty())
        return {};
      kernel.add("x", memref({rows, cols}, other));
      kernel.add("q", memref({rows, cols}, fp8));
      kernel.add("s", scales(rows, cols));
      if (transposed)
        kernel.add("qt",
                   memref({cols, QuantizeOp::getTransposedRows(rows)}, fp8));
      return [=, &kernel](OpBuilder &b, Location loc, func::FuncOp f) {
        SmallVector<Value> inits = {kernel.arg(f, "q"), kernel.arg(f, "s")};
        if (transposed)
          inits.push_back(kernel.arg(f, "qt"));
        QuantizeOp::create(b, loc, kernel.arg(f, "x"), inits, granularity);
      };
    }
    kernel.add("q", memref({rows, cols}, fp8));
    kernel.add("s", scales(rows, cols));
    kernel.add("out", memref({rows, cols}, other));
    return [=, &kernel](OpBuilder &b, Location loc, func::FuncOp f) {
      DequantizeOp::create(b, loc, kernel.arg(f, "q"), kernel.arg(f, "s"),
                           kernel.arg(f, "out"), granularity);
    };
  }
  request.error =
      "'op' is '" + op.str() +
      "'; expected rmsnorm_rope, rmsnorm_rope_grad, rms_norm, rms_norm_grad, "
      "gated_mlp, gated_mlp_grad, gated_act_grad, fp8_gemm, quantize or "
      "dequantize";
  return {};
}
} // namespace

fusedops_compile_status fusedopsBuildOpSource(const char *request,
                                              char **json) {
  if (!request || !json)
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                            "fusedopsBuildOpSource needs a request and an "
                            "output pointer");
  *json = nullptr;
  if (std::optional<std::string> refused = checkRequestShape(request))
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                            "fusedopsBuildOpSource: " + *refused);
  llvm::Expected<llvm::json::Value> parsed = llvm::json::parse(request);
  if (!parsed)
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                            "the request is not JSON: " +
                                llvm::toString(parsed.takeError()));
  const llvm::json::Object *object = parsed->getAsObject();
  if (!object)
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                            "the request must be a JSON object");

  MLIRContext context;
  context
      .loadDialect<FusedOpsDialect, func::FuncDialect, memref::MemRefDialect>();
  std::string diagnostics;
  llvm::raw_string_ostream diagnosticStream(diagnostics);
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    diagnosticStream << diag << "\n";
    return success();
  });

  Request fields(*object, &context);
  std::string op = fields.text("op");
  KernelBuilder kernel;
  auto buildOp =
      fields.error.empty()
          ? declare(op, fields, kernel, &context)
          : std::function<void(OpBuilder &, Location, func::FuncOp)>();
  if (!buildOp || !fields.error.empty())
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                            "fusedopsBuildOpSource: " + fields.error);

  Location loc = UnknownLoc::get(&context);
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  OpBuilder b(&context);
  b.setInsertionPointToEnd(module->getBody());
  auto function = func::FuncOp::create(b, loc, "kernel",
                                       b.getFunctionType(kernel.types, {}));
  function->setAttr("llvm.emit_c_interface", b.getUnitAttr());
  b.setInsertionPointToStart(function.addEntryBlock());
  // Named arguments (%x, %wg, ...): printed from their name locations.
  for (auto [argument, name] : llvm::zip(function.getArguments(), kernel.names))
    argument.setLoc(NameLoc::get(b.getStringAttr(name)));
  buildOp(b, loc, function);
  func::ReturnOp::create(b, loc);
  if (fields.has("rows_hint")) {
    int64_t hint = fields.integer("rows_hint");
    if (!fields.error.empty())
      return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                              "fusedopsBuildOpSource: " + fields.error);
    function.walk([&](TileConfigurableOpInterface op) {
      op->setAttr(kRowsHintAttrName, b.getI64IntegerAttr(hint));
    });
  }
  if (failed(verify(*module)))
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                            "fusedopsBuildOpSource: the op does not verify: " +
                                diagnostics);

  std::string source;
  llvm::raw_string_ostream os(source);
  module->print(os, OpPrintingFlags().printNameLocAsPrefix());
  llvm::json::Array names;
  for (const std::string &name : kernel.names)
    names.push_back(name);
  std::string reply;
  llvm::raw_string_ostream replyStream(reply);
  replyStream << llvm::json::Value(
      llvm::json::Object{{"source", source}, {"args", std::move(names)}});
  *json = fusedopsCapiCopyOut(reply);
  if (!*json)
    return fusedopsCapiFail(FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT,
                            "out of memory");
  return FUSEDOPS_COMPILE_SUCCESS;
}
