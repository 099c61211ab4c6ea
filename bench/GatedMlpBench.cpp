//===- GatedMlpBench.cpp - gated_mlp TFLOP/s ------------------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// gated_mlp does 2·2·M·N·K flops (two GEMMs) and must move x, Wg, Wu and
// out; at these shapes it is bound by the tensor cores. Reports TFLOP/s.
// The cuBLAS baselines (torch.matmul on the same shapes) come from
// bench/torch_baselines.py, run in the same call on the same card.
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

struct GatedMlpShape {
  const char *name;
  const char *type;
  int64_t m, n, k;
  const char *tile = nullptr;
};

const GatedMlpShape kShapes[] = {
    {"f16_llama7b_4096x11008x4096", "f16", 4096, 11008, 4096},
    {"bf16_llama3_8b_4096x14336x4096", "bf16", 4096, 14336, 4096},
    {"f16_decode_64x11008x4096", "f16", 64, 11008, 4096},
    {"f16_llama7b_3stages_64x64x32", "f16", 4096, 11008, 4096,
     "#fusedops.tile<block = [64, 64, 32], warps = 4, stages = 3>"},
};

void BM_GatedMlp(benchmark::State &state, GatedMlpShape shape,
                 std::string chip) {
  if (!requireGpu(state))
    return;
  std::string t = shape.type;
  std::string xType = "memref<?x" + std::to_string(shape.k) + "x" + t + ">";
  std::string wType = "memref<" + std::to_string(shape.n) + "x" +
                      std::to_string(shape.k) + "x" + t + ">";
  std::string oType = "memref<?x" + std::to_string(shape.n) + "x" + t + ">";
  std::string src = "func.func @f(%x: " + xType + ", %wg: " + wType +
                    ", %wu: " + wType + ", %o: " + oType +
                    ") attributes {llvm.emit_c_interface} {\n"
                    "  fusedops.gated_mlp ins(%x, %wg, %wu : " + xType + ", " +
                    wType + ", " + wType + ") outs(%o : " + oType +
                    ") activation = silu" +
                    (shape.tile ? std::string(" {tile = ") + shape.tile + "}"
                                : std::string()) +
                    "\n  return\n}\n";
  std::string error;
  std::unique_ptr<JitModule> jit = JitModule::compileForChip(src, chip, error);
  if (!jit) {
    state.SkipWithError(("compile: " + error).c_str());
    return;
  }
  auto entry = reinterpret_cast<void (*)(void *, void *, void *, void *)>(
      jit->lookupCInterface("f"));
  ElementType type = t == "f16" ? ElementType::F16 : ElementType::BF16;
  std::mt19937_64 rng(7);
  HostArray x(type, shape.m * shape.k), w(type, shape.n * shape.k),
      out(type, shape.m * shape.n);
  x.fillRandom(rng, -1, 1);
  w.fillRandom(rng, -0.03, 0.03);
  DeviceArray dx(x), dwg(w), dwu(w), dout(out);
  for (DeviceArray *d : {&dx, &dwg, &dwu, &dout})
    if (d->getStatus()) {
      state.SkipWithError(fusedopsGetLastErrorMessage());
      return;
    }
  auto xd = describe<2>(dx.get(), {shape.m, shape.k});
  auto wgd = describe<2>(dwg.get(), {shape.n, shape.k});
  auto wud = describe<2>(dwu.get(), {shape.n, shape.k});
  auto od = describe<2>(dout.get(), {shape.m, shape.n});
  auto launch = [&] { entry(&xd, &wgd, &wud, &od); };
  int64_t bytes = (shape.m * shape.k + 2 * shape.n * shape.k +
                   shape.m * shape.n) * 2;
  timeBatches(state, bytes, launch);
  double seconds = state.counters["median_us"] / 1e6;
  if (seconds > 0)
    state.counters["TFLOP/s"] =
        4.0 * shape.m * shape.n * shape.k / seconds / 1e12;
}

} // namespace

void fusedops::bench::registerGatedMlpBenchmarks() {
  for (const char *chip : {"sm_90a", "sm_80"})
    for (const GatedMlpShape &shape : kShapes) {
      if (std::string(chip) == "sm_80" && shape.tile)
        continue;
      benchmark::RegisterBenchmark(
          (std::string("GatedMlp/") + chip + "/" + shape.name).c_str(),
          BM_GatedMlp, shape, std::string(chip))
          ->UseManualTime()
          ->Iterations(10)
          ->Unit(benchmark::kMicrosecond);
    }
}
