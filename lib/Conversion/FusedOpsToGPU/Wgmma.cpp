//===- Wgmma.cpp - the sm_90a GEMM mainloop (wgmma) -----------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// The mainloop, per block of `warpgroups` warpgroups, every thread both
// loading and (by warpgroup) multiplying:
//
//   * K is walked in BK steps through a `stages`-deep ring in dynamic shared
//     memory. Every thread issues 16-byte `cp.async` copies of the A and Bᵢ
//     tiles (zero-filling rows past M or N and columns past K) into rows of
//     BK·bytes = 32, 64 or 128 bytes, each 16-byte chunk c of row r stored at
//     chunk c ^ (r·rowBytes/128 mod chunks-per-row): the swizzle of the
//     wgmma descriptor's 32/64/128-byte mode, so that the 8 rows a core
//     matrix reads fall in distinct banks.
//   * Step kt: wait for its copies, `fence.proxy.async` (the copies are
//     generic-proxy writes the MMA unit reads), barrier; issue the copies of
//     step kt + stages − 2 into the slot of step kt − 2, whose MMAs every
//     warpgroup has finished (each waits for all but its latest group before
//     the barrier); then one `wgmma.mma_async` per 32 bytes of K and per B
//     operand, m64nBNk16 (f16/bf16) or m64nBNk32 (FP8), A and B from
//     shared-memory descriptors (K-major, SBO = 8 rows), committed as one
//     group; wait for all but that group.
//   * FP8 (`promote`) instead starts each K tile's MMAs from zero and adds
//     them to f32 sums (times the tile's scale for block128 scales): the
//     promotion of DeepSeek-V3 §3.3.2, per K tile of at most 128. Tiles go
//     in pairs with two partial sets, so the MMAs of one overlap the
//     folding of the other.
//
// wgmma is emitted as nvvm.wgmma.mma_async with descriptors built here:
// nvgpu.warpgroup.mma of MLIR 22 steps K-major B descriptors wrongly for
// bf16 and FP8 (docs/design/gemm-engine.md).
//
//===----------------------------------------------------------------------===//

#include "Wgmma.h"

#include "KernelBuilder.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::kernel;

/// Bytes one cp.async moves.
static constexpr int64_t kChunkBytes = 16;
/// The swizzle pattern repeats every 1024 bytes (8 rows of 128 bytes): ring
/// slots start at multiples of it.
static constexpr int64_t kSwizzleAlign = 1024;
/// Tile rows a group of blocks walks before moving to the next columns.
static constexpr int64_t kGroupRows = 8;
/// Rows of one warpgroup's MMA (m64).
static constexpr int64_t kWarpgroupRows = 64;

WgmmaGemmPlan WgmmaGemmPlan::get(TileConfigAttr tile, int64_t n, int64_t k,
                                 int64_t numB, Type aType, Type bType,
                                 bool promote) {
  WgmmaGemmPlan plan;
  plan.bm = tile.getBlock()[0];
  plan.bn = tile.getBlock()[1];
  plan.bk = tile.getBlock()[2];
  plan.stages = tile.getStages();
  plan.warpgroups = tile.getWarps() / 4;
  plan.n = n;
  plan.k = k;
  plan.numB = numB;
  plan.aType = aType;
  plan.bType = bType;
  plan.promote = promote;
  return plan;
}

int64_t WgmmaGemmPlan::elementBytes() const {
  return aType.getIntOrFloatBitWidth() / 8;
}

/// Byte offsets of the A ring and of each B ring from the aligned base, and
/// the end.
static SmallVector<int64_t> getRingOffsets(const WgmmaGemmPlan &plan) {
  SmallVector<int64_t> offsets;
  int64_t offset = 0;
  auto add = [&](int64_t rows) {
    offsets.push_back(offset);
    offset +=
        llvm::alignTo(plan.stages * rows * plan.rowBytes(), kSwizzleAlign);
  };
  add(plan.bm);
  for (int64_t i = 0; i < plan.numB; ++i)
    add(plan.bn);
  offsets.push_back(offset);
  return offsets;
}

int64_t WgmmaGemmPlan::sharedBytes() const {
  return getRingOffsets(*this).back() + kSwizzleAlign;
}

std::string
WgmmaGemmPlan::getUnsupportedReason(const KernelTarget &target) const {
  std::string reason;
  llvm::raw_string_ostream os(reason);
  if (warpgroups < 1 || warpgroups > 2)
    os << "warps must be 4 or 8 (one or two consumer warpgroups)";
  else if (bm != kWarpgroupRows * warpgroups)
    os << "BM must be 64 per warpgroup (" << kWarpgroupRows * warpgroups
       << " with " << warpgroups * 4 << " warps)";
  else if (rowBytes() != 32 && rowBytes() != 64 && rowBytes() != 128)
    os << "BK must span 32, 64 or 128 bytes (the swizzle widths): "
       << 32 / elementBytes() << ", " << 64 / elementBytes() << " or "
       << 128 / elementBytes() << " elements";
  else if (bn < 8 || bn > 256 || bn % 8 != 0)
    os << "BN must be a multiple of 8 from 8 to 256 (wgmma's N)";
  else if ((bm * rowBytes() / kChunkBytes) % threads() != 0 ||
           (bn * rowBytes() / kChunkBytes) % threads() != 0)
    os << "a stage's " << bm * rowBytes() / kChunkBytes << " and "
       << bn * rowBytes() / kChunkBytes
       << " 16-byte chunks must split evenly over " << threads() << " threads";
  else if (stages < 3)
    os << "needs at least 3 stages (one K tile loads while two are read)";
  else if (accumulatorsPerThread() > 192)
    os << "needs " << accumulatorsPerThread()
       << " accumulator registers per thread, at most 192 (a smaller BN)";
  else if (sharedBytes() > getMaxSharedBytes(target))
    os << "needs " << sharedBytes() << " bytes of shared memory; "
       << target.chip << " has at most " << getMaxSharedBytes(target)
       << " (fewer stages or a smaller tile)";
  return reason;
}

static NVVM::WGMMATypes getWgmmaType(Type type) {
  if (type.isF16())
    return NVVM::WGMMATypes::f16;
  if (type.isBF16())
    return NVVM::WGMMATypes::bf16;
  if (isa<Float8E4M3FNType>(type))
    return NVVM::WGMMATypes::e4m3;
  return NVVM::WGMMATypes::e5m2;
}

static Value toI64(ImplicitLocOpBuilder &b, Value index) {
  return arith::IndexCastUIOp::create(b, b.getI64Type(), index);
}

void kernel::buildWgmmaGemm(ImplicitLocOpBuilder &b, const WgmmaGemmPlan &plan,
                            Value a, ArrayRef<Value> bs, Value rowsM, Value m0,
                            Value n0, KTileScaleFn kTileScale,
                            GemmEpilogueFn epilogue) {
  MLIRContext *ctx = b.getContext();
  Type f32 = b.getF32Type();
  const int64_t rowBytes = plan.rowBytes();
  const int64_t chunkElements = kChunkBytes / plan.elementBytes();
  const int64_t chunksPerRow = rowBytes / kChunkBytes;
  const int64_t numK = llvm::divideCeil(plan.k, plan.bk);
  const int64_t threads = plan.threads();

  // Dynamic shared memory, its start rounded up to the swizzle pattern.
  auto workgroup =
      gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  auto bytesType = MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                                   MemRefLayoutAttrInterface(), workgroup);
  Value base = gpu::DynamicSharedMemoryOp::create(b, bytesType);
  Value baseAddress = memref::ExtractAlignedPointerAsIndexOp::create(b, base);
  Value align = cIndex(b, kSwizzleAlign);
  Value pad = arith::RemUIOp::create(
      b,
      arith::SubIOp::create(b, align,
                            arith::RemUIOp::create(b, baseAddress, align)),
      align);
  SmallVector<int64_t> offsets = getRingOffsets(plan);
  SmallVector<Value> rings, ringAddresses;
  for (int64_t i = 0; i < 1 + plan.numB; ++i) {
    int64_t rows = i == 0 ? plan.bm : plan.bn;
    Type element = i == 0 ? plan.aType : plan.bType;
    Value shift = arith::AddIOp::create(b, pad, cIndex(b, offsets[i]));
    rings.push_back(memref::ViewOp::create(
        b, getWorkgroupBufferType({plan.stages, rows, plan.bk}, element), base,
        shift, ValueRange{}));
    ringAddresses.push_back(arith::AddIOp::create(b, baseAddress, shift));
  }

  Value c0 = cIndex(b, 0);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value warpgroup = arith::DivUIOp::create(b, tid, cIndex(b, 128));
  Value lane = arith::RemUIOp::create(b, tid, cIndex(b, 32));
  Value warpInGroup = arith::RemUIOp::create(
      b, arith::DivUIOp::create(b, tid, cIndex(b, 32)), cIndex(b, 4));
  Value sizeK = cIndex(b, plan.k), sizeN = cIndex(b, plan.n);

  // This thread's chunk of each copy: rows r0 + i·(threads / chunks per
  // row), column chunk kc; its swizzled place is the same for every i
  // because the row step is a multiple of the pattern's 8 rows.
  Value r0 = arith::DivUIOp::create(b, tid, cIndex(b, chunksPerRow));
  Value kc = arith::RemUIOp::create(b, tid, cIndex(b, chunksPerRow));
  Value swizzledColumn = arith::MulIOp::create(
      b,
      arith::XOrIOp::create(
          b, kc,
          arith::RemUIOp::create(
              b, arith::DivUIOp::create(b, r0, cIndex(b, 128 / rowBytes)),
              cIndex(b, chunksPerRow))),
      cIndex(b, chunkElements));
  Value kOffset = arith::MulIOp::create(b, kc, cIndex(b, chunkElements));
  auto tokenType = nvgpu::DeviceAsyncTokenType::get(ctx);
  auto copyTile = [&](Value global, Value ring, Value slot, Value k0,
                      Value rowBase, Value rowLimit, int64_t rows) {
    int64_t rowStep = threads / chunksPerRow;
    Value gK = arith::AddIOp::create(b, k0, kOffset);
    Value kValid =
        arith::CmpIOp::create(b, arith::CmpIPredicate::ult, gK, sizeK);
    for (int64_t i = 0; i < rows / rowStep; ++i) {
      Value r = arith::AddIOp::create(b, r0, cIndex(b, i * rowStep));
      Value gRow = arith::AddIOp::create(b, rowBase, r);
      Value valid = arith::AndIOp::create(
          b, kValid,
          arith::CmpIOp::create(b, arith::CmpIPredicate::ult, gRow, rowLimit));
      // Invalid chunks copy nothing (zero fill) from a valid address.
      nvgpu::DeviceAsyncCopyOp::create(
          b, tokenType, ring, ValueRange{slot, r, swizzledColumn}, global,
          ValueRange{arith::SelectOp::create(b, valid, gRow, c0),
                     arith::SelectOp::create(b, valid, gK, c0)},
          b.getIndexAttr(chunkElements),
          arith::SelectOp::create(b, valid, cIndex(b, chunkElements), c0),
          b.getUnitAttr());
    }
  };
  auto issue = [&](Value kt) {
    Value slot = arith::RemUIOp::create(b, kt, cIndex(b, plan.stages));
    Value k0 = arith::MulIOp::create(b, kt, cIndex(b, plan.bk));
    copyTile(a, rings[0], slot, k0, m0, rowsM, plan.bm);
    for (int64_t i = 0; i < plan.numB; ++i)
      copyTile(bs[i], rings[1 + i], slot, k0, n0, sizeN, plan.bn);
  };
  auto commit = [&] { NVVM::CpAsyncCommitGroupOp::create(b); };

  // Shared-memory matrix descriptors (PTX ISA "Matrix Descriptor Format"):
  // start address >> 4 in bits 0-13, leading byte offset (unused by
  // swizzled K-major operands) in 16-29, stride byte offset = 8 rows in
  // 32-45, swizzle mode in 62-63 (1: 128, 2: 64, 3: 32 bytes).
  uint64_t swizzleMode = rowBytes == 128 ? 1 : rowBytes == 64 ? 2 : 3;
  uint64_t fixedBits = (uint64_t(1) << 16) |
                       (uint64_t(8 * rowBytes >> 4) << 32) |
                       (swizzleMode << 62);
  auto descriptor = [&](Value address) -> Value {
    Value encoded = toI64(b, arith::ShRUIOp::create(b, address, cIndex(b, 4)));
    return arith::OrIOp::create(
        b, encoded,
        arith::ConstantIntOp::create(b, b.getI64Type(),
                                     static_cast<int64_t>(fixedBits)));
  };
  // This warpgroup's 64 rows of A, and B, in slot 0 at K offset 0; a slot
  // and a K step add (bytes >> 4) to the start address.
  Value descA0 = descriptor(arith::AddIOp::create(
      b, ringAddresses[0],
      arith::MulIOp::create(b, warpgroup,
                            cIndex(b, kWarpgroupRows * rowBytes))));
  SmallVector<Value> descB0;
  for (int64_t i = 0; i < plan.numB; ++i)
    descB0.push_back(descriptor(ringAddresses[1 + i]));

  auto accType = LLVM::LLVMStructType::getLiteral(
      ctx, SmallVector<Type>(plan.bn / 2, f32));
  Value zeroAcc = LLVM::ZeroOp::create(b, accType);
  auto shape =
      NVVM::MMAShapeAttr::get(ctx, kWarpgroupRows, plan.bn, plan.mmaK());
  NVVM::WGMMATypes aWgmma = getWgmmaType(plan.aType),
                   bWgmma = getWgmmaType(plan.bType);
  auto mma = [&](Value acc, Value descA, Value descB, bool accumulate) {
    return NVVM::WgmmaMmaAsyncOp::create(
        b, accType, acc, descA, descB, shape, aWgmma, bWgmma,
        NVVM::WGMMATypes::f32,
        accumulate ? NVVM::WGMMAScaleOut::one : NVVM::WGMMAScaleOut::zero,
        NVVM::WGMMAScaleIn::one, NVVM::WGMMAScaleIn::one, NVVM::MMALayout::row,
        NVVM::MMALayout::col,
        /*satfinite=*/NVVM::MMAIntOverflowAttr());
  };
  auto extract = [&](Value acc) {
    SmallVector<Value> values;
    for (int64_t e = 0; e < plan.bn / 2; ++e)
      values.push_back(
          LLVM::ExtractValueOp::create(b, acc, ArrayRef<int64_t>{e}));
    return values;
  };

  // With promotion K tiles go in pairs, the even one's products into
  // partial set 0 and the odd one's into set 1, so that one tile's MMAs run
  // while the other's are folded into the sums; K is padded to whole pairs
  // (the copies of a tile past K fill zeros).
  const int64_t tilesPerStep = plan.promote ? 2 : 1;
  const int64_t paddedK = llvm::alignTo(numK, tilesPerStep);

  // Prologue: K tiles 0 .. stages − 3 in flight, one group each.
  for (int64_t s = 0; s + 2 < plan.stages; ++s) {
    if (s < paddedK)
      issue(cIndex(b, s));
    commit();
  }

  // K tile `kt`: wait for its copies, fence them for the MMA unit, barrier,
  // refill the slot every warpgroup is done with, then its MMAs into
  // `target` (from zero when `fromZero`), committed as one group; wait for
  // all but that group.
  auto mmaTile = [&](Value kt, SmallVectorImpl<Value> &target, bool fromZero) {
    NVVM::CpAsyncWaitGroupOp::create(
        b, b.getI32IntegerAttr(static_cast<int32_t>(plan.stages - 3)));
    NVVM::FenceProxyOp::create(
        b, NVVM::ProxyKind::async_shared,
        NVVM::SharedSpaceAttr::get(ctx, NVVM::SharedSpace::shared_cta));
    gpu::BarrierOp::create(b);
    Value ahead = arith::AddIOp::create(b, kt, cIndex(b, plan.stages - 2));
    ifThen(b,
           arith::CmpIOp::create(b, arith::CmpIPredicate::ult, ahead,
                                 cIndex(b, paddedK)),
           [&] { issue(ahead); });
    commit();

    Value slot = arith::RemUIOp::create(b, kt, cIndex(b, plan.stages));
    Value slotA = toI64(
        b, arith::MulIOp::create(b, slot, cIndex(b, plan.bm * rowBytes / 16)));
    Value slotB = toI64(
        b, arith::MulIOp::create(b, slot, cIndex(b, plan.bn * rowBytes / 16)));
    NVVM::WgmmaFenceAlignedOp::create(b);
    for (int64_t kk = 0; kk < plan.bk / plan.mmaK(); ++kk) {
      // 32 bytes of K per MMA: 2 in the descriptor's 16-byte units.
      Value step =
          arith::ConstantIntOp::create(b, b.getI64Type(), kk * 32 / 16);
      Value descA = arith::AddIOp::create(
          b, descA0, arith::AddIOp::create(b, slotA, step));
      for (int64_t i = 0; i < plan.numB; ++i) {
        Value descB = arith::AddIOp::create(
            b, descB0[i], arith::AddIOp::create(b, slotB, step));
        target[i] = mma(target[i], descA, descB,
                        /*accumulate=*/!fromZero || kk > 0);
      }
    }
    NVVM::WgmmaGroupSyncAlignedOp::create(b);
    // The previous tile's MMAs are done: its partial sums may be read, and
    // its slot refilled after the next barrier.
    NVVM::WgmmaWaitGroupSyncOp::create(b, 1);
  };
  // sums += parts · (K tile kt's scale, or 1).
  auto fold = [&](SmallVectorImpl<Value> &sums, ArrayRef<Value> parts,
                  Value kt) {
    Value scale = kTileScale ? kTileScale(b, kt) : Value();
    for (int64_t i = 0; i < plan.numB; ++i) {
      SmallVector<Value> s = extract(sums[i]), p = extract(parts[i]);
      Value folded = sums[i];
      for (int64_t e = 0; e < plan.bn / 2; ++e)
        folded = LLVM::InsertValueOp::create(
            b, folded,
            scale ? Value(math::FmaOp::create(b, p[e], scale, s[e]))
                  : Value(arith::AddFOp::create(b, p[e], s[e])),
            ArrayRef<int64_t>{e});
      sums[i] = folded;
    }
  };

  // Loop-carried: one accumulator per B operand (the f32 sums when
  // promoting), and with promotion the odd tile's partial sums, still in
  // flight at the end of a step.
  SmallVector<Value> inits(plan.numB * (plan.promote ? 2 : 1), zeroAcc);
  auto loop = scf::ForOp::create(b, c0, cIndex(b, paddedK / tilesPerStep),
                                 cIndex(b, 1), inits);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value iv = loop.getInductionVar();
    ValueRange carried = loop.getRegionIterArgs();
    SmallVector<Value> acc(carried.take_front(plan.numB));
    if (!plan.promote) {
      mmaTile(iv, acc, /*fromZero=*/false);
      scf::YieldOp::create(b, acc);
    } else {
      SmallVector<Value> odd(carried.drop_front(plan.numB));
      SmallVector<Value> even(plan.numB, zeroAcc);
      Value kt = arith::MulIOp::create(b, iv, cIndex(b, 2));
      mmaTile(kt, even, /*fromZero=*/true);
      // The odd tile before this one (zeros before the first).
      Value previous = arith::SelectOp::create(
          b, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, kt, c0), c0,
          arith::SubIOp::create(b, kt, cIndex(b, 1)));
      fold(acc, odd, previous);
      Value next = arith::AddIOp::create(b, kt, cIndex(b, 1));
      SmallVector<Value> nextOdd(plan.numB, zeroAcc);
      mmaTile(next, nextOdd, /*fromZero=*/true);
      fold(acc, even, kt);
      SmallVector<Value> yielded = acc;
      yielded.append(nextOdd);
      scf::YieldOp::create(b, yielded);
    }
  }
  NVVM::WgmmaWaitGroupSyncOp::create(b, 0);
  SmallVector<Value> sums(loop.getResults().take_front(plan.numB));
  if (plan.promote)
    fold(sums, SmallVector<Value>(loop.getResults().drop_front(plan.numB)),
         cIndex(b, paddedK - 1));
  // Copies of tiles past K may still be pending (empty groups): drain them
  // before the block exits.
  NVVM::CpAsyncWaitGroupOp::create(b, b.getI32IntegerAttr(0));

  // Lane l of warp w in warpgroup g holds rows 64g + 16w + l/4 (+8) and
  // columns 2(l%4) (+1) of every 8-column group: register 4j + 2h + e is
  // row rowBase + 8h, column colBase + 8j + e.
  Value rowBase = arith::AddIOp::create(
      b, m0,
      arith::AddIOp::create(
          b,
          arith::AddIOp::create(
              b, arith::MulIOp::create(b, warpgroup, cIndex(b, 64)),
              arith::MulIOp::create(b, warpInGroup, cIndex(b, 16))),
          arith::DivUIOp::create(b, lane, cIndex(b, 4))));
  Value colBase = arith::AddIOp::create(
      b, n0,
      arith::MulIOp::create(b, arith::RemUIOp::create(b, lane, cIndex(b, 4)),
                            cIndex(b, 2)));
  Value rows[2] = {rowBase, arith::AddIOp::create(b, rowBase, cIndex(b, 8))};
  AccumulatorPairs pairs;
  for (int64_t j = 0; j < plan.bn / 8; ++j) {
    Value col = arith::AddIOp::create(b, colBase, cIndex(b, 8 * j));
    for (int64_t h = 0; h < 2; ++h) {
      pairs.rows.push_back(rows[h]);
      pairs.cols.push_back(col);
    }
  }
  SmallVector<SmallVector<Value>> results;
  for (int64_t i = 0; i < plan.numB; ++i)
    results.push_back(extract(sums[i]));
  epilogue(b, results, pairs);
}

void kernel::buildAndLaunchWgmmaGemm(
    ImplicitLocOpBuilder &b, gpu::GPUModuleOp module, StringRef name,
    ArrayRef<Value> args, const WgmmaGemmPlan &plan,
    function_ref<void(ImplicitLocOpBuilder &, gpu::GPUFuncOp, Value, Value)>
        buildBody) {
  SmallVector<Type> argTypes;
  for (Value arg : args)
    argTypes.push_back(arg.getType());
  int64_t tilesN = llvm::divideCeil(plan.n, plan.bn);
  gpu::GPUFuncOp kernel;
  {
    OpBuilder::InsertionGuard guard(b);
    kernel = createKernel(b, b.getLoc(), module, name, argTypes, plan.threads(),
                          /*workgroupBuffers=*/{});
    b.setInsertionPoint(kernel.getBody().front().getTerminator());
    // Grouped order: blocks walk kGroupRows tile rows down a column of
    // tiles before the next column, so a wave reads a few weight tiles
    // many times from L2 instead of every weight tile once per tile row.
    Value tilesM = arith::CeilDivUIOp::create(
        b, memref::DimOp::create(b, kernel.getArgument(0), 0),
        cIndex(b, plan.bm));
    Value pid = gpu::BlockIdOp::create(b, gpu::Dimension::x);
    Value width = cIndex(b, kGroupRows * tilesN);
    Value firstM = arith::MulIOp::create(
        b, arith::DivUIOp::create(b, pid, width), cIndex(b, kGroupRows));
    Value groupRows = arith::MinUIOp::create(
        b, arith::SubIOp::create(b, tilesM, firstM), cIndex(b, kGroupRows));
    Value inGroup = arith::RemUIOp::create(b, pid, width);
    Value tileM = arith::AddIOp::create(
        b, firstM, arith::RemUIOp::create(b, inGroup, groupRows));
    Value tileN = arith::DivUIOp::create(b, inGroup, groupRows);
    buildBody(b, kernel, arith::MulIOp::create(b, tileM, cIndex(b, plan.bm)),
              arith::MulIOp::create(b, tileN, cIndex(b, plan.bn)));
  }
  Value rows = memref::DimOp::create(b, args[0], 0);
  Value tiles = arith::MulIOp::create(
      b, arith::CeilDivUIOp::create(b, rows, cIndex(b, plan.bm)),
      cIndex(b, tilesN));
  launchIfRows(b, kernel, rows, tiles, cIndex(b, 1), plan.threads(), args,
               plan.sharedBytes());
}

SmallVector<TileConfigAttr>
kernel::enumerateWgmmaTiles(MLIRContext *ctx, int64_t elementBytes,
                            TileConfigAttr defaultTile) {
  SmallVector<TileConfigAttr> tiles = {defaultTile};
  for (int64_t warpgroups : {1, 2})
    for (int64_t bn : {64, 96, 128, 192, 256})
      for (int64_t rowBytes : {64, 128})
        for (int64_t stages : {3, 4, 5, 6})
          tiles.push_back(TileConfigAttr::get(
              ctx, {kWarpgroupRows * warpgroups, bn, rowBytes / elementBytes},
              4 * warpgroups, stages, /*cluster=*/{}));
  return tiles;
}

/// Fitted to the exhaustive sweeps of docs/perf/gemm-engine-h200/
/// (autotune-evidence): deeper pipelines win there, which a factor of 2
/// (the mma.sync kernels' fit) does not see.
static constexpr double kWgmmaLoadLatencyFactor = 3;

KernelResources kernel::estimateWgmmaGemm(const WgmmaGemmPlan &plan, int64_t m,
                                          int64_t outBytes) {
  int64_t rowBlocks = llvm::divideCeil(m, plan.bm);
  int64_t colBlocks = llvm::divideCeil(plan.n, plan.bn);
  int64_t eb = plan.elementBytes();
  KernelResources r;
  r.blocks = rowBlocks * colBlocks;
  r.threadsPerBlock = plan.threads();
  r.sharedBytesPerBlock = plan.sharedBytes();
  // Accumulators, descriptors, copy addresses and the loop state.
  r.registersPerThread = plan.accumulatorsPerThread() + 48;
  double a = double(m) * plan.k * eb, b = double(plan.n) * plan.k * eb;
  double out = double(m) * plan.n * outBytes;
  r.dramBytes = a + plan.numB * b + out;
  // Grouped order: within a group of kGroupRows tile rows a weight tile is
  // read once from DRAM for all of them.
  r.l2Bytes = a * colBlocks + plan.numB * b * rowBlocks + out;
  r.flops = 2.0 * m * plan.n * plan.k * plan.numB;
  r.unit = eb == 1 ? KernelResources::ComputeUnit::TensorFp8
                   : KernelResources::ComputeUnit::TensorF16;
  // wgmma reads its operands from shared memory asynchronously: no
  // fragment loads compete with the MMAs, but a 64-wide N or folding after
  // every K tile leaves the tensor cores idle part of the time.
  r.issueEfficiency = plan.bn >= 128 ? 1.0 : 0.8;
  if (plan.promote)
    r.issueEfficiency *= 0.75;
  r.bytesInFlightPerBlock = double(plan.stages - 2) *
                            (plan.bm + plan.numB * plan.bn) * plan.rowBytes();
  r.stages = plan.stages;
  r.kSteps = llvm::divideCeil(plan.k, plan.bk);
  // The MMA warps issue the tile copies themselves, between barriers.
  r.loadLatencyFactor = kWgmmaLoadLatencyFactor;
  return r;
}
