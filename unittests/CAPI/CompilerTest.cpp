//===- CompilerTest.cpp - the compiler's C API
//------------------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Compiles for PTX (no ptxas, no GPU needed). Without a GPU the kernels'
// module load in the JIT'd host code's constructor reports an asynchronous
// error, which does not concern these tests.
//
//===----------------------------------------------------------------------===//

#include "fusedops-c/Compiler.h"
#include "fusedops-c/Runtime.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

const char *kSource = R"mlir(
func.func @kernel(%q: memref<16x64xf8E4M3FN>, %s: memref<16xf32>,
                  %o: memref<16x64xbf16>) attributes {llvm.emit_c_interface} {
  fusedops.dequantize ins(%q, %s : memref<16x64xf8E4M3FN>, memref<16xf32>)
      outs(%o : memref<16x64xbf16>) granularity = row
  return
}
)mlir";

std::string lastError() { return fusedopsCompilerGetLastError(); }

std::string image(fusedops_jit jit) {
  const void *data = nullptr;
  size_t size = fusedopsJitGetKernelImage(jit, &data);
  return std::string(static_cast<const char *>(data), size);
}

TEST(CompilerCAPI, VersionNamesTheToolchain) {
  std::string version = fusedopsCompilerVersion();
  EXPECT_EQ(version.rfind("fusedops-capi 5; llvm 22.", 0), 0u) << version;
  EXPECT_NE(version.find("; ptxas "), std::string::npos) << version;
}

TEST(CompilerCAPI, CompilesAndFindsTheFunction) {
  fusedops_jit jit = nullptr;
  ASSERT_EQ(fusedopsJitCompile(kSource, std::strlen(kSource), "sm_90a", "isa",
                               3, nullptr, nullptr, &jit),
            FUSEDOPS_COMPILE_SUCCESS)
      << lastError();
  EXPECT_NE(fusedopsJitLookup(jit, "kernel"), nullptr);
  EXPECT_NE(image(jit).find(".target sm_90a"), std::string::npos);
  EXPECT_EQ(fusedopsJitLookup(jit, "absent"), nullptr);
  EXPECT_NE(lastError().find("no function @absent"), std::string::npos);
  fusedopsJitDestroy(jit);
}

TEST(CompilerCAPI, LoweredBytesLoadToTheSameKernels) {
  void *bytes = nullptr;
  size_t size = 0;
  ASSERT_EQ(fusedopsJitLower(kSource, std::strlen(kSource), "sm_80", "isa", 3,
                             nullptr, nullptr, &bytes, &size),
            FUSEDOPS_COMPILE_SUCCESS)
      << lastError();
  ASSERT_GT(size, 4u);
  EXPECT_EQ(std::memcmp(bytes, "ML\xEFR", 4), 0) << "not MLIR bytecode";
  fusedops_jit loaded = nullptr;
  ASSERT_EQ(fusedopsJitLoad(bytes, size, &loaded), FUSEDOPS_COMPILE_SUCCESS)
      << lastError();
  fusedops_jit direct = nullptr;
  ASSERT_EQ(fusedopsJitCompile(kSource, std::strlen(kSource), "sm_80", "isa", 3,
                               nullptr, nullptr, &direct),
            FUSEDOPS_COMPILE_SUCCESS);
  EXPECT_EQ(image(loaded), image(direct));
  EXPECT_NE(fusedopsJitLookup(loaded, "kernel"), nullptr);
  fusedopsJitDestroy(loaded);
  fusedopsJitDestroy(direct);
  fusedopsBufferFree(bytes);
}

TEST(CompilerCAPI, LoadRejectsWhatIsNotALoweredModule) {
  fusedops_jit jit = nullptr;
  const char garbage[] = "definitely not bytecode";
  EXPECT_EQ(fusedopsJitLoad(garbage, sizeof(garbage), &jit),
            FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE);
  EXPECT_EQ(jit, nullptr);
  EXPECT_NE(lastError().find("not a lowered fusedops module"),
            std::string::npos)
      << lastError();

  // Truncated bytecode.
  void *bytes = nullptr;
  size_t size = 0;
  ASSERT_EQ(fusedopsJitLower(kSource, std::strlen(kSource), "sm_90a", "isa", 3,
                             nullptr, nullptr, &bytes, &size),
            FUSEDOPS_COMPILE_SUCCESS);
  EXPECT_EQ(fusedopsJitLoad(bytes, size / 2, &jit),
            FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE);
  EXPECT_EQ(jit, nullptr);
  EXPECT_FALSE(lastError().empty());

  // One flipped bit anywhere: some such buffers used to parse and load
  // (issue 14); the SHA-256 trailer refuses every one.
  std::vector<char> copy(static_cast<char *>(bytes),
                         static_cast<char *>(bytes) + size);
  for (size_t at : {size_t(5), size / 7, size / 3, size / 2, size - 40,
                    size - 33, size - 1}) {
    std::vector<char> flipped = copy;
    flipped[at] ^= 0x10;
    EXPECT_EQ(fusedopsJitLoad(flipped.data(), flipped.size(), &jit),
              FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE)
        << "bit flipped at " << at << " of " << size;
    EXPECT_EQ(jit, nullptr);
  }
  EXPECT_NE(lastError().find("damaged"), std::string::npos) << lastError();
  fusedopsBufferFree(bytes);
}

TEST(CompilerCAPI, FailuresComeBackWithDiagnostics) {
  fusedops_jit jit = nullptr;
  const char *bad = "func.func @kernel(";
  EXPECT_EQ(fusedopsJitCompile(bad, std::strlen(bad), "sm_90a", "isa", 3,
                               nullptr, nullptr, &jit),
            FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE);
  EXPECT_NE(lastError().find("expected"), std::string::npos) << lastError();
  EXPECT_EQ(fusedopsJitCompile(kSource, std::strlen(kSource), "sm_70", "isa", 3,
                               nullptr, nullptr, &jit),
            FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE);
  EXPECT_NE(lastError().find("sm_70"), std::string::npos) << lastError();
  EXPECT_EQ(fusedopsJitCompile(nullptr, 0, "sm_90a", "isa", 3, nullptr, nullptr,
                               &jit),
            FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT);
  void *bytes = nullptr;
  size_t size = 0;
  EXPECT_EQ(fusedopsJitLower(kSource, std::strlen(kSource), "sm_90a", "elf", 3,
                             nullptr, nullptr, &bytes, &size),
            FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE);
  EXPECT_NE(lastError().find("unknown format 'elf'"), std::string::npos);
  EXPECT_EQ(bytes, nullptr);
}

// The PyTorch API's sources come from the ops' C++ builders: what they
// print compiles, and a bad request names its field.
TEST(CompilerCAPI, BuildsOpSourcesThatCompile) {
  const char *request = R"({"op": "quantize", "rows": 16, "cols": 64,
      "dtype": "bf16", "fp8": "f8E4M3FN", "granularity": "block128"})";
  char *json = nullptr;
  ASSERT_EQ(fusedopsBuildOpSource(request, &json), FUSEDOPS_COMPILE_SUCCESS)
      << lastError();
  std::string reply = json;
  fusedopsBufferFree(json);
  // The block-128 scales of a 16×64 matrix: one block. The reply is JSON
  // whose source has escaped quotes and newlines; the types and names show.
  EXPECT_NE(reply.find("%x: memref<16x64xbf16>, %q: memref<16x64xf8E4M3FN>, "
                       "%s: memref<1x1xf32>"),
            std::string::npos)
      << reply;
  EXPECT_EQ(reply.find("tile"), std::string::npos) << reply;
  EXPECT_NE(reply.find(R"("args":["x","q","s"])"), std::string::npos) << reply;

  // A candidate tile is set on such a source once; a second is refused.
  char *tiled = nullptr;
  const char *tile = "#fusedops.tile<block = [1, 64], warps = 1>";
  ASSERT_EQ(fusedopsSetTile(kSource, std::strlen(kSource), tile, &tiled),
            FUSEDOPS_COMPILE_SUCCESS)
      << lastError();
  std::string withTile = tiled;
  fusedopsBufferFree(tiled);
  EXPECT_NE(withTile.find("tile = #fusedops.tile<block = [1, 64], warps = 1>"),
            std::string::npos)
      << withTile;
  EXPECT_EQ(fusedopsSetTile(withTile.c_str(), withTile.size(), tile, &tiled),
            FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE);
  EXPECT_NE(lastError().find("already has a tile"), std::string::npos);

  const char *bad = R"({"op": "dequantize", "rows": 4, "cols": 8,
      "fp8": "f8E4M3FN", "out_dtype": "bf16", "granularity": "column"})";
  EXPECT_EQ(fusedopsBuildOpSource(bad, &json),
            FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(json, nullptr);
  EXPECT_NE(lastError().find("'granularity' is 'column'"), std::string::npos)
      << lastError();
  EXPECT_EQ(fusedopsBuildOpSource(nullptr, &json),
            FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT);
}

// rms_norm's request: the residual adds an operand and a second output, in
// the order the PyTorch API passes its tensors; a residual that is not a
// boolean is refused naming the field.
TEST(CompilerCAPI, BuildsRmsNormSources) {
  const char *request = R"({"op": "rms_norm", "x_shape": [null, 2048],
      "dtype": "bf16", "eps": 1e-6, "residual": true, "weight_offset": 1,
      "rows_hint": 64})";
  char *json = nullptr;
  ASSERT_EQ(fusedopsBuildOpSource(request, &json), FUSEDOPS_COMPILE_SUCCESS)
      << lastError();
  std::string reply = json;
  fusedopsBufferFree(json);
  EXPECT_NE(reply.find(R"("args":["x","w","residual","out","sum"])"),
            std::string::npos)
      << reply;
  EXPECT_NE(reply.find("weight_offset = 1.000000e+00"), std::string::npos)
      << reply;
  EXPECT_NE(reply.find("fusedops.rows_hint = 64"), std::string::npos) << reply;

  const char *bad = R"({"op": "rms_norm", "x_shape": [4, 64],
      "dtype": "f16", "eps": 1e-6, "residual": "yes"})";
  EXPECT_EQ(fusedopsBuildOpSource(bad, &json),
            FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(json, nullptr);
  EXPECT_NE(lastError().find("'residual'"), std::string::npos) << lastError();
}

// rms_norm_grad's request: the sum's gradient adds an operand before the
// outputs; the partial sums' rows are the request's, and fewer than one is
// refused naming the field.
TEST(CompilerCAPI, BuildsRmsNormGradSources) {
  const char *request = R"({"op": "rms_norm_grad", "x_shape": [null, 2048],
      "dtype": "bf16", "eps": 1e-6, "residual_grad": true, "partials": 96})";
  char *json = nullptr;
  ASSERT_EQ(fusedopsBuildOpSource(request, &json), FUSEDOPS_COMPILE_SUCCESS)
      << lastError();
  std::string reply = json;
  fusedopsBufferFree(json);
  EXPECT_NE(
      reply.find(
          R"("args":["x","w","grad","residual_grad","dx","dw_partials","dw"])"),
      std::string::npos)
      << reply;
  EXPECT_NE(reply.find("fusedops.rms_norm_grad"), std::string::npos) << reply;
  EXPECT_NE(reply.find("%dw_partials: memref<96x2048xf32>"), std::string::npos)
      << reply;
  EXPECT_NE(reply.find("%dw: memref<2048xbf16>"), std::string::npos) << reply;

  const char *bad = R"({"op": "rms_norm_grad", "x_shape": [4, 64],
      "dtype": "f16", "eps": 1e-6, "partials": 0})";
  EXPECT_EQ(fusedopsBuildOpSource(bad, &json),
            FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(json, nullptr);
  EXPECT_NE(lastError().find("'partials' must be at least 1"),
            std::string::npos)
      << lastError();
}

// Sources nested past what MLIR's recursive parser survives (issue 14: 5,000
// regions or a 100,000-deep attribute overflow an 8 MiB stack) are refused
// before parsing by every entry point that parses on the caller's thread.
// Without the bound this test dies with SIGSEGV.
TEST(CompilerCAPI, DeeplyNestedSourcesAreRefusedNotParsed) {
  std::string deepAttr =
      "module attributes {x.a = " + std::string(200000, '[') +
      std::string(200000, ']') + "} {}";
  std::string deepRegions = "module {";
  for (int i = 0; i < 20000; ++i)
    deepRegions += "\"x.op\"() ({";
  deepRegions += std::string(20000, '}');
  for (const std::string &source : {deepAttr, deepRegions}) {
    fusedops_jit jit = nullptr;
    EXPECT_EQ(fusedopsJitCompile(source.data(), source.size(), "sm_90a", "isa",
                                 3, nullptr, nullptr, &jit),
              FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE);
    EXPECT_EQ(jit, nullptr);
    EXPECT_NE(lastError().find("deeper than 256 levels (line 1)"),
              std::string::npos)
        << lastError();
    char *json = nullptr;
    EXPECT_EQ(
        fusedopsTuneCandidates(source.data(), source.size(), "sm_90a", &json),
        FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE);
    EXPECT_EQ(json, nullptr);
    EXPECT_NE(lastError().find("deeper than 256 levels"), std::string::npos)
        << lastError();
  }
}

//===----------------------------------------------------------------------===//
// Launch plans
//===----------------------------------------------------------------------===//

// What the launch-plan pass wrote for kSource: one launch of the row
// dequantize kernel whose parameters are the three memref descriptors
// (allocated, aligned, offset, sizes, strides) of the function's arguments.
TEST(CompilerCAPI, LaunchPlanSpellsOutTheKernelParameters) {
  void *bytes = nullptr;
  size_t size = 0;
  ASSERT_EQ(fusedopsJitLower(kSource, std::strlen(kSource), "sm_90a", "isa", 3,
                             nullptr, nullptr, &bytes, &size),
            FUSEDOPS_COMPILE_SUCCESS)
      << lastError();
  fusedops_jit jit = nullptr;
  ASSERT_EQ(fusedopsJitLoad(bytes, size, &jit), FUSEDOPS_COMPILE_SUCCESS);
  fusedopsBufferFree(bytes);
  const char *plan = fusedopsJitGetLaunchPlan(jit, "kernel");
  ASSERT_NE(plan, nullptr);
  std::string text = plan;
  EXPECT_EQ(text.rfind("{\"launches\":[{", 0), 0u) << text;
  EXPECT_NE(text.find("\"module\":\"fusedops_kernels\""), std::string::npos);
  EXPECT_NE(text.find("\"kernel\":\"dequantize_row\""), std::string::npos)
      << text;
  EXPECT_NE(text.find("\"params\":[0,0,0,16,64,64,1,0,0,0,16,1,"
                      "0,0,0,16,64,64,1]"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\"param_args\":[0,0,-1,-1,-1,-1,-1,1,1,-1,-1,-1,"
                      "2,2,-1,-1,-1,-1,-1]"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("},{"), std::string::npos) << "one launch: " << text;
  EXPECT_EQ(fusedopsJitGetLaunchPlan(jit, "absent"), nullptr);
  EXPECT_EQ(fusedopsJitGetLaunchPlan(nullptr, "kernel"), nullptr);
  fusedopsJitDestroy(jit);
}

// A function with dynamic rows gets a plan that computes from the arguments'
// sizes; for given sizes it is the static plan of those sizes, and sizes it
// cannot launch are refused with a message.
TEST(CompilerCAPI, DynamicLaunchPlansEvaluateForTheSizes) {
  const char *source = R"mlir(
func.func @kernel(%q: memref<?x64xf8E4M3FN>, %s: memref<?xf32>,
                  %o: memref<?x64xf16>) attributes {llvm.emit_c_interface} {
  fusedops.dequantize ins(%q, %s : memref<?x64xf8E4M3FN>, memref<?xf32>)
      outs(%o : memref<?x64xf16>) granularity = row {fusedops.rows_hint = 16 : i64}
  return
}
)mlir";
  void *bytes = nullptr;
  size_t size = 0;
  ASSERT_EQ(fusedopsJitLower(source, std::strlen(source), "sm_90a", "isa", 3,
                             nullptr, nullptr, &bytes, &size),
            FUSEDOPS_COMPILE_SUCCESS)
      << lastError();
  fusedops_jit jit = nullptr;
  ASSERT_EQ(fusedopsJitLoad(bytes, size, &jit), FUSEDOPS_COMPILE_SUCCESS);
  fusedopsBufferFree(bytes);
  const char *templ = fusedopsJitGetLaunchPlan(jit, "kernel");
  ASSERT_NE(templ, nullptr);
  EXPECT_NE(std::string(templ).find("\"dynamic\":true"), std::string::npos)
      << templ;
  EXPECT_NE(std::string(templ).find("\"exprs\":["), std::string::npos);

  // Sizes of q [16, 64], s [16], o [16, 64]: the static form, as a static
  // module of these sizes has it (LaunchPlanSpellsOutTheKernelParameters).
  const int64_t sizes[] = {16, 64, 16, 16, 64};
  char *plan = nullptr;
  ASSERT_EQ(fusedopsJitGetLaunchPlanForSizes(jit, "kernel", sizes, 5, &plan),
            FUSEDOPS_COMPILE_SUCCESS)
      << lastError();
  std::string text = plan;
  fusedopsBufferFree(plan);
  EXPECT_EQ(text.find("dynamic"), std::string::npos) << text;
  EXPECT_EQ(text.find("exprs"), std::string::npos) << text;
  EXPECT_NE(text.find("\"params\":[0,0,0,16,64,64,1,0,0,0,16,1,"
                      "0,0,0,16,64,64,1]"),
            std::string::npos)
      << text;

  // No rows: the guard leaves the launch out, as the host code does.
  const int64_t empty[] = {0, 64, 0, 0, 64};
  ASSERT_EQ(fusedopsJitGetLaunchPlanForSizes(jit, "kernel", empty, 5, &plan),
            FUSEDOPS_COMPILE_SUCCESS);
  EXPECT_STREQ(plan, "{\"launches\":[]}");
  fusedopsBufferFree(plan);

  // Sizes the plan cannot take: said, nothing returned.
  const int64_t negative[] = {-4, 64, -4, -4, 64};
  const int64_t huge[] = {int64_t(1) << 62, 64, int64_t(1) << 62,
                          int64_t(1) << 62, 64};
  struct Refused {
    const int64_t *sizes;
    size_t count;
    const char *message;
  } refused[] = {{sizes, 1, "reads size"},
                 {negative, 5, "must not be negative"},
                 {huge, 5, "1 to 2^32 - 1"}};
  for (const Refused &r : refused) {
    plan = reinterpret_cast<char *>(1);
    EXPECT_EQ(fusedopsJitGetLaunchPlanForSizes(jit, "kernel", r.sizes, r.count,
                                               &plan),
              FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT)
        << r.message;
    EXPECT_EQ(plan, nullptr);
    EXPECT_NE(lastError().find(r.message), std::string::npos) << lastError();
  }
  EXPECT_EQ(fusedopsJitGetLaunchPlanForSizes(jit, "absent", sizes, 5, &plan),
            FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(lastError().find("has no launch plan"), std::string::npos);
  EXPECT_EQ(
      fusedopsJitGetLaunchPlanForSizes(nullptr, "kernel", sizes, 5, &plan),
      FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT);
  fusedopsJitDestroy(jit);
}

// An intermediate buffer is host work (the pipeline allocates and frees it in
// GPU memory): no plan, and the host code is still there to run.
TEST(CompilerCAPI, NoLaunchPlanWhereTheHostCodeDoesMore) {
  const char *source = R"mlir(
func.func @kernel(%x: memref<16x64xf16>, %o: memref<16x64xf16>)
    attributes {llvm.emit_c_interface} {
  %q = memref.alloc() : memref<16x64xf8E4M3FN>
  %s = memref.alloc() : memref<16xf32>
  fusedops.quantize ins(%x : memref<16x64xf16>)
      outs(%q, %s : memref<16x64xf8E4M3FN>, memref<16xf32>) granularity = row
  fusedops.dequantize ins(%q, %s : memref<16x64xf8E4M3FN>, memref<16xf32>)
      outs(%o : memref<16x64xf16>) granularity = row
  return
}
)mlir";
  fusedops_jit jit = nullptr;
  ASSERT_EQ(fusedopsJitCompile(source, std::strlen(source), "sm_90a", "isa", 3,
                               nullptr, nullptr, &jit),
            FUSEDOPS_COMPILE_SUCCESS)
      << lastError();
  EXPECT_EQ(fusedopsJitGetLaunchPlan(jit, "kernel"), nullptr);
  EXPECT_NE(fusedopsJitLookup(jit, "kernel"), nullptr);
  fusedopsJitDestroy(jit);
}

/// A ranked memref descriptor as the C interface takes it.
template <int Rank> struct MemRef {
  void *allocated;
  void *aligned;
  int64_t offset;
  int64_t sizes[Rank];
  int64_t strides[Rank];
};

/// Parses the numbers of JSON array `key` in `text` (the plans are flat).
std::vector<int64_t> jsonNumbers(const std::string &text, const char *key) {
  std::vector<int64_t> numbers;
  size_t at = text.find(std::string("\"") + key + "\":[");
  if (at == std::string::npos)
    return numbers;
  const char *p = text.c_str() + text.find('[', at) + 1;
  while (*p != ']') {
    char *end = nullptr;
    numbers.push_back(std::strtoll(p, &end, 10));
    p = *end == ',' ? end + 1 : end;
  }
  return numbers;
}

// On a GPU: the plan's launch writes exactly what the JIT'd host code writes,
// and the runtime refuses a plan whose parameters do not fit the kernel.
TEST(CompilerCAPI, LaunchPlanRunsLikeTheHostCode) {
  if (fusedopsInit() != FUSEDOPS_SUCCESS)
    GTEST_SKIP() << "no GPU: " << fusedopsGetLastErrorMessage();
  int major = 0, minor = 0;
  ASSERT_EQ(fusedopsGetDeviceArch(&major, &minor), FUSEDOPS_SUCCESS);
  const bool hopper = major == 9;
  fusedops_jit jit = nullptr;
  ASSERT_EQ(fusedopsJitCompile(
                kSource, std::strlen(kSource), hopper ? "sm_90a" : "sm_80",
                hopper ? "bin" : "isa", 3, nullptr, nullptr, &jit),
            FUSEDOPS_COMPILE_SUCCESS)
      << lastError();
  const char *planText = fusedopsJitGetLaunchPlan(jit, "kernel");
  ASSERT_NE(planText, nullptr);
  std::string text = planText;

  // Inputs: finite e4m3 bytes (0x7f/0xff are NaN) and positive scales.
  std::mt19937 rng(7);
  std::vector<uint8_t> q(16 * 64);
  for (uint8_t &byte : q)
    byte = static_cast<uint8_t>(rng() & 0xF7);
  std::vector<float> scales(16);
  for (float &scale : scales)
    scale = 0.01f + static_cast<float>(rng() % 1000) / 997.0f;
  void *dq = nullptr, *ds = nullptr, *hostOut = nullptr, *planOut = nullptr;
  ASSERT_EQ(fusedopsMalloc(q.size(), &dq), FUSEDOPS_SUCCESS);
  ASSERT_EQ(fusedopsMalloc(scales.size() * 4, &ds), FUSEDOPS_SUCCESS);
  ASSERT_EQ(fusedopsMalloc(16 * 64 * 2, &hostOut), FUSEDOPS_SUCCESS);
  ASSERT_EQ(fusedopsMalloc(16 * 64 * 2, &planOut), FUSEDOPS_SUCCESS);
  ASSERT_EQ(fusedopsMemcpyHtoD(dq, q.data(), q.size()), FUSEDOPS_SUCCESS);
  ASSERT_EQ(fusedopsMemcpyHtoD(ds, scales.data(), scales.size() * 4),
            FUSEDOPS_SUCCESS);
  ASSERT_EQ(fusedopsMemsetD8(hostOut, 0xAB, 16 * 64 * 2, nullptr),
            FUSEDOPS_SUCCESS);
  ASSERT_EQ(fusedopsMemsetD8(planOut, 0xCD, 16 * 64 * 2, nullptr),
            FUSEDOPS_SUCCESS);

  // The host code.
  MemRef<2> mq{dq, dq, 0, {16, 64}, {64, 1}};
  MemRef<1> ms{ds, ds, 0, {16}, {1}};
  MemRef<2> mo{hostOut, hostOut, 0, {16, 64}, {64, 1}};
  auto entry =
      reinterpret_cast<void (*)(MemRef<2> *, MemRef<1> *, MemRef<2> *)>(
          fusedopsJitLookup(jit, "kernel"));
  ASSERT_NE(entry, nullptr);
  entry(&mq, &ms, &mo);
  ASSERT_EQ(fusedopsTakeAsyncErrorCount(), 0) << fusedopsGetLastErrorMessage();

  // The plan.
  const void *image = nullptr;
  size_t imageSize = fusedopsJitGetKernelImage(jit, &image);
  fusedops_module module = nullptr;
  ASSERT_EQ(fusedopsModuleLoad(image, imageSize, &module), FUSEDOPS_SUCCESS)
      << fusedopsGetLastErrorMessage();
  fusedops_function function = nullptr;
  ASSERT_EQ(fusedopsModuleGetFunction(module, "dequantize_row", &function),
            FUSEDOPS_SUCCESS);
  std::vector<int64_t> grid = jsonNumbers(text, "grid"),
                       block = jsonNumbers(text, "block"),
                       params = jsonNumbers(text, "params"),
                       paramArgs = jsonNumbers(text, "param_args");
  ASSERT_EQ(grid.size(), 3u);
  ASSERT_EQ(block.size(), 3u);
  ASSERT_EQ(params.size(), paramArgs.size());
  const uint32_t g[3] = {uint32_t(grid[0]), uint32_t(grid[1]),
                         uint32_t(grid[2])};
  const uint32_t b[3] = {uint32_t(block[0]), uint32_t(block[1]),
                         uint32_t(block[2])};
  fusedops_launch_plan plan = nullptr;
  ASSERT_EQ(fusedopsLaunchPlanCreate(&plan), FUSEDOPS_SUCCESS);
  ASSERT_EQ(fusedopsLaunchPlanAdd(plan, function, g, b, 0, params.size(),
                                  params.data(), paramArgs.data()),
            FUSEDOPS_SUCCESS)
      << fusedopsGetLastErrorMessage();
  void *buffers[3] = {dq, ds, planOut};
  EXPECT_EQ(fusedopsLaunchPlanRun(plan, buffers, 2, nullptr),
            FUSEDOPS_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(fusedopsGetLastErrorMessage())
                .find("reads 3 buffers but was given 2"),
            std::string::npos)
      << fusedopsGetLastErrorMessage();
  ASSERT_EQ(fusedopsLaunchPlanRun(plan, buffers, 3, nullptr), FUSEDOPS_SUCCESS)
      << fusedopsGetLastErrorMessage();
  ASSERT_EQ(fusedopsStreamSynchronize(nullptr), FUSEDOPS_SUCCESS);

  std::vector<uint16_t> fromHost(16 * 64), fromPlan(16 * 64);
  ASSERT_EQ(fusedopsMemcpyDtoH(fromHost.data(), hostOut, 16 * 64 * 2),
            FUSEDOPS_SUCCESS);
  ASSERT_EQ(fusedopsMemcpyDtoH(fromPlan.data(), planOut, 16 * 64 * 2),
            FUSEDOPS_SUCCESS);
  EXPECT_EQ(fromHost, fromPlan);
  EXPECT_NE(fromHost[0], 0xABAB) << "the host code wrote nothing";

  // From a thread with no current context: the run makes device 0's primary
  // context current (where the module was loaded) and launches.
  ASSERT_EQ(fusedopsMemsetD8(planOut, 0xCD, 16 * 64 * 2, nullptr),
            FUSEDOPS_SUCCESS);
  ASSERT_EQ(fusedopsStreamSynchronize(nullptr), FUSEDOPS_SUCCESS);
  fusedops_status threadStatus = FUSEDOPS_ERROR_CUDA;
  std::string threadError;
  std::thread([&] {
    threadStatus = fusedopsLaunchPlanRun(plan, buffers, 3, nullptr);
    if (threadStatus == FUSEDOPS_SUCCESS)
      threadStatus = fusedopsStreamSynchronize(nullptr);
    if (threadStatus != FUSEDOPS_SUCCESS)
      threadError = fusedopsGetLastErrorMessage();
  }).join();
  EXPECT_EQ(threadStatus, FUSEDOPS_SUCCESS) << threadError;
  std::vector<uint16_t> fromThread(16 * 64);
  ASSERT_EQ(fusedopsMemcpyDtoH(fromThread.data(), planOut, 16 * 64 * 2),
            FUSEDOPS_SUCCESS);
  EXPECT_EQ(fromHost, fromThread);

  // One parameter short: the driver's parameter list says no.
  fusedops_launch_plan wrong = nullptr;
  ASSERT_EQ(fusedopsLaunchPlanCreate(&wrong), FUSEDOPS_SUCCESS);
  fusedops_status status =
      fusedopsLaunchPlanAdd(wrong, function, g, b, 0, params.size() - 1,
                            params.data(), paramArgs.data());
  if (status == FUSEDOPS_SUCCESS)
    std::printf("[ note     ] the driver has no cuFuncGetParamInfo: "
                "plans are not checked against their kernels\n");
  else
    EXPECT_NE(std::string(fusedopsGetLastErrorMessage())
                  .find("the plan does not belong to this kernel"),
              std::string::npos)
        << fusedopsGetLastErrorMessage();

  fusedopsLaunchPlanDestroy(wrong);
  fusedopsLaunchPlanDestroy(plan);
  fusedopsModuleUnload(module);
  for (void *p : {dq, ds, hostOut, planOut})
    fusedopsFree(p);
  fusedopsJitDestroy(jit);
}

} // namespace

TEST(CompilerCAPI, ScaleShapesAreTheDialectsRule) {
  int64_t shape[2] = {-7, -7};
  int rank = -1;
  ASSERT_EQ(fusedopsScaleShape("tensor", 300, 257, shape, &rank), 0);
  EXPECT_EQ(rank, 0);
  ASSERT_EQ(fusedopsScaleShape("row", 300, 257, shape, &rank), 0);
  EXPECT_EQ(rank, 1);
  EXPECT_EQ(shape[0], 300);
  ASSERT_EQ(fusedopsScaleShape("block128", 300, 257, shape, &rank), 0);
  EXPECT_EQ(rank, 2);
  EXPECT_EQ(shape[0], 3);
  EXPECT_EQ(shape[1], 3);
  // Refused, nothing written.
  shape[0] = shape[1] = -7;
  rank = -1;
  EXPECT_EQ(fusedopsScaleShape("column", 4, 4, shape, &rank), -1);
  EXPECT_EQ(fusedopsScaleShape("row", -1, 4, shape, &rank), -1);
  EXPECT_EQ(fusedopsScaleShape(nullptr, 4, 4, shape, &rank), -1);
  EXPECT_EQ(fusedopsScaleShape("row", 4, 4, nullptr, &rank), -1);
  EXPECT_EQ(fusedopsScaleShape("row", 4, 4, shape, nullptr), -1);
  EXPECT_EQ(rank, -1);
  EXPECT_EQ(shape[0], -7);
}
