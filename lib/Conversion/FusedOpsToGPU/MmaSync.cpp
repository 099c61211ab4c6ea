//===- MmaSync.cpp - warp-level mma.sync building blocks ------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "MmaSync.h"

#include "KernelBuilder.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

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
    function_ref<void(ImplicitLocOpBuilder &, gpu::GPUFuncOp)> buildBody) {
  SmallVector<Type> argTypes;
  for (Value arg : args)
    argTypes.push_back(arg.getType());
  gpu::GPUFuncOp kernel;
  {
    OpBuilder::InsertionGuard guard(b);
    kernel = createKernel(b, b.getLoc(), module, name, argTypes, threads,
                          /*workgroupBuffers=*/{});
    b.setInsertionPoint(kernel.getBody().front().getTerminator());
    buildBody(b, kernel);
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
  double out = double(t.m) * t.n * t.outBytes;
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
