//===- MmaSync.cpp - warp-level mma.sync building blocks ------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "MmaSync.h"

#include "KernelBuilder.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::fusedops;

SmallVector<Value> kernel::toMmaRegisters(ImplicitLocOpBuilder &b,
                                          Value fragment) {
  auto type = cast<VectorType>(fragment.getType());
  auto i32x1 = VectorType::get({1}, b.getI32Type());
  SmallVector<Value> regs;
  for (int64_t r = 0; r < type.getDimSize(0); ++r) {
    // One 32-bit register: two 16-bit or four 8-bit elements.
    Value pair = vector::ExtractOp::create(b, fragment, ArrayRef<int64_t>{r});
    if (type.getElementType().isF16()) {
      regs.push_back(pair);
      continue;
    }
    Value bits = vector::BitCastOp::create(b, i32x1, pair);
    regs.push_back(vector::ExtractOp::create(b, bits, ArrayRef<int64_t>{0}));
  }
  return regs;
}

SmallVector<Value> kernel::mmaSync16816(ImplicitLocOpBuilder &b, ValueRange a,
                                        ValueRange bRegs, ValueRange acc,
                                        Type elementType) {
  Type f32 = b.getF32Type();
  auto resultType = LLVM::LLVMStructType::getLiteral(b.getContext(),
                                                     SmallVector<Type>(4, f32));
  NVVM::MMATypes type =
      elementType.isBF16() ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
  Value result = NVVM::MmaOp::create(
      b, b.getLoc(), resultType, a, bRegs, acc, ArrayRef<int64_t>{16, 8, 16},
      /*b1Op=*/std::nullopt, /*intOverflow=*/std::nullopt,
      std::array<NVVM::MMATypes, 2>{type, type},
      std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                     NVVM::MMALayout::col});
  SmallVector<Value> out;
  for (int64_t i = 0; i < 4; ++i)
    out.push_back(
        LLVM::ExtractValueOp::create(b, result, ArrayRef<int64_t>{i}));
  return out;
}

SmallVector<Value> kernel::mmaSyncFp8(ImplicitLocOpBuilder &b, ValueRange a,
                                      ValueRange bRegs, ValueRange acc,
                                      Type aType, Type bType) {
  auto ptxType = [](Type type) -> StringRef {
    return isa<Float8E4M3FNType>(type) ? "e4m3" : "e5m2";
  };
  std::string text = ("mma.sync.aligned.m16n8k32.row.col.f32." +
                      ptxType(aType) + "." + ptxType(bType) +
                      ".f32 {$0, $1, $2, $3}, {$4, $5, $6, $7}, {$8, $9}, "
                      "{$10, $11, $12, $13};")
                         .str();
  Type f32 = b.getF32Type();
  auto resultType = LLVM::LLVMStructType::getLiteral(b.getContext(),
                                                     SmallVector<Type>(4, f32));
  SmallVector<Value> operands(a.begin(), a.end());
  operands.append(bRegs.begin(), bRegs.end());
  operands.append(acc.begin(), acc.end());
  Value result =
      LLVM::InlineAsmOp::create(
          b, b.getLoc(), resultType, operands, text,
          "=f,=f,=f,=f,r,r,r,r,r,r,f,f,f,f", /*has_side_effects=*/false,
          /*is_align_stack=*/false, LLVM::tailcallkind::TailCallKind::None,
          LLVM::AsmDialectAttr(), ArrayAttr())
          .getResult(0);
  SmallVector<Value> out;
  for (int64_t i = 0; i < 4; ++i)
    out.push_back(
        LLVM::ExtractValueOp::create(b, result, ArrayRef<int64_t>{i}));
  return out;
}

void kernel::buildAndLaunchGemmKernel(
    ImplicitLocOpBuilder &b, gpu::GPUModuleOp module, StringRef name,
    ArrayRef<Value> args, int64_t n, int64_t bm, int64_t bn, int64_t threads,
    int64_t sharedBytes,
    function_ref<void(ImplicitLocOpBuilder &, gpu::GPUFuncOp, Value, Value)>
        buildBody) {
  SmallVector<Type> argTypes;
  for (Value arg : args)
    argTypes.push_back(arg.getType());
  gpu::GPUFuncOp kernel;
  {
    OpBuilder::InsertionGuard guard(b);
    kernel = createKernel(b, b.getLoc(), module, name, argTypes, threads,
                          /*workgroupBuffers=*/{});
    b.setInsertionPoint(kernel.getBody().front().getTerminator());
    Value n0 = arith::MulIOp::create(
        b, gpu::BlockIdOp::create(b, gpu::Dimension::x), cIndex(b, bn));
    Value m0 = arith::MulIOp::create(
        b, gpu::BlockIdOp::create(b, gpu::Dimension::y), cIndex(b, bm));
    buildBody(b, kernel, m0, n0);
  }
  Value rows = memref::DimOp::create(b, args[0], 0);
  launchIfRows(b, kernel, rows, cIndex(b, llvm::divideCeil(n, bn)),
               arith::CeilDivUIOp::create(b, rows, cIndex(b, bm)), threads,
               args, sharedBytes);
}

kernel::MmaGemmTile kernel::makeMmaGemmTile(Operation *op, TileConfigAttr tile,
                                            int64_t n, int64_t k) {
  MmaGemmTile t;
  t.m = getEstimatedRows(op);
  t.n = n;
  t.k = k;
  t.bm = tile.getBlock()[0];
  t.bn = tile.getBlock()[1];
  t.bk = tile.getBlock()[2];
  t.warps = tile.getWarps();
  t.stages = tile.getStages();
  return t;
}

SmallVector<TileConfigAttr>
kernel::enumerateMmaGemmTiles(MLIRContext *ctx, ArrayRef<int64_t> bks,
                              TileConfigAttr defaultTile) {
  SmallVector<TileConfigAttr> tiles = {defaultTile};
  for (int64_t bm : {32, 64, 128, 256})
    for (int64_t bn : {32, 64, 128, 256})
      for (int64_t bk : bks)
        for (int64_t warps : {2, 4, 8})
          for (int64_t stages : {1, 2, 3, 4})
            tiles.push_back(TileConfigAttr::get(ctx, {bm, bn, bk}, warps,
                                                stages, /*cluster=*/{}));
  return tiles;
}

KernelResources kernel::estimateMmaGemm(const MmaGemmTile &t) {
  int64_t warpsN = t.warps >= 2 ? 2 : 1, warpsM = t.warps / warpsN;
  int64_t mmaTilesM = t.bm / warpsM / 16, mmaTilesN = t.bn / warpsN / 8;
  int64_t rowBlocks = llvm::divideCeil(t.m, t.bm);
  int64_t colBlocks = llvm::divideCeil(t.n, t.bn);
  KernelResources r;
  r.blocks = rowBlocks * colBlocks;
  r.threadsPerBlock = t.warps * 32;
  r.sharedBytesPerBlock = t.sharedBytes;
  // Accumulators, one K step's fragments, addresses and the loop state.
  int64_t fragments = mmaTilesM * 4 + mmaTilesN * 2 * t.numB;
  r.registersPerThread = t.accumulatorsPerThread + fragments + 40;
  double a = double(t.m) * t.k * t.aBytes, b = double(t.n) * t.k * t.bBytes;
  double out = double(t.m) * t.n * t.outBytes * t.epilogueTensors;
  r.dramBytes = a + t.numB * b + out;
  r.l2Bytes = a * colBlocks + t.numB * b * rowBlocks + out;
  r.flops = 2.0 * t.m * t.n * t.k * t.numB;
  r.unit = t.unit;
  r.auxFlops = t.decodeFlopsPerElement * double(t.bm + t.bn) * t.k * r.blocks;
  // Per mma.k step a warp issues mmaTilesM·mmaTilesN·numB mmas and loads
  // its fragments: one ldmatrix.x4 per A tile and per pair of B tiles, or
  // four 32-bit loads per A tile and two per B tile (FP8).
  double mmas = double(mmaTilesM) * mmaTilesN * t.numB;
  double loads = t.ldmatrix ? mmaTilesM + (mmaTilesN * t.numB + 1) / 2
                            : 4.0 * mmaTilesM + 2.0 * mmaTilesN * t.numB;
  r.issueEfficiency = mmas / (mmas + loads);
  r.bytesInFlightPerBlock = double(std::max<int64_t>(t.stages - 1, 1)) *
                            (t.bm * t.aBytes + t.numB * t.bn * t.bBytes) * t.bk;
  r.stages = t.stages;
  r.kSteps = llvm::divideCeil(t.k, t.bk);
  return r;
}

//===----------------------------------------------------------------------===//
// The mma.sync mainloop
//===----------------------------------------------------------------------===//

kernel::MmaSyncGemmPlan
kernel::MmaSyncGemmPlan::get(TileConfigAttr tile, int64_t n, int64_t k,
                             int64_t numB, Type aType, Type bType,
                             MmaSyncOperands operands, bool blockScales) {
  MmaSyncGemmPlan plan;
  plan.bm = tile.getBlock()[0];
  plan.bn = tile.getBlock()[1];
  plan.bk = tile.getBlock()[2];
  plan.stages = tile.getStages();
  plan.threads = tile.getNumThreads();
  plan.warpsN = tile.getWarps() >= 2 ? 2 : 1;
  plan.warpsM = tile.getWarps() / plan.warpsN;
  plan.clustered = llvm::any_of(tile.getCluster(),
                                [](int64_t blocks) { return blocks != 1; });
  plan.n = n;
  plan.k = k;
  plan.numB = numB;
  plan.aType = aType;
  plan.bType = bType;
  plan.operands = operands;
  plan.blockScales = blockScales;
  return plan;
}

SmallVector<MemRefType>
kernel::MmaSyncGemmPlan::getSharedTypes(MLIRContext *ctx) const {
  int64_t rowStride = bk + chunkElements();
  SmallVector<MemRefType> types = {
      getWorkgroupBufferType({stages, bm, rowStride}, aType)};
  for (int64_t i = 0; i < numB; ++i)
    types.push_back(getWorkgroupBufferType({stages, bn, rowStride}, bType));
  if (operands == MmaSyncOperands::Fp8Decoded) {
    // Decoded f16 tiles, padded by 16 bytes like the rings.
    Type f16 = Float16Type::get(ctx);
    types.push_back(getWorkgroupBufferType({bm, bk + 8}, f16));
    types.push_back(getWorkgroupBufferType({bn, bk + 8}, f16));
  }
  return types;
}

int64_t kernel::MmaSyncGemmPlan::getSharedBytes() const {
  int64_t rowBytes = (bk + chunkElements()) * elementBytes();
  SmallVector<int64_t> bytes = {stages * bm * rowBytes};
  for (int64_t i = 0; i < numB; ++i)
    bytes.push_back(stages * bn * rowBytes);
  if (operands == MmaSyncOperands::Fp8Decoded)
    bytes.append({bm * (bk + 8) * 2, bn * (bk + 8) * 2});
  return getDynamicSharedBytes(bytes);
}

std::string kernel::MmaSyncGemmPlan::getUnsupportedReason(
    const KernelTarget &target) const {
  std::string reason;
  llvm::raw_string_ostream os(reason);
  int64_t chunksA = bm * bk / chunkElements(),
          chunksB = bn * bk / chunkElements();
  if (clustered)
    os << "the mma.sync mainloop takes no cluster (drop 'cluster')";
  else if (bk % mmaK() != 0 || bm % warpsM != 0 || bn % warpsN != 0 ||
           warpTileM() % 16 != 0 || warpTileN() % 8 != 0)
    os << "BK must be a multiple of " << mmaK() << " and each warp's tile ("
       << warpsM << "×" << warpsN << " warps) a multiple of 16×8";
  else if (bk % chunkElements() != 0 || chunksA % threads != 0 ||
           chunksB % threads != 0)
    os << "a stage's " << chunksA << " and " << chunksB
       << " 16-byte chunks must split evenly over its " << threads
       << " threads";
  else if (getSharedBytes() > getMaxSharedBytes(target))
    os << "needs " << getSharedBytes() << " bytes of shared memory; "
       << target.chip << " has at most " << getMaxSharedBytes(target)
       << " (fewer stages or a smaller tile)";
  else if (accumulatorsPerThread() > 192)
    os << "needs " << accumulatorsPerThread()
       << " accumulator registers per thread, at most 192 (more warps or a "
          "smaller tile)";
  return reason;
}

void kernel::buildMmaSyncGemm(ImplicitLocOpBuilder &b,
                              const MmaSyncGemmPlan &plan, Value a,
                              ArrayRef<Value> bs, Value rowsM, Value m0,
                              Value n0, KBlockScaleFn kBlockScale,
                              GemmEpilogueFn epilogue) {
  MLIRContext *ctx = b.getContext();
  Type f16 = b.getF16Type();
  const bool decoded = plan.operands == MmaSyncOperands::Fp8Decoded;
  const bool native = plan.operands == MmaSyncOperands::Fp8Native;
  // The element type the MMAs take (the decoded tiles are f16).
  Type mmaType = decoded ? f16 : plan.aType;
  const int64_t chunk = plan.chunkElements();
  const int64_t chunksPerRow = plan.bk / chunk;
  const int64_t numK = llvm::divideCeil(plan.k, plan.bk);
  SmallVector<Value> shared = carveDynamicShared(b, plan.getSharedTypes(ctx));
  Value ringA = shared[0];
  SmallVector<Value> ringsB(shared.begin() + 1, shared.begin() + 1 + plan.numB);
  Value halfA = decoded ? shared[1 + plan.numB] : Value();
  Value halfB = decoded ? shared[2 + plan.numB] : Value();
  auto tokenType = nvgpu::DeviceAsyncTokenType::get(ctx);

  Value c0 = cIndex(b, 0), c1 = cIndex(b, 1);
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value lane = arith::RemUIOp::create(b, tid, cIndex(b, 32));
  Value warp = arith::DivUIOp::create(b, tid, cIndex(b, 32));
  Value warpM = arith::DivUIOp::create(b, warp, cIndex(b, plan.warpsN));
  Value warpN = arith::RemUIOp::create(b, warp, cIndex(b, plan.warpsN));
  Value sizeK = cIndex(b, plan.k), sizeN = cIndex(b, plan.n);

  // The i-th 16-byte chunk this thread moves of a rows×BK tile: (row,
  // column).
  auto chunkAt = [&](int64_t i) -> std::pair<Value, Value> {
    Value c = arith::AddIOp::create(b, cIndex(b, i * plan.threads), tid);
    Value r = arith::DivUIOp::create(b, c, cIndex(b, chunksPerRow));
    Value kc = arith::MulIOp::create(
        b, arith::RemUIOp::create(b, c, cIndex(b, chunksPerRow)),
        cIndex(b, chunk));
    return {r, kc};
  };
  // Issues K tile `kt` into its slot if it exists, then commits a group
  // (possibly empty, so that group counting stays uniform).
  auto issueAndCommit = [&](Value kt) {
    Value slot = arith::RemUIOp::create(b, kt, cIndex(b, plan.stages));
    ifThen(b,
           arith::CmpIOp::create(b, arith::CmpIPredicate::ult, kt,
                                 cIndex(b, numK)),
           [&] {
             Value k0 = arith::MulIOp::create(b, kt, cIndex(b, plan.bk));
             auto copy = [&](Value global, Value ring, Value rowBase,
                             Value limit, int64_t rows) {
               for (int64_t i = 0; i < rows * chunksPerRow / plan.threads;
                    ++i) {
                 auto [r, kc] = chunkAt(i);
                 Value gRow = arith::AddIOp::create(b, rowBase, r);
                 Value gK = arith::AddIOp::create(b, k0, kc);
                 Value valid = arith::AndIOp::create(
                     b,
                     arith::CmpIOp::create(b, arith::CmpIPredicate::ult, gRow,
                                           limit),
                     arith::CmpIOp::create(b, arith::CmpIPredicate::ult, gK,
                                           sizeK));
                 // Invalid chunks copy nothing (zero fill) from a valid
                 // address.
                 nvgpu::DeviceAsyncCopyOp::create(
                     b, tokenType, ring, ValueRange{slot, r, kc}, global,
                     ValueRange{arith::SelectOp::create(b, valid, gRow, c0),
                                arith::SelectOp::create(b, valid, gK, c0)},
                     b.getIndexAttr(chunk),
                     arith::SelectOp::create(b, valid, cIndex(b, chunk), c0),
                     b.getUnitAttr());
               }
             };
             copy(a, ringA, m0, rowsM, plan.bm);
             for (int64_t i = 0; i < plan.numB; ++i)
               copy(bs[i], ringsB[i], n0, sizeN, plan.bn);
           });
    NVVM::CpAsyncCommitGroupOp::create(b);
  };
  // FP8 byte tile (slot) → f16 tile, one 16-byte chunk at a time.
  auto decodeTile = [&](Value slot, Value bytes, Value halves, int64_t rows) {
    Type fp8 = cast<MemRefType>(bytes.getType()).getElementType();
    auto fp8Vec = VectorType::get({chunk}, fp8);
    auto halfVec = VectorType::get({chunk}, f16);
    for (int64_t i = 0; i < rows * chunksPerRow / plan.threads; ++i) {
      auto [r, kc] = chunkAt(i);
      Value raw =
          vector::LoadOp::create(b, fp8Vec, bytes, ValueRange{slot, r, kc},
                                 false, llvm::MaybeAlign(16));
      Value wide = arith::TruncFOp::create(b, halfVec, convertFp8ToF32(b, raw));
      vector::StoreOp::create(b, wide, halves, ValueRange{r, kc}, false,
                              llvm::MaybeAlign(16));
    }
  };

  // Prologue: the first stages − 1 tiles in flight.
  for (int64_t s = 0; s + 1 < plan.stages; ++s)
    issueAndCommit(cIndex(b, s));

  // Accumulators: 4 f32 per 16×8 tile, per B operand; with block scales a
  // second set for the current 128 of K.
  const int64_t mt = plan.mmaTilesM(), nt = plan.mmaTilesN();
  const int64_t perB = mt * nt * 4, perSet = plan.numB * perB;
  Value zero = cF32(b, 0.0f);
  Value warpRow = arith::MulIOp::create(b, warpM, cIndex(b, plan.warpTileM()));
  Value warpCol = arith::MulIOp::create(b, warpN, cIndex(b, plan.warpTileN()));
  SmallVector<Value> inits(perSet * (plan.blockScales ? 2 : 1), zero);
  auto loop = scf::ForOp::create(b, c0, cIndex(b, numK), c1, inits);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value kt = loop.getInductionVar();
    // Tile kt has landed and every warp is done with tile kt − 1: its slot
    // takes tile kt + stages − 1. (Refilling before this barrier would let
    // a fast warp overwrite a slot a slower one still reads.)
    if (plan.stages == 1) {
      gpu::BarrierOp::create(b);
      issueAndCommit(kt);
      NVVM::CpAsyncWaitGroupOp::create(b, b.getI32IntegerAttr(0));
      gpu::BarrierOp::create(b);
    } else {
      NVVM::CpAsyncWaitGroupOp::create(
          b, b.getI32IntegerAttr(static_cast<int32_t>(plan.stages - 2)));
      gpu::BarrierOp::create(b);
      issueAndCommit(arith::AddIOp::create(b, kt, cIndex(b, plan.stages - 1)));
    }
    Value slot = arith::RemUIOp::create(b, kt, cIndex(b, plan.stages));
    if (decoded) {
      decodeTile(slot, ringA, halfA, plan.bm);
      decodeTile(slot, ringsB[0], halfB, plan.bn);
      gpu::BarrierOp::create(b);
    }

    SmallVector<Value> acc(loop.getRegionIterArgs().begin(),
                           loop.getRegionIterArgs().end());
    // Block scales accumulate into the partial set (the second half).
    int64_t target = plan.blockScales ? perSet : 0;
    // 16-bit tiles: ldmatrix (A x4: row lane % 16, column (lane / 16)·8; B
    // x2: row lane % 8, column ((lane / 8) % 2)·8). FP8 byte tiles: the FP8
    // types have no LLVM equivalent for nvgpu.ldmatrix's lowering, so each
    // 32-bit register is a 4-byte shared load at its place in the m16n8k32
    // fragment (rows lane/4 and +8, bytes 4·(lane%4) and +16).
    Value aRow = arith::RemUIOp::create(b, lane, cIndex(b, 16));
    Value aCol = arith::MulIOp::create(
        b, arith::DivUIOp::create(b, lane, cIndex(b, 16)), cIndex(b, 8));
    Value bRow = arith::RemUIOp::create(b, lane, cIndex(b, 8));
    Value bCol = arith::MulIOp::create(
        b,
        arith::RemUIOp::create(b, arith::DivUIOp::create(b, lane, cIndex(b, 8)),
                               cIndex(b, 2)),
        cIndex(b, 8));
    Value laneGroup = arith::DivUIOp::create(b, lane, cIndex(b, 4));
    Value quad = arith::MulIOp::create(
        b, arith::RemUIOp::create(b, lane, cIndex(b, 4)), cIndex(b, 4));
    auto i32x1 = VectorType::get({1}, b.getI32Type());
    auto fp8Register = [&](Value tile, Value row, Value col) -> Value {
      Type fp8 = cast<MemRefType>(tile.getType()).getElementType();
      Value bytes = vector::LoadOp::create(b, VectorType::get({4}, fp8), tile,
                                           ValueRange{slot, row, col}, false,
                                           llvm::MaybeAlign(4));
      Value word = vector::BitCastOp::create(b, i32x1, bytes);
      return vector::ExtractOp::create(b, word, ArrayRef<int64_t>{0});
    };
    // ldmatrix from a ring slot, or from a decoded tile (no slot index).
    auto ldmatrix = [&](Value tile, int64_t tiles, Value row, Value col) {
      SmallVector<Value> indices;
      if (!decoded)
        indices.push_back(slot);
      indices.append({row, col});
      return toMmaRegisters(b, nvgpu::LdMatrixOp::create(
                                   b, VectorType::get({tiles, 2}, mmaType),
                                   tile, indices, /*transpose=*/false, tiles));
    };
    auto aFragment = [&](Value rowBase, Value kOff) -> SmallVector<Value> {
      if (!native)
        return ldmatrix(decoded ? halfA : ringA, 4,
                        arith::AddIOp::create(b, rowBase, aRow),
                        arith::AddIOp::create(b, kOff, aCol));
      SmallVector<Value> regs;
      for (int64_t r = 0; r < 4; ++r) {
        Value row = arith::AddIOp::create(
            b, arith::AddIOp::create(b, rowBase, laneGroup),
            cIndex(b, (r % 2) * 8));
        Value col = arith::AddIOp::create(
            b, arith::AddIOp::create(b, kOff, quad), cIndex(b, (r / 2) * 16));
        regs.push_back(fp8Register(ringA, row, col));
      }
      return regs;
    };
    auto bFragment = [&](Value ring, Value rowBase,
                         Value kOff) -> SmallVector<Value> {
      if (!native)
        return ldmatrix(decoded ? halfB : ring, 2,
                        arith::AddIOp::create(b, rowBase, bRow),
                        arith::AddIOp::create(b, kOff, bCol));
      SmallVector<Value> regs;
      Value row = arith::AddIOp::create(b, rowBase, laneGroup);
      for (int64_t r = 0; r < 2; ++r)
        regs.push_back(fp8Register(
            ring, row,
            arith::AddIOp::create(b, arith::AddIOp::create(b, kOff, quad),
                                  cIndex(b, r * 16))));
      return regs;
    };
    for (int64_t kk = 0; kk < plan.bk / plan.mmaK(); ++kk) {
      Value kOff = cIndex(b, kk * plan.mmaK());
      SmallVector<SmallVector<Value>> aFrag;
      // bFrag[j · numB + i]: B operand i's fragment of column tile j.
      SmallVector<SmallVector<Value>> bFrag;
      for (int64_t i = 0; i < mt; ++i)
        aFrag.push_back(aFragment(
            arith::AddIOp::create(b, warpRow, cIndex(b, i * 16)), kOff));
      for (int64_t j = 0; j < nt; ++j) {
        Value rowBase = arith::AddIOp::create(b, warpCol, cIndex(b, j * 8));
        for (int64_t i = 0; i < plan.numB; ++i)
          bFrag.push_back(bFragment(ringsB[i], rowBase, kOff));
      }
      for (int64_t i = 0; i < mt; ++i)
        for (int64_t j = 0; j < nt; ++j)
          for (int64_t which = 0; which < plan.numB; ++which) {
            int64_t base = target + which * perB + (i * nt + j) * 4;
            ArrayRef<Value> accSlice = ArrayRef<Value>(acc).slice(base, 4);
            ArrayRef<Value> bRegs = bFrag[j * plan.numB + which];
            SmallVector<Value> updated =
                native ? mmaSyncFp8(b, aFrag[i], bRegs, accSlice, plan.aType,
                                    plan.bType)
                       : mmaSync16816(b, aFrag[i], bRegs, accSlice, mmaType);
            std::copy(updated.begin(), updated.end(), acc.begin() + base);
          }
    }

    if (plan.blockScales) {
      // At the end of each 128-wide step of K (or of K), fold the partial
      // sums into the main ones with this block tile's scale pair.
      int64_t stepsPerBlock = 128 / plan.bk;
      Value nextKt = arith::AddIOp::create(b, kt, c1);
      Value endOfBlock = arith::OrIOp::create(
          b,
          arith::CmpIOp::create(
              b, arith::CmpIPredicate::eq,
              arith::RemUIOp::create(b, nextKt, cIndex(b, stepsPerBlock)), c0),
          arith::CmpIOp::create(b, arith::CmpIPredicate::eq, nextKt,
                                cIndex(b, numK)));
      Value scale = kBlockScale(
          b, arith::DivUIOp::create(b, kt, cIndex(b, stepsPerBlock)));
      for (int64_t e = 0; e < perSet; ++e) {
        Value folded = arith::AddFOp::create(
            b, acc[e], arith::MulFOp::create(b, acc[perSet + e], scale));
        acc[e] = arith::SelectOp::create(b, endOfBlock, folded, acc[e]);
        acc[perSet + e] =
            arith::SelectOp::create(b, endOfBlock, zero, acc[perSet + e]);
      }
    }
    scf::YieldOp::create(b, acc);
  }

  // Lane l holds rows l/4 and l/4 + 8, columns 2·(l%4) and 2·(l%4) + 1 of
  // each 16×8 tile: pair (i·nt + j)·2 + h is row warpRow + 16i + 8h + l/4.
  Value laneRow = arith::DivUIOp::create(b, lane, cIndex(b, 4));
  Value laneCol = arith::MulIOp::create(
      b, arith::RemUIOp::create(b, lane, cIndex(b, 4)), cIndex(b, 2));
  SmallVector<Value> cols;
  for (int64_t j = 0; j < nt; ++j)
    cols.push_back(arith::AddIOp::create(
        b,
        arith::AddIOp::create(
            b, n0, arith::AddIOp::create(b, warpCol, cIndex(b, j * 8))),
        laneCol));
  AccumulatorPairs pairs;
  for (int64_t i = 0; i < mt; ++i) {
    Value rows[2];
    for (int64_t h = 0; h < 2; ++h)
      rows[h] = arith::AddIOp::create(
          b,
          arith::AddIOp::create(
              b, m0,
              arith::AddIOp::create(b, warpRow, cIndex(b, i * 16 + h * 8))),
          laneRow);
    for (int64_t j = 0; j < nt; ++j)
      for (int64_t h = 0; h < 2; ++h) {
        pairs.rows.push_back(rows[h]);
        pairs.cols.push_back(cols[j]);
      }
  }
  SmallVector<SmallVector<Value>> results;
  for (int64_t i = 0; i < plan.numB; ++i)
    results.emplace_back(loop.getResults().begin() + i * perB,
                         loop.getResults().begin() + (i + 1) * perB);
  epilogue(b, results, pairs, /*staged=*/nullptr);
}
