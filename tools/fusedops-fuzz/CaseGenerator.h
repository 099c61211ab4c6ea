//===- CaseGenerator.h - fusedops-fuzz's inputs -----------------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Every input of fusedops-fuzz is a function of (seed, case index): a case can
// be regenerated from its two numbers alone, on any machine, which is what a
// reproducer needs. Two kinds of input:
//  - generated: one fusedops op in a function, with shapes, element types,
//    attributes, tiles, memory spaces and layouts drawn from values that are
//    valid, at the edges (0, 1, dynamic, 2^24, 2^62) or wrong for the op;
//  - mutated: a split of a lit test file with one to four edits (numbers,
//    types, keywords, lines, bytes, tiles, memory spaces).
// And hostile tuning-cache files, made in a folder the caller gives.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_FUZZ_CASEGENERATOR_H
#define FUSEDOPS_FUZZ_CASEGENERATOR_H

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace fusedops::fuzz {

/// The random source of one case: seeded from (seed, index) only.
class CaseRng {
public:
  CaseRng(uint64_t seed, uint64_t index, uint64_t stream = 0);
  uint64_t next() { return engine(); }
  /// Uniform in [0, n).
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
  bool chance(double p) {
    return std::uniform_real_distribution<double>(0, 1)(engine) < p;
  }
  template <typename T> const T &pick(const std::vector<T> &values) {
    return values[below(values.size())];
  }

private:
  std::mt19937_64 engine;
};

struct FuzzCase {
  /// "generated:<op>" or "mutated:<file>#<split>".
  std::string origin;
  std::string source;
  /// NVVM optimisation level for the pipeline.
  unsigned optLevel = 3;
};

/// The lit inputs that mutated cases start from: every `// -----` split of
/// every .mlir file under the given folders, RUN lines dropped.
class Corpus {
public:
  /// Reads the folders; returns an error message or "".
  std::string load(const std::vector<std::string> &folders);
  size_t size() const { return splits.size(); }
  const std::string &text(size_t i) const { return splits[i].text; }
  const std::string &name(size_t i) const { return splits[i].name; }

private:
  struct Split {
    std::string name, text;
  };
  std::vector<Split> splits;
};

/// Case `index` of `seed`: generated or (with a non-empty corpus) mutated.
FuzzCase makeCase(uint64_t seed, uint64_t index, const Corpus &corpus);

/// The kinds of hostile tuning-cache file makeHostileCache makes.
enum class CacheKind {
  Mutated,    // a valid cache with bytes, numbers or values changed
  Deep,       // nested `[` or `{`, up to 200,000 deep
  Huge,       // a sparse regular file past the 64 MiB cap
  Fifo,       // a named pipe no one writes
  DevZero,    // a symlink to /dev/zero
  Directory,  // a folder
  Foreign,    // a valid cache of another version or format
  WrongTypes, // valid JSON, fields of the wrong type
  NonFinite,  // 1e400, NaN, Infinity
  Garbage,    // empty, or random bytes
  ValidLink,  // a symlink to a valid cache (must be used)
};
inline constexpr int kNumCacheKinds =
    static_cast<int>(CacheKind::ValidLink) + 1;
const char *getCacheKindName(CacheKind kind);

/// Writes `bytes` to `path`; false if that failed.
bool writeFile(const std::string &path, const std::string &bytes);

/// Makes a hostile file at `path` (which must not exist) from `validCache`,
/// the text of a cache fusedopsTuningCacheRecord wrote. Returns its kind, or
/// sets `error` where the file system refused.
CacheKind makeHostileCache(CaseRng &rng, const std::string &path,
                           const std::string &validCache, std::string &error);

} // namespace fusedops::fuzz

#endif // FUSEDOPS_FUZZ_CASEGENERATOR_H
