//===- TuningCache.h - measured tiles, kept across runs ---------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// The tuning cache holds the tile the tuner measured fastest for a problem:
// an op with its shape class, element types and attributes, on a chip, built
// by one compiler and ptxas, timed under one driver. `fusedops-autotune`
// reads it; the tuner (`fusedops-tune`) writes it.
//
// The file is JSON (docs/autotuning.md documents it):
//
//   {"format": "fusedops-tuning-cache", "version": 1, "entries": [
//     {"op": "fusedops.gated_mlp", "shape_class": "M<=4096 N=11008 K=4096",
//      "dtypes": "bf16", "attributes": "activation = silu",
//      "chip": "sm_90a", "compiler": "fusedops-capi 3; llvm 22.1.8;
//      ptxas 13.0", "driver": "580.159.04", "tile": "#fusedops.tile<block =
//      [128, 64, 32], warps = 4, stages = 2>", "microseconds": 2901.5,
//      "candidates": 18, "device": "NVIDIA H200"}]}
//
// Writers merge under an exclusive lock on `<file>.lock` and replace the file
// atomically (write a temporary, rename), so concurrent tuners lose nothing
// and readers never see half a file. A file that does not parse, or has
// another format or version, is reported and ignored, never trusted; a
// writer moves it aside to a new `<file>.corrupt-XXXXXX` before writing a
// fresh one. Only regular files of at most 64 MiB, nested at most 16 deep,
// are read (a FIFO, /dev/zero or a directory is refused unopened), and
// times must be finite.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_AUTOTUNE_TUNINGCACHE_H
#define FUSEDOPS_AUTOTUNE_TUNINGCACHE_H

#include "mlir/Support/LLVM.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::fusedops::autotune {

/// What a measurement is valid for. Two problems with equal keys (driver
/// aside) get the same tile.
struct TuningKey {
  /// The op's name, e.g. "fusedops.gated_mlp".
  std::string op;
  /// Problem sizes, the row count rounded up to a power of two (one entry
  /// serves a range of batch sizes), e.g. "M<=4096 N=11008 K=4096".
  std::string shapeClass;
  /// Operand and result element types, e.g. "f8E4M3FN,f8E4M3FN,f32,f32->bf16".
  std::string dtypes;
  /// The op's attributes but its tile, printed, e.g. "activation = silu".
  std::string attributes;
  /// Target chip, e.g. "sm_90a".
  std::string chip;
  /// The compiler and ptxas that built the kernel (fusedopsCompilerVersion).
  std::string compiler;

  bool operator==(const TuningKey &other) const;
  /// One line naming every field, for messages.
  std::string str() const;
};

/// One measured winner.
struct TuningEntry {
  TuningKey key;
  /// The driver the time was measured under, e.g. "580.159.04".
  std::string driver;
  /// The winning tile, as `#fusedops.tile<...>` text.
  std::string tile;
  /// Its median time.
  double microseconds = 0;
  /// How many candidates were measured.
  int64_t candidates = 0;
  /// The GPU it was measured on, e.g. "NVIDIA H200".
  std::string device;
};

class TuningCache {
public:
  static constexpr llvm::StringLiteral kFormat = "fusedops-tuning-cache";
  static constexpr int64_t kVersion = 1;

  /// Reads the cache at `path`. A missing file is an empty cache. A file that
  /// cannot be read, does not parse or has another format or version gives
  /// an empty cache and a `warning` that says why and what to do.
  static TuningCache load(StringRef path, std::string &warning);

  /// Parses cache text; std::nullopt with `error` if it is not a cache of
  /// this version.
  static std::optional<TuningCache> parse(StringRef text, std::string &error);

  /// The cache as JSON text (entries in a stable order).
  std::string toJson() const;

  /// The entry for `key` measured under `driver`, or with an empty `driver`
  /// the fastest entry for `key` under any driver; null if there is none.
  const TuningEntry *lookup(const TuningKey &key, StringRef driver = "") const;

  /// Adds `entry`, replacing one with the same key and driver.
  void insert(TuningEntry entry);

  ArrayRef<TuningEntry> getEntries() const { return entries; }

  /// Merges `entries` into the file at `path` (created with its folder if
  /// missing) under an exclusive lock, replacing the file atomically. A file
  /// there that reads but is not a valid cache is renamed to a new
  /// `<path>.corrupt-XXXXXX` and reported in `warning`. Fails with `error`
  /// (touching nothing) if an entry's time is not positive and finite, or
  /// what is at `path` cannot be read as a file (a directory, FIFO, device,
  /// no permission), locked or written.
  static LogicalResult record(StringRef path, ArrayRef<TuningEntry> entries,
                              std::string &error, std::string &warning);

private:
  /// The fields of `key`, joined with NULs: the index's key.
  static std::string getIndexKey(const TuningKey &key);

  std::vector<TuningEntry> entries;
  /// Positions in `entries` per key (one per driver): insert and lookup
  /// without a scan, so loading n entries is O(n), not O(n²).
  llvm::StringMap<llvm::SmallVector<size_t, 2>> byKey;
};

} // namespace mlir::fusedops::autotune

#endif // FUSEDOPS_AUTOTUNE_TUNINGCACHE_H
