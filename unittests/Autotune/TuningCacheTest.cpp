//===- TuningCacheTest.cpp - the tuning cache's format and writers --------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Autotune/TuningCache.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <sys/stat.h>

#include <thread>
#include <vector>

using namespace mlir;
using namespace mlir::fusedops::autotune;

namespace {

TuningEntry entry(StringRef shapeClass, StringRef driver, double us,
                  StringRef tile = "#fusedops.tile<block = [1], warps = 4>") {
  TuningEntry e;
  e.key.op = "fusedops.rmsnorm_rope";
  e.key.shapeClass = shapeClass.str();
  e.key.dtypes = "bf16,bf16,f32,f32,bf16";
  e.key.attributes = "head_dim = 128";
  e.key.chip = "sm_90a";
  e.key.compiler = "fusedops-capi 3; llvm 22.1.8; ptxas 13.0";
  e.driver = driver.str();
  e.tile = tile.str();
  e.microseconds = us;
  e.candidates = 9;
  e.device = "NVIDIA H200";
  return e;
}

/// A fresh folder for one test's files.
class CacheFiles : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_FALSE(
        llvm::sys::fs::createUniqueDirectory("fusedops-tuning", folder));
  }
  void TearDown() override { llvm::sys::fs::remove_directories(folder); }
  std::string path(StringRef name) {
    SmallString<128> p(folder);
    llvm::sys::path::append(p, name);
    return p.str().str();
  }
  void write(StringRef file, StringRef text) {
    std::error_code ec;
    llvm::raw_fd_ostream os(file, ec);
    ASSERT_FALSE(ec);
    os << text;
  }
  SmallString<128> folder;
};

TEST(TuningCache, RoundTripsThroughItsJson) {
  TuningCache cache;
  cache.insert(entry("rows<=4096 hidden=4096", "580.159.04", 27.5));
  cache.insert(entry("rows<=8192 hidden=8192", "580.159.04", 91.0));
  std::string error;
  std::optional<TuningCache> back = TuningCache::parse(cache.toJson(), error);
  ASSERT_TRUE(back) << error;
  ASSERT_EQ(back->getEntries().size(), 2u);
  const TuningEntry *e =
      back->lookup(entry("rows<=8192 hidden=8192", "", 0).key);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->microseconds, 91.0);
  EXPECT_EQ(e->tile, "#fusedops.tile<block = [1], warps = 4>");
  EXPECT_EQ(e->device, "NVIDIA H200");
  EXPECT_EQ(back->toJson(), cache.toJson());
}

TEST(TuningCache, LookupByDriverOrFastest) {
  TuningCache cache;
  TuningKey key = entry("c", "", 0).key;
  cache.insert(
      entry("c", "570.00", 30.0, "#fusedops.tile<block = [2], warps = 4>"));
  cache.insert(entry("c", "580.159.04", 27.0));
  EXPECT_EQ(cache.lookup(key)->driver, "580.159.04");
  EXPECT_EQ(cache.lookup(key, "570.00")->microseconds, 30.0);
  EXPECT_EQ(cache.lookup(key, "590.00"), nullptr);
  // The same key and driver replaces.
  cache.insert(entry("c", "570.00", 20.0));
  EXPECT_EQ(cache.getEntries().size(), 2u);
  EXPECT_EQ(cache.lookup(key)->driver, "570.00");
  // Any other field of the key differs: no match.
  TuningKey other = key;
  other.compiler = "fusedops-capi 3; llvm 22.1.8; ptxas 12.8";
  EXPECT_EQ(cache.lookup(other), nullptr);
}

TEST(TuningCache, ManyEntriesKeepTheirKeys) {
  // Insert and lookup go through an index (loading was quadratic in the
  // entries: 40,000 took 40 s, issue 14); every key and driver is kept
  // once, the last insert wins.
  TuningCache cache;
  constexpr int kKeys = 20000;
  for (int i = 0; i < kKeys; ++i) {
    cache.insert(entry("M<=" + std::to_string(i), "580", 2.0 + i));
    cache.insert(entry("M<=" + std::to_string(i), "570", 1.0 + i));
  }
  for (int i = 0; i < kKeys; i += 2)
    cache.insert(entry("M<=" + std::to_string(i), "580", 0.5));
  EXPECT_EQ(cache.getEntries().size(), 2u * kKeys);
  EXPECT_EQ(cache.lookup(entry("M<=42", "", 0).key)->microseconds, 0.5);
  EXPECT_EQ(cache.lookup(entry("M<=43", "", 0).key)->driver, "570");
  EXPECT_EQ(cache.lookup(entry("M<=43", "", 0).key, "580")->microseconds,
            45.0);
  EXPECT_EQ(cache.lookup(entry("M<=20000", "", 0).key), nullptr);
  std::string error;
  std::optional<TuningCache> again = TuningCache::parse(cache.toJson(), error);
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(again->getEntries().size(), 2u * kKeys);
}

TEST(TuningCache, InvalidTextIsRejectedWithTheReason) {
  std::string error;
  EXPECT_FALSE(TuningCache::parse("{\"format\": ", error));
  EXPECT_NE(error.find("not JSON"), std::string::npos) << error;
  EXPECT_FALSE(TuningCache::parse("{\"version\": 1, \"entries\": []}", error));
  EXPECT_EQ(error, "not a tuning cache (no \"format\": "
                   "\"fusedops-tuning-cache\")");
  EXPECT_FALSE(TuningCache::parse(
      R"({"format": "fusedops-tuning-cache", "version": 2, "entries": []})",
      error));
  EXPECT_EQ(error, "tuning cache version 2, but this compiler reads version 1");
  EXPECT_FALSE(TuningCache::parse(
      R"({"format": "fusedops-tuning-cache", "version": 1, "entries": [{"op": "x"}]})",
      error));
  EXPECT_EQ(error, "an entry has no string \"shape_class\"");
  // A hand-edited time or tile.
  TuningCache bad;
  bad.insert(entry("c", "d", 10.0, "block = [1]"));
  EXPECT_FALSE(TuningCache::parse(bad.toJson(), error));
  EXPECT_NE(error.find("not a #fusedops.tile<...>"), std::string::npos);
  TuningCache negative;
  negative.insert(entry("c", "d", -1.0));
  EXPECT_FALSE(TuningCache::parse(negative.toJson(), error));
  EXPECT_NE(error.find("positive, finite \"microseconds\""), std::string::npos);
  // Non-finite times are no JSON a reader takes (issue 14).
  TuningCache good;
  good.insert(entry("c", "d", 12.5));
  std::string infinite = good.toJson();
  ASSERT_TRUE(TuningCache::parse(infinite, error)) << error;
  size_t at = infinite.find("12.5");
  ASSERT_NE(at, std::string::npos) << infinite;
  infinite.replace(at, 4, "1e400");
  EXPECT_FALSE(TuningCache::parse(infinite, error));
  EXPECT_NE(error.find("finite"), std::string::npos) << error;
  // Deep nesting is refused before the recursive JSON parser sees it.
  EXPECT_FALSE(TuningCache::parse(std::string(50000, '['), error));
  EXPECT_EQ(error, "nested 50000 levels deep; a tuning cache nests 3");
  EXPECT_FALSE(TuningCache::parse(
      R"({"format": "fusedops-tuning-cache", "x": "[[[[[[[[[[[[[[[[[[[[", "version": 2, "entries": []})",
      error));
  EXPECT_EQ(error, "tuning cache version 2, but this compiler reads version 1")
      << "brackets inside strings do not count";
}

TEST_F(CacheFiles, MissingIsEmptyAndCorruptIsReportedAndIgnored) {
  std::string warning;
  EXPECT_TRUE(
      TuningCache::load(path("none.json"), warning).getEntries().empty());
  EXPECT_EQ(warning, "");
  write(path("bad.json"), "{\"format\": \"fusedops-tuning-cache\", \"vers");
  EXPECT_TRUE(
      TuningCache::load(path("bad.json"), warning).getEntries().empty());
  EXPECT_NE(warning.find("ignoring tuning cache"), std::string::npos);
  EXPECT_NE(warning.find("re-run fusedops-tune"), std::string::npos);
}

TEST_F(CacheFiles, RecordCreatesMergesAndMovesCorruptFilesAside) {
  std::string file = path("deep/er/tuning.json"), error, warning;
  ASSERT_TRUE(succeeded(
      TuningCache::record(file, {entry("a", "d", 1.0)}, error, warning)))
      << error;
  ASSERT_TRUE(succeeded(TuningCache::record(
      file, {entry("b", "d", 2.0), entry("a", "d", 0.5)}, error, warning)));
  EXPECT_EQ(warning, "");
  TuningCache cache = TuningCache::load(file, warning);
  ASSERT_EQ(cache.getEntries().size(), 2u);
  EXPECT_EQ(cache.lookup(entry("a", "", 0).key)->microseconds, 0.5);

  write(file, "not json at all");
  ASSERT_TRUE(succeeded(
      TuningCache::record(file, {entry("c", "d", 3.0)}, error, warning)));
  size_t at = warning.find("moved it to " + file + ".corrupt-");
  ASSERT_NE(at, std::string::npos) << warning;
  std::string aside = warning.substr(at + strlen("moved it to "));
  aside = aside.substr(0, aside.find(' '));
  EXPECT_EQ(TuningCache::load(file, warning).getEntries().size(), 1u);
  auto asideText = llvm::MemoryBuffer::getFile(aside);
  ASSERT_TRUE(bool(asideText)) << aside;
  EXPECT_EQ((*asideText)->getBuffer(), "not json at all");
  // A second corrupt file gets a name of its own: the first is kept.
  write(file, "still not json");
  ASSERT_TRUE(succeeded(
      TuningCache::record(file, {entry("d", "d", 4.0)}, error, warning)));
  EXPECT_EQ(warning.find(aside + " "), std::string::npos) << warning;
  asideText = llvm::MemoryBuffer::getFile(aside);
  ASSERT_TRUE(bool(asideText));
  EXPECT_EQ((*asideText)->getBuffer(), "not json at all");
}

TEST_F(CacheFiles, SpecialFilesAreRefusedWithoutReadingOrMovingThem) {
  std::string error, warning;
  // A directory where the cache should be: reported, left alone.
  std::string folder = path("folder.json");
  ASSERT_FALSE(llvm::sys::fs::create_directory(folder));
  EXPECT_TRUE(TuningCache::load(folder, warning).getEntries().empty());
  EXPECT_NE(warning.find("not a regular file"), std::string::npos) << warning;
  EXPECT_TRUE(failed(
      TuningCache::record(folder, {entry("a", "d", 1.0)}, error, warning)));
  EXPECT_NE(error.find("not a regular file"), std::string::npos) << error;
  EXPECT_TRUE(llvm::sys::fs::is_directory(folder));
  // A FIFO (reading it would block) and a link to /dev/zero (reading it
  // would never end).
  std::string fifo = path("fifo.json");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_TRUE(TuningCache::load(fifo, warning).getEntries().empty());
  EXPECT_NE(warning.find("not a regular file"), std::string::npos) << warning;
  std::string zero = path("zero.json");
  ASSERT_FALSE(llvm::sys::fs::create_link("/dev/zero", zero));
  EXPECT_TRUE(TuningCache::load(zero, warning).getEntries().empty());
  EXPECT_NE(warning.find("not a regular file"), std::string::npos) << warning;
  // Non-finite times are refused before the file is touched.
  std::string file = path("finite.json");
  EXPECT_TRUE(failed(TuningCache::record(
      file, {entry("a", "d", std::numeric_limits<double>::infinity())}, error,
      warning)));
  EXPECT_NE(error.find("positive, finite time"), std::string::npos) << error;
  EXPECT_FALSE(llvm::sys::fs::exists(file));
}

TEST_F(CacheFiles, ConcurrentWritersLoseNothing) {
  std::string file = path("tuning.json");
  constexpr int kWriters = 8, kEach = 12;
  std::vector<std::thread> writers;
  std::vector<std::string> errors(kWriters);
  for (int w = 0; w < kWriters; ++w)
    writers.emplace_back([&, w] {
      for (int i = 0; i < kEach; ++i) {
        std::string warning;
        if (failed(TuningCache::record(
                file,
                {entry("w" + std::to_string(w) + "i" + std::to_string(i), "d",
                       1.0 + i)},
                errors[w], warning)))
          return;
      }
    });
  for (std::thread &t : writers)
    t.join();
  for (const std::string &error : errors)
    EXPECT_EQ(error, "");
  std::string warning;
  TuningCache cache = TuningCache::load(file, warning);
  EXPECT_EQ(warning, "");
  EXPECT_EQ(cache.getEntries().size(), size_t(kWriters * kEach));
  // No temporary files are left behind.
  std::error_code ec;
  int files = 0;
  for (llvm::sys::fs::directory_iterator it(folder, ec), end; it != end && !ec;
       it.increment(ec))
    ++files;
  EXPECT_EQ(files, 2); // tuning.json and its lock file.
}

} // namespace
