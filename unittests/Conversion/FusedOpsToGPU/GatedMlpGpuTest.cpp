//===- GatedMlpGpuTest.cpp - gated_mlp kernels against float64 ------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Each case compiles a buffer-form function holding one fusedops.gated_mlp
// for a chip, JIT-compiles its host code and, where a GPU is present, runs it
// on fresh random inputs with the output poisoned, comparing with a float64
// reference of act(x·Wgᵀ) ⊙ (x·Wuᵀ) by ‖out−ref‖/‖ref‖. Shapes include M of
// 1, 3 and 257 and N, K that are not multiples of the tile. sm_80 cases run
// as PTX compiled by the driver for the card present.
//
//===----------------------------------------------------------------------===//

#include "../../Support/GpuTestSupport.h"

#include "fusedops/ExecutionEngine/JitModule.h"

#include <sstream>

using namespace fusedops::test;
using mlir::fusedops::JitModule;

namespace {

struct GatedMlpCase {
  const char *name;
  ElementType type;
  std::vector<int64_t> leading; // x is [leading..., K]
  int64_t n, k;
  const char *activation;
  const char *chip;
  const char *tile = nullptr;
};

void PrintTo(const GatedMlpCase &c, std::ostream *os) { *os << c.name; }

double activate(const std::string &name, double g) {
  if (name == "silu")
    return g / (1.0 + std::exp(-g));
  if (name == "gelu")
    return 0.5 * g * (1.0 + std::erf(g / std::sqrt(2.0)));
  return 0.5 * g *
         (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (g + 0.044715 * g * g * g)));
}

class GatedMlpGpuTest : public ::testing::TestWithParam<GatedMlpCase> {};

/// Runs case `c` with M (the rows) dynamic in the op's types, as the JIT and
/// host code take it, or static, as the PyTorch API compiles it (the sm_90a
/// mainloop specializes on a static M).
void checkGatedMlp(const GatedMlpCase &c, bool staticRows) {
  int64_t m = 1;
  for (int64_t d : c.leading)
    m *= d;
  std::string t = mlirName(c.type);
  auto shape = [&](std::vector<int64_t> dims, bool dynamicFirst) {
    std::string s = "memref<";
    for (size_t i = 0; i < dims.size(); ++i)
      s += (i == 0 && dynamicFirst ? std::string("?")
                                   : std::to_string(dims[i])) +
           "x";
    return s + t + ">";
  };
  std::vector<int64_t> xDims = c.leading, oDims = c.leading;
  xDims.push_back(c.k);
  oDims.push_back(c.n);
  std::string xType = shape(xDims, !staticRows),
              oType = shape(oDims, !staticRows),
              wType = shape({c.n, c.k}, false);
  std::ostringstream src;
  src << "func.func @f(%x: " << xType << ", %wg: " << wType
      << ", %wu: " << wType << ", %o: " << oType
      << ") attributes {llvm.emit_c_interface} {\n"
      << "  fusedops.gated_mlp ins(%x, %wg, %wu : " << xType << ", " << wType
      << ", " << wType << ") outs(%o : " << oType
      << ") activation = " << c.activation
      << (c.tile ? std::string(" {tile = ") + c.tile + "}" : std::string())
      << "\n  return\n}\n";

  std::string error;
  std::unique_ptr<JitModule> jit =
      JitModule::compileForChip(src.str(), c.chip, error);
  ASSERT_TRUE(jit) << error << "\nsource:\n" << src.str();
  void *entry = jit->lookupCInterface("f");
  ASSERT_TRUE(entry);

  FUSEDOPS_REQUIRE_GPU();
  std::mt19937_64 rng = makeRng();
  HostArray x(c.type, m * c.k), wg(c.type, c.n * c.k), wu(c.type, c.n * c.k),
      out(c.type, m * c.n);
  // Scaled so that the gate's pre-activations span the activation's curve.
  double scale = 2.0 / std::sqrt(static_cast<double>(c.k));
  x.fillRandom(rng, -1.0, 1.0);
  wg.fillRandom(rng, -scale, scale);
  wu.fillRandom(rng, -scale, scale);
  DeviceArray dx(x), dwg(wg), dwu(wu), dout(out);
  for (DeviceArray *d : {&dx, &dwg, &dwu, &dout})
    FUSEDOPS_ASSERT_OK(d->getStatus());
  FUSEDOPS_ASSERT_OK(dout.poison());

  auto wgd = describe<2>(dwg.get(), {c.n, c.k});
  auto wud = describe<2>(dwu.get(), {c.n, c.k});
  using Fn = void (*)(void *, void *, void *, void *);
  if (c.leading.size() == 1) {
    auto xd = describe<2>(dx.get(), xDims);
    auto od = describe<2>(dout.get(), oDims);
    reinterpret_cast<Fn>(entry)(&xd, &wgd, &wud, &od);
  } else {
    ASSERT_EQ(c.leading.size(), 2u);
    auto xd = describe<3>(dx.get(), xDims);
    auto od = describe<3>(dout.get(), oDims);
    reinterpret_cast<Fn>(entry)(&xd, &wgd, &wud, &od);
  }
  EXPECT_EQ(fusedopsTakeAsyncErrorCount(), 0) << fusedopsGetLastErrorMessage();
  FUSEDOPS_ASSERT_OK(fusedopsStreamSynchronize(nullptr));
  FUSEDOPS_ASSERT_OK(dout.copyTo(out));

  std::vector<double> ref(m * c.n), got(m * c.n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      double g = 0, u = 0;
      for (int64_t k = 0; k < c.k; ++k) {
        double xv = x.get(i * c.k + k);
        g += xv * wg.get(j * c.k + k);
        u += xv * wu.get(j * c.k + k);
      }
      ref[i * c.n + j] = activate(c.activation, g) * u;
      got[i * c.n + j] = out.get(i * c.n + j);
    }
  double err = relativeError(got, ref);
  EXPECT_LE(err, toleranceFor(c.type)) << "relative error " << err;
  std::printf("[ result   ] %s: relative error %.3g (bound %.3g)\n", c.name,
              err, toleranceFor(c.type));
}

constexpr ElementType F16 = ElementType::F16, BF16 = ElementType::BF16;

TEST_P(GatedMlpGpuTest, MatchesFloat64Reference) {
  checkGatedMlp(GetParam(), false);
}

TEST_P(GatedMlpGpuTest, MatchesFloat64ReferenceWithStaticRows) {
  checkGatedMlp(GetParam(), true);
}

std::vector<GatedMlpCase> cases() {
  return {
      {"f16_silu_257x192x256", F16, {257}, 192, 256, "silu", "sm_90a"},
      {"bf16_silu_3x100x200", BF16, {3}, 100, 200, "silu", "sm_90a"},
      {"f16_gelu_1x97x64", F16, {1}, 97, 64, "gelu", "sm_90a"},
      {"bf16_gelu_tanh_batch", BF16, {2, 65}, 130, 136, "gelu_tanh", "sm_90a"},
      {"f16_silu_large", F16, {300}, 1024, 1024, "silu", "sm_90a"},
      // One warpgroup, 64-byte swizzled K rows, the shallowest ring.
      {"f16_silu_3stages",
       F16,
       {129},
       200,
       512,
       "silu",
       "sm_90a",
       "#fusedops.tile<block = [64, 64, 32], warps = 4, stages = 3>"},
      // 32-byte swizzled K rows, K off the tile, five stages.
      {"bf16_silu_32byte_rows",
       BF16,
       {200},
       256,
       328,
       "silu",
       "sm_90a",
       "#fusedops.tile<block = [128, 128, 16], warps = 8, stages = 5>"},
      // The 128-byte swizzle with N off the tile and an odd N (scalar
      // stores).
      {"bf16_gelu_odd_n",
       BF16,
       {64},
       135,
       640,
       "gelu",
       "sm_90a",
       "#fusedops.tile<block = [128, 128, 64], warps = 8, stages = 4>"},
      {"bf16_silu_4096x384x512", BF16, {4096}, 384, 512, "silu", "sm_90a"},
      // 2×1 clusters (each block multicasts half of the Wg and Wu tiles to
      // both): 3 row tiles, so the second cluster's second tile lies past
      // M; N off the tile.
      {"bf16_silu_cluster_257x200x512",
       BF16,
       {257},
       200,
       512,
       "silu",
       "sm_90a",
       "#fusedops.tile<block = [128, 128, 64], warps = 8, stages = 4, "
       "cluster = [2]>"},
      // One row: the cluster's second block multiplies zeros only.
      {"f16_gelu_cluster_1x256x256",
       F16,
       {1},
       256,
       256,
       "gelu",
       "sm_90a",
       "#fusedops.tile<block = [128, 192, 64], warps = 8, stages = 3, "
       "cluster = [2]>"},
      // More cluster tiles (32 · 9 = 288) than an H200 holds clusters (66):
      // several tiles per cluster of the persistent grid.
      {"bf16_silu_cluster_persistent_8192x1152x256",
       BF16,
       {8192},
       1152,
       256,
       "silu",
       "sm_90a",
       "#fusedops.tile<block = [128, 128, 64], warps = 8, stages = 4, "
       "cluster = [2]>"},
      {"sm80_f16_silu", F16, {257}, 192, 256, "silu", "sm_80"},
      {"sm80_bf16_gelu", BF16, {33}, 96, 328, "gelu", "sm_80"},
  };
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GatedMlpGpuTest, ::testing::ValuesIn(cases()),
    [](const ::testing::TestParamInfo<GatedMlpCase> &info) {
      return std::string(info.param.name);
    });

} // namespace
