//===- Runtime.h - C++ wrapper of the fusedops runtime ----------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// RAII classes over the C API in fusedops-c/Runtime.h, for C++ hosts:
// errors come back as llvm::Error carrying the runtime's message, and
// modules, device buffers, streams and graphs free themselves.
//
//   auto module = fusedops::runtime::Module::load(cubin);
//   if (!module) return module.takeError();
//   auto kernel = module->getFunction("rmsnorm_rope");
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_RUNTIME_RUNTIME_H
#define FUSEDOPS_RUNTIME_RUNTIME_H

#include "fusedops-c/Runtime.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <array>
#include <utility>

namespace mlir::fusedops::runtime {

/// The error of a failed runtime call, with its message.
inline llvm::Error toError(fusedops_status status) {
  if (status == FUSEDOPS_SUCCESS)
    return llvm::Error::success();
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 fusedopsGetLastErrorMessage());
}

/// Loads the driver and makes a context current (see fusedopsInit).
inline llvm::Error initialize() { return toError(fusedopsInit()); }

/// The number of GPUs this process sees.
inline llvm::Expected<int> getDeviceCount() {
  int count = 0;
  if (llvm::Error error = toError(fusedopsGetDeviceCount(&count)))
    return std::move(error);
  return count;
}

/// Makes device `ordinal`'s primary context current on this thread: later
/// calls (loads, allocations, launches) go to that device.
inline llvm::Error setDevice(int ordinal) {
  return toError(fusedopsSetDevice(ordinal));
}

/// The current context's device.
inline llvm::Expected<int> getDevice() {
  int ordinal = 0;
  if (llvm::Error error = toError(fusedopsGetDevice(&ordinal)))
    return std::move(error);
  return ordinal;
}

/// Compute capability of the current device, as {major, minor}.
inline llvm::Expected<std::pair<int, int>> getDeviceArch() {
  int major = 0, minor = 0;
  if (llvm::Error error = toError(fusedopsGetDeviceArch(&major, &minor)))
    return std::move(error);
  return std::make_pair(major, minor);
}

/// A device allocation.
class DeviceBuffer {
public:
  static llvm::Expected<DeviceBuffer> allocate(size_t bytes) {
    void *ptr = nullptr;
    if (llvm::Error error = toError(fusedopsMalloc(bytes, &ptr)))
      return std::move(error);
    return DeviceBuffer(ptr, bytes);
  }
  DeviceBuffer(DeviceBuffer &&other) noexcept
      : ptr(std::exchange(other.ptr, nullptr)), bytes(other.bytes) {}
  DeviceBuffer &operator=(DeviceBuffer &&other) noexcept {
    std::swap(ptr, other.ptr);
    std::swap(bytes, other.bytes);
    return *this;
  }
  ~DeviceBuffer() {
    if (ptr)
      fusedopsFree(ptr);
  }
  void *get() const { return ptr; }
  size_t size() const { return bytes; }
  llvm::Error copyFromHost(const void *src) {
    return toError(fusedopsMemcpyHtoD(ptr, src, bytes));
  }
  llvm::Error copyToHost(void *dst) const {
    return toError(fusedopsMemcpyDtoH(dst, ptr, bytes));
  }

private:
  DeviceBuffer(void *ptr, size_t bytes) : ptr(ptr), bytes(bytes) {}
  void *ptr;
  size_t bytes;
};

/// A kernel of a loaded module.
class Function {
public:
  explicit Function(fusedops_function function) : function(function) {}
  /// Launches on `stream` with cuLaunchKernel's parameter array.
  llvm::Error launch(std::array<uint32_t, 3> grid,
                     std::array<uint32_t, 3> block, uint32_t sharedBytes,
                     fusedops_stream stream, void **params) const {
    return toError(fusedopsLaunchKernel(function, grid.data(), block.data(),
                                        sharedBytes, stream, params));
  }

private:
  fusedops_function function;
};

/// A loaded cubin, fatbin or PTX image; loaded into each device's context
/// on the first launch there, so one Module serves every device.
class Module {
public:
  static llvm::Expected<Module> load(llvm::StringRef image) {
    fusedops_module module = nullptr;
    if (llvm::Error error =
            toError(fusedopsModuleLoad(image.data(), image.size(), &module)))
      return std::move(error);
    return Module(module);
  }
  Module(Module &&other) noexcept
      : module(std::exchange(other.module, nullptr)) {}
  Module &operator=(Module &&other) noexcept {
    std::swap(module, other.module);
    return *this;
  }
  ~Module() {
    if (module)
      fusedopsModuleUnload(module);
  }
  llvm::Expected<Function> getFunction(const char *name) const {
    fusedops_function function = nullptr;
    if (llvm::Error error =
            toError(fusedopsModuleGetFunction(module, name, &function)))
      return std::move(error);
    return Function(function);
  }

private:
  explicit Module(fusedops_module module) : module(module) {}
  fusedops_module module;
};

/// A non-blocking stream, which CUDA graphs can capture.
class Stream {
public:
  static llvm::Expected<Stream> create() {
    fusedops_stream stream = nullptr;
    if (llvm::Error error = toError(fusedopsStreamCreate(&stream)))
      return std::move(error);
    return Stream(stream);
  }
  Stream(Stream &&other) noexcept
      : stream(std::exchange(other.stream, nullptr)) {}
  Stream &operator=(Stream &&other) noexcept {
    std::swap(stream, other.stream);
    return *this;
  }
  ~Stream() {
    if (stream)
      fusedopsStreamDestroy(stream);
  }
  fusedops_stream get() const { return stream; }
  llvm::Error synchronize() const {
    return toError(fusedopsStreamSynchronize(stream));
  }

private:
  explicit Stream(fusedops_stream stream) : stream(stream) {}
  fusedops_stream stream;
};

/// Makes compiled host code launch on `stream` (asynchronously) while in
/// scope; restores synchronous launches after.
class ScopedCurrentStream {
public:
  explicit ScopedCurrentStream(fusedops_stream stream) {
    fusedopsSetCurrentStream(stream);
  }
  ~ScopedCurrentStream() { fusedopsClearCurrentStream(); }
  ScopedCurrentStream(const ScopedCurrentStream &) = delete;
  ScopedCurrentStream &operator=(const ScopedCurrentStream &) = delete;
};

} // namespace mlir::fusedops::runtime

#endif // FUSEDOPS_RUNTIME_RUNTIME_H
