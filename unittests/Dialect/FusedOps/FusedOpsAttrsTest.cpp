//===- FusedOpsAttrsTest.cpp - tile attribute and enums --------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "gtest/gtest.h"

#include <ostream>
#include <string>

using namespace mlir;
using namespace mlir::fusedops;

namespace {
class FusedOpsAttrsTest : public ::testing::Test {
protected:
  FusedOpsAttrsTest() { context.loadDialect<FusedOpsDialect>(); }

  /// Parses `text`, collecting any diagnostic in `diagnostics`.
  Attribute parse(StringRef text) {
    ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
      diagnostics += diag.str() + "\n";
      return success();
    });
    return parseAttribute(text, &context);
  }

  static std::string print(Attribute attr) {
    std::string text;
    llvm::raw_string_ostream os(text);
    attr.print(os);
    return text;
  }

  MLIRContext context;
  std::string diagnostics;
};

TEST_F(FusedOpsAttrsTest, TileBuildsWithDefaults) {
  auto tile = TileConfigAttr::get(&context, {128, 128, 32}, /*warps=*/4,
                                  /*stages=*/1, /*cluster=*/{});
  EXPECT_EQ(tile.getBlock().size(), 3u);
  EXPECT_EQ(tile.getBlock()[2], 32);
  EXPECT_EQ(tile.getNumThreads(), 128);
  EXPECT_TRUE(tile.getCluster().empty());
  // The default stage count is not printed; an empty cluster neither.
  EXPECT_EQ(print(tile), "#fusedops.tile<block = [128, 128, 32], warps = 4>");
}

TEST_F(FusedOpsAttrsTest, TileRoundTripsEveryParameter) {
  const char *text = "#fusedops.tile<block = [128, 256, 64], warps = 8, "
                     "stages = 4, cluster = [2, 1]>";
  Attribute attr = parse(text);
  ASSERT_TRUE(attr) << diagnostics;
  auto tile = dyn_cast<TileConfigAttr>(attr);
  ASSERT_TRUE(tile);
  EXPECT_EQ(tile.getWarps(), 8);
  EXPECT_EQ(tile.getStages(), 4);
  ASSERT_EQ(tile.getCluster().size(), 2u);
  EXPECT_EQ(tile.getCluster()[0], 2);
  EXPECT_EQ(print(tile), text);
  EXPECT_EQ(parse(print(tile)), attr);
}

struct InvalidTile {
  const char *name;
  const char *text;
  const char *message;
};
/// Names the case in gtest's output instead of dumping its bytes.
void PrintTo(const InvalidTile &tile, std::ostream *os) { *os << tile.name; }

class InvalidTileTest : public FusedOpsAttrsTest,
                        public ::testing::WithParamInterface<InvalidTile> {};

TEST_P(InvalidTileTest, IsRejectedWithReason) {
  EXPECT_FALSE(parse(GetParam().text));
  EXPECT_NE(diagnostics.find(GetParam().message), std::string::npos)
      << "diagnostics were: " << diagnostics;
}

INSTANTIATE_TEST_SUITE_P(
    Tile, InvalidTileTest,
    ::testing::Values(
        InvalidTile{"EmptyBlock", "#fusedops.tile<block = [], warps = 4>",
                    "'block' must list 1 to 3 tile sizes, got 0"},
        InvalidTile{"LongBlock", "#fusedops.tile<block = [1, 2, 3, 4], warps = 4>",
                    "'block' must list 1 to 3 tile sizes, got 4"},
        InvalidTile{"ZeroBlock", "#fusedops.tile<block = [128, 0], warps = 4>",
                    "'block' sizes must be in [1, 16777216], got 0"},
        InvalidTile{"HugeBlock", "#fusedops.tile<block = [128, 36028797018963968], warps = 4>",
                    "'block' sizes must be in [1, 16777216], got 36028797018963968"},
        InvalidTile{"WarpsNotPowerOfTwo", "#fusedops.tile<block = [128], warps = 3>",
                    "'warps' must be a power of two in [1, 32], got 3"},
        InvalidTile{"TooManyWarps", "#fusedops.tile<block = [128], warps = 64>",
                    "'warps' must be a power of two in [1, 32], got 64"},
        InvalidTile{"ZeroStages", "#fusedops.tile<block = [128], warps = 4, stages = 0>",
                    "'stages' must be in [1, 64], got 0"},
        InvalidTile{"HugeStages", "#fusedops.tile<block = [128], warps = 4, stages = 1125899906842624>",
                    "'stages' must be in [1, 64], got 1125899906842624"},
        InvalidTile{"ClusterRank", "#fusedops.tile<block = [128], warps = 4, cluster = "
                    "[1, 1, 1, 1]>",
                    "'cluster' must have at most 3 dimensions, got 4"},
        InvalidTile{"ZeroCluster", "#fusedops.tile<block = [128], warps = 4, cluster = [0]>",
                    "'cluster' dimensions must be positive, got 0"},
        InvalidTile{"ClusterTooLarge", "#fusedops.tile<block = [128], warps = 4, cluster = "
                    "[4, 8]>",
                    "'cluster' holds 32 thread blocks; at most 16"},
        InvalidTile{"UnknownKey", "#fusedops.tile<block = [64], warps = 4, unroll = 2>",
                    "unknown tile parameter 'unroll'; expected 'block', "
                    "'warps', 'stages' or 'cluster'"},
        InvalidTile{"DuplicateKey", "#fusedops.tile<block = [64], warps = 4, warps = 8>",
                    "tile parameter 'warps' is given twice"},
        InvalidTile{"MissingWarps", "#fusedops.tile<block = [64]>",
                    "a tile needs 'block' and 'warps'"}),
    [](const ::testing::TestParamInfo<InvalidTile> &info) {
      return std::string(info.param.name);
    });

TEST_F(FusedOpsAttrsTest, TileKeysMayComeInAnyOrder) {
  Attribute attr =
      parse("#fusedops.tile<stages = 2, warps = 2, block = [32, 8]>");
  ASSERT_TRUE(attr) << diagnostics;
  EXPECT_EQ(print(attr),
            "#fusedops.tile<block = [32, 8], warps = 2, stages = 2>");
}

TEST_F(FusedOpsAttrsTest, TileGetCheckedReportsInsteadOfAborting) {
  auto tile = TileConfigAttr::getChecked(
      [&] { return emitError(UnknownLoc::get(&context)); }, &context,
      ArrayRef<int64_t>{64}, /*warps=*/int64_t{5}, /*stages=*/int64_t{1},
      ArrayRef<int64_t>{});
  EXPECT_FALSE(tile);
}

TEST_F(FusedOpsAttrsTest, EnumsStringifyAndParse) {
  EXPECT_EQ(stringifyRopeStyle(RopeStyle::gptj), "gptj");
  EXPECT_EQ(symbolizeRopeStyle("neox"), RopeStyle::neox);
  EXPECT_FALSE(symbolizeRopeStyle("llama").has_value());
  EXPECT_EQ(stringifyActivation(Activation::gelu_tanh), "gelu_tanh");
  EXPECT_EQ(symbolizeActivation("silu"), Activation::silu);
  EXPECT_EQ(symbolizeScaleGranularity("block128"), ScaleGranularity::block128);
  EXPECT_EQ(stringifyScaleGranularity(ScaleGranularity::row), "row");

  Attribute attr = parse("#fusedops<activation gelu>");
  ASSERT_TRUE(attr) << diagnostics;
  auto activation = dyn_cast<ActivationAttr>(attr);
  ASSERT_TRUE(activation);
  EXPECT_EQ(activation.getValue(), Activation::gelu);
  EXPECT_FALSE(parse("#fusedops<activation relu>"));
}

TEST_F(FusedOpsAttrsTest, ScaleShapesFollowGranularity) {
  using Shape = SmallVector<int64_t>;
  EXPECT_EQ(getScaleShape(ScaleGranularity::tensor, 300, 4096), Shape{});
  EXPECT_EQ(getScaleShape(ScaleGranularity::row, 300, 4096), Shape{300});
  EXPECT_EQ(getScaleShape(ScaleGranularity::block128, 300, 4096),
            (Shape{3, 32}));
  EXPECT_EQ(getScaleShape(ScaleGranularity::block128, 128, 129), (Shape{1, 2}));
  EXPECT_EQ(getScaleShape(ScaleGranularity::block128, ShapedType::kDynamic, 1),
            (Shape{ShapedType::kDynamic, 1}));
}

TEST_F(FusedOpsAttrsTest, Fp8MaxFinite) {
  Builder b(&context);
  EXPECT_EQ(getFp8MaxFinite(b.getType<Float8E4M3FNType>()), 448.0);
  EXPECT_EQ(getFp8MaxFinite(b.getType<Float8E5M2Type>()), 57344.0);
  EXPECT_FALSE(getFp8MaxFinite(b.getF16Type()).has_value());
  EXPECT_FALSE(getFp8MaxFinite(b.getType<Float8E4M3FNUZType>()).has_value());
}
} // namespace
