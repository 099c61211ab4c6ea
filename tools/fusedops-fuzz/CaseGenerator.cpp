//===- CaseGenerator.cpp - fusedops-fuzz's inputs -------------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "CaseGenerator.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace fusedops::fuzz;

//===----------------------------------------------------------------------===//
// Random values
//===----------------------------------------------------------------------===//

static uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

CaseRng::CaseRng(uint64_t seed, uint64_t index, uint64_t stream)
    : engine(splitmix(splitmix(seed) ^ splitmix(index * 31 + stream))) {}

namespace {
/// Integers at the edges of what the verifier, the tile checks and the
/// resource arithmetic must handle.
const std::vector<std::string> kEdgeInts = {"0",
                                            "1",
                                            "2",
                                            "3",
                                            "-1",
                                            "7",
                                            "64",
                                            "127",
                                            "129",
                                            "4096",
                                            "65536",
                                            "16777216",
                                            "16777217",
                                            "2147483647",
                                            "2147483648",
                                            "4294967296",
                                            "1099511627776",
                                            "4611686018427387904",
                                            "9223372036854775807",
                                            "-9223372036854775808",
                                            "99999999999999999999"};

const std::vector<std::string> kElementTypes = {
    "f16", "bf16", "f32",   "f8E4M3FN",   "f8E5M2", "f64", "i8",
    "i32", "i64",  "index", "f8E4M3FNUZ", "tf32",   "i1",  "complex<f32>"};

std::string join(const std::vector<std::string> &parts, const char *sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i)
    out += (i ? sep : "") + parts[i];
  return out;
}

/// Builds one function around one op, in buffer (memref) or tensor form.
class OpWriter {
public:
  /// Half the functions are clean: every choice is one the op documents,
  /// so that they go through the whole pipeline; the others have values at
  /// the edges or wrong, which the verifier and the strategies must refuse.
  OpWriter(CaseRng &rng)
      : rng(rng), tensorForm(rng.chance(0.25)), clean(rng.chance(0.5)) {}

  /// A dimension: usually `usual`, sometimes dynamic, an edge or wrong.
  std::string dim(int64_t usual, bool mayBeDynamic = false) {
    if (mayBeDynamic && rng.chance(0.3))
      return "?";
    if (clean || rng.chance(0.9))
      return std::to_string(usual);
    if (rng.chance(0.2))
      return "?";
    return rng.pick(kEdgeInts);
  }

  /// A realistic size for a dimension of `kind` (rows, features, heads).
  int64_t size(const std::vector<int64_t> &usual) {
    return usual[rng.below(usual.size())];
  }

  std::string element(const std::string &usual) {
    return clean || rng.chance(0.93) ? usual : rng.pick(kElementTypes);
  }

  /// A shaped type with `dims` and `element`; buffers sometimes get a memory
  /// space or a layout.
  std::string type(const std::vector<std::string> &dims,
                   const std::string &elementType) {
    std::string shape;
    for (const std::string &d : dims)
      shape += (d.empty() ? "1" : d) + "x";
    if (tensorForm)
      return "tensor<" + shape + elementType + ">";
    std::string extra;
    if (clean)
      return "memref<" + shape + elementType + ">";
    if (rng.chance(0.06)) {
      static const std::vector<std::string> spaces = {
          "1",
          "3",
          "5",
          "7",
          "#gpu.address_space<workgroup>",
          "#gpu.address_space<private>",
          "#gpu.address_space<global>"};
      extra = ", " + rng.pick(spaces);
    }
    if (rng.chance(0.05) && !dims.empty()) {
      std::vector<std::string> strides;
      for (size_t i = 0; i < dims.size(); ++i)
        strides.push_back(rng.chance(0.5) ? "?"
                                          : rng.pick(std::vector<std::string>{
                                                "1", "0", "2", "4096", "-1"}));
      std::string layout = "strided<[" + join(strides, ", ") + "]" +
                           (rng.chance(0.5) ? ", offset: ?" : "") + ">";
      if (dims.size() == 2 && rng.chance(0.3))
        layout = "affine_map<(d0, d1) -> (d1, d0)>";
      extra = ", " + layout + extra;
    }
    return "memref<" + shape + elementType + extra + ">";
  }

  /// Adds a function argument of `type`; returns its SSA name.
  std::string arg(const std::string &type) {
    std::string name = "%a" + std::to_string(args.size());
    args.push_back(name + ": " + type);
    argTypes.push_back(type);
    return name;
  }

  /// ` keyword(%a, %b : A, B)`: an argument of each of `types`.
  std::string operands(const std::string &keyword,
                       const std::vector<std::string> &types) {
    std::vector<std::string> names;
    for (const std::string &type : types)
      names.push_back(arg(type));
    return " " + keyword + "(" + join(names, ", ") + " : " + join(types, ", ") +
           ")";
  }

  /// `{tile = ...}` with `rank` block entries, or nothing.
  std::string tile(size_t rank) {
    if (rng.chance(clean ? 0.8 : 0.5))
      return "";
    if (clean) {
      // The tiles the lit tests and the tuner use.
      static const std::vector<std::vector<std::string>> tiles = {
          {"[4], warps = 4", "[8], warps = 8", "[1], warps = 2"},
          {"[64, 128], warps = 4", "[32, 64], warps = 4",
           "[1, 128], warps = 1"},
          {"[128, 128, 32], warps = 4, stages = 3",
           "[128, 128, 64], warps = 8, stages = 4",
           "[64, 128, 64], warps = 4, stages = 4",
           "[128, 256, 64], warps = 8, stages = 3",
           "[64, 64, 32], warps = 4, stages = 2"}};
      const auto &choices = tiles[std::min<size_t>(rank, 3) - 1];
      return " {tile = #fusedops.tile<block = " + rng.pick(choices) + ">}";
    }
    static const std::vector<int64_t> blocks = {1,  2,   4,   8,   16, 32,
                                                64, 128, 256, 512, 96};
    std::vector<std::string> block;
    size_t n = rng.chance(0.9) ? rank : rng.below(5);
    for (size_t i = 0; i < n; ++i)
      block.push_back(rng.chance(0.9) ? std::to_string(size(blocks))
                                      : rng.pick(kEdgeInts));
    auto small = [&](const std::vector<int64_t> &usual) {
      return rng.chance(0.9) ? std::to_string(size(usual))
                             : rng.pick(kEdgeInts);
    };
    std::string text = "#fusedops.tile<block = [" + join(block, ", ") +
                       "], warps = " + small({1, 2, 4, 8, 16, 32});
    if (rng.chance(0.6))
      text += ", stages = " + small({1, 2, 3, 4, 5, 6});
    if (rng.chance(0.15))
      text += ", cluster = [" + small({1, 2}) +
              (rng.chance(0.7) ? ", " + small({1, 2}) : "") + "]";
    return " {tile = " + text + ">}";
  }

  /// The function: `op` is the op's text up to (not including) its result
  /// types; `results` the result types (tensor form).
  std::string function(const std::string &op,
                       const std::vector<std::string> &results) {
    std::string text = "func.func @fuzz(" + join(args, ", ") + ")";
    if (tensorForm)
      text += " -> (" + join(results, ", ") + ")";
    text += " attributes {llvm.emit_c_interface} {\n  ";
    if (tensorForm) {
      std::vector<std::string> names;
      for (size_t i = 0; i < results.size(); ++i)
        names.push_back("%r#" + std::to_string(i));
      text += "%r:" + std::to_string(results.size()) + " = " + op + " -> " +
              join(results, ", ") + "\n  return " + join(names, ", ") + " : " +
              join(results, ", ") + "\n}\n";
    } else {
      text += op + "\n  return\n}\n";
    }
    return text;
  }

  CaseRng &rng;
  bool tensorForm, clean;
  std::vector<std::string> args, argTypes;
};

std::string fp8Type(CaseRng &rng) {
  return rng.chance(0.7) ? "f8E4M3FN" : "f8E5M2";
}

std::string floatType(CaseRng &rng) {
  return rng.pick(std::vector<std::string>{"f16", "bf16", "f32"});
}

const std::vector<int64_t> kRows = {1, 2, 16, 64, 100, 128, 256, 300, 4096};
const std::vector<int64_t> kFeatures = {64, 96, 128, 256, 384, 1024, 4096};

/// rmsnorm_rope, or with `grad` its backward rmsnorm_rope_grad (the output's
/// gradient after the tables; outs dx and the weight gradient's partial
/// sums [P, hidden] f32).
std::string genRmsNormRopeOp(CaseRng &rng, bool grad) {
  OpWriter w(rng);
  int64_t headDim = w.size({32, 64, 128, 256});
  int64_t heads = w.size({1, 2, 8, 32});
  std::string hidden = w.dim(headDim * heads, true);
  std::string element = w.element(floatType(rng));
  bool positions = rng.chance(0.4);
  double fraction =
      rng.chance(0.2)
          ? rng.pick(w.clean ? std::vector<double>{0.25, 0.5}
                             : std::vector<double>{0.25, 0.5, 0.0, 1.5})
          : 1.0;
  int64_t rotary = static_cast<int64_t>(headDim * fraction);
  std::vector<std::string> inDims;
  if (positions) {
    inDims = {w.dim(w.size(kRows), true), hidden};
  } else {
    inDims = {w.dim(2, true), w.dim(w.size({1, 8, 128}), true), hidden};
    if (rng.chance(0.2))
      inDims.erase(inDims.begin());
  }
  std::string x = w.arg(w.type(inDims, element));
  std::string weight = w.arg(w.type({hidden}, w.element(element)));
  std::string tableType =
      w.type({w.dim(w.size({8, 128, 4096}), !w.clean), w.dim(rotary)},
             w.element(rng.chance(0.6) ? "f32" : element));
  std::string cos = w.arg(tableType), sin = w.arg(tableType);
  std::string outType = w.type(inDims, w.element(element));
  std::string gradIn, gradType;
  if (grad) {
    gradType = w.type(inDims, w.element(element));
    gradIn = ", " + w.arg(gradType);
    gradType = ", " + gradType;
  }
  std::string op = std::string(grad ? "fusedops.rmsnorm_rope_grad"
                                    : "fusedops.rmsnorm_rope") +
                   " ins(" + x + ", " + weight + ", " + cos + ", " + sin +
                   gradIn + " : " + w.argTypes[0] + ", " + w.argTypes[1] +
                   ", " + tableType + ", " + tableType + gradType + ")";
  if (positions) {
    std::string posType = w.type(
        {inDims[0]}, rng.pick(w.clean ? std::vector<std::string>{"i32", "i64"}
                                      : std::vector<std::string>{
                                            "i32", "i64", "i16", "f32"}));
    op += " positions(" + w.arg(posType) + " : " + posType + ")";
  }
  std::vector<std::string> outTypes = {outType};
  if (grad)
    outTypes.push_back(w.type({w.dim(w.size({1, 8, 64, 2112}), !w.clean),
                               w.clean ? hidden : w.dim(headDim * heads)},
                              w.element("f32")));
  op +=
      w.operands("outs", outTypes) + " head_dim = " +
      (w.clean || rng.chance(0.9) ? std::to_string(headDim)
                                  : rng.pick(kEdgeInts)) +
      " eps = " +
      (w.clean
           ? rng.pick(std::vector<std::string>{"1.0e-6", "1.0e-5"})
           : rng.pick(std::vector<std::string>{
                 "1.0e-6", "1.0e-5", "0.0", "-1.0", "1.0e+38", "0x7FC00000"})) +
      " style = " + rng.pick(std::vector<std::string>{"neox", "gptj", "neox"});
  if (fraction != 1.0 || rng.chance(0.05))
    op += " rotary_fraction = " + std::to_string(fraction);
  op += w.tile(1);
  return w.function(op, outTypes);
}

std::string genRmsNormRope(CaseRng &rng) {
  return genRmsNormRopeOp(rng, /*grad=*/false);
}
std::string genRmsNormRopeGrad(CaseRng &rng) {
  return genRmsNormRopeOp(rng, /*grad=*/true);
}

/// rms_norm (with or without a residual), or with `grad` its backward
/// rms_norm_grad (the output's gradient after the weight, optionally the
/// sum's gradient; outs dx and the weight gradient's partial sums [P, H] f32).
std::string genRmsNormOp(CaseRng &rng, bool grad) {
  OpWriter w(rng);
  std::string hidden = w.dim(w.size({33, 64, 128, 1000, 4096, 8192}), true);
  std::string element = w.element(floatType(rng));
  std::vector<std::string> inDims = {w.dim(w.size(kRows), true), hidden};
  if (rng.chance(0.3))
    inDims.insert(inDims.begin(), w.dim(w.size({1, 3}), true));
  bool residual = rng.chance(0.5);
  std::string x = w.arg(w.type(inDims, element));
  std::string weight = w.arg(w.type({hidden}, w.element(element)));
  std::string op = grad ? "fusedops.rms_norm_grad" : "fusedops.rms_norm";
  std::string gradIn, gradType;
  if (grad) {
    gradType = w.type(inDims, w.element(element));
    gradIn = ", " + w.arg(gradType);
    gradType = ", " + gradType;
  }
  op += " ins(" + x + ", " + weight + gradIn + " : " + w.argTypes[0] + ", " +
        w.argTypes[1] + gradType + ")";
  if (residual) {
    std::string type = w.type(inDims, w.element(element));
    op += std::string(grad ? " residual_grad(" : " residual(") + w.arg(type) +
          " : " + type + ")";
  }
  std::vector<std::string> outTypes = {w.type(inDims, w.element(element))};
  if (grad) {
    outTypes.push_back(w.type({w.dim(w.size({1, 8, 64, 2112}), !w.clean),
                               w.clean ? hidden : w.dim(w.size({64, 4096}))},
                              w.element("f32")));
  } else if (residual == (w.clean || rng.chance(0.9))) {
    // A second result only with a residual (or, unclean, without one).
    outTypes.push_back(w.type(inDims, w.element(element)));
  }
  op += w.operands("outs", outTypes) + " eps = " +
        (w.clean ? rng.pick(std::vector<std::string>{"1.0e-6", "0.0"})
                 : rng.pick(std::vector<std::string>{"1.0e-6", "0.0", "-1.0",
                                                     "0x7F800000"}));
  if (rng.chance(0.3))
    op += " weight_offset = " +
          (w.clean ? std::string("1.0")
                   : rng.pick(std::vector<std::string>{"1.0", "0x7FC00000"}));
  op += w.tile(1);
  return w.function(op, outTypes);
}

std::string genRmsNorm(CaseRng &rng) {
  return genRmsNormOp(rng, /*grad=*/false);
}
std::string genRmsNormGrad(CaseRng &rng) {
  return genRmsNormOp(rng, /*grad=*/true);
}

/// gated_mlp (one output, or three with the saved projections) or, with
/// `grad`, gated_mlp_grad (the output's gradient after the weights; outs the
/// projections' gradients).
std::string genGatedMlpOp(CaseRng &rng, bool grad) {
  OpWriter w(rng);
  std::string element =
      w.element(rng.pick(std::vector<std::string>{"f16", "bf16"}));
  std::string m = w.dim(w.size(kRows), true), k = w.dim(w.size(kFeatures));
  std::string n = w.dim(w.size(kFeatures));
  std::vector<std::string> inDims = {m, k};
  if (rng.chance(0.2))
    inDims.insert(inDims.begin(), w.dim(2, true));
  std::string xType = w.type(inDims, element);
  std::string gType = w.type({n, k}, w.element(element));
  std::string uType =
      w.type({n, w.dim(std::atoll(k.c_str()))}, w.element(element));
  std::vector<std::string> outDims(inDims.begin(), inDims.end() - 1);
  outDims.push_back(n);
  std::string outType = w.type(outDims, w.element(element));
  std::string x = w.arg(xType), g = w.arg(gType), u = w.arg(uType);
  std::string ins = x + ", " + g + ", " + u,
              insTypes = xType + ", " + gType + ", " + uType;
  if (grad) {
    std::string dhType = w.type(outDims, w.element(element));
    ins += ", " + w.arg(dhType);
    insTypes += ", " + dhType;
  }
  // gated_mlp: one output, or three (the saved projections); the backward
  // two; unclean, any of these counts for either.
  size_t numOuts = grad ? 2 : (rng.chance(0.3) ? 3 : 1);
  if (!w.clean && rng.chance(0.2))
    numOuts = 1 + rng.below(3);
  std::vector<std::string> outTypes;
  for (size_t i = 0; i < numOuts; ++i)
    outTypes.push_back(i == 0 ? outType : w.type(outDims, w.element(element)));
  std::string op =
      std::string(grad ? "fusedops.gated_mlp_grad" : "fusedops.gated_mlp") +
      " ins(" + ins + " : " + insTypes + ")" + w.operands("outs", outTypes) +
      " activation = " +
      rng.pick(std::vector<std::string>{"silu", "gelu", "gelu_tanh"}) +
      w.tile(3);
  return w.function(op, outTypes);
}

std::string genGatedMlp(CaseRng &rng) {
  return genGatedMlpOp(rng, /*grad=*/false);
}
std::string genGatedMlpGrad(CaseRng &rng) {
  return genGatedMlpOp(rng, /*grad=*/true);
}

/// gated_act_grad: gate, up and the product's gradient, elementwise, of one
/// shape.
std::string genGatedActGrad(CaseRng &rng) {
  OpWriter w(rng);
  std::string element = w.element(
      rng.pick(w.clean ? std::vector<std::string>{"f16", "bf16"}
                       : std::vector<std::string>{"f16", "bf16", "f32"}));
  std::vector<std::string> dims = {w.dim(w.size(kRows), true),
                                   w.dim(w.size({1, 7, 96, 11008}))};
  if (rng.chance(0.3))
    dims.insert(dims.begin(), w.dim(w.size({1, 3}), true));
  std::vector<std::string> inTypes, outTypes;
  for (int i = 0; i < 3; ++i)
    inTypes.push_back(w.type(dims, w.element(element)));
  std::string ins = w.operands("ins", inTypes);
  for (int i = 0; i < 2; ++i)
    outTypes.push_back(w.type(dims, w.element(element)));
  std::string op =
      "fusedops.gated_act_grad" + ins + w.operands("outs", outTypes) +
      " activation = " +
      rng.pick(std::vector<std::string>{"silu", "gelu", "gelu_tanh"}) +
      w.tile(1);
  return w.function(op, outTypes);
}

/// The scale shapes of `granularity` for a [rows, cols] operand.
std::vector<std::string> scaleDims(OpWriter &w, const std::string &granularity,
                                   const std::string &rows,
                                   const std::string &cols) {
  auto blocks = [&](const std::string &d) {
    if (d == "?")
      return std::string("?");
    long long v = std::atoll(d.c_str());
    return w.dim((v + 127) / 128);
  };
  if (granularity == "tensor")
    return {};
  if (granularity == "row")
    return {rows};
  return {blocks(rows), blocks(cols)};
}

std::string genFp8Gemm(CaseRng &rng) {
  OpWriter w(rng);
  std::string granularity =
      rng.pick(std::vector<std::string>{"tensor", "row", "block128"});
  std::string m = w.dim(w.size(kRows), true), k = w.dim(w.size(kFeatures));
  std::string n = w.dim(w.size(kFeatures));
  std::string aType = w.type({m, k}, w.element(fp8Type(rng)));
  std::string bType = w.type({n, k}, w.element(fp8Type(rng)));
  std::string saType =
      w.type(scaleDims(w, granularity, m, k), w.element("f32"));
  std::string sbType =
      w.type(scaleDims(w, granularity, n, k), w.element("f32"));
  std::string outElement = w.element(floatType(rng));
  std::string outType = w.type({m, n}, outElement);
  std::string a = w.arg(aType), b = w.arg(bType), sa = w.arg(saType),
              sb = w.arg(sbType);
  std::string op = "fusedops.fp8_gemm ins(" + a + ", " + b + ", " + sa + ", " +
                   sb + " : " + aType + ", " + bType + ", " + saType + ", " +
                   sbType + ")";
  if (rng.chance(0.3)) {
    std::string biasType = w.type({n}, w.element(outElement));
    op += " bias(" + w.arg(biasType) + " : " + biasType + ")";
  }
  op += " outs(" + w.arg(outType) + " : " + outType +
        ") granularity = " + granularity;
  if (rng.chance(0.25))
    op += " fast_accum";
  op += w.tile(3);
  return w.function(op, {outType});
}

/// The granularity and the [rows, cols] of a quantize/dequantize case.
struct QuantizeShape {
  std::string granularity, rows, cols;
};

QuantizeShape drawQuantizeShape(CaseRng &rng, OpWriter &w) {
  QuantizeShape shape;
  shape.granularity =
      rng.pick(std::vector<std::string>{"tensor", "row", "block128"});
  shape.rows = w.dim(w.size(kRows), true);
  shape.cols = w.dim(w.size(kFeatures));
  if (rng.chance(0.03))
    shape.cols = "0";
  return shape;
}

std::string genQuantize(CaseRng &rng) {
  OpWriter w(rng);
  auto [granularity, rows, cols] = drawQuantizeShape(rng, w);
  std::string xType = w.type({rows, cols}, w.element(floatType(rng)));
  std::string qType = w.type({rows, cols}, w.element(fp8Type(rng)));
  std::string sType =
      w.type(scaleDims(w, granularity, rows, cols), w.element("f32"));
  std::string x = w.arg(xType);
  bool staticScale = granularity == "tensor" && rng.chance(0.4);
  std::string op = "fusedops.quantize ins(" + x + " : " + xType + ")";
  std::vector<std::string> results = {qType};
  if (staticScale) {
    op += " scale(" + w.arg(sType) + " : " + sType + ")";
    op += " outs(" + w.arg(qType) + " : " + qType + ")";
  } else {
    std::string q = w.arg(qType), s = w.arg(sType);
    std::string outs = q + ", " + s, outTypes = qType + ", " + sType;
    results.push_back(sType);
    // Block128 may also write the values transposed: [cols, rows rounded up
    // to 16] (unclean: any granularity, unrounded rows).
    if ((granularity == "block128" || !w.clean) && rng.chance(0.3)) {
      std::string padded = rows;
      if (rows != "?" && rows.size() < 12 && (w.clean || rng.chance(0.7)))
        padded = w.dim((std::atoll(rows.c_str()) + 15) / 16 * 16);
      std::string tType = w.type({cols, padded}, w.element(fp8Type(rng)));
      outs += ", " + w.arg(tType);
      outTypes += ", " + tType;
      results.push_back(tType);
    }
    op += " outs(" + outs + " : " + outTypes + ")";
  }
  op += " granularity = " + granularity + w.tile(rng.chance(0.5) ? 2 : 1);
  return w.function(op, results);
}

std::string genDequantize(CaseRng &rng) {
  OpWriter w(rng);
  auto [granularity, rows, cols] = drawQuantizeShape(rng, w);
  std::string qType = w.type({rows, cols}, w.element(fp8Type(rng)));
  std::string sType =
      w.type(scaleDims(w, granularity, rows, cols), w.element("f32"));
  std::string xType = w.type({rows, cols}, w.element(floatType(rng)));
  std::string q = w.arg(qType), s = w.arg(sType), x = w.arg(xType);
  std::string op = "fusedops.dequantize ins(" + q + ", " + s + " : " + qType +
                   ", " + sType + ") outs(" + x + " : " + xType +
                   ") granularity = " + granularity +
                   w.tile(rng.chance(0.5) ? 2 : 1);
  return w.function(op, {xType});
}

//===----------------------------------------------------------------------===//
// Mutations of lit inputs
//===----------------------------------------------------------------------===//

/// [begin, end) of every token of `text` for which `accept` holds; tokens are
/// runs of identifier characters.
std::vector<std::pair<size_t, size_t>>
findTokens(const std::string &text, bool (*accept)(const std::string &)) {
  std::vector<std::pair<size_t, size_t>> found;
  for (size_t i = 0; i < text.size();) {
    if (!std::isalnum(static_cast<unsigned char>(text[i])) && text[i] != '_' &&
        text[i] != '.') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() &&
           (std::isalnum(static_cast<unsigned char>(text[j])) ||
            text[j] == '_' || text[j] == '.'))
      ++j;
    if (accept(text.substr(i, j - i)))
      found.push_back({i, j});
    i = j;
  }
  return found;
}

bool isNumber(const std::string &token) {
  return !token.empty() && std::isdigit(static_cast<unsigned char>(token[0]));
}

bool isTypeName(const std::string &token) {
  static const std::vector<std::string> names = {
      "f16",    "bf16", "f32", "f64", "f8E4M3FN",
      "f8E5M2", "i8",   "i32", "i64", "index"};
  return std::find(names.begin(), names.end(), token) != names.end();
}

bool isKeyword(const std::string &token) {
  static const std::vector<std::string> names = {
      "silu",  "gelu",           "gelu_tanh",   "neox",       "gptj",
      "row",   "tensor",         "block128",    "fast_accum", "memref",
      "warps", "stages",         "cluster",     "block",      "head_dim",
      "eps",   "style",          "granularity", "positions",  "bias",
      "scale", "rotary_fraction"};
  return std::find(names.begin(), names.end(), token) != names.end();
}

std::vector<std::string> splitLines(const std::string &text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

std::string joinLines(const std::vector<std::string> &lines) {
  std::string out;
  for (const std::string &line : lines)
    out += line + "\n";
  return out;
}

void mutate(CaseRng &rng, std::string &text) {
  auto replaceToken = [&](bool (*accept)(const std::string &),
                          const std::vector<std::string> &with) {
    auto tokens = findTokens(text, accept);
    if (tokens.empty())
      return;
    auto [b, e] = tokens[rng.below(tokens.size())];
    text.replace(b, e - b, rng.pick(with));
  };
  switch (rng.below(10)) {
  case 0:
  case 1:
    replaceToken(isNumber, kEdgeInts);
    break;
  case 2:
    replaceToken(isTypeName, kElementTypes);
    break;
  case 3:
    replaceToken(isKeyword,
                 {"silu", "gelu", "neox", "gptj", "row", "tensor", "block128",
                  "fast_accum", "bias", "positions", "x", ""});
    break;
  case 4: { // delete, duplicate or swap lines
    std::vector<std::string> lines = splitLines(text);
    if (lines.size() < 2)
      break;
    size_t i = rng.below(lines.size() - 1);
    switch (rng.below(3)) {
    case 0:
      lines.erase(lines.begin() + i);
      break;
    case 1:
      lines.insert(lines.begin() + i, lines[i]);
      break;
    default:
      std::swap(lines[i], lines[i + 1]);
    }
    text = joinLines(lines);
    break;
  }
  case 5: { // a byte changed, inserted or a span deleted
    if (text.empty())
      break;
    static const std::string alphabet = "()[]{}<>,:=%@#!?x0123456789-.\"\\ \n";
    size_t at = rng.below(text.size());
    switch (rng.below(3)) {
    case 0:
      text[at] = alphabet[rng.below(alphabet.size())];
      break;
    case 1:
      text.insert(at, 1, alphabet[rng.below(alphabet.size())]);
      break;
    default:
      text.erase(at, std::min<size_t>(rng.below(16) + 1, text.size() - at));
    }
    break;
  }
  case 6: { // a tile added to or removed from a fusedops op
    size_t at = text.find("{tile = ");
    if (at != std::string::npos && rng.chance(0.5)) {
      size_t end = text.find(">}", at);
      if (end != std::string::npos)
        text.erase(at, end + 2 - at);
      break;
    }
    size_t op = text.find("fusedops.");
    if (op == std::string::npos)
      break;
    size_t eol = text.find('\n', text.find("outs(", op));
    if (eol == std::string::npos)
      break;
    size_t arrow = text.rfind(" -> ", eol);
    size_t insertAt = arrow != std::string::npos && arrow > op ? arrow : eol;
    text.insert(
        insertAt,
        " {tile = #fusedops.tile<block = [" + rng.pick(kEdgeInts) + ", " +
            rng.pick(std::vector<std::string>{"64", "128"}) +
            ", 32], warps = " +
            rng.pick(std::vector<std::string>{"4", "8", "0", "3", "64"}) +
            ", stages = " + rng.pick(kEdgeInts) + ">}");
    break;
  }
  case 7: { // a memory space or layout on a buffer type
    auto tokens = findTokens(text, isTypeName);
    std::vector<size_t> ends;
    for (auto [b, e] : tokens)
      if (e < text.size() && text[e] == '>' &&
          text.rfind("memref<", b) != std::string::npos)
        ends.push_back(e);
    if (ends.empty())
      break;
    text.insert(ends[rng.below(ends.size())],
                rng.pick(std::vector<std::string>{
                    ", 3", ", 5", ", 1", ", #gpu.address_space<workgroup>",
                    ", strided<[?, 1], offset: ?>",
                    ", affine_map<(d0, d1) -> (d1, d0)>"}));
    break;
  }
  case 8: // dynamic dimensions
    replaceToken(isNumber, {"?"});
    break;
  default: { // truncation
    if (!text.empty())
      text.resize(rng.below(text.size()));
  }
  }
}
} // namespace

//===----------------------------------------------------------------------===//
// Corpus and cases
//===----------------------------------------------------------------------===//

static void listMlirFiles(const std::string &folder,
                          std::vector<std::string> &files) {
  DIR *dir = opendir(folder.c_str());
  if (!dir)
    return;
  while (dirent *entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..")
      continue;
    std::string path = folder + "/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0)
      continue;
    if (S_ISDIR(st.st_mode))
      listMlirFiles(path, files);
    else if (S_ISREG(st.st_mode) && name.size() > 5 &&
             name.compare(name.size() - 5, 5, ".mlir") == 0)
      files.push_back(path);
  }
  closedir(dir);
}

std::string Corpus::load(const std::vector<std::string> &folders) {
  std::vector<std::string> files;
  for (const std::string &folder : folders) {
    size_t before = files.size();
    listMlirFiles(folder, files);
    if (files.size() == before)
      return "no .mlir files under '" + folder + "'";
  }
  // Sorted: the corpus, and so every mutated case, must not depend on the
  // order readdir returns.
  std::sort(files.begin(), files.end());
  for (const std::string &file : files) {
    std::ifstream in(file);
    std::string split;
    int index = 0;
    auto flush = [&] {
      if (split.find("fusedops.") != std::string::npos ||
          split.find("func.func") != std::string::npos)
        splits.push_back({file + "#" + std::to_string(index), split});
      split.clear();
      ++index;
    };
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("// -----", 0) == 0) {
        flush();
        continue;
      }
      if (line.find("RUN:") != std::string::npos)
        continue;
      split += line + "\n";
    }
    flush();
  }
  return "";
}

FuzzCase fusedops::fuzz::makeCase(uint64_t seed, uint64_t index,
                                  const Corpus &corpus) {
  CaseRng rng(seed, index);
  FuzzCase result;
  result.optLevel = rng.chance(0.7) ? 3 : static_cast<unsigned>(rng.below(3));
  if (corpus.size() && rng.chance(0.4)) {
    size_t split = rng.below(corpus.size());
    result.origin = "mutated:" + corpus.name(split);
    result.source = corpus.text(split);
    for (uint64_t n = 1 + rng.below(4); n > 0; --n)
      mutate(rng, result.source);
    return result;
  }
  using Generator = std::string (*)(CaseRng &);
  static const std::vector<std::pair<const char *, Generator>> generators = {
      {"rmsnorm_rope", genRmsNormRope},
      {"rmsnorm_rope_grad", genRmsNormRopeGrad},
      {"rms_norm", genRmsNorm},
      {"rms_norm_grad", genRmsNormGrad},
      {"gated_mlp", genGatedMlp},
      {"gated_mlp_grad", genGatedMlpGrad},
      {"gated_act_grad", genGatedActGrad},
      {"fp8_gemm", genFp8Gemm},
      {"quantize", genQuantize},
      {"dequantize", genDequantize}};
  const auto &[name, generate] = rng.pick(generators);
  result.origin = std::string("generated:") + name;
  result.source = generate(rng);
  if (rng.chance(0.05))
    mutate(rng, result.source);
  return result;
}

//===----------------------------------------------------------------------===//
// Hostile tuning caches
//===----------------------------------------------------------------------===//

const char *fusedops::fuzz::getCacheKindName(CacheKind kind) {
  // In CacheKind's order.
  static const char *const names[] = {"mutated", "deep",        "huge",
                                      "fifo",    "dev-zero",    "directory",
                                      "foreign", "wrong-types", "non-finite",
                                      "garbage", "valid-link"};
  static_assert(std::size(names) == kNumCacheKinds);
  return names[static_cast<int>(kind)];
}

/// Replaces one random JSON scalar (a number, string, true/false/null) of
/// `text` with `with`.
static void replaceJsonValue(CaseRng &rng, std::string &text,
                             const std::string &with) {
  std::vector<std::pair<size_t, size_t>> values;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != ':')
      continue;
    size_t b = i + 1;
    while (b < text.size() && text[b] == ' ')
      ++b;
    size_t e = b;
    if (e < text.size() && text[e] == '"') {
      for (++e; e < text.size() && text[e] != '"'; ++e)
        if (text[e] == '\\')
          ++e;
      ++e;
    } else {
      while (e < text.size() && text[e] != ',' && text[e] != '}' &&
             text[e] != ']' && text[e] != '\n')
        ++e;
    }
    if (e > b && e <= text.size())
      values.push_back({b, e});
  }
  if (values.empty())
    return;
  auto [b, e] = values[rng.below(values.size())];
  text.replace(b, e - b, with);
}

bool fusedops::fuzz::writeFile(const std::string &path,
                               const std::string &bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  out.close();
  return static_cast<bool>(out);
}

/// writeFile, with the failure in `error`.
static bool writeFileOrSay(const std::string &path, const std::string &bytes,
                           std::string &error) {
  if (!writeFile(path, bytes))
    error = "cannot write " + path;
  return error.empty();
}

CacheKind fusedops::fuzz::makeHostileCache(CaseRng &rng,
                                           const std::string &path,
                                           const std::string &validCache,
                                           std::string &error) {
  auto kind = static_cast<CacheKind>(rng.below(kNumCacheKinds));
  std::string text = validCache;
  switch (kind) {
  case CacheKind::Mutated:
    for (uint64_t n = 1 + rng.below(3); n > 0; --n) {
      if (rng.chance(0.5) && !text.empty()) {
        size_t at = rng.below(text.size());
        text[at] = static_cast<char>(rng.below(256));
      } else if (rng.chance(0.5)) {
        text.resize(rng.below(text.size() + 1));
      } else {
        replaceJsonValue(rng, text, rng.pick(kEdgeInts));
      }
    }
    writeFileOrSay(path, text, error);
    break;
  case CacheKind::Deep: {
    size_t depth = rng.pick(std::vector<size_t>{17, 100, 5000, 200000});
    char open = rng.chance(0.5) ? '[' : '{';
    text = open == '[' ? std::string(depth, '[') : [&] {
      std::string s;
      for (size_t i = 0; i < depth; ++i)
        s += "{\"a\":";
      return s;
    }();
    writeFileOrSay(path, text, error);
    break;
  }
  case CacheKind::Huge: {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_EXCL, 0644);
    if (fd < 0 || ::write(fd, validCache.data(), validCache.size()) < 0 ||
        ::ftruncate(fd, (64ll << 20) + 1 + rng.below(1 << 20)) != 0)
      error =
          "cannot make a sparse file at " + path + ": " + std::strerror(errno);
    if (fd >= 0)
      ::close(fd);
    break;
  }
  case CacheKind::Fifo:
    if (::mkfifo(path.c_str(), 0644) != 0)
      error = "mkfifo " + path + ": " + std::strerror(errno);
    break;
  case CacheKind::DevZero:
    if (::symlink("/dev/zero", path.c_str()) != 0)
      error = "symlink " + path + ": " + std::strerror(errno);
    break;
  case CacheKind::Directory:
    if (::mkdir(path.c_str(), 0755) != 0)
      error = "mkdir " + path + ": " + std::strerror(errno);
    break;
  case CacheKind::Foreign: {
    size_t at = text.find("\"version\"");
    if (at != std::string::npos) {
      size_t colon = text.find(':', at);
      size_t end = text.find_first_of(",}", colon);
      text.replace(colon + 1, end - colon - 1,
                   rng.pick(std::vector<std::string>{"0", "2", "999", "-1",
                                                     "\"1\"", "1.5"}));
    } else {
      text = "{\"format\": \"something-else\", \"version\": 1}";
    }
    writeFileOrSay(path, text, error);
    break;
  }
  case CacheKind::WrongTypes:
    for (uint64_t n = 1 + rng.below(3); n > 0; --n)
      replaceJsonValue(
          rng, text,
          rng.pick(std::vector<std::string>{"{}", "[]", "\"x\"", "true", "null",
                                            "-0", "[1, 2]", "{\"tile\": 3}"}));
    writeFileOrSay(path, text, error);
    break;
  case CacheKind::NonFinite:
    replaceJsonValue(rng, text,
                     rng.pick(std::vector<std::string>{
                         "1e400", "-1e400", "NaN", "Infinity", "-Infinity",
                         "nan", "inf", "1e-400"}));
    writeFileOrSay(path, text, error);
    break;
  case CacheKind::Garbage: {
    text.clear();
    for (uint64_t n = rng.below(4096); n > 0; --n)
      text += static_cast<char>(rng.below(256));
    writeFileOrSay(path, text, error);
    break;
  }
  case CacheKind::ValidLink: {
    std::string target = path + ".target";
    if (writeFileOrSay(target, validCache, error) &&
        ::symlink(target.c_str(), path.c_str()) != 0)
      error = "symlink " + path + ": " + std::strerror(errno);
    break;
  }
  }
  return kind;
}
