//===- GpuTestSupport.h - helpers for the GPU tests -------------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Device buffers, host-side f16/bf16 conversion, memref descriptors, fresh
// random inputs and the relative-error check the GPU tests share. Tests that
// need a GPU call FUSEDOPS_REQUIRE_GPU(), which skips visibly (with the
// runtime's reason) where there is none.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_UNITTESTS_SUPPORT_GPUTESTSUPPORT_H
#define FUSEDOPS_UNITTESTS_SUPPORT_GPUTESTSUPPORT_H

#include "DeviceArrays.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace fusedops::test {

#define FUSEDOPS_REQUIRE_GPU()                                                 \
  do {                                                                         \
    if (fusedopsInit() != FUSEDOPS_SUCCESS)                                    \
      GTEST_SKIP() << "no GPU: " << fusedopsGetLastErrorMessage();             \
  } while (false)

#define FUSEDOPS_ASSERT_OK(call)                                               \
  ASSERT_EQ((call), FUSEDOPS_SUCCESS) << fusedopsGetLastErrorMessage()

/// ‖out − ref‖ / ‖ref‖ over `indices`; infinity if any output is NaN/inf.
inline double relativeError(const std::vector<double> &out,
                            const std::vector<double> &ref) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i]))
      return INFINITY;
    diff += (out[i] - ref[i]) * (out[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
}

/// Error bound of a kernel that computes in f32 and rounds to `type`.
inline double toleranceFor(ElementType type) {
  switch (type) {
  case ElementType::F32: return 1e-5;
  case ElementType::F16: return 2e-3;
  case ElementType::BF16: return 1.6e-2;
  default: return 0;
  }
}

/// A seeded generator, the seed printed so that a failure can be replayed
/// (FUSEDOPS_TEST_SEED=<seed>).
inline std::mt19937_64 makeRng() {
  uint64_t seed;
  if (const char *fixed = std::getenv("FUSEDOPS_TEST_SEED"))
    seed = std::strtoull(fixed, nullptr, 10);
  else
    seed = std::random_device{}();
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  std::printf("[ seed     ] FUSEDOPS_TEST_SEED=%llu\n",
              static_cast<unsigned long long>(seed));
  return std::mt19937_64(seed);
}

/// The shape of the FP8 scales of a [rows, cols] operand at `granularity`
/// (tensor, row, block128), as the fusedops ops define them.
inline std::vector<int64_t> scaleShape(const std::string &granularity,
                                       int64_t rows, int64_t cols) {
  if (granularity == "tensor")
    return {};
  if (granularity == "row")
    return {rows};
  return {(rows + 127) / 128, (cols + 127) / 128};
}

} // namespace fusedops::test

#endif // FUSEDOPS_UNITTESTS_SUPPORT_GPUTESTSUPPORT_H
