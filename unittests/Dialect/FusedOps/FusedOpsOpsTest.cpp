//===- FusedOpsOpsTest.cpp - building and verifying ops through C++ -------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "gtest/gtest.h"

#include <string>

using namespace mlir;
using namespace mlir::fusedops;

namespace {
/// Builds ops inside a function-less module from block arguments of a
/// detached block, so each test states exactly the operand types it needs.
class FusedOpsOpsTest : public ::testing::Test {
protected:
  FusedOpsOpsTest() : builder(&context) {
    context.loadDialect<FusedOpsDialect>();
    module = ModuleOp::create(builder.getUnknownLoc());
    builder.setInsertionPointToEnd(module->getBody());
  }

  /// A value of `type`: an argument of a scratch block.
  Value value(Type type) {
    return scratch.addArgument(type, builder.getUnknownLoc());
  }
  Value tensor(ArrayRef<int64_t> shape, Type elementType) {
    return value(RankedTensorType::get(shape, elementType));
  }
  Value memref(ArrayRef<int64_t> shape, Type elementType) {
    return value(MemRefType::get(shape, elementType));
  }

  /// Verifies `op`, returning the diagnostics it emitted ("" if it passed).
  std::string verifyMessages(Operation *op) {
    std::string messages;
    ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
      messages += diag.str();
      return success();
    });
    if (succeeded(verify(op)))
      return "";
    return messages.empty() ? "<failed without a message>" : messages;
  }

  Type f16() { return builder.getF16Type(); }
  Type bf16() { return builder.getBF16Type(); }
  Type f32() { return builder.getF32Type(); }
  Type i32() { return builder.getI32Type(); }
  Type e4m3() { return builder.getType<Float8E4M3FNType>(); }
  Type e5m2() { return builder.getType<Float8E5M2Type>(); }

  static constexpr int64_t kDyn = ShapedType::kDynamic;

  MLIRContext context;
  OpBuilder builder;
  /// Declared before `module` so that the ops using its arguments are
  /// destroyed first.
  Block scratch;
  OwningOpRef<ModuleOp> module;
};

TEST_F(FusedOpsOpsTest, RmsNormRopeTensorForm) {
  Value x = tensor({kDyn, 16, 256}, f16());
  auto op = RmsNormRopeOp::create(
      builder, builder.getUnknownLoc(), x, tensor({256}, f16()),
      tensor({32, 64}, f32()), tensor({32, 64}, f32()),
      tensor({kDyn, 16, 256}, f16()), /*headDim=*/64, /*eps=*/1e-6f,
      RopeStyle::neox);
  EXPECT_EQ(verifyMessages(op), "");
  ASSERT_EQ(op->getNumResults(), 1u);
  EXPECT_EQ(op->getResult(0).getType(), x.getType());
  EXPECT_EQ(op.getRotaryDim(), 64);
  EXPECT_EQ(op.getRopeStyle(), RopeStyle::neox);
  EXPECT_FALSE(op.getPositions());
  auto dps = cast<DestinationStyleOpInterface>(op.getOperation());
  EXPECT_EQ(dps.getNumDpsInputs(), 4);
  EXPECT_EQ(dps.getNumDpsInits(), 1);
  EXPECT_TRUE(dps.hasPureTensorSemantics());
}

TEST_F(FusedOpsOpsTest, RmsNormRopePartialRotaryWithPositions) {
  auto op = RmsNormRopeOp::create(
      builder, builder.getUnknownLoc(), tensor({4, 512}, bf16()),
      tensor({512}, bf16()), tensor({kDyn, 32}, bf16()),
      tensor({kDyn, 32}, bf16()), tensor({4, 512}, bf16()), /*headDim=*/128,
      /*eps=*/1e-5f, RopeStyle::gptj, /*positions=*/tensor({4}, i32()),
      /*rotaryFraction=*/0.25f);
  EXPECT_EQ(verifyMessages(op), "");
  EXPECT_EQ(op.getRotaryDim(), 32);
  EXPECT_TRUE(op.getPositions());
}

TEST_F(FusedOpsOpsTest, RmsNormRopeBufferFormHasNoResults) {
  auto op = RmsNormRopeOp::create(
      builder, builder.getUnknownLoc(), memref({2, 8, 128}, f32()),
      memref({128}, f32()), memref({8, 64}, f32()), memref({8, 64}, f32()),
      memref({2, 8, 128}, f32()), /*headDim=*/64, /*eps=*/1e-6f,
      RopeStyle::neox);
  EXPECT_EQ(verifyMessages(op), "");
  EXPECT_EQ(op->getNumResults(), 0u);
  EXPECT_TRUE(cast<DestinationStyleOpInterface>(op.getOperation())
                  .hasPureBufferSemantics());
}

TEST_F(FusedOpsOpsTest, RmsNormRopeVerifierNamesTheOperand) {
  auto op = RmsNormRopeOp::create(
      builder, builder.getUnknownLoc(), tensor({2, 8, 256}, f16()),
      tensor({128}, f16()), tensor({8, 64}, f32()), tensor({8, 64}, f32()),
      tensor({2, 8, 256}, f16()), /*headDim=*/64, /*eps=*/1e-6f,
      RopeStyle::neox);
  EXPECT_EQ(verifyMessages(op),
            "'fusedops.rmsnorm_rope' op expects 'weight' to have shape [256] "
            "(the hidden size of 'input'), got 'tensor<128xf16>'");
}

TEST_F(FusedOpsOpsTest, RmsNormRopeRejectsOddRotaryDims) {
  auto op = RmsNormRopeOp::create(
      builder, builder.getUnknownLoc(), tensor({2, 8, 40}, f16()),
      tensor({40}, f16()), tensor({8, 5}, f32()), tensor({8, 5}, f32()),
      tensor({2, 8, 40}, f16()), /*headDim=*/20, /*eps=*/1e-6f,
      RopeStyle::neox, Value(), /*rotaryFraction=*/0.25f);
  EXPECT_NE(verifyMessages(op).find("even, positive number of rotated "
                                    "dimensions per head"),
            std::string::npos);
}

TEST_F(FusedOpsOpsTest, GatedMlpBuildsAndChecksWeights) {
  auto ok = GatedMlpOp::create(
      builder, builder.getUnknownLoc(), tensor({kDyn, 64}, bf16()),
      tensor({96, 64}, bf16()), tensor({96, 64}, bf16()),
      tensor({kDyn, 96}, bf16()), Activation::gelu_tanh);
  EXPECT_EQ(verifyMessages(ok), "");
  EXPECT_EQ(ok.getActivation(), Activation::gelu_tanh);

  auto bad = GatedMlpOp::create(
      builder, builder.getUnknownLoc(), tensor({8, 64}, bf16()),
      tensor({96, 64}, bf16()), tensor({96, 32}, bf16()),
      tensor({8, 96}, bf16()), Activation::silu);
  EXPECT_EQ(verifyMessages(bad),
            "'fusedops.gated_mlp' op expects 'up_weight' to have shape "
            "[96, 64] (the shape of 'gate_weight'), got 'tensor<96x32xbf16>'");
}

TEST_F(FusedOpsOpsTest, Fp8GemmGranularitiesAndBias) {
  struct Case {
    ScaleGranularity granularity;
    SmallVector<int64_t> lhsScale, rhsScale;
  };
  for (const Case &c :
       {Case{ScaleGranularity::tensor, {}, {}},
        Case{ScaleGranularity::row, {200}, {300}},
        Case{ScaleGranularity::block128, {2, 4}, {3, 4}}}) {
    auto op = Fp8GemmOp::create(
        builder, builder.getUnknownLoc(), tensor({200, 512}, e4m3()),
        tensor({300, 512}, e5m2()), tensor(c.lhsScale, f32()),
        tensor(c.rhsScale, f32()), tensor({200, 300}, bf16()), c.granularity,
        /*bias=*/tensor({300}, f32()));
    EXPECT_EQ(verifyMessages(op), "")
        << stringifyScaleGranularity(c.granularity).str();
    EXPECT_TRUE(op.getBias());
  }
}

TEST_F(FusedOpsOpsTest, Fp8GemmRejectsWrongScaleShape) {
  auto op = Fp8GemmOp::create(
      builder, builder.getUnknownLoc(), tensor({200, 512}, e4m3()),
      tensor({300, 512}, e4m3()), tensor({200}, f32()), tensor({200}, f32()),
      tensor({200, 300}, f16()), ScaleGranularity::row);
  EXPECT_EQ(verifyMessages(op),
            "'fusedops.fp8_gemm' op expects 'rhs_scale' to have shape [300] "
            "(one per row group of 'rhs'), got 'tensor<200xf32>'");
}

TEST_F(FusedOpsOpsTest, QuantizeDynamicAndStatic) {
  Value x = tensor({kDyn, 256}, f16());
  auto dynamicOp = QuantizeOp::create(
      builder, builder.getUnknownLoc(), x,
      ValueRange{tensor({kDyn, 256}, e4m3()), tensor({kDyn, 2}, f32())},
      ScaleGranularity::block128);
  EXPECT_EQ(verifyMessages(dynamicOp), "");
  EXPECT_TRUE(dynamicOp.isDynamic());
  EXPECT_EQ(dynamicOp->getNumResults(), 2u);

  auto staticOp = QuantizeOp::create(
      builder, builder.getUnknownLoc(), x,
      ValueRange{tensor({kDyn, 256}, e5m2())}, ScaleGranularity::tensor,
      /*scale=*/tensor({}, f32()));
  EXPECT_EQ(verifyMessages(staticOp), "");
  EXPECT_FALSE(staticOp.isDynamic());
  EXPECT_EQ(staticOp->getNumResults(), 1u);

  auto missingScaleInit = QuantizeOp::create(
      builder, builder.getUnknownLoc(), x,
      ValueRange{tensor({kDyn, 256}, e4m3())}, ScaleGranularity::row);
  EXPECT_NE(verifyMessages(missingScaleInit)
                .find("expects 2 'outs' operands (dynamic: the values and "
                      "the computed scales, and with block128 scales "
                      "optionally the values transposed), got 1"),
            std::string::npos);
}

TEST_F(FusedOpsOpsTest, DequantizeChecksElementTypes) {
  auto ok = DequantizeOp::create(
      builder, builder.getUnknownLoc(), tensor({8, 16}, e4m3()),
      tensor({8}, f32()), tensor({8, 16}, f32()), ScaleGranularity::row);
  EXPECT_EQ(verifyMessages(ok), "");

  auto bad = DequantizeOp::create(
      builder, builder.getUnknownLoc(), tensor({8, 16}, f16()),
      tensor({8}, f32()), tensor({8, 16}, f32()), ScaleGranularity::row);
  EXPECT_EQ(verifyMessages(bad),
            "'fusedops.dequantize' op expects 'input' to have f8E4M3FN or "
            "f8E5M2 elements, got 'f16'");
}

TEST_F(FusedOpsOpsTest, TileConfigThroughTheInterface) {
  auto op = GatedMlpOp::create(
      builder, builder.getUnknownLoc(), tensor({8, 64}, f16()),
      tensor({32, 64}, f16()), tensor({32, 64}, f16()),
      tensor({8, 32}, f16()), Activation::silu);
  auto tileable = cast<TileConfigurableOpInterface>(op.getOperation());
  EXPECT_EQ(tileable.getTileBlockRank(), 3u);
  EXPECT_FALSE(tileable.getTileConfig());

  tileable.setTileConfig(
      TileConfigAttr::get(&context, {64, 64, 32}, 4, 3, {}));
  EXPECT_EQ(verifyMessages(op), "");
  EXPECT_EQ(op.getTileAttr().getStages(), 3);

  tileable.setTileConfig(TileConfigAttr::get(&context, {64, 64}, 4, 1, {}));
  EXPECT_EQ(verifyMessages(op),
            "'fusedops.gated_mlp' op expects 'tile' to have 3 block sizes, "
            "got 2");

  tileable.setTileConfig(nullptr);
  EXPECT_FALSE(tileable.getTileConfig());
  EXPECT_EQ(verifyMessages(op), "");
}

TEST_F(FusedOpsOpsTest, MixedTensorAndMemrefOperandsAreRejected) {
  auto op = DequantizeOp::create(
      builder, builder.getUnknownLoc(), tensor({8, 16}, e4m3()),
      tensor({}, f32()), memref({8, 16}, f32()), ScaleGranularity::tensor);
  EXPECT_NE(verifyMessages(op).find("all operands to be tensors (tensor "
                                    "form) or all to be memrefs"),
            std::string::npos);
}

TEST_F(FusedOpsOpsTest, CloneWithNewOperandsKeepsAttributes) {
  auto op = RmsNormRopeOp::create(
      builder, builder.getUnknownLoc(), tensor({2, 8, 128}, f16()),
      tensor({128}, f16()), tensor({8, 64}, f32()), tensor({8, 64}, f32()),
      tensor({2, 8, 128}, f16()), /*headDim=*/64, /*eps=*/1e-6f,
      RopeStyle::gptj);
  op->setAttr("user.mark", builder.getUnitAttr());
  SmallVector<Value> operands = {
      memref({2, 8, 128}, f16()), memref({128}, f16()), memref({8, 64}, f32()),
      memref({8, 64}, f32()), memref({2, 8, 128}, f16())};
  Operation *clone = cloneWithNewOperands(builder, op, operands, {});
  auto cloned = cast<RmsNormRopeOp>(clone);
  EXPECT_EQ(verifyMessages(clone), "");
  EXPECT_EQ(cloned.getHeadDim(), 64u);
  EXPECT_EQ(cloned.getRopeStyle(), RopeStyle::gptj);
  EXPECT_TRUE(clone->hasAttr("user.mark"));
  EXPECT_EQ(clone->getNumResults(), 0u);
}
} // namespace
