//===- Wgmma.cpp - the sm_90a GEMM mainloop (wgmma) -----------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// K is walked in BK steps through a `stages`-deep ring of K-major tiles in
// dynamic shared memory, rows of BK·bytes = 32, 64 or 128 bytes, each
// 16-byte chunk c of row r stored at chunk c ^ (r·rowBytes/128 mod
// chunks-per-row): the swizzle of the wgmma descriptor's 32/64/128-byte
// mode, so that the 8 rows a core matrix reads fall in distinct banks.
// Warp-specialized, on a persistent grid (each block walks output tiles
// blockIdx.x, + gridDim.x, ...; with a 2×1 cluster, each cluster walks
// tiles of 2·BM rows and its blocks take one BM half each, loading half of
// every B tile for both with TMA multicast):
//
//   * warpgroup 0 is the producer; one of its threads waits for a slot's
//     `empty` mbarrier, arrives on its `full` one with the tile's byte count
//     and issues one `cp.async.bulk.tensor` per operand (TMA: the hardware
//     swizzles, and fills zeros past M, N and K), through tensor maps the
//     host encodes and passes by value;
//   * the `warpgroups` MMA warpgroups wait on `full`, multiply, and arrive on
//     `empty` once the MMAs reading the slot are done, then run the
//     epilogue while the producer fills the ring for the next tile.
//     setmaxnreg gives them the producer's registers.
//
// Per K tile, one `wgmma.mma_async` per 32 bytes of K and per B operand,
// m64nBNk16 (f16/bf16) or m64nBNk32 (FP8), A and B from shared-memory
// descriptors (K-major, SBO = 8 rows), committed as one group; wait for
// all but that group. FP8 (`promote`) instead starts each K tile's MMAs
// from zero, waits for them and adds them to f32 sums (times the tile's
// scale for block128 scales): the promotion of DeepSeek-V3 §3.3.2, per K
// tile of at most 128; where a second product set fits, the next K tile's
// MMAs run while a K tile's products are added.
//
// wgmma is emitted as nvvm.wgmma.mma_async with descriptors built here:
// nvgpu.warpgroup.mma of MLIR 22 steps K-major B descriptors wrongly for
// bf16 and FP8 (docs/design/gemm-engine.md).
//
//===----------------------------------------------------------------------===//

#include "Wgmma.h"

#include "KernelBuilder.h"
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h"
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

/// The swizzle pattern repeats every 1024 bytes (8 rows of 128 bytes): ring
/// slots start at multiples of it.
static constexpr int64_t kSwizzleAlign = 1024;
/// Tile rows a group of blocks walks before moving to the next columns.
static constexpr int64_t kGroupRows = 8;
/// Rows of one warpgroup's MMA (m64).
static constexpr int64_t kWarpgroupRows = 64;

WgmmaGemmPlan WgmmaGemmPlan::get(TileConfigAttr tile, int64_t n, int64_t k,
                                 int64_t numB, Type aType, Type bType,
                                 bool promote, Type outType) {
  WgmmaGemmPlan plan;
  plan.bm = tile.getBlock()[0];
  plan.bn = tile.getBlock()[1];
  plan.bk = tile.getBlock()[2];
  plan.stages = tile.getStages();
  plan.warpgroups = tile.getWarps() / 4;
  plan.cluster.assign(tile.getCluster().begin(), tile.getCluster().end());
  plan.n = n;
  plan.k = k;
  plan.numB = numB;
  plan.aType = aType;
  plan.bType = bType;
  plan.promote = promote;
  plan.outType = outType;
  return plan;
}

int64_t WgmmaGemmPlan::elementBytes() const {
  return aType.getIntOrFloatBitWidth() / 8;
}

int64_t WgmmaGemmPlan::outBytes() const {
  return outType.getIntOrFloatBitWidth() / 8;
}

/// Byte offsets from the aligned base of the A ring, of each B ring, of the
/// epilogue's store buffers, and of the mbarriers after them.
static SmallVector<int64_t> getSharedOffsets(const WgmmaGemmPlan &plan) {
  SmallVector<int64_t> offsets;
  int64_t offset = 0;
  auto add = [&](int64_t bytes) {
    offsets.push_back(offset);
    offset += llvm::alignTo(bytes, kSwizzleAlign);
  };
  // A's ring, plus the rows past its last slot that the MMAs read
  // (aSlotRows).
  add((plan.stages * plan.aSlotRows() + plan.bm - plan.aSlotRows()) *
      plan.rowBytes());
  for (int64_t i = 0; i < plan.numB; ++i)
    add(plan.stages * plan.bn * plan.rowBytes());
  add(plan.storeBufferBytes());
  offsets.push_back(offset);
  return offsets;
}

int64_t WgmmaGemmPlan::sharedBytes() const {
  // With TMA, the full and empty mbarriers (8 bytes each) at the end.
  return getSharedOffsets(*this).back() + 16 * stages + kSwizzleAlign;
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
  else if (!target.info->hasTma)
    os << target.chip << " has no TMA (the mainloop's loads)";
  else if (llvm::any_of(ArrayRef(cluster).drop_front(),
                        [](int64_t d) { return d != 1; }) ||
           clusterBlocks() > 2)
    os << "the cluster must be [1] or [2] (two blocks of vertically adjacent "
          "tiles sharing the B tiles)";
  else if (clusterBlocks() > 1 && !target.info->hasClusters)
    os << target.chip << " has no thread-block clusters (drop 'cluster')";
  else if (clusterBlocks() > 1 && bRowsPerBlock() % 8 != 0)
    os << "BN must be a multiple of " << 8 * clusterBlocks() << " with a "
       << clusterBlocks() << "-block cluster (each block loads BN / "
       << clusterBlocks() << " rows of B, whole 8-row swizzle atoms)";
  else if (stages < 2)
    os << "needs at least 2 stages (a K tile loads while another is read)";
  else if (accumulatorsPerThread() > kMaxAccumulators)
    os << "needs " << accumulatorsPerThread()
       << " accumulator registers per thread, at most " << kMaxAccumulators
       << " (a smaller BN)";
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

/// An LLVM pointer to shared memory (address space 3) at byte `address` (a
/// shared-window address as an index, from the dynamic shared memory's
/// aligned pointer).
static Value sharedPointer(ImplicitLocOpBuilder &b, Value address) {
  return LLVM::IntToPtrOp::create(
      b, LLVM::LLVMPointerType::get(b.getContext(), 3), toI64(b, address));
}

static Value toI32(ImplicitLocOpBuilder &b, Value index) {
  return arith::IndexCastUIOp::create(b, b.getI32Type(), index);
}

namespace {
/// The epilogue's TMA stores: the output's tensor map (a kernel parameter)
/// and the shared-memory address of the store buffers.
struct TmaStore {
  Value map, buffers;
};
} // namespace

/// Stores a thread's output values (`values[p]`: vector<2xf32> of
/// accumulator pair p, register pair 2j + h: row 16w + l/4 + 8h, columns
/// 8j + 2(l%4) and + 1 for lane l of MMA warp w) of the tile at (m0, n0)
/// through shared memory and TMA (WgmmaGemmPlan::storesThroughTma): per
/// 128 bytes of a row (a chunk of the tile's columns), the warp waits until
/// the chunk's buffer was read by its previous store, writes its 16 rows
/// there, and lane 0 stores them. Buffer rows use the 128-byte swizzle
/// (16-byte unit u of row r at u ^ (r mod 8)), which the tensor map
/// undoes.
static void storeThroughTma(ImplicitLocOpBuilder &b, const WgmmaGemmPlan &plan,
                            const TmaStore &store, Value mmaTid, Value m0,
                            Value n0, ArrayRef<Value> values) {
  constexpr int64_t kBufferBytes =
      WgmmaGemmPlan::kStoreRows * WgmmaGemmPlan::kStoreRowBytes;
  const int64_t outBytes = plan.outBytes();
  const int64_t chunkCols = WgmmaGemmPlan::kStoreRowBytes / outBytes;
  Value warp = arith::DivUIOp::create(b, mmaTid, cIndex(b, 32));
  Value lane = arith::RemUIOp::create(b, mmaTid, cIndex(b, 32));
  Value isLeader =
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lane, cIndex(b, 0));
  Value allLanes = arith::ConstantIntOp::create(b, b.getI32Type(), -1);
  Value buffers = arith::AddIOp::create(
      b, store.buffers,
      arith::MulIOp::create(
          b, warp, cIndex(b, WgmmaGemmPlan::kStoreBuffers * kBufferBytes)));
  // Lane l writes rows l/4 and l/4 + 8, both swizzled by l/4, 2·bytes at
  // byte 2·bytes·(l%4) of each 8 columns.
  Value row = arith::DivUIOp::create(b, lane, cIndex(b, 4));
  Value rowAddress =
      arith::MulIOp::create(b, row, cIndex(b, WgmmaGemmPlan::kStoreRowBytes));
  Value quadByte =
      arith::MulIOp::create(b, arith::RemUIOp::create(b, lane, cIndex(b, 4)),
                            cIndex(b, 2 * outBytes));
  Value rowOrigin =
      toI32(b, arith::AddIOp::create(
                   b, m0,
                   arith::MulIOp::create(
                       b, warp, cIndex(b, WgmmaGemmPlan::kStoreRows))));
  const int64_t chunks = plan.bn / chunkCols;
  for (int64_t q = 0; q < chunks; ++q) {
    Value buffer = arith::AddIOp::create(
        b, buffers,
        cIndex(b, (q % WgmmaGemmPlan::kStoreBuffers) * kBufferBytes));
    // The buffer's previous store read it: the last one of an earlier tile
    // (long done), or this tile's store before last.
    ifThen(b, isLeader, [&] {
      NVVM::CpAsyncBulkWaitGroupOp::create(
          b, q == 0 ? 0 : WgmmaGemmPlan::kStoreBuffers - 1, b.getUnitAttr());
    });
    NVVM::SyncWarpOp::create(b, allLanes);
    for (int64_t j = q * chunkCols / 8; j < (q + 1) * chunkCols / 8; ++j) {
      // Byte of the pair in its 128-byte row, then its swizzled place.
      Value byte = arith::AddIOp::create(
          b, quadByte, cIndex(b, (8 * j - q * chunkCols) * outBytes));
      Value unit = arith::XOrIOp::create(
          b, arith::DivUIOp::create(b, byte, cIndex(b, 16)), row);
      Value inRow = arith::AddIOp::create(
          b, arith::MulIOp::create(b, unit, cIndex(b, 16)),
          arith::RemUIOp::create(b, byte, cIndex(b, 16)));
      for (int64_t h = 0; h < 2; ++h) {
        Value address = arith::AddIOp::create(
            b, buffer,
            arith::AddIOp::create(
                b, rowAddress,
                arith::AddIOp::create(
                    b, inRow,
                    cIndex(b, 8 * h * WgmmaGemmPlan::kStoreRowBytes))));
        LLVM::StoreOp::create(b, castFloat(b, values[2 * j + h], plan.outType),
                              sharedPointer(b, address),
                              /*alignment=*/2 * outBytes);
      }
    }
    // The writes, made visible to TMA (the async proxy), then stored.
    NVVM::FenceProxyOp::create(
        b, NVVM::ProxyKind::async_shared,
        NVVM::SharedSpaceAttr::get(b.getContext(),
                                   NVVM::SharedSpace::shared_cta));
    NVVM::SyncWarpOp::create(b, allLanes);
    ifThen(b, isLeader, [&] {
      Value col =
          toI32(b, arith::AddIOp::create(b, n0, cIndex(b, q * chunkCols)));
      NVVM::CpAsyncBulkTensorSharedCTAToGlobalOp::create(
          b, store.map, sharedPointer(b, buffer), ValueRange{col, rowOrigin},
          /*l2CacheHint=*/Value(), NVVM::TMAStoreMode::TILE,
          /*predicate=*/Value());
      NVVM::CpAsyncBulkCommitGroupOp::create(b);
    });
  }
}

/// The MMA warpgroups' part of the tile at (m0, n0): per K tile kt (the
/// `first` + kt-th tile through the ring), wait for it, one wgmma per 32
/// bytes of K and per B operand (promoted or not), give the slots back;
/// then the epilogue. `mmaTid` is the thread's index among the MMA
/// warpgroups' threads; `acquire(c)` returns once ring tile c is in its
/// slot, `release(c)` gives its slot back; `kOf(kt)` is the K tile the
/// tile's kt-th ring tile holds (see rotateK).
static void buildMmaTile(ImplicitLocOpBuilder &b, const WgmmaGemmPlan &plan,
                         Value mmaTid, ArrayRef<Value> ringAddresses,
                         const TmaStore &store, Value first, Value m0, Value n0,
                         function_ref<void(Value)> acquire,
                         function_ref<void(Value)> release,
                         function_ref<Value(Value)> kOf,
                         KTileScaleFn kTileScale, GemmEpilogueFn epilogue) {
  MLIRContext *ctx = b.getContext();
  Type f32 = b.getF32Type();
  const int64_t rowBytes = plan.rowBytes();
  const int64_t numK = llvm::divideCeil(plan.k, plan.bk);
  Value c0 = cIndex(b, 0);
  Value warpgroup = arith::DivUIOp::create(b, mmaTid, cIndex(b, 128));
  Value lane = arith::RemUIOp::create(b, mmaTid, cIndex(b, 32));
  Value warpInGroup = arith::RemUIOp::create(
      b, arith::DivUIOp::create(b, mmaTid, cIndex(b, 32)), cIndex(b, 4));

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

  // Ring tile c: wait for it, its MMAs into `target` (from zero, ignoring
  // `target`'s values, when `fromZero`), committed as one group, not waited
  // for.
  auto issueTile = [&](Value c, SmallVectorImpl<Value> &target, bool fromZero) {
    acquire(c);
    Value slot = arith::RemUIOp::create(b, c, cIndex(b, plan.stages));
    Value slotA =
        toI64(b, arith::MulIOp::create(
                     b, slot, cIndex(b, plan.aSlotRows() * rowBytes / 16)));
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
  };
  // issueTile, then: unpromoted, wait for all but that group, so that the
  // previous K tile's slot can be given back while this tile's MMAs run.
  // Promoted, wait for the group itself: its products are read right away,
  // and reading accumulators of a wgmma still in flight makes ptxas
  // serialize every wgmma of the kernel (C7514); the other MMA warpgroup
  // keeps the tensor cores busy meanwhile (overlapsPromotion does better
  // where registers allow).
  auto mmaTile = [&](Value c, SmallVectorImpl<Value> &target, bool fromZero) {
    issueTile(c, target, fromZero);
    if (plan.promote) {
      NVVM::WgmmaWaitGroupSyncOp::create(b, 0);
      release(c);
    } else {
      NVVM::WgmmaWaitGroupSyncOp::create(b, 1);
      if (!fromZero) // The output tile's previous K tile.
        release(arith::SubIOp::create(b, c, cIndex(b, 1)));
    }
  };
  // sums += parts · (K tile kt's scale, or 1).
  auto fold = [&](SmallVectorImpl<Value> &sums, ArrayRef<Value> parts,
                  Value kt) {
    Value scale = kTileScale ? kTileScale(b, kOf(kt), m0, n0) : Value();
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

  // The first K tile's MMAs start from zero (scale-d false: their inputs
  // are ignored, so no registers are zeroed between the wgmmas of
  // consecutive output tiles, which would make ptxas fence them, C7517 and
  // C7519); promoted, every K tile's do, and are added to the f32 sums.
  Value unset = LLVM::PoisonOp::create(b, accType);
  SmallVector<Value> sums;
  if (plan.overlapsPromotion()) {
    // Promoted with two product sets: K tile kt's MMAs run while K tile
    // kt - 1's products are added to the sums, within groups of kGroup K
    // tiles: no set is in flight across a loop's back edge (ptxas then
    // cannot tell the sets apart and serializes every wgmma, C7514).
    constexpr int64_t kGroup = 4;
    // K tiles [k0, k0 + count) into `sums`: each issued into the set the
    // one before last used (its wgmmas start from zero, so its values are
    // ignored, but their tied registers keep each set in place).
    auto group = [&](SmallVectorImpl<Value> &sums, Value k0, int64_t count) {
      SmallVector<Value> sets[2] = {SmallVector<Value>(plan.numB, unset),
                                    SmallVector<Value>(plan.numB, unset)};
      Value previous;
      for (int64_t j = 0; j < count; ++j) {
        Value kt = arith::AddIOp::create(b, k0, cIndex(b, j));
        issueTile(arith::AddIOp::create(b, first, kt), sets[j % 2],
                  /*fromZero=*/true);
        if (j > 0) {
          NVVM::WgmmaWaitGroupSyncOp::create(b, 1);
          release(arith::AddIOp::create(b, first, previous));
          fold(sums, sets[(j - 1) % 2], previous);
        }
        previous = kt;
      }
      NVVM::WgmmaWaitGroupSyncOp::create(b, 0);
      release(arith::AddIOp::create(b, first, previous));
      fold(sums, sets[(count - 1) % 2], previous);
    };
    const int64_t groups = numK / kGroup;
    auto loop = scf::ForOp::create(b, c0, cIndex(b, groups), cIndex(b, 1),
                                   SmallVector<Value>(plan.numB, zeroAcc));
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(loop.getBody());
      SmallVector<Value> groupSums(loop.getRegionIterArgs());
      group(groupSums,
            arith::MulIOp::create(b, loop.getInductionVar(), cIndex(b, kGroup)),
            kGroup);
      scf::YieldOp::create(b, groupSums);
    }
    sums.assign(loop.getResults().begin(), loop.getResults().end());
    if (numK % kGroup)
      group(sums, cIndex(b, groups * kGroup), numK % kGroup);
  } else {
    SmallVector<Value> acc(plan.numB, unset);
    if (!plan.promote) {
      mmaTile(first, acc, /*fromZero=*/true);
    } else {
      SmallVector<Value> part(acc);
      mmaTile(first, part, /*fromZero=*/true);
      acc.assign(plan.numB, zeroAcc);
      fold(acc, part, c0);
    }
    // Loop-carried: one accumulator per B operand.
    auto loop =
        scf::ForOp::create(b, cIndex(b, 1), cIndex(b, numK), cIndex(b, 1), acc);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(loop.getBody());
      Value kt = loop.getInductionVar();
      Value c = arith::AddIOp::create(b, first, kt);
      SmallVector<Value> loopSums(loop.getRegionIterArgs());
      if (!plan.promote) {
        mmaTile(c, loopSums, /*fromZero=*/false);
      } else {
        SmallVector<Value> part(plan.numB, unset);
        mmaTile(c, part, /*fromZero=*/true);
        fold(loopSums, part, kt);
      }
      scf::YieldOp::create(b, loopSums);
    }
    NVVM::WgmmaWaitGroupSyncOp::create(b, 0);
    if (!plan.promote)
      release(arith::AddIOp::create(b, first, cIndex(b, numK - 1)));
    sums.assign(loop.getResults().begin(), loop.getResults().end());
  }

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
  if (!plan.storesThroughTma()) {
    epilogue(b, results, pairs, /*staged=*/nullptr);
    return;
  }
  epilogue(b, results, pairs,
           [&](ImplicitLocOpBuilder &b, ArrayRef<Value> values) {
             storeThroughTma(b, plan, store, mmaTid, m0, n0, values);
           });
}

/// The setmaxnreg split between the producer warpgroup and two MMA
/// warpgroups: CUTLASS's 40 and 232. setmaxnreg moves registers within what
/// the block was launched with (65536 / 384 threads, rounded down to 8: 168
/// each), and an increase waits until decreases have freed enough, so the
/// split must not exceed that total, or the MMA warpgroups wait forever
/// (the hang of docs/perf/gemm-engine.md v3): 40·128 + 232·256 = 168·384.
/// A decrease must stay below what the kernel was compiled with and an
/// increase above it, so the counts do not follow the accumulators.
static constexpr int64_t kProducerRegisters = 40;
static constexpr int64_t kMmaRegisters = 232;

/// Emits `body(tile, first)` for every output tile of this block of the
/// persistent grid (tiles blockIdx.x, + gridDim.x, ...; with a cluster, the
/// cluster's tiles: cluster c of the grid's C takes tiles c, c + C, ...),
/// `first` being the number of K tiles this block's earlier output tiles
/// put through the ring. Returns the number of K tiles all of them did.
static Value forEachTile(ImplicitLocOpBuilder &b, const WgmmaGemmPlan &plan,
                         const WgmmaTileSchedule &schedule,
                         function_ref<void(Value tile, Value first)> body) {
  const int64_t numK = llvm::divideCeil(plan.k, plan.bk);
  auto perCluster = [&](Value blocks) -> Value {
    if (plan.clusterBlocks() == 1)
      return blocks;
    return arith::DivUIOp::create(b, blocks, cIndex(b, plan.clusterBlocks()));
  };
  auto loop = scf::ForOp::create(
      b, perCluster(gpu::BlockIdOp::create(b, gpu::Dimension::x)),
      schedule.numTiles,
      perCluster(gpu::GridDimOp::create(b, gpu::Dimension::x)),
      ValueRange{cIndex(b, 0)});
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  Value first = loop.getRegionIterArgs()[0];
  body(loop.getInductionVar(), first);
  scf::YieldOp::create(
      b, ValueRange{arith::AddIOp::create(b, first, cIndex(b, numK))});
  return loop.getResult(0);
}

void kernel::buildWgmmaGemm(ImplicitLocOpBuilder &b, const WgmmaGemmPlan &plan,
                            gpu::GPUFuncOp kernel,
                            const WgmmaTileSchedule &schedule,
                            KTileScaleFn kTileScale, GemmEpilogueFn epilogue) {
  MLIRContext *ctx = b.getContext();
  const int64_t stages = plan.stages;
  const int64_t numK = llvm::divideCeil(plan.k, plan.bk);
  SmallVector<Value> tensorMaps(
      kernel.getArguments().take_back(plan.numTensorMaps()));

  // Dynamic shared memory, its start rounded up to the swizzle pattern:
  // the rings, then the mbarriers.
  auto workgroup =
      gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  auto bytesType = MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                                   MemRefLayoutAttrInterface(), workgroup);
  Value base = gpu::DynamicSharedMemoryOp::create(b, bytesType);
  Value baseAddress = memref::ExtractAlignedPointerAsIndexOp::create(b, base);
  Value align = cIndex(b, kSwizzleAlign);
  Value aligned = arith::AddIOp::create(
      b, baseAddress,
      arith::RemUIOp::create(
          b,
          arith::SubIOp::create(b, align,
                                arith::RemUIOp::create(b, baseAddress, align)),
          align));
  SmallVector<int64_t> offsets = getSharedOffsets(plan);
  SmallVector<Value> ringAddresses;
  for (int64_t i = 0; i < 1 + plan.numB; ++i)
    ringAddresses.push_back(
        arith::AddIOp::create(b, aligned, cIndex(b, offsets[i])));
  TmaStore store;
  if (plan.storesThroughTma()) {
    store.map = tensorMaps.back();
    store.buffers =
        arith::AddIOp::create(b, aligned, cIndex(b, offsets[1 + plan.numB]));
  }
  Value barrierAddress =
      arith::AddIOp::create(b, aligned, cIndex(b, offsets.back()));

  // Per ring slot a `full` mbarrier (the producer's arrival with the tile's
  // byte count, then the TMA's completion) and an `empty` one (every MMA
  // thread arrives once the MMAs reading the slot are complete). Ring tile
  // c goes to slot c mod S as the slot's use c / S, which completes phase
  // c / S of both; waits go by its parity.
  Value c0 = cIndex(b, 0), c1 = cIndex(b, 1);
  auto full = [&](Value slot) {
    return sharedPointer(
        b, arith::AddIOp::create(b, barrierAddress,
                                 arith::MulIOp::create(b, slot, cIndex(b, 8))));
  };
  auto empty = [&](Value slot) {
    return full(arith::AddIOp::create(b, slot, cIndex(b, stages)));
  };
  // With a cluster, every block of it writes half of each B tile into the
  // other's slot and signals the other's `full` mbarrier at the same
  // offset, so a slot is empty once the MMA warpgroups of both blocks gave
  // it back: one thread per MMA warpgroup arrives on each block's `empty`.
  const bool clustered = plan.clusterBlocks() > 1;
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  ifThen(b, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, tid, c0), [&] {
    Value one = arith::ConstantIntOp::create(b, b.getI32Type(), 1);
    Value releases = arith::ConstantIntOp::create(
        b, b.getI32Type(),
        clustered ? plan.warpgroups * plan.clusterBlocks()
                  : plan.warpgroups * 128);
    for (int64_t s = 0; s < stages; ++s) {
      NVVM::MBarrierInitOp::create(b, full(cIndex(b, s)), one, Value());
      NVVM::MBarrierInitOp::create(b, empty(cIndex(b, s)), releases, Value());
    }
    NVVM::FenceMbarrierInitOp::create(b);
  });
  // The other block's mbarriers must be initialized before a copy or an
  // arrival reaches them.
  if (clustered) {
    NVVM::ClusterArriveOp::create(b, /*aligned=*/nullptr);
    NVVM::ClusterWaitOp::create(b, /*aligned=*/nullptr);
  } else {
    gpu::BarrierOp::create(b);
  }
  // This block's place in its cluster (blocks of a cluster are consecutive
  // in x): its tile is the rank-th BM rows of the cluster's tile, and it
  // loads the rank-th part of each B tile.
  Value rank = clustered ? Value(arith::RemUIOp::create(
                               b, gpu::BlockIdOp::create(b, gpu::Dimension::x),
                               cIndex(b, plan.clusterBlocks())))
                         : c0;
  auto originOf = [&](Value tile) -> std::pair<Value, Value> {
    auto [m0, n0] = schedule.origin(b, tile);
    if (clustered)
      m0 = arith::AddIOp::create(
          b, m0, arith::MulIOp::create(b, rank, cIndex(b, plan.bm)));
    return {m0, n0};
  };
  auto waitFor = [&](Value barrier, Value use) {
    Value parity = toI32(b, arith::AndIOp::create(b, use, c1));
    NVVM::MBarrierTryWaitParityOp::create(
        b, barrier, parity,
        arith::ConstantIntOp::create(b, b.getI32Type(), 10000000));
  };

  // The K order of output tile `tile`: where the schedule says so (one row
  // of output tiles: decode), tile t reads its K tiles from t mod numK on,
  // wrapping around, so that the blocks at work at once read different K
  // tiles of A. In K order every block reads the same few A lines (M rows)
  // at the same moment, all from the same L2 slices (rotated, gated decode
  // at M = 16 took 49.9 instead of 56.6 µs on an H200,
  // docs/perf/gemm-engine.md v7). Block scales follow the K tile read.
  auto kOrder = [&](Value tile) {
    Value rotation = arith::SelectOp::create(
        b, schedule.rotateK, arith::RemUIOp::create(b, tile, cIndex(b, numK)),
        c0);
    return [&b, rotation, numK](Value kt) -> Value {
      Value k = arith::AddIOp::create(b, kt, rotation);
      Value n = cIndex(b, numK);
      return arith::SelectOp::create(
          b, arith::CmpIOp::create(b, arith::CmpIPredicate::uge, k, n),
          arith::SubIOp::create(b, k, n), k);
    };
  };

  bool moveRegisters = plan.warpgroups > 1;
  Value isProducer =
      arith::CmpIOp::create(b, arith::CmpIPredicate::ult, tid, cIndex(b, 128));
  auto roles = scf::IfOp::create(b, isProducer, /*withElseRegion=*/true);

  //===--- Producer warpgroup: one thread issues every tile's TMA loads ---===//
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(roles.thenBlock());
    if (moveRegisters)
      NVVM::SetMaxRegisterOp::create(b, kProducerRegisters,
                                     NVVM::SetMaxRegisterAction::decrease);
    ifThen(b, arith::CmpIOp::create(b, arith::CmpIPredicate::eq, tid, c0), [&] {
      Value txBytes = arith::ConstantIntOp::create(
          b, b.getI32Type(),
          (plan.aSlotRows() + plan.numB * plan.bn) * plan.rowBytes());
      auto clusterPtr = LLVM::LLVMPointerType::get(ctx, 7);
      Value issued =
          forEachTile(b, plan, schedule, [&](Value tile, Value first) {
            auto [m0, n0] = originOf(tile);
            auto kOf = kOrder(tile);
            auto loop = scf::ForOp::create(b, c0, cIndex(b, numK), c1);
            OpBuilder::InsertionGuard guard(b);
            b.setInsertionPointToStart(loop.getBody());
            Value kt = loop.getInductionVar();
            Value c = arith::AddIOp::create(b, first, kt);
            Value slot = arith::RemUIOp::create(b, c, cIndex(b, stages));
            Value use = arith::DivUIOp::create(b, c, cIndex(b, stages));
            // The slot's previous use given back by every MMA thread.
            ifThen(b,
                   arith::CmpIOp::create(b, arith::CmpIPredicate::uge, c,
                                         cIndex(b, stages)),
                   [&] {
                     waitFor(empty(slot), arith::SubIOp::create(b, use, c1));
                   });
            Value barrier = full(slot);
            NVVM::MBarrierArriveExpectTxOp::create(b, Type(), barrier, txBytes,
                                                   NVVM::MemScopeKind::CTA,
                                                   /*relaxed=*/false, Value());
            // Elements past M, N or K read as zeros: TMA fills them and still
            // counts the whole box.
            Value k0 =
                toI32(b, arith::MulIOp::create(b, kOf(kt), cIndex(b, plan.bk)));
            // `rows` rows from row0 into the slot's rows from `slotRow` on; a
            // multicast load lands at the same offset in every block of the
            // cluster and signals each one's `full` mbarrier there.
            auto load = [&](int64_t operand, Value row0, int64_t slotRows,
                            Value slotRow, Value multicastMask) {
              Value destination = arith::AddIOp::create(
                  b, ringAddresses[operand],
                  arith::MulIOp::create(
                      b,
                      arith::AddIOp::create(
                          b,
                          arith::MulIOp::create(b, slot, cIndex(b, slotRows)),
                          slotRow),
                      cIndex(b, plan.rowBytes())));
              NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp::create(
                  b,
                  LLVM::AddrSpaceCastOp::create(b, clusterPtr,
                                                sharedPointer(b, destination)),
                  tensorMaps[operand], ValueRange{k0, toI32(b, row0)}, barrier,
                  /*im2colOffsets=*/ValueRange{}, multicastMask,
                  /*l2CacheHint=*/Value(), NVVM::TMALoadMode::TILE,
                  /*isCTAOnly=*/false, /*group=*/NVVM::CTAGroupKindAttr(),
                  /*predicate=*/Value());
            };
            load(0, m0, plan.aSlotRows(), c0, Value());
            // With a cluster, this block's part of each B tile, for every
            // block.
            Value bRow =
                arith::MulIOp::create(b, rank, cIndex(b, plan.bRowsPerBlock()));
            Value everyBlock =
                clustered ? Value(arith::ConstantIntOp::create(
                                b, b.getI16Type(),
                                (int64_t(1) << plan.clusterBlocks()) - 1))
                          : Value();
            for (int64_t i = 0; i < plan.numB; ++i)
              load(1 + i, arith::AddIOp::create(b, n0, bRow), plan.bn, bRow,
                   everyBlock);
          });
      // With a cluster, the other block's MMA warpgroups still read this
      // block's slots and arrive on its mbarriers: the block stays until
      // every slot was given back for its last use.
      if (clustered)
        for (int64_t j = 0; j < stages; ++j) {
          Value c = arith::AddIOp::create(b, issued, cIndex(b, j));
          ifThen(b,
                 arith::CmpIOp::create(b, arith::CmpIPredicate::uge, c,
                                       cIndex(b, stages)),
                 [&] {
                   waitFor(
                       empty(arith::RemUIOp::create(b, c, cIndex(b, stages))),
                       arith::SubIOp::create(
                           b, arith::DivUIOp::create(b, c, cIndex(b, stages)),
                           c1));
                 });
        }
    });
  }

  //===--- MMA warpgroups: multiply, then the epilogue, per output tile ---===//
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(roles.elseBlock());
  if (moveRegisters)
    NVVM::SetMaxRegisterOp::create(b, kMmaRegisters,
                                   NVVM::SetMaxRegisterAction::increase);
  Value mmaTid = arith::SubIOp::create(b, tid, cIndex(b, 128));
  auto acquire = [&](Value c) {
    Value slot = arith::RemUIOp::create(b, c, cIndex(b, stages));
    waitFor(full(slot), arith::DivUIOp::create(b, c, cIndex(b, stages)));
  };
  // Without a cluster every MMA thread arrives. With one, thread 0 of each
  // MMA warpgroup arrives on this block's `empty` and thread 32 (another
  // warp) on the other block's: a warpgroup's wgmmas are one operation, so
  // once one thread's wait returned, none of them reads the slot. The remote
  // arrival keeps the default release at CTA scope (CUTLASS's ClusterBarrier
  // does the same): with release at cluster scope ptxas puts a MEMBAR.ALL.GPU
  // before it, the warpgroup's next wgmma waits for that warp, and FP8 4096³
  // took 0.23 instead of 0.17 ms on an H200 (docs/perf/gemm-engine.md v9).
  Value inWarpgroup = arith::RemUIOp::create(b, mmaTid, cIndex(b, 128));
  auto release = [&](Value c) {
    Value slot = arith::RemUIOp::create(b, c, cIndex(b, stages));
    if (!clustered) {
      NVVM::MBarrierArriveOp::create(b, Type(), empty(slot), Value());
      return;
    }
    ifThen(b,
           arith::CmpIOp::create(b, arith::CmpIPredicate::eq, inWarpgroup, c0),
           [&] {
             NVVM::MBarrierArriveOp::create(b, Type(), empty(slot), Value());
           });
    ifThen(b,
           arith::CmpIOp::create(b, arith::CmpIPredicate::eq, inWarpgroup,
                                 cIndex(b, 32)),
           [&] {
             Value other = arith::XOrIOp::create(b, rank, c1);
             Value remote =
                 NVVM::MapaOp::create(b, LLVM::LLVMPointerType::get(ctx, 7),
                                      empty(slot), toI32(b, other));
             NVVM::MBarrierArriveOp::create(b, Type(), remote, Value());
           });
  };
  forEachTile(b, plan, schedule, [&](Value tile, Value first) {
    auto [m0, n0] = originOf(tile);
    buildMmaTile(b, plan, mmaTid, ringAddresses, store, first, m0, n0, acquire,
                 release, kOrder(tile), kTileScale, epilogue);
  });
  // The epilogue's last TMA stores complete before the block exits.
  if (plan.storesThroughTma())
    ifThen(b,
           arith::CmpIOp::create(
               b, arith::CmpIPredicate::eq,
               arith::RemUIOp::create(b, mmaTid, cIndex(b, 32)), c0),
           [&] { NVVM::CpAsyncBulkWaitGroupOp::create(b, 0, UnitAttr()); });
}

/// Host code: the tensor map of the row-major matrix `matrix` of
/// `elementBytes` elements, read or written in boxes of `boxRows` ×
/// `boxCols` in the `swizzleBytes` swizzle, encoded by the runtime into 128
/// bytes on the host stack (`mgpuTensorMapEncode2D`, fusedops-c/Runtime.h).
/// Returns the map's address and whether it was encoded (else the runtime
/// reported why, or the matrix is empty).
static std::pair<Value, Value>
buildTensorMap(ImplicitLocOpBuilder &b, Value matrix, int64_t elementBytes,
               int64_t boxRows, int64_t boxCols, int64_t swizzleBytes) {
  MLIRContext *ctx = b.getContext();
  auto ptrType = LLVM::LLVMPointerType::get(ctx);
  Type i32 = b.getI32Type(), i64 = b.getI64Type();
  auto encode = getRuntimeFunction(
      b, kTensorMapEncodeFnName,
      LLVM::LLVMFunctionType::get(
          i32, {ptrType, ptrType, i32, i64, i64, i64, i32, i32, i32}));
  auto mapType = LLVM::LLVMArrayType::get(i64, kTensorMapBytes / 8);
  Value map = LLVM::AllocaOp::create(b, ptrType, mapType,
                                     arith::ConstantIntOp::create(b, i64, 1),
                                     /*alignment=*/kTensorMapAlign);
  Value global = LLVM::IntToPtrOp::create(
      b, ptrType,
      toI64(b, memref::ExtractAlignedPointerAsIndexOp::create(b, matrix)));
  auto c32 = [&](int64_t v) { return arith::ConstantIntOp::create(b, i32, v); };
  Value rows = toI64(b, memref::DimOp::create(b, matrix, 0));
  Value cols = toI64(b, memref::DimOp::create(b, matrix, 1));
  Value stride = arith::MulIOp::create(
      b, cols, arith::ConstantIntOp::create(b, i64, elementBytes));
  Value status =
      LLVM::CallOp::create(b, encode,
                           ValueRange{map, global, c32(elementBytes), rows,
                                      cols, stride, c32(boxRows), c32(boxCols),
                                      c32(swizzleBytes)})
          .getResult();
  Value encoded =
      arith::CmpIOp::create(b, arith::CmpIPredicate::ne, status, c32(0));
  return {map, encoded};
}

int64_t WgmmaGemmPlan::blocksPerSm(const KernelTarget &target) const {
  // The cost model's occupancy of the same resources (the row count does
  // not change a block's).
  KernelResources r = estimateWgmmaGemm(*this, /*m=*/bm);
  return std::max<int64_t>(
      1, getOccupancy(r, SmLimits::get(*target.info)).blocksPerSm);
}

void kernel::buildAndLaunchWgmmaGemm(
    ImplicitLocOpBuilder &b, gpu::GPUModuleOp module, StringRef name,
    ArrayRef<Value> args, Value a, ArrayRef<Value> bs, Value out,
    const WgmmaGemmPlan &plan, const KernelTarget &target,
    function_ref<void(ImplicitLocOpBuilder &, gpu::GPUFuncOp,
                      const WgmmaTileSchedule &)>
        buildBody) {
  SmallVector<Value> launchArgs(args);
  Value rows = memref::DimOp::create(b, args[0], 0);
  // Launch only where every map was encoded (an empty A gives none; an
  // output not 16-byte aligned is refused with the runtime's message).
  auto addMap = [&](Value matrix, int64_t elementBytes, int64_t boxRows,
                    int64_t rowBytes) {
    auto [map, encoded] = buildTensorMap(b, matrix, elementBytes, boxRows,
                                         rowBytes / elementBytes, rowBytes);
    launchArgs.push_back(map);
    rows = arith::SelectOp::create(b, encoded, rows, cIndex(b, 0));
  };
  addMap(a, plan.elementBytes(), plan.aSlotRows(), plan.rowBytes());
  for (Value matrix : bs)
    addMap(matrix, plan.elementBytes(), plan.bRowsPerBlock(), plan.rowBytes());
  if (plan.storesThroughTma())
    addMap(out, plan.outBytes(), WgmmaGemmPlan::kStoreRows,
           WgmmaGemmPlan::kStoreRowBytes);
  SmallVector<Type> argTypes;
  for (Value arg : launchArgs)
    argTypes.push_back(arg.getType());
  int64_t tilesN = llvm::divideCeil(plan.n, plan.bn);
  gpu::GPUFuncOp kernel;
  {
    OpBuilder::InsertionGuard guard(b);
    kernel = createKernel(b, b.getLoc(), module, name, argTypes, plan.threads(),
                          /*workgroupBuffers=*/{});
    kernel->setAttr(kTensorMapParamsAttrName,
                    b.getI64IntegerAttr(plan.numTensorMaps()));
    // One block per SM: ptxas then honours setmaxnreg's register split.
    if (plan.warpgroups > 1)
      kernel->setAttr("nvvm.minctasm", b.getI32IntegerAttr(1));
    // The cluster is fixed at compile time (PTX .reqnctapercluster), so a
    // plain cuLaunchKernel launches clusters of it.
    if (plan.clusterBlocks() > 1)
      kernel.setKnownClusterSizeAttr(b.getDenseI32ArrayAttr(
          {static_cast<int32_t>(plan.clusterBlocks()), 1, 1}));
    b.setInsertionPoint(kernel.getBody().front().getTerminator());
    // Tiles of the schedule: a cluster's, clusterBlocks() · BM rows high.
    Value tilesM = arith::CeilDivUIOp::create(
        b, memref::DimOp::create(b, kernel.getArgument(0), 0),
        cIndex(b, plan.bm * plan.clusterBlocks()));
    WgmmaTileSchedule schedule;
    schedule.numTiles = arith::MulIOp::create(b, tilesM, cIndex(b, tilesN));
    // Static rows decide it from M; dynamic rows from the rows the kernel
    // is tuned for, so that the K order stays a constant (the order is a
    // permutation: any choice is correct). Computed at run time it cost a
    // class kernel 5-11 % against the static one (docs/perf/shape-classes.md).
    schedule.rotateK =
        plan.rowsHint > 0
            ? Value(arith::ConstantIntOp::create(
                  b, plan.rowsHint <= plan.bm * plan.clusterBlocks(),
                  /*width=*/1))
            : Value(arith::CmpIOp::create(b, arith::CmpIPredicate::eq, tilesM,
                                          cIndex(b, 1)));
    // Grouped order: tiles walk kGroupRows tile rows down a column of tiles
    // before the next column, so the blocks at work at once read a few
    // weight tiles many times from L2 instead of every weight tile once per
    // tile row.
    schedule.origin = [&plan, tilesM, tilesN](ImplicitLocOpBuilder &b,
                                              Value tile) {
      Value width = cIndex(b, kGroupRows * tilesN);
      Value firstM = arith::MulIOp::create(
          b, arith::DivUIOp::create(b, tile, width), cIndex(b, kGroupRows));
      Value groupRows = arith::MinUIOp::create(
          b, arith::SubIOp::create(b, tilesM, firstM), cIndex(b, kGroupRows));
      Value inGroup = arith::RemUIOp::create(b, tile, width);
      Value tileM = arith::AddIOp::create(
          b, firstM, arith::RemUIOp::create(b, inGroup, groupRows));
      Value tileN = arith::DivUIOp::create(b, inGroup, groupRows);
      return std::make_pair(
          Value(arith::MulIOp::create(
              b, tileM, cIndex(b, plan.bm * plan.clusterBlocks()))),
          Value(arith::MulIOp::create(b, tileN, cIndex(b, plan.bn))));
    };
    buildBody(b, kernel, schedule);
  }
  // A persistent grid: as many blocks as fit on the device at once, each
  // walking its share of the tiles (fewer where there are fewer tiles);
  // with a cluster, whole clusters (the launch plan's runtime rounds the
  // same way, from the kernel's required cluster width).
  const int64_t clusterBlocks = plan.clusterBlocks();
  Value tiles = arith::MulIOp::create(
      b,
      arith::CeilDivUIOp::create(b, rows, cIndex(b, plan.bm * clusterBlocks)),
      cIndex(b, tilesN * clusterBlocks));
  Value resident =
      buildResidentBlocks(b, plan.blocksPerSm(target), clusterBlocks);
  launchIfRows(b, kernel, rows, arith::MinUIOp::create(b, tiles, resident),
               cIndex(b, 1), plan.threads(), launchArgs, plan.sharedBytes());
}

SmallVector<TileConfigAttr>
kernel::enumerateWgmmaTiles(MLIRContext *ctx, int64_t elementBytes,
                            TileConfigAttr defaultTile) {
  SmallVector<TileConfigAttr> tiles = {defaultTile};
  // One-warpgroup tiles (decode: a block's only work is streaming its
  // columns' weights) also take deeper rings: FP8 64×96 at M = 1 took 24.7
  // µs with 8 stages, 26.7 with 6 on an H200 (docs/perf/gemm-engine.md v12).
  for (int64_t warpgroups : {1, 2})
    for (int64_t bn : {64, 96, 128, 192, 256})
      for (int64_t rowBytes : {64, 128})
        for (int64_t stages : {3, 4, 5, 6, 7, 8})
          if (warpgroups == 1 || stages <= 6)
            tiles.push_back(TileConfigAttr::get(
                ctx, {kWarpgroupRows * warpgroups, bn, rowBytes / elementBytes},
                4 * warpgroups, stages, /*cluster=*/{}));
  // 2×1 clusters of the 128-row tiles with 128-byte rows (the ones that
  // read the most from L2 per output).
  for (int64_t bn : {128, 192, 256})
    for (int64_t stages : {3, 4, 5, 6})
      tiles.push_back(TileConfigAttr::get(
          ctx, {2 * kWarpgroupRows, bn, 128 / elementBytes}, 8, stages,
          /*cluster=*/{2}));
  return tiles;
}

/// Fitted to the exhaustive sweep of the TMA mainloop
/// (docs/perf/gemm-engine-h200/v6-tma): with 2 (the mma.sync kernels' fit)
/// the model ranks shallow rings first that measure slower (FP8 picks at
/// 92-100 % of the best, 96-100 % with 3; the gated MLP's decode 92 % and
/// 100 %).
static constexpr double kTmaLoadLatencyFactor = 3;

KernelResources kernel::estimateWgmmaGemm(const WgmmaGemmPlan &plan,
                                          int64_t m) {
  const int64_t outBytes = plan.outBytes();
  // A cluster's blocks all run, and multiply, where its last tiles lie past
  // M (decode: M ≤ BM leaves one of two idle).
  int64_t rowBlocks =
      llvm::alignTo(llvm::divideCeil(m, plan.bm), plan.clusterBlocks());
  int64_t colBlocks = llvm::divideCeil(plan.n, plan.bn);
  int64_t eb = plan.elementBytes();
  KernelResources r;
  r.blocks = rowBlocks * colBlocks;
  r.threadsPerBlock = plan.threads();
  r.sharedBytesPerBlock = plan.sharedBytes();
  // Accumulators, descriptors, addresses and the loop state; with two MMA
  // warpgroups, the launch bound (setmaxnreg moves registers within it).
  r.registersPerThread = plan.warpgroups > 1
                             ? 65536 / plan.threads() / 8 * 8
                             : plan.accumulatorsPerThread() + 48;
  double a = double(m) * plan.k * eb, b = double(plan.n) * plan.k * eb;
  double out = double(m) * plan.n * outBytes * plan.epilogueTensors;
  r.dramBytes = a + plan.numB * b + out;
  // Grouped order: within a group of kGroupRows tile rows a weight tile is
  // read once from DRAM for all of them. A cluster's blocks read each B
  // tile once for all of them (multicast).
  r.l2Bytes = a * colBlocks +
              plan.numB * b * rowBlocks / double(plan.clusterBlocks()) + out;
  // The MMAs multiply whole tiles, rows past M (TMA's zeros) too: a
  // cluster's second tile past M, and at decode a 128-row tile twice the
  // rows of a 64-row one (counting M rows, the model tied 128×96 with
  // 64×96 for FP8 decode; 128×96 took 34 instead of 27 µs at M = 1 on an
  // H200, docs/perf/gemm-engine.md v11).
  r.flops = 2.0 * double(rowBlocks * plan.bm) * plan.n * plan.k * plan.numB;
  r.unit = eb == 1 ? KernelResources::ComputeUnit::TensorFp8
                   : KernelResources::ComputeUnit::TensorF16;
  // wgmma reads its operands from shared memory asynchronously: no
  // fragment loads compete with the MMAs, but a 64-wide N or folding after
  // every K tile leaves the tensor cores idle part of the time.
  r.issueEfficiency = plan.bn >= 128 ? 1.0 : 0.8;
  // Promotion: adding each K tile's products stalls the tensor cores less
  // where the next K tile's wgmmas run meanwhile (128×128 FP8: 3-11 %
  // faster at 8192³ and 16384×4096→11264 on an H200, docs/perf v10).
  if (plan.promote)
    r.issueEfficiency *= plan.overlapsPromotion() ? 0.8 : 0.75;
  r.stages = plan.stages;
  r.kSteps = llvm::divideCeil(plan.k, plan.bk);
  // The producer keeps every slot but the one being read in flight, and
  // the MMA warps issue no copies. A's rows past M are TMA's zeros, not
  // memory traffic.
  r.bytesInFlightPerBlock = double(plan.stages - 1) *
                            (std::min(plan.bm, m) + plan.numB * plan.bn) *
                            plan.rowBytes();
  r.loadLatencyFactor = kTmaLoadLatencyFactor;
  r.tmaRing = true;
  r.clusterBlocks = plan.clusterBlocks();
  return r;
}
