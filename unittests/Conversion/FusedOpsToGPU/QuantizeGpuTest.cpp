//===- QuantizeGpuTest.cpp - FP8 kernels against the reference ------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Each case compiles dynamic quantize, static quantize and dequantize of one
// granularity, FP8 format, element type and K for a chip, and runs them
// where a GPU is present on M = 0, 1, 3 and 257 rows of fresh random inputs
// (a few NaN, ±inf, huge and tiny values among them) with every output
// poisoned:
//
//   * dynamic quantize: each scale within 1 ulp of the f32 rounding of
//     max(amax, 1e-12)/fp8_max (amax over finite values, in float64), and
//     every FP8 byte equal to the float64 encode of x/scale (scale: the
//     kernel's) below. The kernel divides in f32 and rounds that to FP8, two
//     roundings where the reference has one, so a byte may differ by one
//     FP8 step where x/scale lies within 1 ulp(f32) of a rounding tie.
//   * static quantize: the same, with given scales (some too small, so that
//     values saturate).
//   * dequantize of random bytes (every code: NaN, inf, subnormals): f32
//     outputs equal to the float64 product rounded once, 16-bit outputs
//     within the output type's relative error bound; NaN and inf codes kept.
//   * round trip: dequantize(quantize(x)) within half an FP8 step of x, and,
//     for f32, quantize(dequantize(q, s), s) == q byte for byte (the fold the
//     op documents).
//
// A second test quantizes, with scale 1, the values around every FP8 code
// and rounding tie, the overflow threshold and the specials, where the f32
// division is exact and every byte must match, and dequantizes all 256 codes.
// Compilation runs everywhere; execution skips visibly without a GPU.
//
//===----------------------------------------------------------------------===//

#include "../../Support/GpuTestSupport.h"

#include "fusedops/ExecutionEngine/JitModule.h"

#include <limits>
#include <sstream>

using namespace fusedops::test;
using mlir::fusedops::JitModule;

namespace {

//===----------------------------------------------------------------------===//
// FP8 reference (python/fusedops/fp8.py)
//===----------------------------------------------------------------------===//

struct Fp8Format {
  const char *name;     // e4m3, e5m2
  const char *mlirName; // f8E4M3FN, f8E5M2
  int mantissaBits;
  int bias;
  bool hasInf;
  uint8_t maxFiniteCode, nanCode;
  double maxFinite;
};

const Fp8Format kE4M3 = {"e4m3", "f8E4M3FN", 3, 7, false, 0x7e, 0x7f, 448.0};
const Fp8Format kE5M2 = {"e5m2", "f8E5M2", 2, 15, true, 0x7b, 0x7e, 57344.0};

bool isNanCode(uint8_t code, const Fp8Format &f) {
  uint8_t magnitude = code & 0x7f;
  return f.hasInf ? magnitude > 0x7c : magnitude == 0x7f;
}

/// The value of an FP8 code: NaN, ±inf (e5m2) or exact.
double decode(uint8_t code, const Fp8Format &f) {
  double sign = (code & 0x80) ? -1.0 : 1.0;
  if (isNanCode(code, f))
    return std::numeric_limits<double>::quiet_NaN();
  if (f.hasInf && (code & 0x7f) == 0x7c)
    return sign * INFINITY;
  int m = f.mantissaBits;
  int exponent = (code & 0x7f) >> m, mantissa = code & ((1 << m) - 1);
  if (exponent == 0)
    return sign * std::ldexp(mantissa, 1 - f.bias - m);
  return sign * std::ldexp((1 << m) + mantissa, exponent - f.bias - m);
}

/// The FP8 code of `x`, rounded once to nearest even, saturating (finite
/// overflow and ±inf to ±max, NaN to the quiet NaN with x's sign).
uint8_t encode(double x, const Fp8Format &f) {
  uint8_t sign = std::signbit(x) ? 0x80 : 0;
  if (std::isnan(x))
    return f.nanCode | sign;
  if (std::isinf(x))
    return f.maxFiniteCode | sign;
  const int m = f.mantissaBits, minExponent = 1 - f.bias;
  const int maxExponent = std::ilogb(f.maxFinite);
  double magnitude = std::min(std::fabs(x), std::ldexp(1.0, maxExponent + 2));
  int exponent = magnitude == 0.0
                     ? minExponent
                     : std::max(std::ilogb(magnitude), minExponent);
  // Scaling by a power of two is exact; nearbyint rounds ties to even.
  auto steps =
      static_cast<int64_t>(std::nearbyint(std::ldexp(magnitude, m - exponent)));
  int64_t code = (int64_t(exponent + f.bias - 1) << m) + steps;
  if (code > f.maxFiniteCode)
    code = f.maxFiniteCode;
  return static_cast<uint8_t>(code) | sign;
}

/// One unit in the last place of `x` as an f32.
double ulpF32(double x) {
  x = std::fabs(x);
  int exponent = x < std::ldexp(1.0, -126) ? -126 : std::ilogb(x);
  return std::ldexp(1.0, exponent - 23);
}

/// Whether `got` may stand for `want` when the kernel rounded x/scale = `t`
/// to f32 before rounding to FP8: one step apart, with `t` within 1 ulp of
/// f32 of the tie between them.
bool isTieMismatch(uint8_t got, uint8_t want, double t, const Fp8Format &f) {
  if ((got & 0x80) != (want & 0x80) || isNanCode(got, f) ||
      isNanCode(want, f) || std::abs((got & 0x7f) - (want & 0x7f)) != 1)
    return false;
  double tie = (decode(got, f) + decode(want, f)) / 2;
  return std::fabs(t - tie) <= ulpF32(tie);
}

/// Distance of two f32 values in units in the last place.
int64_t ulpDistance(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::abs(int64_t(ia) - int64_t(ib));
}

//===----------------------------------------------------------------------===//
// Device buffers and descriptors
//===----------------------------------------------------------------------===//

/// A device buffer of raw bytes (FP8 codes), at least one byte.
class DeviceBytes {
public:
  explicit DeviceBytes(size_t bytes) : bytes(std::max<size_t>(bytes, 1)) {
    status = fusedopsMalloc(this->bytes, &ptr);
  }
  ~DeviceBytes() {
    if (ptr)
      fusedopsFree(ptr);
  }
  DeviceBytes(const DeviceBytes &) = delete;
  DeviceBytes &operator=(const DeviceBytes &) = delete;
  fusedops_status getStatus() const { return status; }
  void *get() const { return ptr; }
  fusedops_status upload(const std::vector<uint8_t> &host) {
    return host.empty() ? FUSEDOPS_SUCCESS
                        : fusedopsMemcpyHtoD(ptr, host.data(), host.size());
  }
  fusedops_status download(std::vector<uint8_t> &host) const {
    return host.empty() ? FUSEDOPS_SUCCESS
                        : fusedopsMemcpyDtoH(host.data(), ptr, host.size());
  }
  fusedops_status poison() {
    return fusedopsMemsetD8(ptr, 0xff, bytes, nullptr);
  }

private:
  size_t bytes;
  void *ptr = nullptr;
  fusedops_status status = FUSEDOPS_SUCCESS;
};

/// The memref descriptors of one call's three buffers: [M, K] data in and
/// out, and the scales in the granularity's shape (rank 0, 1 or 2).
struct CallDescriptors {
  MemRefDescriptor<2> in, out;
  MemRefDescriptor<0> scale0;
  MemRefDescriptor<1> scale1;
  MemRefDescriptor<2> scale2;
  int scaleRank;
  void *scale() {
    return scaleRank == 0   ? static_cast<void *>(&scale0)
           : scaleRank == 1 ? static_cast<void *>(&scale1)
                            : static_cast<void *>(&scale2);
  }
};

//===----------------------------------------------------------------------===//
// Cases
//===----------------------------------------------------------------------===//

struct QuantizeCase {
  std::string name;
  std::string granularity; // tensor, row, block128
  const Fp8Format *format;
  ElementType type; // the quantized input, the dequantized output
  int64_t cols;
  const char *chip;
  /// The dynamic quantize's tile ("" for the autotuner's pick).
  std::string tile = "";
  std::vector<int64_t> rowCounts = {0, 1, 3, 257};
};

void PrintTo(const QuantizeCase &c, std::ostream *os) { *os << c.name; }

/// The scale group of element (r, k), as an index into the scales.
int64_t groupOf(const std::string &granularity, int64_t r, int64_t k,
                int64_t cols) {
  if (granularity == "tensor")
    return 0;
  if (granularity == "row")
    return r;
  return (r / 128) * ((cols + 127) / 128) + k / 128;
}

std::string memrefType(const std::vector<int64_t> &shape,
                       const std::string &element) {
  std::string s = "memref<";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i == 0 ? std::string("?") : std::to_string(shape[i])) + "x";
  return s + element + ">";
}

/// @dynamic(x, q, s), @static(x, s, q) and @dequantize(q, s, out).
std::string makeSource(const QuantizeCase &c) {
  std::string x = memrefType({0, c.cols}, mlirName(c.type)),
              q = memrefType({0, c.cols}, c.format->mlirName),
              s = memrefType(scaleShape(c.granularity, 0, c.cols), "f32");
  std::ostringstream src;
  src << "func.func @dynamic(%x: " << x << ", %q: " << q << ", %s: " << s
      << ") attributes {llvm.emit_c_interface} {\n"
      << "  fusedops.quantize ins(%x : " << x << ") outs(%q, %s : " << q << ", "
      << s << ") granularity = " << c.granularity
      << (c.tile.empty() ? "" : " {tile = " + c.tile + "}") << "\n  return\n}\n"
      << "func.func @static(%x: " << x << ", %s: " << s << ", %q: " << q
      << ") attributes {llvm.emit_c_interface} {\n"
      << "  fusedops.quantize ins(%x : " << x << ") scale(%s : " << s
      << ") outs(%q : " << q << ") granularity = " << c.granularity
      << "\n  return\n}\n"
      << "func.func @dequantize(%q: " << q << ", %s: " << s << ", %o: " << x
      << ") attributes {llvm.emit_c_interface} {\n"
      << "  fusedops.dequantize ins(%q, %s : " << q << ", " << s
      << ") outs(%o : " << x << ") granularity = " << c.granularity
      << "\n  return\n}\n";
  return src.str();
}

/// Compiles `source` for `chip` (sm_80 as PTX, so that the driver can
/// compile it for a later card).
std::unique_ptr<JitModule> compileFor(const std::string &source,
                                      const char *chip, std::string &error) {
  return JitModule::compileForChip(source, chip, error);
}

using Entry = void (*)(void *, void *, void *);

/// Largest finite value of the element type, over 2: "huge" inputs.
double hugeValue(ElementType type) {
  return type == ElementType::F16 ? 30000.0 : 1e30;
}

/// Checks FP8 bytes `q` against the float64 encode of x/scale; returns the
/// number of tie mismatches (allowed) and fails on any other.
int64_t expectEncoded(const HostArray &x, const std::vector<uint8_t> &q,
                      const HostArray &scales, const QuantizeCase &c,
                      int64_t rows, const char *what) {
  int64_t ties = 0, failures = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < c.cols; ++k) {
      int64_t i = r * c.cols + k;
      double s = scales.get(groupOf(c.granularity, r, k, c.cols));
      double t = x.get(i) / s;
      uint8_t want = encode(t, *c.format);
      if (q[i] == want)
        continue;
      if (isTieMismatch(q[i], want, t, *c.format)) {
        ++ties;
        continue;
      }
      if (++failures <= 10)
        ADD_FAILURE() << what << ": q[" << r << ", " << k << "] = 0x"
                      << std::hex << int(q[i]) << ", expected 0x" << int(want)
                      << std::dec << " (x = " << x.get(i) << ", scale = " << s
                      << ", x/scale = " << t << ")";
    }
  EXPECT_EQ(failures, 0) << what << ": FP8 bytes that differ";
  return ties;
}

class QuantizeGpuTest : public ::testing::TestWithParam<QuantizeCase> {};

TEST_P(QuantizeGpuTest, MatchesReference) {
  const QuantizeCase &c = GetParam();
  const Fp8Format &fmt = *c.format;
  std::string source = makeSource(c);
  std::string error;
  std::unique_ptr<JitModule> jit = compileFor(source, c.chip, error);
  ASSERT_TRUE(jit) << error << "\nsource:\n" << source;
  auto dynamicEntry = reinterpret_cast<Entry>(jit->lookupCInterface("dynamic"));
  auto staticEntry = reinterpret_cast<Entry>(jit->lookupCInterface("static"));
  auto dequantizeEntry =
      reinterpret_cast<Entry>(jit->lookupCInterface("dequantize"));
  ASSERT_TRUE(dynamicEntry && staticEntry && dequantizeEntry);

  FUSEDOPS_REQUIRE_GPU();
  std::mt19937_64 rng = makeRng();
  const int64_t cols = c.cols;
  for (int64_t rows : c.rowCounts) {
    SCOPED_TRACE("M = " + std::to_string(rows));
    const int64_t count = rows * cols;
    std::vector<int64_t> sShape = scaleShape(c.granularity, rows, cols);
    int64_t numScales = 1;
    for (int64_t d : sShape)
      numScales *= d;

    // Inputs: each row at its own magnitude, and a few specials.
    HostArray x(c.type, std::max<int64_t>(count, 1));
    std::uniform_real_distribution<double> unit(-1.0, 1.0);
    std::uniform_int_distribution<int> magnitude(-8, 8);
    for (int64_t r = 0; r < rows; ++r) {
      double rowScale = std::ldexp(1.0, magnitude(rng));
      for (int64_t k = 0; k < cols; ++k)
        x.set(r * cols + k, unit(rng) * rowScale);
    }
    const double specials[] = {
        NAN,  -NAN, INFINITY, -INFINITY, hugeValue(c.type), -hugeValue(c.type),
        1e-7, -0.0};
    if (count > 0) {
      std::uniform_int_distribution<int64_t> at(0, count - 1);
      for (double special : specials)
        x.set(at(rng), special);
    }

    DeviceArray dx(x);
    DeviceBytes dq(count), dq2(count);
    HostArray scales(ElementType::F32, std::max<int64_t>(numScales, 1));
    DeviceArray ds(scales);
    HostArray out(c.type, std::max<int64_t>(count, 1));
    DeviceArray dout(out);
    for (fusedops_status status :
         {dx.getStatus(), dq.getStatus(), dq2.getStatus(), ds.getStatus(),
          dout.getStatus()})
      FUSEDOPS_ASSERT_OK(status);
    FUSEDOPS_ASSERT_OK(dq.poison());
    FUSEDOPS_ASSERT_OK(dq2.poison());
    FUSEDOPS_ASSERT_OK(ds.poison());
    FUSEDOPS_ASSERT_OK(dout.poison());

    auto describeCall = [&](void *in, void *out, void *scale) {
      CallDescriptors d;
      d.in = describe<2>(in, {rows, cols});
      d.out = describe<2>(out, {rows, cols});
      d.scaleRank = static_cast<int>(sShape.size());
      d.scale0 = describe<0>(scale, {});
      if (d.scaleRank == 1)
        d.scale1 = describe<1>(scale, sShape);
      if (d.scaleRank == 2)
        d.scale2 = describe<2>(scale, sShape);
      return d;
    };
    auto finish = [&] {
      EXPECT_EQ(fusedopsTakeAsyncErrorCount(), 0)
          << fusedopsGetLastErrorMessage();
      return fusedopsStreamSynchronize(nullptr);
    };

    // 1. Dynamic quantize.
    CallDescriptors d = describeCall(dx.get(), dq.get(), ds.get());
    dynamicEntry(&d.in, &d.out, d.scale());
    FUSEDOPS_ASSERT_OK(finish());
    std::vector<uint8_t> q(count);
    FUSEDOPS_ASSERT_OK(dq.download(q));
    FUSEDOPS_ASSERT_OK(ds.copyTo(scales));

    std::vector<double> amax(std::max<int64_t>(numScales, 1), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < cols; ++k) {
        double v = x.get(r * cols + k);
        double &a = amax[groupOf(c.granularity, r, k, cols)];
        if (std::isfinite(v))
          a = std::max(a, std::fabs(v));
      }
    // A tensor scale exists for M = 0 too; row and block scales then don't.
    int64_t checkedScales = c.granularity == "tensor" ? 1 : numScales;
    for (int64_t g = 0; g < checkedScales; ++g) {
      auto want = static_cast<float>(std::max(amax[g], 1e-12) / fmt.maxFinite);
      auto got = static_cast<float>(scales.get(g));
      EXPECT_LE(ulpDistance(got, want), 1)
          << "scale " << g << " = " << got << ", expected " << want << " (amax "
          << amax[g] << ")";
    }
    int64_t ties = expectEncoded(x, q, scales, c, rows, "dynamic");

    // 2. Round trip: dequantize the kernel's q with its scales.
    CallDescriptors back = describeCall(dq.get(), dout.get(), ds.get());
    dequantizeEntry(&back.in, back.scale(), &back.out);
    FUSEDOPS_ASSERT_OK(finish());
    FUSEDOPS_ASSERT_OK(dout.copyTo(out));
    const double typeEps = c.type == ElementType::F32   ? 0x1p-24
                           : c.type == ElementType::F16 ? 0x1p-11
                                                        : 0x1p-8;
    int64_t roundTripFailures = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < cols; ++k) {
        int64_t i = r * cols + k;
        double v = x.get(i), y = out.get(i);
        double s = scales.get(groupOf(c.granularity, r, k, cols));
        double bound;
        if (std::isnan(v)) {
          if (!std::isnan(y) && ++roundTripFailures <= 10)
            ADD_FAILURE() << "round trip: out[" << r << ", " << k << "] = " << y
                          << " for x = NaN";
          continue;
        }
        if (std::isinf(v)) {
          // ±inf saturates to ±max.
          v = std::copysign(fmt.maxFinite * s, v);
          bound = typeEps * std::fabs(v) + 1e-30;
        } else {
          // Half an FP8 step (relative, or the subnormal step), the output
          // rounding, and the f32 rounding of x/scale.
          bound = std::fabs(v) * (std::ldexp(1.0, -fmt.mantissaBits - 1) +
                                  typeEps + 0x1p-23) +
                  s * std::ldexp(1.0, -fmt.bias - fmt.mantissaBits);
          if (c.type == ElementType::F16)
            bound += 0x1p-25; // f16 subnormal outputs
        }
        if (!(std::fabs(y - v) <= bound) && ++roundTripFailures <= 10)
          ADD_FAILURE() << "round trip: out[" << r << ", " << k << "] = " << y
                        << " for x = " << x.get(i) << " (q = 0x" << std::hex
                        << int(q[i]) << std::dec << ", scale " << s << ")";
      }
    EXPECT_EQ(roundTripFailures, 0);

    // For f32, quantizing the dequantized values with the same scales gives
    // q back exactly.
    if (c.type == ElementType::F32) {
      CallDescriptors again = describeCall(dout.get(), dq2.get(), ds.get());
      staticEntry(&again.in, again.scale(), &again.out);
      FUSEDOPS_ASSERT_OK(finish());
      std::vector<uint8_t> q2(count);
      FUSEDOPS_ASSERT_OK(dq2.download(q2));
      int64_t differ = 0;
      for (int64_t i = 0; i < count; ++i)
        differ += q2[i] != q[i];
      EXPECT_EQ(differ, 0) << "quantize(dequantize(q, s), s) != q";
      FUSEDOPS_ASSERT_OK(dq2.poison());
    }

    // 3. Static quantize with given scales, some too small for their group:
    // those values saturate.
    HostArray given(ElementType::F32, std::max<int64_t>(numScales, 1));
    std::uniform_real_distribution<double> factor(0.25, 2.0);
    for (int64_t g = 0; g < numScales; ++g)
      given.set(g, (amax[g] > 0 ? amax[g] / fmt.maxFinite : 1.0) * factor(rng));
    DeviceArray dgiven(given);
    FUSEDOPS_ASSERT_OK(dgiven.getStatus());
    CallDescriptors st = describeCall(dx.get(), dq2.get(), dgiven.get());
    staticEntry(&st.in, st.scale(), &st.out);
    FUSEDOPS_ASSERT_OK(finish());
    std::vector<uint8_t> qs(count);
    FUSEDOPS_ASSERT_OK(dq2.download(qs));
    ties += expectEncoded(x, qs, given, c, rows, "static");

    // 4. Dequantize random bytes (every code) with scales in [1/64, 1]
    // (57344 · 1 still fits f16).
    std::vector<uint8_t> codes(count);
    for (uint8_t &code : codes)
      code = static_cast<uint8_t>(rng());
    HostArray dScales(ElementType::F32, std::max<int64_t>(numScales, 1));
    dScales.fillRandom(rng, 1.0 / 64, 1.0);
    DeviceArray ddScales(dScales);
    FUSEDOPS_ASSERT_OK(ddScales.getStatus());
    FUSEDOPS_ASSERT_OK(dq.upload(codes));
    FUSEDOPS_ASSERT_OK(dout.poison());
    CallDescriptors dd = describeCall(dq.get(), dout.get(), ddScales.get());
    dequantizeEntry(&dd.in, dd.scale(), &dd.out);
    FUSEDOPS_ASSERT_OK(finish());
    FUSEDOPS_ASSERT_OK(dout.copyTo(out));
    std::vector<double> gotFinite, refFinite;
    int64_t specialFailures = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < cols; ++k) {
        int64_t i = r * cols + k;
        double ref = decode(codes[i], fmt) *
                     dScales.get(groupOf(c.granularity, r, k, cols));
        double got = out.get(i);
        bool ok = true;
        if (std::isnan(ref))
          ok = std::isnan(got);
        else if (std::isinf(ref))
          ok = got == ref;
        else if (c.type == ElementType::F32)
          ok = got == static_cast<double>(static_cast<float>(ref));
        if (!ok && ++specialFailures <= 10)
          ADD_FAILURE() << "dequantize: out[" << r << ", " << k << "] = " << got
                        << ", expected " << ref << " (q = 0x" << std::hex
                        << int(codes[i]) << std::dec << ")";
        if (std::isfinite(ref)) {
          gotFinite.push_back(got);
          refFinite.push_back(ref);
        }
      }
    EXPECT_EQ(specialFailures, 0);
    double err = relativeError(gotFinite, refFinite);
    EXPECT_LE(err, toleranceFor(c.type)) << "dequantize relative error " << err;
    std::printf("[ result   ] %s M=%lld: dequantize relative error %.3g "
                "(bound %.3g), %lld tie roundings\n",
                c.name.c_str(), static_cast<long long>(rows), err,
                toleranceFor(c.type), static_cast<long long>(ties));
  }
}

std::vector<QuantizeCase> cases() {
  std::vector<QuantizeCase> list;
  for (const char *chip : {"sm_90a", "sm_80"})
    for (const char *granularity : {"tensor", "row", "block128"})
      for (const Fp8Format *format : {&kE4M3, &kE5M2})
        for (ElementType type :
             {ElementType::F16, ElementType::BF16, ElementType::F32})
          for (int64_t cols : {200, 4096}) {
            std::string chipName =
                std::string(chip) == "sm_80" ? "sm80" : "sm90a";
            list.push_back({std::string(granularity) + "_" + format->name +
                                "_" + mlirName(type) + "_k" +
                                std::to_string(cols) + "_" + chipName,
                            granularity, format, type, cols, chip});
          }
  return list;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, QuantizeGpuTest, ::testing::ValuesIn(cases()),
    [](const ::testing::TestParamInfo<QuantizeCase> &info) {
      return info.param.name;
    });

/// The one-pass tensor quantize where each block takes many tiles: 8192-wide
/// tiles of 512 threads (two vectors a thread; at most a block an SM on an
/// H100 or H200, so 1000 rows are about 7.6 tiles a block), 1 to 3 of them
/// held in registers (3: batches that run past a block's last tile), the
/// rest read again; and M = 1 (one block, one tile), M = 3.
std::vector<QuantizeCase> onePassCases() {
  std::vector<QuantizeCase> list;
  for (const char *chip : {"sm_90a", "sm_80"})
    for (ElementType type : {ElementType::BF16, ElementType::F32})
      for (int64_t stages : {1, 3}) {
        std::string chipName = std::string(chip) == "sm_80" ? "sm80" : "sm90a";
        QuantizeCase c{"tensor_onepass_" + std::string(mlirName(type)) + "_s" +
                           std::to_string(stages) + "_" + chipName,
                       "tensor",
                       &kE4M3,
                       type,
                       8192,
                       chip};
        int64_t warps = type == ElementType::F32 ? 32 : 16;
        c.tile = "#fusedops.tile<block = [1, 8192], warps = " +
                 std::to_string(warps) +
                 ", stages = " + std::to_string(stages) + ">";
        c.rowCounts = {1, 3, 1000};
        list.push_back(c);
      }
  return list;
}

INSTANTIATE_TEST_SUITE_P(
    OnePass, QuantizeGpuTest, ::testing::ValuesIn(onePassCases()),
    [](const ::testing::TestParamInfo<QuantizeCase> &info) {
      return info.param.name;
    });

//===----------------------------------------------------------------------===//
// Conversion corner cases
//===----------------------------------------------------------------------===//

struct CornerCase {
  const Fp8Format *format;
  const char *chip;
};

void PrintTo(const CornerCase &c, std::ostream *os) {
  *os << c.format->name << "_" << c.chip;
}

/// Every FP8 value, the f32 neighbours of each, every tie between two codes
/// and its neighbours, the overflow threshold and the specials, both signs.
std::vector<float> cornerValues(const Fp8Format &f) {
  std::vector<float> values;
  auto addAround = [&](float v) {
    values.push_back(v);
    values.push_back(std::nextafter(v, 0.0f));
    values.push_back(std::nextafter(v, INFINITY));
  };
  for (int code = 0; code < 0x80; ++code) {
    double v = decode(static_cast<uint8_t>(code), f);
    if (!std::isfinite(v))
      continue;
    addAround(static_cast<float>(v));
    double next = decode(static_cast<uint8_t>(code + 1), f);
    // The tie with the next code, or the overflow threshold past max.
    if (std::isfinite(next))
      addAround(static_cast<float>((v + next) / 2));
    else
      addAround(static_cast<float>(
          v + std::ldexp(1.0, std::ilogb(v) - f.mantissaBits - 1)));
  }
  // Below the smallest subnormal, f32 subnormals, far out of range.
  for (float v : {std::ldexp(1.0f, -1 - f.bias - f.mantissaBits + 1),
                  std::ldexp(1.0f, -30), 1e-40f, 1e-45f, 1e30f,
                  std::numeric_limits<float>::max(), INFINITY, NAN})
    addAround(v);
  size_t positive = values.size();
  for (size_t i = 0; i < positive; ++i)
    values.push_back(-values[i]);
  return values;
}

class Fp8ConversionGpuTest : public ::testing::TestWithParam<CornerCase> {};

TEST_P(Fp8ConversionGpuTest, ExactAtCornerCases) {
  const Fp8Format &fmt = *GetParam().format;
  std::vector<float> values = cornerValues(fmt);
  // One row, K a multiple of 16 (zeros after the values).
  const int64_t cols = (static_cast<int64_t>(values.size()) + 15) / 16 * 16;
  values.resize(cols, 0.0f);
  QuantizeCase c{"corner",         "tensor", &fmt,
                 ElementType::F32, cols,     GetParam().chip};
  std::string source = makeSource(c);
  std::string error;
  std::unique_ptr<JitModule> jit = compileFor(source, c.chip, error);
  ASSERT_TRUE(jit) << error << "\nsource:\n" << source;
  auto staticEntry = reinterpret_cast<Entry>(jit->lookupCInterface("static"));
  auto dequantizeEntry =
      reinterpret_cast<Entry>(jit->lookupCInterface("dequantize"));
  ASSERT_TRUE(staticEntry && dequantizeEntry);

  FUSEDOPS_REQUIRE_GPU();
  HostArray x(ElementType::F32, cols), one(ElementType::F32, 1),
      out(ElementType::F32, 256);
  for (int64_t i = 0; i < cols; ++i)
    x.set(i, values[i]);
  one.set(0, 1.0);
  DeviceArray dx(x), dOne(one), dout(out);
  DeviceBytes dq(cols);
  for (fusedops_status status :
       {dx.getStatus(), dOne.getStatus(), dout.getStatus(), dq.getStatus()})
    FUSEDOPS_ASSERT_OK(status);
  FUSEDOPS_ASSERT_OK(dq.poison());

  // Scale 1: x/scale is x, exactly, so every byte must match.
  auto xd = describe<2>(dx.get(), {1, cols});
  auto qd = describe<2>(dq.get(), {1, cols});
  auto sd = describe<0>(dOne.get(), {});
  staticEntry(&xd, &sd, &qd);
  EXPECT_EQ(fusedopsTakeAsyncErrorCount(), 0) << fusedopsGetLastErrorMessage();
  FUSEDOPS_ASSERT_OK(fusedopsStreamSynchronize(nullptr));
  std::vector<uint8_t> q(cols);
  FUSEDOPS_ASSERT_OK(dq.download(q));
  int64_t failures = 0;
  for (int64_t i = 0; i < cols; ++i) {
    uint8_t want = encode(values[i], fmt);
    if (q[i] != want && ++failures <= 20)
      ADD_FAILURE() << "encode(" << values[i] << ") = 0x" << std::hex
                    << int(q[i]) << ", expected 0x" << int(want) << std::dec;
  }
  EXPECT_EQ(failures, 0);

  // Every code, decoded exactly.
  std::vector<uint8_t> all(256);
  for (int i = 0; i < 256; ++i)
    all[i] = static_cast<uint8_t>(i);
  DeviceBytes dall(256);
  FUSEDOPS_ASSERT_OK(dall.getStatus());
  FUSEDOPS_ASSERT_OK(dall.upload(all));
  FUSEDOPS_ASSERT_OK(dout.poison());
  QuantizeCase wide{"all_codes",      "tensor", &fmt,
                    ElementType::F32, 256,      GetParam().chip};
  std::string wideSource = makeSource(wide);
  std::unique_ptr<JitModule> wideJit = compileFor(wideSource, c.chip, error);
  ASSERT_TRUE(wideJit) << error;
  auto wideDequantize =
      reinterpret_cast<Entry>(wideJit->lookupCInterface("dequantize"));
  ASSERT_TRUE(wideDequantize);
  auto ad = describe<2>(dall.get(), {1, 256});
  auto od = describe<2>(dout.get(), {1, 256});
  wideDequantize(&ad, &sd, &od);
  EXPECT_EQ(fusedopsTakeAsyncErrorCount(), 0) << fusedopsGetLastErrorMessage();
  FUSEDOPS_ASSERT_OK(fusedopsStreamSynchronize(nullptr));
  FUSEDOPS_ASSERT_OK(dout.copyTo(out));
  for (int i = 0; i < 256; ++i) {
    double want = decode(static_cast<uint8_t>(i), fmt), got = out.get(i);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << "code 0x" << std::hex << i;
      continue;
    }
    EXPECT_EQ(got, want) << "code 0x" << std::hex << i;
    // -0 keeps its sign.
    EXPECT_EQ(std::signbit(got), std::signbit(want))
        << "code 0x" << std::hex << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Formats, Fp8ConversionGpuTest,
    ::testing::Values(CornerCase{&kE4M3, "sm_90a"},
                      CornerCase{&kE5M2, "sm_90a"}, CornerCase{&kE4M3, "sm_80"},
                      CornerCase{&kE5M2, "sm_80"}),
    [](const ::testing::TestParamInfo<CornerCase> &info) {
      return std::string(info.param.format->name) +
             (std::string(info.param.chip) == "sm_80" ? "_sm80" : "_sm90a");
    });

} // namespace
