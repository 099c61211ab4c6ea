//===- QuantizeBench.cpp - quantize/dequantize against the copy rate ------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// quantize reads the input once and writes FP8 values and scales; dequantize
// reads FP8 values and scales and writes the output: both are bound by
// memory. Reports GB/s (bytes read + written, each once) and the share of
// the device-copy rate measured first in the same run.
//
//===----------------------------------------------------------------------===//

#include "BenchSupport.h"
#include "Support/DeviceArrays.h"

#include "fusedops/ExecutionEngine/JitModule.h"

#include <memory>
#include <string>

using namespace fusedops::bench;
using namespace fusedops::test;
using mlir::fusedops::JitModule;

namespace {

struct QuantizeShape {
  const char *name;
  bool dequantize;
  const char *granularity;
  int64_t m, k;
};

const QuantizeShape kShapes[] = {
    {"quantize_row_bf16_16384x4096", false, "row", 16384, 4096},
    {"quantize_block128_bf16_16384x4096", false, "block128", 16384, 4096},
    {"quantize_tensor_bf16_16384x4096", false, "tensor", 16384, 4096},
    {"dequantize_row_bf16_16384x4096", true, "row", 16384, 4096},
    {"dequantize_block128_bf16_16384x4096", true, "block128", 16384, 4096},
};

std::vector<int64_t> scaleShape(const std::string &g, int64_t m, int64_t k) {
  if (g == "tensor")
    return {};
  if (g == "row")
    return {m};
  return {(m + 127) / 128, (k + 127) / 128};
}

std::string memref(const std::vector<int64_t> &shape, const char *element) {
  std::string s = "memref<";
  for (int64_t d : shape)
    s += std::to_string(d) + "x";
  return s + element + ">";
}

void BM_Quantize(benchmark::State &state, QuantizeShape shape) {
  if (!requireGpu(state))
    return;
  std::string g = shape.granularity;
  auto sShape = scaleShape(g, shape.m, shape.k);
  std::string xT = memref({shape.m, shape.k}, "bf16"),
              qT = memref({shape.m, shape.k}, "f8E4M3FN"),
              sT = memref(sShape, "f32");
  std::string body =
      shape.dequantize
          ? "  fusedops.dequantize ins(%q, %s : " + qT + ", " + sT +
                ") outs(%x : " + xT + ") granularity = " + g + "\n"
          : "  fusedops.quantize ins(%x : " + xT + ") outs(%q, %s : " + qT +
                ", " + sT + ") granularity = " + g + "\n";
  std::string src = "func.func @f(%x: " + xT + ", %q: " + qT + ", %s: " + sT +
                    ") attributes {llvm.emit_c_interface} {\n" + body +
                    "  return\n}\n";
  std::string error;
  std::unique_ptr<JitModule> jit =
      JitModule::compileForChip(src, "sm_90a", error);
  if (!jit) {
    state.SkipWithError(("compile: " + error).c_str());
    return;
  }
  auto entry = reinterpret_cast<void (*)(void *, void *, void *)>(
      jit->lookupCInterface("f"));
  std::mt19937_64 rng(5);
  HostArray x(ElementType::BF16, shape.m * shape.k);
  x.fillRandom(rng, -4, 4);
  int64_t scales = 1;
  for (int64_t d : sShape)
    scales *= d;
  HostArray s(ElementType::F32, scales);
  s.fillRandom(rng, 0.01, 0.02);
  DeviceArray dx(x), ds(s);
  void *dq = nullptr;
  if (dx.getStatus() || ds.getStatus() ||
      fusedopsMalloc(shape.m * shape.k, &dq) ||
      fusedopsMemsetD8(dq, 0x38, shape.m * shape.k, nullptr)) {
    state.SkipWithError(fusedopsGetLastErrorMessage());
    return;
  }
  auto xd = describe<2>(dx.get(), {shape.m, shape.k});
  auto qd = describe<2>(dq, {shape.m, shape.k});
  MemRefDescriptor<0> s0{};
  MemRefDescriptor<1> s1{};
  MemRefDescriptor<2> s2{};
  void *sp = nullptr;
  if (g == "tensor") {
    s0 = describe<0>(ds.get(), {});
    sp = &s0;
  } else if (g == "row") {
    s1 = describe<1>(ds.get(), sShape);
    sp = &s1;
  } else {
    s2 = describe<2>(ds.get(), sShape);
    sp = &s2;
  }
  auto launch = [&] { entry(&xd, &qd, sp); };
  int64_t bytes = shape.m * shape.k * 3 + scales * 4;
  double rate = timeBatches(state, bytes, launch);
  if (!copyRates().empty() && copyRates().begin()->second > 0)
    state.counters["pct_of_copy"] = 100.0 * rate / copyRates().begin()->second;
  fusedopsFree(dq);
}

} // namespace

void fusedops::bench::registerQuantizeBenchmarks() {
  for (const QuantizeShape &shape : kShapes)
    benchmark::RegisterBenchmark(
        (std::string("Quantize/sm_90a/") + shape.name).c_str(), BM_Quantize,
        shape)
        ->UseManualTime()
        ->Iterations(20)
        ->Unit(benchmark::kMicrosecond);
}
