//===- TuningCache.cpp - measured tiles, kept across runs -----------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Autotune/TuningCache.h"
#include "fusedops/Support/SourceLimits.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <tuple>
#include <unistd.h>

using namespace mlir;
using namespace mlir::fusedops::autotune;

bool TuningKey::operator==(const TuningKey &other) const {
  return std::tie(op, shapeClass, dtypes, attributes, chip, compiler) ==
         std::tie(other.op, other.shapeClass, other.dtypes, other.attributes,
                  other.chip, other.compiler);
}

std::string TuningKey::str() const {
  return op + " [" + shapeClass + "] " + dtypes +
         (attributes.empty() ? "" : " {" + attributes + "}") + " on " + chip +
         " (" + compiler + ")";
}

static llvm::json::Object toJson(const TuningEntry &entry) {
  return llvm::json::Object{
      {"op", entry.key.op},
      {"shape_class", entry.key.shapeClass},
      {"dtypes", entry.key.dtypes},
      {"attributes", entry.key.attributes},
      {"chip", entry.key.chip},
      {"compiler", entry.key.compiler},
      {"driver", entry.driver},
      {"tile", entry.tile},
      {"microseconds", entry.microseconds},
      {"candidates", entry.candidates},
      {"device", entry.device},
  };
}

static std::optional<TuningEntry> entryFromJson(const llvm::json::Value &value,
                                                std::string &error) {
  const llvm::json::Object *object = value.getAsObject();
  if (!object) {
    error = "an entry is not a JSON object";
    return std::nullopt;
  }
  TuningEntry entry;
  auto string = [&](StringRef name, std::string &field) {
    std::optional<StringRef> text = object->getString(name);
    if (!text) {
      error = ("an entry has no string \"" + name + "\"").str();
      return false;
    }
    field = text->str();
    return true;
  };
  if (!string("op", entry.key.op) ||
      !string("shape_class", entry.key.shapeClass) ||
      !string("dtypes", entry.key.dtypes) ||
      !string("attributes", entry.key.attributes) ||
      !string("chip", entry.key.chip) ||
      !string("compiler", entry.key.compiler) ||
      !string("driver", entry.driver) || !string("tile", entry.tile) ||
      !string("device", entry.device))
    return std::nullopt;
  std::optional<double> microseconds = object->getNumber("microseconds");
  std::optional<int64_t> candidates = object->getInteger("candidates");
  if (!microseconds || !(*microseconds > 0) || !std::isfinite(*microseconds) ||
      !candidates || *candidates < 1) {
    error = "entry for " + entry.key.str() +
            " needs a positive, finite \"microseconds\" and \"candidates\"";
    return std::nullopt;
  }
  if (!StringRef(entry.tile).starts_with("#fusedops.tile<")) {
    error = "entry for " + entry.key.str() + " has tile '" + entry.tile +
            "', not a #fusedops.tile<...>";
    return std::nullopt;
  }
  entry.microseconds = *microseconds;
  entry.candidates = *candidates;
  return entry;
}

std::optional<TuningCache> TuningCache::parse(StringRef text,
                                              std::string &error) {
  // A cache nests three levels (root, entries, entry).
  constexpr int64_t kMaxNesting = 16;
  if (int64_t nesting = getJsonNesting(text); nesting > kMaxNesting) {
    error = "nested " + std::to_string(nesting) +
            " levels deep; a tuning cache nests 3";
    return std::nullopt;
  }
  llvm::Expected<llvm::json::Value> json = llvm::json::parse(text);
  if (!json) {
    error = "not JSON: " + llvm::toString(json.takeError());
    return std::nullopt;
  }
  const llvm::json::Object *root = json->getAsObject();
  if (!root || root->getString("format") != kFormat) {
    error = ("not a tuning cache (no \"format\": \"" + kFormat + "\")").str();
    return std::nullopt;
  }
  std::optional<int64_t> version = root->getInteger("version");
  if (version != kVersion) {
    error = "tuning cache version " +
            (version ? std::to_string(*version) : std::string("missing")) +
            ", but this compiler reads version " + std::to_string(kVersion);
    return std::nullopt;
  }
  const llvm::json::Array *entries = root->getArray("entries");
  if (!entries) {
    error = "the tuning cache has no \"entries\" array";
    return std::nullopt;
  }
  TuningCache cache;
  for (const llvm::json::Value &value : *entries) {
    std::optional<TuningEntry> entry = entryFromJson(value, error);
    if (!entry)
      return std::nullopt;
    cache.insert(std::move(*entry));
  }
  return cache;
}

/// Reads the tuning cache file `path`: a regular file (symbolic links
/// followed) of at most kMaxFileBytes. Anything else (a FIFO that would
/// block, /dev/zero that never ends, a directory, a huge file) is refused
/// with the reason, without opening it.
static std::unique_ptr<llvm::MemoryBuffer> readCacheFile(StringRef path,
                                                         std::string &error) {
  constexpr uint64_t kMaxFileBytes = 64 << 20;
  llvm::sys::fs::file_status status;
  if (std::error_code ec = llvm::sys::fs::status(path, status)) {
    error = ec.message();
    return nullptr;
  }
  if (status.type() != llvm::sys::fs::file_type::regular_file) {
    error = "not a regular file (a directory, FIFO or device); point the "
            "cache at a file";
    return nullptr;
  }
  if (status.getSize() > kMaxFileBytes) {
    error = std::to_string(status.getSize()) +
            " bytes; a tuning cache is at most " +
            std::to_string(kMaxFileBytes) + " bytes";
    return nullptr;
  }
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer) {
    error = buffer.getError().message();
    return nullptr;
  }
  return std::move(*buffer);
}

TuningCache TuningCache::load(StringRef path, std::string &warning) {
  if (!llvm::sys::fs::exists(path))
    return {};
  std::string error;
  std::unique_ptr<llvm::MemoryBuffer> buffer = readCacheFile(path, error);
  if (!buffer) {
    warning = ("cannot read tuning cache " + path + ": " + error +
               "; using the cost model")
                  .str();
    return {};
  }
  std::optional<TuningCache> cache = parse(buffer->getBuffer(), error);
  if (!cache) {
    warning = ("ignoring tuning cache " + path + ": " + error +
               "; using the cost model (re-run fusedops-tune to rebuild it)")
                  .str();
    return {};
  }
  return std::move(*cache);
}

std::string TuningCache::toJson() const {
  std::vector<const TuningEntry *> sorted;
  for (const TuningEntry &entry : entries)
    sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(),
            [](const TuningEntry *a, const TuningEntry *b) {
              return std::tie(a->key.op, a->key.shapeClass, a->key.dtypes,
                              a->key.attributes, a->key.chip, a->key.compiler,
                              a->driver) <
                     std::tie(b->key.op, b->key.shapeClass, b->key.dtypes,
                              b->key.attributes, b->key.chip, b->key.compiler,
                              b->driver);
            });
  llvm::json::Array array;
  for (const TuningEntry *entry : sorted)
    array.push_back(::toJson(*entry));
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::formatv("{0:1}", llvm::json::Value(llvm::json::Object{
                                   {"format", kFormat},
                                   {"version", kVersion},
                                   {"entries", std::move(array)},
                               }))
     << "\n";
  return text;
}

std::string TuningCache::getIndexKey(const TuningKey &key) {
  std::string joined;
  for (const std::string *field : {&key.op, &key.shapeClass, &key.dtypes,
                                   &key.attributes, &key.chip, &key.compiler}) {
    joined += *field;
    joined += '\0';
  }
  return joined;
}

const TuningEntry *TuningCache::lookup(const TuningKey &key,
                                       StringRef driver) const {
  const TuningEntry *best = nullptr;
  auto slots = byKey.find(getIndexKey(key));
  if (slots == byKey.end())
    return nullptr;
  for (size_t slot : slots->second) {
    const TuningEntry &entry = entries[slot];
    if (!driver.empty()) {
      if (entry.driver == driver)
        return &entry;
      continue;
    }
    // Any driver: the fastest, ties to the first driver in string order, so
    // the choice does not depend on the file's order.
    if (!best || entry.microseconds < best->microseconds ||
        (entry.microseconds == best->microseconds &&
         entry.driver < best->driver))
      best = &entry;
  }
  return best;
}

void TuningCache::insert(TuningEntry entry) {
  llvm::SmallVector<size_t, 2> &slots = byKey[getIndexKey(entry.key)];
  for (size_t slot : slots)
    if (entries[slot].driver == entry.driver) {
      entries[slot] = std::move(entry);
      return;
    }
  slots.push_back(entries.size());
  entries.push_back(std::move(entry));
}

namespace {
/// An exclusive flock on `<path>.lock`, released on destruction.
class FileLock {
public:
  explicit FileLock(StringRef path) : lockPath((path + ".lock").str()) {
    fd = ::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      error = "cannot open " + lockPath + ": " + std::strerror(errno);
      return;
    }
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR)
        continue;
      error = "cannot lock " + lockPath + ": " + std::strerror(errno);
      ::close(fd);
      fd = -1;
      return;
    }
  }
  ~FileLock() {
    if (fd >= 0) {
      ::flock(fd, LOCK_UN);
      ::close(fd);
    }
  }
  bool locked() const { return fd >= 0; }
  std::string error;

private:
  std::string lockPath;
  int fd = -1;
};
} // namespace

LogicalResult TuningCache::record(StringRef path,
                                  ArrayRef<TuningEntry> newEntries,
                                  std::string &error, std::string &warning) {
  // What readers would refuse (non-finite or non-positive times: JSON has
  // no inf) is refused here, before the file is touched.
  for (const TuningEntry &entry : newEntries)
    if (!(entry.microseconds > 0) || !std::isfinite(entry.microseconds) ||
        entry.candidates < 1) {
      error = "entry for " + entry.key.str() +
              " needs a positive, finite time and at least one candidate";
      return failure();
    }
  StringRef folder = llvm::sys::path::parent_path(path);
  if (!folder.empty())
    if (std::error_code ec = llvm::sys::fs::create_directories(folder)) {
      error = ("cannot create " + folder + ": " + ec.message()).str();
      return failure();
    }
  FileLock lock(path);
  if (!lock.locked()) {
    error = lock.error;
    return failure();
  }
  // Under the lock: what other tuners wrote since we started is kept.
  TuningCache cache;
  if (llvm::sys::fs::exists(path)) {
    // What cannot be read (a directory, a FIFO, no permission) is not ours
    // to move: refuse. What reads but is no valid cache is moved aside to
    // a name of its own, so that nothing is overwritten or lost.
    std::string readError, parseError;
    std::unique_ptr<llvm::MemoryBuffer> buffer = readCacheFile(path, readError);
    if (!buffer) {
      error = ("cannot read tuning cache " + path + ": " + readError +
               "; nothing was recorded")
                  .str();
      return failure();
    }
    std::optional<TuningCache> existing =
        parse(buffer->getBuffer(), parseError);
    if (existing) {
      cache = std::move(*existing);
    } else {
      SmallString<128> aside;
      int asideFd = -1;
      if (std::error_code ec = llvm::sys::fs::createUniqueFile(
              path + ".corrupt-%%%%%%", asideFd, aside)) {
        error =
            ("tuning cache " + path + " is not valid (" + parseError +
             ") and no name beside it is free to move it to: " + ec.message())
                .str();
        return failure();
      }
      llvm::sys::fs::closeFile(asideFd);
      if (std::error_code ec = llvm::sys::fs::rename(path, aside)) {
        error = ("tuning cache " + path + " is not valid (" + parseError +
                 ") and cannot be moved aside: " + ec.message())
                    .str();
        return failure();
      }
      warning = ("tuning cache " + path + " was not valid (" + parseError +
                 "); moved it to " + aside + " and started a new one")
                    .str();
    }
  }
  for (const TuningEntry &entry : newEntries)
    cache.insert(entry);

  SmallString<128> temporary;
  int fd = -1;
  if (std::error_code ec = llvm::sys::fs::createUniqueFile(
          path + ".tmp-%%%%%%%%", fd, temporary)) {
    error = ("cannot create a file beside " + path + ": " + ec.message()).str();
    return failure();
  }
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os << cache.toJson();
    os.flush();
    if (os.has_error()) {
      error = ("cannot write " + temporary + ": " + os.error().message()).str();
      os.clear_error();
      llvm::sys::fs::remove(temporary);
      return failure();
    }
  }
  if (std::error_code ec = llvm::sys::fs::rename(temporary, path)) {
    error = ("cannot replace " + path + ": " + ec.message()).str();
    llvm::sys::fs::remove(temporary);
    return failure();
  }
  return success();
}
