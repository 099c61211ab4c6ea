// Host cost of cuLaunchKernel against the number of kernel parameters.
//
// Build: nvcc -O2 -o launch-params launch-params.cu -lcuda
// Run on a GPU machine: ./launch-params. Prints microseconds per launch (best of 5 rounds of
// 20000 back-to-back launches of an empty kernel) for 5, 15, 25 and 45 8-byte parameters
// (what a fusedops kernel with bare pointers and with expanded memref descriptors passes), on
// a non-blocking stream and on the legacy default stream (PyTorch's current stream unless a
// program picks another).
#include <chrono>
#include <cstdio>
#include <cuda.h>


// One 8-byte parameter per argument, as MLIR's lowering passes them.
__global__ void p5(long, long, long, long, long) {}
#define L5 long, long, long, long, long
__global__ void p15(L5, L5, L5) {}
__global__ void p25(L5, L5, L5, L5, L5) {}
__global__ void p45(L5, L5, L5, L5, L5, L5, L5, L5, L5) {}

#define CHECK(x)                                                               \
  do {                                                                         \
    CUresult r = (x);                                                          \
    if (r != CUDA_SUCCESS) {                                                   \
      std::printf("%s failed: %d\n", #x, (int)r);                              \
      return 1;                                                                \
    }                                                                          \
  } while (0)

static int run(const char *name, const void *kernel, int n,
               bool legacyStream = false) {
  CUfunction f;
  cudaGetFuncBySymbol(&f, kernel);
  long values[64] = {0};
  void *params[64];
  for (int i = 0; i < n; ++i)
    params[i] = &values[i];
  CUstream stream = nullptr; // the legacy default stream, PyTorch's default
  if (!legacyStream)
    CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  double best = 1e30;
  for (int round = 0; round < 5; ++round) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 20000; ++i)
      CHECK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, stream, params, nullptr));
    double us = std::chrono::duration<double, std::micro>(
                    std::chrono::steady_clock::now() - start)
                    .count() /
                20000;
    CHECK(cuStreamSynchronize(stream));
    best = us < best ? us : best;
  }
  std::printf("%-28s %2d params %6.3f us per cuLaunchKernel (%s stream)\n", name,
              n, best, legacyStream ? "legacy default" : "non-blocking");
  return 0;
}

int main() {
  cudaFree(nullptr); // the primary context, current
  return run("5 pointers", (const void *)p5, 5) |
         run("15 longs", (const void *)p15, 15) |
         run("25 longs", (const void *)p25, 25) |
         run("45 longs", (const void *)p45, 45) |
         run("5 pointers", (const void *)p5, 5, true) |
         run("45 longs", (const void *)p45, 45, true);
}
