//===- RmsNormRopeBench.cpp - rmsnorm_rope against the copy ceiling -------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// rmsnorm_rope must move each input byte once and each output byte once, so
// its ceiling is a device-to-device copy of the same tensor: both move
// 2·N·bytes. This benchmark measures that copy and the kernel in one run on
// one card and reports GB/s and the kernel's share of the copy rate.
//
// Timing: CUDA events around a batch of launches on the default stream
// (asynchronous: fusedopsSetCurrentStream), after warm-up; each benchmark
// iteration is one batch and the reported figure is the median over
// iterations. Inputs are larger than the L2 cache, so no rotation is needed.
//
//   fusedops-bench --benchmark_out=results.json --benchmark_out_format=json
//
//===----------------------------------------------------------------------===//

#include "BenchSupport.h"
#include "Support/DeviceArrays.h"

#include "fusedops/ExecutionEngine/JitModule.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <string>

using namespace fusedops::bench;
using namespace fusedops::test;
using mlir::fusedops::JitModule;

namespace {

/// Device-to-device copy of `bytes` bytes: the memory ceiling.
void BM_DeviceCopy(benchmark::State &state) {
  if (!requireGpu(state))
    return;
  int64_t bytes = state.range(0);
  void *src = nullptr, *dst = nullptr;
  if (fusedopsMalloc(bytes, &src) || fusedopsMalloc(bytes, &dst) ||
      fusedopsMemsetD8(src, 0x3c, bytes, nullptr)) {
    state.SkipWithError(fusedopsGetLastErrorMessage());
    return;
  }
  auto launch = [&] { fusedopsMemcpyDtoD(dst, src, bytes, nullptr); };
  double rate = timeBatches(state, 2 * bytes, launch);
  copyRates()[2 * bytes] = rate;
  fusedopsFree(src);
  fusedopsFree(dst);
}

struct RmsNormShape {
  const char *name;
  const char *type; // f16 or bf16
  int64_t batch, seq, hidden, headDim;
  const char *style;
  const char *tile = nullptr; // null: the strategy's default
};

const RmsNormShape kShapes[] = {
    {"f16_8x2048x4096_h64_neox", "f16", 8, 2048, 4096, 64, "neox"},
    {"bf16_8x2048x4096_h128_neox", "bf16", 8, 2048, 4096, 128, "neox"},
    {"f16_8x2048x4096_h64_gptj", "f16", 8, 2048, 4096, 64, "gptj"},
};

/// Tiles swept on the first shape (sm_90a), to show where the default sits.
const char *const kTileSweep[] = {
    "#fusedops.tile<block = [1], warps = 1>",
    "#fusedops.tile<block = [1], warps = 2>",
    "#fusedops.tile<block = [1], warps = 8>",
    "#fusedops.tile<block = [1], warps = 16>",
    "#fusedops.tile<block = [2], warps = 2>",
    "#fusedops.tile<block = [4], warps = 1>",
};

void BM_RmsNormRope(benchmark::State &state, RmsNormShape shape,
                    std::string chip) {
  if (!requireGpu(state))
    return;
  std::ostringstream t;
  t << "memref<?x" << shape.seq << "x" << shape.hidden << "x" << shape.type << ">";
  std::string xType = t.str();
  std::string wType = "memref<" + std::to_string(shape.hidden) + "x" + shape.type + ">";
  std::string cType = "memref<" + std::to_string(shape.seq) + "x" +
                      std::to_string(shape.headDim) + "xf32>";
  std::string src = "func.func @f(%x: " + xType + ", %w: " + wType +
                    ", %c: " + cType + ", %s: " + cType + ", %o: " + xType +
                    ") attributes {llvm.emit_c_interface} {\n"
                    "  fusedops.rmsnorm_rope ins(%x, %w, %c, %s : " + xType +
                    ", " + wType + ", " + cType + ", " + cType +
                    ") outs(%o : " + xType + ") head_dim = " +
                    std::to_string(shape.headDim) + " eps = 1.0e-5 style = " +
                    shape.style +
                    (shape.tile ? std::string(" {tile = ") + shape.tile + "}"
                                : std::string()) +
                    "\n  return\n}\n";
  std::string error;
  std::unique_ptr<JitModule> jit = JitModule::compileForChip(src, chip, error);
  if (!jit) {
    state.SkipWithError(("compile: " + error).c_str());
    return;
  }
  auto entry = reinterpret_cast<void (*)(void *, void *, void *, void *, void *)>(
      jit->lookupCInterface("f"));

  ElementType type = std::string(shape.type) == "f16" ? ElementType::F16
                                                      : ElementType::BF16;
  int64_t elements = shape.batch * shape.seq * shape.hidden;
  std::mt19937_64 rng(42);
  HostArray x(type, elements), w(type, shape.hidden),
      cs(ElementType::F32, shape.seq * shape.headDim), out(type, elements);
  x.fillRandom(rng, -2, 2);
  w.fillRandom(rng, 0.5, 1.5);
  cs.fillRandom(rng, -1, 1);
  DeviceArray dx(x), dw(w), dc(cs), ds(cs), dout(out);
  for (DeviceArray *d : {&dx, &dw, &dc, &ds, &dout})
    if (d->getStatus()) {
      state.SkipWithError(fusedopsGetLastErrorMessage());
      return;
    }
  auto xd = describe<3>(dx.get(), {shape.batch, shape.seq, shape.hidden});
  auto od = describe<3>(dout.get(), {shape.batch, shape.seq, shape.hidden});
  auto wd = describe<1>(dw.get(), {shape.hidden});
  auto cd = describe<2>(dc.get(), {shape.seq, shape.headDim});
  auto sd = describe<2>(ds.get(), {shape.seq, shape.headDim});
  auto launch = [&] { entry(&xd, &wd, &cd, &sd, &od); };

  int64_t bytesMoved = 2 * elements * 2; // read x, write out
  double rate = timeBatches(state, bytesMoved, launch);
  auto copy = copyRates().find(bytesMoved);
  if (copy != copyRates().end() && copy->second > 0)
    state.counters["pct_of_copy"] = 100.0 * rate / copy->second;
}

} // namespace

void fusedops::bench::registerRmsNormRopeBenchmarks() {
  // The copy first: the kernels report against it.
  int64_t copyBytes = 8 * 2048 * 4096 * 2;
  benchmark::RegisterBenchmark("DeviceCopy/128MiB", BM_DeviceCopy)
      ->Arg(copyBytes)
      ->UseManualTime()
      ->Iterations(30)
      ->Unit(benchmark::kMicrosecond);
  for (const char *chip : {"sm_90a", "sm_80"})
    for (const RmsNormShape &shape : kShapes)
      benchmark::RegisterBenchmark(
          (std::string("RmsNormRope/") + chip + "/" + shape.name).c_str(),
          BM_RmsNormRope, shape, std::string(chip))
          ->UseManualTime()
          ->Iterations(30)
          ->Unit(benchmark::kMicrosecond);
  for (const char *tile : kTileSweep) {
    RmsNormShape shape = kShapes[0];
    shape.tile = tile;
    benchmark::RegisterBenchmark(
        (std::string("RmsNormRope/sm_90a/") + shape.name + "/" + tile).c_str(),
        BM_RmsNormRope, shape, std::string("sm_90a"))
        ->UseManualTime()
        ->Iterations(30)
        ->Unit(benchmark::kMicrosecond);
  }
}
