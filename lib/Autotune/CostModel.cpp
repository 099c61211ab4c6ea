//===- CostModel.cpp - analytical time of a tiled kernel ------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Autotune/CostModel.h"

#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace mlir::fusedops;
using namespace mlir::fusedops::autotune;

ChipModel ChipModel::get(const KernelTarget &target) {
  const ChipInfo &info = *target.info;
  const ChipRates &rates = info.rates;
  ChipModel c;
  c.name = std::string(rates.card) + " (" + info.name + ")";
  c.smCount = rates.smCount;
  c.dramBytesPerSecond = rates.dramBytesPerSecond;
  c.dramLatencySeconds = rates.dramLatencySeconds;
  c.l2BytesPerSecond = rates.l2BytesPerSecond;
  c.tensorF16FlopsPerSecond = rates.tensorF16FlopsPerSecond;
  c.tensorFp8FlopsPerSecond = rates.tensorFp8FlopsPerSecond;
  c.fmaFlopsPerSecond = rates.fmaFlopsPerSecond;
  c.registersPerSm = info.registersPerSm;
  c.maxRegistersPerThread = info.maxRegistersPerThread;
  c.maxThreadsPerSm = info.maxThreadsPerSm;
  c.maxBlocksPerSm = info.maxBlocksPerSm;
  c.sharedBytesPerSm = info.sharedBytesPerSm;
  c.maxSharedBytesPerBlock = info.maxSharedBytesPerBlock;
  c.syncSecondsPerWarp = rates.syncSecondsPerWarp;
  c.kStepSeconds = rates.kStepSeconds;
  c.ringStepSeconds = rates.ringStepSeconds;
  c.itemSeconds = rates.itemSeconds;
  c.launchSeconds = rates.launchSeconds;
  return c;
}

FailureOr<CostEstimate> autotune::estimateCost(const KernelResources &r,
                                               const ChipModel &chip,
                                               std::string &reason) {
  if (r.blocks <= 0 || r.threadsPerBlock <= 0) {
    reason = "launches no threads";
    return failure();
  }
  // Occupancy: the tightest of threads, registers (allocated per warp in
  // units of 256), shared memory and the block limit.
  Occupancy occupancy =
      getOccupancy(r, SmLimits{chip.registersPerSm, chip.maxThreadsPerSm,
                               chip.maxBlocksPerSm, chip.sharedBytesPerSm});
  int64_t registers = occupancy.registersPerThread;
  if (registers > chip.maxRegistersPerThread) {
    reason = "needs about " + std::to_string(registers) +
             " registers per thread; at most " +
             std::to_string(chip.maxRegistersPerThread);
    return failure();
  }
  int64_t warps = llvm::divideCeil(r.threadsPerBlock, 32);
  int64_t blocksPerSm = occupancy.blocksPerSm;
  if (r.sharedBytesPerBlock > chip.maxSharedBytesPerBlock) {
    reason = "needs " + std::to_string(r.sharedBytesPerBlock) +
             " bytes of shared memory; a block has " +
             std::to_string(chip.maxSharedBytesPerBlock);
    return failure();
  }
  if (blocksPerSm < 1) {
    reason =
        occupancy.byRegisters < 1
            ? "a block needs " + std::to_string(occupancy.registersPerBlock) +
                  " registers; an SM has " + std::to_string(chip.registersPerSm)
            : "a block does not fit on an SM";
    return failure();
  }

  CostEstimate e;
  // Blocks that can run at once, and how full the last wave is.
  int64_t concurrent = std::min(r.blocks, blocksPerSm * chip.smCount);
  e.blocksPerSm = blocksPerSm;
  int64_t waves = llvm::divideCeil(r.blocks, blocksPerSm * chip.smCount);
  e.waveEfficiency =
      double(r.blocks) / double(waves * blocksPerSm * chip.smCount);
  // A grid smaller than the SM count leaves SMs idle: rates below scale with
  // the SMs that have blocks. (The wave efficiency is reported, not used: the
  // GEMM term counts whole waves and the row term whole rounds.)
  double activeSms = std::min<double>(chip.smCount, r.blocks);

  // Memory: bandwidth × latency bytes must be in flight to sustain the
  // bandwidth (Little's law); SMs without blocks issue no requests.
  double inFlight = double(concurrent) * r.bytesInFlightPerBlock;
  double needed = chip.dramBytesPerSecond * chip.dramLatencySeconds;
  e.latencyCover = needed > 0 ? std::min(1.0, inFlight / needed) : 1.0;
  double bandwidthShare = activeSms / chip.smCount;
  // DRAM streams at the busiest SM's pace. In one wave the blocks go round
  // the SMs, and an SM with ceil(blocks / SMs) of them streams their bytes
  // at its share of the bandwidth (fewer blocks than SMs: the others issue
  // nothing; FP8 decode, 172 tiles of 64×64 on 132 SMs took 30 µs, 115
  // tiles of 64×96 27 µs on an H200, docs/perf/gemm-engine.md v11). So does
  // an SM that holds one block at a time (a persistent grid's tiles): it
  // streams its tiles one after another (gated decode, 172 tiles of 64×64 on
  // 132 SMs took 71 µs against 55 µs for 115 of 64×96; with 8-stage rings
  // counted in, the rule for one wave alone ranked 64×64 first, docs/perf
  // v12). Over several waves of several blocks per SM, blocks start
  // wherever one ends, which evens the SMs out.
  double dramShare =
      r.blocks > concurrent && blocksPerSm > 1
          ? 1.0
          : double(r.blocks) /
                (std::ceil(double(r.blocks) / chip.smCount) * chip.smCount);
  double dramSeconds =
      r.dramBytes /
      (chip.dramBytesPerSecond * std::max(e.latencyCover, 1e-3) * dramShare);
  double l2Seconds = r.l2Bytes / (chip.l2BytesPerSecond * bandwidthShare);
  e.memorySeconds = std::max(dramSeconds, l2Seconds);

  // Compute: the unit's peak on the SMs in use, scaled by issue efficiency,
  // by a warp per SM scheduler (four per SM) and, for pipelined kernels, by
  // how much of the load latency the other stages and blocks hide.
  double peak = chip.fmaFlopsPerSecond;
  if (r.unit == KernelResources::ComputeUnit::TensorF16)
    peak = chip.tensorF16FlopsPerSecond;
  else if (r.unit == KernelResources::ComputeUnit::TensorFp8)
    peak = chip.tensorFp8FlopsPerSecond;
  double residentWarps = double(blocksPerSm * warps);
  double schedulers = std::min(1.0, residentWarps / 4.0);
  double perSm = peak / chip.smCount * r.issueEfficiency * schedulers;
  if (r.stages > 0 && r.kSteps > 0) {
    // A wave: every resident block walks its K steps; each step is the
    // block's math at its share of the SM, stretched where neither the
    // pipeline's other stages nor the other blocks cover the load latency,
    // plus the step's fixed cost.
    double stepMath = r.flops / double(r.blocks) / double(r.kSteps) *
                      double(std::min<int64_t>(blocksPerSm, r.blocks)) / perSm;
    // The block's own later stages hide its loads; other blocks do so half
    // the time (they wait at their own barriers too).
    double hidden =
        (0.5 * double(blocksPerSm - 1) + double(r.stages - 1)) * stepMath;
    // Tile loads wait loadLatencyFactor idle DRAM latencies (about two under
    // a GEMM's full memory traffic).
    double loadLatency = r.loadLatencyFactor * chip.dramLatencySeconds;
    double pipeline =
        std::min(1.0, (hidden + stepMath) / (loadLatency + stepMath));
    // The step's barriers stall its block; other resident blocks fill the
    // gap (the constant is the cost with two blocks per SM). A TMA ring's
    // step has no block barrier: its MMA warps wait on the slot's mbarrier
    // while the producer keeps the other slots loading.
    double stepCost =
        r.tmaRing ? chip.ringStepSeconds
                  : chip.kStepSeconds * (1.0 + 1.0 / double(blocksPerSm)) / 1.5;
    // A cluster's blocks refill a slot once both gave it back (a remote
    // arrival, and the slower block sets the pace): half a ring step more.
    // Fitted to the interleaved H200 sweep of docs/perf/gemm-engine.md v9,
    // where 2×1 clusters measured 3 % slower to 5 % faster than the same
    // tiles alone (FP8 within the noise, the gated MLP 1-3.5 % faster) while
    // the L2 bytes they save alone made the model predict 3-6 % faster
    // everywhere.
    if (r.tmaRing && r.clusterBlocks > 1)
      stepCost += 0.5 * chip.ringStepSeconds;
    e.computeSeconds =
        double(waves) * double(r.kSteps) * (stepMath / pipeline + stepCost);
  } else {
    e.computeSeconds = r.flops / (perSm * activeSms);
  }
  e.computeSeconds +=
      r.auxFlops / (chip.fmaFlopsPerSecond * activeSms / chip.smCount);

  // Row kernels: a wave of blocks waits, per step, for its dependent loads
  // and its reduction; nothing else hides that.
  int64_t rounds = llvm::divideCeil(r.blocks, concurrent);
  double latency = double(rounds) * double(r.serialSteps) *
                   (r.dependentLoads * chip.dramLatencySeconds +
                    double(r.syncWarps) * chip.syncSecondsPerWarp +
                    double(r.itemsPerThread) * chip.itemSeconds);

  double body =
      std::cbrt(std::pow(e.memorySeconds, 3) + std::pow(e.computeSeconds, 3)) +
      latency;
  double launch = chip.launchSeconds * r.launches;
  e.seconds = body + launch;
  e.limiter = launch > body ? "launch"
              : latency > std::max(e.memorySeconds, e.computeSeconds)
                  ? "latency"
              : e.memorySeconds >= e.computeSeconds ? "memory"
                                                    : "compute";
  return e;
}
