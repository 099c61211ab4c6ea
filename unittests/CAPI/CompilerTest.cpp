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

#include <gtest/gtest.h>

#include <cstring>
#include <string>

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
  EXPECT_EQ(version.rfind("fusedops-capi 2; llvm 22.", 0), 0u) << version;
  EXPECT_NE(version.find("; ptxas "), std::string::npos) << version;
}

TEST(CompilerCAPI, CompilesAndFindsTheFunction) {
  fusedops_jit jit = nullptr;
  ASSERT_EQ(fusedopsJitCompile(kSource, std::strlen(kSource), "sm_90a", "isa",
                               3, nullptr, &jit),
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
                             nullptr, &bytes, &size),
            FUSEDOPS_COMPILE_SUCCESS)
      << lastError();
  ASSERT_GT(size, 4u);
  EXPECT_EQ(std::memcmp(bytes, "ML\xEFR", 4), 0) << "not MLIR bytecode";
  fusedops_jit loaded = nullptr;
  ASSERT_EQ(fusedopsJitLoad(bytes, size, &loaded), FUSEDOPS_COMPILE_SUCCESS)
      << lastError();
  fusedops_jit direct = nullptr;
  ASSERT_EQ(fusedopsJitCompile(kSource, std::strlen(kSource), "sm_80", "isa", 3,
                               nullptr, &direct),
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
  EXPECT_NE(lastError().find("no MLIR bytecode header"), std::string::npos)
      << lastError();

  // Truncated bytecode.
  void *bytes = nullptr;
  size_t size = 0;
  ASSERT_EQ(fusedopsJitLower(kSource, std::strlen(kSource), "sm_90a", "isa", 3,
                             nullptr, &bytes, &size),
            FUSEDOPS_COMPILE_SUCCESS);
  EXPECT_EQ(fusedopsJitLoad(bytes, size / 2, &jit),
            FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE);
  EXPECT_EQ(jit, nullptr);
  EXPECT_FALSE(lastError().empty());
  fusedopsBufferFree(bytes);
}

TEST(CompilerCAPI, FailuresComeBackWithDiagnostics) {
  fusedops_jit jit = nullptr;
  const char *bad = "func.func @kernel(";
  EXPECT_EQ(fusedopsJitCompile(bad, std::strlen(bad), "sm_90a", "isa", 3,
                               nullptr, &jit),
            FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE);
  EXPECT_NE(lastError().find("expected"), std::string::npos) << lastError();
  EXPECT_EQ(fusedopsJitCompile(kSource, std::strlen(kSource), "sm_70", "isa", 3,
                               nullptr, &jit),
            FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE);
  EXPECT_NE(lastError().find("sm_70"), std::string::npos) << lastError();
  EXPECT_EQ(fusedopsJitCompile(nullptr, 0, "sm_90a", "isa", 3, nullptr, &jit),
            FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT);
  void *bytes = nullptr;
  size_t size = 0;
  EXPECT_EQ(fusedopsJitLower(kSource, std::strlen(kSource), "sm_90a", "elf", 3,
                             nullptr, &bytes, &size),
            FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE);
  EXPECT_NE(lastError().find("unknown format 'elf'"), std::string::npos);
  EXPECT_EQ(bytes, nullptr);
}

} // namespace
