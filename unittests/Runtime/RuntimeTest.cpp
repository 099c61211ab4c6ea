//===- RuntimeTest.cpp - the runtime's errors and argument checks ---------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Without a CUDA driver every runtime call must fail with
// FUSEDOPS_ERROR_NO_DRIVER and a message that names libcuda; the mgpu*
// wrappers, which cannot return errors, must count them. With a GPU, bad
// arguments must be refused with FUSEDOPS_ERROR_INVALID_ARGUMENT.
//
//===----------------------------------------------------------------------===//

#include "fusedops-c/Runtime.h"

#include "gtest/gtest.h"

#include <cstdint>
#include <string>

namespace {

bool haveGpu() { return fusedopsInit() == FUSEDOPS_SUCCESS; }

TEST(RuntimeWithoutGpu, EveryCallReportsTheMissingDriver) {
  if (haveGpu())
    GTEST_SKIP() << "a GPU is present: this checks the path without one";
  fusedops_status status = fusedopsInit();
  EXPECT_TRUE(status == FUSEDOPS_ERROR_NO_DRIVER ||
              status == FUSEDOPS_ERROR_NO_DEVICE);
  std::string message = fusedopsGetLastErrorMessage();
  EXPECT_NE(message.find("CUDA driver"), std::string::npos) << message;
  // Both names tried are reported with their own reason (the message named
  // libcuda.so.1 and then gave libcuda.so's error alone: issue 14).
  if (status == FUSEDOPS_ERROR_NO_DRIVER) {
    EXPECT_NE(message.find("libcuda.so.1: "), std::string::npos) << message;
    EXPECT_NE(message.find("; libcuda.so: "), std::string::npos) << message;
  }

  void *ptr = nullptr;
  EXPECT_EQ(fusedopsMalloc(16, &ptr), status);
  EXPECT_EQ(ptr, nullptr);
  int major = 0, minor = 0;
  EXPECT_EQ(fusedopsGetDeviceArch(&major, &minor), status);
  fusedops_module module = nullptr;
  const char ptx[] = ".version 8.0\n.target sm_90a\n";
  EXPECT_EQ(fusedopsModuleLoad(ptx, sizeof(ptx), &module), status);
  fusedops_stream stream = nullptr;
  EXPECT_EQ(fusedopsStreamCreate(&stream), status);

  // A launch plan can be built without a driver (it is host data), but not
  // filled with kernels or run.
  fusedops_launch_plan plan = nullptr;
  ASSERT_EQ(fusedopsLaunchPlanCreate(&plan), FUSEDOPS_SUCCESS);
  const uint32_t one[3] = {1, 1, 1};
  EXPECT_EQ(
      fusedopsLaunchPlanAdd(plan, nullptr, one, one, 0, 0, nullptr, nullptr),
      status);
  EXPECT_EQ(fusedopsLaunchPlanRun(plan, nullptr, 0, nullptr), status);
  EXPECT_EQ(fusedopsLaunchPlanRunOnDevice(plan, 1, nullptr, 0, nullptr),
            status);
  EXPECT_EQ(fusedopsLaunchPlanDestroy(plan), FUSEDOPS_SUCCESS);
  EXPECT_EQ(fusedopsLaunchPlanCreate(nullptr), FUSEDOPS_ERROR_INVALID_ARGUMENT);
  int count = -1, device = -1;
  EXPECT_EQ(fusedopsGetDeviceCount(&count), status);
  EXPECT_EQ(fusedopsSetDevice(0), status);
  EXPECT_EQ(fusedopsGetDevice(&device), status);
  EXPECT_EQ(device, -1);
}

TEST(RuntimeWithoutGpu, WrappersCountWhatTheyCannotReturn) {
  if (haveGpu())
    GTEST_SKIP() << "a GPU is present: this checks the path without one";
  fusedopsTakeAsyncErrorCount();
  EXPECT_EQ(mgpuMemAlloc(64, nullptr, false), nullptr);
  mgpuLaunchKernel(nullptr, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr, 0);
  EXPECT_EQ(fusedopsTakeAsyncErrorCount(), 2);
  EXPECT_EQ(fusedopsTakeAsyncErrorCount(), 0);
}

TEST(Runtime, RefusesBadArguments) {
  if (!haveGpu())
    GTEST_SKIP() << "no GPU: " << fusedopsGetLastErrorMessage();
  EXPECT_EQ(fusedopsMalloc(16, nullptr), FUSEDOPS_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(fusedopsModuleLoad(nullptr, 0, nullptr),
            FUSEDOPS_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(fusedopsStreamBeginCapture(nullptr),
            FUSEDOPS_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(
      std::string(fusedopsGetLastErrorMessage()).find("cannot be captured"),
      std::string::npos);
  // Plans: a null function, missing parameter arrays, too few buffers.
  fusedops_launch_plan plan = nullptr;
  ASSERT_EQ(fusedopsLaunchPlanCreate(&plan), FUSEDOPS_SUCCESS);
  const uint32_t one[3] = {1, 1, 1};
  EXPECT_EQ(
      fusedopsLaunchPlanAdd(plan, nullptr, one, one, 0, 0, nullptr, nullptr),
      FUSEDOPS_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(fusedopsLaunchPlanRun(plan, nullptr, 0, nullptr), FUSEDOPS_SUCCESS)
      << "an empty plan launches nothing";
  fusedopsLaunchPlanDestroy(plan);
  // Managed memory is refused, not silently used.
  fusedopsTakeAsyncErrorCount();
  EXPECT_EQ(mgpuMemAlloc(64, nullptr, true), nullptr);
  EXPECT_EQ(fusedopsTakeAsyncErrorCount(), 1);
}

// The rules of a TMA tensor map are checked before the driver is asked,
// with or without one, each with a message that names the rule.
TEST(TensorMaps, RefuseWhatTmaCannotRead) {
  alignas(64) unsigned char map[128];
  const void *matrix = reinterpret_cast<const void *>(uintptr_t(1) << 20);
  struct Case {
    const char *why;
    void *map;
    const void *global;
    uint32_t elementBytes;
    uint64_t rows, cols, stride;
    uint32_t boxRows, boxCols, swizzle;
    const char *message;
  } cases[] = {
      {"unaligned map", map + 8, matrix, 2, 64, 64, 128, 64, 64, 128,
       "64-byte aligned"},
      {"unaligned matrix", map, static_cast<const char *>(matrix) + 2, 2, 64,
       64, 128, 64, 64, 128, "16-byte aligned"},
      {"3-byte elements", map, matrix, 3, 64, 64, 192, 64, 64, 128,
       "1, 2 or 4 bytes"},
      {"no rows", map, matrix, 2, 0, 64, 128, 64, 64, 128, "1 to 2^32 rows"},
      {"odd stride", map, matrix, 2, 64, 60, 120, 64, 60, 128,
       "multiple of 16 bytes"},
      {"stride below a row", map, matrix, 2, 64, 64, 64, 64, 64, 128,
       "at least a row"},
      {"box too tall", map, matrix, 2, 512, 64, 128, 512, 64, 128,
       "1 to 256 rows"},
      {"swizzle 96", map, matrix, 2, 64, 64, 128, 64, 64, 96,
       "0, 32, 64 or 128"},
      {"box row past the swizzle", map, matrix, 2, 64, 128, 256, 64, 128, 128,
       "fit the swizzle span"},
  };
  for (const Case &c : cases) {
    EXPECT_EQ(fusedopsEncodeTensorMap2D(c.map, c.global, c.elementBytes, c.rows,
                                        c.cols, c.stride, c.boxRows, c.boxCols,
                                        c.swizzle),
              FUSEDOPS_ERROR_INVALID_ARGUMENT)
        << c.why;
    std::string message = fusedopsGetLastErrorMessage();
    EXPECT_NE(message.find("cannot encode a TMA tensor map"), std::string::npos)
        << c.why << ": " << message;
    EXPECT_NE(message.find(c.message), std::string::npos)
        << c.why << ": " << message;
  }
  // Host code's wrapper: an empty matrix is nothing to launch, not an error;
  // a bad map is an asynchronous error.
  fusedopsTakeAsyncErrorCount();
  EXPECT_EQ(mgpuTensorMapEncode2D(map, const_cast<void *>(matrix), 2, 0, 64,
                                  128, 64, 64, 128),
            0);
  EXPECT_EQ(fusedopsTakeAsyncErrorCount(), 0);
  EXPECT_EQ(mgpuTensorMapEncode2D(map, const_cast<void *>(matrix), 3, 64, 64,
                                  192, 64, 64, 128),
            0);
  EXPECT_EQ(fusedopsTakeAsyncErrorCount(), 1);
  // Plans: a map needs a launch to belong to; persistence at least a block.
  fusedops_launch_plan plan = nullptr;
  ASSERT_EQ(fusedopsLaunchPlanCreate(&plan), FUSEDOPS_SUCCESS);
  EXPECT_EQ(
      fusedopsLaunchPlanSetTensorMap(plan, 0, 0, 2, 64, 64, 128, 64, 64, 128),
      FUSEDOPS_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(fusedopsLaunchPlanSetGridPerSm(plan, 1),
            FUSEDOPS_ERROR_INVALID_ARGUMENT);
  fusedopsLaunchPlanDestroy(plan);
}

TEST(TensorMaps, EncodeWithTheDriver) {
  if (!haveGpu())
    GTEST_SKIP() << "no GPU: " << fusedopsGetLastErrorMessage();
  void *matrix = nullptr;
  ASSERT_EQ(fusedopsMalloc(64 * 4096 * 2, &matrix), FUSEDOPS_SUCCESS);
  alignas(64) unsigned char map[128] = {};
  EXPECT_EQ(
      fusedopsEncodeTensorMap2D(map, matrix, 2, 64, 4096, 8192, 64, 64, 128),
      FUSEDOPS_SUCCESS)
      << fusedopsGetLastErrorMessage();
  fusedopsTakeAsyncErrorCount();
  EXPECT_EQ(
      mgpuTensorMapEncode2D(map, matrix, 1, 64, 8192, 8192, 256, 128, 128), 1);
  EXPECT_EQ(fusedopsTakeAsyncErrorCount(), 0);
  int sms = 0;
  EXPECT_EQ(fusedopsGetMultiprocessorCount(&sms), FUSEDOPS_SUCCESS);
  EXPECT_GT(sms, 0);
  EXPECT_EQ(mgpuMultiprocessorCount(), sms);
  fusedopsFree(matrix);
}

TEST(Runtime, ReportsTheDeviceArchitecture) {
  if (!haveGpu())
    GTEST_SKIP() << "no GPU: " << fusedopsGetLastErrorMessage();
  int major = 0, minor = 0;
  ASSERT_EQ(fusedopsGetDeviceArch(&major, &minor), FUSEDOPS_SUCCESS)
      << fusedopsGetLastErrorMessage();
  EXPECT_GE(major * 10 + minor, 50);
}

// A kernel that stores its second parameter at its first: PTX, so that the
// driver compiles it for whatever card runs the test.
const char kFillPtx[] = R"(.version 7.0
.target sm_80
.address_size 64
.visible .entry fill(.param .u64 out, .param .u64 value) {
  .reg .b64 %rd<3>;
  ld.param.u64 %rd1, [out];
  ld.param.u64 %rd2, [value];
  cvta.to.global.u64 %rd1, %rd1;
  st.global.u64 [%rd1], %rd2;
  ret;
}
)";

TEST(RuntimeDevices, RefusesDevicesThatAreNotThere) {
  if (!haveGpu())
    GTEST_SKIP() << "no GPU: " << fusedopsGetLastErrorMessage();
  int count = 0;
  ASSERT_EQ(fusedopsGetDeviceCount(&count), FUSEDOPS_SUCCESS);
  ASSERT_GE(count, 1);
  EXPECT_EQ(fusedopsGetDeviceCount(nullptr), FUSEDOPS_ERROR_INVALID_ARGUMENT);
  for (int ordinal : {-1, count, 1 << 20}) {
    EXPECT_EQ(fusedopsSetDevice(ordinal), FUSEDOPS_ERROR_INVALID_ARGUMENT);
    std::string message = fusedopsGetLastErrorMessage();
    EXPECT_NE(message.find("there is no GPU " + std::to_string(ordinal)),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("sees " + std::to_string(count)), std::string::npos)
        << message;
  }
  fusedops_launch_plan plan = nullptr;
  ASSERT_EQ(fusedopsLaunchPlanCreate(&plan), FUSEDOPS_SUCCESS);
  fusedops_module module = nullptr;
  ASSERT_EQ(fusedopsModuleLoad(kFillPtx, sizeof(kFillPtx), &module),
            FUSEDOPS_SUCCESS)
      << fusedopsGetLastErrorMessage();
  fusedops_function fill = nullptr;
  ASSERT_EQ(fusedopsModuleGetFunction(module, "fill", &fill), FUSEDOPS_SUCCESS);
  const uint32_t one[3] = {1, 1, 1};
  const int64_t values[2] = {0, 7}, buffers[2] = {0, -1};
  ASSERT_EQ(fusedopsLaunchPlanAdd(plan, fill, one, one, 0, 2, values, buffers),
            FUSEDOPS_SUCCESS)
      << fusedopsGetLastErrorMessage();
  void *pointer = reinterpret_cast<void *>(uintptr_t(1) << 20);
  EXPECT_EQ(fusedopsLaunchPlanRunOnDevice(plan, count, &pointer, 1, nullptr),
            FUSEDOPS_ERROR_INVALID_ARGUMENT);
  fusedopsLaunchPlanDestroy(plan);
  EXPECT_EQ(fusedopsModuleUnload(module), FUSEDOPS_SUCCESS);
}

// One module and one plan launch on every device the process sees: the
// module is loaded into each device's context on its first launch there,
// and a run on another device leaves the caller's context current.
TEST(RuntimeDevices, OneModuleLaunchesOnEveryDevice) {
  if (!haveGpu())
    GTEST_SKIP() << "no GPU: " << fusedopsGetLastErrorMessage();
  int count = 0;
  ASSERT_EQ(fusedopsGetDeviceCount(&count), FUSEDOPS_SUCCESS);
  ASSERT_EQ(fusedopsSetDevice(0), FUSEDOPS_SUCCESS);
  fusedops_module module = nullptr;
  ASSERT_EQ(fusedopsModuleLoad(kFillPtx, sizeof(kFillPtx), &module),
            FUSEDOPS_SUCCESS)
      << fusedopsGetLastErrorMessage();
  fusedops_function fill = nullptr;
  ASSERT_EQ(fusedopsModuleGetFunction(module, "fill", &fill), FUSEDOPS_SUCCESS);
  fusedops_function again = nullptr;
  ASSERT_EQ(fusedopsModuleGetFunction(module, "fill", &again),
            FUSEDOPS_SUCCESS);
  EXPECT_EQ(fill, again) << "one handle per kernel name";
  fusedops_function missing = nullptr;
  EXPECT_EQ(fusedopsModuleGetFunction(module, "nope", &missing),
            FUSEDOPS_ERROR_CUDA);
  EXPECT_NE(std::string(fusedopsGetLastErrorMessage()).find("'nope'"),
            std::string::npos);
  fusedops_launch_plan plan = nullptr;
  ASSERT_EQ(fusedopsLaunchPlanCreate(&plan), FUSEDOPS_SUCCESS);
  const uint32_t one[3] = {1, 1, 1};
  const int64_t values[2] = {0, 0x5eed}, buffers[2] = {0, -1};
  ASSERT_EQ(fusedopsLaunchPlanAdd(plan, fill, one, one, 0, 2, values, buffers),
            FUSEDOPS_SUCCESS)
      << fusedopsGetLastErrorMessage();
  for (int device = 0; device < count; ++device) {
    SCOPED_TRACE("device " + std::to_string(device));
    ASSERT_EQ(fusedopsSetDevice(device), FUSEDOPS_SUCCESS);
    void *buffer = nullptr;
    ASSERT_EQ(fusedopsMalloc(sizeof(int64_t), &buffer), FUSEDOPS_SUCCESS);
    ASSERT_EQ(fusedopsMemsetD8(buffer, 0, sizeof(int64_t), nullptr),
              FUSEDOPS_SUCCESS);
    // Launched from device 0's context: the run switches and switches back.
    ASSERT_EQ(fusedopsSetDevice(0), FUSEDOPS_SUCCESS);
    ASSERT_EQ(fusedopsLaunchPlanRunOnDevice(plan, device, &buffer, 1, nullptr),
              FUSEDOPS_SUCCESS)
        << fusedopsGetLastErrorMessage();
    int current = -1;
    ASSERT_EQ(fusedopsGetDevice(&current), FUSEDOPS_SUCCESS);
    EXPECT_EQ(current, 0) << "the caller's context is restored";
    // The host-code path launches in the current context.
    ASSERT_EQ(fusedopsSetDevice(device), FUSEDOPS_SUCCESS);
    int64_t value = 0;
    ASSERT_EQ(fusedopsMemcpyDtoH(&value, buffer, sizeof(value)),
              FUSEDOPS_SUCCESS);
    EXPECT_EQ(value, 0x5eed);
    int64_t other = 0x0dd;
    void *params[2] = {&buffer, &other};
    ASSERT_EQ(fusedopsLaunchKernel(fill, one, one, 0, nullptr, params),
              FUSEDOPS_SUCCESS)
        << fusedopsGetLastErrorMessage();
    ASSERT_EQ(fusedopsMemcpyDtoH(&value, buffer, sizeof(value)),
              FUSEDOPS_SUCCESS);
    EXPECT_EQ(value, 0x0dd);
    EXPECT_EQ(fusedopsFree(buffer), FUSEDOPS_SUCCESS);
  }
  ASSERT_EQ(fusedopsSetDevice(0), FUSEDOPS_SUCCESS);
  fusedopsLaunchPlanDestroy(plan);
  EXPECT_EQ(fusedopsModuleUnload(module), FUSEDOPS_SUCCESS)
      << fusedopsGetLastErrorMessage();
  if (count < 2)
    GTEST_SKIP() << "ran on the only GPU; the other-device part needs two";
}

TEST(Runtime, ReportsBadImagesWithTheDriversMessage) {
  if (!haveGpu())
    GTEST_SKIP() << "no GPU: " << fusedopsGetLastErrorMessage();
  const char bad[] =
      ".version 8.0\n.target sm_80\n.address_size 64\nnonsense;\n";
  fusedops_module module = nullptr;
  EXPECT_EQ(fusedopsModuleLoad(bad, sizeof(bad), &module), FUSEDOPS_ERROR_CUDA);
  EXPECT_NE(
      std::string(fusedopsGetLastErrorMessage()).find("cuModuleLoadDataEx"),
      std::string::npos)
      << fusedopsGetLastErrorMessage();
}

} // namespace

#include "fusedops/Runtime/Runtime.h"

namespace {

using namespace mlir::fusedops;

TEST(RuntimeCxx, ErrorsCarryTheRuntimesMessage) {
  if (haveGpu())
    GTEST_SKIP() << "a GPU is present: this checks the path without one";
  llvm::Error error = runtime::initialize();
  ASSERT_TRUE(static_cast<bool>(error));
  std::string message = llvm::toString(std::move(error));
  EXPECT_NE(message.find("CUDA driver"), std::string::npos) << message;
  auto buffer = runtime::DeviceBuffer::allocate(64);
  ASSERT_FALSE(static_cast<bool>(buffer));
  llvm::consumeError(buffer.takeError());
  auto stream = runtime::Stream::create();
  ASSERT_FALSE(static_cast<bool>(stream));
  llvm::consumeError(stream.takeError());
}

TEST(RuntimeCxx, BuffersRoundTripAndFreeThemselves) {
  if (!haveGpu())
    GTEST_SKIP() << "no GPU: " << fusedopsGetLastErrorMessage();
  auto buffer = runtime::DeviceBuffer::allocate(4 * sizeof(float));
  ASSERT_TRUE(static_cast<bool>(buffer)) << llvm::toString(buffer.takeError());
  float in[4] = {1.5f, -2.0f, 3.25f, 0.0f}, out[4] = {};
  ASSERT_FALSE(static_cast<bool>(buffer->copyFromHost(in)));
  ASSERT_FALSE(static_cast<bool>(buffer->copyToHost(out)));
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(in[i], out[i]);
  auto module = runtime::Module::load(llvm::StringRef("not an image", 12));
  ASSERT_FALSE(static_cast<bool>(module));
  llvm::consumeError(module.takeError());
}

} // namespace
