/*===- fusedops-c/Runtime.h - the fusedops CUDA runtime, C API ----*- C -*-===*\
|*                                                                            *|
|* Part of fusedops, under the MIT License.                                   *|
|*                                                                            *|
|* Loads compiled kernels and launches them. The CUDA driver is opened with   *|
|* dlopen on first use: nothing links against libcuda, and on a machine       *|
|* without a driver or GPU every call returns an error whose message says so. *|
|*                                                                            *|
|* Every function returns FUSEDOPS_SUCCESS (0) or an error code; the message  *|
|* of the last error on the calling thread is fusedopsGetLastErrorMessage().  *|
|*                                                                            *|
|* The library also defines the mgpu* functions that MLIR's gpu-to-llvm host  *|
|* code calls (mgpuModuleLoad, mgpuLaunchKernel, ...). They route to the      *|
|* stream set with fusedopsSetCurrentStream, so compiled host code launches   *|
|* on the caller's stream and stays capturable in a CUDA graph.               *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef FUSEDOPS_C_RUNTIME_H
#define FUSEDOPS_C_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A kernel that waits for the other blocks of its grid (a grid-wide
 * barrier) has this in its name. fusedopsLaunchKernel and launch plans
 * launch such a kernel with cuLaunchCooperativeKernel, which fails (instead
 * of the kernel hanging) where the device cannot hold every block at once,
 * with its grid capped at the blocks the device holds at once (such kernels
 * take any grid). */
#define FUSEDOPS_COOPERATIVE_MARK "__cooperative"

typedef enum fusedops_status {
  FUSEDOPS_SUCCESS = 0,
  /* No CUDA driver (libcuda.so.1) could be loaded. */
  FUSEDOPS_ERROR_NO_DRIVER = 1,
  /* The driver loaded but reports no usable GPU. */
  FUSEDOPS_ERROR_NO_DEVICE = 2,
  /* A CUDA driver call failed; the message names the call and the error. */
  FUSEDOPS_ERROR_CUDA = 3,
  /* An argument was invalid (null pointer, empty image, ...). */
  FUSEDOPS_ERROR_INVALID_ARGUMENT = 4
} fusedops_status;

typedef struct fusedops_module_st *fusedops_module;
typedef struct fusedops_function_st *fusedops_function;
/* A CUstream; NULL is the legacy default stream. */
typedef void *fusedops_stream;

/* Message of the last error on this thread ("" if none). */
const char *fusedopsGetLastErrorMessage(void);

/* Loads the driver and makes device 0's primary context current on this
 * thread if no context is. Called implicitly by every other function. */
fusedops_status fusedopsInit(void);

/* Devices. Every function works in the CUDA context current on the calling
 * thread (a framework's, e.g. PyTorch's for the current device); where none
 * is, device 0's primary context is made current. fusedopsSetDevice makes
 * device `ordinal`'s primary context (the one the CUDA runtime API and
 * PyTorch use) current on this thread; an ordinal the process does not see
 * is an error naming how many it sees. fusedopsGetDevice: the current
 * context's device. */
fusedops_status fusedopsGetDeviceCount(int *count);
fusedops_status fusedopsSetDevice(int ordinal);
fusedops_status fusedopsGetDevice(int *ordinal);

/* Compute capability of the current device, e.g. 9 and 0 for an H100. */
fusedops_status fusedopsGetDeviceArch(int *major, int *minor);

/* Loads a cubin, fatbin or PTX image (PTX is compiled for the device by the
 * driver: this is how sm_80 code runs on later chips). The module keeps a
 * copy of the image: it is loaded into the current context now (so a bad
 * image fails here) and into any other context on the first launch of one
 * of its kernels there, so one module serves every device. A function
 * handle is valid in every context; unloading the module unloads it from
 * all of them and frees its functions. */
fusedops_status fusedopsModuleLoad(const void *image, size_t size,
                                   fusedops_module *module);
fusedops_status fusedopsModuleUnload(fusedops_module module);
fusedops_status fusedopsModuleGetFunction(fusedops_module module,
                                          const char *name,
                                          fusedops_function *function);

/* Launches `function` on `stream` with cuLaunchKernel's parameter array. */
fusedops_status fusedopsLaunchKernel(fusedops_function function,
                                     const uint32_t grid[3],
                                     const uint32_t block[3],
                                     uint32_t sharedMemoryBytes,
                                     fusedops_stream stream, void **params);

/* A launch plan: a list of kernel launches with fixed geometry whose
 * parameters are fixed but for data pointers, given at each run. This is
 * what a host function that only launches kernels on its arguments does
 * (the `fusedops-launch-plan` pass describes such functions; the compiler C
 * API hands the description out with fusedopsJitGetLaunchPlan). Running a
 * plan is one cuLaunchKernel per launch: none of the JIT-compiled host
 * code's runtime calls. Plans are immutable once built; fusedopsLaunchPlanRun
 * may be called from several threads at once. */
typedef struct fusedops_launch_plan_st *fusedops_launch_plan;

fusedops_status fusedopsLaunchPlanCreate(fusedops_launch_plan *plan);

/* Appends a launch of `function`. Its kernel takes `numParams` parameters of
 * 8 bytes each (or 128-byte tensor maps: fusedopsLaunchPlanSetTensorMap):
 * parameter i is the pointer buffers[bufferIndex[i]] given to
 * fusedopsLaunchPlanRun when bufferIndex[i] >= 0, else values[i]. Where the
 * driver can tell (cuFuncGetParamInfo, CUDA 12.4+), a kernel whose
 * parameters differ in number or size is refused with a message. */
fusedops_status
fusedopsLaunchPlanAdd(fusedops_launch_plan plan, fusedops_function function,
                      const uint32_t grid[3], const uint32_t block[3],
                      uint32_t sharedMemoryBytes, size_t numParams,
                      const int64_t *values, const int64_t *bufferIndex);

/* Makes parameter `param` of the plan's last launch a TMA tensor map (a
 * 128-byte parameter, given to fusedopsLaunchPlanAdd as one placeholder
 * value) that each run encodes for buffers[bufferIndex], as
 * fusedopsEncodeTensorMap2D does with the other arguments; checks them now
 * on an aligned stand-in address. A launch whose kernel takes a 128-byte
 * parameter runs only once every such parameter has its map. */
fusedops_status
fusedopsLaunchPlanSetTensorMap(fusedops_launch_plan plan, size_t param,
                               size_t bufferIndex, uint32_t elementBytes,
                               uint64_t rows, uint64_t cols,
                               uint64_t rowStrideBytes, uint32_t boxRows,
                               uint32_t boxCols, uint32_t swizzleBytes);

/* Makes the plan's last launch persistent: its grid (x) becomes at most
 * `blocksPerSm` times the SM count of the device it runs on. */
fusedops_status fusedopsLaunchPlanSetGridPerSm(fusedops_launch_plan plan,
                                               uint32_t blocksPerSm);

/* Launches the plan's kernels in order on `stream` with `numBuffers` data
 * pointers; fails (launching nothing) if a launch refers to a buffer past
 * numBuffers. Launches in the calling thread's current context (PyTorch's);
 * where none is current, makes device 0's primary context current first. */
fusedops_status fusedopsLaunchPlanRun(fusedops_launch_plan plan,
                                      void *const *buffers, size_t numBuffers,
                                      fusedops_stream stream);

/* fusedopsLaunchPlanRun on device `device` (its buffers and `stream` must
 * be that device's): in the current context where it is that device's, else
 * in the device's primary context, made current for the run and the
 * caller's restored after it. A negative `device` is the current context's,
 * as fusedopsLaunchPlanRun. */
fusedops_status fusedopsLaunchPlanRunOnDevice(fusedops_launch_plan plan,
                                              int device, void *const *buffers,
                                              size_t numBuffers,
                                              fusedops_stream stream);

fusedops_status fusedopsLaunchPlanDestroy(fusedops_launch_plan plan);

/* The stream compiled host code launches on (thread-local). Once set (NULL
 * is the legacy default stream), launches are asynchronous on it; until set,
 * or after fusedopsClearCurrentStream, each launch is synchronous on a
 * stream of its own, as with upstream MLIR's runtime. */
void fusedopsSetCurrentStream(fusedops_stream stream);
void fusedopsClearCurrentStream(void);
fusedops_stream fusedopsGetCurrentStream(void);

/* Device memory and copies, for tests, benchmarks and hosts without a
 * framework of their own. */
fusedops_status fusedopsMalloc(size_t bytes, void **devicePtr);
fusedops_status fusedopsFree(void *devicePtr);
fusedops_status fusedopsMemcpyHtoD(void *dst, const void *src, size_t bytes);
fusedops_status fusedopsMemcpyDtoH(void *dst, const void *src, size_t bytes);
fusedops_status fusedopsMemcpyDtoD(void *dst, const void *src, size_t bytes,
                                   fusedops_stream stream);
fusedops_status fusedopsMemsetD8(void *dst, unsigned char value, size_t bytes,
                                 fusedops_stream stream);
fusedops_status fusedopsStreamSynchronize(fusedops_stream stream);

/* Streams and CUDA graphs, so that hosts without a framework can capture
 * fusedops launches (the legacy default stream cannot be captured). */
typedef struct fusedops_graph_st *fusedops_graph;
fusedops_status fusedopsStreamCreate(fusedops_stream *stream);
fusedops_status fusedopsStreamDestroy(fusedops_stream stream);
fusedops_status fusedopsStreamBeginCapture(fusedops_stream stream);
/* Ends the capture and instantiates the captured graph. */
fusedops_status fusedopsStreamEndCapture(fusedops_stream stream,
                                         fusedops_graph *graph);
fusedops_status fusedopsGraphLaunch(fusedops_graph graph,
                                    fusedops_stream stream);
fusedops_status fusedopsGraphDestroy(fusedops_graph graph);

/* Milliseconds `count` runs of `body(user)` take on `stream`, timed with
 * CUDA events around the whole loop (after the caller's warm-up). */
fusedops_status fusedopsTimeOnStream(fusedops_stream stream,
                                     void (*body)(void *user), void *user,
                                     int count, float *milliseconds);

/* The number of SMs of the current context's device (cached per device). */
fusedops_status fusedopsGetMultiprocessorCount(int *count);

/* TMA tensor maps. Encodes into `map` (128 bytes, 64-byte aligned: a
 * CUtensorMap) the map of a row-major [rows, cols] matrix of
 * `elementBytes`-byte elements (1, 2 or 4; the bits are copied, not
 * converted) at device address `global` (16-byte aligned), rows
 * `rowStrideBytes` apart (a multiple of 16), read into shared memory in
 * boxes of boxRows × boxCols elements (each at most 256; boxCols ·
 * elementBytes at most `swizzleBytes`) with the 32-, 64- or 128-byte
 * swizzle (`swizzleBytes`; 0: none). Elements outside the matrix read as
 * zeros. Needs a driver with cuTensorMapEncodeTiled (CUDA 12.0+). */
fusedops_status fusedopsEncodeTensorMap2D(void *map, const void *global,
                                          uint32_t elementBytes, uint64_t rows,
                                          uint64_t cols,
                                          uint64_t rowStrideBytes,
                                          uint32_t boxRows, uint32_t boxCols,
                                          uint32_t swizzleBytes);

/* Number of errors the mgpu* wrappers (which cannot return one) have hit on
 * this thread since the last call; their messages go to
 * fusedopsGetLastErrorMessage and stderr. */
int fusedopsTakeAsyncErrorCount(void);

/* The functions MLIR 22's gpu-to-llvm host code calls (see CudaRuntime.cpp
 * for how they differ from upstream's CudaRuntimeWrappers). */
void *mgpuModuleLoad(void *data, uint64_t size);
void *mgpuModuleLoadJIT(void *data, int optLevel);
void mgpuModuleUnload(void *module);
void *mgpuModuleGetFunction(void *module, const char *name);
void mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY,
                      intptr_t gridZ, intptr_t blockX, intptr_t blockY,
                      intptr_t blockZ, int32_t smem, void *stream,
                      void **params, void **extra, uint64_t paramsCount);
void *mgpuMemAlloc(uint64_t sizeBytes, void *stream, bool isHostShared);
void mgpuMemFree(void *ptr, void *stream);
void mgpuMemcpy(void *dst, void *src, size_t sizeBytes, void *stream);
void mgpuMemset32(void *dst, unsigned int value, size_t count, void *stream);
void *mgpuStreamCreate(void);
void mgpuStreamSynchronize(void *stream);
void mgpuStreamDestroy(void *stream);
/* fusedopsGetMultiprocessorCount for host code (persistent grids); 1 after
 * an asynchronous error. */
int32_t mgpuMultiprocessorCount(void);
/* fusedopsEncodeTensorMap2D for host code: 1 if the map was encoded; 0 for
 * an empty matrix (nothing to launch) or a failure (an asynchronous error,
 * see fusedopsTakeAsyncErrorCount). */
int32_t mgpuTensorMapEncode2D(void *map, void *global, int32_t elementBytes,
                              int64_t rows, int64_t cols,
                              int64_t rowStrideBytes, int32_t boxRows,
                              int32_t boxCols, int32_t swizzleBytes);

#ifdef __cplusplus
}
#endif

#endif /* FUSEDOPS_C_RUNTIME_H */
