//===- RmsNormRopeStrategy.cpp - the fused RMSNorm+RoPE row kernel --------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// rmsnorm_rope is memory-bound: per row it must read H input elements and
// write H outputs, against ~6 flops an element. The kernel reads each input
// element from HBM once and writes each output once:
//
//   1. a thread block takes one row at a time; each thread loads its chunks
//      of the row with 16-byte vector loads (coalesced: chunk c of thread t
//      starts at element (c·T + t)·V) and keeps them in registers, summing
//      squares in f32;
//   2. warp shuffles and one shared-memory exchange give every thread the
//      row's sum, hence rstd;
//   3. y = x·rstd·weight goes to a shared-memory row buffer (f32), because
//      RoPE pairs element i with i ± R/2 (neox), which another thread holds;
//   4. each thread rotates its chunks reading the partners from shared
//      memory and the cos/sin entries of the row's position, and stores the
//      result with 16-byte vector stores.
//
// The vector width V is the widest (at most 16 bytes) that divides the
// hidden size, the head size and the rotated half, so a vector never
// straddles a head or the rotated/pass-through boundary. Both chips use this
// kernel: nothing in it is chip-specific.
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"
#include "Strategies.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <limits>

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::kernel;

namespace {

/// Static shared memory available to one block without opting in.
constexpr int64_t kStaticSharedMemoryBytes = 48 * 1024;

/// Everything the kernel's shape depends on.
struct RowPlan {
  int64_t hidden = 0;
  int64_t headDim = 0;
  int64_t rotaryDim = 0;
  int64_t vectorWidth = 1;
  int64_t numThreads = 0;
  int64_t chunksPerThread = 0;
  int64_t rowsPerBlock = 1;
};

int64_t elementBytes(Type type) { return type.getIntOrFloatBitWidth() / 8; }

int64_t chooseVectorWidth(RmsNormRopeOp op) {
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

RowPlan makePlan(RmsNormRopeOp op, TileConfigAttr tile) {
  RowPlan plan;
  plan.hidden = cast<ShapedType>(op.getInput().getType()).getShape().back();
  plan.headDim = static_cast<int64_t>(op.getHeadDim());
  plan.rotaryDim = op.getRotaryDim();
  plan.vectorWidth = chooseVectorWidth(op);
  plan.numThreads = tile.getNumThreads();
  plan.rowsPerBlock = tile.getBlock()[0];
  plan.chunksPerThread =
      llvm::divideCeil(plan.hidden, plan.numThreads * plan.vectorWidth);
  return plan;
}

class RmsNormRopeStrategy final : public KernelStrategy {
public:
  StringRef getName() const override { return "rmsnorm-rope-rowwise"; }

  bool matches(Operation *op, const KernelTarget &) const override {
    return isa<RmsNormRopeOp>(op);
  }

  TileConfigAttr getDefaultTile(Operation *op,
                                const KernelTarget &) const override {
    auto norm = cast<RmsNormRopeOp>(op);
    int64_t hidden = cast<ShapedType>(norm.getInput().getType()).getShape().back();
    if (ShapedType::isDynamic(hidden))
      hidden = 4096;
    // About four 16-byte chunks per thread: enough loads in flight per
    // thread, few enough registers to keep many blocks resident.
    int64_t vectors = llvm::divideCeil(hidden, chooseVectorWidth(norm));
    int64_t threads = llvm::PowerOf2Ceil(llvm::divideCeil(vectors, 4));
    threads = std::clamp<int64_t>(threads, 32, 1024);
    return TileConfigAttr::get(op->getContext(), {1}, threads / 32,
                               /*stages=*/1, /*cluster=*/{});
  }

  LogicalResult checkSupported(Operation *op, TileConfigAttr tile,
                               const KernelTarget &) const override {
    auto norm = cast<RmsNormRopeOp>(op);
    for (Value operand : op->getOperands())
      if (!isContiguous(operand.getType()))
        return op->emitOpError()
               << "needs contiguous buffers (identity layout) to lower to a "
                  "GPU kernel, got "
               << operand.getType()
               << "; bufferize with "
                  "function-boundary-type-conversion=identity-layout-map";
    int64_t hidden =
        cast<ShapedType>(norm.getInput().getType()).getShape().back();
    if (ShapedType::isDynamic(hidden))
      return op->emitOpError()
             << "needs a static hidden size (the last dimension of 'input') "
                "to lower to a GPU kernel";
    if (!tile.getCluster().empty())
      return op->emitOpError() << "'tile' of rmsnorm_rope takes no cluster";
    RowPlan plan = makePlan(norm, tile);
    int64_t sharedBytes = plan.hidden * 4 + tile.getWarps() * 4;
    if (sharedBytes > kStaticSharedMemoryBytes)
      return op->emitOpError()
             << "hidden size " << plan.hidden
             << " needs " << sharedBytes
             << " bytes of shared memory for the normalised row; the kernel "
                "has at most "
             << kStaticSharedMemoryBytes;
    // Chunks are unrolled into registers: keep them bounded.
    if (plan.chunksPerThread > 32)
      return op->emitOpError()
             << "'tile' gives each thread " << plan.chunksPerThread
             << " vectors of the row to hold; use more warps (at most 32 "
                "vectors per thread)";
    return success();
  }

  LogicalResult lower(Operation *op, TileConfigAttr tile,
                      const KernelTarget &target, gpu::GPUModuleOp module,
                      RewriterBase &rewriter) const override;
};

/// Builds the kernel body. Arguments: x [rows, H], weight [H], cos, sin
/// [S, R], (positions [rows] | seqLen index), out [rows, H].
void buildKernelBody(ImplicitLocOpBuilder &b, RmsNormRopeOp op,
                     const RowPlan &plan, gpu::GPUFuncOp kernel) {
  Type elementType = cast<ShapedType>(op.getInput().getType()).getElementType();
  Type f32 = b.getF32Type();
  const int64_t vec = plan.vectorWidth, threads = plan.numThreads;
  const bool hasPositions = static_cast<bool>(op.getPositions());
  const bool neox = op.getRopeStyle() == RopeStyle::neox;

  Value x = kernel.getArgument(0), weight = kernel.getArgument(1),
        cosTable = kernel.getArgument(2), sinTable = kernel.getArgument(3),
        positionsOrSeq = kernel.getArgument(4), out = kernel.getArgument(5);
  Value reduceBuffer = kernel.getWorkgroupAttributions()[0];
  Value rowBuffer = kernel.getWorkgroupAttributions()[1];
  Type cosElementType = cast<ShapedType>(cosTable.getType()).getElementType();

  auto vecType = VectorType::get({vec}, elementType);
  auto vecF32 = VectorType::get({vec}, f32);
  auto vecCos = VectorType::get({vec}, cosElementType);
  int64_t alignX = vectorAlignment(elementType, vec);
  int64_t alignF32 = vectorAlignment(f32, vec);
  int64_t alignCos = vectorAlignment(cosElementType, vec);
  auto load = [&](VectorType type, Value memref, ValueRange indices,
                  int64_t align) -> Value {
    return vector::LoadOp::create(b, type, memref, indices, /*nontemporal=*/false,
                                  llvm::MaybeAlign(align));
  };
  auto store = [&](Value value, Value memref, ValueRange indices,
                   int64_t align) {
    vector::StoreOp::create(b, value, memref, indices, /*nontemporal=*/false,
                            llvm::MaybeAlign(align));
  };

  Value c0 = cIndex(b, 0), c1 = cIndex(b, 1), c32 = cIndex(b, 32);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value bid = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value lane = arith::RemUIOp::create(b, tid, c32);
  Value warp = arith::DivUIOp::create(b, tid, c32);
  Value rows = memref::DimOp::create(b, x, 0);
  Value hiddenF = cF32(b, static_cast<float>(plan.hidden));
  Value eps = arith::ConstantOp::create(b, op.getEpsAttr());
  Value zeroVec = arith::ConstantOp::create(b, DenseElementsAttr::get(vecF32, 0.0f));

  // Column of chunk c of this thread, and whether it lies in the row.
  auto chunkColumn = [&](int64_t c) -> Value {
    Value base = cIndex(b, c * threads * vec);
    return arith::AddIOp::create(
        b, base, arith::MulIOp::create(b, tid, cIndex(b, vec)));
  };
  auto chunkAlwaysInRow = [&](int64_t c) {
    return (c + 1) * threads * vec <= plan.hidden;
  };
  auto inRow = [&](Value column) -> Value {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::ult, column,
                                 cIndex(b, plan.hidden));
  };
  // Runs `body` for the chunks of this thread that lie in the row.
  auto forEachChunk = [&](function_ref<void(int64_t, Value)> body) {
    for (int64_t c = 0; c < plan.chunksPerThread; ++c) {
      Value column = chunkColumn(c);
      if (chunkAlwaysInRow(c)) {
        body(c, column);
        continue;
      }
      auto ifOp = scf::IfOp::create(b, inRow(column), /*withElse=*/false);
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(ifOp.thenBlock());
      body(c, column);
    }
  };

  auto rowLoop = scf::ForOp::create(b, c0, cIndex(b, plan.rowsPerBlock), c1);
  b.setInsertionPointToStart(rowLoop.getBody());
  Value row = arith::AddIOp::create(
      b, arith::MulIOp::create(b, bid, cIndex(b, plan.rowsPerBlock)),
      rowLoop.getInductionVar());
  auto rowIf = scf::IfOp::create(
      b, arith::CmpIOp::create(b, arith::CmpIPredicate::ult, row, rows),
      /*withElse=*/false);
  b.setInsertionPointToStart(rowIf.thenBlock());

  // 1. Load the row's chunks, sum of squares in f32.
  SmallVector<Value> chunks;
  Value sum = cF32(b, 0.0f);
  for (int64_t c = 0; c < plan.chunksPerThread; ++c) {
    Value column = chunkColumn(c);
    Value value;
    if (chunkAlwaysInRow(c)) {
      value = castFloat(b, load(vecType, x, {row, column}, alignX), f32);
    } else {
      auto ifOp = scf::IfOp::create(b, vecF32, inRow(column),
                                    /*addThenBlock=*/true, /*addElseBlock=*/true);
      {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(ifOp.thenBlock());
        scf::YieldOp::create(
            b, castFloat(b, load(vecType, x, {row, column}, alignX), f32));
        b.setInsertionPointToStart(ifOp.elseBlock());
        scf::YieldOp::create(b, zeroVec);
      }
      value = ifOp.getResult(0);
    }
    chunks.push_back(value);
    Value squares = arith::MulFOp::create(b, value, value);
    sum = arith::AddFOp::create(
        b, sum, vector::ReductionOp::create(b, vector::CombiningKind::ADD, squares));
  }

  // 2. Block-wide sum: warps reduce with shuffles, then through shared memory.
  sum = warpAllReduceSum(b, sum);
  int64_t warps = threads / 32;
  if (warps > 1) {
    auto laneZero = scf::IfOp::create(
        b, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, c0),
        /*withElse=*/false);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(laneZero.thenBlock());
      memref::StoreOp::create(b, sum, reduceBuffer, ValueRange{warp});
    }
    gpu::BarrierOp::create(b);
    sum = cF32(b, 0.0f);
    for (int64_t w = 0; w < warps; ++w)
      sum = arith::AddFOp::create(
          b, sum,
          memref::LoadOp::create(b, reduceBuffer, ValueRange{cIndex(b, w)}));
  }
  Value rstd = math::RsqrtOp::create(
      b, arith::AddFOp::create(b, arith::DivFOp::create(b, sum, hiddenF), eps));

  // The row's position; an out-of-range one poisons the row with NaN.
  Value position;
  if (hasPositions) {
    Value raw = memref::LoadOp::create(b, positionsOrSeq, ValueRange{row});
    position = arith::IndexCastOp::create(b, b.getIndexType(), raw);
  } else {
    position = arith::RemUIOp::create(b, row, positionsOrSeq);
  }
  Value maxPositions = memref::DimOp::create(b, cosTable, 0);
  Value positionOk = arith::AndIOp::create(
      b,
      arith::CmpIOp::create(b, arith::CmpIPredicate::sge, position, c0),
      arith::CmpIOp::create(b, arith::CmpIPredicate::slt, position,
                            maxPositions));
  rstd = arith::SelectOp::create(
      b, positionOk, rstd,
      cF32(b, std::numeric_limits<float>::quiet_NaN()));
  position = arith::SelectOp::create(b, positionOk, position, c0);

  // 3. y = x · rstd · weight into the shared row buffer.
  Value rstdVec = vector::BroadcastOp::create(b, vecF32, rstd);
  forEachChunk([&](int64_t c, Value column) {
    Value w = castFloat(b, load(vecType, weight, {column}, alignX), f32);
    Value y = arith::MulFOp::create(
        b, arith::MulFOp::create(b, chunks[c], rstdVec), w);
    store(y, rowBuffer, {column}, alignF32);
  });
  gpu::BarrierOp::create(b);

  // 4. Rotate and store.
  const int64_t half = plan.rotaryDim / 2;
  Value headDimV = cIndex(b, plan.headDim);
  Value rotaryV = cIndex(b, plan.rotaryDim);
  forEachChunk([&](int64_t, Value column) {
    Value inHead = arith::RemUIOp::create(b, column, headDimV);
    Value y = load(vecF32, rowBuffer, {column}, alignF32);
    Value rotated = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, inHead,
                                          rotaryV);
    auto rotIf = scf::IfOp::create(b, vecF32, rotated, /*addThenBlock=*/true,
                                   /*addElseBlock=*/true);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(rotIf.thenBlock());
      Value cosV = castFloat(
          b, load(vecCos, cosTable, {position, inHead}, alignCos), f32);
      Value sinV = castFloat(
          b, load(vecCos, sinTable, {position, inHead}, alignCos), f32);
      Value signedPartner;
      if (neox) {
        // out[i] = y[i]·cos − y[i+R/2]·sin for the first half,
        // out[i] = y[i]·cos + y[i−R/2]·sin for the second.
        Value firstHalf = arith::CmpIOp::create(
            b, arith::CmpIPredicate::ult, inHead, cIndex(b, half));
        Value partnerColumn = arith::SelectOp::create(
            b, firstHalf, arith::AddIOp::create(b, column, cIndex(b, half)),
            arith::SubIOp::create(b, column, cIndex(b, half)));
        Value partner = load(vecF32, rowBuffer, {partnerColumn}, alignF32);
        Value negated = arith::NegFOp::create(b, partner);
        signedPartner = arith::SelectOp::create(b, firstHalf, negated, partner);
      } else if (vec >= 2) {
        // gptj pairs (2i, 2i+1) lie inside one vector.
        SmallVector<int64_t> swap, signs;
        for (int64_t i = 0; i < vec; ++i)
          swap.push_back(i ^ 1);
        Value partner = vector::ShuffleOp::create(b, y, y, swap);
        SmallVector<float> signValues;
        for (int64_t i = 0; i < vec; ++i)
          signValues.push_back(i % 2 == 0 ? -1.0f : 1.0f);
        Value signVec = arith::ConstantOp::create(
            b, DenseElementsAttr::get(vecF32, ArrayRef<float>(signValues)));
        signedPartner = arith::MulFOp::create(b, partner, signVec);
      } else {
        Value partnerColumn = arith::XOrIOp::create(b, column, c1);
        Value partner = load(vecF32, rowBuffer, {partnerColumn}, alignF32);
        Value even = arith::CmpIOp::create(
            b, arith::CmpIPredicate::eq, arith::AndIOp::create(b, column, c1),
            c0);
        signedPartner = arith::SelectOp::create(
            b, even, arith::NegFOp::create(b, partner), partner);
      }
      Value result = arith::AddFOp::create(
          b, arith::MulFOp::create(b, y, cosV),
          arith::MulFOp::create(b, signedPartner, sinV));
      scf::YieldOp::create(b, result);
      b.setInsertionPointToStart(rotIf.elseBlock());
      scf::YieldOp::create(b, y);
    }
    store(castFloat(b, rotIf.getResult(0), elementType), out, {row, column},
          alignX);
  });
  if (plan.rowsPerBlock > 1)
    gpu::BarrierOp::create(b); // The next row reuses the shared buffers.
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
  if (inputType.getRank() == 1) {
    // One row: view [H] as [1, H].
    auto expand = [&](Value v) -> Value {
      auto t = cast<MemRefType>(v.getType());
      return memref::ExpandShapeOp::create(
          b, MemRefType::get({1, t.getDimSize(0)}, t.getElementType()), v,
          ArrayRef<ReassociationIndices>{{0, 1}}, ArrayRef<OpFoldResult>{
              b.getIndexAttr(1), b.getIndexAttr(t.getDimSize(0))});
    };
    x = expand(x);
    out = expand(out);
  }
  Value positionsOrSeq;
  if (Value positions = norm.getPositions()) {
    auto positionsType = cast<MemRefType>(positions.getType());
    positionsOrSeq =
        positionsType.getRank() == 0
            ? memref::ExpandShapeOp::create(
                  b, MemRefType::get({1}, positionsType.getElementType()),
                  positions, ArrayRef<ReassociationIndices>{},
                  ArrayRef<OpFoldResult>{b.getIndexAttr(1)})
                  .getResult()
            : collapseToVector(b, positions);
  } else {
    positionsOrSeq =
        memref::DimOp::create(b, norm.getInput(), inputType.getRank() - 2);
  }

  SmallVector<Value> args = {x, norm.getWeight(), norm.getCos(), norm.getSin(),
                             positionsOrSeq, out};
  SmallVector<Type> argTypes;
  for (Value arg : args)
    argTypes.push_back(arg.getType());
  Type f32 = b.getF32Type();
  SmallVector<Type> buffers = {
      getWorkgroupBufferType({tile.getWarps()}, f32),
      getWorkgroupBufferType({plan.hidden}, f32)};
  gpu::GPUFuncOp kernel;
  {
    OpBuilder::InsertionGuard guard(b);
    kernel = createKernel(b, op->getLoc(), module, "rmsnorm_rope", argTypes,
                          plan.numThreads, buffers);
    b.setInsertionPoint(kernel.getBody().front().getTerminator());
    buildKernelBody(b, norm, plan, kernel);
  }

  // One block per `rowsPerBlock` rows; nothing to launch for zero rows.
  Value rows = memref::DimOp::create(b, x, 0);
  Value c1 = cIndex(b, 1);
  Value grid = arith::CeilDivUIOp::create(b, rows, cIndex(b, plan.rowsPerBlock));
  Value any = arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, rows,
                                    cIndex(b, 0));
  auto ifAny = scf::IfOp::create(b, any, /*withElse=*/false);
  b.setInsertionPointToStart(ifAny.thenBlock());
  gpu::LaunchFuncOp::create(b, kernel, gpu::KernelDim3{grid, c1, c1},
                            gpu::KernelDim3{cIndex(b, plan.numThreads), c1, c1},
                            /*dynamicSharedMemorySize=*/Value(), args);
  rewriter.eraseOp(op);
  return success();
}

} // namespace

std::unique_ptr<KernelStrategy> mlir::fusedops::kernel::createRmsNormRopeStrategy() {
  return std::make_unique<RmsNormRopeStrategy>();
}
