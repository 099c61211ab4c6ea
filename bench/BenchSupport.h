//===- BenchSupport.h - timing helpers of the GPU benchmarks ----*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Every GPU benchmark times batches of launches with CUDA events on the
// default stream (asynchronous, through fusedopsSetCurrentStream) after
// warm-up, one batch per benchmark iteration, and reports the median.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_BENCH_BENCHSUPPORT_H
#define FUSEDOPS_BENCH_BENCHSUPPORT_H

#include "fusedops-c/Runtime.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace fusedops::bench {

inline constexpr int kLaunchesPerBatch = 20;
inline constexpr int kWarmupBatches = 3;

/// GB/s of the copy, by bytes moved, for the kernels' "pct_of_copy".
inline std::map<int64_t, double> &copyRates() {
  static std::map<int64_t, double> rates;
  return rates;
}

inline double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/// Runs `launch` in timed batches, one per benchmark iteration; reports the
/// median rate for `bytesMoved` bytes per launch.
template <typename Launch>
double timeBatches(benchmark::State &state, int64_t bytesMoved, Launch launch) {
  auto body = [](void *user) { (*static_cast<Launch *>(user))(); };
  fusedopsSetCurrentStream(nullptr);
  float ms = 0;
  for (int i = 0; i < kWarmupBatches; ++i)
    if (fusedopsTimeOnStream(nullptr, body, &launch, kLaunchesPerBatch, &ms)) {
      state.SkipWithError(fusedopsGetLastErrorMessage());
      return 0;
    }
  std::vector<double> perLaunch;
  for (auto _ : state) {
    if (fusedopsTimeOnStream(nullptr, body, &launch, kLaunchesPerBatch, &ms)) {
      state.SkipWithError(fusedopsGetLastErrorMessage());
      return 0;
    }
    double seconds = ms / 1e3 / kLaunchesPerBatch;
    perLaunch.push_back(seconds);
    state.SetIterationTime(seconds);
  }
  fusedopsClearCurrentStream();
  if (int errors = fusedopsTakeAsyncErrorCount()) {
    state.SkipWithError(fusedopsGetLastErrorMessage());
    return 0;
  }
  double seconds = median(perLaunch);
  double rate = bytesMoved / seconds / 1e9;
  state.counters["median_us"] = seconds * 1e6;
  state.counters["GB/s"] = rate;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * bytesMoved);
  return rate;
}

inline bool requireGpu(benchmark::State &state) {
  if (fusedopsInit() == FUSEDOPS_SUCCESS)
    return true;
  state.SkipWithError((std::string("no GPU: ") + fusedopsGetLastErrorMessage()).c_str());
  return false;
}

/// Registers the rmsnorm_rope and copy benchmarks (RmsNormRopeBench.cpp).
void registerRmsNormRopeBenchmarks();
/// Registers the gated_mlp benchmarks (GatedMlpBench.cpp).
void registerGatedMlpBenchmarks();
/// Registers the fp8_gemm benchmarks (Fp8GemmBench.cpp).
void registerFp8GemmBenchmarks();
/// Registers the quantize/dequantize benchmarks (QuantizeBench.cpp).
void registerQuantizeBenchmarks();

} // namespace fusedops::bench

#endif // FUSEDOPS_BENCH_BENCHSUPPORT_H
