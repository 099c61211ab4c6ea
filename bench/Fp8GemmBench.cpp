//===- Fp8GemmBench.cpp - fp8_gemm TFLOP/s --------------------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// fp8_gemm does 2·M·N·K flops. Reports TFLOP/s per scaling granularity; the
// cuBLASLt FP8 baseline (torch._scaled_mm, per-tensor and row-wise scales)
// and the f16 cuBLAS rate come from bench/torch_baselines.py in the same
// device call.
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

struct Fp8Shape {
  const char *name;
  const char *granularity;
  int64_t m, n, k;
};

const Fp8Shape kShapes[] = {
    {"tensor_4096x4096x4096", "tensor", 4096, 4096, 4096},
    {"row_4096x4096x4096", "row", 4096, 4096, 4096},
    {"block128_4096x4096x4096", "block128", 4096, 4096, 4096},
    {"row_4096x11008x4096", "row", 4096, 11008, 4096},
};

std::vector<int64_t> scaleShape(const std::string &g, int64_t rows,
                                int64_t cols) {
  if (g == "tensor")
    return {};
  if (g == "row")
    return {rows};
  return {(rows + 127) / 128, (cols + 127) / 128};
}

std::string memref(const std::vector<int64_t> &shape, const char *element) {
  std::string s = "memref<";
  for (int64_t d : shape)
    s += std::to_string(d) + "x";
  return s + element + ">";
}

void BM_Fp8Gemm(benchmark::State &state, Fp8Shape shape, std::string chip) {
  if (!requireGpu(state))
    return;
  std::string g = shape.granularity;
  auto saShape = scaleShape(g, shape.m, shape.k),
       sbShape = scaleShape(g, shape.n, shape.k);
  std::string aT = memref({shape.m, shape.k}, "f8E4M3FN"),
              bT = memref({shape.n, shape.k}, "f8E4M3FN"),
              saT = memref(saShape, "f32"), sbT = memref(sbShape, "f32"),
              oT = memref({shape.m, shape.n}, "bf16");
  std::string src = "func.func @f(%a: " + aT + ", %b: " + bT + ", %sa: " +
                    saT + ", %sb: " + sbT + ", %o: " + oT +
                    ") attributes {llvm.emit_c_interface} {\n"
                    "  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : " + aT + ", " +
                    bT + ", " + saT + ", " + sbT + ") outs(%o : " + oT +
                    ") granularity = " + g + "\n  return\n}\n";
  std::string error;
  std::unique_ptr<JitModule> jit = JitModule::compileForChip(src, chip, error);
  if (!jit) {
    state.SkipWithError(("compile: " + error).c_str());
    return;
  }
  auto entry = reinterpret_cast<void (*)(void *, void *, void *, void *, void *)>(
      jit->lookupCInterface("f"));
  void *da = nullptr, *db = nullptr;
  if (fusedopsMalloc(shape.m * shape.k, &da) ||
      fusedopsMalloc(shape.n * shape.k, &db) ||
      fusedopsMemsetD8(da, 0x38, shape.m * shape.k, nullptr) || // 1.0 in e4m3
      fusedopsMemsetD8(db, 0x30, shape.n * shape.k, nullptr)) { // 0.5
    state.SkipWithError(fusedopsGetLastErrorMessage());
    return;
  }
  auto count = [](const std::vector<int64_t> &s) {
    int64_t p = 1;
    for (int64_t d : s)
      p *= d;
    return p;
  };
  std::mt19937_64 rng(3);
  HostArray sa(ElementType::F32, count(saShape)),
      sb(ElementType::F32, count(sbShape)),
      out(ElementType::BF16, shape.m * shape.n);
  sa.fillRandom(rng, 0.5, 1.0);
  sb.fillRandom(rng, 0.5, 1.0);
  DeviceArray dsa(sa), dsb(sb), dout(out);
  auto ad = describe<2>(da, {shape.m, shape.k});
  auto bd = describe<2>(db, {shape.n, shape.k});
  auto od = describe<2>(dout.get(), {shape.m, shape.n});
  // Only the descriptor of the scales' rank is built (and read).
  MemRefDescriptor<0> d0a{}, d0b{};
  MemRefDescriptor<1> d1a{}, d1b{};
  MemRefDescriptor<2> d2a{}, d2b{};
  void *sap = nullptr, *sbp = nullptr;
  if (g == "tensor") {
    d0a = describe<0>(dsa.get(), {});
    d0b = describe<0>(dsb.get(), {});
    sap = &d0a;
    sbp = &d0b;
  } else if (g == "row") {
    d1a = describe<1>(dsa.get(), saShape);
    d1b = describe<1>(dsb.get(), sbShape);
    sap = &d1a;
    sbp = &d1b;
  } else {
    d2a = describe<2>(dsa.get(), saShape);
    d2b = describe<2>(dsb.get(), sbShape);
    sap = &d2a;
    sbp = &d2b;
  }
  auto launch = [&] { entry(&ad, &bd, sap, sbp, &od); };
  int64_t bytes = shape.m * shape.k + shape.n * shape.k + 2 * shape.m * shape.n;
  timeBatches(state, bytes, launch);
  double seconds = state.counters["median_us"] / 1e6;
  if (seconds > 0)
    state.counters["TFLOP/s"] =
        2.0 * shape.m * shape.n * shape.k / seconds / 1e12;
  fusedopsFree(da);
  fusedopsFree(db);
}

} // namespace

void fusedops::bench::registerFp8GemmBenchmarks() {
  for (const char *chip : {"sm_90a", "sm_80"})
    for (const Fp8Shape &shape : kShapes)
      benchmark::RegisterBenchmark(
          (std::string("Fp8Gemm/") + chip + "/" + shape.name).c_str(),
          BM_Fp8Gemm, shape, std::string(chip))
          ->UseManualTime()
          ->Iterations(10)
          ->Unit(benchmark::kMicrosecond);
}
