//===- CostModelTest.cpp - the cost model against hand-computed cases -----===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Autotune/Autotune.h"

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::autotune;

namespace {

/// A chip with round numbers, so that every expectation below can be worked
/// out by hand.
ChipModel roundChip() {
  ChipModel c;
  c.name = "round";
  c.smCount = 100;
  c.dramBytesPerSecond = 1e12;
  c.dramLatencySeconds = 1e-6;
  c.l2BytesPerSecond = 1e13;
  c.tensorF16FlopsPerSecond = 1e14;
  c.tensorFp8FlopsPerSecond = 2e14;
  c.fmaFlopsPerSecond = 1e14;
  c.registersPerSm = 65536;
  c.maxRegistersPerThread = 255;
  c.maxThreadsPerSm = 2048;
  c.maxBlocksPerSm = 32;
  c.sharedBytesPerSm = 100 * 1024;
  c.maxSharedBytesPerBlock = 48 * 1024;
  c.syncSecondsPerWarp = 1e-7;
  c.kStepSeconds = 0.5e-6;
  c.ringStepSeconds = 0.1e-6;
  c.itemSeconds = 1e-7;
  c.launchSeconds = 0;
  return c;
}

/// 1056 blocks of 256 threads streaming 1 GB with plenty in flight.
KernelResources streaming() {
  KernelResources r;
  r.blocks = 1056;
  r.threadsPerBlock = 256;
  r.registersPerThread = 32;
  r.dramBytes = 1e9;
  r.l2Bytes = 1e9;
  r.flops = 1e6;
  r.bytesInFlightPerBlock = 1e4;
  return r;
}

CostEstimate estimate(const KernelResources &r, const ChipModel &chip) {
  std::string reason;
  FailureOr<CostEstimate> e = estimateCost(r, chip, reason);
  EXPECT_TRUE(succeeded(e)) << reason;
  return succeeded(e) ? *e : CostEstimate();
}

TEST(CostModel, StreamingKernelRunsAtDramBandwidth) {
  CostEstimate e = estimate(streaming(), roundChip());
  // Threads allow 2048/256 = 8 blocks, registers 65536/(8 warps·1024) = 8.
  EXPECT_EQ(e.blocksPerSm, 8);
  // 800 blocks at once hold 8 MB in flight; 1 TB/s × 1 µs needs 1 MB.
  EXPECT_DOUBLE_EQ(e.latencyCover, 1.0);
  // 1 GB at 1 TB/s; the 10 µs of L2 time and 10 ns of math hardly add.
  EXPECT_NEAR(e.memorySeconds, 1e-3, 1e-12);
  EXPECT_NEAR(e.seconds, 1e-3, 1e-6);
  EXPECT_EQ(e.limiter, "memory");
  // 1056 blocks in waves of 800.
  EXPECT_NEAR(e.waveEfficiency, 1056.0 / 1600.0, 1e-12);
}

TEST(CostModel, TooFewBytesInFlightStretchMemoryTime) {
  KernelResources r = streaming();
  r.bytesInFlightPerBlock = 100; // 800 × 100 B = 80 KB of the 1 MB needed.
  CostEstimate e = estimate(r, roundChip());
  EXPECT_NEAR(e.latencyCover, 0.08, 1e-12);
  EXPECT_NEAR(e.memorySeconds, 1e-3 / 0.08, 1e-9);
}

TEST(CostModel, OneWaveStreamsAtTheBusiestSmsPace) {
  // 150 blocks in one wave (800 fit): 50 SMs hold two, so those stream two
  // blocks' bytes at their hundredth of the bandwidth while the others
  // finish early: 1 GB at 1 TB/s × 150 / 200.
  KernelResources r = streaming();
  r.blocks = 150;
  r.bytesInFlightPerBlock = 1e5; // 15 MB in flight: latency covered.
  CostEstimate e = estimate(r, roundChip());
  EXPECT_NEAR(e.memorySeconds, 1e-3 * 200.0 / 150.0, 1e-12);
  // 100 blocks (one per SM) and 200 (two on every SM) keep the full rate.
  r.blocks = 100;
  EXPECT_NEAR(estimate(r, roundChip()).memorySeconds, 1e-3, 1e-12);
  r.blocks = 200;
  EXPECT_NEAR(estimate(r, roundChip()).memorySeconds, 1e-3, 1e-12);
  // Over several waves of several blocks per SM, blocks start wherever one
  // ends: the full rate (StreamingKernelRunsAtDramBandwidth).
}

TEST(CostModel, OneBlockPerSmStreamsItsTilesInTurn) {
  // A persistent grid of one block per SM (a decode GEMM): 150 tiles on 100
  // SMs leave 50 SMs streaming two tiles' bytes, at any number of waves.
  KernelResources r = streaming();
  r.blocks = 150;
  r.threadsPerBlock = 1024; // 64 registers × 1024 threads: one per SM.
  r.registersPerThread = 64;
  r.bytesInFlightPerBlock = 1e5;
  CostEstimate e = estimate(r, roundChip());
  ASSERT_EQ(e.blocksPerSm, 1);
  EXPECT_NEAR(e.memorySeconds, 1e-3 * 200.0 / 150.0, 1e-12);
  r.blocks = 200;
  EXPECT_NEAR(estimate(r, roundChip()).memorySeconds, 1e-3, 1e-12);
}

TEST(CostModel, RegistersAndSharedMemoryLimitOccupancy) {
  KernelResources r = streaming();
  r.registersPerThread = 200; // 6400 per warp, 51200 per block: one fits.
  EXPECT_EQ(estimate(r, roundChip()).blocksPerSm, 1);
  r = streaming();
  r.sharedBytesPerBlock = 30 * 1024; // 100 KB / (30 KB + 1 KB reserved).
  EXPECT_EQ(estimate(r, roundChip()).blocksPerSm, 3);
}

TEST(CostModel, TilesThatCannotRunAreRejectedWithTheReason) {
  ChipModel chip = roundChip();
  std::string reason;
  KernelResources r = streaming();
  r.registersPerThread = 300;
  EXPECT_TRUE(failed(estimateCost(r, chip, reason)));
  EXPECT_EQ(reason, "needs about 304 registers per thread; at most 255");
  r = streaming();
  r.sharedBytesPerBlock = 60 * 1024;
  EXPECT_TRUE(failed(estimateCost(r, chip, reason)));
  EXPECT_EQ(reason, "needs 61440 bytes of shared memory; a block has 49152");
  r = streaming();
  r.threadsPerBlock = 1024;
  r.registersPerThread = 128; // 32 warps × 4096 = 131072 > 65536.
  EXPECT_TRUE(failed(estimateCost(r, chip, reason)));
  EXPECT_EQ(reason, "a block needs 131072 registers; an SM has 65536");
}

/// 200 blocks of 4 warps, one per SM: two waves of 10 K steps of 1 MFLOP.
KernelResources gemm(int64_t stages) {
  KernelResources r;
  r.blocks = 200;
  r.threadsPerBlock = 128;
  r.registersPerThread = 248;
  r.sharedBytesPerBlock = 40 * 1024;
  r.flops = 200 * 10 * 1e6;
  r.unit = KernelResources::ComputeUnit::TensorF16;
  r.stages = stages;
  r.kSteps = 10;
  r.bytesInFlightPerBlock = 1e6;
  return r;
}

TEST(CostModel, GemmWavesOfKStepsAndTheirFixedCost) {
  // 248 registers: 7936 per warp, 31744 per block: 2 blocks by registers,
  // 2 by shared memory (100 / 41 KB).
  CostEstimate e = estimate(gemm(3), roundChip());
  EXPECT_EQ(e.blocksPerSm, 2);
  // 200 blocks fill one wave of 2 × 100. A step: 1 MFLOP × 2 blocks at
  // 1 TFLOP/s per SM = 2 µs; two more stages (4 µs) and half the other
  // block (1 µs) hide the 2 µs load; plus the fixed 0.5 µs (the cost at two
  // blocks per SM): 10 × 2.5 µs.
  EXPECT_NEAR(e.computeSeconds, 25e-6, 1e-12);
  EXPECT_EQ(e.limiter, "compute");
}

TEST(CostModel, ShallowPipelinesExposeLoadLatency) {
  KernelResources r = gemm(1);
  r.threadsPerBlock = 256; // 63488 registers: one block per SM, 2 waves.
  CostEstimate e = estimate(r, roundChip());
  EXPECT_EQ(e.blocksPerSm, 1);
  // A step: 1 µs of math and nothing to hide the 2 µs load under traffic
  // (twice the idle 1 µs): 3 µs; the fixed cost, alone on its SM, is
  // 0.5 µs × (1 + 1) / 1.5; 10 steps; 2 waves.
  double fixed = 0.5e-6 * 2 / 1.5;
  EXPECT_NEAR(e.computeSeconds, 2 * 10 * (3e-6 + fixed), 1e-12);
  // Two stages: the next tile's loads hide 1 µs of the 2: a step takes
  // 1 µs × 3/2.
  r.stages = 2;
  EXPECT_NEAR(estimate(r, roundChip()).computeSeconds,
              2 * 10 * (1.5e-6 + fixed), 1e-12);
  // Loads that wait four idle latencies (the sm_90a mainloop's factor is
  // set by its strategy): 4 µs, 1 µs hidden, a step takes 1 µs × 5/2.
  r.loadLatencyFactor = 4;
  EXPECT_NEAR(estimate(r, roundChip()).computeSeconds,
              2 * 10 * (2.5e-6 + fixed), 1e-12);
}

TEST(CostModel, TmaRingStepsCostTheChipsRingStep) {
  // The same wave as ShallowPipelinesExposeLoadLatency's, through a
  // warp-specialized TMA ring: a step's fixed cost is the chip's ring step
  // (0.1 µs), whatever the blocks per SM, not the block barriers' 0.5 µs ×
  // (1 + 1) / 1.5.
  KernelResources r = gemm(1);
  r.threadsPerBlock = 256;
  r.tmaRing = true;
  EXPECT_NEAR(estimate(r, roundChip()).computeSeconds, 2 * 10 * (3e-6 + 0.1e-6),
              1e-12);
}

TEST(CostModel, RowKernelsWaitForDependentLoadsAndReductions) {
  KernelResources r = streaming();
  r.dramBytes = r.l2Bytes = 0;
  r.flops = 0;
  r.dependentLoads = 2;
  r.syncWarps = 8;
  r.itemsPerThread = 4;
  r.serialSteps = 3;
  // 1056 blocks, 800 at once: 2 rounds × 3 steps × (2 µs + 0.8 µs + 0.4 µs).
  CostEstimate e = estimate(r, roundChip());
  EXPECT_NEAR(e.seconds, 2 * 3 * 3.2e-6, 1e-12);
  EXPECT_EQ(e.limiter, "latency");
}

TEST(CostModel, LaunchesAddUp) {
  ChipModel chip = roundChip();
  chip.launchSeconds = 2e-6;
  KernelResources r = streaming();
  r.dramBytes = r.l2Bytes = 1e3;
  r.flops = 0;
  r.launches = 3;
  CostEstimate e = estimate(r, chip);
  EXPECT_NEAR(e.seconds, 6e-6 + 1e-9, 1e-10);
  EXPECT_EQ(e.limiter, "launch");
}

//===----------------------------------------------------------------------===//
// On real ops: the strategies' resources, the ranking and the tuning key.
//===----------------------------------------------------------------------===//

class OnOps : public ::testing::Test {
protected:
  OnOps() {
    context.loadDialect<FusedOpsDialect, func::FuncDialect,
                        memref::MemRefDialect>();
  }
  Operation *parseOp(StringRef source) {
    module = parseSourceString<ModuleOp>(source, &context);
    if (!module)
      return nullptr;
    Operation *found = nullptr;
    module->walk([&](TileConfigurableOpInterface op) { found = op; });
    return found;
  }
  MLIRContext context;
  OwningOpRef<ModuleOp> module;
};

const char *kGatedMlp = R"mlir(
func.func @mlp(%x: memref<3000x4096xbf16>, %wg: memref<11008x4096xbf16>,
               %wu: memref<11008x4096xbf16>, %o: memref<3000x11008xbf16>) {
  fusedops.gated_mlp ins(%x, %wg, %wu : memref<3000x4096xbf16>, memref<11008x4096xbf16>, memref<11008x4096xbf16>) outs(%o : memref<3000x11008xbf16>) activation = silu
  return
}
)mlir";

TEST_F(OnOps, GatedMlpResourcesFollowTheTile) {
  Operation *op = parseOp(kGatedMlp);
  ASSERT_NE(op, nullptr);
  KernelTarget target = *KernelTarget::parse("sm_80");
  const KernelStrategy *strategy = selectKernelStrategy(op, target);
  ASSERT_NE(strategy, nullptr);
  auto tile = TileConfigAttr::get(&context, {128, 64, 32}, 4, 2, {});
  KernelResources r = strategy->estimateResources(op, tile, target);
  // cdiv(3000, 128) = 24 row blocks × cdiv(11008, 64) = 172 column blocks.
  EXPECT_EQ(r.blocks, 24 * 172);
  EXPECT_EQ(r.threadsPerBlock, 128);
  // 2 stages × (128 + 2·64) rows × (32 + 8) padded columns × 2 bytes.
  EXPECT_EQ(r.sharedBytesPerBlock, 2 * 256 * 40 * 2);
  // Warp tile 64×32: 4×4 mma tiles × 4 floats × 2 (gate, up) accumulators,
  // 4·4 + 4·2·2 fragment registers, 40 more.
  EXPECT_EQ(r.registersPerThread, 128 + 32 + 40);
  EXPECT_DOUBLE_EQ(r.flops, 2.0 * 3000 * 11008 * 4096 * 2);
  EXPECT_DOUBLE_EQ(r.dramBytes, 3000.0 * 4096 * 2 + 2 * 11008.0 * 4096 * 2 +
                                    3000.0 * 11008 * 2);
  EXPECT_DOUBLE_EQ(r.l2Bytes, 3000.0 * 4096 * 2 * 172 +
                                  2 * 11008.0 * 4096 * 2 * 24 +
                                  3000.0 * 11008 * 2);
  EXPECT_EQ(r.kSteps, 128);
  EXPECT_EQ(r.stages, 2);
  EXPECT_EQ(r.unit, KernelResources::ComputeUnit::TensorF16);
}

TEST_F(OnOps, WgmmaGatedMlpResourcesFollowTheTile) {
  Operation *op = parseOp(kGatedMlp);
  ASSERT_NE(op, nullptr);
  KernelTarget target = *KernelTarget::parse("sm_90a");
  const KernelStrategy *strategy = selectKernelStrategy(op, target);
  ASSERT_NE(strategy, nullptr);
  EXPECT_EQ(strategy->getName(), "gated-mlp-sm90a-wgmma");
  auto tile = TileConfigAttr::get(&context, {128, 128, 64}, 8, 4, {});
  KernelResources r = strategy->estimateResources(op, tile, target);
  // cdiv(3000, 128) = 24 row blocks × cdiv(11008, 128) = 86 column blocks.
  EXPECT_EQ(r.blocks, 24 * 86);
  // Two MMA warpgroups and the producer.
  EXPECT_EQ(r.threadsPerBlock, 384);
  // 4 stages × (128 + 2·128) rows × 128-byte K rows, the epilogue's store
  // buffers (8 MMA warps × 2 × 16 rows of 128 bytes: N = 11008 bf16 rows
  // are whole 16-byte units), a full and an empty mbarrier per stage, and
  // 1 KiB to align.
  EXPECT_EQ(r.sharedBytesPerBlock,
            4 * 384 * 128 + 8 * 2 * 16 * 128 + 4 * 16 + 1024);
  // The launch bound 65536 / 384 (setmaxnreg moves registers within it).
  EXPECT_EQ(r.registersPerThread, 168);
  // The MMAs multiply whole 128-row tiles: 24 · 128 rows.
  EXPECT_DOUBLE_EQ(r.flops, 2.0 * 24 * 128 * 11008 * 4096 * 2);
  EXPECT_EQ(r.kSteps, 64);
  EXPECT_EQ(r.stages, 4);
  // The producer keeps 3 of the 4 slots in flight.
  EXPECT_DOUBLE_EQ(r.bytesInFlightPerBlock, 3.0 * 384 * 128);
  EXPECT_EQ(r.loadLatencyFactor, 3);
  EXPECT_EQ(r.unit, KernelResources::ComputeUnit::TensorF16);
}

// The sm_90a FP8 ranking against the H200's exhaustive sweep of the TMA
// mainloop (docs/perf/gemm-engine-h200/v6-tma/evidence.json): the model's
// first tile must be one the sweep measured within 96 % of its best. With
// the producer's loads waiting two idle DRAM latencies (the mma.sync fit)
// the model took 3 stages where 4 measured faster (91.9 % at 4096³).
TEST_F(OnOps, WgmmaFp8RanksAMeasuredNearBestTileFirst) {
  struct Sweep {
    const char *m, *n, *k;
    std::vector<std::string> nearBest;
  } sweeps[] = {
      {"4096",
       "4096",
       "4096",
       {"#fusedops.tile<block = [128, 128, 128], warps = 8, stages = 4>",
        "#fusedops.tile<block = [128, 128, 128], warps = 8, stages = 5>",
        "#fusedops.tile<block = [128, 128, 128], warps = 8, stages = 6>",
        "#fusedops.tile<block = [128, 192, 128], warps = 8, stages = 4>"}},
      {"8192",
       "8192",
       "8192",
       {"#fusedops.tile<block = [128, 192, 128], warps = 8, stages = 3>",
        "#fusedops.tile<block = [128, 192, 128], warps = 8, stages = 4>",
        "#fusedops.tile<block = [128, 192, 128], warps = 8, stages = 5>",
        "#fusedops.tile<block = [128, 128, 128], warps = 8, stages = 4>",
        "#fusedops.tile<block = [128, 128, 128], warps = 8, stages = 6>"}},
      {"4096",
       "14336",
       "4096",
       {"#fusedops.tile<block = [128, 192, 128], warps = 8, stages = 4>"}},
  };
  for (const Sweep &sweep : sweeps) {
    std::string a = std::string(sweep.m) + "x" + sweep.k + "xf8E4M3FN",
                b = std::string(sweep.n) + "x" + sweep.k + "xf8E4M3FN",
                o = std::string(sweep.m) + "x" + sweep.n + "xbf16";
    std::string source =
        "func.func @f(%a: memref<" + a + ">, %b: memref<" + b +
        ">, %s: memref<f32>, %o: memref<" + o +
        ">) {\n  fusedops.fp8_gemm ins(%a, %b, %s, %s : memref<" + a +
        ">, memref<" + b + ">, memref<f32>, memref<f32>) outs(%o : memref<" +
        o + ">) granularity = tensor\n  return\n}\n";
    Operation *op = parseOp(source);
    ASSERT_NE(op, nullptr) << source;
    FailureOr<TileRanking> ranking =
        rankTiles(op, *KernelTarget::parse("sm_90a"));
    ASSERT_TRUE(succeeded(ranking));
    std::string first;
    llvm::raw_string_ostream os(first);
    os << ranking->accepted.front().tile;
    EXPECT_TRUE(llvm::is_contained(sweep.nearBest, first))
        << sweep.m << "x" << sweep.n << "x" << sweep.k << ": " << first;
  }
}

TEST_F(OnOps, RankingChecksEveryCandidateAndOrdersByPrediction) {
  Operation *op = parseOp(kGatedMlp);
  ASSERT_NE(op, nullptr);
  FailureOr<TileRanking> ranking =
      rankTiles(op, *KernelTarget::parse("sm_90a"));
  ASSERT_TRUE(succeeded(ranking));
  EXPECT_EQ(ranking->strategy->getName(), "gated-mlp-sm90a-wgmma");
  ASSERT_FALSE(ranking->accepted.empty());
  for (size_t i = 1; i < ranking->accepted.size(); ++i)
    EXPECT_LE(ranking->accepted[i - 1].cost.seconds,
              ranking->accepted[i].cost.seconds);
  // 128×128×64 in 6 stages needs 6·(128 + 256)·128 bytes, 32 KiB of store
  // buffers, 6·16 of mbarriers and 1 KiB to align: 328800 bytes.
  auto huge = TileConfigAttr::get(&context, {128, 128, 64}, 8, 6, {});
  auto it = llvm::find_if(
      ranking->rejected, [&](const RejectedTile &t) { return t.tile == huge; });
  ASSERT_NE(it, ranking->rejected.end());
  EXPECT_NE(it->reason.find("needs 328800 bytes of shared memory; sm_90a has "
                            "at most 232448"),
            std::string::npos)
      << it->reason;
  // Every candidate once: accepted and rejected do not overlap.
  for (const RankedTile &accepted : ranking->accepted)
    for (const RejectedTile &rejected : ranking->rejected)
      EXPECT_NE(accepted.tile, rejected.tile);
  // The same module ranks the same way.
  FailureOr<TileRanking> again = rankTiles(op, *KernelTarget::parse("sm_90a"));
  ASSERT_TRUE(succeeded(again));
  EXPECT_EQ(again->accepted.front().tile, ranking->accepted.front().tile);
}

TEST_F(OnOps, TuningKeyNamesShapeClassTypesAndAttributes) {
  Operation *op = parseOp(kGatedMlp);
  ASSERT_NE(op, nullptr);
  TuningKey key = getTuningKey(op, "sm_90a", "test-compiler");
  EXPECT_EQ(key.op, "fusedops.gated_mlp");
  EXPECT_EQ(key.shapeClass, "M<=4096 N=11008 K=4096");
  EXPECT_EQ(key.dtypes, "bf16,bf16,bf16,bf16");
  EXPECT_EQ(key.attributes, "activation = #fusedops<activation silu>");
  EXPECT_EQ(key.chip, "sm_90a");
  EXPECT_EQ(key.compiler, "test-compiler");
  // The tile is what is being chosen: it is not part of the key.
  cast<TileConfigurableOpInterface>(op).setTileConfig(
      TileConfigAttr::get(&context, {64, 64, 32}, 4, 2, {}));
  EXPECT_EQ(getTuningKey(op, "sm_90a", "test-compiler"), key);
}

TEST_F(OnOps, EveryChipRanksEveryOpWithFiniteTimes) {
  // sm_89 runs the FP8 mma.sync GEMM on the Ampere model: it needs an FP8
  // rate there too.
  Operation *op = parseOp(R"mlir(
func.func @g(%a: memref<256x512xf8E4M3FN>, %b: memref<1024x512xf8E4M3FN>, %sa: memref<f32>, %sb: memref<f32>, %o: memref<256x1024xbf16>) {
  fusedops.fp8_gemm ins(%a, %b, %sa, %sb : memref<256x512xf8E4M3FN>, memref<1024x512xf8E4M3FN>, memref<f32>, memref<f32>) outs(%o : memref<256x1024xbf16>) granularity = tensor
  return
}
)mlir");
  ASSERT_NE(op, nullptr);
  for (StringRef chip : {"sm_80", "sm_86", "sm_89", "sm_90a"}) {
    FailureOr<TileRanking> ranking = rankTiles(op, *KernelTarget::parse(chip));
    ASSERT_TRUE(succeeded(ranking)) << chip.str();
    ASSERT_FALSE(ranking->accepted.empty()) << chip.str();
    for (const RankedTile &tile : ranking->accepted)
      EXPECT_TRUE(std::isfinite(tile.cost.seconds) && tile.cost.seconds > 0)
          << chip.str();
  }
}

TEST_F(OnOps, DynamicRowsHaveTheirOwnClass) {
  Operation *op = parseOp(R"mlir(
func.func @q(%x: memref<?x4096xbf16>, %q: memref<?x4096xf8E4M3FN>, %s: memref<f32>) {
  fusedops.quantize ins(%x : memref<?x4096xbf16>) outs(%q, %s : memref<?x4096xf8E4M3FN>, memref<f32>) granularity = tensor
  return
}
)mlir");
  ASSERT_NE(op, nullptr);
  EXPECT_EQ(getTuningKey(op, "sm_80", "c").shapeClass, "M=? K=4096");
}

} // namespace
