//===- RmsNormRopeGpuTest.cpp - rmsnorm_rope kernels against float64 ------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Each case writes a buffer-form function holding one fusedops.rmsnorm_rope,
// compiles it with fusedops-to-binary for a chip, JIT-compiles the host code
// and, where a GPU is present, runs it on fresh random inputs with the output
// poisoned, and compares with a float64 reference by ‖out−ref‖/‖ref‖.
// Compilation runs everywhere; execution skips visibly without a GPU. sm_80
// cases embed PTX, which the driver compiles for the card present: on a
// Hopper machine that is how the Ampere path is run.
//
//===----------------------------------------------------------------------===//

#include "../../Support/GpuTestSupport.h"

#include "fusedops/ExecutionEngine/JitModule.h"
#include "llvm/Support/FormatVariadic.h"

#include <sstream>

using namespace fusedops::test;
using mlir::fusedops::JitModule;

namespace {

struct RmsNormCase {
  const char *name;
  ElementType type;
  std::vector<int64_t> shape; // input [..., hidden]
  int64_t maxPositions;
  int64_t headDim;
  const char *style;
  double rotaryFraction;
  bool explicitPositions;
  ElementType cosType;
  const char *chip;
  const char *tile = nullptr; // #fusedops.tile<...> or null for the default
};

void PrintTo(const RmsNormCase &c, std::ostream *os) { *os << c.name; }

std::string shapeString(const std::vector<int64_t> &shape, bool dynamicFirst,
                        ElementType type) {
  std::string s = "memref<";
  for (size_t i = 0; i < shape.size(); ++i)
    s +=
        (i == 0 && dynamicFirst ? std::string("?") : std::to_string(shape[i])) +
        "x";
  return s + mlirName(type) + ">";
}

int64_t product(const std::vector<int64_t> &shape) {
  int64_t p = 1;
  for (int64_t d : shape)
    p *= d;
  return p;
}

/// float64 reference of rmsnorm_rope (see the op's description).
std::vector<double> reference(const RmsNormCase &c, const HostArray &x,
                              const HostArray &w, const HostArray &cosT,
                              const HostArray &sinT,
                              const std::vector<int64_t> &positions,
                              double eps) {
  int64_t hidden = c.shape.back(), rows = product(c.shape) / hidden;
  int64_t rotary = std::llround(c.headDim * c.rotaryFraction),
          half = rotary / 2;
  std::vector<double> out(rows * hidden);
  std::vector<double> y(hidden);
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (int64_t i = 0; i < hidden; ++i)
      sum += x.get(r * hidden + i) * x.get(r * hidden + i);
    double rstd = 1.0 / std::sqrt(sum / hidden + eps);
    int64_t p = positions[r];
    bool valid = p >= 0 && p < c.maxPositions;
    for (int64_t i = 0; i < hidden; ++i)
      y[i] = x.get(r * hidden + i) * rstd * w.get(i);
    for (int64_t i = 0; i < hidden; ++i) {
      int64_t h = i % c.headDim;
      double v = y[i];
      if (!valid) {
        v = NAN;
      } else if (h < rotary) {
        double cs = cosT.get(p * rotary + h), sn = sinT.get(p * rotary + h);
        if (std::string(c.style) == "neox")
          v = h < half ? y[i] * cs - y[i + half] * sn
                       : y[i] * cs + y[i - half] * sn;
        else
          v = h % 2 == 0 ? y[i] * cs - y[i + 1] * sn
                         : y[i] * cs + y[i - 1] * sn;
      }
      out[r * hidden + i] = v;
    }
  }
  return out;
}

class RmsNormRopeGpuTest : public ::testing::TestWithParam<RmsNormCase> {};

TEST_P(RmsNormRopeGpuTest, MatchesFloat64Reference) {
  const RmsNormCase &c = GetParam();
  const double eps = 1e-5;
  int64_t hidden = c.shape.back();
  int64_t rotary = std::llround(c.headDim * c.rotaryFraction);
  std::vector<int64_t> rowShape(c.shape.begin(), c.shape.end() - 1);
  int64_t rows = product(rowShape);
  int64_t seq = c.shape.size() >= 2 ? c.shape[c.shape.size() - 2] : 1;

  std::string xType = shapeString(c.shape, true, c.type);
  std::string wType = shapeString({hidden}, false, c.type);
  std::string tType = shapeString({c.maxPositions, rotary}, false, c.cosType);
  std::string pType = shapeString(rowShape, true, ElementType::I32);
  std::ostringstream src;
  src << "func.func @f(%x: " << xType << ", %w: " << wType << ", %c: " << tType
      << ", %s: " << tType
      << (c.explicitPositions ? ", %p: " + pType : std::string())
      << ", %o: " << xType << ") attributes {llvm.emit_c_interface} {\n"
      << "  fusedops.rmsnorm_rope ins(%x, %w, %c, %s : " << xType << ", "
      << wType << ", " << tType << ", " << tType << ")"
      << (c.explicitPositions ? " positions(%p : " + pType + ")"
                              : std::string())
      << " outs(%o : " << xType << ") head_dim = " << c.headDim
      << " eps = " << llvm::formatv("{0:e}", eps).str()
      << " style = " << c.style
      << (c.rotaryFraction != 1.0
              ? " rotary_fraction = " + std::to_string(c.rotaryFraction)
              : std::string())
      << (c.tile ? std::string(" {tile = ") + c.tile + "}" : std::string())
      << "\n  return\n}\n";

  // sm_80 code ships as PTX so the driver can compile it for a later card.
  std::string error;
  std::unique_ptr<JitModule> jit =
      JitModule::compileForChip(src.str(), c.chip, error);
  ASSERT_TRUE(jit) << error << "\nsource:\n" << src.str();
  void *entry = jit->lookupCInterface("f");
  ASSERT_TRUE(entry);

  FUSEDOPS_REQUIRE_GPU();
  std::mt19937_64 rng = makeRng();
  HostArray x(c.type, rows * hidden), w(c.type, hidden),
      cosT(c.cosType, c.maxPositions * rotary),
      sinT(c.cosType, c.maxPositions * rotary), out(c.type, rows * hidden);
  x.fillRandom(rng, -2.0, 2.0);
  w.fillRandom(rng, 0.5, 1.5);
  cosT.fillRandom(rng, -1.0, 1.0);
  sinT.fillRandom(rng, -1.0, 1.0);
  std::vector<int64_t> positions(rows);
  HostArray positionArray(ElementType::I32, std::max<int64_t>(rows, 1));
  std::uniform_int_distribution<int64_t> pick(0, c.maxPositions - 1);
  for (int64_t r = 0; r < rows; ++r) {
    positions[r] = c.explicitPositions ? pick(rng) : r % seq;
    positionArray.set(r, static_cast<double>(positions[r]));
  }
  // One out-of-range position where there is room: that row must be NaN.
  if (c.explicitPositions && rows >= 3) {
    positions[1] = c.maxPositions;
    positionArray.set(1, static_cast<double>(c.maxPositions));
  }

  DeviceArray dx(x), dw(w), dc(cosT), ds(sinT), dp(positionArray), dout(out);
  for (DeviceArray *d : {&dx, &dw, &dc, &ds, &dp, &dout})
    FUSEDOPS_ASSERT_OK(d->getStatus());
  FUSEDOPS_ASSERT_OK(dout.poison());

  std::vector<int64_t> fullShape = c.shape;
  auto run3 = [&](auto xd, auto pd) {
    auto wd = describe<1>(dw.get(), {hidden});
    auto cd = describe<2>(dc.get(), {c.maxPositions, rotary});
    auto sd = describe<2>(ds.get(), {c.maxPositions, rotary});
    auto od = xd;
    od.allocated = od.aligned = dout.get();
    if (c.explicitPositions)
      reinterpret_cast<void (*)(void *, void *, void *, void *, void *,
                                void *)>(entry)(&xd, &wd, &cd, &sd, &pd, &od);
    else
      reinterpret_cast<void (*)(void *, void *, void *, void *, void *)>(entry)(
          &xd, &wd, &cd, &sd, &od);
  };
  switch (c.shape.size()) {
  case 1:
    run3(describe<1>(dx.get(), fullShape), describe<1>(dp.get(), {1}));
    break;
  case 2:
    run3(describe<2>(dx.get(), fullShape), describe<1>(dp.get(), rowShape));
    break;
  case 3:
    run3(describe<3>(dx.get(), fullShape), describe<2>(dp.get(), rowShape));
    break;
  default:
    FAIL() << "unsupported rank";
  }
  EXPECT_EQ(fusedopsTakeAsyncErrorCount(), 0) << fusedopsGetLastErrorMessage();
  FUSEDOPS_ASSERT_OK(fusedopsStreamSynchronize(nullptr));
  FUSEDOPS_ASSERT_OK(dout.copyTo(out));

  std::vector<double> ref = reference(c, x, w, cosT, sinT, positions, eps);
  std::vector<double> got(out.size()), refValid, gotValid;
  for (size_t i = 0; i < out.size(); ++i)
    got[i] = out.get(i);
  for (int64_t r = 0; r < rows; ++r) {
    bool valid = positions[r] >= 0 && positions[r] < c.maxPositions;
    for (int64_t i = 0; i < hidden; ++i) {
      double g = got[r * hidden + i];
      if (!valid) {
        ASSERT_TRUE(std::isnan(g))
            << "row " << r << " has an out-of-range "
            << "position but element " << i << " = " << g;
        continue;
      }
      refValid.push_back(ref[r * hidden + i]);
      gotValid.push_back(g);
    }
  }
  double err = relativeError(gotValid, refValid);
  EXPECT_LE(err, toleranceFor(c.type)) << "relative error " << err;
  std::printf("[ result   ] %s: relative error %.3g (bound %.3g)\n", c.name,
              err, toleranceFor(c.type));
}

constexpr ElementType F16 = ElementType::F16, BF16 = ElementType::BF16,
                      F32 = ElementType::F32;

// One case per line: name, element type, shape, table rows, head_dim, style,
// rotary fraction, explicit positions, table type, chip, tile.
// clang-format off
std::vector<RmsNormCase> cases() {
  std::vector<RmsNormCase> list = {
      {"f16_neox_batch", F16, {2, 16, 256}, 32, 64, "neox", 1.0, false, F32, "sm_90a"},
      {"bf16_gptj_positions", BF16, {3, 4096}, 4096, 128, "gptj", 1.0, true, F32, "sm_90a"},
      {"f32_neox_partial_257rows", F32, {257, 512}, 300, 128, "neox", 0.5, true, F32, "sm_90a"},
      {"f16_gptj_quarter_one_row", F16, {1, 1, 192}, 4, 64, "gptj", 0.25, false, F16, "sm_90a"},
      {"bf16_neox_bf16_tables", BF16, {4, 8, 1024}, 8, 128, "neox", 1.0, false, BF16, "sm_90a"},
      {"f16_neox_vector4", F16, {5, 120}, 16, 24, "neox", 1.0, true, F32, "sm_90a"},
      {"f16_neox_vector1", F16, {3, 7, 90}, 7, 30, "neox", 1.0, false, F32, "sm_90a"},
      {"f16_gptj_vector1_partial", F16, {6, 90}, 9, 30, "gptj", 0.2, true, F32, "sm_90a"},
      {"f16_neox_masked_tail", F16, {9, 2, 2560}, 2, 128, "neox", 1.0, false, F32,
       "sm_90a", "#fusedops.tile<block = [2], warps = 4>"},
      {"f16_llama_4096", F16, {2, 64, 4096}, 64, 64, "neox", 1.0, false, F32, "sm_90a"},
      {"sm80_f16_neox", F16, {2, 16, 256}, 32, 64, "neox", 1.0, false, F32, "sm_80"},
      {"sm80_bf16_gptj_positions", BF16, {33, 4096}, 64, 128, "gptj", 0.5, true, F32, "sm_80"},
      {"sm80_f32_rows3", F32, {3, 384}, 3, 64, "neox", 1.0, true, F32, "sm_80"},
      // Several rows per block: a last block with fewer rows, a single block
      // with fewer rows than the tile asks for, gptj with partial rotary,
      // and sm_80.
      {"bf16_neox_rows4_positions", BF16, {37, 4096}, 4096, 128, "neox", 1.0,
       true, F32, "sm_90a", "#fusedops.tile<block = [4], warps = 4>"},
      {"f16_gptj_rows8_partial", F16, {3, 7, 512}, 7, 64, "gptj", 0.5, false,
       F32, "sm_90a", "#fusedops.tile<block = [8], warps = 2>"},
      {"f32_neox_rows16_one_block", F32, {10, 384}, 12, 64, "neox", 1.0, true,
       F32, "sm_90a", "#fusedops.tile<block = [16], warps = 1>"},
      {"sm80_bf16_neox_rows4", BF16, {19, 1024}, 64, 128, "neox", 1.0, true,
       BF16, "sm_80", "#fusedops.tile<block = [4], warps = 1>"},
      // Partial rotary where a thread's slot holds rotated units for some
      // threads and pass-through units for others (the rest are one kind),
      // and a pass-through slot past the row's end.
      {"bf16_neox_partial_mixed_slot", BF16, {5, 4096}, 4096, 128, "neox",
       0.5, true, F32, "sm_90a", "#fusedops.tile<block = [1], warps = 8>"},
      {"f16_gptj_partial_mixed_slot", F16, {3, 7, 768}, 7, 96, "gptj", 0.25,
       false, F16, "sm_90a", "#fusedops.tile<block = [2], warps = 1>"},
      // A weight too large for the shared-memory copy stays in registers.
      {"f32_neox_weight_in_registers", F32, {3, 12288}, 3, 128, "neox", 1.0,
       true, F32, "sm_90a"},
  };
  return list;
}
// clang-format on

INSTANTIATE_TEST_SUITE_P(Cases, RmsNormRopeGpuTest,
                         ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<RmsNormCase> &info) {
                           return std::string(info.param.name);
                         });

} // namespace

namespace {

// Compiled host code launches on the caller's stream without synchronising,
// so a CUDA graph can capture it; replaying the graph must give the same
// result as the reference.
TEST(RmsNormRopeGraphCapture, ReplaysFromACudaGraph) {
  RmsNormCase c{"graph", ElementType::F16, {4, 8, 256}, 8, 64, "neox", 1.0,
                false,   ElementType::F32, "sm_90a"};
  const double eps = 1e-5;
  std::string src =
      "func.func @f(%x: memref<?x8x256xf16>, %w: memref<256xf16>, %c: "
      "memref<8x64xf32>, %s: memref<8x64xf32>, %o: memref<?x8x256xf16>) "
      "attributes {llvm.emit_c_interface} {\n"
      "  fusedops.rmsnorm_rope ins(%x, %w, %c, %s : memref<?x8x256xf16>, "
      "memref<256xf16>, memref<8x64xf32>, memref<8x64xf32>) outs(%o : "
      "memref<?x8x256xf16>) head_dim = 64 eps = 1.0e-5 style = neox\n"
      "  return\n}\n";
  std::string error;
  std::unique_ptr<JitModule> jit =
      JitModule::compileForChip(src, "sm_90a", error);
  ASSERT_TRUE(jit) << error;
  auto entry =
      reinterpret_cast<void (*)(void *, void *, void *, void *, void *)>(
          jit->lookupCInterface("f"));
  ASSERT_TRUE(entry);

  FUSEDOPS_REQUIRE_GPU();
  std::mt19937_64 rng = makeRng();
  HostArray x(ElementType::F16, 4 * 8 * 256), w(ElementType::F16, 256),
      cosT(ElementType::F32, 8 * 64), sinT(ElementType::F32, 8 * 64),
      out(ElementType::F16, 4 * 8 * 256);
  x.fillRandom(rng, -2, 2);
  w.fillRandom(rng, 0.5, 1.5);
  cosT.fillRandom(rng, -1, 1);
  sinT.fillRandom(rng, -1, 1);
  DeviceArray dx(x), dw(w), dc(cosT), ds(sinT), dout(out);
  for (DeviceArray *d : {&dx, &dw, &dc, &ds, &dout})
    FUSEDOPS_ASSERT_OK(d->getStatus());
  auto xd = describe<3>(dx.get(), {4, 8, 256});
  auto od = describe<3>(dout.get(), {4, 8, 256});
  auto wd = describe<1>(dw.get(), {256});
  auto cd = describe<2>(dc.get(), {8, 64});
  auto sd = describe<2>(ds.get(), {8, 64});

  fusedops_stream stream = nullptr;
  FUSEDOPS_ASSERT_OK(fusedopsStreamCreate(&stream));
  fusedopsSetCurrentStream(stream);
  FUSEDOPS_ASSERT_OK(fusedopsStreamBeginCapture(stream));
  entry(&xd, &wd, &cd, &sd, &od);
  fusedops_graph graph = nullptr;
  FUSEDOPS_ASSERT_OK(fusedopsStreamEndCapture(stream, &graph));
  fusedopsClearCurrentStream();
  EXPECT_EQ(fusedopsTakeAsyncErrorCount(), 0) << fusedopsGetLastErrorMessage();

  // Nothing ran during capture; the replay writes the poisoned output.
  FUSEDOPS_ASSERT_OK(dout.poison());
  FUSEDOPS_ASSERT_OK(fusedopsStreamSynchronize(nullptr));
  FUSEDOPS_ASSERT_OK(fusedopsGraphLaunch(graph, stream));
  FUSEDOPS_ASSERT_OK(fusedopsStreamSynchronize(stream));
  FUSEDOPS_ASSERT_OK(dout.copyTo(out));
  std::vector<int64_t> positions(32);
  for (int64_t r = 0; r < 32; ++r)
    positions[r] = r % 8;
  std::vector<double> ref = reference(c, x, w, cosT, sinT, positions, eps);
  std::vector<double> got(out.size());
  for (size_t i = 0; i < got.size(); ++i)
    got[i] = out.get(i);
  EXPECT_LE(relativeError(got, ref), toleranceFor(ElementType::F16));
  FUSEDOPS_ASSERT_OK(fusedopsGraphDestroy(graph));
  FUSEDOPS_ASSERT_OK(fusedopsStreamDestroy(stream));
}

} // namespace
