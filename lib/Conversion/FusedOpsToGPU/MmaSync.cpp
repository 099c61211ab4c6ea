//===- MmaSync.cpp - warp-level mma.sync building blocks ------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "MmaSync.h"

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
  auto resultType = LLVM::LLVMStructType::getLiteral(
      b.getContext(), SmallVector<Type>(4, f32));
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
  std::string text =
      ("mma.sync.aligned.m16n8k32.row.col.f32." + ptxType(aType) + "." +
       ptxType(bType) +
       ".f32 {$0, $1, $2, $3}, {$4, $5, $6, $7}, {$8, $9}, "
       "{$10, $11, $12, $13};")
          .str();
  Type f32 = b.getF32Type();
  auto resultType = LLVM::LLVMStructType::getLiteral(
      b.getContext(), SmallVector<Type>(4, f32));
  SmallVector<Value> operands(a.begin(), a.end());
  operands.append(bRegs.begin(), bRegs.end());
  operands.append(acc.begin(), acc.end());
  Value result = LLVM::InlineAsmOp::create(
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
