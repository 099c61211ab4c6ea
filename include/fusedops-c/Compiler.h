/*===- fusedops-c/Compiler.h - compile fusedops modules in-process -*- C -*-===*
 *
 * Part of fusedops, under the MIT License.
 *
 *===----------------------------------------------------------------------===*
 *
 * A C API over the compiler: MLIR source holding fusedops ops goes through
 * `fusedops-to-binary` and MLIR's ExecutionEngine, in this process, and
 * comes back as a handle whose functions can be called. The Python package
 * (python/fusedops) loads it with ctypes; any language with a C FFI can.
 *
 * A function marked `llvm.emit_c_interface` is called through its C
 * interface: each memref argument is passed as a pointer to its descriptor
 * { T *allocated; T *aligned; int64_t offset; int64_t sizes[rank];
 *   int64_t strides[rank]; }. Its kernels launch on the stream set with
 * fusedopsSetCurrentStream (fusedops-c/Runtime.h), asynchronously.
 *
 * Errors: functions return a status; fusedopsCompilerGetLastError() gives
 * the message (the diagnostics) of the last failure on this thread.
 *
 *===----------------------------------------------------------------------===*/

#ifndef FUSEDOPS_C_COMPILER_H
#define FUSEDOPS_C_COMPILER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fusedops_compile_status {
  FUSEDOPS_COMPILE_SUCCESS = 0,
  /* The source did not parse, verify or lower; the message holds the
   * diagnostics. */
  FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE = 1,
  /* An option was invalid (unknown chip or format, null pointer). */
  FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT = 2
} fusedops_compile_status;

typedef struct fusedops_jit_st *fusedops_jit;

/* What the compiler is: the fusedops C API version, the LLVM/MLIR version it
 * was built with and the ptxas release it finds (e.g.
 * "fusedops-capi 5; llvm 22.1.8; ptxas 13.0"). Callers that cache compiled
 * code put it in their keys. */
const char *fusedopsCompilerVersion(void);

/* The CUDA toolkit folder the compiler uses given `toolkit` (NULL: none
 * given, then $CUDA_HOME, else /usr/local/cuda), and the ptxas it runs for
 * cubins with it (the toolkit's bin/ptxas, else one on PATH; "" if none).
 * The strings stay valid until the next such call on this thread. */
const char *fusedopsToolkitPath(const char *toolkit);
const char *fusedopsPtxasPath(const char *toolkit);

/* Message of the last failure on this thread ("" if none). */
const char *fusedopsCompilerGetLastError(void);

/* The chip table (fusedops/Target/Chips.h), for hosts that pick a chip.
 * fusedopsKnownChips: the chips fusedops builds for, as a phrase for
 * messages ("sm_80, sm_86, sm_89, sm_90 and sm_90a").
 * fusedopsChipForComputeCapability: the chip to build for on a card of
 * compute capability major.minor ("sm_90a" for 9.0), or NULL if none.
 * fusedopsChipJitFormat: the format a chip's kernels are JIT-compiled to
 * ("bin" for cubin, "isa" for PTX the driver compiles for the card
 * present), or NULL for an unknown chip. The strings are static. */
const char *fusedopsKnownChips(void);
const char *fusedopsChipForComputeCapability(int major, int minor);
const char *fusedopsChipJitFormat(const char *chip);

/* The shape of the scales of a [rows, cols] matrix quantized with
 * `granularity` ("tensor", "row" or "block128"): the dialect's rule, which
 * the ops verify. Writes *rank (0, 1 or 2) and shape[0 .. *rank). Returns 0,
 * or -1 (writing nothing) for an unknown granularity, a negative size or a
 * null pointer. */
int fusedopsScaleShape(const char *granularity, int64_t rows, int64_t cols,
                       int64_t shape[2], int *rank);

/* M' of the transposed FP8 values that block128 quantization can also write
 * ([K, M'], fusedops.quantize's third init): `rows` rounded up to a multiple
 * of 16, the dialect's rule. Returns -1 for a negative `rows`. */
int64_t fusedopsQuantizeTransposedRows(int64_t rows);

/* The module the PyTorch API compiles for one op call: `@kernel`, marked
 * `llvm.emit_c_interface`, whose memref arguments are the op's operands and
 * then its outputs, with static shapes (but for dynamic rows), and whose body is the op built by
 * its C++ builder (the dialect owns the syntax, the operand order and the
 * shapes that follow from the others: a norm's weight, a granularity's
 * scales, a GEMM's output). `request` is a JSON object: "op" and the op's
 * fields, element types by their MLIR names (a tile is set on what it
 * returns with fusedopsSetTile):
 *   rmsnorm_rope: x_shape, dtype, table_shape, table_dtype, head_dim, eps,
 *                 style, [rotary_fraction], [positions_shape,
 *                 positions_dtype (default i32)]
 *   rmsnorm_rope_grad: rmsnorm_rope's fields and partials (P: the rows of
 *                 the weight gradient's partial sums; arguments x, w, cos,
 *                 sin, [positions], grad, dx, dw_partials)
 *   rms_norm:     x_shape, dtype, eps, [residual (true: also the sum
 *                 x + residual, argument "sum")], [weight_offset]
 *   rms_norm_grad: x_shape, dtype, eps, partials, [residual_grad (true: the
 *                 sum's gradient is added, argument "residual_grad")],
 *                 [weight_offset] (arguments x, w, grad, [residual_grad],
 *                 dx, dw_partials)
 *   gated_mlp:    x_shape, n, dtype, activation, [save_preactivations
 *                 (true: also the pre-activations, arguments "gate", "up")]
 *   gated_mlp_grad: x_shape, n, dtype, activation (arguments x, wg, wu,
 *                 grad, grad_gate, grad_up)
 *   gated_act_grad: shape, dtype, activation (arguments gate, up, grad,
 *                 grad_gate, grad_up)
 *   fp8_gemm:     m, n, k, a_dtype, b_dtype, out_dtype, granularity,
 *                 [bias], [fast_accum]
 *   quantize:     rows, cols, dtype, fp8, granularity
 *   dequantize:   rows, cols, fp8, out_dtype, granularity
 * Rows may be dynamic: null for x_shape's and shape's sizes but the last, for all of
 * positions_shape's, for table_shape's first (the positions), and for m or
 * rows. With dynamic rows, "rows_hint" (an
 * integer) sets the op's fusedops.rows_hint: the row count its tile is
 * chosen for (the largest of the rows the kernel will serve).
 * On success *json (from malloc; free it with fusedopsBufferFree) is
 * {"source": "<module>", "args": [argument names in order]}. A missing or
 * ill-typed field, an unknown spelling, or an op that does not verify (the
 * verifier's message) fails with FUSEDOPS_COMPILE_ERROR_INVALID_ARGUMENT.
 * Needs no GPU. */
fusedops_compile_status fusedopsBuildOpSource(const char *request,
                                              char **json);

/* Compiles `size` bytes of MLIR source for `chip` (sm_80, sm_86, sm_89,
 * sm_90, sm_90a), embedding the kernels as `format` ("isa" for PTX, "bin"
 * for cubin, "fatbin"), NVVM optimisation level `optLevel` (0-3). `toolkit`
 * is the CUDA toolkit directory, or NULL for $CUDA_HOME or /usr/local/cuda.
 * Ops without a tile get one from the tuning cache file `tuningCache` (see
 * fusedopsTuningCacheRecord) where it has a measured entry for them, else
 * from the cost model; NULL: the cost model only. On success stores a handle
 * in *jit. Needs no GPU. */
fusedops_compile_status
fusedopsJitCompile(const char *source, size_t size, const char *chip,
                   const char *format, unsigned optLevel, const char *toolkit,
                   const char *tuningCache, fusedops_jit *jit);

/* Like fusedopsJitCompile, but stops after fusedops-to-binary and returns the
 * lowered module (host code with the kernels' binary) as MLIR bytecode in a
 * buffer from malloc: *data and *dataSize; free it with fusedopsBufferFree.
 * A cache can keep these bytes and give them to fusedopsJitLoad. */
fusedops_compile_status fusedopsJitLower(const char *source, size_t size,
                                         const char *chip, const char *format,
                                         unsigned optLevel, const char *toolkit,
                                         const char *tuningCache, void **data,
                                         size_t *dataSize);

/* JIT-compiles bytes that fusedopsJitLower returned: no NVVM code generation
 * and no ptxas. The bytes end in the bytecode's SHA-256, so bytes that are
 * not such a module (truncated, damaged by a single bit, from another
 * version) fail with FUSEDOPS_COMPILE_ERROR_INVALID_SOURCE. */
fusedops_compile_status fusedopsJitLoad(const void *data, size_t size,
                                        fusedops_jit *jit);

void fusedopsBufferFree(void *data);

/* Address of the C interface of function `name` (declared with
 * `llvm.emit_c_interface`), or NULL with a message if there is none. */
void *fusedopsJitLookup(fusedops_jit jit, const char *name);

/* The kernels' image as embedded in the host code (PTX text or cubin bytes);
 * stores its address in *data and returns its size. */
size_t fusedopsJitGetKernelImage(fusedops_jit jit, const void **data);

/* The launch plan of host function `name` as JSON (see
 * JitModule::getLaunchPlan in fusedops/ExecutionEngine/JitModule.h), owned
 * by the handle, or NULL if it has none: its host code must run, through
 * fusedopsJitLookup. With a plan, a caller can launch the kernels itself
 * (fusedopsLaunchPlanAdd/Run in fusedops-c/Runtime.h), skipping the host
 * code's runtime calls. */
const char *fusedopsJitGetLaunchPlan(fusedops_jit jit, const char *name);

/* A plan marked "dynamic" (a function with dynamic sizes) computes some of
 * its values from the arguments' sizes: this is its static form for
 * arguments of these sizes (`sizes`: every memref argument's sizes, in
 * argument order), in *json (from malloc; free it with fusedopsBufferFree).
 * Fails with a message for a function without a plan or sizes its plan
 * cannot launch. */
fusedops_compile_status fusedopsJitGetLaunchPlanForSizes(
    fusedops_jit jit, const char *name, const int64_t *sizes, size_t numSizes,
    char **json);

/* Autotuning (fusedops/Autotune/): the candidate tiles of every fusedops op
 * in `source` (buffer form, memref operands) for `chip`, as JSON in a buffer
 * from malloc (*json, free it with fusedopsBufferFree):
 *   {"ops": [{"op": "fusedops.gated_mlp", "strategy": "...",
 *             "key": {"op", "shape_class", "dtypes", "attributes", "chip",
 *                     "compiler"},
 *             "default": "#fusedops.tile<...>",
 *             "candidates": [{"tile", "predicted_us", "limiter",
 *                             "blocks_per_sm"}, ...],   fastest first
 *             "rejected": [{"tile", "reason"}, ...]}]}
 * Needs no GPU. */
fusedops_compile_status fusedopsTuneCandidates(const char *source, size_t size,
                                               const char *chip, char **json);

/* Records that `tile` (#fusedops.tile<...> text) ran the one fusedops op in
 * `source` in `microseconds` (the best of `candidates` measured) under CUDA
 * driver `driver` on `device`, in the tuning cache at `path`: merged with
 * what is there under an exclusive lock and replaced atomically, the file
 * and its folder created if missing. The key (op, shape class, element
 * types, attributes, chip, fusedopsCompilerVersion()) comes from the op. If
 * the file there was not a valid cache it is moved to `<path>.corrupt` and
 * *warning (if `warning` is not NULL) gets a message from malloc saying so;
 * else *warning is NULL. */
fusedops_compile_status fusedopsTuningCacheRecord(
    const char *path, const char *source, size_t size, const char *chip,
    const char *tile, double microseconds, int64_t candidates,
    const char *driver, const char *device, char **warning);

/* `source` (one fusedops op without a tile) with `tile` (#fusedops.tile<...>
 * text) set on its op: one candidate of the tuner. *out is from malloc
 * (free it with fusedopsBufferFree). */
fusedops_compile_status fusedopsSetTile(const char *source, size_t size,
                                        const char *tile, char **out);

/* Whether the tuning cache at `path` can be used: 1 if it holds a cache of
 * this version, 0 if there is no file there, -1 if there is one that cannot
 * be read, does not parse or has another format or version; then *message
 * (if `message` is not NULL) gets the reason and what to do, from malloc.
 * The compiler ignores such a file; fusedopsTuningCacheRecord moves it
 * aside. */
int fusedopsTuningCacheCheck(const char *path, char **message);

/* The tile the tuning cache at `path` holds for the one fusedops op in
 * `source` on `chip`, measured under `driver` (NULL or "": under any driver,
 * the fastest), as #fusedops.tile<...> text from malloc in *tile; *tile is
 * NULL where the cache has none (or cannot be used). */
fusedops_compile_status
fusedopsTuningCacheLookup(const char *path, const char *source, size_t size,
                          const char *chip, const char *driver, char **tile);

/* Releases the handle; its functions must not be called afterwards. */
void fusedopsJitDestroy(fusedops_jit jit);

#ifdef __cplusplus
}
#endif

#endif /* FUSEDOPS_C_COMPILER_H */
