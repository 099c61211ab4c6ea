//===- RmsNormStrategies.cpp - the row-norm kernels -----------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// rmsnorm_rope and rms_norm (and their backwards, rmsnorm_rope_grad and
// rms_norm_grad, sections below) are memory-bound: per row they must read H
// input elements (and H residual elements) and write H outputs (and H sums),
// against ~6 flops an element. Their kernels read each input element from
// HBM once and write each output once, and keep the row in registers in
// between:
//
//   * a thread block takes one row at a time (`tile.block[0]` rows in turn);
//   * the row is cut into *units* a thread owns: for rms_norm a unit is one
//     vector; for rmsnorm_rope's neox style a pair of vectors that RoPE mixes
//     (dims [i, i+V) and [i+R/2, i+R/2+V) of one head), so one thread holds
//     both partners and no thread needs another's data; for gptj one vector
//     (its pairs are adjacent); the dims a partial rotary leaves alone are
//     single-vector units, numbered after the rotated ones so that most of
//     a thread's units are of one kind at compile time;
//   * each thread issues every load of a row (x, the residual, the row's
//     cos/sin vectors) before it reduces or stores anything: stores may
//     alias the loads for all the compiler knows, so a load after a store
//     waits for it, and loads after the reduction add their latency to the
//     row's;
//   * it sums squares in f32, and the block reduces with warp shuffles and,
//     for several warps, one shared-memory exchange (blockAllReduceSum);
//   * it scales by rstd and the weight, rotates (rmsnorm_rope) and stores
//     with 16-byte vector stores. The weight is loaded once per block; the
//     rmsnorm_rope kernel keeps it in shared memory (each thread its own
//     vectors) so that its registers across the reduction hold x and the
//     tables only, and more rows stay resident per SM.
//
// The vector width V is the widest (at most 16 bytes) that divides the
// hidden size (and for RoPE the head size and the rotated half), so a vector
// never straddles a head or the rotated/pass-through boundary. Every chip
// uses these kernels: nothing in them is chip-specific. docs/perf/
// rmsnorm_rope.md and docs/perf/memory-ops.md have the measurements behind
// this design.
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"
#include "Strategies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <cmath>
#include <limits>
#include <type_traits>

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::kernel;

namespace {

/// Everything the kernel's shape depends on.
struct RowPlan {
  int64_t hidden = 0;
  int64_t headDim = 0;
  int64_t rotaryDim = 0;
  bool neox = true;
  int64_t vectorWidth = 1;
  /// Units per head that RoPE rotates (neox: vector pairs; gptj: vectors).
  int64_t rotatedUnitsPerHead = 0;
  /// Single-vector units per head that pass through (partial rotary).
  int64_t passUnitsPerHead = 0;
  int64_t numUnits = 0;
  int64_t numThreads = 0;
  int64_t unitsPerThread = 0;
  /// Rows a block takes in turn, and at once (each over numThreads of its
  /// threads, within a warp where there are several).
  int64_t rowsPerBlock = 1;
  int64_t rowsAtOnce = 1;

  int64_t unitsPerHead() const {
    return rotatedUnitsPerHead + passUnitsPerHead;
  }
  /// The row's rotated units come first (head by head), then its
  /// pass-through units; thread t takes units t, t + numThreads, ...
  int64_t numRotated() const { return hidden / headDim * rotatedUnitsPerHead; }
  /// What slot s (units s·numThreads + t) holds: rotated units, pass-through
  /// units, or either, depending on the thread.
  enum class SlotKind { Rotated, Pass, Mixed };
  SlotKind slotKind(int64_t s) const {
    int64_t lo = s * numThreads, hi = (s + 1) * numThreads;
    return hi <= numRotated()   ? SlotKind::Rotated
           : lo >= numRotated() ? SlotKind::Pass
                                : SlotKind::Mixed;
  }
  /// The weight vectors slot s needs (neox rotated units: the partner's too).
  int64_t weightVectors(int64_t s) const {
    return neox && slotKind(s) != SlotKind::Pass ? 2 : 1;
  }
  int64_t weightVectorsPerThread() const {
    int64_t n = 0;
    for (int64_t s = 0; s < unitsPerThread; ++s)
      n += weightVectors(s);
    return n;
  }
  /// Bytes of the weight buffer (each thread's copy of the weight vectors it
  /// uses), or 0 where the weight stays in registers.
  int64_t weightBufferBytes = 0;
  /// Vectors a thread holds at most (for the register bound).
  int64_t vectorsPerThread() const { return unitsPerThread * (neox ? 2 : 1); }
};

int64_t elementBytes(Type type) { return type.getIntOrFloatBitWidth() / 8; }

template <typename OpTy> int64_t chooseVectorWidth(OpTy op) {
  auto type = cast<ShapedType>(op.getInput().getType());
  int64_t hidden = type.getShape().back();
  int64_t headDim = static_cast<int64_t>(op.getHeadDim());
  int64_t rotary = op.getRotaryDim();
  int64_t pairing = op.getRopeStyle() == RopeStyle::neox ? rotary / 2 : rotary;
  int64_t width = 16 / elementBytes(type.getElementType());
  while (width > 1 && (hidden % width || headDim % width || pairing % width))
    width /= 2;
  return width;
}

/// At most this many vectors of the row per thread: they live in registers.
constexpr int64_t kMaxVectorsPerThread = 32;

/// The weight waits in shared memory up to this size (hidden 16384 in 16-bit
/// types, 8192 in f32; static shared memory has 48 KiB a block), else in
/// registers.
constexpr int64_t kMaxWeightBufferBytes = 32 * 1024;

template <typename OpTy> RowPlan makePlan(OpTy op, TileConfigAttr tile) {
  RowPlan plan;
  plan.hidden = cast<ShapedType>(op.getInput().getType()).getShape().back();
  plan.headDim = static_cast<int64_t>(op.getHeadDim());
  plan.rotaryDim = op.getRotaryDim();
  plan.neox = op.getRopeStyle() == RopeStyle::neox;
  plan.vectorWidth = chooseVectorWidth(op);
  int64_t vec = plan.vectorWidth;
  plan.rotatedUnitsPerHead =
      plan.neox ? plan.rotaryDim / 2 / vec : plan.rotaryDim / vec;
  plan.passUnitsPerHead = (plan.headDim - plan.rotaryDim) / vec;
  plan.numUnits = plan.hidden / plan.headDim * plan.unitsPerHead();
  // The forward's block = [R] or [R, S] takes R rows in turn, S at once;
  // the backward's block = [S] takes S at once (P blocks share the rows).
  ArrayRef<int64_t> block = tile.getBlock();
  if (std::is_same_v<OpTy, RmsNormRopeOp>) {
    plan.rowsPerBlock = block.empty() ? 1 : block[0];
    plan.rowsAtOnce = block.size() > 1 ? block[1] : 1;
  } else {
    plan.rowsAtOnce = block.empty() ? 1 : block[0];
  }
  plan.numThreads =
      tile.getNumThreads() / std::max<int64_t>(1, plan.rowsAtOnce);
  plan.unitsPerThread = llvm::divideCeil(plan.numUnits, plan.numThreads);
  if (ShapedType::isDynamic(plan.hidden) || plan.unitsPerThread < 1 ||
      plan.unitsPerThread > kMaxVectorsPerThread)
    return plan; // checkSupported refuses it
  int64_t bufferBytes =
      plan.weightVectorsPerThread() * plan.numThreads * plan.vectorWidth *
      elementBytes(cast<ShapedType>(op.getInput().getType()).getElementType());
  // One warp reduces with shuffles alone: no barrier stands between the
  // buffer's stores and loads, and LLVM forwards them (registers again).
  // The backward keeps the weight in registers: it loads it once for many
  // rows.
  if (std::is_same_v<OpTy, RmsNormRopeOp> && plan.numThreads > 32 &&
      bufferBytes <= kMaxWeightBufferBytes)
    plan.weightBufferBytes = bufferBytes;
  return plan;
}

/// The default tile of a row kernel whose row is `vectors` vectors: about
/// four 16-byte vectors per thread, so that each thread has several loads in
/// flight and few enough registers to keep many rows resident per SM.
TileConfigAttr getDefaultRowTile(MLIRContext *ctx, int64_t vectors) {
  int64_t threads = llvm::PowerOf2Ceil(llvm::divideCeil(vectors, 4));
  threads = std::clamp<int64_t>(threads, 32, 1024);
  return TileConfigAttr::get(ctx, {1}, threads / 32, /*stages=*/1,
                             /*cluster=*/{});
}

/// The default tile of rmsnorm_rope or its backward: getDefaultRowTile of
/// the row's vectors (a 4096-wide row where it is dynamic).
template <typename OpTy> TileConfigAttr getDefaultRopeTile(OpTy norm) {
  int64_t hidden =
      cast<ShapedType>(norm.getInput().getType()).getShape().back();
  if (ShapedType::isDynamic(hidden))
    hidden = 4096;
  return getDefaultRowTile(norm.getContext(),
                           llvm::divideCeil(hidden, chooseVectorWidth(norm)));
}

/// The default first, then rows per block × warps: the row's vectors spread
/// over 1 to 32 warps; checkSupported drops those that leave a thread more
/// than kMaxVectorsPerThread vectors.
SmallVector<TileConfigAttr> getRowTileCandidates(TileConfigAttr defaultTile) {
  SmallVector<TileConfigAttr> tiles = {defaultTile};
  for (int64_t rows : {1, 2, 4, 8})
    for (int64_t warps : {1, 2, 4, 8, 16, 32})
      tiles.push_back(TileConfigAttr::get(defaultTile.getContext(), {rows},
                                          warps, /*stages=*/1,
                                          /*cluster=*/{}));
  return tiles;
}

/// Whether a row kernel's block may take `rowsAtOnce` rows at once: a power
/// of two dividing the threads, each row within one warp where it is above 1.
bool isValidRowsAtOnce(int64_t rowsAtOnce, int64_t threads) {
  return rowsAtOnce >= 1 && llvm::isPowerOf2_64(rowsAtOnce) &&
         threads % rowsAtOnce == 0 &&
         (rowsAtOnce == 1 || threads / rowsAtOnce <= 32);
}

/// Where thread `tid` works with `rowsAtOnce` rows at once, each over
/// `threadsPerRow` threads: its row slot tid / threadsPerRow and its lane
/// tid % threadsPerRow (slot 0, lane tid for one row at a time).
std::pair<Value, Value> rowSlotAndLane(ImplicitLocOpBuilder &b,
                                       int64_t rowsAtOnce,
                                       int64_t threadsPerRow, Value tid) {
  if (rowsAtOnce == 1)
    return {cIndex(b, 0), tid};
  Value threads = cIndex(b, threadsPerRow);
  return {arith::DivUIOp::create(b, tid, threads),
          arith::RemUIOp::create(b, tid, threads)};
}

/// The sum of `value` over aligned groups of `lanes` lanes of a warp (a power
/// of two, at most 32), in every lane.
Value groupAllReduceSum(ImplicitLocOpBuilder &b, Value value, int64_t lanes) {
  for (int64_t offset = lanes / 2; offset > 0; offset /= 2) {
    auto shuffle = gpu::ShuffleOp::create(
        b, value, arith::ConstantIntOp::create(b, b.getI32Type(), offset),
        arith::ConstantIntOp::create(b, b.getI32Type(), 32),
        gpu::ShuffleMode::XOR);
    value = arith::AddFOp::create(b, value, shuffle.getShuffleResult());
  }
  return value;
}

/// A row's sums of `values` over the threads that take it: shuffles within
/// the row's lanes where a block takes several rows at once, else one block
/// reduction of them all through `buffer` at `offset` (one barrier).
SmallVector<Value> reduceRowSums(ImplicitLocOpBuilder &b, int64_t rowsAtOnce,
                                 int64_t threadsPerRow, int64_t warps,
                                 ValueRange values, Value buffer,
                                 Value offset) {
  if (rowsAtOnce == 1)
    return blockAllReduceSums(b, values, warps, buffer, offset);
  SmallVector<Value> sums;
  for (Value value : values)
    sums.push_back(groupAllReduceSum(b, value, threadsPerRow));
  return sums;
}

/// Emits `body(row, valid)` for each of this block's rows: `rowsPerBlock`
/// steps in turn, each of `rowsAtOnce` consecutive rows at once (row slot
/// `slot` the slot-th). One at a time, a row past the rows is skipped
/// (valid is null); several at once, every slot runs every step (their sums
/// shuffle across a warp), a slot past the rows taking the last row with
/// `valid` false. With one row at a time over several warps, a barrier ends
/// each row (the next reuses the reduction buffer).
void forEachBlockRow(ImplicitLocOpBuilder &b, int64_t rowsPerBlock,
                     int64_t rowsAtOnce, Value slot, int64_t warps, Value rows,
                     function_ref<void(Value row, Value valid)> body) {
  OpBuilder::InsertionGuard guard(b);
  Value bid = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  auto rowLoop = scf::ForOp::create(b, cIndex(b, 0), cIndex(b, rowsPerBlock),
                                    cIndex(b, 1));
  b.setInsertionPointToStart(rowLoop.getBody());
  Value step = arith::AddIOp::create(
      b, arith::MulIOp::create(b, bid, cIndex(b, rowsPerBlock)),
      rowLoop.getInductionVar());
  if (rowsAtOnce > 1) {
    Value row = arith::AddIOp::create(
        b, arith::MulIOp::create(b, step, cIndex(b, rowsAtOnce)), slot);
    Value valid =
        arith::CmpIOp::create(b, arith::CmpIPredicate::ult, row, rows);
    row = arith::MinUIOp::create(b, row,
                                 arith::SubIOp::create(b, rows, cIndex(b, 1)));
    body(row, valid);
    return;
  }
  auto rowIf = scf::IfOp::create(
      b, arith::CmpIOp::create(b, arith::CmpIPredicate::ult, step, rows),
      /*withElse=*/false);
  b.setInsertionPointToStart(rowIf.thenBlock());
  body(step, Value());
  if (rowsPerBlock > 1 && warps > 1)
    gpu::BarrierOp::create(b);
}

/// Emits `body(row)` for each of the `rowsPerBlock` rows of this block that
/// exist (`row < rows`), in turn; with several rows and warps, a barrier
/// ends each row (the next reuses the reduction buffer).
void forEachBlockRow(ImplicitLocOpBuilder &b, int64_t rowsPerBlock,
                     int64_t warps, Value rows,
                     function_ref<void(Value row)> body) {
  forEachBlockRow(b, rowsPerBlock, /*rowsAtOnce=*/1, /*slot=*/Value(), warps,
                  rows, [&](Value row, Value) { body(row); });
}

/// rsqrt(sum / hidden + eps): a row's inverse RMS from its sum of squares.
Value rowRstd(ImplicitLocOpBuilder &b, Value sum, int64_t hidden,
              FloatAttr eps) {
  return math::RsqrtOp::create(
      b,
      arith::AddFOp::create(
          b, arith::DivFOp::create(b, sum, cF32(b, static_cast<float>(hidden))),
          arith::ConstantOp::create(b, eps)));
}

/// Creates the row kernel `name` with `args` (the first a [rows, H] view),
/// `tile`'s threads, a `warps`-float reduction buffer and `moreBuffers`
/// (workgroup memory, 16-byte aligned), builds its body with `buildBody`,
/// and launches one block per `rowsPerBlock` rows where there are rows (a
/// zero-sized grid is a launch error).
void emitRowKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                   StringRef name, ArrayRef<Value> args, TileConfigAttr tile,
                   int64_t rowsPerBlock,
                   function_ref<void(gpu::GPUFuncOp)> buildBody,
                   ArrayRef<Type> moreBuffers = {}) {
  SmallVector<Type> argTypes;
  for (Value arg : args)
    argTypes.push_back(arg.getType());
  SmallVector<Type> buffers = {
      getWorkgroupBufferType({tile.getWarps()}, b.getF32Type())};
  llvm::append_range(buffers, moreBuffers);
  gpu::GPUFuncOp kernel;
  {
    OpBuilder::InsertionGuard guard(b);
    kernel = createKernel(b, b.getLoc(), module, name, argTypes,
                          tile.getNumThreads(), buffers);
    // `moreBuffers` take 16-byte vectors.
    for (size_t i = 1; i < buffers.size(); ++i)
      kernel.setWorkgroupAttributionAttr(
          i, LLVM::LLVMDialect::getAlignAttrName(), b.getI64IntegerAttr(16));
    b.setInsertionPoint(kernel.getBody().front().getTerminator());
    buildBody(kernel);
  }
  Value rows = memref::DimOp::create(b, args.front(), 0);
  launchIfRows(b, kernel, rows,
               arith::CeilDivUIOp::create(b, rows, cIndex(b, rowsPerBlock)),
               cIndex(b, 1), tile.getNumThreads(), args);
}

/// Checks shared by the row kernels: contiguous buffers, a static hidden
/// size, no cluster, at most kMaxVectorsPerThread vectors per thread.
LogicalResult checkRowKernel(Operation *op, Value input, TileConfigAttr tile,
                             int64_t vectorsPerThread) {
  if (failed(checkContiguousBuffers(op)))
    return failure();
  StringRef name = op->getName().stripDialect();
  if (ShapedType::isDynamic(
          cast<ShapedType>(input.getType()).getShape().back()))
    return op->emitOpError()
           << "needs a static hidden size (the last dimension of 'input') "
              "to lower to a GPU kernel";
  if (!tile.getCluster().empty())
    return op->emitOpError() << "'tile' of " << name << " takes no cluster";
  if (tile.getStages() != 1)
    return op->emitOpError()
           << "'tile' " << tile
           << " must have stages = 1: a block loads a step's rows whole, one "
              "step at a time (the next rows carried in registers or "
              "prefetched into L2 measured no faster: docs/perf/memory-ops.md "
              "v4 and v9)";
  if (vectorsPerThread > kMaxVectorsPerThread)
    return op->emitOpError()
           << "'tile' gives each thread " << vectorsPerThread
           << " vectors of the row to hold in registers; use more warps "
              "(at most "
           << kMaxVectorsPerThread << " vectors per thread)";
  return success();
}

class RmsNormRopeStrategy final : public KernelStrategy {
public:
  StringRef getName() const override { return "rmsnorm-rope-rowwise"; }

  bool matches(Operation *op, const KernelTarget &) const override {
    return isa<RmsNormRopeOp>(op);
  }

  TileConfigAttr getDefaultTile(Operation *op,
                                const KernelTarget &) const override {
    return getDefaultRopeTile(cast<RmsNormRopeOp>(op));
  }

  SmallVector<TileConfigAttr>
  getTileCandidates(Operation *op, const KernelTarget &target) const override {
    // Rows in turn (getRowTileCandidates), and for narrow rows (QK-norm's
    // heads) several at once, each over a warp's lanes.
    SmallVector<TileConfigAttr> tiles =
        getRowTileCandidates(getDefaultTile(op, target));
    for (int64_t turn : {1, 2, 4})
      for (int64_t atOnce : {2, 4, 8, 16, 32})
        for (int64_t warps : {1, 2, 4, 8})
          if (isValidRowsAtOnce(atOnce, warps * 32))
            tiles.push_back(TileConfigAttr::get(op->getContext(),
                                                {turn, atOnce}, warps,
                                                /*stages=*/1, /*cluster=*/{}));
    return tiles;
  }

  KernelResources estimateResources(Operation *op, TileConfigAttr tile,
                                    const KernelTarget &) const override {
    auto norm = cast<RmsNormRopeOp>(op);
    RowPlan plan = makePlan(norm, tile);
    auto type = cast<ShapedType>(norm.getInput().getType());
    int64_t bytes = elementBytes(type.getElementType());
    int64_t rows = getEstimatedRows(op);
    int64_t vectorBytes = plan.vectorWidth * bytes;
    KernelResources r;
    r.blocks = llvm::divideCeil(rows, plan.rowsPerBlock * plan.rowsAtOnce);
    r.threadsPerBlock = tile.getNumThreads();
    r.sharedBytesPerBlock = 4 * tile.getWarps() + plan.weightBufferBytes;
    // Across the reduction a thread holds, in their element types, x's
    // vectors of its units (neox rotated units: two) and the cos and sin
    // vectors of its rotated units; those are the same vectors for all its
    // units where the thread count is a multiple of the rotated units per
    // head (the compiler loads them once); and the weight's vectors where
    // they do not wait in shared memory.
    // ptxas uses about 2.5 registers per register of those, plus ~4 a unit
    // (fitted to its counts for 4096- and 8192-wide rows, 1 to 8 warps).
    int64_t registersPerVector = llvm::divideCeil(vectorBytes, 4);
    double rotatedShare =
        double(plan.rotatedUnitsPerHead) / double(plan.unitsPerHead());
    double rotatedUnits = plan.unitsPerThread * rotatedShare;
    double tablesPerUnit = plan.neox ? 4 : 2;
    double tableVectors = plan.numThreads % plan.rotatedUnitsPerHead == 0
                              ? std::min(1.0, rotatedUnits) * tablesPerUnit
                              : rotatedUnits * tablesPerUnit;
    double vectorsHeld = rotatedUnits * (plan.neox ? 2 : 1) +
                         (plan.unitsPerThread - rotatedUnits) + tableVectors;
    if (plan.weightBufferBytes == 0)
      vectorsHeld += plan.weightVectorsPerThread();
    r.registersPerThread =
        8 + int64_t(std::ceil(2.5 * vectorsHeld * registersPerVector)) +
        4 * plan.unitsPerThread;
    // Each input element in, each output out; weight and tables stay in L2.
    r.dramBytes = 2.0 * rows * plan.hidden * bytes;
    r.l2Bytes = r.dramBytes + double(rows) * plan.hidden * bytes * 3;
    r.flops = 10.0 * rows * plan.hidden;
    r.unit = KernelResources::ComputeUnit::Fma;
    // Per row: the row's and the tables' loads together (the tables' after
    // the position's when positions are given), then the reduction over the
    // block's warps; the weight is loaded once per block. A block takes its
    // rows in turn (several at once: each within a warp, no barrier).
    r.dependentLoads = norm.getPositions() ? 2 : 1;
    r.syncWarps =
        plan.rowsAtOnce == 1 && tile.getWarps() > 1 ? tile.getWarps() : 0;
    r.serialSteps = plan.rowsPerBlock;
    r.itemsPerThread = plan.vectorsPerThread();
    // A block loads its rows whole before the reduction.
    r.bytesInFlightPerBlock =
        double(plan.rowsAtOnce) *
        double(std::min(plan.numUnits * (plan.neox ? 2 : 1),
                        plan.numThreads * plan.vectorsPerThread())) *
        vectorBytes;
    return r;
  }

  LogicalResult checkSupported(Operation *op, TileConfigAttr tile,
                               const KernelTarget &) const override {
    auto norm = cast<RmsNormRopeOp>(op);
    ArrayRef<int64_t> block = tile.getBlock();
    if (block.empty() || block.size() > 2 || block[0] < 1 ||
        (block.size() == 2 &&
         !isValidRowsAtOnce(block[1], tile.getNumThreads())))
      return op->emitOpError()
             << "'tile' " << tile
             << " must take block = [R] (R rows in turn) or [R, S] (S rows "
                "at once, S a power of two dividing the threads, each row "
                "within one warp where S > 1)";
    return checkRowKernel(op, norm.getInput(), tile,
                          makePlan(norm, tile).vectorsPerThread());
  }

  LogicalResult lower(Operation *op, TileConfigAttr tile,
                      const KernelTarget &target, gpu::GPUModuleOp module,
                      RewriterBase &rewriter) const override;
};

/// Where one of a thread's units lies in the row (row-independent), for the
/// rmsnorm_rope kernels (see buildUnits).
struct Unit {
  RowPlan::SlotKind kind = RowPlan::SlotKind::Rotated;
  Value inRow;   // null when the unit always exists
  Value rotated; // Mixed: whether this thread's unit is rotated (i1)
  Value columnA; // first vector
  Value columnB; // neox partner (columnA + R/2)
  Value inHeadA; // offset of columnA in its head (index into cos/sin)
  // Where the partner and the tables are loaded from: columnB and the
  // in-head offsets of columnA and columnB for rotated units, in-bounds
  // stand-ins for the others.
  Value loadColumnB, tableA, tableB;
  // The weight's vectors: their rows of the weight buffer (this thread's
  // copy), or the vectors themselves.
  Value weightA, weightB;
};

/// The units of thread `tid` (slot s: unit s·threads + tid). The row's
/// rotated units come first (head by head), then its pass-through units
/// (partial rotary), so a slot of every thread is known at compile time to
/// be rotated or pass-through but where it straddles the two, and a
/// pass-through slot loads neither a partner nor the tables. Loads are not
/// branched around (a divergent branch before the reduction costs more than
/// the bytes): a unit past the row loads the row's last unit, and in a
/// straddling slot a pass-through unit loads its own vector as its partner
/// and the tables' first column; those values are masked out of the sums
/// and not stored. The weights are the caller's.
SmallVector<Unit> buildUnits(ImplicitLocOpBuilder &b, const RowPlan &plan,
                             Value tid) {
  const int64_t vec = plan.vectorWidth, threads = plan.numThreads;
  const bool neox = plan.neox;
  const int64_t half = plan.rotaryDim / 2;
  Value c0 = cIndex(b, 0);
  const int64_t numRotated = plan.numRotated();
  using Kind = RowPlan::SlotKind;
  // Column and in-head offset of the i-th unit of a kind that has `perHead`
  // units per head, the first at dim `firstDim` of its head.
  auto geometry = [&](Value i, int64_t perHead, int64_t firstDim) {
    Value inHead = arith::MulIOp::create(
        b, arith::RemUIOp::create(b, i, cIndex(b, perHead)), cIndex(b, vec));
    if (firstDim)
      inHead = arith::AddIOp::create(b, cIndex(b, firstDim), inHead);
    Value base = arith::MulIOp::create(
        b, arith::DivUIOp::create(b, i, cIndex(b, perHead)),
        cIndex(b, plan.headDim));
    return std::make_pair(Value(arith::AddIOp::create(b, base, inHead)),
                          inHead);
  };
  auto rotatedGeometry = [&](Value r) {
    return geometry(r, plan.rotatedUnitsPerHead, 0);
  };
  auto passGeometry = [&](Value p) {
    return geometry(p, plan.passUnitsPerHead, plan.rotaryDim);
  };
  SmallVector<Unit> units;
  for (int64_t s = 0; s < plan.unitsPerThread; ++s) {
    Unit unit;
    Value u = arith::AddIOp::create(b, cIndex(b, s * threads), tid);
    if ((s + 1) * threads > plan.numUnits) {
      Value last = cIndex(b, plan.numUnits - 1);
      unit.inRow = arith::CmpIOp::create(b, arith::CmpIPredicate::ule, u, last);
      u = arith::MinUIOp::create(b, u, last);
    }
    unit.kind = plan.slotKind(s);
    if (unit.kind == Kind::Rotated) {
      std::tie(unit.columnA, unit.inHeadA) = rotatedGeometry(u);
    } else if (unit.kind == Kind::Pass) {
      std::tie(unit.columnA, unit.inHeadA) =
          passGeometry(arith::SubIOp::create(b, u, cIndex(b, numRotated)));
    } else {
      Value firstPass = cIndex(b, numRotated);
      unit.rotated =
          arith::CmpIOp::create(b, arith::CmpIPredicate::ult, u, firstPass);
      auto [rotatedColumn, rotatedInHead] = rotatedGeometry(
          arith::MinUIOp::create(b, u, cIndex(b, numRotated - 1)));
      auto [passColumn, passInHead] = passGeometry(arith::SubIOp::create(
          b, arith::MaxUIOp::create(b, u, firstPass), firstPass));
      unit.columnA =
          arith::SelectOp::create(b, unit.rotated, rotatedColumn, passColumn);
      unit.inHeadA =
          arith::SelectOp::create(b, unit.rotated, rotatedInHead, passInHead);
    }
    if (unit.kind != Kind::Pass) {
      auto ifRotated = [&](Value value, Value otherwise) -> Value {
        if (!unit.rotated)
          return value;
        return arith::SelectOp::create(b, unit.rotated, value, otherwise);
      };
      unit.tableA = ifRotated(unit.inHeadA, c0);
      if (neox) {
        unit.columnB = arith::AddIOp::create(b, unit.columnA, cIndex(b, half));
        Value inHeadB = arith::AddIOp::create(b, unit.inHeadA, cIndex(b, half));
        unit.loadColumnB = ifRotated(unit.columnB, unit.columnA);
        unit.tableB = ifRotated(inHeadB, c0);
      }
    }
    units.push_back(unit);
  }
  return units;
}

/// The position of `row` (from `positionsOrSeq`: the positions, or the
/// sequence length that gives them) and whether it lies in the tables; an
/// out-of-range position reads as 0.
std::pair<Value, Value> rowPosition(ImplicitLocOpBuilder &b, bool hasPositions,
                                    Value positionsOrSeq, Value cosTable,
                                    Value row) {
  Value c0 = cIndex(b, 0);
  Value position;
  if (hasPositions) {
    Value raw = memref::LoadOp::create(b, positionsOrSeq, ValueRange{row});
    position = arith::IndexCastOp::create(b, b.getIndexType(), raw);
  } else {
    position = arith::RemUIOp::create(b, row, positionsOrSeq);
  }
  Value maxPositions = memref::DimOp::create(b, cosTable, 0);
  Value positionOk = arith::AndIOp::create(
      b, arith::CmpIOp::create(b, arith::CmpIPredicate::sge, position, c0),
      arith::CmpIOp::create(b, arith::CmpIPredicate::slt, position,
                            maxPositions));
  return {arith::SelectOp::create(b, positionOk, position, c0), positionOk};
}

/// Host side: the positions as a vector, or the sequence length (dimension
/// -2 of the input) that gives them.
template <typename OpTy>
Value getPositionsOrSeq(ImplicitLocOpBuilder &b, OpTy norm) {
  auto inputType = cast<MemRefType>(norm.getInput().getType());
  Value positions = norm.getPositions();
  if (!positions)
    return memref::DimOp::create(b, norm.getInput(), inputType.getRank() - 2);
  auto positionsType = cast<MemRefType>(positions.getType());
  if (positionsType.getRank() != 0)
    return collapseToVector(b, positions);
  return memref::ExpandShapeOp::create(
      b, MemRefType::get({1}, positionsType.getElementType()), positions,
      ArrayRef<ReassociationIndices>{},
      ArrayRef<OpFoldResult>{b.getIndexAttr(1)});
}

/// Builds the kernel body. Arguments: x [rows, H], weight [H], cos, sin
/// [S, R], (positions [rows] | seqLen index), out [rows, H].
void buildKernelBody(ImplicitLocOpBuilder &b, RmsNormRopeOp op,
                     const RowPlan &plan, gpu::GPUFuncOp kernel) {
  Type elementType = cast<ShapedType>(op.getInput().getType()).getElementType();
  Type f32 = b.getF32Type();
  const int64_t vec = plan.vectorWidth, threads = plan.numThreads;
  const bool hasPositions = static_cast<bool>(op.getPositions());
  const bool neox = plan.neox;

  Value x = kernel.getArgument(0), weight = kernel.getArgument(1),
        cosTable = kernel.getArgument(2), sinTable = kernel.getArgument(3),
        positionsOrSeq = kernel.getArgument(4), out = kernel.getArgument(5);
  Value reduceBuffer = kernel.getWorkgroupAttributions()[0];
  Value weightBuffer = plan.weightBufferBytes
                           ? Value(kernel.getWorkgroupAttributions()[1])
                           : Value();
  Type cosElementType = cast<ShapedType>(cosTable.getType()).getElementType();

  auto vecType = VectorType::get({vec}, elementType);
  auto vecF32 = VectorType::get({vec}, f32);
  auto vecCos = VectorType::get({vec}, cosElementType);
  int64_t alignX = vectorAlignment(elementType, vec);
  int64_t alignCos = vectorAlignment(cosElementType, vec);
  auto loadVec = [&](VectorType type, Value memref, ValueRange indices,
                     int64_t align) -> Value {
    return vector::LoadOp::create(b, type, memref, indices,
                                  /*nontemporal=*/false,
                                  llvm::MaybeAlign(align));
  };
  auto storeVec = [&](Value value, ValueRange indices) {
    vector::StoreOp::create(b, castFloat(b, value, elementType), out, indices,
                            /*nontemporal=*/false, llvm::MaybeAlign(alignX));
  };
  auto f32Of = [&](Value v) { return castFloat(b, v, f32); };

  Value c0 = cIndex(b, 0), c1 = cIndex(b, 1);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value rows = memref::DimOp::create(b, x, 0);
  const int64_t atOnce = plan.rowsAtOnce;
  auto [slot, lane] = rowSlotAndLane(b, plan.rowsAtOnce, plan.numThreads, tid);
  assert((atOnce == 1 || !weightBuffer) &&
         "rows within a warp keep the weight in registers");

  // The weight vector kept by keepWeight below.
  auto weightOf = [&](Value kept) -> Value {
    if (!weightBuffer)
      return kept;
    return loadVec(vecType, weightBuffer, {kept, c0}, alignX);
  };
  // The weight's vectors on their way into the buffer. A store waits for
  // its vector's load, and the warp with it: with one row per block they are
  // stored after the row's loads are issued, so that the two latencies
  // overlap; with several rows, before the row loop.
  SmallVector<std::pair<Value, Value>> pendingWeights;
  auto storePendingWeights = [&] {
    for (auto [vector, slot] : pendingWeights)
      vector::StoreOp::create(b, vector, weightBuffer, ValueRange{slot, c0},
                              /*nontemporal=*/false, llvm::MaybeAlign(alignX));
    pendingWeights.clear();
  };
  // Where each of this thread's units lies in the row (row-independent).
  using Kind = RowPlan::SlotKind;
  SmallVector<Unit> units = buildUnits(b, plan, lane);
  int64_t weightSlots = 0;
  for (Unit &unit : units) {
    // The weight once for all the block's rows, into this thread's rows of
    // the weight buffer: registers held across the reduction would limit
    // the rows resident per SM, and shared memory loads after it need not
    // wait for the global stores before them.
    auto keepWeight = [&](Value column) -> Value {
      Value vector = loadVec(vecType, weight, {column}, alignX);
      if (!weightBuffer)
        return vector;
      Value slot =
          arith::AddIOp::create(b, cIndex(b, weightSlots++ * threads), tid);
      pendingWeights.emplace_back(vector, slot);
      return slot;
    };
    unit.weightA = keepWeight(unit.columnA);
    if (neox && unit.kind != Kind::Pass)
      unit.weightB = keepWeight(unit.loadColumnB);
  }
  if (plan.rowsPerBlock > 1)
    storePendingWeights();

  const int64_t warps = threads / 32;
  forEachBlockRow(
      b, plan.rowsPerBlock, atOnce, slot, warps, rows,
      [&](Value row, Value valid) {
        // 1. The row's position; an out-of-range one poisons the row with NaN
        //    (its table reads use row 0).
        auto [position, positionOk] =
            rowPosition(b, hasPositions, positionsOrSeq, cosTable, row);

        // 2. Every load of the row before the reduction and the first store:
        //    the stores may alias the loads for all the compiler knows, so a
        //    table load after a store would wait for it, and the reduction's
        //    barrier would hold the tables' latency after the row's.
        struct Loaded {
          Value xa, xb, cosA, sinA, cosB, sinB;
        };
        SmallVector<Loaded> loaded;
        for (const Unit &unit : units) {
          Loaded l;
          l.xa = loadVec(vecType, x, {row, unit.columnA}, alignX);
          if (unit.kind != Kind::Pass) {
            l.cosA =
                loadVec(vecCos, cosTable, {position, unit.tableA}, alignCos);
            l.sinA =
                loadVec(vecCos, sinTable, {position, unit.tableA}, alignCos);
            if (neox) {
              l.xb = loadVec(vecType, x, {row, unit.loadColumnB}, alignX);
              l.cosB =
                  loadVec(vecCos, cosTable, {position, unit.tableB}, alignCos);
              l.sinB =
                  loadVec(vecCos, sinTable, {position, unit.tableB}, alignCos);
            }
          }
          loaded.push_back(l);
        }
        storePendingWeights();

        // 3. Sum of squares in f32; the block-wide sum: warps reduce with
        //    shuffles, then through shared memory.
        Value sum = cF32(b, 0.0f);
        auto addSquares = [&](Value v) {
          Value f = f32Of(v);
          sum = arith::AddFOp::create(
              b, sum,
              vector::ReductionOp::create(b, vector::CombiningKind::ADD,
                                          arith::MulFOp::create(b, f, f)));
        };
        for (auto [unit, l] : llvm::zip(units, loaded)) {
          addSquares(selectOrZero(b, unit.inRow, l.xa));
          if (l.xb)
            addSquares(
                selectOrZero(b, andOrNull(b, unit.inRow, unit.rotated), l.xb));
        }
        sum = reduceRowSums(b, atOnce, threads, warps, sum, reduceBuffer,
                            cIndex(b, 0))
                  .front();
        Value rstd = rowRstd(b, sum, plan.hidden, op.getEpsAttr());
        rstd = arith::SelectOp::create(
            b, positionOk, rstd,
            cF32(b, std::numeric_limits<float>::quiet_NaN()));
        Value rstdVec = vector::BroadcastOp::create(b, vecF32, rstd);

        // 4. Scale, rotate, store.
        SmallVector<float> signValues;
        for (int64_t i = 0; i < vec; ++i)
          signValues.push_back(i % 2 == 0 ? -1.0f : 1.0f);
        for (size_t index = 0; index < units.size(); ++index) {
          const Unit &unit = units[index];
          const Loaded &l = loaded[index];
          ifThen(b, andOrNull(b, valid, unit.inRow), [&] {
            Value ya = arith::MulFOp::create(
                b, arith::MulFOp::create(b, f32Of(l.xa), rstdVec),
                f32Of(weightOf(unit.weightA)));
            if (unit.kind == Kind::Pass) {
              storeVec(ya, {row, unit.columnA});
              return;
            }
            if (neox) {
              // out[i] = y[i]·cos[i] − y[i+R/2]·sin[i];
              // out[i+R/2] = y[i+R/2]·cos[i+R/2] + y[i]·sin[i+R/2].
              auto rotate = [&] {
                Value yb = arith::MulFOp::create(
                    b, arith::MulFOp::create(b, f32Of(l.xb), rstdVec),
                    f32Of(weightOf(unit.weightB)));
                Value outA = arith::SubFOp::create(
                    b, arith::MulFOp::create(b, ya, f32Of(l.cosA)),
                    arith::MulFOp::create(b, yb, f32Of(l.sinA)));
                Value outB = arith::AddFOp::create(
                    b, arith::MulFOp::create(b, yb, f32Of(l.cosB)),
                    arith::MulFOp::create(b, ya, f32Of(l.sinB)));
                storeVec(outA, {row, unit.columnA});
                storeVec(outB, {row, unit.columnB});
              };
              if (!unit.rotated) {
                rotate();
                return;
              }
              auto ifOp = scf::IfOp::create(b, unit.rotated, /*withElse=*/true);
              OpBuilder::InsertionGuard guard(b);
              b.setInsertionPointToStart(ifOp.thenBlock());
              rotate();
              b.setInsertionPointToStart(ifOp.elseBlock());
              storeVec(ya, {row, unit.columnA});
              return;
            }
            // gptj: out[2i] = y[2i]·cos − y[2i+1]·sin, out[2i+1] = y[2i+1]·cos
            // + y[2i]·sin; pairs lie inside the vector (V even), or straddle
            // neighbouring scalar units when V == 1.
            auto rotate = [&]() -> Value {
              Value partner;
              if (vec >= 2) {
                SmallVector<int64_t> swap;
                for (int64_t i = 0; i < vec; ++i)
                  swap.push_back(i ^ 1);
                partner = vector::ShuffleOp::create(b, ya, ya, swap);
                partner = arith::MulFOp::create(
                    b, partner,
                    arith::ConstantOp::create(
                        b, DenseElementsAttr::get(
                               vecF32, ArrayRef<float>(signValues))));
              } else {
                Value partnerColumn =
                    arith::XOrIOp::create(b, unit.columnA, c1);
                Value yp = arith::MulFOp::create(
                    b,
                    arith::MulFOp::create(
                        b,
                        f32Of(
                            loadVec(vecType, x, {row, partnerColumn}, alignX)),
                        rstdVec),
                    f32Of(loadVec(vecType, weight, {partnerColumn}, alignX)));
                Value even = arith::CmpIOp::create(
                    b, arith::CmpIPredicate::eq,
                    arith::AndIOp::create(b, unit.columnA, c1), c0);
                partner = arith::SelectOp::create(
                    b, even, arith::NegFOp::create(b, yp), yp);
              }
              return arith::AddFOp::create(
                  b, arith::MulFOp::create(b, ya, f32Of(l.cosA)),
                  arith::MulFOp::create(b, partner, f32Of(l.sinA)));
            };
            if (!unit.rotated) {
              storeVec(rotate(), {row, unit.columnA});
              return;
            }
            auto ifOp =
                scf::IfOp::create(b, vecF32, unit.rotated,
                                  /*addThenBlock=*/true, /*addElseBlock=*/true);
            {
              OpBuilder::InsertionGuard guard(b);
              b.setInsertionPointToStart(ifOp.thenBlock());
              scf::YieldOp::create(b, rotate());
              b.setInsertionPointToStart(ifOp.elseBlock());
              scf::YieldOp::create(b, ya);
            }
            storeVec(ifOp.getResult(0), {row, unit.columnA});
          });
        }
      });
}

LogicalResult RmsNormRopeStrategy::lower(Operation *op, TileConfigAttr tile,
                                         const KernelTarget &,
                                         gpu::GPUModuleOp module,
                                         RewriterBase &rewriter) const {
  auto norm = cast<RmsNormRopeOp>(op);
  RowPlan plan = makePlan(norm, tile);
  ImplicitLocOpBuilder b(op->getLoc(), rewriter);
  b.setInsertionPoint(op);

  // Host side: 2-D views of the row tensors, the positions or the sequence
  // length that gives them.
  Value x = collapseLeadingDims(b, norm.getInput());
  Value out = collapseLeadingDims(b, norm.getInits()[0]);
  auto inputType = cast<MemRefType>(norm.getInput().getType());
  Value positionsOrSeq = getPositionsOrSeq(b, norm);

  SmallVector<Value> args = {
      x, norm.getWeight(), norm.getCos(), norm.getSin(), positionsOrSeq, out};
  Type elementType = inputType.getElementType();
  emitRowKernel(
      b, module, "rmsnorm_rope", args, tile,
      plan.rowsPerBlock * plan.rowsAtOnce,
      [&](gpu::GPUFuncOp kernel) { buildKernelBody(b, norm, plan, kernel); },
      plan.weightBufferBytes
          ? SmallVector<Type>{getWorkgroupBufferType(
                {plan.weightVectorsPerThread() * plan.numThreads,
                 plan.vectorWidth},
                elementType)}
          : SmallVector<Type>{});
  rewriter.eraseOp(op);
  return success();
}

//===----------------------------------------------------------------------===//
// rmsnorm_rope_grad
//===----------------------------------------------------------------------===//
//
// The backward reads x and the output's gradient and writes x's gradient:
// memory-bound like the forward, with two sums a row (Σx² and Σ g·x),
// reduced together through one barrier (reduceRowSums; the exchange buffer's
// halves alternate, so no barrier separates the rows). The weight's gradient
// is a sum over rows: a grid of P blocks (the partial sums' rows) each walks
// its ⌈rows / P⌉ consecutive rows (forEachPartialRow), each thread adding
// its units' dy·x·rstd in registers, and stores its partial row once at the
// end (storeBlockPartials; deterministic: the op fixes which rows each
// partial sums). The weight stays in registers, loaded once per block.
// rms_norm_grad (below) shares this layout.

/// Checks the block of a norm's backward tile: block = [R] rows at once, R a
/// power of two dividing the threads, each row within one warp where R > 1,
/// and the R rows' partial sums (f32) fit the shared memory they meet in.
LogicalResult checkGradRowsAtOnce(Operation *op, TileConfigAttr tile,
                                  int64_t hidden) {
  int64_t rows = tile.getBlock()[0], threads = tile.getNumThreads();
  if (!isValidRowsAtOnce(rows, threads))
    return op->emitOpError()
           << "'tile' " << tile
           << " must take block = [R] rows at once with R a power of two "
              "dividing the threads, each row within one warp where R > 1";
  if (rows > 1 && !ShapedType::isDynamic(hidden) &&
      rows * hidden * 4 > kMaxWeightBufferBytes)
    return op->emitOpError()
           << "'tile' " << tile << " sums " << rows << " rows of " << hidden
           << " f32 partials in shared memory: at most "
           << kMaxWeightBufferBytes << " bytes; take fewer rows at once";
  return success();
}

/// The candidates of a norm's backward: the default first, then block = [R]
/// rows at once per block (R > 1: each row within a warp) over 1 to 32
/// warps; checkSupported drops the tiles that do not fit.
SmallVector<TileConfigAttr> getGradTileCandidates(TileConfigAttr defaultTile) {
  SmallVector<TileConfigAttr> tiles = {defaultTile};
  for (int64_t rows : {1, 2, 4, 8, 16})
    for (int64_t warps : {1, 2, 4, 8, 16, 32})
      tiles.push_back(TileConfigAttr::get(defaultTile.getContext(), {rows},
                                          warps, /*stages=*/1,
                                          /*cluster=*/{}));
  return tiles;
}

/// The backward's row loop. Block b takes the rows [b·C, min((b+1)·C,
/// rows)), C = ⌈rows / P⌉ (P = `numPartials`), `rowsAtOnce` consecutive ones
/// at a time (slot s the s-th of them), carrying `sums` across them:
/// `body(row, valid, sums, reduceOffset)` returns the next sums. Every slot
/// of the block runs the same iterations (the row sums shuffle across its
/// lanes), a slot past the block's rows reading the last row with `valid`
/// false (null with one row at a time). One row at a time, the row's block
/// sums go through the reduction buffer's half at `reduceOffset` (0 or
/// 2·warps floats, alternating per row: no barrier between rows). Returns the
/// final sums.
SmallVector<Value> forEachPartialRow(
    ImplicitLocOpBuilder &b, Value rows, Value numPartials, int64_t rowsAtOnce,
    Value slot, int64_t warps, ValueRange sums,
    function_ref<SmallVector<Value>(Value row, Value valid, ValueRange sums,
                                    Value reduceOffset)>
        body) {
  Value block = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value perBlock = arith::CeilDivUIOp::create(b, rows, numPartials);
  Value begin = arith::MulIOp::create(b, block, perBlock);
  Value end = arith::MinUIOp::create(
      b, arith::AddIOp::create(b, begin, perBlock), rows);
  auto rowLoop = scf::ForOp::create(b, begin, end, cIndex(b, rowsAtOnce), sums);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(rowLoop.getBody());
  Value row = rowLoop.getInductionVar(), valid;
  Value reduceOffset = cIndex(b, 0);
  if (rowsAtOnce > 1) {
    row = arith::AddIOp::create(b, row, slot);
    valid = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, row, end);
    row = arith::MinUIOp::create(b, row,
                                 arith::SubIOp::create(b, rows, cIndex(b, 1)));
  } else if (warps > 1) {
    Value parity = arith::AndIOp::create(
        b, arith::SubIOp::create(b, row, begin), cIndex(b, 1));
    reduceOffset = arith::MulIOp::create(b, parity, cIndex(b, 2 * warps));
  }
  SmallVector<Value> next =
      body(row, valid, rowLoop.getRegionIterArgs(), reduceOffset);
  scf::YieldOp::create(b, next);
  return SmallVector<Value>(rowLoop.getResults());
}

/// One f32 vector of a block's weight-gradient partial sums: its value, its
/// column, and where it is stored (null: always).
struct PartialSum {
  Value value, column, stored;
};

/// Stores a block's partial sums into row blockIdx.x of `partials` [P, H].
/// With several row slots, the slots' sums are added in slot order through
/// `slotSums` (workgroup memory of rowsAtOnce · H f32), then stored by slot 0.
void storeBlockPartials(ImplicitLocOpBuilder &b, ArrayRef<PartialSum> sums,
                        Value partials, int64_t rowsAtOnce, Value slot,
                        int64_t hidden, Value slotSums) {
  Value block = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  auto vecF32 = cast<VectorType>(sums.front().value.getType());
  int64_t align = vectorAlignment(b.getF32Type(), vecF32.getNumElements());
  auto store = [&](Value value, Value memref, ValueRange indices) {
    vector::StoreOp::create(b, value, memref, indices, /*nontemporal=*/false,
                            llvm::MaybeAlign(align));
  };
  if (rowsAtOnce == 1) {
    for (const PartialSum &sum : sums)
      ifThen(b, sum.stored, [&] {
        store(sum.value, partials, {block, sum.column});
      });
    return;
  }
  Value hiddenSize = cIndex(b, hidden);
  auto inSlot = [&](Value s, Value column) -> Value {
    return arith::AddIOp::create(b, arith::MulIOp::create(b, s, hiddenSize),
                                 column);
  };
  for (const PartialSum &sum : sums)
    ifThen(b, sum.stored,
           [&] { store(sum.value, slotSums, {inSlot(slot, sum.column)}); });
  gpu::BarrierOp::create(b);
  Value firstSlot =
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, slot, cIndex(b, 0));
  for (const PartialSum &sum : sums)
    ifThen(b, andOrNull(b, firstSlot, sum.stored), [&] {
      Value total = sum.value;
      for (int64_t s = 1; s < rowsAtOnce; ++s)
        total = arith::AddFOp::create(
            b, total,
            vector::LoadOp::create(b, vecF32, slotSums,
                                   ValueRange{inSlot(cIndex(b, s), sum.column)},
                                   /*nontemporal=*/false,
                                   llvm::MaybeAlign(align)));
      store(total, partials, {block, sum.column});
    });
}

/// Creates a norm's backward kernel `name` with `args` (the last the
/// partial sums [P, H]), `tile`'s threads, the row sums' exchange buffer
/// (two sums, two halves: reduceRowSums) and, with several rows at once, the
/// slots' partial sums; builds
/// its body with `buildBody`, and launches P blocks whatever the rows: each
/// stores its partial sums, zeros where it had no rows (so that the partials
/// are defined for no rows too). `blocksPerSm` > 0 becomes the kernel's
/// nvvm.minctasm.
void emitGradKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                    StringRef name, ArrayRef<Value> args, TileConfigAttr tile,
                    int64_t rowsAtOnce, int64_t hidden,
                    function_ref<void(gpu::GPUFuncOp)> buildBody,
                    int64_t blocksPerSm = 0) {
  SmallVector<Type> argTypes;
  for (Value arg : args)
    argTypes.push_back(arg.getType());
  Type f32 = b.getF32Type();
  SmallVector<Type> buffers = {
      getWorkgroupBufferType({4 * tile.getWarps()}, f32)};
  if (rowsAtOnce > 1)
    buffers.push_back(getWorkgroupBufferType({rowsAtOnce * hidden}, f32));
  gpu::GPUFuncOp kernel;
  {
    OpBuilder::InsertionGuard guard(b);
    kernel = createKernel(b, b.getLoc(), module, name, argTypes,
                          tile.getNumThreads(), buffers);
    b.setInsertionPoint(kernel.getBody().front().getTerminator());
    buildBody(kernel);
  }
  if (blocksPerSm > 0)
    kernel->setAttr("nvvm.minctasm", b.getI32IntegerAttr(blocksPerSm));
  Value numPartials = memref::DimOp::create(b, args.back(), 0);
  launchIfRows(b, kernel, numPartials, numPartials, cIndex(b, 1),
               tile.getNumThreads(), args);
}

/// Threads of the weight-gradient sum's blocks (8 warps), about how many
/// blocks share the columns, and at most how many loads a thread has in
/// flight.
constexpr int64_t kWeightSumThreads = 256;
constexpr int64_t kWeightSumBlocks = 512;
constexpr int64_t kMaxLoadsInFlight = 8;

/// Emits and launches `name`: the weight's gradient `weightGrad` [H] (the
/// weight's type) as the sum over P of `partials` [P, H] f32, in a fixed
/// order (deterministic). Block j takes C consecutive columns (C = L·V: L
/// lanes of V-wide f32 vectors; 8 to 32 columns, so that about 512 blocks
/// share the work and each row segment is at least a 32-byte sector) and
/// all P rows: each aligned group of L lanes of its warps walks the rows
/// g, g + G, … (G = 256 / L groups) with up to 8 loads in flight, the groups
/// of a warp then add up through shuffles and the 8 warps' sums through
/// shared memory, which warp 0 adds in warp order, converts and stores. The
/// partials are read right after the kernel that wrote them, mostly from
/// L2: 3.9 µs for P = 528 rows of 4096 on an H200, where PyTorch's sum and
/// cast took 11.5 µs for 1056 rows (docs/perf/memory-ops.md v11).
void emitWeightGradSum(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                       StringRef name, Value partials, Value weightGrad) {
  auto partialsType = cast<MemRefType>(partials.getType());
  Type elementType = cast<MemRefType>(weightGrad.getType()).getElementType();
  Type f32 = b.getF32Type();
  const int64_t numPartials = partialsType.getDimSize(0);
  const int64_t hidden = partialsType.getDimSize(1);
  const bool staticHidden = !ShapedType::isDynamic(hidden);
  int64_t vec = 1;
  for (int64_t width : {4, 2})
    if (staticHidden && hidden % width == 0) {
      vec = width;
      break;
    }
  int64_t columnsPerBlock = 32;
  if (staticHidden)
    columnsPerBlock = std::clamp<int64_t>(
        llvm::bit_floor(static_cast<uint64_t>(
            std::max<int64_t>(hidden / kWeightSumBlocks, 1))),
        8, 32);
  columnsPerBlock = std::max(columnsPerBlock, vec);
  const int64_t lanes = columnsPerBlock / vec;
  const int64_t groups = kWeightSumThreads / lanes;
  const int64_t warps = kWeightSumThreads / 32;
  const bool columnsOffTile = !staticHidden || hidden % columnsPerBlock != 0;
  // Each group's rows in steps of up to kMaxLoadsInFlight loads, as few
  // steps as that allows and as few masked loads within them.
  const int64_t perGroup = llvm::divideCeil(numPartials, groups);
  const int64_t steps = llvm::divideCeil(perGroup, kMaxLoadsInFlight);
  const int64_t loadsInFlight = llvm::divideCeil(perGroup, steps);

  gpu::GPUFuncOp kernel;
  {
    OpBuilder::InsertionGuard guard(b);
    kernel = createKernel(
        b, b.getLoc(), module, name,
        TypeRange{partials.getType(), weightGrad.getType()}, kWeightSumThreads,
        {getWorkgroupBufferType({warps * columnsPerBlock}, f32)});
    b.setInsertionPoint(kernel.getBody().front().getTerminator());
    Value in = kernel.getArgument(0), out = kernel.getArgument(1);
    Value buffer = kernel.getWorkgroupAttributions()[0];
    auto vecF32 = VectorType::get({vec}, f32);
    int64_t align = vectorAlignment(f32, vec);

    Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
    Value block = gpu::BlockIdOp::create(b, gpu::Dimension::x);
    Value lane = arith::RemUIOp::create(b, tid, cIndex(b, lanes));
    Value group = arith::DivUIOp::create(b, tid, cIndex(b, lanes));
    Value column = arith::AddIOp::create(
        b, arith::MulIOp::create(b, block, cIndex(b, columnsPerBlock)),
        arith::MulIOp::create(b, lane, cIndex(b, vec)));
    Value width = memref::DimOp::create(b, in, 1);
    Value inColumns;
    Value readColumn = column;
    if (columnsOffTile) {
      // Lanes past the row read its last vector and store nothing.
      inColumns =
          arith::CmpIOp::create(b, arith::CmpIPredicate::ult, column, width);
      readColumn = arith::MinUIOp::create(
          b, column, arith::SubIOp::create(b, width, cIndex(b, vec)));
    }

    // Rows g + (k·4 + u)·G, u < 4: four independent sums, added in u order.
    Value zeros =
        arith::ConstantOp::create(b, cast<TypedAttr>(b.getZeroAttr(vecF32)));
    auto loop =
        scf::ForOp::create(b, cIndex(b, 0), cIndex(b, steps), cIndex(b, 1),
                           SmallVector<Value>(loadsInFlight, zeros));
    {
      OpBuilder::InsertionGuard loopGuard(b);
      b.setInsertionPointToStart(loop.getBody());
      Value first = arith::AddIOp::create(
          b, group,
          arith::MulIOp::create(b, loop.getInductionVar(),
                                cIndex(b, loadsInFlight * groups)));
      SmallVector<Value> loaded, valid;
      for (int64_t u = 0; u < loadsInFlight; ++u) {
        Value row = arith::AddIOp::create(b, first, cIndex(b, u * groups));
        valid.push_back(arith::CmpIOp::create(b, arith::CmpIPredicate::ult, row,
                                              cIndex(b, numPartials)));
        row = arith::MinUIOp::create(b, row, cIndex(b, numPartials - 1));
        loaded.push_back(vector::LoadOp::create(
            b, vecF32, in, ValueRange{row, readColumn},
            /*nontemporal=*/false, llvm::MaybeAlign(align)));
      }
      SmallVector<Value> next;
      for (int64_t u = 0; u < loadsInFlight; ++u)
        next.push_back(
            arith::AddFOp::create(b, loop.getRegionIterArgs()[u],
                                  selectOrZero(b, valid[u], loaded[u])));
      scf::YieldOp::create(b, next);
    }
    Value total = loop.getResult(0);
    for (int64_t u = 1; u < loadsInFlight; ++u)
      total = arith::AddFOp::create(b, total, loop.getResult(u));

    // The warp's groups (lanes apart by multiples of L), then the warps.
    SmallVector<Value> elements;
    for (int64_t e = 0; e < vec; ++e) {
      Value value = vector::ExtractOp::create(b, total, e);
      for (int64_t offset = 16; offset >= lanes; offset /= 2) {
        auto shuffle = gpu::ShuffleOp::create(
            b, value, arith::ConstantIntOp::create(b, b.getI32Type(), offset),
            arith::ConstantIntOp::create(b, b.getI32Type(), 32),
            gpu::ShuffleMode::XOR);
        value = arith::AddFOp::create(b, value, shuffle.getShuffleResult());
      }
      elements.push_back(value);
    }
    total = vector::FromElementsOp::create(b, vecF32, elements);
    Value warp = arith::DivUIOp::create(b, tid, cIndex(b, 32));
    Value inWarp = arith::RemUIOp::create(b, tid, cIndex(b, 32));
    Value firstGroup = arith::CmpIOp::create(b, arith::CmpIPredicate::ult,
                                             inWarp, cIndex(b, lanes));
    Value laneColumn = arith::MulIOp::create(b, lane, cIndex(b, vec));
    ifThen(b, firstGroup, [&] {
      vector::StoreOp::create(
          b, total, buffer,
          ValueRange{arith::AddIOp::create(
              b, arith::MulIOp::create(b, warp, cIndex(b, columnsPerBlock)),
              laneColumn)});
    });
    gpu::BarrierOp::create(b);
    Value firstLanes = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, tid,
                                             cIndex(b, lanes));
    ifThen(b, andOrNull(b, firstLanes, inColumns), [&] {
      Value sum;
      for (int64_t w = 0; w < warps; ++w) {
        Value part = vector::LoadOp::create(
            b, vecF32, buffer,
            ValueRange{arith::AddIOp::create(b, cIndex(b, w * columnsPerBlock),
                                             laneColumn)});
        sum = sum ? arith::AddFOp::create(b, sum, part).getResult() : part;
      }
      vector::StoreOp::create(
          b, castFloat(b, sum, elementType), out, ValueRange{column},
          /*nontemporal=*/false,
          llvm::MaybeAlign(vectorAlignment(elementType, vec)));
    });
  }
  Value width = memref::DimOp::create(b, weightGrad, 0);
  Value blocks =
      arith::CeilDivUIOp::create(b, width, cIndex(b, columnsPerBlock));
  launchIfRows(b, kernel, width, blocks, cIndex(b, 1), kWeightSumThreads,
               {partials, weightGrad});
}

/// Bytes a norm's backward moves for the weight's gradient: the partial sums
/// written, and with the op's weight gradient read again by
/// emitWeightGradSum (the weight's gradient itself is negligible).
template <typename OpTy>
double weightGradSumBytes(OpTy norm, int64_t partials, int64_t hidden) {
  return (norm.getWeightGrad() ? 8.0 : 4.0) * double(partials) * hidden;
}

/// The backward holds about twice the forward's vectors across a row (x and
/// the gradient; the weight and the partial sums in f32).
int64_t gradVectorsPerThread(const RowPlan &plan) {
  return 2 * plan.vectorsPerThread();
}

class RmsNormRopeGradStrategy final : public KernelStrategy {
public:
  StringRef getName() const override { return "rmsnorm-rope-grad-rowwise"; }

  bool matches(Operation *op, const KernelTarget &) const override {
    return isa<RmsNormRopeGradOp>(op);
  }

  TileConfigAttr getDefaultTile(Operation *op,
                                const KernelTarget &) const override {
    return getDefaultRopeTile(cast<RmsNormRopeGradOp>(op));
  }

  SmallVector<TileConfigAttr>
  getTileCandidates(Operation *op, const KernelTarget &target) const override {
    return getGradTileCandidates(getDefaultTile(op, target));
  }

  KernelResources estimateResources(Operation *op, TileConfigAttr tile,
                                    const KernelTarget &) const override {
    auto norm = cast<RmsNormRopeGradOp>(op);
    RowPlan plan = makePlan(norm, tile);
    auto type = cast<ShapedType>(norm.getInput().getType());
    int64_t bytes = elementBytes(type.getElementType());
    int64_t rows = getEstimatedRows(op);
    int64_t partials =
        cast<ShapedType>(norm.getInits()[1].getType()).getDimSize(0);
    int64_t vectorBytes = plan.vectorWidth * bytes;
    KernelResources r;
    int64_t concurrentRows = plan.rowsAtOnce;
    r.blocks = partials;
    r.threadsPerBlock = tile.getNumThreads();
    // The row sums' exchange (two sums, two halves) and the slots' sums.
    r.sharedBytesPerBlock =
        16 * tile.getWarps() +
        (concurrentRows > 1 ? 4 * concurrentRows * plan.hidden : 0);
    // Per vector a thread holds: x and the gradient in their type, the
    // weight and the partial sums in f32; and the tables of its rotated
    // units.
    int64_t f32PerVector = plan.vectorWidth;
    int64_t registersPerVector = llvm::divideCeil(vectorBytes, 4);
    r.registersPerThread = 16 + plan.vectorsPerThread() *
                                    (4 * registersPerVector + 2 * f32PerVector);
    r.dramBytes = 3.0 * rows * plan.hidden * bytes +
                  weightGradSumBytes(norm, partials, plan.hidden);
    r.l2Bytes = r.dramBytes + double(rows) * plan.hidden * bytes * 2;
    r.launches = norm.getWeightGrad() ? 2 : 1;
    r.flops = 20.0 * rows * plan.hidden;
    r.unit = KernelResources::ComputeUnit::Fma;
    r.dependentLoads = norm.getPositions() ? 2 : 1;
    // One barrier a row (both sums at once).
    r.syncWarps =
        concurrentRows == 1 && tile.getWarps() > 1 ? tile.getWarps() : 0;
    r.serialSteps = llvm::divideCeil(rows, partials * concurrentRows);
    r.itemsPerThread = gradVectorsPerThread(plan);
    r.bytesInFlightPerBlock =
        2.0 * concurrentRows *
        double(std::min(plan.numUnits * (plan.neox ? 2 : 1),
                        plan.numThreads * plan.vectorsPerThread())) *
        vectorBytes;
    return r;
  }

  LogicalResult checkSupported(Operation *op, TileConfigAttr tile,
                               const KernelTarget &) const override {
    auto norm = cast<RmsNormRopeGradOp>(op);
    if (failed(checkGradRowsAtOnce(
            op, tile,
            cast<ShapedType>(norm.getInput().getType()).getShape().back())))
      return failure();
    return checkRowKernel(op, norm.getInput(), tile,
                          gradVectorsPerThread(makePlan(norm, tile)));
  }

  LogicalResult lower(Operation *op, TileConfigAttr tile,
                      const KernelTarget &target, gpu::GPUModuleOp module,
                      RewriterBase &rewriter) const override;
};

/// Builds the backward's kernel body. Arguments: x [rows, H], weight [H],
/// cos, sin [S, R], (positions [rows] | seqLen index), grad [rows, H],
/// dx [rows, H], partials [P, H] f32.
void buildGradKernelBody(ImplicitLocOpBuilder &b, RmsNormRopeGradOp op,
                         const RowPlan &plan, gpu::GPUFuncOp kernel) {
  Type elementType = cast<ShapedType>(op.getInput().getType()).getElementType();
  Type f32 = b.getF32Type();
  const int64_t vec = plan.vectorWidth, threads = plan.numThreads;
  const int64_t warps = threads / 32;
  // Rows a block takes at once, each over `threads` threads (a power of two,
  // at most a warp, where there are several).
  const int64_t concurrentRows = plan.rowsAtOnce;
  const bool hasPositions = static_cast<bool>(op.getPositions());
  const bool neox = plan.neox;
  using Kind = RowPlan::SlotKind;

  Value x = kernel.getArgument(0), weight = kernel.getArgument(1),
        cosTable = kernel.getArgument(2), sinTable = kernel.getArgument(3),
        positionsOrSeq = kernel.getArgument(4), grad = kernel.getArgument(5),
        dx = kernel.getArgument(6), partials = kernel.getArgument(7);
  Value reduceBuffer = kernel.getWorkgroupAttributions()[0];
  Type cosElementType = cast<ShapedType>(cosTable.getType()).getElementType();
  auto vecType = VectorType::get({vec}, elementType);
  auto vecF32 = VectorType::get({vec}, f32);
  auto vecCos = VectorType::get({vec}, cosElementType);
  int64_t alignX = vectorAlignment(elementType, vec);
  int64_t alignCos = vectorAlignment(cosElementType, vec);
  auto loadVec = [&](VectorType type, Value memref, ValueRange indices,
                     int64_t align) -> Value {
    return vector::LoadOp::create(b, type, memref, indices,
                                  /*nontemporal=*/false,
                                  llvm::MaybeAlign(align));
  };
  auto f32Of = [&](Value v) { return castFloat(b, v, f32); };
  auto mul = [&](Value l, Value r) -> Value {
    return arith::MulFOp::create(b, l, r);
  };
  auto add = [&](Value l, Value r) -> Value {
    return arith::AddFOp::create(b, l, r);
  };
  auto sub = [&](Value l, Value r) -> Value {
    return arith::SubFOp::create(b, l, r);
  };
  // `rotatedValue` where the unit is rotated, `passValue` where it passes
  // through (a straddling slot decides per thread).
  auto byKind = [&](const Unit &unit, function_ref<Value()> rotatedValue,
                    Value passValue) -> Value {
    if (unit.kind == Kind::Pass)
      return passValue;
    Value rotated = rotatedValue();
    if (!unit.rotated)
      return rotated;
    return arith::SelectOp::create(b, unit.rotated, rotated, passValue);
  };

  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value rows = memref::DimOp::create(b, x, 0);
  auto [slot, lane] = rowSlotAndLane(b, plan.rowsAtOnce, plan.numThreads, tid);
  SmallVector<Unit> units = buildUnits(b, plan, lane);
  // The weight, once per block, in f32 registers.
  for (Unit &unit : units) {
    unit.weightA = f32Of(loadVec(vecType, weight, {unit.columnA}, alignX));
    if (neox && unit.kind != Kind::Pass)
      unit.weightB =
          f32Of(loadVec(vecType, weight, {unit.loadColumnB}, alignX));
  }
  // The partial sums of dy·x·rstd, per unit and vector (A, then B for neox
  // rotated units), carried across the rows.
  SmallVector<Value> sums;
  Value zeros =
      arith::ConstantOp::create(b, cast<TypedAttr>(b.getZeroAttr(vecF32)));
  for (const Unit &unit : units) {
    sums.push_back(zeros);
    if (neox && unit.kind != Kind::Pass)
      sums.push_back(zeros);
  }
  SmallVector<float> signValues;
  for (int64_t i = 0; i < vec; ++i)
    signValues.push_back(i % 2 == 0 ? 1.0f : -1.0f);

  // Consecutive rows mostly share a position (the heads of a token), so a
  // block that takes consecutive rows reads a table row once from L2 for
  // them all.
  Value numPartials = memref::DimOp::create(b, partials, 0);
  SmallVector<Value> finalSums = forEachPartialRow(
      b, rows, numPartials, concurrentRows, slot, warps, sums,
      [&](Value row, Value valid, ValueRange rowSums,
          Value reduceOffset) -> SmallVector<Value> {
        auto [position, positionOk] =
            rowPosition(b, hasPositions, positionsOrSeq, cosTable, row);

        // Every load of the row first (the stores may alias them).
        struct Loaded {
          Value xa, xb, da, db, cosA, sinA, cosB, sinB;
        };
        SmallVector<Loaded> loaded;
        for (const Unit &unit : units) {
          Loaded l;
          l.xa = f32Of(loadVec(vecType, x, {row, unit.columnA}, alignX));
          l.da = f32Of(loadVec(vecType, grad, {row, unit.columnA}, alignX));
          if (unit.kind != Kind::Pass) {
            l.cosA = f32Of(
                loadVec(vecCos, cosTable, {position, unit.tableA}, alignCos));
            l.sinA = f32Of(
                loadVec(vecCos, sinTable, {position, unit.tableA}, alignCos));
            if (neox) {
              l.xb =
                  f32Of(loadVec(vecType, x, {row, unit.loadColumnB}, alignX));
              l.db = f32Of(
                  loadVec(vecType, grad, {row, unit.loadColumnB}, alignX));
              l.cosB = f32Of(
                  loadVec(vecCos, cosTable, {position, unit.tableB}, alignCos));
              l.sinB = f32Of(
                  loadVec(vecCos, sinTable, {position, unit.tableB}, alignCos));
            }
          }
          loaded.push_back(l);
        }

        // dy = RoPE⁻¹(grad): neox dy_a = d_a·cos_a + d_b·sin_b, dy_b =
        // d_b·cos_b − d_a·sin_a; gptj dy[2i] = d[2i]·c[2i] + d[2i+1]·s[2i+1],
        // dy[2i+1] = d[2i+1]·c[2i+1] − d[2i]·s[2i]; pass-through dims as they
        // are. Then g = dy·w and the thread's parts of Σx² and Σg·x.
        SmallVector<Value> dyA, dyB;
        Value squares = cF32(b, 0.0f), dot = cF32(b, 0.0f);
        auto sumInto = [&](Value &total, Value v) {
          total = add(total, vector::ReductionOp::create(
                                 b, vector::CombiningKind::ADD, v));
        };
        for (auto [unit, l] : llvm::zip(units, loaded)) {
          Value ya = byKind(
              unit,
              [&]() -> Value {
                if (neox)
                  return add(mul(l.da, l.cosA), mul(l.db, l.sinB));
                // gptj pairs lie inside a vector: its rotated dims per head are
                // even, so chooseVectorWidth gives at least 2.
                assert(vec >= 2 && "gptj vectors hold whole pairs");
                SmallVector<int64_t> swap;
                for (int64_t i = 0; i < vec; ++i)
                  swap.push_back(i ^ 1);
                Value ds = mul(l.da, l.sinA);
                Value partner = vector::ShuffleOp::create(b, ds, ds, swap);
                return add(
                    mul(l.da, l.cosA),
                    mul(partner,
                        arith::ConstantOp::create(
                            b, DenseElementsAttr::get(
                                   vecF32, ArrayRef<float>(signValues)))));
              },
              l.da);
          dyA.push_back(ya);
          sumInto(squares, selectOrZero(b, unit.inRow, mul(l.xa, l.xa)));
          sumInto(dot, selectOrZero(b, unit.inRow,
                                    mul(mul(ya, unit.weightA), l.xa)));
          if (neox && unit.kind != Kind::Pass) {
            Value yb = sub(mul(l.db, l.cosB), mul(l.da, l.sinA));
            dyB.push_back(yb);
            Value inB = andOrNull(b, unit.inRow, unit.rotated);
            sumInto(squares, selectOrZero(b, inB, mul(l.xb, l.xb)));
            sumInto(dot,
                    selectOrZero(b, inB, mul(mul(yb, unit.weightB), l.xb)));
          } else {
            dyB.push_back(Value());
          }
        }
        SmallVector<Value> sums =
            reduceRowSums(b, concurrentRows, threads, warps, {squares, dot},
                          reduceBuffer, reduceOffset);
        squares = sums[0];
        dot = sums[1];
        Value rstd = rowRstd(b, squares, plan.hidden, op.getEpsAttr());
        rstd = arith::SelectOp::create(
            b, positionOk, rstd,
            cF32(b, std::numeric_limits<float>::quiet_NaN()));
        // dx = rstd·g − x·rstd³·mean(g·x).
        Value coefficient =
            mul(mul(mul(rstd, rstd), rstd),
                arith::DivFOp::create(
                    b, dot, cF32(b, static_cast<float>(plan.hidden))));
        Value rstdVec = vector::BroadcastOp::create(b, vecF32, rstd);
        Value coefVec = vector::BroadcastOp::create(b, vecF32, coefficient);
        auto gradOfX = [&](Value dy, Value w, Value xv) -> Value {
          return sub(mul(mul(dy, w), rstdVec), mul(xv, coefVec));
        };
        auto store = [&](Value value, Value column) {
          vector::StoreOp::create(
              b, castFloat(b, value, elementType), dx, ValueRange{row, column},
              /*nontemporal=*/false, llvm::MaybeAlign(alignX));
        };
        SmallVector<Value> next;
        size_t sum = 0;
        for (size_t i = 0; i < units.size(); ++i) {
          const Unit &unit = units[i];
          const Loaded &l = loaded[i];
          ifThen(b, andOrNull(b, valid, unit.inRow), [&] {
            store(gradOfX(dyA[i], unit.weightA, l.xa), unit.columnA);
          });
          next.push_back(
              add(rowSums[sum++],
                  selectOrZero(b, valid, mul(mul(dyA[i], l.xa), rstdVec))));
          if (dyB[i]) {
            ifThen(b,
                   andOrNull(b, valid, andOrNull(b, unit.inRow, unit.rotated)),
                   [&] {
                     store(gradOfX(dyB[i], unit.weightB, l.xb), unit.columnB);
                   });
            next.push_back(
                add(rowSums[sum++],
                    selectOrZero(b, valid, mul(mul(dyB[i], l.xb), rstdVec))));
          }
        }
        return next;
      });

  // This block's partial sums (zeros where it had no rows).
  SmallVector<PartialSum> partialSums;
  size_t sum = 0;
  for (const Unit &unit : units) {
    partialSums.push_back({finalSums[sum++], unit.columnA, unit.inRow});
    if (neox && unit.kind != Kind::Pass)
      partialSums.push_back({finalSums[sum++], unit.columnB,
                             andOrNull(b, unit.inRow, unit.rotated)});
  }
  storeBlockPartials(
      b, partialSums, partials, concurrentRows, slot, plan.hidden,
      concurrentRows > 1 ? Value(kernel.getWorkgroupAttributions()[1])
                         : Value());
}

LogicalResult RmsNormRopeGradStrategy::lower(Operation *op, TileConfigAttr tile,
                                             const KernelTarget &,
                                             gpu::GPUModuleOp module,
                                             RewriterBase &rewriter) const {
  auto norm = cast<RmsNormRopeGradOp>(op);
  RowPlan plan = makePlan(norm, tile);
  ImplicitLocOpBuilder b(op->getLoc(), rewriter);
  b.setInsertionPoint(op);
  Value partials = norm.getInits()[1];
  SmallVector<Value> args = {collapseLeadingDims(b, norm.getInput()),
                             norm.getWeight(),
                             norm.getCos(),
                             norm.getSin(),
                             getPositionsOrSeq(b, norm),
                             collapseLeadingDims(b, norm.getGrad()),
                             collapseLeadingDims(b, norm.getInits()[0]),
                             partials};
  emitGradKernel(b, module, "rmsnorm_rope_grad", args, tile, plan.rowsAtOnce,
                 plan.hidden, [&](gpu::GPUFuncOp kernel) {
                   buildGradKernelBody(b, norm, plan, kernel);
                 });
  if (Value weightGrad = norm.getWeightGrad())
    emitWeightGradSum(b, module, "rmsnorm_rope_grad_weight_sum", partials,
                      weightGrad);
  rewriter.eraseOp(op);
  return success();
}

//===----------------------------------------------------------------------===//
// rms_norm
//===----------------------------------------------------------------------===//

/// The vector width of rms_norm and its backward: the widest (at most 16
/// bytes) that divides the hidden size of `input`.
int64_t chooseNormVectorWidth(Value input) {
  auto type = cast<ShapedType>(input.getType());
  int64_t hidden = type.getShape().back();
  int64_t width = 16 / elementBytes(type.getElementType());
  while (width > 1 && hidden % width)
    width /= 2;
  return width;
}

/// rms_norm's row shape: `vectors` vectors of `width` elements, spread
/// round-robin over a row's `threads` threads (consecutive threads,
/// consecutive vectors: each warp access is contiguous). The forward's block
/// = [R] takes R rows in turn over all the block's threads; the backward's
/// takes R at once, each over the block's threads / R.
struct NormPlan {
  int64_t hidden = 0;
  int64_t width = 1;
  int64_t vectors = 0;
  int64_t threads = 0;
  int64_t vectorsPerThread = 0;
  int64_t rowsPerBlock = 1;
  int64_t rowsAtOnce = 1;
};

template <typename OpTy> NormPlan makeNormPlan(OpTy op, TileConfigAttr tile) {
  NormPlan plan;
  plan.hidden = cast<ShapedType>(op.getInput().getType()).getShape().back();
  plan.width = chooseNormVectorWidth(op.getInput());
  plan.vectors = plan.hidden / plan.width;
  if (std::is_same_v<OpTy, RmsNormOp>)
    plan.rowsPerBlock = tile.getBlock()[0];
  else
    plan.rowsAtOnce = tile.getBlock()[0];
  plan.threads = tile.getNumThreads() / std::max<int64_t>(1, plan.rowsAtOnce);
  plan.vectorsPerThread =
      llvm::divideCeil(plan.vectors, std::max<int64_t>(1, plan.threads));
  return plan;
}

/// The default tile of rms_norm or its backward: getDefaultRowTile of the
/// row's vectors (a 4096-wide row where it is dynamic).
TileConfigAttr getDefaultNormTile(Value input) {
  int64_t hidden = cast<ShapedType>(input.getType()).getShape().back();
  if (ShapedType::isDynamic(hidden))
    hidden = 4096;
  return getDefaultRowTile(
      input.getContext(),
      llvm::divideCeil(hidden, chooseNormVectorWidth(input)));
}

/// This thread's vectors of a row: their columns and, where the last round
/// runs past the row, whether each is in it (null: always).
std::pair<SmallVector<Value>, SmallVector<Value>>
normColumns(ImplicitLocOpBuilder &b, const NormPlan &plan, Value lane) {
  SmallVector<Value> columns, inRow;
  for (int64_t s = 0; s < plan.vectorsPerThread; ++s) {
    Value v = arith::AddIOp::create(b, cIndex(b, s * plan.threads), lane);
    columns.push_back(arith::MulIOp::create(b, v, cIndex(b, plan.width)));
    inRow.push_back((s + 1) * plan.threads > plan.vectors
                        ? arith::CmpIOp::create(b, arith::CmpIPredicate::ult, v,
                                                cIndex(b, plan.vectors))
                              .getResult()
                        : Value());
  }
  return {columns, inRow};
}

/// `load()`'s values where `cond` holds (always for a null `cond`), else
/// zeros of their types.
SmallVector<Value> loadOrZeros(ImplicitLocOpBuilder &b, Value cond,
                               TypeRange types,
                               function_ref<SmallVector<Value>()> load) {
  if (!cond)
    return load();
  auto ifOp = scf::IfOp::create(b, types, cond, /*addThenBlock=*/true,
                                /*addElseBlock=*/true);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(ifOp.thenBlock());
  scf::YieldOp::create(b, load());
  b.setInsertionPointToStart(ifOp.elseBlock());
  SmallVector<Value> zeros;
  for (Type type : types)
    zeros.push_back(
        arith::ConstantOp::create(b, cast<TypedAttr>(b.getZeroAttr(type))));
  scf::YieldOp::create(b, zeros);
  return SmallVector<Value>(ifOp.getResults());
}

class RmsNormStrategy final : public KernelStrategy {
public:
  StringRef getName() const override { return "rms-norm-rowwise"; }

  bool matches(Operation *op, const KernelTarget &) const override {
    return isa<RmsNormOp>(op);
  }

  TileConfigAttr getDefaultTile(Operation *op,
                                const KernelTarget &) const override {
    return getDefaultNormTile(cast<RmsNormOp>(op).getInput());
  }

  SmallVector<TileConfigAttr>
  getTileCandidates(Operation *op, const KernelTarget &target) const override {
    return getRowTileCandidates(getDefaultTile(op, target));
  }

  KernelResources estimateResources(Operation *op, TileConfigAttr tile,
                                    const KernelTarget &) const override {
    auto norm = cast<RmsNormOp>(op);
    NormPlan plan = makeNormPlan(norm, tile);
    auto type = cast<ShapedType>(norm.getInput().getType());
    int64_t bytes = elementBytes(type.getElementType());
    int64_t rows = getEstimatedRows(op);
    // Rows in (x, and the residual) and out (the output, and the sum).
    double streams = norm.getResidual() ? 4.0 : 2.0;
    KernelResources r;
    r.blocks = llvm::divideCeil(rows, plan.rowsPerBlock);
    r.threadsPerBlock = plan.threads;
    r.sharedBytesPerBlock = 4 * tile.getWarps();
    // The row's values in f32 plus addresses and rstd.
    r.registersPerThread = 24 + plan.vectorsPerThread * plan.width;
    r.dramBytes = streams * rows * plan.hidden * bytes;
    // The weight is re-read per row from L2.
    r.l2Bytes = r.dramBytes + double(rows) * plan.hidden * bytes;
    r.flops = 5.0 * rows * plan.hidden;
    r.unit = KernelResources::ComputeUnit::Fma;
    // Per row: the row's loads (x and the residual together), then the
    // reduction; the weight is loaded once per block, yet two latencies are
    // charged: the picks were measured with that (95-101 % of a same-bytes
    // copy, docs/perf/memory-ops.md), and with one the pick at 16384×4096
    // moves to a tile not measured yet.
    r.dependentLoads = 2;
    r.syncWarps = tile.getWarps() > 1 ? tile.getWarps() : 0;
    r.serialSteps = plan.rowsPerBlock;
    r.itemsPerThread = plan.vectorsPerThread;
    r.bytesInFlightPerBlock =
        (streams / 2) * double(plan.vectors) * double(plan.width * bytes);
    return r;
  }

  LogicalResult checkSupported(Operation *op, TileConfigAttr tile,
                               const KernelTarget &) const override {
    auto norm = cast<RmsNormOp>(op);
    return checkRowKernel(op, norm.getInput(), tile,
                          makeNormPlan(norm, tile).vectorsPerThread);
  }

  LogicalResult lower(Operation *op, TileConfigAttr tile,
                      const KernelTarget &target, gpu::GPUModuleOp module,
                      RewriterBase &rewriter) const override;
};

/// Builds the kernel body. Arguments: x [rows, H], weight [H], out
/// [rows, H], then with a residual: residual [rows, H], sum [rows, H].
void buildNormKernelBody(ImplicitLocOpBuilder &b, RmsNormOp op,
                         const NormPlan &plan, gpu::GPUFuncOp kernel) {
  Type elementType = cast<ShapedType>(op.getInput().getType()).getElementType();
  Type f32 = b.getF32Type();
  const int64_t vec = plan.width, threads = plan.threads;
  const bool hasResidual = static_cast<bool>(op.getResidual());
  Value x = kernel.getArgument(0), weight = kernel.getArgument(1),
        out = kernel.getArgument(2);
  Value residual = hasResidual ? kernel.getArgument(3) : Value();
  Value sumOut = hasResidual ? kernel.getArgument(4) : Value();
  Value reduceBuffer = kernel.getWorkgroupAttributions()[0];

  auto vecType = VectorType::get({vec}, elementType);
  auto vecF32 = VectorType::get({vec}, f32);
  int64_t align = vectorAlignment(elementType, vec);
  auto load = [&](Value memref, ValueRange indices) -> Value {
    return vector::LoadOp::create(b, vecType, memref, indices,
                                  /*nontemporal=*/false,
                                  llvm::MaybeAlign(align));
  };
  auto store = [&](Value value, Value memref, ValueRange indices) {
    vector::StoreOp::create(b, value, memref, indices, /*nontemporal=*/false,
                            llvm::MaybeAlign(align));
  };
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value rows = memref::DimOp::create(b, x, 0);
  auto [columns, inRow] = normColumns(b, plan, tid);

  // The weight's vectors, loaded once for all the block's rows (in the
  // element type: half the registers of f32), and the row loop's first
  // loads need not wait for them.
  SmallVector<Value> weights;
  for (auto [column, cond] : llvm::zip(columns, inRow))
    weights.push_back(loadOrZeros(b, cond, vecType, [&, column = column] {
                        return SmallVector<Value>{load(weight, {column})};
                      }).front());

  const int64_t warps = threads / 32;
  forEachBlockRow(b, plan.rowsPerBlock, warps, rows, [&](Value row) {
    // 1. Load every vector of x (and of the residual) first: the sum stores
    //    below may alias the loads for all the compiler knows, so loads after
    //    them would wait for the ones before.
    SmallVector<Value> xs, rs;
    for (auto [column, cond] : llvm::zip(columns, inRow)) {
      SmallVector<Type> types(hasResidual ? 2 : 1, vecType);
      SmallVector<Value> loaded =
          loadOrZeros(b, cond, types, [&, column = column]() {
            SmallVector<Value> values = {load(x, {row, column})};
            if (hasResidual)
              values.push_back(load(residual, {row, column}));
            return values;
          });
      xs.push_back(loaded[0]);
      if (hasResidual)
        rs.push_back(loaded[1]);
    }

    // 2. With a residual, the sum rounded to the element type is stored and is
    //    the value normalised. Sum of squares in f32.
    SmallVector<Value> values;
    Value sum = cF32(b, 0.0f);
    for (auto [index, cond] : llvm::enumerate(inRow)) {
      Value v = xs[index];
      if (hasResidual) {
        v = castFloat(b,
                      arith::AddFOp::create(b, castFloat(b, v, f32),
                                            castFloat(b, rs[index], f32)),
                      elementType);
        Value sumValue = v;
        ifThen(b, cond, [&] {
          store(sumValue, sumOut, {row, columns[index]});
        });
      }
      v = castFloat(b, v, f32);
      values.push_back(v);
      sum = arith::AddFOp::create(
          b, sum,
          vector::ReductionOp::create(b, vector::CombiningKind::ADD,
                                      arith::MulFOp::create(b, v, v)));
    }

    // 3. rstd from the block-wide sum.
    sum = blockAllReduceSum(b, sum, warps, reduceBuffer);
    Value rstd = rowRstd(b, sum, plan.hidden, op.getEpsAttr());
    Value rstdVec = vector::BroadcastOp::create(b, vecF32, rstd);
    float offset = op.getWeightOffsetValue();
    Value offsetVec = offset != 0.0f
                          ? arith::ConstantOp::create(
                                b, DenseElementsAttr::get(vecF32, offset))
                                .getResult()
                          : Value();

    // 4. Scale and store.
    for (auto [index, column] : llvm::enumerate(columns)) {
      ifThen(b, inRow[index], [&] {
        Value w = castFloat(b, weights[index], f32);
        if (offsetVec)
          w = arith::AddFOp::create(b, w, offsetVec);
        Value y = arith::MulFOp::create(
            b, arith::MulFOp::create(b, values[index], rstdVec), w);
        store(castFloat(b, y, elementType), out, {row, column});
      });
    }
  });
}

LogicalResult RmsNormStrategy::lower(Operation *op, TileConfigAttr tile,
                                     const KernelTarget &,
                                     gpu::GPUModuleOp module,
                                     RewriterBase &rewriter) const {
  auto norm = cast<RmsNormOp>(op);
  NormPlan plan = makeNormPlan(norm, tile);
  ImplicitLocOpBuilder b(op->getLoc(), rewriter);
  b.setInsertionPoint(op);

  // Host side: 2-D views of the row tensors.
  Value x = collapseLeadingDims(b, norm.getInput());
  SmallVector<Value> args = {x, norm.getWeight(),
                             collapseLeadingDims(b, norm.getInits()[0])};
  if (Value residual = norm.getResidual()) {
    args.push_back(collapseLeadingDims(b, residual));
    args.push_back(collapseLeadingDims(b, norm.getInits()[1]));
  }
  emitRowKernel(b, module, norm.getResidual() ? "add_rms_norm" : "rms_norm",
                args, tile, plan.rowsPerBlock, [&](gpu::GPUFuncOp kernel) {
                  buildNormKernelBody(b, norm, plan, kernel);
                });
  rewriter.eraseOp(op);
  return success();
}

//===----------------------------------------------------------------------===//
// rms_norm_grad
//===----------------------------------------------------------------------===//
//
// rms_norm's backward, laid out as rmsnorm_rope_grad's without the rotation:
// P blocks each walk their ⌈rows / P⌉ consecutive rows (R at once for narrow
// rows), read x, the gradient (and the sum's gradient) once, store dx, and
// add grad·x·rstd into registers for the block's partial sums of the
// weight's gradient, stored once at the end.

/// The blocks an SM that rms_norm_grad's kernel is compiled for (its
/// nvvm.minctasm; 0: none), and the registers a thread that leaves it. A
/// row at a time over 4 warps, 16-bit rows of 16 to 32 elements a thread
/// and no sum's gradient: 5 blocks (96 registers at most; ptxas spills
/// nothing there, sm_90a and sm_80). Measured on an H200 (device time, the
/// same partials; docs/perf/memory-ops.md v11): bf16 16384×4096 117.7 →
/// 109.8 µs, f16 4096×3072 26.6 → 23.8 µs. Not where ptxas would spill:
/// f32 rows, wider rows, 8 warps (48 registers) or the sum's gradient.
std::pair<int64_t, int64_t> getNormGradBudget(RmsNormGradOp op,
                                              const NormPlan &plan,
                                              const KernelTarget &target) {
  int64_t elements = plan.vectorsPerThread * plan.width;
  // Per element a thread holds its partial sum in f32 across the rows, and
  // within a row's passes x, the gradients and the weight: ptxas reported 61
  // and 116 registers for 16 and 32 bf16 elements a thread.
  int64_t unbounded = 20 + elements * (op.getResidualGrad() ? 4 : 3);
  Type elementType = cast<ShapedType>(op.getInput().getType()).getElementType();
  constexpr int64_t kBlocks = 5, kThreads = 128;
  if (plan.rowsAtOnce != 1 || plan.threads != kThreads ||
      elementBytes(elementType) != 2 || op.getResidualGrad() || elements < 16 ||
      elements > 32)
    return {unbounded, 0};
  SmLimits limits = SmLimits::get(*target.info);
  int64_t budget =
      std::min(unbounded, limits.registersPerSm / (kBlocks * kThreads) / 8 * 8);
  return {budget, kBlocks};
}

class RmsNormGradStrategy final : public KernelStrategy {
public:
  StringRef getName() const override { return "rms-norm-grad-rowwise"; }

  bool matches(Operation *op, const KernelTarget &) const override {
    return isa<RmsNormGradOp>(op);
  }

  TileConfigAttr getDefaultTile(Operation *op,
                                const KernelTarget &) const override {
    return getDefaultNormTile(cast<RmsNormGradOp>(op).getInput());
  }

  SmallVector<TileConfigAttr>
  getTileCandidates(Operation *op, const KernelTarget &target) const override {
    return getGradTileCandidates(getDefaultTile(op, target));
  }

  KernelResources estimateResources(Operation *op, TileConfigAttr tile,
                                    const KernelTarget &target) const override {
    auto norm = cast<RmsNormGradOp>(op);
    NormPlan plan = makeNormPlan(norm, tile);
    auto type = cast<ShapedType>(norm.getInput().getType());
    int64_t bytes = elementBytes(type.getElementType());
    int64_t rows = getEstimatedRows(op);
    int64_t partials =
        cast<ShapedType>(norm.getInits()[1].getType()).getDimSize(0);
    // Rows in (x, the gradient, and the sum's gradient) and out (dx).
    double streams = norm.getResidualGrad() ? 4.0 : 3.0;
    KernelResources r;
    r.blocks = partials;
    r.threadsPerBlock = tile.getNumThreads();
    // The row sums' exchange (two sums, two halves) and the slots' sums.
    r.sharedBytesPerBlock =
        16 * tile.getWarps() +
        (plan.rowsAtOnce > 1 ? 4 * plan.rowsAtOnce * plan.hidden : 0);
    r.registersPerThread = getNormGradBudget(norm, plan, target).first;
    r.dramBytes = streams * rows * plan.hidden * bytes +
                  weightGradSumBytes(norm, partials, plan.hidden);
    r.l2Bytes = r.dramBytes;
    r.launches = norm.getWeightGrad() ? 2 : 1;
    r.flops = 10.0 * rows * plan.hidden;
    r.unit = KernelResources::ComputeUnit::Fma;
    r.dependentLoads = 1;
    // One barrier a row (both sums at once).
    r.syncWarps =
        plan.rowsAtOnce == 1 && tile.getWarps() > 1 ? tile.getWarps() : 0;
    r.serialSteps = llvm::divideCeil(rows, partials * plan.rowsAtOnce);
    r.itemsPerThread = 2 * plan.vectorsPerThread;
    r.bytesInFlightPerBlock = (streams - 1) * plan.rowsAtOnce *
                              double(plan.vectors * plan.width * bytes);
    return r;
  }

  LogicalResult checkSupported(Operation *op, TileConfigAttr tile,
                               const KernelTarget &) const override {
    auto norm = cast<RmsNormGradOp>(op);
    if (failed(checkGradRowsAtOnce(
            op, tile,
            cast<ShapedType>(norm.getInput().getType()).getShape().back())))
      return failure();
    return checkRowKernel(op, norm.getInput(), tile,
                          2 * makeNormPlan(norm, tile).vectorsPerThread);
  }

  LogicalResult lower(Operation *op, TileConfigAttr tile,
                      const KernelTarget &target, gpu::GPUModuleOp module,
                      RewriterBase &rewriter) const override;
};

/// Builds the backward's kernel body. Arguments: x [rows, H], weight [H],
/// grad [rows, H], (residual_grad [rows, H]), dx [rows, H], partials [P, H]
/// f32.
void buildNormGradKernelBody(ImplicitLocOpBuilder &b, RmsNormGradOp op,
                             const NormPlan &plan, gpu::GPUFuncOp kernel) {
  Type elementType = cast<ShapedType>(op.getInput().getType()).getElementType();
  Type f32 = b.getF32Type();
  const int64_t vec = plan.width;
  const int64_t warps = plan.threads * plan.rowsAtOnce / 32;
  const bool hasResidualGrad = static_cast<bool>(op.getResidualGrad());
  unsigned arg = 0;
  Value x = kernel.getArgument(arg++), weight = kernel.getArgument(arg++),
        grad = kernel.getArgument(arg++);
  Value residualGrad = hasResidualGrad ? kernel.getArgument(arg++) : Value();
  Value dx = kernel.getArgument(arg++), partials = kernel.getArgument(arg++);

  auto vecType = VectorType::get({vec}, elementType);
  auto vecF32 = VectorType::get({vec}, f32);
  int64_t align = vectorAlignment(elementType, vec);
  auto load = [&](Value memref, ValueRange indices) -> Value {
    return vector::LoadOp::create(b, vecType, memref, indices,
                                  /*nontemporal=*/false,
                                  llvm::MaybeAlign(align));
  };
  auto f32Of = [&](Value v) { return castFloat(b, v, f32); };
  auto mul = [&](Value l, Value r) -> Value {
    return arith::MulFOp::create(b, l, r);
  };
  auto add = [&](Value l, Value r) -> Value {
    return arith::AddFOp::create(b, l, r);
  };
  auto sumOf = [&](Value v) -> Value {
    return vector::ReductionOp::create(b, vector::CombiningKind::ADD, v);
  };

  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value rows = memref::DimOp::create(b, x, 0);
  auto [slot, lane] = rowSlotAndLane(b, plan.rowsAtOnce, plan.threads, tid);
  auto [columns, inRow] = normColumns(b, plan, lane);

  // The weight (+ weight_offset) in f32, loaded with each pass over a row
  // (from L1: the dx stores may alias it, so LLVM keeps the loads in the
  // loop, and no registers hold it across the rows and their barriers).
  float offset = op.getWeightOffsetValue();
  auto loadWeights = [&]() {
    SmallVector<Value> weights;
    for (auto [column, cond] : llvm::zip(columns, inRow)) {
      Value w = f32Of(loadOrZeros(b, cond, vecType, [&, column = column] {
                        return SmallVector<Value>{load(weight, {column})};
                      }).front());
      if (offset != 0.0f)
        w = add(w, arith::ConstantOp::create(
                       b, DenseElementsAttr::get(vecF32, offset)));
      weights.push_back(w);
    }
    return weights;
  };

  Value zeros =
      arith::ConstantOp::create(b, cast<TypedAttr>(b.getZeroAttr(vecF32)));
  SmallVector<Value> sums(plan.vectorsPerThread, zeros);
  Value numPartials = memref::DimOp::create(b, partials, 0);
  SmallVector<Value> finalSums = forEachPartialRow(
      b, rows, numPartials, plan.rowsAtOnce, slot, warps, sums,
      [&](Value row, Value valid, ValueRange rowSums,
          Value reduceOffset) -> SmallVector<Value> {
        // The row's x and gradient (and the sum's gradient) in f32, zeros
        // past the row; every load first (the stores may alias them).
        auto loadRow = [&](bool withResidualGrad) {
          SmallVector<SmallVector<Value>> rowValues(3);
          for (auto [column, cond] : llvm::zip(columns, inRow)) {
            SmallVector<Type> types(withResidualGrad ? 3 : 2, vecType);
            SmallVector<Value> loaded =
                loadOrZeros(b, cond, types, [&, column = column]() {
                  SmallVector<Value> values = {load(x, {row, column}),
                                               load(grad, {row, column})};
                  if (withResidualGrad)
                    values.push_back(load(residualGrad, {row, column}));
                  return values;
                });
            for (auto [i, value] : llvm::enumerate(loaded))
              rowValues[i].push_back(f32Of(value));
          }
          return rowValues;
        };
        // Σx² and Σg·x (g = grad·w), reduced together.
        SmallVector<SmallVector<Value>> first = loadRow(false);
        Value squares = cF32(b, 0.0f), dot = cF32(b, 0.0f);
        SmallVector<Value> weights = loadWeights();
        for (auto [xv, gradv, w] : llvm::zip(first[0], first[1], weights)) {
          squares = add(squares, sumOf(mul(xv, xv)));
          dot = add(dot, sumOf(mul(mul(gradv, w), xv)));
        }
        SmallVector<Value> sums = reduceRowSums(
            b, plan.rowsAtOnce, plan.threads, warps, {squares, dot},
            kernel.getWorkgroupAttributions()[0], reduceOffset);
        Value rstd = rowRstd(b, sums[0], plan.hidden, op.getEpsAttr());
        // dx = rstd·g − x·rstd³·mean(g·x) (+ residual_grad).
        Value coefficient =
            mul(mul(mul(rstd, rstd), rstd),
                arith::DivFOp::create(
                    b, sums[1], cF32(b, static_cast<float>(plan.hidden))));
        Value rstdVec = vector::BroadcastOp::create(b, vecF32, rstd);
        Value coefVec = vector::BroadcastOp::create(b, vecF32, coefficient);
        // The row again, after the reduction's barrier (from L1, which holds
        // it): holding it in registers across the barrier would take four
        // times the registers of its 16-bit values, and fewer blocks would
        // stay resident to keep loads in flight. Without a barrier (several
        // rows at once) LLVM forwards the first loads.
        SmallVector<SmallVector<Value>> again = loadRow(hasResidualGrad);
        weights = loadWeights();
        SmallVector<Value> next;
        for (auto [index, column] : llvm::enumerate(columns)) {
          Value xv = again[0][index], gradv = again[1][index];
          ifThen(b, andOrNull(b, valid, inRow[index]), [&, column = column] {
            Value d = arith::SubFOp::create(
                b, mul(mul(gradv, weights[index]), rstdVec), mul(xv, coefVec));
            if (hasResidualGrad)
              d = add(d, again[2][index]);
            vector::StoreOp::create(
                b, castFloat(b, d, elementType), dx, ValueRange{row, column},
                /*nontemporal=*/false, llvm::MaybeAlign(align));
          });
          next.push_back(
              add(rowSums[index],
                  selectOrZero(b, valid, mul(mul(gradv, xv), rstdVec))));
        }
        return next;
      });

  // This block's partial sums (zeros where it had no rows).
  SmallVector<PartialSum> partialSums;
  for (auto [sum, column, cond] : llvm::zip(finalSums, columns, inRow))
    partialSums.push_back({sum, column, cond});
  storeBlockPartials(
      b, partialSums, partials, plan.rowsAtOnce, slot, plan.hidden,
      plan.rowsAtOnce > 1 ? Value(kernel.getWorkgroupAttributions()[1])
                          : Value());
}

LogicalResult RmsNormGradStrategy::lower(Operation *op, TileConfigAttr tile,
                                         const KernelTarget &target,
                                         gpu::GPUModuleOp module,
                                         RewriterBase &rewriter) const {
  auto norm = cast<RmsNormGradOp>(op);
  NormPlan plan = makeNormPlan(norm, tile);
  ImplicitLocOpBuilder b(op->getLoc(), rewriter);
  b.setInsertionPoint(op);
  Value partials = norm.getInits()[1];
  SmallVector<Value> args = {collapseLeadingDims(b, norm.getInput()),
                             norm.getWeight(),
                             collapseLeadingDims(b, norm.getGrad())};
  if (Value residualGrad = norm.getResidualGrad())
    args.push_back(collapseLeadingDims(b, residualGrad));
  args.push_back(collapseLeadingDims(b, norm.getInits()[0]));
  args.push_back(partials);
  StringRef name =
      norm.getResidualGrad() ? "add_rms_norm_grad" : "rms_norm_grad";
  int64_t blocksPerSm = getNormGradBudget(norm, plan, target).second;
  emitGradKernel(
      b, module, name, args, tile, plan.rowsAtOnce, plan.hidden,
      [&](gpu::GPUFuncOp kernel) {
        buildNormGradKernelBody(b, norm, plan, kernel);
      },
      blocksPerSm);
  if (Value weightGrad = norm.getWeightGrad())
    emitWeightGradSum(b, module, (name + "_weight_sum").str(), partials,
                      weightGrad);
  rewriter.eraseOp(op);
  return success();
}

} // namespace

std::unique_ptr<KernelStrategy>
mlir::fusedops::kernel::createRmsNormRopeStrategy() {
  return std::make_unique<RmsNormRopeStrategy>();
}

std::unique_ptr<KernelStrategy>
mlir::fusedops::kernel::createRmsNormRopeGradStrategy() {
  return std::make_unique<RmsNormRopeGradStrategy>();
}

std::unique_ptr<KernelStrategy>
mlir::fusedops::kernel::createRmsNormStrategy() {
  return std::make_unique<RmsNormStrategy>();
}

std::unique_ptr<KernelStrategy>
mlir::fusedops::kernel::createRmsNormGradStrategy() {
  return std::make_unique<RmsNormGradStrategy>();
}
