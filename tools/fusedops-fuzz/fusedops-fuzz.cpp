//===- fusedops-fuzz.cpp - the compiler's robustness fuzzer ---------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Runs generated and mutated inputs (CaseGenerator.h) through everything that
// reads them, for every chip of the chip table:
//  - in process, through the C API the Python package uses: the autotuner's
//    candidates (fusedopsTuneCandidates) and parse, verify, autotune,
//    conversion and the whole pipeline to PTX (fusedopsJitLower);
//  - through the tools, for every --tool-every'th case: fusedops-opt's
//    autotune and conversion passes, and fusedops-compile;
//  - every --cache-every'th case, a hostile tuning-cache file (special files,
//    huge, deep, non-finite, wrong types, foreign versions, damaged) through
//    fusedopsTuningCacheCheck/Lookup/Record and the pipeline's cache option;
//  - every case, an op request for fusedopsBuildOpSource (the PyTorch API's
//    sources), from plausible to hostile (wrong types, huge or negative
//    sizes, unknown spellings, the case's own text, deep nesting); what it
//    builds must parse as JSON and lower, or be refused, on every
//    --op-every'th.
//
// The cases run in worker processes, so that a crash is a finding, not the
// fuzzer's end. A case fails on any signal or abort, an `LLVM ERROR`, an exit
// other than the C API's return, a time past --case-timeout (a hang), an
// error returned without a message, a success without a result, a tool
// exiting other than 0 or 1, or a cache file whose bytes the cache lost. A
// failing case is written to --out with the reason, and minimized there
// (lines, then characters) to the smallest input that fails the same way.
//
// Every case is a function of (--seed, index): `--replay=N` reruns case N in
// this process, `--print=N` prints it.
//
//===----------------------------------------------------------------------===//

#include "CaseGenerator.h"

#include "fusedops-c/Compiler.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace fusedops::fuzz;
namespace cl = llvm::cl;

static cl::OptionCategory fuzzCategory("fusedops-fuzz options");

static cl::opt<uint64_t> seedOpt("seed", cl::desc("Seed of every case"),
                                 cl::init(1), cl::cat(fuzzCategory));
static cl::opt<uint64_t> firstOpt("first", cl::desc("Index of the first case"),
                                  cl::init(0), cl::cat(fuzzCategory));
static cl::opt<uint64_t> casesOpt("cases", cl::desc("How many cases to run"),
                                  cl::init(1000), cl::cat(fuzzCategory));
static cl::opt<unsigned> timeBudgetOpt(
    "time-budget",
    cl::desc("Stop starting cases after this many seconds (0: no limit); "
             "what ran is reported"),
    cl::init(0), cl::cat(fuzzCategory));
static cl::opt<unsigned> jobsOpt("jobs", cl::desc("Worker processes"),
                                 cl::init(1), cl::cat(fuzzCategory));
static cl::list<std::string>
    corpusOpt("corpus", cl::desc("Folder of .mlir files to mutate (repeat)"),
              cl::cat(fuzzCategory));
static cl::list<std::string>
    chipsOpt("chip", cl::desc("Chip to compile for (repeat; default: all)"),
             cl::cat(fuzzCategory));
static cl::opt<std::string>
    toolsDirOpt("tools-dir",
                cl::desc("Folder with fusedops-opt and fusedops-compile "
                         "(empty: no tool runs)"),
                cl::cat(fuzzCategory));
static cl::opt<unsigned>
    toolEveryOpt("tool-every",
                 cl::desc("Run the tools on every Nth case (0: never)"),
                 cl::init(20), cl::cat(fuzzCategory));
static cl::opt<unsigned> assembleEveryOpt(
    "assemble-every",
    cl::desc("On every Nth case, PTX that lowered must also assemble with "
             "ptxas (format=bin); 0: never"),
    cl::init(50), cl::cat(fuzzCategory));
static cl::opt<unsigned> opEveryOpt(
    "op-every",
    cl::desc("Lower the op source that fusedopsBuildOpSource built on every "
             "Nth case (0: never)"),
    cl::init(10), cl::cat(fuzzCategory));

static cl::opt<unsigned> cacheEveryOpt(
    "cache-every",
    cl::desc("A hostile tuning cache on every Nth case (0: never)"),
    cl::init(4), cl::cat(fuzzCategory));
static cl::opt<unsigned>
    caseTimeoutOpt("case-timeout",
                   cl::desc("Seconds after which a case is a hang"),
                   cl::init(120), cl::cat(fuzzCategory));
static cl::opt<std::string>
    outOpt("out", cl::desc("Folder for failing cases and reproducers"),
           cl::init("fuzz-failures"), cl::cat(fuzzCategory));
static cl::opt<int64_t>
    replayOpt("replay",
              cl::desc("Run case N in this process, verbosely, and exit"),
              cl::init(-1), cl::cat(fuzzCategory));
static cl::opt<int64_t> printOpt("print", cl::desc("Print case N and exit"),
                                 cl::init(-1), cl::cat(fuzzCategory));
static cl::opt<std::string> inputOpt(
    "input",
    cl::desc("With --replay: run this file instead of the case's source "
             "(a reproducer)"),
    cl::cat(fuzzCategory));
static cl::opt<std::string> injectOpt(
    "inject",
    cl::desc("Test the fuzzer itself: crash:S, abort:S or hang:S makes a "
             "worker segfault, exit as LLVM's fatal errors do, or hang in "
             "the pipeline stage of each case whose source holds S"),
    cl::Hidden, cl::cat(fuzzCategory));
static cl::opt<unsigned>
    minimizeSecondsOpt("minimize-seconds",
                       cl::desc("Time to minimize each failing case"),
                       cl::init(120), cl::cat(fuzzCategory));

namespace {
//===----------------------------------------------------------------------===//
// What workers share with the parent
//===----------------------------------------------------------------------===//

constexpr unsigned kMaxChips = 16;
constexpr unsigned kMaxJobs = 64;

enum Stage : int {
  kIdle,
  kTune,
  kLower,
  kToolOpt,
  kToolCompile,
  kCacheMake,
  kCacheCheck,
  kCacheLookup,
  kCacheLower,
  kCacheRecord,
  kAssemble,
  kOpSource,
  kOpSourceLower,
  kOpSourcePlan
};
const char *getStageName(int stage) {
  static const char *names[] = {
      "idle",
      "fusedopsTuneCandidates",
      "fusedopsJitLower",
      "fusedops-opt",
      "fusedops-compile",
      "making the hostile cache",
      "fusedopsTuningCacheCheck",
      "fusedopsTuningCacheLookup",
      "fusedopsJitLower with the hostile cache",
      "fusedopsTuningCacheRecord into the hostile cache",
      "fusedopsJitLower to a cubin (ptxas)",
      "fusedopsBuildOpSource",
      "fusedopsJitLower of a built op source",
      "fusedopsJitGetLaunchPlanForSizes of a built op source"};
  return stage >= 0 && stage <= kOpSourcePlan ? names[stage] : "?";
}

/// Per chip: what the cases reached.
struct ChipCounts {
  std::atomic<int64_t> cases, lowered, refused, tuned, toolRuns, assembled;
};

struct CacheCounts {
  std::atomic<int64_t> files, refused, used, recorded;
};

struct OpSourceCounts {
  std::atomic<int64_t> requests, built, lowered, plans;
};

struct WorkerSlot {
  std::atomic<int64_t> caseIndex{-1};
  std::atomic<int64_t> startedMs{0};
  std::atomic<int> stage{kIdle};
  std::atomic<int> chip{-1};
  /// An oracle's finding, written before the worker exits with kOracleExit.
  char finding[2048];
};

struct Shared {
  ChipCounts chips[kMaxChips];
  CacheCounts caches;
  OpSourceCounts opSources;
  WorkerSlot slots[kMaxJobs];
};

/// The exit status of a worker whose oracle found a failure.
constexpr int kOracleExit = 77;

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string readFile(const std::string &path, size_t limit = 1 << 20) {
  std::ifstream in(path, std::ios::binary);
  std::string text(limit, '\0');
  in.read(text.data(), static_cast<std::streamsize>(limit));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

/// Removes `path` and, for a folder, what it holds (never following links).
void removeTree(const std::string &path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0)
    return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR *dir = opendir(path.c_str())) {
      while (dirent *entry = readdir(dir)) {
        std::string name = entry->d_name;
        if (name != "." && name != "..")
          removeTree(path + "/" + name);
      }
      closedir(dir);
    }
    rmdir(path.c_str());
  } else {
    unlink(path.c_str());
  }
}

//===----------------------------------------------------------------------===//
// One case, in a worker
//===----------------------------------------------------------------------===//

/// Runs cases; an oracle's finding ends the process with kOracleExit.
class CaseRunner {
public:
  CaseRunner(Shared *shared, WorkerSlot *slot, std::vector<std::string> chips,
             std::string workDir, bool verbose)
      : shared(shared), slot(slot), chips(std::move(chips)),
        workDir(std::move(workDir)), verbose(verbose) {}

  /// Runs case `index` (with `source` in place of its own when given).
  void run(uint64_t index, const FuzzCase &fuzzCase, unsigned toolEvery,
           unsigned cacheEvery);

private:
  [[noreturn]] void fail(const std::string &what);
  void setStage(int stage, int chip) {
    if (slot) {
      slot->stage = stage;
      slot->chip = chip;
    }
  }
  /// --inject: the faults the fuzzer must find, for its own tests.
  void injectFault(const std::string &source);
  /// The checks every C API call gets.
  void checkStatus(fusedops_compile_status status, bool hasResult,
                   const char *call);
  void runTool(const std::vector<std::string> &argv, const std::string &log);
  void runCacheCase(uint64_t index, const FuzzCase &fuzzCase);
  void runOpSourceCase(uint64_t index, const FuzzCase &fuzzCase);
  const std::string &getValidCache();

  Shared *shared;
  WorkerSlot *slot;
  std::vector<std::string> chips;
  std::string workDir;
  bool verbose;
  std::string validCache;
};

void CaseRunner::fail(const std::string &what) {
  if (slot) {
    std::snprintf(slot->finding, sizeof(slot->finding), "%s", what.c_str());
    std::fflush(nullptr);
    std::_Exit(kOracleExit);
  }
  llvm::errs() << "FAILED: " << what << "\n";
  std::exit(kOracleExit);
}

void CaseRunner::injectFault(const std::string &source) {
  if (injectOpt.empty())
    return;
  std::string spec = injectOpt;
  size_t colon = spec.find(':');
  std::string kind = spec.substr(0, colon);
  std::string needle = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (needle.empty() || source.find(needle) == std::string::npos)
    return;
  if (kind == "crash")
    std::raise(SIGSEGV);
  if (kind == "abort") {
    // What llvm::report_fatal_error does.
    std::fprintf(stderr, "LLVM ERROR: injected by --inject\n");
    std::exit(1);
  }
  if (kind == "hang")
    for (;;)
      pause();
}

void CaseRunner::checkStatus(fusedops_compile_status status, bool hasResult,
                             const char *call) {
  std::string message = fusedopsCompilerGetLastError();
  if (verbose)
    llvm::errs() << "  " << call << ": "
                 << (status == FUSEDOPS_COMPILE_SUCCESS ? "success" : "error")
                 << (message.empty() ? "" : ": " + message.substr(0, 600))
                 << "\n";
  if (status == FUSEDOPS_COMPILE_SUCCESS) {
    if (!hasResult)
      fail(std::string(call) + " succeeded without a result");
    return;
  }
  if (message.find_first_not_of(" \n\t") == std::string::npos)
    fail(std::string(call) + " failed (status " + std::to_string(status) +
         ") without a message");
  for (const char *bad :
       {"LLVM ERROR", "UNREACHABLE", "Assertion", "Stack dump"})
    if (message.find(bad) != std::string::npos)
      fail(std::string(call) +
           " reported an internal error: " + message.substr(0, 1500));
}

void CaseRunner::runTool(const std::vector<std::string> &argv,
                         const std::string &log) {
  pid_t pid = fork();
  if (pid < 0)
    fail("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char *> args;
    for (const std::string &a : argv)
      args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(126);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string output = readFile(log, 64 << 10);
  std::string command;
  for (const std::string &a : argv)
    command += a + " ";
  if (WIFSIGNALED(status))
    fail(command + "died of signal " + std::to_string(WTERMSIG(status)) +
         ":\n" + output.substr(0, 1500));
  int code = WEXITSTATUS(status);
  if (code == 126)
    fail("cannot run " + argv[0] + " (see --tools-dir)");
  if (code != 0 && code != 1)
    fail(command + "exited " + std::to_string(code) + ":\n" +
         output.substr(0, 1500));
  for (const char *bad : {"LLVM ERROR", "UNREACHABLE", "Assertion",
                          "Stack dump", "PLEASE submit a bug report"})
    if (output.find(bad) != std::string::npos)
      fail(command + "reported an internal error:\n" + output.substr(0, 1500));
  if (code == 1 && output.find_first_not_of(" \n\t") == std::string::npos)
    fail(command + "exited 1 without a message");
}

const std::string &CaseRunner::getValidCache() {
  if (!validCache.empty())
    return validCache;
  // A cache as fusedopsTuningCacheRecord writes it, with one entry.
  std::string path = workDir + "/valid-cache.json";
  unlink(path.c_str());
  const char *source =
      "func.func @f(%q: memref<16x64xf8E4M3FN>, %s: memref<16xf32>, "
      "%o: memref<16x64xbf16>) {\n  fusedops.dequantize ins(%q, %s : "
      "memref<16x64xf8E4M3FN>, memref<16xf32>) outs(%o : memref<16x64xbf16>) "
      "granularity = row\n  return\n}\n";
  char *warning = nullptr;
  fusedops_compile_status status = fusedopsTuningCacheRecord(
      path.c_str(), source, std::strlen(source), chips.front().c_str(),
      "#fusedops.tile<block = [4], warps = 4>", 3.5, 12, "13000", "H200",
      &warning);
  std::free(warning);
  if (status != FUSEDOPS_COMPILE_SUCCESS)
    fail(std::string("cannot record the fuzzer's valid cache: ") +
         fusedopsCompilerGetLastError());
  validCache = readFile(path);
  return validCache;
}

/// What a path is, for the cache's no-data-loss check.
struct FileState {
  bool exists = false;
  mode_t type = 0;
  off_t size = 0;
  std::string head; // the first MiB of a regular file
};

FileState getFileState(const std::string &path) {
  FileState state;
  struct stat st;
  if (lstat(path.c_str(), &st) != 0)
    return state;
  state.exists = true;
  state.type = st.st_mode & S_IFMT;
  state.size = st.st_size;
  if (S_ISREG(st.st_mode))
    state.head = readFile(path);
  return state;
}

void CaseRunner::runCacheCase(uint64_t index, const FuzzCase &fuzzCase) {
  CaseRng rng(seedOpt, index, /*stream=*/1);
  std::string folder = workDir + "/cache-" + std::to_string(index);
  removeTree(folder);
  ::mkdir(folder.c_str(), 0755);
  std::string path = folder + "/tuning.json";
  int chip = static_cast<int>(rng.below(chips.size()));
  const char *chipName = chips[chip].c_str();
  setStage(kCacheMake, chip);
  const std::string &valid = getValidCache();
  std::string error;
  CacheKind kind = makeHostileCache(rng, path, valid, error);
  if (!error.empty())
    fail(error);
  shared->caches.files++;
  std::string kindName = getCacheKindName(kind);
  if (verbose)
    llvm::errs() << " cache " << kindName << " for " << chipName << "\n";

  setStage(kCacheCheck, chip);
  char *message = nullptr;
  int usable = fusedopsTuningCacheCheck(path.c_str(), &message);
  std::string checkMessage = message ? message : "";
  std::free(message);
  if (usable == -1 && checkMessage.empty())
    fail("fusedopsTuningCacheCheck refused a " + kindName +
         " cache without saying why");
  if (usable == 0)
    fail("fusedopsTuningCacheCheck says there is no file at a " + kindName +
         " cache");
  if (kind == CacheKind::ValidLink && usable != 1)
    fail("a symlink to a valid cache was refused: " + checkMessage);
  (usable == 1 ? shared->caches.used : shared->caches.refused)++;

  // The case's own source where it is one op, else a known one.
  std::string source = fuzzCase.source;
  setStage(kCacheLookup, chip);
  char *tile = nullptr;
  fusedops_compile_status status = fusedopsTuningCacheLookup(
      path.c_str(), source.data(), source.size(), chipName, nullptr, &tile);
  if (status == FUSEDOPS_COMPILE_SUCCESS && tile && usable != 1)
    fail("fusedopsTuningCacheLookup found a tile in a " + kindName +
         " cache that fusedopsTuningCacheCheck refused");
  std::free(tile);
  if (status != FUSEDOPS_COMPILE_SUCCESS)
    checkStatus(status, true, "fusedopsTuningCacheLookup");

  if (rng.chance(0.3)) {
    setStage(kCacheLower, chip);
    void *data = nullptr;
    size_t size = 0;
    status = fusedopsJitLower(source.data(), source.size(), chipName, "isa", 1,
                              nullptr, path.c_str(), &data, &size);
    checkStatus(status, data && size, "fusedopsJitLower (hostile cache)");
    fusedopsBufferFree(data);
  }

  // Recording must keep what was there: a valid cache's entries (merged),
  // anything else left in place or moved to a `.corrupt-` file, whole.
  setStage(kCacheRecord, chip);
  FileState before = getFileState(path);
  char *warning = nullptr;
  static const char *recordSource =
      "func.func @f(%x: memref<64x128xbf16>, %q: memref<64x128xf8E4M3FN>, "
      "%s: memref<64xf32>) {\n  fusedops.quantize ins(%x : "
      "memref<64x128xbf16>) outs(%q, %s : memref<64x128xf8E4M3FN>, "
      "memref<64xf32>) granularity = row\n  return\n}\n";
  status = fusedopsTuningCacheRecord(path.c_str(), recordSource,
                                     std::strlen(recordSource), chipName,
                                     "#fusedops.tile<block = [2], warps = 4>",
                                     4.25, 8, "13000", "H200", &warning);
  std::string warningText = warning ? warning : "";
  std::free(warning);
  if (status != FUSEDOPS_COMPILE_SUCCESS)
    checkStatus(status, true, "fusedopsTuningCacheRecord");
  else
    shared->caches.recorded++;
  FileState after = getFileState(path);
  if (usable == 1) {
    if (status != FUSEDOPS_COMPILE_SUCCESS)
      fail("recording into a usable " + kindName +
           " cache failed: " + fusedopsCompilerGetLastError());
    char *recheck = nullptr;
    int again = fusedopsTuningCacheCheck(path.c_str(), &recheck);
    std::string why = recheck ? recheck : "";
    std::free(recheck);
    if (again != 1)
      fail("after recording, the " + kindName + " cache is unusable: " + why);
    return;
  }
  if (before.type != S_IFREG || before.size > (64 << 20)) {
    // Special files, links and files too large to be a cache are not the
    // cache's to move.
    if (!after.exists || after.type != before.type || after.size != before.size)
      fail("fusedopsTuningCacheRecord moved or replaced a " + kindName +
           " file that was not a cache it wrote");
    return;
  }
  if (status != FUSEDOPS_COMPILE_SUCCESS)
    return;
  // The damaged file must be whole in a `.corrupt-` file beside it.
  bool kept = false;
  if (DIR *dir = opendir(folder.c_str())) {
    while (dirent *entry = readdir(dir)) {
      std::string name = entry->d_name;
      if (name.rfind("tuning.json.corrupt", 0) == 0 &&
          getFileState(folder + "/" + name).head == before.head)
        kept = true;
    }
    closedir(dir);
  }
  if (!kept)
    fail("fusedopsTuningCacheRecord replaced a " + kindName +
         " cache without keeping its bytes in a .corrupt file (warning: " +
         warningText + ")");
  if (warningText.empty())
    fail("fusedopsTuningCacheRecord moved a " + kindName +
         " cache aside without a warning");
}

void CaseRunner::run(uint64_t index, const FuzzCase &fuzzCase,
                     unsigned toolEvery, unsigned cacheEvery) {
  if (slot) {
    slot->startedMs = nowMs();
    slot->caseIndex = static_cast<int64_t>(index);
  }
  const std::string &source = fuzzCase.source;
  bool tools = toolEvery && index % toolEvery == 0 && !toolsDirOpt.empty();
  std::string input = workDir + "/case.mlir";
  if (tools && !writeFile(input, source))
    fail("cannot write " + input);
  for (size_t chip = 0; chip < chips.size(); ++chip) {
    const char *chipName = chips[chip].c_str();
    if (verbose)
      llvm::errs() << " chip " << chipName << "\n";
    ChipCounts &counts = shared->chips[chip];
    counts.cases++;

    setStage(kTune, static_cast<int>(chip));
    char *json = nullptr;
    fusedops_compile_status status =
        fusedopsTuneCandidates(source.data(), source.size(), chipName, &json);
    checkStatus(status, json && *json, "fusedopsTuneCandidates");
    if (status == FUSEDOPS_COMPILE_SUCCESS)
      counts.tuned++;
    fusedopsBufferFree(json);

    setStage(kLower, static_cast<int>(chip));
    injectFault(source);
    void *data = nullptr;
    size_t size = 0;
    status =
        fusedopsJitLower(source.data(), source.size(), chipName, "isa",
                         fuzzCase.optLevel, nullptr, nullptr, &data, &size);
    checkStatus(status, data && size, "fusedopsJitLower");
    bool lowered = status == FUSEDOPS_COMPILE_SUCCESS;
    (lowered ? counts.lowered : counts.refused)++;
    fusedopsBufferFree(data);

    // What lowered to PTX must assemble: a ptxas error there is PTX that
    // fusedops generated wrong (and a ptxas that crashed or hung must be
    // reported by the pipeline's timeout, not hang the case).
    if (lowered && assembleEveryOpt && index % assembleEveryOpt == 0) {
      setStage(kAssemble, static_cast<int>(chip));
      data = nullptr;
      status =
          fusedopsJitLower(source.data(), source.size(), chipName, "bin",
                           fuzzCase.optLevel, nullptr, nullptr, &data, &size);
      checkStatus(status, data && size, "fusedopsJitLower (bin)");
      std::string message = fusedopsCompilerGetLastError();
      if (status != FUSEDOPS_COMPILE_SUCCESS)
        fail("PTX that fusedopsJitLower produced does not assemble for " +
             std::string(chipName) + ": " + message.substr(0, 1500));
      counts.assembled++;
      fusedopsBufferFree(data);
    }

    if (tools) {
      std::string chipArg = std::string("chip=") + chipName;
      setStage(kToolOpt, static_cast<int>(chip));
      runTool({toolsDirOpt + "/fusedops-opt", input,
               "--fusedops-autotune=" + chipArg,
               "--convert-fusedops-to-gpu=" + chipArg, "-o", "/dev/null"},
              workDir + "/tool.log");
      setStage(kToolCompile, static_cast<int>(chip));
      runTool({toolsDirOpt + "/fusedops-compile", input,
               std::string("--chip=") + chipName,
               "--ptx=" + workDir + "/case.ptx"},
              workDir + "/tool.log");
      counts.toolRuns++;
    }
  }
  if (cacheEvery && index % cacheEvery == 0)
    runCacheCase(index, fuzzCase);
  runOpSourceCase(index, fuzzCase);
  setStage(kIdle, -1);
}

/// A JSON string literal of `text` (invalid UTF-8 replaced).
static std::string quoteJson(const std::string &text) {
  std::string out;
  llvm::raw_string_ostream os(out);
  os << llvm::json::Value(llvm::json::isUTF8(text) ? text
                                                   : llvm::json::fixUTF8(text));
  return out;
}

void CaseRunner::runOpSourceCase(uint64_t index, const FuzzCase &fuzzCase) {
  CaseRng rng(seedOpt, index, /*stream=*/2);
  // A field's value: usually plausible for its kind, sometimes hostile.
  auto size = [&] {
    static const std::vector<std::string> odd = {"-1",
                                                 "0",
                                                 "1e300",
                                                 "9223372036854775807",
                                                 "281474976710656",
                                                 "\"8\"",
                                                 "null",
                                                 "[]",
                                                 "3.5",
                                                 "true"};
    return rng.chance(0.15)
               ? rng.pick(odd)
               : std::to_string(1 + rng.below(rng.chance(0.5) ? 300 : 5000));
  };
  auto shape = [&] {
    if (rng.chance(0.1))
      return rng.chance(0.5) ? std::string("[]") : size();
    std::string out = "[";
    for (uint64_t i = 0, rank = 1 + rng.below(3); i < rank; ++i)
      out += (i ? ", " : "") + size();
    return out + "]";
  };
  auto spelled = [&](const std::vector<std::string> &good) {
    static const std::vector<std::string> bad = {"\"\"", "\"relu\"", "7",
                                                 "\"f8E4M3FNUZ\"", "\"i1\""};
    return rng.chance(0.1) ? rng.pick(bad) : quoteJson(rng.pick(good));
  };
  const std::vector<std::string> floats = {"f16", "bf16", "f32"};
  const std::vector<std::string> fp8 = {"f8E4M3FN", "f8E5M2"};
  const std::vector<std::string> granularity = {"tensor", "row", "block128"};
  std::vector<std::pair<std::string, std::string>> fields;
  std::string op = rng.pick(std::vector<std::string>{
      "rmsnorm_rope", "rmsnorm_rope_grad", "rms_norm", "rms_norm_grad",
      "gated_mlp", "gated_mlp_grad", "gated_act_grad", "fp8_gemm", "quantize",
      "dequantize", "softmax"});
  if (op == "rmsnorm_rope" || op == "rmsnorm_rope_grad") {
    uint64_t heads = 1 + rng.below(4), head = 16 * (1 + rng.below(8));
    fields = {{"x_shape", rng.chance(0.7)
                              ? "[" + std::to_string(1 + rng.below(9)) + ", " +
                                    std::to_string(heads * head) + "]"
                              : shape()},
              {"dtype", spelled(floats)},
              {"table_shape", "[" + std::to_string(1 + rng.below(64)) + ", " +
                                  std::to_string(head) + "]"},
              {"table_dtype", spelled(floats)},
              {"head_dim", rng.chance(0.8) ? std::to_string(head) : size()},
              {"eps", rng.chance(0.9) ? "1e-6" : "\"tiny\""},
              {"style", spelled({"neox", "gptj"})}};
    if (rng.chance(0.3))
      fields.push_back(
          {"rotary_fraction",
           rng.pick(std::vector<std::string>{"0.5", "0.25", "0", "-1", "2"})});
    if (rng.chance(0.3))
      fields.push_back({"positions_shape", shape()});
    if (op == "rmsnorm_rope_grad")
      fields.push_back({"partials", rng.chance(0.8)
                                        ? std::to_string(1 + rng.below(2112))
                                        : size()});
  } else if (op == "gated_act_grad") {
    fields = {{"shape", shape()},
              {"dtype", spelled(floats)},
              {"activation", spelled({"silu", "gelu", "gelu_tanh"})}};
  } else if (op == "rms_norm" || op == "rms_norm_grad") {
    fields = {{"x_shape", shape()},
              {"dtype", spelled(floats)},
              {"eps", rng.chance(0.9) ? "1e-6" : "-1"}};
    if (rng.chance(0.5))
      fields.push_back({op == "rms_norm" ? "residual" : "residual_grad",
                        rng.chance(0.9) ? "true" : "1"});
    if (op == "rms_norm_grad")
      fields.push_back({"partials", rng.chance(0.8)
                                        ? std::to_string(1 + rng.below(2112))
                                        : size()});
    if (rng.chance(0.3))
      fields.push_back({"weight_offset", rng.chance(0.9) ? "1" : "\"one\""});
  } else if (op == "gated_mlp" || op == "gated_mlp_grad") {
    fields = {{"x_shape", shape()},
              {"n", size()},
              {"dtype", spelled(floats)},
              {"activation", spelled({"silu", "gelu", "gelu_tanh"})}};
    if (op == "gated_mlp" && rng.chance(0.3))
      fields.push_back(
          {"save_preactivations", rng.chance(0.9) ? "true" : "\"no\""});
  } else if (op == "fp8_gemm") {
    fields = {{"m", size()},
              {"n", size()},
              {"k", size()},
              {"a_dtype", spelled(fp8)},
              {"b_dtype", spelled(fp8)},
              {"out_dtype", spelled(floats)},
              {"granularity", spelled(granularity)}};
    if (rng.chance(0.3))
      fields.push_back({"bias", rng.chance(0.8) ? "true" : "\"yes\""});
    if (rng.chance(0.3))
      fields.push_back({"fast_accum", "true"});
  } else if (op == "quantize" || op == "dequantize") {
    fields = {{"rows", size()},
              {"cols", size()},
              {op == "quantize" ? "dtype" : "out_dtype", spelled(floats)},
              {"fp8", spelled(fp8)},
              {"granularity", spelled(granularity)}};
    // The values transposed too (block128; refused with the others).
    if (op == "quantize" && rng.chance(0.3))
      fields.push_back({"transposed", rng.chance(0.9) ? "true" : "1"});
  }
  // Dynamic rows come as null sizes (among the odd ones above); a rows hint
  // with them, plausible or not.
  if (rng.chance(0.3))
    fields.push_back({"rows_hint", rng.chance(0.8)
                                       ? std::to_string(1 + rng.below(20000))
                                       : size()});
  if (rng.chance(0.1) && !fields.empty()) // a field dropped
    fields.erase(fields.begin() + rng.below(fields.size()));
  std::string request = "{\"op\": " + quoteJson(op);
  for (auto &[name, value] : fields)
    request += ", " + quoteJson(name) + ": " + value;
  request += "}";
  if (rng.chance(0.05)) // the case's text, not JSON
    request = fuzzCase.source;
  else if (rng.chance(0.03)) // nested deeper than the parser's stack allows
    request = "{\"op\": " + std::string(100000 + rng.below(100000), '[') + "}";
  if (verbose)
    llvm::errs() << " op request " << request.substr(0, 300) << "\n";

  setStage(kOpSource, -1);
  shared->opSources.requests++;
  char *reply = nullptr;
  fusedops_compile_status status =
      fusedopsBuildOpSource(request.c_str(), &reply);
  checkStatus(status, reply && *reply, "fusedopsBuildOpSource");
  if (status != FUSEDOPS_COMPILE_SUCCESS)
    return;
  llvm::Expected<llvm::json::Value> parsed = llvm::json::parse(reply);
  fusedopsBufferFree(reply);
  if (!parsed)
    llvm::consumeError(parsed.takeError());
  const llvm::json::Object *object = parsed ? parsed->getAsObject() : nullptr;
  std::optional<llvm::StringRef> built =
      object ? object->getString("source") : std::nullopt;
  shared->opSources.built++;
  if (!built || !object->getArray("args"))
    fail("fusedopsBuildOpSource succeeded with a reply that is not "
         "{\"source\", \"args\"}");
  std::string source = built->str();
  // A candidate tile on it, as the tuner sets one: plausible or the case's
  // own text.
  if (rng.chance(0.2)) {
    std::string tile = rng.chance(0.5) ? "#fusedops.tile<block = [64, 64, 64], "
                                         "warps = 4, stages = 3>"
                                       : fuzzCase.source.substr(0, 200);
    char *tiled = nullptr;
    status =
        fusedopsSetTile(source.data(), source.size(), tile.c_str(), &tiled);
    checkStatus(status, tiled && *tiled, "fusedopsSetTile");
    if (status == FUSEDOPS_COMPILE_SUCCESS)
      source = tiled;
    fusedopsBufferFree(tiled);
  }
  if (!opEveryOpt || index % opEveryOpt != 0)
    return;
  // What it built must go through the pipeline, or be refused with a message.
  setStage(kOpSourceLower, -1);
  void *data = nullptr;
  size_t bytes = 0;
  status = fusedopsJitLower(source.data(), source.size(), "sm_90a", "isa",
                            fuzzCase.optLevel, nullptr, nullptr, &data, &bytes);
  checkStatus(status, data && bytes, "fusedopsJitLower of a built op source");
  if (status != FUSEDOPS_COMPILE_SUCCESS) {
    fusedopsBufferFree(data);
    return;
  }
  shared->opSources.lowered++;
  // Its launch plan for sizes plausible and hostile (none, too few,
  // negative, 2^62): a plan or a message, never a crash or a wrapped-around
  // grid.
  if (!rng.chance(0.3)) {
    fusedopsBufferFree(data);
    return;
  }
  setStage(kOpSourcePlan, -1);
  fusedops_jit jit = nullptr;
  status = fusedopsJitLoad(data, bytes, &jit);
  fusedopsBufferFree(data);
  checkStatus(status, jit != nullptr, "fusedopsJitLoad of a built op source");
  if (status != FUSEDOPS_COMPILE_SUCCESS)
    return;
  std::vector<int64_t> sizes;
  for (uint64_t i = 0, n = rng.below(14); i < n; ++i)
    sizes.push_back(rng.chance(0.8) ? int64_t(rng.below(5000))
                                    : rng.pick(std::vector<int64_t>{
                                          -1, 0, int64_t(1) << 31,
                                          int64_t(1) << 62, INT64_MAX}));
  char *plan = nullptr;
  status = fusedopsJitGetLaunchPlanForSizes(jit, "kernel", sizes.data(),
                                            sizes.size(), &plan);
  checkStatus(status, plan && *plan, "fusedopsJitGetLaunchPlanForSizes");
  if (status == FUSEDOPS_COMPILE_SUCCESS) {
    shared->opSources.plans++;
    // An evaluated plan is static: every grid size launchable.
    llvm::Expected<llvm::json::Value> json = llvm::json::parse(plan);
    const llvm::json::Object *root = json ? json->getAsObject() : nullptr;
    const llvm::json::Array *launches =
        root ? root->getArray("launches") : nullptr;
    if (!launches || root->get("dynamic"))
      fail("fusedopsJitGetLaunchPlanForSizes gave a plan that is not static");
    for (const llvm::json::Value &launch :
         launches ? *launches : llvm::json::Array())
      if (const llvm::json::Object *l = launch.getAsObject())
        if (const llvm::json::Array *grid = l->getArray("grid"))
          for (const llvm::json::Value &n : *grid)
            if (!n.getAsInteger() || *n.getAsInteger() < 1 ||
                *n.getAsInteger() > int64_t(UINT32_MAX))
              fail("an evaluated launch plan has a grid size outside 1 to "
                   "2^32 - 1");
    if (!json)
      llvm::consumeError(json.takeError());
  }
  fusedopsBufferFree(plan);
  fusedopsJitDestroy(jit);
}

//===----------------------------------------------------------------------===//
// The parent: workers, hangs, findings, minimization
//===----------------------------------------------------------------------===//

struct Finding {
  uint64_t index;
  std::string origin, kind, stage, chip, detail;
};

/// How a worker ended a case, as a short class minimization must preserve.
std::string classify(int status, bool timedOut, const WorkerSlot &slot) {
  if (timedOut)
    return "hang";
  if (WIFSIGNALED(status))
    return "signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) == kOracleExit) {
    std::string finding = slot.finding;
    return "oracle: " + finding.substr(0, finding.find(':'));
  }
  return "exit " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

class Fuzzer {
public:
  Fuzzer(Shared *shared, std::vector<std::string> chips, const Corpus &corpus)
      : shared(shared), chips(std::move(chips)), corpus(corpus) {}

  /// Runs cases [first, first + count); returns the findings.
  std::vector<Finding> runAll(uint64_t first, uint64_t count);
  /// Writes the case and its minimized reproducer to --out.
  void report(const Finding &finding, const FuzzCase &fuzzCase);
  uint64_t getCasesRun() const { return casesRun; }

private:
  struct Worker {
    pid_t pid = -1;
    uint64_t next = 0, end = 0;
    std::string log;
  };
  /// Starts a worker on [begin, end) in slot `id`, with `source` (if not
  /// null) in place of the cases' own (minimization).
  pid_t spawn(unsigned id, uint64_t begin, uint64_t end,
              const std::string *source, const std::string &log,
              unsigned toolEvery, unsigned cacheEvery);
  /// Runs `source` as case `index` alone; the class of how it ended, or ""
  /// if it passed.
  std::string tryAlone(uint64_t index, const std::string &source,
                       std::string *detail = nullptr);

  Shared *shared;
  std::vector<std::string> chips;
  const Corpus &corpus;
  uint64_t casesRun = 0;
};

pid_t Fuzzer::spawn(unsigned id, uint64_t begin, uint64_t end,
                    const std::string *source, const std::string &log,
                    unsigned toolEvery, unsigned cacheEvery) {
  WorkerSlot &slot = shared->slots[id];
  slot.caseIndex = -1;
  slot.stage = kIdle;
  slot.chip = -1;
  slot.finding[0] = '\0';
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid != 0)
    return pid;
  // The worker: its own process group, so a hang's tools die with it.
  setpgid(0, 0);
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
  }
  std::string workDir = outOpt + "/work-" + std::to_string(id);
  ::mkdir(workDir.c_str(), 0755);
  CaseRunner runner(shared, &slot, chips, workDir, /*verbose=*/false);
  for (uint64_t index = begin; index < end; ++index) {
    FuzzCase fuzzCase = makeCase(seedOpt, index, corpus);
    if (source)
      fuzzCase.source = *source;
    runner.run(index, fuzzCase, toolEvery, cacheEvery);
    slot.caseIndex = -1;
  }
  std::fflush(nullptr);
  std::_Exit(0);
}

std::vector<Finding> Fuzzer::runAll(uint64_t first, uint64_t count) {
  std::vector<Finding> findings;
  unsigned jobs =
      std::min<unsigned>(std::max(1u, jobsOpt.getValue()), kMaxJobs);
  int64_t deadline =
      timeBudgetOpt ? nowMs() + int64_t(timeBudgetOpt) * 1000 : INT64_MAX;
  uint64_t end = first + count;
  uint64_t next = first;
  // Small chunks: a time budget stops close to it, and the load spreads.
  const uint64_t chunk = 8;
  std::vector<Worker> workers(jobs);
  auto assign = [&](unsigned id) {
    Worker &w = workers[id];
    if (next >= end || nowMs() >= deadline) {
      w.pid = -1;
      return;
    }
    w.next = next;
    w.end = std::min(end, next + chunk);
    next = w.end;
    w.log = outOpt + "/worker-" + std::to_string(id) + ".log";
    w.pid =
        spawn(id, w.next, w.end, nullptr, w.log, toolEveryOpt, cacheEveryOpt);
  };
  for (unsigned id = 0; id < jobs; ++id)
    assign(id);
  int64_t lastProgress = nowMs();
  for (;;) {
    bool running = false;
    for (unsigned id = 0; id < jobs; ++id) {
      Worker &w = workers[id];
      if (w.pid <= 0)
        continue;
      running = true;
      WorkerSlot &slot = shared->slots[id];
      int status = 0;
      pid_t done = waitpid(w.pid, &status, WNOHANG);
      bool timedOut = false;
      if (done == 0) {
        int64_t current = slot.caseIndex;
        if (current < 0 ||
            nowMs() - slot.startedMs < int64_t(caseTimeoutOpt) * 1000)
          continue;
        kill(-w.pid, SIGKILL);
        kill(w.pid, SIGKILL);
        waitpid(w.pid, &status, 0);
        timedOut = true;
      }
      int64_t current = slot.caseIndex;
      if (!timedOut && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        casesRun += w.end - w.next;
        assign(id);
        continue;
      }
      // The case that was running failed; the ones before it passed.
      uint64_t failed = current >= 0 ? uint64_t(current) : w.next;
      casesRun += failed - w.next + 1;
      kill(-w.pid, SIGKILL);
      FuzzCase fuzzCase = makeCase(seedOpt, failed, corpus);
      Finding finding;
      finding.index = failed;
      finding.origin = fuzzCase.origin;
      finding.kind = classify(status, timedOut, slot);
      finding.stage = getStageName(slot.stage);
      finding.chip = slot.chip >= 0 ? chips[slot.chip] : "";
      finding.detail = slot.finding;
      if (finding.detail.empty()) {
        std::string log = readFile(w.log, 1 << 20);
        finding.detail =
            log.size() > 4000 ? log.substr(log.size() - 4000) : log;
      }
      llvm::errs() << "FAIL case " << failed << " (" << finding.origin
                   << "): " << finding.kind << " in " << finding.stage
                   << (finding.chip.empty() ? "" : " for " + finding.chip)
                   << "\n";
      findings.push_back(finding);
      // Go on after it.
      w.next = failed + 1;
      if (w.next < w.end && nowMs() < deadline)
        w.pid = spawn(id, w.next, w.end, nullptr, w.log, toolEveryOpt,
                      cacheEveryOpt);
      else
        assign(id);
    }
    if (!running)
      break;
    if (nowMs() - lastProgress > 30000) {
      lastProgress = nowMs();
      llvm::errs() << "  ... " << casesRun << " cases done\n";
    }
    usleep(20000);
  }
  return findings;
}

std::string Fuzzer::tryAlone(uint64_t index, const std::string &source,
                             std::string *detail) {
  std::string log = outOpt + "/minimize.log";
  pid_t pid =
      spawn(0, index, index + 1, &source, log, toolEveryOpt, cacheEveryOpt);
  WorkerSlot &slot = shared->slots[0];
  int status = 0;
  bool timedOut = false;
  int64_t start = nowMs();
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (nowMs() - start > int64_t(caseTimeoutOpt) * 1000) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      timedOut = true;
      break;
    }
    usleep(5000);
  }
  kill(-pid, SIGKILL);
  if (!timedOut && WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return "";
  if (detail)
    *detail = slot.finding;
  return classify(status, timedOut, slot) + " in " + getStageName(slot.stage);
}

void Fuzzer::report(const Finding &finding, const FuzzCase &fuzzCase) {
  std::string stem = outOpt + "/case-" + std::to_string(seedOpt) + "-" +
                     std::to_string(finding.index);
  writeFile(stem + ".mlir", fuzzCase.source);
  // Minimize: drop line chunks, then character chunks, while the case still
  // fails the same way (ddmin-style, halving the chunk).
  std::string wanted = finding.kind + " in " + finding.stage;
  std::string best = fuzzCase.source;
  int64_t deadline = nowMs() + int64_t(minimizeSecondsOpt) * 1000;
  if (tryAlone(finding.index, best) == wanted) {
    for (bool byLine : {true, false}) {
      auto units = [&](const std::string &text) {
        std::vector<std::string> parts;
        if (!byLine) {
          for (char c : text)
            parts.emplace_back(1, c);
          return parts;
        }
        std::istringstream in(text);
        for (std::string line; std::getline(in, line);)
          parts.push_back(line + "\n");
        return parts;
      };
      std::vector<std::string> parts = units(best);
      for (size_t size = parts.size() / 2; size >= 1 && nowMs() < deadline;
           size /= 2) {
        for (size_t at = 0; at < parts.size() && nowMs() < deadline;) {
          std::vector<std::string> fewer(parts.begin(), parts.begin() + at);
          fewer.insert(fewer.end(),
                       parts.begin() + std::min(parts.size(), at + size),
                       parts.end());
          std::string text;
          for (const std::string &p : fewer)
            text += p;
          if (!text.empty() && tryAlone(finding.index, text) == wanted) {
            parts = std::move(fewer);
            best = text;
          } else {
            at += size;
          }
        }
        if (size == 1)
          break;
      }
    }
  }
  writeFile(stem + ".min.mlir", best);
  std::ostringstream about;
  about << "case " << finding.index << " of seed " << seedOpt << " ("
        << finding.origin << ")\n"
        << "failure: " << finding.kind << " in " << finding.stage
        << (finding.chip.empty() ? "" : " for " + finding.chip) << "\n"
        << "reproduce: fusedops-fuzz --seed=" << seedOpt
        << " --replay=" << finding.index << " --input=" << stem
        << ".min.mlir\n\n"
        << finding.detail << "\n";
  writeFile(stem + ".txt", about.str());
  llvm::errs() << "  wrote " << stem << ".{mlir,min.mlir,txt}\n";
}

std::vector<std::string> getChips() {
  if (!chipsOpt.empty())
    return std::vector<std::string>(chipsOpt.begin(), chipsOpt.end());
  // "sm_80, sm_86 and sm_90a": the words that are chips.
  std::vector<std::string> chips;
  std::string words = fusedopsKnownChips();
  for (char &c : words)
    if (c == ',')
      c = ' ';
  std::istringstream known(words);
  for (std::string word; known >> word;)
    if (fusedopsChipJitFormat(word.c_str()))
      chips.push_back(word);
  return chips;
}
} // namespace

int main(int argc, char **argv) {
  cl::HideUnrelatedOptions(fuzzCategory);
  cl::ParseCommandLineOptions(
      argc, argv,
      "fusedops-fuzz: generated and mutated inputs through the C API and the "
      "tools, for every chip;\nany crash, abort, LLVM ERROR, hang, silent "
      "error or lost cache file fails (docs/fuzzing.md)\n");
  Corpus corpus;
  std::vector<std::string> folders(corpusOpt.begin(), corpusOpt.end());
  if (std::string error = corpus.load(folders); !error.empty()) {
    llvm::errs() << "fusedops-fuzz: " << error << "\n";
    return 2;
  }
  std::vector<std::string> chips = getChips();
  for (const std::string &chip : chips)
    if (!fusedopsChipJitFormat(chip.c_str())) {
      llvm::errs() << "fusedops-fuzz: unknown chip '" << chip << "'; use "
                   << fusedopsKnownChips() << "\n";
      return 2;
    }
  if (chips.empty() || chips.size() > kMaxChips) {
    llvm::errs() << "fusedops-fuzz: give 1 to " << kMaxChips << " chips\n";
    return 2;
  }
  if (printOpt >= 0) {
    llvm::outs() << makeCase(seedOpt, uint64_t(printOpt), corpus).source;
    return 0;
  }
  if (::mkdir(outOpt.c_str(), 0755) != 0 && errno != EEXIST) {
    llvm::errs() << "fusedops-fuzz: cannot make --out folder '" << outOpt
                 << "': " << std::strerror(errno) << "\n";
    return 2;
  }
  auto *shared = static_cast<Shared *>(mmap(nullptr, sizeof(Shared),
                                            PROT_READ | PROT_WRITE,
                                            MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (shared == MAP_FAILED) {
    llvm::errs() << "fusedops-fuzz: mmap: " << std::strerror(errno) << "\n";
    return 2;
  }
  new (shared) Shared();

  if (replayOpt >= 0) {
    FuzzCase fuzzCase = makeCase(seedOpt, uint64_t(replayOpt), corpus);
    if (!inputOpt.empty())
      fuzzCase.source = readFile(inputOpt, 64 << 20);
    llvm::errs() << "case " << replayOpt << " (" << fuzzCase.origin
                 << ", opt level " << fuzzCase.optLevel << "):\n"
                 << fuzzCase.source << "\n";
    std::string workDir = outOpt + "/replay";
    ::mkdir(workDir.c_str(), 0755);
    CaseRunner runner(shared, nullptr, chips, workDir, /*verbose=*/true);
    runner.run(uint64_t(replayOpt), fuzzCase, toolEveryOpt, cacheEveryOpt);
    llvm::errs() << "passed\n";
    return 0;
  }

  int64_t start = nowMs();
  Fuzzer fuzzer(shared, chips, corpus);
  std::vector<Finding> findings = fuzzer.runAll(firstOpt, casesOpt);
  for (const Finding &finding : findings)
    fuzzer.report(finding, makeCase(seedOpt, finding.index, corpus));

  double seconds = double(nowMs() - start) / 1000;
  llvm::outs() << "fusedops-fuzz: seed " << seedOpt << ", cases " << firstOpt
               << ".." << firstOpt + fuzzer.getCasesRun() << " ("
               << fuzzer.getCasesRun() << " of " << casesOpt << ") in "
               << llvm::format("%.0f", seconds) << " s, " << findings.size()
               << " failing\n";
  llvm::outs()
      << "  chip     cases  lowered  refused  tuned  tool-runs  assembled\n";
  for (size_t i = 0; i < chips.size(); ++i) {
    const ChipCounts &c = shared->chips[i];
    llvm::outs() << llvm::format(
        "  %-7s %6lld %8lld %8lld %6lld %10lld %10lld\n", chips[i].c_str(),
        (long long)c.cases.load(), (long long)c.lowered.load(),
        (long long)c.refused.load(), (long long)c.tuned.load(),
        (long long)c.toolRuns.load(), (long long)c.assembled.load());
  }
  llvm::outs() << "  hostile tuning caches: " << shared->caches.files.load()
               << " (" << shared->caches.refused.load() << " refused, "
               << shared->caches.used.load() << " used, "
               << shared->caches.recorded.load() << " recorded into)\n";
  llvm::outs() << "  op requests: " << shared->opSources.requests.load() << " ("
               << shared->opSources.built.load() << " built, "
               << shared->opSources.lowered.load() << " of them lowered, "
               << shared->opSources.plans.load()
               << " launch plans evaluated)\n";
  for (unsigned id = 0; id < kMaxJobs; ++id) {
    removeTree(outOpt + "/work-" + std::to_string(id));
    if (findings.empty())
      removeTree(outOpt + "/worker-" + std::to_string(id) + ".log");
  }
  removeTree(outOpt + "/minimize.log");
  return findings.empty() ? 0 : 1;
}
