//===- CudaRuntime.cpp - the fusedops CUDA runtime ------------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Implements fusedops-c/Runtime.h and the mgpu* functions that MLIR's
// gpu-to-llvm host code calls, on the CUDA driver API opened with dlopen.
//
// One departure from upstream's CudaRuntimeWrappers.cpp, for hosts that call
// compiled code many times (PyTorch, benchmarks): with a current stream set
// (fusedopsSetCurrentStream), mgpuStreamCreate returns it and
// mgpuStreamSynchronize/Destroy leave it alone, so a launch is asynchronous on
// the caller's stream and can be captured in a CUDA graph. (MLIR 22's host
// code loads the kernels' module once, in a global constructor, and unloads
// it in a destructor.)
//
// Devices: a module (fusedopsModuleLoad, mgpuModuleLoad) keeps its image and
// is loaded into each CUDA context that launches one of its kernels, on first
// use there; a function handle resolves to that context's CUfunction at each
// launch. So one compiled module serves every GPU of the machine, and a
// launch runs in the context current on the calling thread (PyTorch's for
// the tensors' device), or, for fusedopsLaunchPlanRunOnDevice, in the given
// device's context (its primary context where the current one is another
// device's).
//
//===----------------------------------------------------------------------===//

#include "fusedops-c/Runtime.h"

#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

//===----------------------------------------------------------------------===//
// The slice of the CUDA driver API we use, declared here so that building
// fusedops needs no CUDA headers.
//===----------------------------------------------------------------------===//

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUevent = struct CUevent_st *;
using CUgraph = struct CUgraph_st *;
using CUgraphExec = struct CUgraphExec_st *;

constexpr CUresult kCudaSuccess = 0;
constexpr int kAttrComputeCapabilityMajor = 75;
constexpr int kAttrComputeCapabilityMinor = 76;
constexpr unsigned kStreamNonBlocking = 1;
constexpr int kJitErrorLogBuffer = 5;
constexpr int kJitErrorLogBufferSize = 6;
/// CU_STREAM_CAPTURE_MODE_THREAD_LOCAL: other threads' CUDA calls may go on.
constexpr int kCaptureModeThreadLocal = 1;
/// CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: a kernel's opt-in to
/// more than 48 KiB of dynamic shared memory.
constexpr int kFuncAttrMaxDynamicSharedBytes = 8;
/// CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH: blocks per cluster along x of
/// a kernel compiled with a fixed cluster.
constexpr int kFuncAttrRequiredClusterWidth = 11;

struct Driver {
  void *handle = nullptr;
  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDeviceGetCount)(int *) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice *, int) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice) = nullptr;
  CUresult (*cuCtxGetCurrent)(CUcontext *) = nullptr;
  CUresult (*cuCtxSetCurrent)(CUcontext) = nullptr;
  CUresult (*cuCtxGetDevice)(CUdevice *) = nullptr;
  CUresult (*cuModuleLoadData)(CUmodule *, const void *) = nullptr;
  CUresult (*cuModuleLoadDataEx)(CUmodule *, const void *, unsigned, int *,
                                 void **) = nullptr;
  CUresult (*cuModuleUnload)(CUmodule) = nullptr;
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule,
                                  const char *) = nullptr;
  CUresult (*cuFuncSetAttribute)(CUfunction, int, int) = nullptr;
  CUresult (*cuFuncGetAttribute)(int *, int, CUfunction) = nullptr;
  CUresult (*cuOccupancyMaxActiveBlocksPerMultiprocessor)(int *, CUfunction,
                                                          int,
                                                          size_t) = nullptr;
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, unsigned, CUstream, void **,
                             void **) = nullptr;
  CUresult (*cuLaunchCooperativeKernel)(CUfunction, unsigned, unsigned,
                                        unsigned, unsigned, unsigned, unsigned,
                                        unsigned, CUstream, void **) = nullptr;
  CUresult (*cuStreamCreate)(CUstream *, unsigned) = nullptr;
  CUresult (*cuStreamDestroy)(CUstream) = nullptr;
  CUresult (*cuStreamSynchronize)(CUstream) = nullptr;
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t) = nullptr;
  CUresult (*cuMemFree)(CUdeviceptr) = nullptr;
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t) = nullptr;
  CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t) = nullptr;
  CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, size_t,
                                CUstream) = nullptr;
  CUresult (*cuMemsetD8Async)(CUdeviceptr, unsigned char, size_t,
                              CUstream) = nullptr;
  CUresult (*cuMemsetD32Async)(CUdeviceptr, unsigned, size_t,
                               CUstream) = nullptr;
  CUresult (*cuMemcpyAsync)(CUdeviceptr, CUdeviceptr, size_t,
                            CUstream) = nullptr;
  CUresult (*cuEventCreate)(CUevent *, unsigned) = nullptr;
  CUresult (*cuEventRecord)(CUevent, CUstream) = nullptr;
  CUresult (*cuEventSynchronize)(CUevent) = nullptr;
  CUresult (*cuEventElapsedTime)(float *, CUevent, CUevent) = nullptr;
  CUresult (*cuEventDestroy)(CUevent) = nullptr;
  CUresult (*cuStreamBeginCapture)(CUstream, int) = nullptr;
  CUresult (*cuStreamEndCapture)(CUstream, CUgraph *) = nullptr;
  CUresult (*cuGraphInstantiateWithFlags)(CUgraphExec *, CUgraph,
                                          unsigned long long) = nullptr;
  CUresult (*cuGraphLaunch)(CUgraphExec, CUstream) = nullptr;
  CUresult (*cuGraphExecDestroy)(CUgraphExec) = nullptr;
  CUresult (*cuGraphDestroy)(CUgraph) = nullptr;
  CUresult (*cuGetErrorName)(CUresult, const char **) = nullptr;
  /// Optional (CUDA 12.4+): checks launch plans against their kernels.
  CUresult (*cuFuncGetParamInfo)(CUfunction, size_t, size_t *,
                                 size_t *) = nullptr;
  CUresult (*cuGetErrorString)(CUresult, const char **) = nullptr;
  /// Optional (CUDA 12.0+): TMA tensor maps, for the sm_90a GEMM kernels.
  CUresult (*cuTensorMapEncodeTiled)(void *, int, uint32_t, void *,
                                     const uint64_t *, const uint64_t *,
                                     const uint32_t *, const uint32_t *, int,
                                     int, int, int) = nullptr;
};

/// The last error message of this thread. A fixed buffer, not a
/// std::string: mgpu* calls from JIT-compiled global destructors can come
/// after thread-local destructors have run at process exit.
thread_local char lastErrorBuffer[2048];
struct LastError {
  LastError &operator=(const std::string &message) {
    size_t n = std::min(message.size(), sizeof(lastErrorBuffer) - 1);
    std::memcpy(lastErrorBuffer, message.data(), n);
    lastErrorBuffer[n] = '\0';
    return *this;
  }
  operator std::string() const { return std::string(lastErrorBuffer); }
  const char *c_str() const { return lastErrorBuffer; }
};
LastError lastError;
thread_local int asyncErrorCount = 0;
thread_local fusedops_stream currentStream = nullptr;
thread_local bool hasCurrentStream = false;

fusedops_status fail(fusedops_status status, const std::string &message) {
  lastError = message;
  return status;
}

/// Loads libcuda and resolves every entry point, once per process.
const Driver *loadDriver(std::string &error) {
  static Driver driver;
  static std::string loadError;
  static std::once_flag once;
  std::call_once(once, [] {
    // The versioned name is the driver's; the bare one, a development
    // link, is the fallback. Both failures are reported.
    const char *names[] = {"libcuda.so.1", "libcuda.so"};
    std::string reasons;
    for (const char *name : names) {
      if ((driver.handle = dlopen(name, RTLD_NOW | RTLD_LOCAL)))
        break;
      const char *why = dlerror();
      reasons += std::string(reasons.empty() ? "" : "; ") +
                 (why ? why : std::string(name) + ": not found");
    }
    if (!driver.handle) {
      loadError = "cannot load the CUDA driver (" + reasons +
                  "); running kernels needs an NVIDIA GPU and its driver";
      return;
    }
    bool ok = true;
    auto bind = [&](auto &fn, std::initializer_list<const char *> symbols) {
      for (const char *symbol : symbols)
        if (void *address = dlsym(driver.handle, symbol)) {
          fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(address);
          return;
        }
      ok = false;
      loadError = std::string("the CUDA driver lacks ") + *symbols.begin() +
                  "; update the NVIDIA driver";
    };
    bind(driver.cuInit, {"cuInit"});
    bind(driver.cuDeviceGetCount, {"cuDeviceGetCount"});
    bind(driver.cuDeviceGet, {"cuDeviceGet"});
    bind(driver.cuDeviceGetAttribute, {"cuDeviceGetAttribute"});
    bind(driver.cuDevicePrimaryCtxRetain, {"cuDevicePrimaryCtxRetain"});
    bind(driver.cuCtxGetCurrent, {"cuCtxGetCurrent"});
    bind(driver.cuCtxSetCurrent, {"cuCtxSetCurrent"});
    bind(driver.cuCtxGetDevice, {"cuCtxGetDevice"});
    bind(driver.cuModuleLoadData, {"cuModuleLoadData"});
    bind(driver.cuModuleLoadDataEx, {"cuModuleLoadDataEx"});
    bind(driver.cuModuleUnload, {"cuModuleUnload"});
    bind(driver.cuModuleGetFunction, {"cuModuleGetFunction"});
    bind(driver.cuFuncSetAttribute, {"cuFuncSetAttribute"});
    bind(driver.cuFuncGetAttribute, {"cuFuncGetAttribute"});
    bind(driver.cuOccupancyMaxActiveBlocksPerMultiprocessor,
         {"cuOccupancyMaxActiveBlocksPerMultiprocessor"});
    bind(driver.cuLaunchKernel, {"cuLaunchKernel"});
    bind(driver.cuLaunchCooperativeKernel, {"cuLaunchCooperativeKernel"});
    bind(driver.cuStreamCreate, {"cuStreamCreate"});
    bind(driver.cuStreamDestroy, {"cuStreamDestroy_v2", "cuStreamDestroy"});
    bind(driver.cuStreamSynchronize, {"cuStreamSynchronize"});
    bind(driver.cuMemAlloc, {"cuMemAlloc_v2"});
    bind(driver.cuMemFree, {"cuMemFree_v2"});
    bind(driver.cuMemcpyHtoD, {"cuMemcpyHtoD_v2"});
    bind(driver.cuMemcpyDtoH, {"cuMemcpyDtoH_v2"});
    bind(driver.cuMemcpyDtoDAsync, {"cuMemcpyDtoDAsync_v2"});
    bind(driver.cuMemsetD8Async, {"cuMemsetD8Async"});
    bind(driver.cuMemsetD32Async, {"cuMemsetD32Async"});
    bind(driver.cuMemcpyAsync, {"cuMemcpyAsync"});
    bind(driver.cuEventCreate, {"cuEventCreate"});
    bind(driver.cuEventRecord, {"cuEventRecord"});
    bind(driver.cuEventSynchronize, {"cuEventSynchronize"});
    bind(driver.cuEventElapsedTime,
         {"cuEventElapsedTime_v2", "cuEventElapsedTime"});
    bind(driver.cuEventDestroy, {"cuEventDestroy_v2", "cuEventDestroy"});
    bind(driver.cuStreamBeginCapture,
         {"cuStreamBeginCapture_v2", "cuStreamBeginCapture"});
    bind(driver.cuStreamEndCapture, {"cuStreamEndCapture"});
    bind(driver.cuGraphInstantiateWithFlags, {"cuGraphInstantiateWithFlags"});
    bind(driver.cuGraphLaunch, {"cuGraphLaunch"});
    bind(driver.cuGraphExecDestroy, {"cuGraphExecDestroy"});
    bind(driver.cuGraphDestroy, {"cuGraphDestroy"});
    bind(driver.cuGetErrorName, {"cuGetErrorName"});
    bind(driver.cuGetErrorString, {"cuGetErrorString"});
    if (void *address = dlsym(driver.handle, "cuFuncGetParamInfo"))
      driver.cuFuncGetParamInfo =
          reinterpret_cast<decltype(driver.cuFuncGetParamInfo)>(address);
    if (void *address = dlsym(driver.handle, "cuTensorMapEncodeTiled"))
      driver.cuTensorMapEncodeTiled =
          reinterpret_cast<decltype(driver.cuTensorMapEncodeTiled)>(address);
    if (!ok) {
      dlclose(driver.handle);
      driver.handle = nullptr;
    }
  });
  error = loadError;
  return driver.handle ? &driver : nullptr;
}

const Driver *driverOrNull() {
  std::string error;
  return loadDriver(error);
}

/// A CUtensorMap.
constexpr size_t kTensorMapBytes = 128;

/// Turns a failed driver call into FUSEDOPS_ERROR_CUDA with its name.
fusedops_status check(CUresult result, const char *call) {
  if (result == kCudaSuccess)
    return FUSEDOPS_SUCCESS;
  const Driver *driver = driverOrNull();
  const char *name = nullptr, *text = nullptr;
  if (driver) {
    driver->cuGetErrorName(result, &name);
    driver->cuGetErrorString(result, &text);
  }
  return fail(FUSEDOPS_ERROR_CUDA,
              std::string(call) + " failed: " + (name ? name : "CUDA error ") +
                  (name ? "" : std::to_string(result)) +
                  (text ? std::string(" (") + text + ")" : ""));
}

#define FUSEDOPS_CHECK(call)                                                   \
  do {                                                                         \
    if (fusedops_status status_ = check((call), #call))                        \
      return status_;                                                          \
  } while (false)

/// The driver, loaded and initialised (cuInit).
fusedops_status initialized(const Driver *&driver) {
  std::string error;
  driver = loadDriver(error);
  if (!driver)
    return fail(FUSEDOPS_ERROR_NO_DRIVER, error);
  static CUresult initResult = driver->cuInit(0);
  if (initResult != kCudaSuccess) {
    check(initResult, "cuInit(0)");
    return fail(FUSEDOPS_ERROR_NO_DEVICE,
                std::string(lastError) +
                    "; is an NVIDIA GPU visible to this process?");
  }
  return FUSEDOPS_SUCCESS;
}

/// Most devices whose primary contexts the runtime retains.
constexpr int kMaxDevices = 64;

/// Device `ordinal`'s primary context (the one PyTorch and the CUDA runtime
/// API use), retained on first use and held until the process exits.
fusedops_status primaryContext(const Driver *driver, int ordinal,
                               CUcontext *context) {
  static std::array<std::atomic<CUcontext>, kMaxDevices> contexts{};
  static std::mutex mutex;
  if (ordinal >= 0 && ordinal < kMaxDevices)
    if ((*context = contexts[ordinal].load(std::memory_order_acquire)))
      return FUSEDOPS_SUCCESS;
  int count = 0;
  FUSEDOPS_CHECK(driver->cuDeviceGetCount(&count));
  if (count == 0)
    return fail(FUSEDOPS_ERROR_NO_DEVICE, "the CUDA driver reports no GPU");
  if (ordinal < 0 || ordinal >= count || ordinal >= kMaxDevices)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "there is no GPU " + std::to_string(ordinal) +
                    ": this process sees " + std::to_string(count) +
                    " (numbered from 0, after CUDA_VISIBLE_DEVICES)");
  std::lock_guard<std::mutex> lock(mutex);
  if ((*context = contexts[ordinal].load(std::memory_order_acquire)))
    return FUSEDOPS_SUCCESS;
  CUdevice device = 0;
  FUSEDOPS_CHECK(driver->cuDeviceGet(&device, ordinal));
  CUcontext retained = nullptr;
  FUSEDOPS_CHECK(driver->cuDevicePrimaryCtxRetain(&retained, device));
  contexts[ordinal].store(retained, std::memory_order_release);
  *context = retained;
  return FUSEDOPS_SUCCESS;
}

/// The driver, initialised, with a context current on this thread: the
/// caller's if it has one (PyTorch's), else device 0's primary context.
fusedops_status ready(const Driver *&driver) {
  if (fusedops_status status = initialized(driver))
    return status;
  CUcontext context = nullptr;
  FUSEDOPS_CHECK(driver->cuCtxGetCurrent(&context));
  if (context)
    return FUSEDOPS_SUCCESS;
  if (fusedops_status status = primaryContext(driver, 0, &context))
    return status;
  FUSEDOPS_CHECK(driver->cuCtxSetCurrent(context));
  return FUSEDOPS_SUCCESS;
}

#define FUSEDOPS_READY(driver)                                                 \
  const Driver *driver = nullptr;                                              \
  if (fusedops_status status_ = ready(driver))                                 \
  return status_

/// The context current on this thread; where none is, device 0's primary
/// context, made current (ready()).
fusedops_status currentContext(const Driver *driver, CUcontext *context) {
  FUSEDOPS_CHECK(driver->cuCtxGetCurrent(context));
  if (*context)
    return FUSEDOPS_SUCCESS;
  FUSEDOPS_READY(loaded);
  FUSEDOPS_CHECK(loaded->cuCtxGetCurrent(context));
  return FUSEDOPS_SUCCESS;
}

/// Whether an image is PTX text rather than a cubin/fatbin.
bool isPtx(const void *image, size_t size) {
  const char *text = static_cast<const char *>(image);
  // ELF cubins start with 0x7f 'E'; fatbins with a magic 0xba55ed50; PTX is
  // text and always has a .version directive near the top.
  if (size >= 4 && text[0] == 0x7f && text[1] == 'E')
    return false;
  size_t limit = size < 4096 ? size : 4096;
  return std::string(text, limit).find(".version") != std::string::npos;
}

/// Loads `image` (PTX text NUL-terminated, or a cubin/fatbin) into the
/// current context.
fusedops_status loadImage(const Driver *driver, const std::string &image,
                          bool ptx, CUmodule *module) {
  if (!ptx) {
    FUSEDOPS_CHECK(driver->cuModuleLoadData(module, image.data()));
    return FUSEDOPS_SUCCESS;
  }
  // The driver compiles PTX for this device; keep its log for errors.
  char log[8192] = {0};
  int options[] = {kJitErrorLogBuffer, kJitErrorLogBufferSize};
  void *values[] = {log, reinterpret_cast<void *>(sizeof(log))};
  CUresult result =
      driver->cuModuleLoadDataEx(module, image.c_str(), 2, options, values);
  if (result != kCudaSuccess) {
    check(result, "cuModuleLoadDataEx (PTX JIT)");
    return fail(FUSEDOPS_ERROR_CUDA, std::string(lastError) + ": " + log);
  }
  return FUSEDOPS_SUCCESS;
}

/// The SM count of the current context's device. Asked at every launch of
/// a persistent kernel: cached per device.
fusedops_status getMultiprocessorCount(const Driver *driver, int *count) {
  static std::atomic<int> counts[kMaxDevices];
  CUdevice device = 0;
  FUSEDOPS_CHECK(driver->cuCtxGetDevice(&device));
  if (device >= 0 && device < kMaxDevices)
    if (int known = counts[device].load(std::memory_order_relaxed)) {
      *count = known;
      return FUSEDOPS_SUCCESS;
    }
  constexpr int kAttrMultiprocessorCount = 16;
  FUSEDOPS_CHECK(
      driver->cuDeviceGetAttribute(count, kAttrMultiprocessorCount, device));
  if (device >= 0 && device < kMaxDevices)
    counts[device].store(*count, std::memory_order_relaxed);
  return FUSEDOPS_SUCCESS;
}

/// Records an error from an mgpu* wrapper, which has no way to return one.
void reportAsync(const char *what) {
  ++asyncErrorCount;
  std::fprintf(stderr, "fusedops runtime: %s: %s\n", what, lastError.c_str());
}

/// Most contexts one module is loaded into (one per GPU in practice).
constexpr int kMaxContexts = 64;

} // namespace

//===----------------------------------------------------------------------===//
// Modules and functions, loaded per context
//===----------------------------------------------------------------------===//

/// A kernel image and the contexts it is loaded into. Entries are appended
/// under `mutex` and published through `numContexts`, so launches find their
/// context's module without a lock.
struct fusedops_module_st {
  std::string image;
  bool ptx = false;
  std::mutex mutex;
  struct Loaded {
    CUcontext context = nullptr;
    CUmodule module = nullptr;
  };
  std::array<Loaded, kMaxContexts> loaded;
  std::atomic<int> numLoaded{0};
  /// The functions handed out, one per name; freed with the module.
  std::vector<std::unique_ptr<fusedops_function_st>> functions;
};

/// A kernel of a module, resolved to a CUfunction in each context that
/// launches it (on first use there).
struct fusedops_function_st {
  fusedops_module_st *module = nullptr;
  std::string name;
  struct Resolved {
    CUcontext context = nullptr;
    CUfunction function = nullptr;
    /// The dynamic shared memory this context's function is opted into.
    std::atomic<uint32_t> sharedBytes{0};
    /// Blocks per cluster along x the kernel was compiled for (PTX
    /// .reqnctapercluster; 1 without): a grid must be a multiple of it.
    uint32_t clusterWidth = 1;
    /// The kernel waits at a grid-wide barrier (FUSEDOPS_COOPERATIVE_MARK):
    /// launched cooperatively, its grid capped at the blocks that fit.
    bool cooperative = false;
    /// Cooperative kernels: the blocks an SM holds at once as the driver
    /// counts them (low 32 bits; 0: not asked yet), for the dynamic shared
    /// memory in the high 32 bits.
    std::atomic<uint64_t> residentPerSm{0};
  };
  std::array<Resolved, kMaxContexts> resolved;
  std::atomic<int> numResolved{0};
};

/// `module` in the current context `context`, loaded there on first use.
/// The caller holds module->mutex.
static fusedops_status moduleIn(const Driver *driver, fusedops_module module,
                                CUcontext context, CUmodule *out) {
  int n = module->numLoaded.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i)
    if (module->loaded[i].context == context) {
      *out = module->loaded[i].module;
      return FUSEDOPS_SUCCESS;
    }
  if (n == kMaxContexts)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "a fusedops module is loaded into " +
                    std::to_string(kMaxContexts) +
                    " CUDA contexts already; launch from fewer contexts");
  if (fusedops_status status =
          loadImage(driver, module->image, module->ptx, out))
    return status;
  module->loaded[n].context = context;
  module->loaded[n].module = *out;
  module->numLoaded.store(n + 1, std::memory_order_release);
  return FUSEDOPS_SUCCESS;
}

/// `function` in the current context `context` (its module loaded there on
/// first use), opted into `sharedBytes` of dynamic shared memory. Without
/// the opt-in a block gets 48 KiB in all, static and reserved shared memory
/// included: a kernel asking for exactly 48 KiB of dynamic memory already
/// fails to launch (seen on an H100), so every kernel with dynamic memory
/// opts in. `*out` is the context's entry: the CUfunction, its cluster
/// width, whether it is launched cooperatively.
static fusedops_status functionIn(const Driver *driver,
                                  fusedops_function function, CUcontext context,
                                  uint32_t sharedBytes,
                                  fusedops_function_st::Resolved **out) {
  fusedops_function_st::Resolved *resolved = nullptr;
  int n = function->numResolved.load(std::memory_order_acquire);
  for (int i = 0; i < n && !resolved; ++i)
    if (function->resolved[i].context == context)
      resolved = &function->resolved[i];
  if (!resolved) {
    std::lock_guard<std::mutex> lock(function->module->mutex);
    n = function->numResolved.load(std::memory_order_acquire);
    for (int i = 0; i < n && !resolved; ++i)
      if (function->resolved[i].context == context)
        resolved = &function->resolved[i];
    if (!resolved) {
      if (n == kMaxContexts)
        return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                    "kernel '" + function->name + "' is loaded into " +
                        std::to_string(kMaxContexts) +
                        " CUDA contexts already");
      CUmodule module = nullptr;
      if (fusedops_status status =
              moduleIn(driver, function->module, context, &module))
        return status;
      CUfunction cuFunction = nullptr;
      CUresult result = driver->cuModuleGetFunction(&cuFunction, module,
                                                    function->name.c_str());
      if (result != kCudaSuccess) {
        check(result, "cuModuleGetFunction");
        return fail(FUSEDOPS_ERROR_CUDA, std::string(lastError) +
                                             " for kernel '" + function->name +
                                             "'");
      }
      resolved = &function->resolved[n];
      resolved->context = context;
      resolved->function = cuFunction;
      int width = 0;
      if (driver->cuFuncGetAttribute(&width, kFuncAttrRequiredClusterWidth,
                                     cuFunction) == kCudaSuccess &&
          width > 1)
        resolved->clusterWidth = static_cast<uint32_t>(width);
      resolved->cooperative =
          function->name.find(FUSEDOPS_COOPERATIVE_MARK) != std::string::npos;
      function->numResolved.store(n + 1, std::memory_order_release);
    }
  }
  // Raised only: the largest request of any launch in this context stands.
  uint32_t allowed = resolved->sharedBytes.load(std::memory_order_relaxed);
  if (sharedBytes > allowed) {
    FUSEDOPS_CHECK(driver->cuFuncSetAttribute(resolved->function,
                                              kFuncAttrMaxDynamicSharedBytes,
                                              static_cast<int>(sharedBytes)));
    resolved->sharedBytes.store(sharedBytes, std::memory_order_relaxed);
  }
  *out = resolved;
  return FUSEDOPS_SUCCESS;
}

/// Launches `resolved`'s kernel; a cooperative one (its grid capped at the
/// blocks the device holds at once: such kernels take any grid) with
/// cuLaunchCooperativeKernel, which fails where the blocks cannot all be
/// resident (e.g. an MPS client's SM share), so that no block waits at the
/// grid barrier for one that cannot start.
static fusedops_status
launchResolved(const Driver *driver, fusedops_function_st::Resolved &resolved,
               const std::string &name, uint32_t gridX, uint32_t gridY,
               uint32_t gridZ, const uint32_t block[3], uint32_t sharedBytes,
               CUstream stream, void **params) {
  if (!resolved.cooperative) {
    FUSEDOPS_CHECK(driver->cuLaunchKernel(
        resolved.function, gridX, gridY, gridZ, block[0], block[1], block[2],
        sharedBytes, stream, params, nullptr));
    return FUSEDOPS_SUCCESS;
  }
  // Cached with the shared memory it was counted for (upper 32 bits).
  uint64_t cached = resolved.residentPerSm.load(std::memory_order_relaxed);
  uint32_t perSm = static_cast<uint32_t>(cached);
  if (!perSm || cached >> 32 != sharedBytes) {
    int blocks = 0;
    FUSEDOPS_CHECK(driver->cuOccupancyMaxActiveBlocksPerMultiprocessor(
        &blocks, resolved.function,
        static_cast<int>(block[0] * block[1] * block[2]), sharedBytes));
    if (blocks <= 0)
      return fail(FUSEDOPS_ERROR_CUDA,
                  "kernel '" + name +
                      "' waits for all its blocks at a grid barrier, but "
                      "not one block of it fits on an SM of this device");
    perSm = static_cast<uint32_t>(blocks);
    resolved.residentPerSm.store(uint64_t(sharedBytes) << 32 | perSm,
                                 std::memory_order_relaxed);
  }
  int sms = 0;
  if (fusedops_status status = getMultiprocessorCount(driver, &sms))
    return status;
  uint64_t resident = uint64_t(sms) * perSm / (uint64_t(gridY) * gridZ);
  gridX = static_cast<uint32_t>(
      std::max<uint64_t>(std::min<uint64_t>(gridX, resident), 1));
  CUresult result = driver->cuLaunchCooperativeKernel(
      resolved.function, gridX, gridY, gridZ, block[0], block[1], block[2],
      sharedBytes, stream, params);
  if (result != kCudaSuccess) {
    check(result, "cuLaunchCooperativeKernel");
    return fail(FUSEDOPS_ERROR_CUDA,
                std::string(lastError) + " for kernel '" + name +
                    "', which needs all its blocks resident at once (a "
                    "grid-wide barrier): run it where the process has the "
                    "whole GPU (not an MPS client with an SM limit)");
  }
  return FUSEDOPS_SUCCESS;
}

static fusedops_status loadModule(const void *image, size_t size,
                                  fusedops_module *module) {
  FUSEDOPS_READY(driver);
  if (!image || !module || size == 0)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsModuleLoad needs a non-empty image and a module "
                "pointer");
  auto loaded = std::make_unique<fusedops_module_st>();
  loaded->ptx = isPtx(image, size);
  loaded->image.assign(static_cast<const char *>(image), size);
  // Loaded here now, so that a bad image fails at once, not at a launch.
  CUcontext context = nullptr;
  CUmodule cuModule = nullptr;
  if (fusedops_status status = currentContext(driver, &context))
    return status;
  {
    std::lock_guard<std::mutex> lock(loaded->mutex);
    if (fusedops_status status =
            moduleIn(driver, loaded.get(), context, &cuModule))
      return status;
  }
  *module = loaded.release();
  return FUSEDOPS_SUCCESS;
}

/// Unloads `module` from every context it was loaded into, then frees it.
/// Contexts already gone (destroyed, or the driver shut down at process
/// exit) are skipped.
static fusedops_status unloadModule(const Driver *driver,
                                    fusedops_module module) {
  std::unique_ptr<fusedops_module_st> owned(module);
  constexpr CUresult kDeinitialized = 4, kInvalidContext = 201,
                     kContextDestroyed = 709;
  CUcontext current = nullptr;
  CUresult result = driver->cuCtxGetCurrent(&current);
  if (result == kDeinitialized)
    return FUSEDOPS_SUCCESS;
  FUSEDOPS_CHECK(result);
  fusedops_status status = FUSEDOPS_SUCCESS;
  CUcontext made = current;
  for (int i = 0, n = module->numLoaded.load(); i < n; ++i) {
    const auto &loaded = module->loaded[i];
    if (made != loaded.context) {
      result = driver->cuCtxSetCurrent(loaded.context);
      if (result != kCudaSuccess)
        continue;
      made = loaded.context;
    }
    result = driver->cuModuleUnload(loaded.module);
    if (result != kCudaSuccess && result != kDeinitialized &&
        result != kInvalidContext && result != kContextDestroyed && !status)
      status = check(result, "cuModuleUnload");
  }
  if (made != current)
    driver->cuCtxSetCurrent(current);
  return status;
}

static void *loadModuleOrReport(const void *image, size_t size) {
  fusedops_module module = nullptr;
  if (loadModule(image, size, &module))
    reportAsync("mgpuModuleLoad");
  return module;
}

//===----------------------------------------------------------------------===//
// C API
//===----------------------------------------------------------------------===//

extern "C" {

const char *fusedopsGetLastErrorMessage(void) { return lastError.c_str(); }

fusedops_status fusedopsInit(void) {
  FUSEDOPS_READY(driver);
  (void)driver;
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsGetDeviceArch(int *major, int *minor) {
  FUSEDOPS_READY(driver);
  if (!major || !minor)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsGetDeviceArch needs two int pointers");
  int device = 0;
  if (fusedops_status status = fusedopsGetDevice(&device))
    return status;
  FUSEDOPS_CHECK(
      driver->cuDeviceGetAttribute(major, kAttrComputeCapabilityMajor, device));
  FUSEDOPS_CHECK(
      driver->cuDeviceGetAttribute(minor, kAttrComputeCapabilityMinor, device));
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsGetMultiprocessorCount(int *count) {
  if (!count)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsGetMultiprocessorCount needs an int pointer");
  FUSEDOPS_READY(driver);
  return getMultiprocessorCount(driver, count);
}

fusedops_status fusedopsModuleLoad(const void *image, size_t size,
                                   fusedops_module *module) {
  return loadModule(image, size, module);
}

fusedops_status fusedopsModuleUnload(fusedops_module module) {
  if (!module)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsModuleUnload needs a module");
  const Driver *driver = driverOrNull();
  if (!driver) { // Nothing was loaded without a driver.
    delete module;
    return FUSEDOPS_SUCCESS;
  }
  return unloadModule(driver, module);
}

fusedops_status fusedopsModuleGetFunction(fusedops_module module,
                                          const char *name,
                                          fusedops_function *function) {
  FUSEDOPS_READY(driver);
  if (!module || !name || !function)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsModuleGetFunction needs a module, a name and a "
                "function pointer");
  fusedops_function found = nullptr;
  {
    std::lock_guard<std::mutex> lock(module->mutex);
    for (const auto &known : module->functions)
      if (known->name == name)
        found = known.get();
    if (!found) {
      auto created = std::make_unique<fusedops_function_st>();
      created->module = module;
      created->name = name;
      found = created.get();
      module->functions.push_back(std::move(created));
    }
  }
  // Resolved in the current context now, so that a wrong name fails here.
  CUcontext context = nullptr;
  fusedops_function_st::Resolved *resolved = nullptr;
  if (fusedops_status status = currentContext(driver, &context))
    return status;
  if (fusedops_status status = functionIn(driver, found, context, 0, &resolved))
    return status;
  *function = found;
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsLaunchKernel(fusedops_function function,
                                     const uint32_t grid[3],
                                     const uint32_t block[3],
                                     uint32_t sharedMemoryBytes,
                                     fusedops_stream stream, void **params) {
  FUSEDOPS_READY(driver);
  if (!function || !grid || !block)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsLaunchKernel needs a function, a grid and a block");
  CUcontext context = nullptr;
  fusedops_function_st::Resolved *resolved = nullptr;
  if (fusedops_status status = currentContext(driver, &context))
    return status;
  if (fusedops_status status =
          functionIn(driver, function, context, sharedMemoryBytes, &resolved))
    return status;
  return launchResolved(driver, *resolved, function->name, grid[0], grid[1],
                        grid[2], block, sharedMemoryBytes,
                        static_cast<CUstream>(stream), params);
}

fusedops_status fusedopsGetDeviceCount(int *count) {
  if (!count)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsGetDeviceCount needs an int pointer");
  const Driver *driver = nullptr;
  if (fusedops_status status = initialized(driver))
    return status;
  FUSEDOPS_CHECK(driver->cuDeviceGetCount(count));
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsSetDevice(int ordinal) {
  const Driver *driver = nullptr;
  if (fusedops_status status = initialized(driver))
    return status;
  CUcontext context = nullptr;
  if (fusedops_status status = primaryContext(driver, ordinal, &context))
    return status;
  FUSEDOPS_CHECK(driver->cuCtxSetCurrent(context));
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsGetDevice(int *ordinal) {
  if (!ordinal)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsGetDevice needs an int pointer");
  FUSEDOPS_READY(driver);
  CUdevice device = 0;
  FUSEDOPS_CHECK(driver->cuCtxGetDevice(&device));
  *ordinal = device;
  return FUSEDOPS_SUCCESS;
}

//===----------------------------------------------------------------------===//
// Tensor maps
//===----------------------------------------------------------------------===//

fusedops_status fusedopsEncodeTensorMap2D(void *map, const void *global,
                                          uint32_t elementBytes, uint64_t rows,
                                          uint64_t cols,
                                          uint64_t rowStrideBytes,
                                          uint32_t boxRows, uint32_t boxCols,
                                          uint32_t swizzleBytes) {
  // The driver's own checks answer CUDA_ERROR_INVALID_VALUE alone: say
  // which rule a map breaks (CUDA driver API, cuTensorMapEncodeTiled).
  auto invalid = [](const std::string &why) {
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "cannot encode a TMA tensor map: " + why);
  };
  if (!map || reinterpret_cast<uintptr_t>(map) % 64 != 0)
    return invalid("the map must be 64-byte aligned host memory");
  if (!global || reinterpret_cast<uintptr_t>(global) % 16 != 0)
    return invalid("the matrix address must be 16-byte aligned (a "
                   "contiguous tensor of its own storage, not an offset "
                   "view)");
  if (elementBytes != 1 && elementBytes != 2 && elementBytes != 4)
    return invalid("elements must be 1, 2 or 4 bytes, not " +
                   std::to_string(elementBytes));
  if (rows == 0 || cols == 0 || rows > (uint64_t(1) << 32) ||
      cols > (uint64_t(1) << 32))
    return invalid("the matrix must have 1 to 2^32 rows and columns, not " +
                   std::to_string(rows) + " x " + std::to_string(cols));
  if (rowStrideBytes % 16 != 0 || rowStrideBytes < cols * elementBytes ||
      rowStrideBytes >= (uint64_t(1) << 40))
    return invalid("the row stride must be a multiple of 16 bytes, at least "
                   "a row, below 2^40; got " +
                   std::to_string(rowStrideBytes));
  if (boxRows == 0 || boxRows > 256 || boxCols == 0 || boxCols > 256)
    return invalid("boxes must have 1 to 256 rows and columns");
  int swizzle = swizzleBytes == 0     ? 0
                : swizzleBytes == 32  ? 1
                : swizzleBytes == 64  ? 2
                : swizzleBytes == 128 ? 3
                                      : -1;
  if (swizzle < 0)
    return invalid("the swizzle must be 0, 32, 64 or 128 bytes");
  if ((boxCols * elementBytes) % 16 != 0 ||
      (swizzle && boxCols * elementBytes > swizzleBytes))
    return invalid("a box row must be a multiple of 16 bytes and fit the "
                   "swizzle span");
  FUSEDOPS_READY(driver);
  if (!driver->cuTensorMapEncodeTiled)
    return fail(FUSEDOPS_ERROR_CUDA,
                "the CUDA driver lacks cuTensorMapEncodeTiled (CUDA 12.0+), "
                "which the sm_90a kernels' TMA loads need; update the "
                "NVIDIA driver");
  // CU_TENSOR_MAP_DATA_TYPE_UINT8/UINT16/UINT32: bits are copied as they
  // are (FP8, f16, bf16, f32 alike).
  int dataType = elementBytes == 1 ? 0 : elementBytes == 2 ? 1 : 2;
  const uint64_t dims[2] = {cols, rows};
  const uint64_t strides[1] = {rowStrideBytes};
  const uint32_t box[2] = {boxCols, boxRows};
  const uint32_t elementStrides[2] = {1, 1};
  constexpr int kInterleaveNone = 0, kL2Promotion256B = 3, kOobFillZero = 0;
  FUSEDOPS_CHECK(driver->cuTensorMapEncodeTiled(
      map, dataType, 2, const_cast<void *>(global), dims, strides, box,
      elementStrides, kInterleaveNone, swizzle, kL2Promotion256B,
      kOobFillZero));
  return FUSEDOPS_SUCCESS;
}

//===----------------------------------------------------------------------===//
// Launch plans
//===----------------------------------------------------------------------===//

struct fusedops_launch_plan_st {
  struct Launch {
    fusedops_function function;
    uint32_t grid[3];
    uint32_t block[3];
    uint32_t sharedMemoryBytes;
    std::vector<int64_t> values;
    /// (parameter, buffer) pairs: the parameters that are data pointers.
    std::vector<std::pair<size_t, size_t>> pointers;
    /// The parameters that are tensor maps, encoded at each run.
    struct TensorMap {
      size_t param, buffer;
      uint32_t elementBytes;
      uint64_t rows, cols, rowStrideBytes;
      uint32_t boxRows, boxCols, swizzleBytes;
    };
    std::vector<TensorMap> tensorMaps;
    /// Parameters the driver reports as 128 bytes (tensor maps), if it can
    /// tell; each needs a TensorMap before the launch may run.
    std::vector<size_t> mapSizedParams;
    /// Persistent: at most this many blocks per SM of the device (0: the
    /// grid as given).
    uint32_t gridPerSm = 0;
  };
  std::vector<Launch> launches;
  /// One more than the largest buffer index any launch reads.
  size_t numBuffers = 0;
  /// The driver, once a launch was added (which needed it).
  const Driver *driver = nullptr;
};

fusedops_status fusedopsLaunchPlanCreate(fusedops_launch_plan *plan) {
  if (!plan)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsLaunchPlanCreate needs somewhere to store the plan");
  *plan = new fusedops_launch_plan_st();
  return FUSEDOPS_SUCCESS;
}

fusedops_status
fusedopsLaunchPlanAdd(fusedops_launch_plan plan, fusedops_function function,
                      const uint32_t grid[3], const uint32_t block[3],
                      uint32_t sharedMemoryBytes, size_t numParams,
                      const int64_t *values, const int64_t *bufferIndex) {
  FUSEDOPS_READY(driver);
  if (!plan || !function || !grid || !block ||
      (numParams && (!values || !bufferIndex)))
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsLaunchPlanAdd needs a plan, a function, the grid and "
                "block sizes and, for parameters, their values and buffer "
                "indices");
  // Resolved in the current context (which also opts it into its shared
  // memory there); each run resolves it in the context it launches in.
  CUcontext context = nullptr;
  fusedops_function_st::Resolved *resolved = nullptr;
  if (fusedops_status status = currentContext(driver, &context))
    return status;
  if (fusedops_status status =
          functionIn(driver, function, context, sharedMemoryBytes, &resolved))
    return status;
  CUfunction cuFunction = resolved->function;
  std::vector<size_t> mapSizedParams;
  if (driver->cuFuncGetParamInfo) {
    // The kernel's own parameter list, as the driver read it from the image.
    constexpr CUresult kInvalidValue = 1;
    size_t count = 0, offset = 0, size = 0;
    for (;; ++count) {
      CUresult result =
          driver->cuFuncGetParamInfo(cuFunction, count, &offset, &size);
      if (result == kInvalidValue)
        break;
      FUSEDOPS_CHECK(result);
      if (size == kTensorMapBytes) {
        mapSizedParams.push_back(count);
        continue;
      }
      if (size != 8)
        return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                    "launch plan: kernel parameter " + std::to_string(count) +
                        " is " + std::to_string(size) +
                        " bytes, but plans pass 8-byte parameters and "
                        "128-byte tensor maps; launch this kernel through "
                        "its host code");
    }
    if (count != numParams)
      return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                  "launch plan: the kernel takes " + std::to_string(count) +
                      " parameters but the plan gives " +
                      std::to_string(numParams) +
                      "; the plan does not belong to this kernel");
  }
  fusedops_launch_plan_st::Launch launch;
  launch.function = function;
  std::copy(grid, grid + 3, launch.grid);
  std::copy(block, block + 3, launch.block);
  launch.sharedMemoryBytes = sharedMemoryBytes;
  launch.values.assign(values, values + numParams);
  launch.mapSizedParams = std::move(mapSizedParams);
  size_t numBuffers = plan->numBuffers;
  for (size_t i = 0; i < numParams; ++i) {
    if (bufferIndex[i] < 0)
      continue;
    launch.pointers.emplace_back(i, static_cast<size_t>(bufferIndex[i]));
    numBuffers = std::max(numBuffers, static_cast<size_t>(bufferIndex[i]) + 1);
  }
  plan->launches.push_back(std::move(launch));
  plan->numBuffers = numBuffers;
  plan->driver = driver;
  return FUSEDOPS_SUCCESS;
}

fusedops_status
fusedopsLaunchPlanSetTensorMap(fusedops_launch_plan plan, size_t param,
                               size_t bufferIndex, uint32_t elementBytes,
                               uint64_t rows, uint64_t cols,
                               uint64_t rowStrideBytes, uint32_t boxRows,
                               uint32_t boxCols, uint32_t swizzleBytes) {
  if (!plan || plan->launches.empty())
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsLaunchPlanSetTensorMap needs a plan with a launch");
  auto &launch = plan->launches.back();
  if (param >= launch.values.size() ||
      std::any_of(launch.pointers.begin(), launch.pointers.end(),
                  [&](auto pointer) { return pointer.first == param; }) ||
      std::any_of(launch.tensorMaps.begin(), launch.tensorMaps.end(),
                  [&](const auto &map) { return map.param == param; }))
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "launch plan: parameter " + std::to_string(param) +
                    " cannot be a tensor map (past the launch's " +
                    std::to_string(launch.values.size()) +
                    " parameters, or already a pointer or a map)");
  if (!launch.mapSizedParams.empty() &&
      std::find(launch.mapSizedParams.begin(), launch.mapSizedParams.end(),
                param) == launch.mapSizedParams.end())
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "launch plan: kernel parameter " + std::to_string(param) +
                    " is not 128 bytes, so not a tensor map; the plan does "
                    "not belong to this kernel");
  // Check the description once, on a stand-in address.
  alignas(64) unsigned char probe[kTensorMapBytes];
  if (fusedops_status status = fusedopsEncodeTensorMap2D(
          probe, reinterpret_cast<const void *>(uintptr_t(1) << 20),
          elementBytes, rows, cols, rowStrideBytes, boxRows, boxCols,
          swizzleBytes))
    return status;
  launch.tensorMaps.push_back({param, bufferIndex, elementBytes, rows, cols,
                               rowStrideBytes, boxRows, boxCols, swizzleBytes});
  plan->numBuffers = std::max(plan->numBuffers, bufferIndex + 1);
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsLaunchPlanSetGridPerSm(fusedops_launch_plan plan,
                                               uint32_t blocksPerSm) {
  if (!plan || plan->launches.empty() || blocksPerSm == 0)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsLaunchPlanSetGridPerSm needs a plan with a launch "
                "and at least one block per SM");
  plan->launches.back().gridPerSm = blocksPerSm;
  return FUSEDOPS_SUCCESS;
}

/// Launches `plan`'s kernels in `context`, which is current.
static fusedops_status runPlan(const Driver *driver, fusedops_launch_plan plan,
                               CUcontext context, void *const *buffers,
                               fusedops_stream stream) {
  // The tensor maps' buffers must be 16-byte aligned (the rest of a map was
  // checked when it was set): refuse before launching anything.
  for (const auto &launch : plan->launches)
    for (const auto &map : launch.tensorMaps)
      if (!buffers[map.buffer] ||
          reinterpret_cast<uintptr_t>(buffers[map.buffer]) % 16 != 0)
        return fail(
            FUSEDOPS_ERROR_INVALID_ARGUMENT,
            "buffer " + std::to_string(map.buffer) +
                " is read or written through a TMA tensor map and must be "
                "16-byte aligned (a contiguous tensor of its own "
                "storage, not an offset view)");
  // Kernel parameters live on this thread's stack: runs may overlap.
  constexpr size_t kInline = 64;
  for (const auto &launch : plan->launches) {
    size_t n = launch.values.size();
    int64_t inlineValues[kInline];
    void *inlineParams[kInline];
    std::vector<int64_t> heapValues;
    std::vector<void *> heapParams;
    int64_t *values = inlineValues;
    void **params = inlineParams;
    if (n > kInline) {
      heapValues.resize(n);
      heapParams.resize(n);
      values = heapValues.data();
      params = heapParams.data();
    }
    std::copy(launch.values.begin(), launch.values.end(), values);
    for (auto [param, buffer] : launch.pointers)
      values[param] = reinterpret_cast<intptr_t>(buffers[buffer]);
    for (size_t i = 0; i < n; ++i)
      params[i] = &values[i];
    // Tensor maps: encoded for this run's buffers, passed by value.
    if (launch.tensorMaps.size() != launch.mapSizedParams.size() &&
        !launch.mapSizedParams.empty())
      return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                  "launch plan: the kernel takes " +
                      std::to_string(launch.mapSizedParams.size()) +
                      " tensor maps but the plan describes " +
                      std::to_string(launch.tensorMaps.size()) +
                      " (fusedopsLaunchPlanSetTensorMap)");
    constexpr size_t kInlineMaps = 4;
    struct alignas(64) Map {
      unsigned char bytes[kTensorMapBytes];
    };
    Map inlineMaps[kInlineMaps];
    std::vector<Map> heapMaps;
    Map *maps = inlineMaps;
    if (launch.tensorMaps.size() > kInlineMaps) {
      heapMaps.resize(launch.tensorMaps.size());
      maps = heapMaps.data();
    }
    for (size_t i = 0; i < launch.tensorMaps.size(); ++i) {
      const auto &map = launch.tensorMaps[i];
      if (fusedops_status status = fusedopsEncodeTensorMap2D(
              maps[i].bytes, buffers[map.buffer], map.elementBytes, map.rows,
              map.cols, map.rowStrideBytes, map.boxRows, map.boxCols,
              map.swizzleBytes))
        return status;
      params[map.param] = maps[i].bytes;
    }
    fusedops_function_st::Resolved *resolved = nullptr;
    if (fusedops_status status =
            functionIn(driver, launch.function, context,
                       launch.sharedMemoryBytes, &resolved))
      return status;
    const uint32_t clusterWidth = resolved->clusterWidth;
    uint32_t gridX = launch.grid[0];
    if (launch.gridPerSm) {
      int sms = 0;
      if (fusedops_status status = getMultiprocessorCount(driver, &sms))
        return status;
      // Whole clusters of the resident blocks (the host code's rounding,
      // Wgmma.cpp): a grid of a clustered kernel is a multiple of its width.
      uint64_t resident = uint64_t(sms) * launch.gridPerSm;
      resident =
          std::max<uint64_t>(resident - resident % clusterWidth, clusterWidth);
      gridX = static_cast<uint32_t>(std::min<uint64_t>(gridX, resident));
    }
    if (fusedops_status status = launchResolved(
            driver, *resolved, launch.function->name, gridX, launch.grid[1],
            launch.grid[2], launch.block, launch.sharedMemoryBytes,
            static_cast<CUstream>(stream), params))
      return status;
  }
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsLaunchPlanRun(fusedops_launch_plan plan,
                                      void *const *buffers, size_t numBuffers,
                                      fusedops_stream stream) {
  return fusedopsLaunchPlanRunOnDevice(plan, -1, buffers, numBuffers, stream);
}

fusedops_status fusedopsLaunchPlanRunOnDevice(fusedops_launch_plan plan,
                                              int device, void *const *buffers,
                                              size_t numBuffers,
                                              fusedops_stream stream) {
  if (!plan || (numBuffers && !buffers))
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsLaunchPlanRun needs a plan and its buffers");
  if (numBuffers < plan->numBuffers)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "the launch plan reads " + std::to_string(plan->numBuffers) +
                    " buffers but was given " + std::to_string(numBuffers));
  // This runs on every call of the Python API, so it skips ready()'s checks
  // where it can: a plan with launches found the driver when they were
  // added, and the caller (PyTorch) has its context current.
  const Driver *driver = plan->driver;
  if (!driver) {
    FUSEDOPS_READY(loaded);
    driver = loaded;
  }
  CUcontext current = nullptr;
  FUSEDOPS_CHECK(driver->cuCtxGetCurrent(&current));
  CUcontext context = current;
  if (device >= 0) {
    // The current context where it is the device's (PyTorch's under its
    // device guard), else the device's primary context for this run.
    CUdevice currentDevice = -1;
    if (current)
      FUSEDOPS_CHECK(driver->cuCtxGetDevice(&currentDevice));
    if (currentDevice != device) {
      if (fusedops_status status = primaryContext(driver, device, &context))
        return status;
      FUSEDOPS_CHECK(driver->cuCtxSetCurrent(context));
    }
  } else if (!current) {
    if (fusedops_status status = currentContext(driver, &context))
      return status;
    current = context; // ready() made it current for good, as before
  }
  fusedops_status status = runPlan(driver, plan, context, buffers, stream);
  if (context != current) {
    CUresult restored = driver->cuCtxSetCurrent(current);
    if (!status)
      status = check(restored, "cuCtxSetCurrent (restoring the caller's)");
  }
  return status;
}

fusedops_status fusedopsLaunchPlanDestroy(fusedops_launch_plan plan) {
  delete plan;
  return FUSEDOPS_SUCCESS;
}

void fusedopsSetCurrentStream(fusedops_stream stream) {
  currentStream = stream;
  hasCurrentStream = true;
}

void fusedopsClearCurrentStream(void) {
  currentStream = nullptr;
  hasCurrentStream = false;
}

fusedops_stream fusedopsGetCurrentStream(void) { return currentStream; }

fusedops_status fusedopsMalloc(size_t bytes, void **devicePtr) {
  FUSEDOPS_READY(driver);
  if (!devicePtr)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsMalloc needs a pointer");
  CUdeviceptr ptr = 0;
  FUSEDOPS_CHECK(driver->cuMemAlloc(&ptr, bytes ? bytes : 1));
  *devicePtr = reinterpret_cast<void *>(ptr);
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsFree(void *devicePtr) {
  FUSEDOPS_READY(driver);
  FUSEDOPS_CHECK(driver->cuMemFree(reinterpret_cast<CUdeviceptr>(devicePtr)));
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsMemcpyHtoD(void *dst, const void *src, size_t bytes) {
  FUSEDOPS_READY(driver);
  FUSEDOPS_CHECK(
      driver->cuMemcpyHtoD(reinterpret_cast<CUdeviceptr>(dst), src, bytes));
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsMemcpyDtoH(void *dst, const void *src, size_t bytes) {
  FUSEDOPS_READY(driver);
  FUSEDOPS_CHECK(
      driver->cuMemcpyDtoH(dst, reinterpret_cast<CUdeviceptr>(src), bytes));
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsMemcpyDtoD(void *dst, const void *src, size_t bytes,
                                   fusedops_stream stream) {
  FUSEDOPS_READY(driver);
  FUSEDOPS_CHECK(driver->cuMemcpyDtoDAsync(
      reinterpret_cast<CUdeviceptr>(dst), reinterpret_cast<CUdeviceptr>(src),
      bytes, static_cast<CUstream>(stream)));
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsMemsetD8(void *dst, unsigned char value, size_t bytes,
                                 fusedops_stream stream) {
  FUSEDOPS_READY(driver);
  FUSEDOPS_CHECK(driver->cuMemsetD8Async(reinterpret_cast<CUdeviceptr>(dst),
                                         value, bytes,
                                         static_cast<CUstream>(stream)));
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsStreamSynchronize(fusedops_stream stream) {
  FUSEDOPS_READY(driver);
  FUSEDOPS_CHECK(driver->cuStreamSynchronize(static_cast<CUstream>(stream)));
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsStreamCreate(fusedops_stream *stream) {
  FUSEDOPS_READY(driver);
  if (!stream)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsStreamCreate needs a stream pointer");
  CUstream created = nullptr;
  FUSEDOPS_CHECK(driver->cuStreamCreate(&created, kStreamNonBlocking));
  *stream = created;
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsStreamDestroy(fusedops_stream stream) {
  FUSEDOPS_READY(driver);
  FUSEDOPS_CHECK(driver->cuStreamDestroy(static_cast<CUstream>(stream)));
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsStreamBeginCapture(fusedops_stream stream) {
  FUSEDOPS_READY(driver);
  if (!stream)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "the legacy default stream (NULL) cannot be captured; use a "
                "stream from fusedopsStreamCreate");
  FUSEDOPS_CHECK(driver->cuStreamBeginCapture(static_cast<CUstream>(stream),
                                              kCaptureModeThreadLocal));
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsStreamEndCapture(fusedops_stream stream,
                                         fusedops_graph *graph) {
  FUSEDOPS_READY(driver);
  if (!graph)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsStreamEndCapture needs a graph pointer");
  CUgraph captured = nullptr;
  FUSEDOPS_CHECK(
      driver->cuStreamEndCapture(static_cast<CUstream>(stream), &captured));
  CUgraphExec exec = nullptr;
  fusedops_status status =
      check(driver->cuGraphInstantiateWithFlags(&exec, captured, 0),
            "cuGraphInstantiateWithFlags");
  driver->cuGraphDestroy(captured);
  if (status)
    return status;
  *graph = reinterpret_cast<fusedops_graph>(exec);
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsGraphLaunch(fusedops_graph graph,
                                    fusedops_stream stream) {
  FUSEDOPS_READY(driver);
  FUSEDOPS_CHECK(driver->cuGraphLaunch(reinterpret_cast<CUgraphExec>(graph),
                                       static_cast<CUstream>(stream)));
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsGraphDestroy(fusedops_graph graph) {
  FUSEDOPS_READY(driver);
  FUSEDOPS_CHECK(
      driver->cuGraphExecDestroy(reinterpret_cast<CUgraphExec>(graph)));
  return FUSEDOPS_SUCCESS;
}

fusedops_status fusedopsTimeOnStream(fusedops_stream stream,
                                     void (*body)(void *), void *user,
                                     int count, float *milliseconds) {
  FUSEDOPS_READY(driver);
  if (!body || count <= 0 || !milliseconds)
    return fail(FUSEDOPS_ERROR_INVALID_ARGUMENT,
                "fusedopsTimeOnStream needs a body, a positive count and an "
                "output");
  CUevent start = nullptr, stop = nullptr;
  FUSEDOPS_CHECK(driver->cuEventCreate(&start, 0));
  FUSEDOPS_CHECK(driver->cuEventCreate(&stop, 0));
  auto cuStream = static_cast<CUstream>(stream);
  fusedops_status status =
      check(driver->cuEventRecord(start, cuStream), "cuEventRecord(start)");
  for (int i = 0; i < count && !status; ++i)
    body(user);
  if (!status)
    status =
        check(driver->cuEventRecord(stop, cuStream), "cuEventRecord(stop)");
  if (!status)
    status = check(driver->cuEventSynchronize(stop), "cuEventSynchronize");
  if (!status)
    status = check(driver->cuEventElapsedTime(milliseconds, start, stop),
                   "cuEventElapsedTime");
  driver->cuEventDestroy(start);
  driver->cuEventDestroy(stop);
  return status;
}

int fusedopsTakeAsyncErrorCount(void) {
  int count = asyncErrorCount;
  asyncErrorCount = 0;
  return count;
}

//===----------------------------------------------------------------------===//
// mgpu* wrappers called by gpu-to-llvm host code (signatures of MLIR 22's
// SelectObjectAttr translation).
//===----------------------------------------------------------------------===//

void *mgpuModuleLoad(void *data, uint64_t size) {
  return loadModuleOrReport(data, size);
}

void *mgpuModuleLoadJIT(void *data, int /*optLevel*/) {
  return loadModuleOrReport(data,
                            std::strlen(static_cast<const char *>(data)) + 1);
}

void mgpuModuleUnload(void *module) {
  // At process exit the driver may already be shut down
  // (CUDA_ERROR_DEINITIALIZED): the contexts' modules are gone with it, and
  // unloadModule only frees ours.
  if (module && fusedopsModuleUnload(static_cast<fusedops_module>(module)))
    reportAsync("mgpuModuleUnload");
}

void *mgpuModuleGetFunction(void *module, const char *name) {
  fusedops_function function = nullptr;
  if (fusedopsModuleGetFunction(static_cast<fusedops_module>(module), name,
                                &function))
    reportAsync("mgpuModuleGetFunction");
  return function;
}

void mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY,
                      intptr_t gridZ, intptr_t blockX, intptr_t blockY,
                      intptr_t blockZ, int32_t smem, void *stream,
                      void **params, void ** /*extra*/,
                      uint64_t /*paramsCount*/) {
  const uint32_t grid[3] = {static_cast<uint32_t>(gridX),
                            static_cast<uint32_t>(gridY),
                            static_cast<uint32_t>(gridZ)};
  const uint32_t block[3] = {static_cast<uint32_t>(blockX),
                             static_cast<uint32_t>(blockY),
                             static_cast<uint32_t>(blockZ)};
  if (fusedopsLaunchKernel(static_cast<fusedops_function>(function), grid,
                           block, static_cast<uint32_t>(smem), stream, params))
    reportAsync("mgpuLaunchKernel");
}

int32_t mgpuMultiprocessorCount(void) {
  int count = 0;
  if (fusedopsGetMultiprocessorCount(&count) || count <= 0) {
    reportAsync("mgpuMultiprocessorCount");
    return 1; // One block still computes every tile, slowly.
  }
  return count;
}

int32_t mgpuTensorMapEncode2D(void *map, void *global, int32_t elementBytes,
                              int64_t rows, int64_t cols,
                              int64_t rowStrideBytes, int32_t boxRows,
                              int32_t boxCols, int32_t swizzleBytes) {
  if (rows <= 0 || cols <= 0)
    return 0; // An empty matrix: no launch, no error.
  if (elementBytes < 0 || rowStrideBytes < 0 || boxRows < 0 || boxCols < 0 ||
      swizzleBytes < 0) {
    lastError = std::string("cannot encode a TMA tensor map: negative size");
    reportAsync("mgpuTensorMapEncode2D");
    return 0;
  }
  if (fusedopsEncodeTensorMap2D(map, global, elementBytes, rows, cols,
                                rowStrideBytes, boxRows, boxCols,
                                swizzleBytes)) {
    reportAsync("mgpuTensorMapEncode2D");
    return 0;
  }
  return 1;
}

void *mgpuStreamCreate(void) {
  if (hasCurrentStream)
    return currentStream;
  const Driver *driver = nullptr;
  if (ready(driver)) {
    reportAsync("mgpuStreamCreate");
    return nullptr;
  }
  CUstream stream = nullptr;
  if (check(driver->cuStreamCreate(&stream, kStreamNonBlocking),
            "cuStreamCreate"))
    reportAsync("mgpuStreamCreate");
  return stream;
}

void mgpuStreamSynchronize(void *stream) {
  if (hasCurrentStream && stream == currentStream)
    return; // The caller orders work on its own stream.
  if (fusedopsStreamSynchronize(stream))
    reportAsync("mgpuStreamSynchronize");
}

void *mgpuMemAlloc(uint64_t sizeBytes, void * /*stream*/, bool isHostShared) {
  if (isHostShared) {
    lastError = std::string("gpu.alloc host_shared (managed memory) is not "
                            "supported by the fusedops runtime; allocate "
                            "device memory");
    reportAsync("mgpuMemAlloc");
    return nullptr;
  }
  void *ptr = nullptr;
  if (fusedopsMalloc(sizeBytes, &ptr))
    reportAsync("mgpuMemAlloc");
  return ptr;
}

void mgpuMemFree(void *ptr, void * /*stream*/) {
  if (ptr && fusedopsFree(ptr))
    reportAsync("mgpuMemFree");
}

void mgpuMemcpy(void *dst, void *src, size_t sizeBytes, void *stream) {
  const Driver *driver = nullptr;
  if (ready(driver)) {
    reportAsync("mgpuMemcpy");
    return;
  }
  // Unified addressing tells the direction from the pointers themselves.
  if (check(driver->cuMemcpyAsync(reinterpret_cast<CUdeviceptr>(dst),
                                  reinterpret_cast<CUdeviceptr>(src), sizeBytes,
                                  static_cast<CUstream>(stream)),
            "cuMemcpyAsync"))
    reportAsync("mgpuMemcpy");
}

void mgpuMemset32(void *dst, unsigned int value, size_t count, void *stream) {
  const Driver *driver = nullptr;
  if (ready(driver)) {
    reportAsync("mgpuMemset32");
    return;
  }
  if (check(driver->cuMemsetD32Async(reinterpret_cast<CUdeviceptr>(dst), value,
                                     count, static_cast<CUstream>(stream)),
            "cuMemsetD32Async"))
    reportAsync("mgpuMemset32");
}

void mgpuStreamDestroy(void *stream) {
  if (hasCurrentStream && stream == currentStream)
    return;
  const Driver *driver = driverOrNull();
  if (driver && check(driver->cuStreamDestroy(static_cast<CUstream>(stream)),
                      "cuStreamDestroy"))
    reportAsync("mgpuStreamDestroy");
}

} // extern "C"
