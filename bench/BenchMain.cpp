//===- BenchMain.cpp - fusedops-bench: every GPU benchmark ----------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
//   fusedops-bench --benchmark_out=results.json --benchmark_out_format=json
//
// Ceilings (the device copy) run first: the kernels report against them.
//
//===----------------------------------------------------------------------===//

#include "BenchSupport.h"

int main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  fusedops::bench::registerRmsNormRopeBenchmarks();
  fusedops::bench::registerQuantizeBenchmarks();
  fusedops::bench::registerGatedMlpBenchmarks();
  fusedops::bench::registerFp8GemmBenchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
