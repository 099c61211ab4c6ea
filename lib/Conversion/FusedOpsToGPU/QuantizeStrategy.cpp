//===- QuantizeStrategy.cpp - FP8 quantize and dequantize kernels ---------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// quantize and dequantize are memory-bound: per element they move 3 to 5
// bytes. Every kernel moves whole vectors of V elements, V the widest (at
// most 16 bytes of the wider element type) that divides K, so that a vector
// never straddles a row or a 128-wide scale block. Each thread issues the
// loads of all its vectors before it converts any, to keep enough bytes in
// flight; loads are not branched around: a vector past the matrix loads a
// clamped copy of one of its own scale group and is not stored. The kernels:
//
//   * elementwise (dequantize; static quantize; the last pass of dynamic
//     `tensor` quantize): a thread block covers a tile of `tile.block` =
//     [rows, cols] of the matrix, its threads take the tile's vectors in
//     turn, look up the scale of each vector (tensor: one load per thread;
//     row: scale[row]; block128: scale[row/128, col/128]) and convert it.
//   * dynamic `row`: `tile.block[0]` rows per thread block, side by side,
//     each row held in the registers of threads/rows threads; the row's
//     absmax is reduced with warp shuffles (and shared memory when a row has
//     more than a warp), its scale written by the row's first thread, and
//     the registers quantized and stored: x is read from memory once.
//   * dynamic `block128`: one thread block per 128×128 scale block, its
//     elements in registers, absmax reduced over the block (shuffles, then
//     shared memory), then quantized: again one read of x.
//   * dynamic `tensor`: the scale needs the absmax of the whole tensor
//     before any element can be quantized. One cooperative kernel does it
//     (after a kernel on the same grid that writes the scale of an
//     all-zero tensor and zeroes the barrier's words of the FP8 output): a
//     persistent grid of the blocks the device holds at once, each taking
//     tiles bid, bid + grid, ... It reads its tiles in batches of
//     `tile.stages` (loads in flight together), keeps the last batch in
//     registers, reduces its absmax and raises the scale buffer to its own
//     scale with one atomic max (no other buffer needed: the scale is a
//     non-decreasing function of the absmax, so the largest block scale is
//     the tensor's scale, and the IEEE bits of non-negative floats order as
//     unsigned integers, so a u32 atomic max does it). Then a grid barrier
//     on words of the output that no block writes before it: each block
//     counts itself in on the first word (release); the block that counts
//     last wakes every block through a word of the block's own first tile
//     (no two blocks poll one address), and each block, once woken
//     (acquire), reads the scale, converts its held tiles and reads the
//     others again, the most recently read first (from L2 where they are
//     still there). So x is read once where the blocks hold it (up to
//     ~130 KiB an SM of registers) and the rest twice, with two launches.
//     The launch is cooperative (the kernel's name says so,
//     getCooperativeKernelName): every block resident, or an error instead
//     of a hang. Where vectors are narrower than a word (V < 4) or rows
//     shorter than 8, three launches instead: the
//     init, a kernel whose blocks each raise the scale with their tile's,
//     and the elementwise kernel, which takes the tiles in reverse block
//     order (the first pass's last tiles are the likeliest in L2).
//
// Scales follow the op: amax over finite elements (NaN and ±inf ignored),
// scale = max(amax, 1e-12) / fp8_max as an f32 division, and
// q = fp8(x / scale), rounded as an f32 division rounds it, then to FP8.
//
// The arithmetic per element is what keeps these kernels from the memory's
// speed, so it is trimmed: x / scale takes three FMA-pipe instructions from
// the scale's reciprocal (exactly the IEEE quotient, see `divide`); the
// finite absmax takes an FMA and a max. The FP8 conversions are the
// software ones of KernelBuilder.h (a dozen integer operations an element)
// on sm_80, which has no FP8 instructions, and sm_90's cvt instructions on
// pairs on sm_90a, where the software ones would hold the H100 and H200 at
// about half their bandwidth; both give the same bytes (the GPU tests check
// them against one reference).
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"
#include "Strategies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::kernel;

namespace {

/// The smallest absmax a scale is computed from (the op's 1e-12), so that an
/// all-zero group gets a positive, finite scale.
constexpr float kMinAbsMax = 1e-12f;
/// At most this many vectors per thread: they live in registers.
constexpr int64_t kMaxVectorsPerThread = 32;
/// Vectors per thread that the default tiles aim for: enough loads in flight
/// per thread to cover memory latency at full occupancy, few registers.
constexpr int64_t kDefaultVectorsPerThread = 4;
/// Vectors a thread of the one-pass tensor quantize holds at most in the
/// autotuner's candidates (32 ran at half the speed of 16 on an H200).
constexpr int64_t kMaxHeldVectors = 16;
/// Tiles a block of the one-pass tensor quantize keeps in registers by
/// default: 16 vectors a thread, 64 KiB a block of 8 warps with 16-bit
/// inputs.
constexpr int64_t kDefaultHeldTiles = 4;
/// Side of a block128 scale block.
constexpr int64_t kScaleBlock = 128;
/// Bytes between the rows of the transposed tile in shared memory: 128 and
/// 4 of padding, so that the rows start in different banks (a thread's
/// bytes go down a column of it: 4-way bank conflicts instead of 16-way)
/// while 4-byte reads along a row stay aligned.
constexpr int64_t kTransposeStride = kScaleBlock + 4;
/// Bytes of the transposed output each thread copies at once.
constexpr int64_t kTransposePiece = 16;

/// Which kernels an op lowers to (see the file comment).
enum class KernelKind { Elementwise, RowAbsMax, BlockAbsMax, TensorAbsMax };

/// Everything the kernels' shapes depend on.
struct QuantPlan {
  KernelKind kind = KernelKind::Elementwise;
  bool quantize = true;
  ScaleGranularity granularity = ScaleGranularity::tensor;
  /// Element types of the input and the output; `fp8Type` is one of them.
  Type inputType, outputType;
  FloatType fp8Type;
  /// K, static.
  int64_t cols = 0;
  /// Elements per vector.
  int64_t vectorWidth = 1;
  int64_t tileRows = 1, tileCols = 1;
  int64_t numThreads = 32;
  /// Vectors per row of the tile (for the row kernel: of the matrix row).
  int64_t vectorsPerTileRow = 1;
  /// Vectors per tile; the row kernel's tile is tileRows whole rows.
  int64_t vectorsPerTile = 1;
  int64_t vectorsPerThread = 1;
  /// Row kernel: threads that share one row.
  int64_t threadsPerRow = 1;
  /// Dynamic block128 quantize that also writes the values transposed (the
  /// op's third init).
  bool transposed = false;
  /// Convert with the chip's FP8 conversion instructions (see
  /// `encodeWithCvt`, `decodeWithCvt`) rather than `convertF32ToFp8` and
  /// `convertFp8ToF32`.
  bool hardwareConvert = false;
  /// Dynamic tensor quantize in one cooperative kernel (see the file
  /// comment): where vectors cover whole 4-byte words of the FP8 output and
  /// tile 0 has 8 bytes of row 0, which the grid barrier uses.
  bool onePass = false;
  /// One-pass kernel: the tiles each block keeps in registers between the
  /// absmax and the conversion (`tile.stages`); its other tiles are read
  /// again.
  int64_t heldTiles = 1;

  int64_t warps() const { return numThreads / 32; }
};

int64_t elementBytes(Type type) { return type.getIntOrFloatBitWidth() / 8; }

ShapedType getInputType(Operation *op) {
  return cast<ShapedType>(op->getOperand(0).getType());
}

/// The widest vector (at most 16 bytes of the wider of `a` and `b`) that
/// divides `cols`.
int64_t chooseVectorWidth(int64_t cols, Type a, Type b) {
  int64_t width = 16 / std::max(elementBytes(a), elementBytes(b));
  while (width > 1 && cols % width != 0)
    width /= 2;
  return width;
}

/// The plan without a tile: kind, types, K and V.
QuantPlan makeBasePlan(Operation *op) {
  QuantPlan plan;
  ShapedType input = getInputType(op);
  plan.cols = input.getShape()[1];
  plan.inputType = input.getElementType();
  if (auto quantizeOp = dyn_cast<QuantizeOp>(op)) {
    plan.quantize = true;
    plan.granularity = quantizeOp.getGranularity();
    plan.outputType =
        cast<ShapedType>(quantizeOp.getInits()[0].getType()).getElementType();
    plan.fp8Type = cast<FloatType>(plan.outputType);
    if (quantizeOp.isDynamic()) {
      switch (plan.granularity) {
      case ScaleGranularity::tensor:
        plan.kind = KernelKind::TensorAbsMax;
        break;
      case ScaleGranularity::row:
        plan.kind = KernelKind::RowAbsMax;
        break;
      case ScaleGranularity::block128:
        plan.kind = KernelKind::BlockAbsMax;
        plan.transposed = static_cast<bool>(quantizeOp.getTransposedInit());
        break;
      }
    }
  } else {
    auto dequantizeOp = cast<DequantizeOp>(op);
    plan.quantize = false;
    plan.granularity = dequantizeOp.getGranularity();
    plan.outputType =
        cast<ShapedType>(dequantizeOp.getInits()[0].getType()).getElementType();
    plan.fp8Type = cast<FloatType>(plan.inputType);
  }
  if (!ShapedType::isDynamic(plan.cols))
    plan.vectorWidth =
        chooseVectorWidth(plan.cols, plan.inputType, plan.outputType);
  plan.onePass = plan.kind == KernelKind::TensorAbsMax &&
                 plan.vectorWidth >= 4 && plan.cols >= 8;
  return plan;
}

QuantPlan makePlan(Operation *op, TileConfigAttr tile,
                   const KernelTarget &target) {
  QuantPlan plan = makeBasePlan(op);
  // sm_90 has cvt.rn.satfinite.{e4m3x2,e5m2x2}.f32 and
  // cvt.rn.f16x2.{e4m3x2,e5m2x2} (PTX 7.8, which the pipeline's PTX 8.0 for
  // sm_90 covers); they take pairs. The software conversions cost a dozen
  // integer operations per element, too many for the H100's and H200's
  // bandwidth.
  plan.hardwareConvert =
      target.info->hasFp8Convert && plan.vectorWidth % 2 == 0;
  plan.numThreads = tile.getNumThreads();
  plan.tileRows = tile.getBlock()[0];
  plan.tileCols = tile.getBlock().size() > 1 ? tile.getBlock()[1] : plan.cols;
  if (plan.kind == KernelKind::RowAbsMax) {
    // Whole rows: the tile's columns only need to cover the row.
    plan.vectorsPerTileRow = llvm::divideCeil(plan.cols, plan.vectorWidth);
    plan.threadsPerRow = std::max<int64_t>(plan.numThreads / plan.tileRows, 1);
    plan.vectorsPerTile = plan.tileRows * plan.vectorsPerTileRow;
    plan.vectorsPerThread =
        llvm::divideCeil(plan.vectorsPerTileRow, plan.threadsPerRow);
    return plan;
  }
  plan.vectorsPerTileRow = plan.tileCols / plan.vectorWidth;
  plan.vectorsPerTile = plan.tileRows * plan.vectorsPerTileRow;
  plan.vectorsPerThread =
      llvm::divideCeil(plan.vectorsPerTile, plan.numThreads);
  // The one-pass kernel's barrier words need 8 bytes of row 0 in tile 0.
  if (plan.tileCols < 8)
    plan.onePass = false;
  if (plan.onePass)
    plan.heldTiles = std::max<int64_t>(tile.getStages(), 1);
  return plan;
}

/// Shared checks of both strategies.
LogicalResult checkCommon(Operation *op, TileConfigAttr tile,
                          const QuantPlan &base) {
  if (failed(checkContiguousBuffers(op)))
    return failure();
  if (ShapedType::isDynamic(base.cols))
    return op->emitOpError()
           << "needs a static number of columns (dimension 1 of 'input') to "
              "lower to a GPU kernel";
  if (base.cols == 0)
    return op->emitOpError()
           << "has no columns (dimension 1 of 'input' is 0): there is "
              "nothing to convert; leave the op out for empty inputs";
  if (!isSupportedFp8Type(base.fp8Type))
    return op->emitOpError() << "has no GPU kernel for " << base.fp8Type
                             << "; expected f8E4M3FN or f8E5M2";
  if (!tile.getCluster().empty())
    return op->emitOpError() << "'tile' of " << op->getName().stripDialect()
                             << " takes no cluster";
  return success();
}

/// Checks of a tile for the kernels of `plan`.
LogicalResult checkTile(Operation *op, TileConfigAttr tile,
                        const QuantPlan &plan) {
  StringRef name = op->getName().stripDialect();
  switch (plan.kind) {
  case KernelKind::RowAbsMax:
    if (plan.tileCols < plan.cols)
      return op->emitOpError()
             << "'tile' " << tile << " splits rows of " << plan.cols
             << " columns; row scales need whole rows in a thread block: use "
                "block = ["
             << plan.tileRows << ", " << plan.cols << "]";
    if (!llvm::isPowerOf2_64(plan.tileRows) || plan.tileRows > plan.numThreads)
      return op->emitOpError()
             << "'tile' " << tile
             << " must give each row the same power-of-two number of "
                "threads: rows per block must be a power of two, at most "
             << plan.numThreads << " (the threads of " << tile.getWarps()
             << " warps)";
    break;
  case KernelKind::BlockAbsMax:
    if (plan.tileRows != kScaleBlock || plan.tileCols != kScaleBlock)
      return op->emitOpError()
             << "'tile' " << tile
             << " must be block = [128, 128] for dynamic block128 scales: "
                "one thread block per scale block";
    break;
  case KernelKind::Elementwise:
  case KernelKind::TensorAbsMax:
    if (plan.tileCols % plan.vectorWidth != 0)
      return op->emitOpError()
             << "'tile' " << tile << " has " << plan.tileCols
             << " columns, not a multiple of the " << plan.vectorWidth
             << "-element vectors the " << name << " kernel moves";
    break;
  }
  if (plan.vectorsPerThread * plan.heldTiles > kMaxVectorsPerThread)
    return op->emitOpError()
           << "'tile' " << tile << " gives each thread "
           << plan.vectorsPerThread * plan.heldTiles << " vectors of "
           << plan.vectorWidth
           << " elements to hold in registers; use more warps"
           << (plan.onePass ? ", a smaller block or fewer stages (the tiles a "
                              "block holds)"
                            : " or a smaller block")
           << " (at most " << kMaxVectorsPerThread << " vectors per thread)";
  return success();
}

/// The default tile of `op`: about kDefaultVectorsPerThread vectors per
/// thread.
/// The columns tiles are sized for: 4096 where unknown, at least 1 (an
/// empty row is refused by checkCommon, not divided by).
static int64_t getTileSizingCols(const QuantPlan &plan) {
  return ShapedType::isDynamic(plan.cols) ? 4096
                                          : std::max<int64_t>(plan.cols, 1);
}

TileConfigAttr makeDefaultTile(Operation *op) {
  QuantPlan plan = makeBasePlan(op);
  MLIRContext *ctx = op->getContext();
  int64_t cols = getTileSizingCols(plan);
  int64_t rowVectors = llvm::divideCeil(cols, plan.vectorWidth);
  // The one-pass tensor kernel keeps kDefaultHeldTiles tiles a block in
  // registers (its `stages`); every other kernel has one stage.
  const int64_t stages = plan.onePass ? kDefaultHeldTiles : 1;
  auto make = [&](int64_t rows, int64_t tileCols, int64_t threads) {
    return TileConfigAttr::get(ctx, {rows, tileCols}, threads / 32, stages,
                               /*cluster=*/{});
  };
  switch (plan.kind) {
  case KernelKind::RowAbsMax: {
    // A power-of-two share of threads per row; short rows share a block of
    // at least 128 threads.
    int64_t perRow = llvm::PowerOf2Ceil(
        llvm::divideCeil(rowVectors, kDefaultVectorsPerThread));
    perRow = std::min<int64_t>(perRow, 1024);
    int64_t threads = std::max<int64_t>(perRow, 128);
    return make(threads / perRow, cols, threads);
  }
  case KernelKind::BlockAbsMax: {
    // 8 vectors per thread (8 warps for 16-bit inputs, 16 for f32): the
    // whole block lives in registers, and a thread with 16 vectors takes
    // so many that only one block fits an SM.
    int64_t threads = kScaleBlock * kScaleBlock / plan.vectorWidth / 8;
    return make(kScaleBlock, kScaleBlock,
                std::clamp<int64_t>(threads, 32, 1024));
  }
  case KernelKind::Elementwise:
  case KernelKind::TensorAbsMax: {
    // 8 warps, 1024 vectors per tile: whole rows where they fit.
    const int64_t threads = 256,
                  tileVectors = threads * kDefaultVectorsPerThread;
    if (rowVectors >= tileVectors)
      return make(1, tileVectors * plan.vectorWidth, threads);
    return make(std::max<int64_t>(tileVectors / rowVectors, 1), cols, threads);
  }
  }
  llvm_unreachable("unknown kernel kind");
}

/// The autotuner's candidates: tile shapes and thread counts around the
/// default, per kernel kind.
SmallVector<TileConfigAttr> makeTileCandidates(Operation *op) {
  QuantPlan plan = makeBasePlan(op);
  MLIRContext *ctx = op->getContext();
  int64_t cols = getTileSizingCols(plan);
  SmallVector<TileConfigAttr> tiles = {makeDefaultTile(op)};
  auto add = [&](int64_t rows, int64_t tileCols, int64_t warps,
                 int64_t stages = 1) {
    tiles.push_back(TileConfigAttr::get(ctx, {rows, tileCols}, warps, stages,
                                        /*cluster=*/{}));
  };
  switch (plan.kind) {
  case KernelKind::RowAbsMax:
    for (int64_t rows : {1, 2, 4, 8, 16})
      for (int64_t warps : {1, 2, 4, 8, 16, 32})
        add(rows, cols, warps);
    break;
  case KernelKind::BlockAbsMax:
    for (int64_t warps : {1, 2, 4, 8, 16, 32})
      add(kScaleBlock, kScaleBlock, warps);
    break;
  case KernelKind::Elementwise:
  case KernelKind::TensorAbsMax: {
    SmallVector<int64_t> widths;
    if (cols % plan.vectorWidth == 0)
      widths.push_back(cols);
    for (int64_t vectors : {512, 1024, 2048})
      if (vectors * plan.vectorWidth < cols)
        widths.push_back(vectors * plan.vectorWidth);
    // The one-pass kernel: also the tiles each block holds, at most
    // kMaxHeldVectors vectors a thread, in blocks of 8 or 16 warps. Measured
    // on an H200 at 4096 × 4096 bf16 (docs/perf/memory-ops.md v8): 32 held
    // vectors a thread took 42-45 µs against 24-26 µs for 4 to 16; 2-warp
    // blocks (1056 of them counting in at the grid barrier) 26.6 µs against
    // 24.5 µs for 8 warps, which the cost model does not see (it ranked 2
    // warps first).
    SmallVector<int64_t> held = {1};
    SmallVector<int64_t> warpCounts = {2, 4, 8, 16};
    if (plan.onePass) {
      held = {1, 2, 4, 8};
      warpCounts = {8, 16};
    }
    for (int64_t tileCols : widths)
      for (int64_t rows : {1, 2, 4, 8})
        for (int64_t warps : warpCounts)
          for (int64_t stages : held) {
            int64_t tileVectors = rows * tileCols / plan.vectorWidth;
            int64_t perThread = llvm::divideCeil(tileVectors, warps * 32);
            if (plan.onePass && stages * perThread > kMaxHeldVectors)
              continue;
            add(rows, tileCols, warps, stages);
          }
    break;
  }
  }
  return tiles;
}

/// Shared memory of a block of the block128 and tensor absmax kernels: the
/// warps' maxima, for the one-pass kernel the "counted last" flag, and for
/// the transposed block128 kernel its tile's transpose.
int64_t getAbsMaxSharedBytes(const QuantPlan &plan) {
  return (plan.warps() > 1 ? 4 * plan.warps() : 0) + (plan.onePass ? 4 : 0) +
         (plan.transposed ? kScaleBlock * kTransposeStride : 0);
}

/// The blocks of `plan`'s kernel an SM of `target` holds at once with
/// `registers` a thread and `sharedBytes` a block.
int64_t getResidentBlocks(const QuantPlan &plan, int64_t registers,
                          int64_t sharedBytes, const KernelTarget &target) {
  KernelResources r;
  r.blocks = 1;
  r.threadsPerBlock = plan.numThreads;
  r.registersPerThread = registers;
  r.sharedBytesPerBlock = sharedBytes;
  return getOccupancy(r, SmLimits::get(*target.info)).blocksPerSm;
}

/// The one-pass kernel's registers a thread: its held vectors (as loaded),
/// one vector's conversion, addresses and the loop state.
int64_t getOnePassRegisters(const QuantPlan &plan) {
  int64_t vectorRegisters =
      llvm::divideCeil(plan.vectorWidth * elementBytes(plan.inputType), 4);
  return 40 + plan.heldTiles * plan.vectorsPerThread * vectorRegisters +
         2 * plan.vectorWidth;
}

/// The one-pass kernel's blocks per SM: the persistent grid's size and the
/// kernel's nvvm.minctasm (so that ptxas keeps to the registers that let
/// that many blocks in; the runtime caps the grid at what the driver says
/// fits, should ptxas need more).
int64_t getOnePassBlocksPerSm(const QuantPlan &plan,
                              const KernelTarget &target) {
  return std::max<int64_t>(1, getResidentBlocks(plan, getOnePassRegisters(plan),
                                                getAbsMaxSharedBytes(plan),
                                                target));
}

/// The dynamic block128 kernel's registers a thread as ptxas allocates them
/// unbounded: its share of the 128×128 tile, held across the block's
/// reduction, and their conversions (bf16 widens by a shift, f16 and f32
/// take more): 91 / 117 / 116 for bf16 / f16 / f32 at 8 warps, 163 and 56
/// for bf16 at 4 and 16 warps.
int64_t getBlockAbsMaxRegisters(const QuantPlan &plan) {
  int64_t elements = plan.vectorsPerThread * plan.vectorWidth;
  return 20 + elements * (plan.inputType.isBF16() ? 9 : 12) / 8;
}

/// The registers a thread of the dynamic block128 kernel is compiled for,
/// and the blocks an SM that asks of ptxas (its nvvm.minctasm; 0: none):
/// 7/8 of what ptxas takes unbounded where that lets one more block in. A
/// block loads its tile, then reduces, converts and stores it with no load
/// in flight, so the bytes an SM keeps in flight grow with its blocks: the
/// 8-warp bf16 kernel in 80 registers (3 blocks, no spill) took 51.4
/// instead of 57.9 µs at 8192×8192 (docs/perf/memory-ops.md v10); 4 blocks
/// (64 registers, spilled) took 62.
std::pair<int64_t, int64_t> getBlockAbsMaxBudget(const QuantPlan &plan,
                                                 const KernelTarget &target) {
  int64_t sharedBytes = getAbsMaxSharedBytes(plan);
  int64_t unbounded = getBlockAbsMaxRegisters(plan);
  int64_t budget = unbounded * 7 / 8;
  int64_t blocks = getResidentBlocks(plan, budget, sharedBytes, target);
  if (blocks > getResidentBlocks(plan, unbounded, sharedBytes, target))
    return {budget, blocks};
  return {unbounded, 0};
}

/// What `tile` costs: every element read once (twice for the dynamic tensor
/// scale) and written once; the tile sets parallelism and bytes in flight.
KernelResources estimateQuantResources(Operation *op, TileConfigAttr tile,
                                       const KernelTarget &target) {
  QuantPlan plan = makePlan(op, tile, target);
  int64_t rows = getEstimatedRows(op);
  int64_t cols = ShapedType::isDynamic(plan.cols) ? 4096 : plan.cols;
  int64_t in = elementBytes(plan.inputType),
          out = elementBytes(plan.outputType);
  KernelResources r;
  r.threadsPerBlock = plan.numThreads;
  int64_t rowTiles = llvm::divideCeil(rows, plan.tileRows);
  switch (plan.kind) {
  case KernelKind::RowAbsMax:
    r.blocks = rowTiles;
    r.sharedBytesPerBlock = plan.threadsPerRow > 32 ? 4 * plan.warps() : 0;
    break;
  case KernelKind::BlockAbsMax:
  case KernelKind::TensorAbsMax:
    r.blocks = rowTiles * llvm::divideCeil(cols, plan.tileCols);
    r.sharedBytesPerBlock = getAbsMaxSharedBytes(plan);
    break;
  case KernelKind::Elementwise:
    r.blocks = rowTiles * llvm::divideCeil(cols, plan.tileCols);
    break;
  }
  r.registersPerThread = 24 + plan.vectorsPerThread * plan.vectorWidth * 3 / 2;
  if (plan.onePass)
    r.registersPerThread = getOnePassRegisters(plan);
  if (plan.kind == KernelKind::BlockAbsMax)
    r.registersPerThread = getBlockAbsMaxBudget(plan, target).first;
  // Per tile: its loads, then (dynamic scales) the reduction.
  r.dependentLoads = 1;
  r.itemsPerThread = plan.vectorsPerThread;
  switch (plan.kind) {
  case KernelKind::RowAbsMax:
    r.syncWarps = plan.threadsPerRow > 32 ? plan.threadsPerRow / 32 : 0;
    break;
  case KernelKind::BlockAbsMax:
  case KernelKind::TensorAbsMax:
    r.syncWarps = plan.warps() > 1 ? plan.warps() : 0;
    break;
  case KernelKind::Elementwise:
    break;
  }
  double elements = double(rows) * cols;
  r.dramBytes = elements * (in + (plan.transposed ? 2 : 1) * out);
  r.l2Bytes = r.dramBytes;
  if (plan.onePass) {
    // A persistent grid of the blocks that fit at once, each taking its
    // tiles in batches of heldTiles: a batch's loads, then its reduction,
    // twice over (absmax, conversion). Only what the blocks cannot hold is
    // read again (from L2 where it fits there); one launch more sets the
    // scale and the barrier's count.
    int64_t tiles = r.blocks;
    r.blocks =
        std::min<int64_t>(tiles, target.info->rates.smCount *
                                     getOnePassBlocksPerSm(plan, target));
    r.itemsPerThread = plan.vectorsPerThread * plan.heldTiles;
    r.serialSteps = 2 * llvm::divideCeil(tiles, r.blocks * plan.heldTiles);
    double held = double(r.blocks) * plan.heldTiles * plan.vectorsPerTile *
                  plan.vectorWidth;
    double reread = std::max(0.0, elements - held) * in;
    r.l2Bytes += reread;
    r.dramBytes += reread * 0.5;
    r.launches = 2;
  } else if (plan.kind == KernelKind::TensorAbsMax) {
    // The second pass re-reads x (from L2 when it fits) and launches twice
    // more.
    r.l2Bytes += elements * in;
    r.dramBytes += elements * in * 0.5;
    r.launches = 3;
  }
  r.flops = elements * (plan.hardwareConvert ? 4 : 16);
  r.unit = KernelResources::ComputeUnit::Fma;
  int64_t tileVectors = plan.kind == KernelKind::RowAbsMax
                            ? plan.tileRows * plan.vectorsPerTileRow
                            : plan.vectorsPerTile;
  r.bytesInFlightPerBlock =
      double(std::min(tileVectors, plan.numThreads * plan.vectorsPerThread)) *
      plan.vectorWidth * in * plan.heldTiles;
  return r;
}

//===----------------------------------------------------------------------===//
// Kernel bodies
//===----------------------------------------------------------------------===//

/// One vector of a thread: where it starts and whether it exists.
struct Chunk {
  Value row, col;
  /// i1, or null where the vector always exists.
  Value valid;
  /// Where it is loaded from: (row, col) clamped into the matrix and into
  /// the vector's scale group, so that loads need no branch. A vector past
  /// the matrix loads a copy of one of its group, which leaves the group's
  /// absmax alone, and is not stored.
  Value loadRow, loadCol;
};

/// `part` appended to the vector `acc` (null: none yet).
Value appendVector(ImplicitLocOpBuilder &b, Value acc, Value part) {
  if (!acc)
    return part;
  int64_t size = cast<VectorType>(acc.getType()).getNumElements() +
                 cast<VectorType>(part.getType()).getNumElements();
  return vector::ShuffleOp::create(
      b, acc, part, llvm::to_vector(llvm::seq<int64_t>(0, size)));
}

Value cmpULT(ImplicitLocOpBuilder &b, Value lhs, Value rhs) {
  return arith::CmpIOp::create(b, arith::CmpIPredicate::ult, lhs, rhs);
}

/// What dividing by a scale needs: the scale, its reciprocal (an IEEE
/// division, once per scale), and whether the reciprocal route is exact for
/// it (see `QuantKernelBuilder::divide`).
struct Divisor {
  Value scale, reciprocal;
  /// i1, or null where the scale is known to be in range (computed scales).
  Value inRange;
};

/// Builds the kernel bodies of one op: the pieces they share.
class QuantKernelBuilder {
public:
  QuantKernelBuilder(ImplicitLocOpBuilder &b, const QuantPlan &plan)
      : b(b), plan(plan), f32(b.getF32Type()) {}

  /// Elementwise: converts the tile at block (x: row tile, y: column tile),
  /// or with `lastTilesFirst` the tile at the mirrored block (the last tile
  /// at block 0). Arguments: input, scale, output.
  void buildElementwise(gpu::GPUFuncOp kernel, bool lastTilesFirst = false);

  /// Dynamic row quantize. Arguments: x, q, scale [M].
  void buildRowAbsMax(gpu::GPUFuncOp kernel);

  /// Dynamic block128 quantize. Arguments: x, q, scale [⌈M/128⌉, ⌈K/128⌉],
  /// and with `plan.transposed` qᵀ [K, M'] (workgroup buffer: the tile's
  /// transpose).
  void buildBlockAbsMax(gpu::GPUFuncOp kernel);

  /// Dynamic tensor quantize, first kernel: scale[] = scale of amax 0; for
  /// the one-pass kernel (arguments scale, q; launched on its grid) also
  /// zeroes the grid barrier's words of q where q has rows: the arrival
  /// count and each block's wake-up word.
  void buildTensorScaleInit(gpu::GPUFuncOp kernel);

  /// Dynamic tensor quantize in one cooperative kernel (see the file
  /// comment). Arguments: x, q, scale.
  void buildTensorOnePass(gpu::GPUFuncOp kernel);

  /// Dynamic tensor quantize, second kernel: raises scale[] to the scale of
  /// the block's tile. Arguments: x, scale.
  void buildTensorAbsMax(gpu::GPUFuncOp kernel);

private:
  /// Raises the tensor scale at `scalePointer` (a global f32) to the scale
  /// of `amax` (one thread of a block).
  void raiseScale(Value scalePointer, Value amax);
  /// Row and column of the first element of tile `tile` (row-major order of
  /// the [rows/tileRows, cols/tileCols] tiles).
  std::pair<Value, Value> getTileOrigin(Value tile);
  /// The one-pass kernel's word of q on which `block` waits at the grid
  /// barrier (a global pointer to an i32).
  Value getBarrierWord(Value q, Value block);
  /// The vectors of the tile at (rowBase, colBase) that thread `tid` takes.
  SmallVector<Chunk> getTileChunks(Value rows, Value rowBase, Value colBase,
                                   Value tid);
  /// Loads every chunk (zeros where it does not exist), all loads first.
  SmallVector<Value> loadChunks(Value memref, ArrayRef<Chunk> chunks);
  /// max |x| over the finite elements of this thread's vectors, as f32.
  Value threadAbsMax(ArrayRef<Value> values);
  /// The scale of a group with absmax `amax`.
  Value scaleOf(Value amax);
  /// The scale of the vector at (row, col) for the elementwise kernel.
  Value lookupScale(Value scale, Value tensorScale, const Chunk &chunk);
  /// The divisor of `scale`; `computed` where the kernel computed it.
  Divisor makeDivisor(Value scale, bool computed);
  /// x / scale (f32 vectors) rounded as an IEEE f32 division rounds it.
  Value divide(Value x, const Divisor &divisor);
  /// A loaded vector as f32.
  Value extendToF32(Value x);
  /// FP8 codes of `values` (x/scale) with the signs of `signSource`, by
  /// cvt.rn.satfinite (sm_90).
  Value encodeWithCvt(Value values, Value signSource);
  /// The f32 values of FP8 codes `q` by cvt.rn.f16x2 (sm_90), NaN signs
  /// not kept.
  Value decodeWithCvt(Value q);
  /// The FP8 vector of `x` (a loaded vector).
  Value quantizeVector(Value x, const Divisor &divisor);
  /// Quantizes `x` (a loaded vector) and stores it at `chunk`.
  void storeQuantized(Value x, const Divisor &divisor, Value q,
                      const Chunk &chunk) {
    storeFp8(quantizeVector(x, divisor), q, chunk);
  }
  void storeFp8(Value fp8, Value q, const Chunk &chunk) {
    vector::StoreOp::create(b, fp8, q, ValueRange{chunk.row, chunk.col},
                            /*nontemporal=*/false,
                            llvm::MaybeAlign(getAlignment(plan.fp8Type)));
  }
  /// buildBlockAbsMax's transposed output: the block's FP8 vectors `fp8`
  /// (of `chunks`) through shared memory into qᵀ, zeros for rows past M.
  void storeTransposed(gpu::GPUFuncOp kernel, ArrayRef<Chunk> chunks,
                       ArrayRef<Value> fp8, Value rows, Value rowBase,
                       Value colBase, Value tid);
  /// Dequantizes `q` (a loaded vector) with `scale` and stores it.
  void storeDequantized(Value q, Value scale, Value out, const Chunk &chunk);

  VectorType getVectorType(Type elementType) const {
    return VectorType::get({plan.vectorWidth}, elementType);
  }
  int64_t getAlignment(Type elementType) const {
    return vectorAlignment(elementType, plan.vectorWidth);
  }

  ImplicitLocOpBuilder &b;
  const QuantPlan &plan;
  Type f32;
};

SmallVector<Chunk> QuantKernelBuilder::getTileChunks(Value rows, Value rowBase,
                                                     Value colBase, Value tid) {
  const int64_t threads = plan.numThreads, width = plan.vectorWidth;
  // Only a last tile column can run past K; only a last tile row past M.
  bool colsMayOverflow = plan.cols % plan.tileCols != 0;
  // Kernels run only for M > 0.
  Value lastRow = arith::SubIOp::create(b, rows, cIndex(b, 1));
  SmallVector<Chunk> chunks;
  for (int64_t s = 0; s < plan.vectorsPerThread; ++s) {
    Value v = arith::AddIOp::create(b, cIndex(b, s * threads), tid);
    Chunk chunk;
    Value loadV = v;
    if ((s + 1) * threads > plan.vectorsPerTile) {
      chunk.valid = cmpULT(b, v, cIndex(b, plan.vectorsPerTile));
      loadV = arith::MinUIOp::create(b, v, cIndex(b, plan.vectorsPerTile - 1));
    }
    auto position = [&](Value vector, Value &row, Value &col) {
      Value r =
          arith::DivUIOp::create(b, vector, cIndex(b, plan.vectorsPerTileRow));
      Value c =
          arith::RemUIOp::create(b, vector, cIndex(b, plan.vectorsPerTileRow));
      row = arith::AddIOp::create(b, rowBase, r);
      col = arith::AddIOp::create(
          b, colBase, arith::MulIOp::create(b, c, cIndex(b, width)));
    };
    position(v, chunk.row, chunk.col);
    if (loadV == v) {
      chunk.loadRow = chunk.row;
      chunk.loadCol = chunk.col;
    } else {
      position(loadV, chunk.loadRow, chunk.loadCol);
    }
    chunk.valid = andOrNull(b, chunk.valid, cmpULT(b, chunk.row, rows));
    chunk.loadRow = arith::MinUIOp::create(b, chunk.loadRow, lastRow);
    if (colsMayOverflow) {
      chunk.valid =
          andOrNull(b, chunk.valid, cmpULT(b, chunk.col, cIndex(b, plan.cols)));
      chunk.loadCol = arith::MinUIOp::create(b, chunk.loadCol,
                                             cIndex(b, plan.cols - width));
    }
    chunks.push_back(chunk);
  }
  return chunks;
}

SmallVector<Value> QuantKernelBuilder::loadChunks(Value memref,
                                                  ArrayRef<Chunk> chunks) {
  Type elementType = cast<MemRefType>(memref.getType()).getElementType();
  VectorType vecType = getVectorType(elementType);
  int64_t align = getAlignment(elementType);
  SmallVector<Value> values;
  for (const Chunk &chunk : chunks)
    values.push_back(vector::LoadOp::create(
        b, vecType, memref, ValueRange{chunk.loadRow, chunk.loadCol},
        /*nontemporal=*/false, llvm::MaybeAlign(align)));
  return values;
}

Value QuantKernelBuilder::threadAbsMax(ArrayRef<Value> values) {
  // |x|·0 + |x| is |x| for finite x and NaN for ±inf and NaN, and maxnum
  // skips NaN: max |x| over finite x in an FMA and a max per element.
  VectorType vecF32 = getVectorType(f32);
  Value zeros = arith::ConstantOp::create(b, b.getZeroAttr(vecF32));
  Value amax = cF32(b, 0.0f);
  for (Value value : values) {
    Value abs = math::AbsFOp::create(b, extendToF32(value));
    Value finite = math::FmaOp::create(b, abs, zeros, abs);
    amax = arith::MaxNumFOp::create(
        b, amax,
        vector::ReductionOp::create(b, vector::CombiningKind::MAXNUMF, finite));
  }
  return amax;
}

Value QuantKernelBuilder::scaleOf(Value amax) {
  return arith::DivFOp::create(
      b, arith::MaximumFOp::create(b, amax, cF32(b, kMinAbsMax)),
      cF32(b, getFp8MaxFinite(plan.fp8Type)));
}

Value QuantKernelBuilder::lookupScale(Value scale, Value tensorScale,
                                      const Chunk &chunk) {
  switch (plan.granularity) {
  case ScaleGranularity::tensor:
    return tensorScale;
  case ScaleGranularity::row:
    return memref::LoadOp::create(b, scale, ValueRange{chunk.row});
  case ScaleGranularity::block128: {
    Value c128 = cIndex(b, kScaleBlock);
    return memref::LoadOp::create(
        b, scale,
        ValueRange{arith::DivUIOp::create(b, chunk.row, c128),
                   arith::DivUIOp::create(b, chunk.col, c128)});
  }
  }
  llvm_unreachable("unknown granularity");
}

Divisor QuantKernelBuilder::makeDivisor(Value scale, bool computed) {
  Divisor divisor;
  divisor.scale = scale;
  divisor.reciprocal = arith::DivFOp::create(b, cF32(b, 1.0f), scale);
  // Computed scales lie in [1e-12/57344, FLT_MAX/448], well inside.
  if (!computed)
    divisor.inRange = arith::AndIOp::create(
        b,
        arith::CmpFOp::create(b, arith::CmpFPredicate::OGE, scale,
                              cF32(b, std::ldexp(1.0f, -126))),
        arith::CmpFOp::create(b, arith::CmpFPredicate::OLT, scale,
                              cF32(b, std::ldexp(1.0f, 126))));
  return divisor;
}

Value QuantKernelBuilder::divide(Value x, const Divisor &divisor) {
  VectorType vecF32 = getVectorType(f32);
  Value scale = vector::BroadcastOp::create(b, vecF32, divisor.scale);
  // An IEEE division per element costs about eight instructions; with the
  // scale's reciprocal r = RN(1/s), three give the same result: q0 = x·r is
  // within an ulp of x/s, so its remainder x − q0·s is exact in one FMA, and
  // q0 + remainder·r rounds to RN(x/s) (Markstein's theorem; it needs s and
  // r normal: `inRange`). Quotients beyond the f32 range don't matter: they
  // saturate either way, and where x·r overflows, or x is inf or NaN, the
  // correction is NaN and q0 (±inf, NaN) stands.
  auto viaReciprocal = [&]() -> Value {
    Value r = vector::BroadcastOp::create(b, vecF32, divisor.reciprocal);
    Value q0 = arith::MulFOp::create(b, x, r);
    Value remainder =
        math::FmaOp::create(b, arith::NegFOp::create(b, q0), scale, x);
    Value q1 = math::FmaOp::create(b, remainder, r, q0);
    return arith::SelectOp::create(
        b, arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, q1, q1), q0, q1);
  };
  if (!divisor.inRange)
    return viaReciprocal();
  // A scale of the user's beyond that range (uniform in the group) divides.
  auto ifOp = scf::IfOp::create(b, vecF32, divisor.inRange,
                                /*addThenBlock=*/true, /*addElseBlock=*/true);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(ifOp.thenBlock());
  scf::YieldOp::create(b, viaReciprocal());
  b.setInsertionPointToStart(ifOp.elseBlock());
  scf::YieldOp::create(b, arith::DivFOp::create(b, x, scale).getResult());
  return ifOp.getResult(0);
}

Value QuantKernelBuilder::extendToF32(Value x) {
  // bf16 is the upper half of an f32: a shift, which also keeps NaN signs.
  if (!getElementTypeOrSelf(x.getType()).isBF16())
    return castFloat(b, x, f32);
  VectorType i32Vec = getVectorType(b.getI32Type());
  Value bits = arith::ExtUIOp::create(
      b, i32Vec, arith::BitcastOp::create(b, getVectorType(b.getI16Type()), x));
  bits = arith::ShLIOp::create(
      b, bits,
      arith::ConstantOp::create(b,
                                DenseElementsAttr::get(i32Vec, APInt(32, 16))));
  return arith::BitcastOp::create(b, getVectorType(f32), bits);
}

Value QuantKernelBuilder::encodeWithCvt(Value values, Value signSource) {
  // cvt.rn.satfinite rounds to nearest even, keeps subnormals and saturates
  // finite values and ±inf to ±max, as convertF32ToFp8 does; it returns NaN
  // without the input's sign, and the quotient's sign is lost in NaN
  // anyway. So the sign bytes of x are or-ed in afterwards (a no-op on every
  // other code, whose sign is already x's), on 32-bit words of 4 codes.
  const int64_t width = plan.vectorWidth;
  Type i8 = b.getI8Type();
  auto pairType = VectorType::get({2}, i8);
  Value codes;
  for (int64_t i = 0; i < width; i += 2) {
    // The first operand lands in the upper byte: element i + 1.
    Value pair = NVVM::ConvertF32x2ToF8x2Op::create(
        b, pairType, vector::ExtractOp::create(b, values, i + 1),
        vector::ExtractOp::create(b, values, i), NVVM::FPRoundingMode::RN,
        NVVM::SaturationMode::SATFINITE, /*relu=*/false, plan.fp8Type);
    codes = appendVector(b, codes, pair);
  }
  // The top byte of each f32 of signSource, masked to its sign bit.
  SmallVector<int64_t> topBytes;
  for (int64_t i = 0; i < width; ++i)
    topBytes.push_back(4 * i + 3);
  Value bytes = vector::BitCastOp::create(b, VectorType::get({4 * width}, i8),
                                          signSource);
  Value signs = vector::ShuffleOp::create(b, bytes, bytes, topBytes);
  // Words of 4 codes (2 where the vector has only 2).
  int64_t wordBytes = width % 4 == 0 ? 4 : 2;
  Type wordType = b.getIntegerType(8 * wordBytes);
  auto wordsType = VectorType::get({width / wordBytes}, wordType);
  auto splat = [&](uint64_t byte) -> Value {
    uint64_t word = 0;
    for (int64_t i = 0; i < wordBytes; ++i)
      word |= byte << (8 * i);
    return arith::ConstantOp::create(
        b, DenseElementsAttr::get(wordsType, APInt(8 * wordBytes, word)));
  };
  Value words = vector::BitCastOp::create(b, wordsType, codes);
  words = arith::OrIOp::create(
      b, words,
      arith::AndIOp::create(b, vector::BitCastOp::create(b, wordsType, signs),
                            splat(0x80)));
  if (isa<Float8E5M2Type>(plan.fp8Type)) {
    // e5m2's NaN is 0x7E (the op's and the reference's); turn a 0x7F of the
    // instruction into it: +1 carries into bit 7 of a byte only from 0x7F.
    Value low = arith::AndIOp::create(b, words, splat(0x7f));
    Value isAllOnes = arith::AndIOp::create(
        b, arith::AddIOp::create(b, low, splat(0x01)), splat(0x80));
    words = arith::XOrIOp::create(
        b, words,
        arith::ShRUIOp::create(
            b, isAllOnes,
            arith::ConstantOp::create(
                b,
                DenseElementsAttr::get(wordsType, APInt(8 * wordBytes, 7)))));
  }
  return arith::BitcastOp::create(
      b, getVectorType(plan.fp8Type),
      vector::BitCastOp::create(b, getVectorType(i8), words));
}

Value QuantKernelBuilder::decodeWithCvt(Value q) {
  // cvt.rn.f16x2.{e4m3x2,e5m2x2} is exact (every FP8 value is an f16), and
  // so is f16 to f32.
  const int64_t width = plan.vectorWidth;
  Type i8 = b.getI8Type();
  auto pairType = VectorType::get({2}, i8);
  auto halfPairType = VectorType::get({2}, b.getF16Type());
  Value bytes = arith::BitcastOp::create(b, getVectorType(i8), q);
  Value halves;
  for (int64_t i = 0; i < width; i += 2) {
    Value pair = vector::ShuffleOp::create(b, pairType, bytes, bytes,
                                           ArrayRef<int64_t>{i, i + 1});
    Value converted = NVVM::ConvertF8x2ToF16x2Op::create(
        b, halfPairType, pair, /*relu=*/false, plan.fp8Type);
    halves = appendVector(b, halves, converted);
  }
  return castFloat(b, halves, f32);
}

Value QuantKernelBuilder::quantizeVector(Value x, const Divisor &divisor) {
  Value wide = extendToF32(x);
  Value quotient = divide(wide, divisor);
  // The GPU's arithmetic returns NaN without its sign, and so does its f16
  // to f32 conversion. scale > 0, so the quotient has x's sign: put it back
  // from x's bits, so that -NaN quantizes to -NaN.
  Value signSource = wide;
  Type elementType = getElementTypeOrSelf(x.getType());
  if (elementType.isF16()) {
    VectorType i32Vec = getVectorType(b.getI32Type());
    Value bits = arith::ExtUIOp::create(
        b, i32Vec,
        arith::BitcastOp::create(b, getVectorType(b.getI16Type()), x));
    bits = arith::ShLIOp::create(
        b, bits,
        arith::ConstantOp::create(
            b, DenseElementsAttr::get(i32Vec, APInt(32, 16))));
    signSource = arith::BitcastOp::create(b, getVectorType(f32), bits);
  }
  return plan.hardwareConvert
             ? encodeWithCvt(quotient, signSource)
             : convertF32ToFp8(
                   b, math::CopySignOp::create(b, quotient, signSource),
                   plan.fp8Type);
}

void QuantKernelBuilder::storeDequantized(Value q, Value scale, Value out,
                                          const Chunk &chunk) {
  // scale > 0: the product has the code's sign, which the GPU's
  // multiplication drops from NaN. Or-ing in the code's sign bit puts it
  // back (a no-op elsewhere); an integer or, which LLVM keeps on the f32
  // rather than moving a copysign past the final conversion.
  Value decoded =
      plan.hardwareConvert ? decodeWithCvt(q) : convertFp8ToF32(b, q);
  Type i8 = b.getI8Type();
  VectorType i32Vec = getVectorType(b.getI32Type());
  int64_t width = plan.vectorWidth;
  SmallVector<int64_t> codeOnTop;
  for (int64_t i = 0; i < width; ++i)
    codeOnTop.append({width, width, width, i});
  Value bytes = arith::BitcastOp::create(b, getVectorType(i8), q);
  Value zeros = arith::ConstantOp::create(b, b.getZeroAttr(getVectorType(i8)));
  Value signBits = arith::AndIOp::create(
      b,
      vector::BitCastOp::create(
          b, i32Vec, vector::ShuffleOp::create(b, bytes, zeros, codeOnTop)),
      arith::ConstantOp::create(
          b, DenseElementsAttr::get(i32Vec, APInt(32, 0x80000000))));
  Value product = arith::MulFOp::create(
      b, decoded, vector::BroadcastOp::create(b, getVectorType(f32), scale));
  Value value = arith::BitcastOp::create(
      b, getVectorType(f32),
      arith::OrIOp::create(b, arith::BitcastOp::create(b, i32Vec, product),
                           signBits));
  vector::StoreOp::create(b, castFloat(b, value, plan.outputType), out,
                          ValueRange{chunk.row, chunk.col},
                          /*nontemporal=*/false,
                          llvm::MaybeAlign(getAlignment(plan.outputType)));
}

void QuantKernelBuilder::buildElementwise(gpu::GPUFuncOp kernel,
                                          bool lastTilesFirst) {
  Value input = kernel.getArgument(0), scale = kernel.getArgument(1),
        output = kernel.getArgument(2);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  auto tileOf = [&](gpu::Dimension dim) -> Value {
    Value block = gpu::BlockIdOp::create(b, dim);
    if (!lastTilesFirst)
      return block;
    return arith::SubIOp::create(
        b,
        arith::SubIOp::create(b, gpu::GridDimOp::create(b, dim), cIndex(b, 1)),
        block);
  };
  Value rowTile = tileOf(gpu::Dimension::x);
  Value colTile = tileOf(gpu::Dimension::y);
  Value rows = memref::DimOp::create(b, input, 0);
  Value rowBase = arith::MulIOp::create(b, rowTile, cIndex(b, plan.tileRows));
  Value colBase = arith::MulIOp::create(b, colTile, cIndex(b, plan.tileCols));
  SmallVector<Chunk> chunks = getTileChunks(rows, rowBase, colBase, tid);
  Value tensorScale;
  std::optional<Divisor> tensorDivisor;
  if (plan.granularity == ScaleGranularity::tensor) {
    tensorScale = memref::LoadOp::create(b, scale, ValueRange{});
    if (plan.quantize)
      tensorDivisor = makeDivisor(tensorScale, /*computed=*/false);
  }
  SmallVector<Value> values = loadChunks(input, chunks);
  for (auto [chunk, value] : llvm::zip_equal(chunks, values)) {
    ifThen(b, chunk.valid, [&] {
      if (!plan.quantize) {
        storeDequantized(value, lookupScale(scale, tensorScale, chunk), output,
                         chunk);
        return;
      }
      storeQuantized(value,
                     tensorDivisor
                         ? *tensorDivisor
                         : makeDivisor(lookupScale(scale, tensorScale, chunk),
                                       /*computed=*/false),
                     output, chunk);
    });
  }
}

void QuantKernelBuilder::buildRowAbsMax(gpu::GPUFuncOp kernel) {
  Value x = kernel.getArgument(0), q = kernel.getArgument(1),
        scale = kernel.getArgument(2);
  const int64_t perRow = plan.threadsPerRow, width = plan.vectorWidth;
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value bid = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value rows = memref::DimOp::create(b, x, 0);
  Value laneInRow = arith::RemUIOp::create(b, tid, cIndex(b, perRow));
  Value row = arith::AddIOp::create(
      b, arith::MulIOp::create(b, bid, cIndex(b, plan.tileRows)),
      arith::DivUIOp::create(b, tid, cIndex(b, perRow)));
  Value rowValid = cmpULT(b, row, rows);
  Value loadRow = arith::MinUIOp::create(
      b, row, arith::SubIOp::create(b, rows, cIndex(b, 1)));

  SmallVector<Chunk> chunks;
  for (int64_t s = 0; s < plan.vectorsPerThread; ++s) {
    Value v = arith::AddIOp::create(b, cIndex(b, s * perRow), laneInRow);
    Chunk chunk;
    chunk.row = row;
    chunk.loadRow = loadRow;
    chunk.col = arith::MulIOp::create(b, v, cIndex(b, width));
    chunk.loadCol = chunk.col;
    chunk.valid = rowValid;
    if ((s + 1) * perRow > plan.vectorsPerTileRow) {
      chunk.valid = andOrNull(b, chunk.valid,
                              cmpULT(b, v, cIndex(b, plan.vectorsPerTileRow)));
      chunk.loadCol = arith::MulIOp::create(
          b,
          arith::MinUIOp::create(b, v, cIndex(b, plan.vectorsPerTileRow - 1)),
          cIndex(b, width));
    }
    chunks.push_back(chunk);
  }
  SmallVector<Value> values = loadChunks(x, chunks);

  // Every thread takes part in the reduction, rows past M included: the
  // shuffles and the barrier need the whole warp and block.
  Value amax = threadAbsMax(values);
  if (perRow <= 32) {
    // A row's threads are aligned groups of lanes: xor shuffles within them.
    for (int32_t offset = perRow / 2; offset > 0; offset /= 2) {
      Value other = gpu::ShuffleOp::create(b, amax, offset, /*width=*/32,
                                           gpu::ShuffleMode::XOR)
                        .getShuffleResult();
      amax = arith::MaximumFOp::create(b, amax, other);
    }
  } else {
    // Whole warps per row: reduce each warp, then the row's warps through
    // shared memory.
    amax = warpAllReduceMax(b, amax);
    Value reduceBuffer = kernel.getWorkgroupAttributions()[0];
    Value c32 = cIndex(b, 32);
    Value warp = arith::DivUIOp::create(b, tid, c32);
    ifThen(b,
           arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                 arith::RemUIOp::create(b, tid, c32),
                                 cIndex(b, 0)),
           [&] {
             memref::StoreOp::create(b, amax, reduceBuffer, ValueRange{warp});
           });
    gpu::BarrierOp::create(b);
    int64_t warpsPerRow = perRow / 32;
    Value firstWarp = arith::MulIOp::create(
        b, arith::DivUIOp::create(b, tid, cIndex(b, perRow)),
        cIndex(b, warpsPerRow));
    amax = cF32(b, 0.0f);
    for (int64_t w = 0; w < warpsPerRow; ++w)
      amax = arith::MaximumFOp::create(
          b, amax,
          memref::LoadOp::create(
              b, reduceBuffer,
              ValueRange{arith::AddIOp::create(b, firstWarp, cIndex(b, w))}));
  }
  Value rowScale = scaleOf(amax);
  Divisor divisor = makeDivisor(rowScale, /*computed=*/true);
  ifThen(
      b,
      arith::AndIOp::create(b, rowValid,
                            arith::CmpIOp::create(b, arith::CmpIPredicate::eq,
                                                  laneInRow, cIndex(b, 0))),
      [&] { memref::StoreOp::create(b, rowScale, scale, ValueRange{row}); });
  for (auto [chunk, value] : llvm::zip_equal(chunks, values))
    ifThen(b, chunk.valid, [&] { storeQuantized(value, divisor, q, chunk); });
}

void QuantKernelBuilder::buildBlockAbsMax(gpu::GPUFuncOp kernel) {
  Value x = kernel.getArgument(0), q = kernel.getArgument(1),
        scale = kernel.getArgument(2);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value rowBlock = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value colBlock = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  Value rows = memref::DimOp::create(b, x, 0);
  Value c128 = cIndex(b, kScaleBlock);
  SmallVector<Chunk> chunks =
      getTileChunks(rows, arith::MulIOp::create(b, rowBlock, c128),
                    arith::MulIOp::create(b, colBlock, c128), tid);
  SmallVector<Value> values = loadChunks(x, chunks);
  Value amax = blockAllReduceMax(
      b, threadAbsMax(values), plan.warps(),
      plan.warps() > 1 ? Value(kernel.getWorkgroupAttributions()[0]) : Value());
  Value blockScale = scaleOf(amax);
  Divisor divisor = makeDivisor(blockScale, /*computed=*/true);
  ifThen(b,
         arith::CmpIOp::create(b, arith::CmpIPredicate::eq, tid, cIndex(b, 0)),
         [&] {
           memref::StoreOp::create(b, blockScale, scale,
                                   ValueRange{rowBlock, colBlock});
         });
  if (!plan.transposed) {
    for (auto [chunk, value] : llvm::zip_equal(chunks, values))
      ifThen(b, chunk.valid, [&] { storeQuantized(value, divisor, q, chunk); });
    return;
  }
  SmallVector<Value> fp8;
  for (auto [chunk, value] : llvm::zip_equal(chunks, values)) {
    fp8.push_back(quantizeVector(value, divisor));
    ifThen(b, chunk.valid, [&] { storeFp8(fp8.back(), q, chunk); });
  }
  storeTransposed(kernel, chunks, fp8, rows,
                  arith::MulIOp::create(b, rowBlock, c128),
                  arith::MulIOp::create(b, colBlock, c128), tid);
}

void QuantKernelBuilder::storeTransposed(gpu::GPUFuncOp kernel,
                                         ArrayRef<Chunk> chunks,
                                         ArrayRef<Value> fp8, Value rows,
                                         Value rowBase, Value colBase,
                                         Value tid) {
  // 1. Each vector's bytes down column (row - rowBase) of the tile's
  //    transpose T [128][kTransposeStride] (T[c][r] = q[r][c]), zeros for
  //    rows past M (they pad qᵀ's rows to M').
  Value qT = kernel.getArgument(3);
  Value tile = kernel.getWorkgroupAttributions().back();
  Type i8 = b.getI8Type();
  auto bytesType = VectorType::get({plan.vectorWidth}, i8);
  Value zeros = arith::ConstantOp::create(b, b.getZeroAttr(bytesType));
  Value stride = cIndex(b, kTransposeStride);
  // Only where threads take more vectors than the tile has can a chunk lie
  // past the tile (see getTileChunks).
  bool pastTile = plan.numThreads * plan.vectorsPerThread > plan.vectorsPerTile;
  for (auto [chunk, value] : llvm::zip_equal(chunks, fp8)) {
    Value localRow = arith::SubIOp::create(b, chunk.row, rowBase);
    Value localCol = arith::SubIOp::create(b, chunk.col, colBase);
    Value bytes = arith::SelectOp::create(
        b, cmpULT(b, chunk.row, rows),
        arith::BitcastOp::create(b, bytesType, value), zeros);
    auto scatter = [&] {
      for (int64_t i = 0; i < plan.vectorWidth; ++i) {
        Value column = arith::AddIOp::create(b, localCol, cIndex(b, i));
        Value at = arith::AddIOp::create(
            b, arith::MulIOp::create(b, column, stride), localRow);
        memref::StoreOp::create(b, vector::ExtractOp::create(b, bytes, i), tile,
                                ValueRange{at});
      }
    };
    if (pastTile)
      ifThen(b, cmpULT(b, localRow, cIndex(b, kScaleBlock)), scatter);
    else
      scatter();
  }
  gpu::BarrierOp::create(b);
  // 2. Rows of T to qᵀ in pieces of kTransposePiece bytes: a thread block
  //    writes rows colBase… of qᵀ, columns rowBase…, up to K and M' (a
  //    multiple of the piece).
  const int64_t piecesPerRow = kScaleBlock / kTransposePiece;
  const int64_t pieces = kScaleBlock * piecesPerRow;
  Value cols = cIndex(b, plan.cols);
  Value transposedRows = memref::DimOp::create(b, qT, 1);
  auto pieceType = VectorType::get({kTransposePiece}, i8);
  auto fp8PieceType = VectorType::get({kTransposePiece}, plan.fp8Type);
  for (int64_t first = 0; first < pieces; first += plan.numThreads) {
    Value piece = arith::AddIOp::create(b, tid, cIndex(b, first));
    Value c = arith::DivUIOp::create(b, piece, cIndex(b, piecesPerRow));
    Value r = arith::MulIOp::create(
        b, arith::RemUIOp::create(b, piece, cIndex(b, piecesPerRow)),
        cIndex(b, kTransposePiece));
    Value outRow = arith::AddIOp::create(b, colBase, c);
    Value outCol = arith::AddIOp::create(b, rowBase, r);
    Value inside = arith::AndIOp::create(b, cmpULT(b, outRow, cols),
                                         cmpULT(b, outCol, transposedRows));
    if (first + plan.numThreads > pieces)
      inside =
          arith::AndIOp::create(b, inside, cmpULT(b, piece, cIndex(b, pieces)));
    ifThen(b, inside, [&] {
      Value at =
          arith::AddIOp::create(b, arith::MulIOp::create(b, c, stride), r);
      Value bytes =
          vector::LoadOp::create(b, pieceType, tile, ValueRange{at},
                                 /*nontemporal=*/false, llvm::MaybeAlign(4));
      vector::StoreOp::create(
          b, arith::BitcastOp::create(b, fp8PieceType, bytes), qT,
          ValueRange{outRow, outCol}, /*nontemporal=*/false,
          llvm::MaybeAlign(kTransposePiece));
    });
  }
}

void QuantKernelBuilder::buildTensorScaleInit(gpu::GPUFuncOp kernel) {
  if (!plan.onePass) {
    memref::StoreOp::create(b, scaleOf(cF32(b, 0.0f)), kernel.getArgument(0),
                            ValueRange{});
    return;
  }
  // The one-pass kernel's: block b (of the one-pass kernel's grid) zeroes
  // its barrier word, block 0 also the arrival count and the scale.
  Value q = kernel.getArgument(1);
  Value bid = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value isFirst =
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, bid, cIndex(b, 0));
  ifThen(b, isFirst, [&] {
    memref::StoreOp::create(b, scaleOf(cF32(b, 0.0f)), kernel.getArgument(0),
                            ValueRange{});
  });
  Value rows = memref::DimOp::create(b, q, 0);
  ifThen(b, cmpULT(b, cIndex(b, 0), rows), [&] {
    Value zero = arith::ConstantIntOp::create(b, b.getI32Type(), 0);
    LLVM::StoreOp::create(b, zero, getBarrierWord(q, bid),
                          /*alignment=*/4);
    ifThen(b, isFirst, [&] {
      LLVM::StoreOp::create(b, zero, getGlobalPointer(b, q), /*alignment=*/4);
    });
  });
}

std::pair<Value, Value> QuantKernelBuilder::getTileOrigin(Value tile) {
  Value colTiles = cIndex(b, llvm::divideCeil(plan.cols, plan.tileCols));
  return {arith::MulIOp::create(b, arith::DivUIOp::create(b, tile, colTiles),
                                cIndex(b, plan.tileRows)),
          arith::MulIOp::create(b, arith::RemUIOp::create(b, tile, colTiles),
                                cIndex(b, plan.tileCols))};
}

Value QuantKernelBuilder::getBarrierWord(Value q, Value block) {
  // Block b > 0: the first word of tile b, its own first tile; block 0:
  // bytes 4-7 of tile 0 (bytes 0-3 hold the arrival count). FP8 elements
  // are bytes, so a word's offset is its element's index.
  auto [rowBase, colBase] = getTileOrigin(block);
  Value offset = arith::AddIOp::create(
      b, arith::MulIOp::create(b, rowBase, cIndex(b, plan.cols)), colBase);
  offset = arith::SelectOp::create(
      b,
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, block, cIndex(b, 0)),
      cIndex(b, 4), offset);
  MLIRContext *ctx = b.getContext();
  return LLVM::GEPOp::create(
      b, LLVM::LLVMPointerType::get(ctx, /*addressSpace=*/1), b.getI8Type(),
      getGlobalPointer(b, q),
      ValueRange{arith::IndexCastUIOp::create(b, b.getI64Type(), offset)});
}

void QuantKernelBuilder::buildTensorOnePass(gpu::GPUFuncOp kernel) {
  Value x = kernel.getArgument(0), q = kernel.getArgument(1),
        scale = kernel.getArgument(2);
  Type i32 = b.getI32Type();
  const int64_t held = plan.heldTiles;
  Value c0 = cIndex(b, 0);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value bid = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value grid = gpu::GridDimOp::create(b, gpu::Dimension::x);
  Value rows = memref::DimOp::create(b, x, 0);
  Value colTiles = cIndex(b, llvm::divideCeil(plan.cols, plan.tileCols));
  Value tiles = arith::MulIOp::create(
      b, arith::CeilDivUIOp::create(b, rows, cIndex(b, plan.tileRows)),
      colTiles);
  // This block's tiles are bid + j·grid for j < count (count >= 1: the
  // grid has at most one block per tile). The last `held` stay in
  // registers; the first `streamed` are read again for the conversion.
  Value count =
      arith::CeilDivUIOp::create(b, arith::SubIOp::create(b, tiles, bid), grid);
  Value streamed = arith::SubIOp::create(
      b, count, arith::MinUIOp::create(b, count, cIndex(b, held)));

  struct Tile {
    Value index;
    SmallVector<Chunk> chunks;
    SmallVector<Value> values;
  };
  // Tile j of this block, its chunks valid only where `valid` holds (null:
  // always); loads issued, nothing waits on them yet.
  auto loadTile = [&](Value j, Value valid) {
    Tile tile;
    tile.index =
        arith::AddIOp::create(b, bid, arith::MulIOp::create(b, j, grid));
    auto [rowBase, colBase] = getTileOrigin(tile.index);
    tile.chunks = getTileChunks(rows, rowBase, colBase, tid);
    for (Chunk &chunk : tile.chunks)
      chunk.valid = andOrNull(b, chunk.valid, valid);
    tile.values = loadChunks(x, tile.chunks);
    return tile;
  };
  auto absMaxOf = [&](ArrayRef<Tile> batch, Value amax) -> Value {
    SmallVector<Value> values;
    for (const Tile &tile : batch)
      llvm::append_range(values, tile.values);
    return arith::MaximumFOp::create(b, amax, threadAbsMax(values));
  };
  auto storeTile = [&](const Tile &tile, const Divisor &divisor) {
    for (auto [chunk, value] : llvm::zip_equal(tile.chunks, tile.values))
      ifThen(b, chunk.valid, [&] { storeQuantized(value, divisor, q, chunk); });
  };

  // 1. The absmax: the streamed tiles in batches of `held` (a batch's loads
  //    in flight together; past the last, a batch reloads the last, which
  //    leaves the max alone), then the held tiles.
  auto forward = scf::ForOp::create(b, c0, streamed, cIndex(b, held),
                                    ValueRange{cF32(b, 0.0f)});
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(forward.getBody());
    Value j0 = forward.getInductionVar();
    Value last = arith::SubIOp::create(b, streamed, cIndex(b, 1));
    SmallVector<Tile> batch;
    for (int64_t i = 0; i < held; ++i) {
      Value j = arith::AddIOp::create(b, j0, cIndex(b, i));
      batch.push_back(
          loadTile(i == 0 ? j : arith::MinUIOp::create(b, j, last), Value()));
    }
    scf::YieldOp::create(b, absMaxOf(batch, forward.getRegionIterArgs()[0]));
  }
  SmallVector<Tile> kept;
  Value lastTile = arith::SubIOp::create(b, count, cIndex(b, 1));
  for (int64_t i = 0; i < held; ++i) {
    Value j = arith::AddIOp::create(b, streamed, cIndex(b, i));
    if (i == 0)
      kept.push_back(loadTile(j, Value()));
    else
      kept.push_back(loadTile(arith::MinUIOp::create(b, j, lastTile),
                              cmpULT(b, j, count)));
  }
  Value amax = blockAllReduceMax(
      b, absMaxOf(kept, forward.getResult(0)), plan.warps(),
      plan.warps() > 1 ? Value(kernel.getWorkgroupAttributions()[0]) : Value());

  // 2. The grid barrier, on words of q zeroed by the init kernel (each is
  //    overwritten with data only by a block that has passed the barrier,
  //    and only once nothing reads it any more): each block's thread 0
  //    raises scale[] to the block's scale (as buildTensorAbsMax does) and
  //    counts the block in on q's first word after a release fence. The
  //    block that counts last writes every block's wake-up word (its own
  //    first tile's first word; block 0's bytes 4-7); each block waits on its
  //    own word (acquire loads, no two blocks polling one address) and then
  //    reads the tensor's scale.
  Value counter = getGlobalPointer(b, q);
  Value scalePointer = getGlobalPointer(b, scale);
  Value gridCount = arith::IndexCastUIOp::create(b, i32, grid);
  Value one = arith::ConstantIntOp::create(b, i32, 1);
  Value lastFlag = kernel.getWorkgroupAttributions().back();
  Value isLeader = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, tid, c0);
  ifThen(b, isLeader, [&] {
    raiseScale(scalePointer, amax);
    // A release fence, then a relaxed add (NVPTX drops the ordering of a
    // release atomicrmw: plain atom.add).
    LLVM::FenceOp::create(b, LLVM::AtomicOrdering::release,
                          /*syncscope=*/"device");
    Value before = LLVM::AtomicRMWOp::create(
        b, LLVM::AtomicBinOp::add, counter, one,
        LLVM::AtomicOrdering::monotonic, /*syncscope=*/"device");
    Value last =
        arith::CmpIOp::create(b, arith::CmpIPredicate::eq, before,
                              arith::SubIOp::create(b, gridCount, one));
    memref::StoreOp::create(b, arith::ExtUIOp::create(b, i32, last), lastFlag,
                            ValueRange{c0});
  });
  gpu::BarrierOp::create(b);
  Value isLast =
      arith::CmpIOp::create(b, arith::CmpIPredicate::ne,
                            memref::LoadOp::create(b, lastFlag, ValueRange{c0}),
                            arith::ConstantIntOp::create(b, i32, 0));
  ifThen(b, isLast, [&] {
    // Every block's count (and scale) happened before this block's last
    // one; the fence passes them on to the blocks woken below.
    LLVM::FenceOp::create(b, LLVM::AtomicOrdering::acq_rel,
                          /*syncscope=*/"device");
    auto wake = scf::ForOp::create(b, tid, grid, cIndex(b, plan.numThreads));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(wake.getBody()->getTerminator());
    LLVM::StoreOp::create(b, one, getBarrierWord(q, wake.getInductionVar()),
                          /*alignment=*/4, /*isVolatile=*/false,
                          /*isNonTemporal=*/false, /*isInvariantGroup=*/false,
                          LLVM::AtomicOrdering::monotonic,
                          /*syncscope=*/"device");
  });
  ifThen(b, isLeader, [&] {
    spinUntilAtLeast(b, getBarrierWord(q, bid), one,
                     LLVM::AtomicOrdering::acquire);
  });
  gpu::BarrierOp::create(b);
  Value tensorScale = arith::BitcastOp::create(
      b, f32, loadAtomicI32(b, scalePointer, LLVM::AtomicOrdering::monotonic));
  Divisor divisor = makeDivisor(tensorScale, /*computed=*/true);

  // 3. The conversion: the held tiles from registers, then the streamed
  //    ones read again, the most recently read first (likeliest in L2).
  for (const Tile &tile : kept)
    storeTile(tile, divisor);
  auto backward = scf::ForOp::create(b, c0, streamed, cIndex(b, held));
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(backward.getBody()->getTerminator());
    Value k = backward.getInductionVar();
    Value remaining = arith::SubIOp::create(b, streamed, k);
    Value top = arith::SubIOp::create(b, remaining, cIndex(b, 1));
    SmallVector<Tile> batch;
    for (int64_t i = 0; i < held; ++i) {
      if (i == 0) {
        batch.push_back(loadTile(top, Value()));
        continue;
      }
      Value j = arith::SubIOp::create(
          b, top, arith::MinUIOp::create(b, cIndex(b, i), top));
      batch.push_back(loadTile(j, cmpULT(b, cIndex(b, i), remaining)));
    }
    for (const Tile &tile : batch)
      storeTile(tile, divisor);
  }
}

void QuantKernelBuilder::buildTensorAbsMax(gpu::GPUFuncOp kernel) {
  Value x = kernel.getArgument(0), scale = kernel.getArgument(1);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value rowTile = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value colTile = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  Value rows = memref::DimOp::create(b, x, 0);
  SmallVector<Chunk> chunks = getTileChunks(
      rows, arith::MulIOp::create(b, rowTile, cIndex(b, plan.tileRows)),
      arith::MulIOp::create(b, colTile, cIndex(b, plan.tileCols)), tid);
  Value amax =
      blockAllReduceMax(b, threadAbsMax(loadChunks(x, chunks)), plan.warps(),
                        kernel.getWorkgroupAttributions()[0]);
  ifThen(b,
         arith::CmpIOp::create(b, arith::CmpIPredicate::eq, tid, cIndex(b, 0)),
         [&] { raiseScale(getGlobalPointer(b, scale), amax); });
}

void QuantKernelBuilder::raiseScale(Value scalePointer, Value amax) {
  // The block's scale, max-ed into scale[] as u32 bits (see the file
  // comment); memref.atomic_rmw has no unsigned max on floats, and its float
  // max is a compare-and-swap loop at system scope.
  LLVM::AtomicRMWOp::create(
      b, LLVM::AtomicBinOp::umax, scalePointer,
      arith::BitcastOp::create(b, b.getI32Type(), scaleOf(amax)),
      LLVM::AtomicOrdering::monotonic, /*syncscope=*/"device");
}

//===----------------------------------------------------------------------===//
// Host side
//===----------------------------------------------------------------------===//

/// Creates a kernel and builds its body with `build`.
gpu::GPUFuncOp
makeKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module, StringRef name,
           ValueRange args, int64_t numThreads, TypeRange buffers,
           function_ref<void(ImplicitLocOpBuilder &, gpu::GPUFuncOp)> build) {
  SmallVector<Type> argTypes;
  for (Value arg : args)
    argTypes.push_back(arg.getType());
  OpBuilder::InsertionGuard guard(b);
  gpu::GPUFuncOp kernel =
      createKernel(b, b.getLoc(), module, name, argTypes, numThreads, buffers);
  b.setInsertionPoint(kernel.getBody().front().getTerminator());
  build(b, kernel);
  return kernel;
}

void launch(ImplicitLocOpBuilder &b, gpu::GPUFuncOp kernel, Value gridX,
            Value gridY, int64_t numThreads, ValueRange args) {
  Value c1 = cIndex(b, 1);
  gpu::LaunchFuncOp::create(b, kernel, gpu::KernelDim3{gridX, gridY, c1},
                            gpu::KernelDim3{cIndex(b, numThreads), c1, c1},
                            /*dynamicSharedMemorySize=*/Value(), args);
}

/// Builds the kernels of `op` and replaces it by their launches.
LogicalResult lowerQuantOp(Operation *op, TileConfigAttr tile,
                           const KernelTarget &target, gpu::GPUModuleOp module,
                           RewriterBase &rewriter) {
  QuantPlan plan = makePlan(op, tile, target);
  ImplicitLocOpBuilder b(op->getLoc(), rewriter);
  b.setInsertionPoint(op);
  QuantKernelBuilder builder(b, plan);
  Value input = op->getOperand(0);
  Value output, scale;
  if (auto quantizeOp = dyn_cast<QuantizeOp>(op)) {
    output = quantizeOp.getInits()[0];
    scale = quantizeOp.isDynamic() ? quantizeOp.getInits()[1]
                                   : quantizeOp.getScale();
  } else {
    auto dequantizeOp = cast<DequantizeOp>(op);
    output = dequantizeOp.getInits()[0];
    scale = dequantizeOp.getScale();
  }
  std::string granularity = stringifyScaleGranularity(plan.granularity).str();
  Type f32 = b.getF32Type();
  SmallVector<Type> warpBuffer = {getWorkgroupBufferType({plan.warps()}, f32)};
  SmallVector<Type> noBuffers;

  Value rows = memref::DimOp::create(b, input, 0);
  Value c1 = cIndex(b, 1);
  Value rowTiles =
      arith::CeilDivUIOp::create(b, rows, cIndex(b, plan.tileRows));
  Value colTiles = cIndex(b, llvm::divideCeil(plan.cols, plan.tileCols));
  auto buildElementwiseKernel = [&](StringRef name,
                                    bool lastTilesFirst = false) {
    return makeKernel(b, module, name, {input, scale, output}, plan.numThreads,
                      noBuffers, [&](ImplicitLocOpBuilder &, gpu::GPUFuncOp k) {
                        builder.buildElementwise(k, lastTilesFirst);
                      });
  };

  // Nothing to launch for M = 0, except that the scale of an empty tensor
  // is still defined (that of amax 0): the init kernel runs in both
  // branches, so that each branch's launches stay in order on one stream.
  gpu::GPUFuncOp init;
  SmallVector<Value> initArgs = {scale};
  if (plan.onePass)
    initArgs.push_back(output);
  if (plan.kind == KernelKind::TensorAbsMax)
    init = makeKernel(b, module, "quantize_tensor_scale_init", initArgs,
                      /*numThreads=*/1, noBuffers,
                      [&](ImplicitLocOpBuilder &, gpu::GPUFuncOp k) {
                        builder.buildTensorScaleInit(k);
                      });
  auto any = scf::IfOp::create(
      b,
      arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, rows, cIndex(b, 0)),
      /*withElse=*/static_cast<bool>(init));
  if (init) {
    b.setInsertionPointToStart(any.elseBlock());
    launch(b, init, c1, c1, 1, initArgs);
  }
  b.setInsertionPointToStart(any.thenBlock());
  switch (plan.kind) {
  case KernelKind::Elementwise: {
    std::string name =
        (plan.quantize ? "quantize_" : "dequantize_") + granularity;
    launch(b, buildElementwiseKernel(name), rowTiles, colTiles, plan.numThreads,
           {input, scale, output});
    break;
  }
  case KernelKind::RowAbsMax: {
    gpu::GPUFuncOp kernel = makeKernel(
        b, module, "quantize_row_dynamic", {input, output, scale},
        plan.numThreads, plan.threadsPerRow > 32 ? warpBuffer : noBuffers,
        [&](ImplicitLocOpBuilder &, gpu::GPUFuncOp k) {
          builder.buildRowAbsMax(k);
        });
    launch(b, kernel, rowTiles, c1, plan.numThreads, {input, output, scale});
    break;
  }
  case KernelKind::BlockAbsMax: {
    SmallVector<Value> args = {input, output, scale};
    SmallVector<Type> buffers;
    if (plan.warps() > 1)
      buffers = warpBuffer;
    if (plan.transposed) {
      args.push_back(cast<QuantizeOp>(op).getTransposedInit());
      buffers.push_back(getWorkgroupBufferType({kScaleBlock * kTransposeStride},
                                               b.getI8Type()));
    }
    gpu::GPUFuncOp kernel =
        makeKernel(b, module,
                   plan.transposed ? "quantize_block128_transposed"
                                   : "quantize_block128_dynamic",
                   args, plan.numThreads, buffers,
                   [&](ImplicitLocOpBuilder &, gpu::GPUFuncOp k) {
                     builder.buildBlockAbsMax(k);
                   });
    if (int64_t blocksPerSm = getBlockAbsMaxBudget(plan, target).second)
      kernel->setAttr("nvvm.minctasm", b.getI32IntegerAttr(blocksPerSm));
    launch(b, kernel, rowTiles, colTiles, plan.numThreads, args);
    break;
  }
  case KernelKind::TensorAbsMax: {
    if (plan.onePass) {
      SmallVector<Value> args = {input, output, scale};
      // The warps' absmax and the "this block counted last" flag.
      SmallVector<Type> buffers;
      if (plan.warps() > 1)
        buffers = warpBuffer;
      buffers.push_back(getWorkgroupBufferType({1}, b.getI32Type()));
      gpu::GPUFuncOp kernel = makeKernel(
          b, module, getCooperativeKernelName("quantize_tensor_dynamic"), args,
          plan.numThreads, buffers,
          [&](ImplicitLocOpBuilder &, gpu::GPUFuncOp k) {
            builder.buildTensorOnePass(k);
          });
      // A persistent grid of the blocks the device holds at once, which
      // the grid barrier needs (the launch is cooperative: it fails rather
      // than leave a block waiting for one that cannot start). The SM count
      // is asked before the first launch: host work between launches would
      // split them into two synchronized async regions.
      int64_t blocksPerSm = getOnePassBlocksPerSm(plan, target);
      kernel->setAttr("nvvm.minctasm", b.getI32IntegerAttr(blocksPerSm));
      Value resident = buildResidentBlocks(b, blocksPerSm);
      // The init kernel runs on the same grid: a block per barrier word.
      Value grid = arith::MinUIOp::create(
          b, arith::MulIOp::create(b, rowTiles, colTiles), resident);
      launch(b, init, grid, c1, 1, initArgs);
      launch(b, kernel, grid, c1, plan.numThreads, args);
      break;
    }
    launch(b, init, c1, c1, 1, initArgs);
    gpu::GPUFuncOp absMax =
        makeKernel(b, module, "quantize_tensor_absmax", {input, scale},
                   plan.numThreads, plan.warps() > 1 ? warpBuffer : noBuffers,
                   [&](ImplicitLocOpBuilder &, gpu::GPUFuncOp k) {
                     builder.buildTensorAbsMax(k);
                   });
    launch(b, absMax, rowTiles, colTiles, plan.numThreads, {input, scale});
    // The second pass over x takes the tiles in the first's reverse order:
    // blocks start in block order, so it begins with the tiles the first
    // read last, the likeliest to be in L2 where x is larger than L2.
    launch(b,
           buildElementwiseKernel("quantize_tensor", /*lastTilesFirst=*/true),
           rowTiles, colTiles, plan.numThreads, {input, scale, output});
    break;
  }
  }
  rewriter.eraseOp(op);
  return success();
}

/// fusedops.quantize (dynamic or static) or fusedops.dequantize, every
/// granularity: the two share their plan, checks and kernel builder.
template <typename OpT> class QuantOpStrategy final : public KernelStrategy {
public:
  explicit QuantOpStrategy(StringRef name) : name(name) {}

  StringRef getName() const override { return name; }

  bool matches(Operation *op, const KernelTarget &) const override {
    return isa<OpT>(op);
  }

  TileConfigAttr getDefaultTile(Operation *op,
                                const KernelTarget &) const override {
    return makeDefaultTile(op);
  }

  SmallVector<TileConfigAttr>
  getTileCandidates(Operation *op, const KernelTarget &) const override {
    return makeTileCandidates(op);
  }

  KernelResources estimateResources(Operation *op, TileConfigAttr tile,
                                    const KernelTarget &target) const override {
    return estimateQuantResources(op, tile, target);
  }

  LogicalResult checkSupported(Operation *op, TileConfigAttr tile,
                               const KernelTarget &target) const override {
    if (failed(checkCommon(op, tile, makeBasePlan(op))))
      return failure();
    return checkTile(op, tile, makePlan(op, tile, target));
  }

  LogicalResult lower(Operation *op, TileConfigAttr tile,
                      const KernelTarget &target, gpu::GPUModuleOp module,
                      RewriterBase &rewriter) const override {
    return lowerQuantOp(op, tile, target, module, rewriter);
  }

private:
  StringRef name;
};

} // namespace

std::unique_ptr<KernelStrategy>
mlir::fusedops::kernel::createQuantizeStrategy() {
  return std::make_unique<QuantOpStrategy<QuantizeOp>>("quantize-fp8");
}

std::unique_ptr<KernelStrategy>
mlir::fusedops::kernel::createDequantizeStrategy() {
  return std::make_unique<QuantOpStrategy<DequantizeOp>>("dequantize-fp8");
}
