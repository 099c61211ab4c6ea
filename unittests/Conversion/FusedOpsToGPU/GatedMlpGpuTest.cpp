//===- GatedMlpGpuTest.cpp - gated_mlp kernels against float64 ------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Each case compiles a buffer-form function holding one fusedops.gated_mlp
// (or gated_mlp_grad, below) for a chip, JIT-compiles its host code and, where
// a GPU is present, runs it on fresh random inputs with the output poisoned,
// comparing with a float64 reference of act(x·Wgᵀ) ⊙ (x·Wuᵀ) by
// ‖out−ref‖/‖ref‖. Shapes include M of 1, 3 and 257 and N, K that are not
// multiples of the tile. sm_80 cases run as PTX compiled by the driver for the
// card present.
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

/// act′(g), the derivative of `activate`.
double derivative(const std::string &name, double g) {
  if (name == "silu") {
    double s = 1.0 / (1.0 + std::exp(-g));
    return s * (1.0 + g * (1.0 - s));
  }
  if (name == "gelu")
    return 0.5 * (1.0 + std::erf(g / std::sqrt(2.0))) +
           g * std::exp(-0.5 * g * g) / std::sqrt(2.0 * M_PI);
  double c = std::sqrt(2.0 / M_PI);
  double t = std::tanh(c * (g + 0.044715 * g * g * g));
  return 0.5 * (1.0 + t) +
         0.5 * g * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * g * g);
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

//===----------------------------------------------------------------------===//
// gated_mlp_grad
//===----------------------------------------------------------------------===//

class GatedMlpGradGpuTest : public ::testing::TestWithParam<GatedMlpCase> {};

/// Runs gated_mlp_grad case `c` (x [M, K], M dynamic or static) against
/// float64: grad_gate = dh·u·act′(g), grad_up = dh·act(g) for g = x·Wgᵀ,
/// u = x·Wuᵀ, both outputs poisoned first.
void checkGatedMlpGrad(const GatedMlpCase &c, bool staticRows) {
  ASSERT_EQ(c.leading.size(), 1u);
  int64_t m = c.leading[0];
  std::string t = mlirName(c.type);
  std::string rows = staticRows ? std::to_string(m) : "?";
  std::string xType =
                  "memref<" + rows + "x" + std::to_string(c.k) + "x" + t + ">",
              oType =
                  "memref<" + rows + "x" + std::to_string(c.n) + "x" + t + ">",
              wType = "memref<" + std::to_string(c.n) + "x" +
                      std::to_string(c.k) + "x" + t + ">";
  std::ostringstream src;
  src << "func.func @f(%x: " << xType << ", %wg: " << wType
      << ", %wu: " << wType << ", %dh: " << oType << ", %dg: " << oType
      << ", %du: " << oType << ") attributes {llvm.emit_c_interface} {\n"
      << "  fusedops.gated_mlp_grad ins(%x, %wg, %wu, %dh : " << xType << ", "
      << wType << ", " << wType << ", " << oType
      << ") outs(%dg, %du : " << oType << ", " << oType
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
      dh(c.type, m * c.n), dg(c.type, m * c.n), du(c.type, m * c.n);
  double scale = 2.0 / std::sqrt(static_cast<double>(c.k));
  x.fillRandom(rng, -1.0, 1.0);
  wg.fillRandom(rng, -scale, scale);
  wu.fillRandom(rng, -scale, scale);
  dh.fillRandom(rng, -1.0, 1.0);
  DeviceArray dx(x), dwg(wg), dwu(wu), ddh(dh), ddg(dg), ddu(du);
  for (DeviceArray *d : {&dx, &dwg, &dwu, &ddh, &ddg, &ddu})
    FUSEDOPS_ASSERT_OK(d->getStatus());
  FUSEDOPS_ASSERT_OK(ddg.poison());
  FUSEDOPS_ASSERT_OK(ddu.poison());

  auto xd = describe<2>(dx.get(), {m, c.k});
  auto wgd = describe<2>(dwg.get(), {c.n, c.k});
  auto wud = describe<2>(dwu.get(), {c.n, c.k});
  auto dhd = describe<2>(ddh.get(), {m, c.n});
  auto dgd = describe<2>(ddg.get(), {m, c.n});
  auto dud = describe<2>(ddu.get(), {m, c.n});
  using Fn = void (*)(void *, void *, void *, void *, void *, void *);
  reinterpret_cast<Fn>(entry)(&xd, &wgd, &wud, &dhd, &dgd, &dud);
  EXPECT_EQ(fusedopsTakeAsyncErrorCount(), 0) << fusedopsGetLastErrorMessage();
  FUSEDOPS_ASSERT_OK(fusedopsStreamSynchronize(nullptr));
  FUSEDOPS_ASSERT_OK(ddg.copyTo(dg));
  FUSEDOPS_ASSERT_OK(ddu.copyTo(du));

  std::vector<double> refGate(m * c.n), refUp(m * c.n), gotGate(m * c.n),
      gotUp(m * c.n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      double g = 0, u = 0;
      for (int64_t k = 0; k < c.k; ++k) {
        double xv = x.get(i * c.k + k);
        g += xv * wg.get(j * c.k + k);
        u += xv * wu.get(j * c.k + k);
      }
      double d = dh.get(i * c.n + j);
      refGate[i * c.n + j] = d * u * derivative(c.activation, g);
      refUp[i * c.n + j] = d * activate(c.activation, g);
      gotGate[i * c.n + j] = dg.get(i * c.n + j);
      gotUp[i * c.n + j] = du.get(i * c.n + j);
    }
  double errGate = relativeError(gotGate, refGate),
         errUp = relativeError(gotUp, refUp);
  EXPECT_LE(errGate, toleranceFor(c.type)) << "grad_gate relative error";
  EXPECT_LE(errUp, toleranceFor(c.type)) << "grad_up relative error";
  std::printf("[ result   ] %s: relative error grad_gate %.3g, grad_up %.3g "
              "(bound %.3g)\n",
              c.name, errGate, errUp, toleranceFor(c.type));
}

TEST_P(GatedMlpGradGpuTest, MatchesFloat64Reference) {
  checkGatedMlpGrad(GetParam(), false);
}

TEST_P(GatedMlpGradGpuTest, MatchesFloat64ReferenceWithStaticRows) {
  checkGatedMlpGrad(GetParam(), true);
}

std::vector<GatedMlpCase> gradCases() {
  return {
      {"bf16_silu_257x192x256", BF16, {257}, 192, 256, "silu", "sm_90a"},
      {"f16_gelu_3x100x200", F16, {3}, 100, 200, "gelu", "sm_90a"},
      {"bf16_gelu_tanh_1x97x64", BF16, {1}, 97, 64, "gelu_tanh", "sm_90a"},
      // The two-warpgroup tile of the training shapes, N and K off it.
      {"f16_silu_300x260x328",
       F16,
       {300},
       260,
       328,
       "silu",
       "sm_90a",
       "#fusedops.tile<block = [128, 128, 64], warps = 8, stages = 4>"},
      // An odd N: scalar loads and stores.
      {"bf16_gelu_odd_n", BF16, {64}, 135, 640, "gelu", "sm_90a"},
      {"sm80_bf16_silu", BF16, {257}, 192, 256, "silu", "sm_80"},
      {"sm80_f16_gelu_tanh", F16, {33}, 96, 328, "gelu_tanh", "sm_80"},
  };
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GatedMlpGradGpuTest, ::testing::ValuesIn(gradCases()),
    [](const ::testing::TestParamInfo<GatedMlpCase> &info) {
      return std::string(info.param.name);
    });

} // namespace
