//===- fusedops-compile.cpp - fusedops ops to PTX and cubin files ---------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Runs `fusedops-to-binary` on a module and writes what a user inspects or
// ships: the kernels' PTX (--ptx), their cubin (--cubin) and the lowered
// module with its host code (-o). Prints one line per kernel.
//
//   fusedops-compile model.mlir --chip=sm_90a --ptx=model.ptx
//   --cubin=model.cubin
//
//===----------------------------------------------------------------------===//

#include "fusedops/InitFusedOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;

/// The tool's own options: --help shows these, not LLVM's hundreds.
static llvm::cl::OptionCategory compileCategory("fusedops-compile options");

static llvm::cl::opt<std::string> inputFile(llvm::cl::Positional,
                                            llvm::cl::desc("<input.mlir>"),
                                            llvm::cl::init("-"),
                                            llvm::cl::cat(compileCategory));
static llvm::cl::opt<std::string>
    chip("chip",
         llvm::cl::desc("Target chip: sm_80, sm_86, sm_89, sm_90 or sm_90a"),
         llvm::cl::init("sm_90a"), llvm::cl::cat(compileCategory));
static llvm::cl::opt<unsigned>
    optLevel("opt-level", llvm::cl::desc("NVVM optimisation level, 0 to 3"),
             llvm::cl::init(3), llvm::cl::cat(compileCategory));
static llvm::cl::opt<std::string>
    ptxFile("ptx", llvm::cl::desc("Write the kernels' PTX to this file"),
            llvm::cl::init(""), llvm::cl::cat(compileCategory));
static llvm::cl::opt<std::string>
    cubinFile("cubin", llvm::cl::desc("Write the kernels' cubin to this file"),
              llvm::cl::init(""), llvm::cl::cat(compileCategory));
static llvm::cl::opt<std::string> outputFile(
    "o", llvm::cl::desc("Write the lowered module (host code and gpu.binary)"),
    llvm::cl::init(""), llvm::cl::cat(compileCategory));

/// Writes `content` to `path` and checks that every byte arrived: a regular
/// file (or a new one) through a temporary beside it renamed over it, so a
/// failed write leaves what was there; a device or FIFO (/dev/stdout,
/// /dev/full) directly. Refuses to overwrite the input. Without the checks
/// a full disk ended the process in LLVM's "IO failure on output stream"
/// after "wrote" was printed.
static LogicalResult writeOutput(StringRef path, StringRef content,
                                 std::string &error) {
  if (path != "-" && inputFile != "-" &&
      llvm::sys::fs::equivalent(path, inputFile)) {
    error = ("not writing " + path + ": it is the input file").str();
    return failure();
  }
  auto finish = [&](llvm::raw_fd_ostream &os, StringRef shown) {
    os << content;
    os.close();
    if (!os.has_error())
      return success();
    error = ("cannot write " + shown + ": " + os.error().message()).str();
    os.clear_error();
    return failure();
  };
  llvm::sys::fs::file_status status;
  bool special = path == "-" ||
                 (!llvm::sys::fs::status(path, status) &&
                  status.type() != llvm::sys::fs::file_type::regular_file &&
                  status.type() != llvm::sys::fs::file_type::file_not_found);
  if (special) {
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
    if (ec) {
      error = ("cannot open " + path + ": " + ec.message()).str();
      return failure();
    }
    return finish(os, path);
  }
  SmallString<128> temporary;
  int fd = -1;
  if (std::error_code ec = llvm::sys::fs::createUniqueFile(path + ".tmp-%%%%%%",
                                                           fd, temporary)) {
    error = ("cannot create a file beside " + path + ": " + ec.message()).str();
    return failure();
  }
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    if (failed(finish(os, path))) {
      llvm::sys::fs::remove(temporary);
      return failure();
    }
  }
  if (std::error_code ec = llvm::sys::fs::rename(temporary, path)) {
    llvm::sys::fs::remove(temporary);
    error = ("cannot replace " + path + ": " + ec.message()).str();
    return failure();
  }
  return success();
}

/// Runs the pipeline for one format on a copy of `module`; writes the
/// binary's object to `path` and, if asked, the lowered module.
static LogicalResult compile(ModuleOp module, StringRef format, StringRef path,
                             StringRef loweredPath) {
  OwningOpRef<ModuleOp> copy = module.clone();
  PassManager pm(module.getContext());
  fusedops::FusedOpsToBinaryOptions options;
  options.chip = chip;
  options.format = format.str();
  options.optLevel = optLevel;
  if (failed(fusedops::buildFusedOpsToBinaryPipeline(
          pm, options,
          [&](const Twine &message) {
            return emitError(module.getLoc()) << message;
          })) ||
      failed(pm.run(*copy)))
    return failure();

  std::string object;
  copy->walk([&](gpu::BinaryOp binary) {
    for (Attribute attr : binary.getObjects())
      if (auto gpuObject = dyn_cast<gpu::ObjectAttr>(attr))
        object = gpuObject.getObject().getValue().str();
  });
  if (object.empty())
    return emitError(module.getLoc())
           << "the module has no fusedops op to compile to a kernel";
  std::string error;
  if (!path.empty()) {
    if (failed(writeOutput(path, object, error)))
      return emitError(module.getLoc()) << error;
    llvm::outs() << "wrote " << path << " (" << format << ", " << chip << ", "
                 << object.size() << " bytes)\n";
  }
  if (!loweredPath.empty()) {
    std::string lowered;
    llvm::raw_string_ostream os(lowered);
    copy->print(os);
    if (failed(writeOutput(loweredPath, lowered, error)))
      return emitError(module.getLoc()) << error;
  }
  return success();
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  llvm::cl::HideUnrelatedOptions(compileCategory);
  llvm::cl::ParseCommandLineOptions(
      argc, argv, "fusedops-compile: fusedops ops to PTX and cubin\n");
  if (ptxFile.empty() && cubinFile.empty() && outputFile.empty()) {
    llvm::errs() << "fusedops-compile: nothing to write; give --ptx=<file>, "
                    "--cubin=<file> and/or -o <file>\n";
    return 2;
  }

  DialectRegistry registry;
  fusedops::registerAllDialects(registry);
  fusedops::registerPipelineDialects(registry);
  fusedops::registerPipelineDependencies(registry);
  MLIRContext context(registry);

  std::string error;
  auto input = openInputFile(inputFile, &error);
  if (!input) {
    llvm::errs() << "fusedops-compile: " << error << "\n";
    return 1;
  }
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
  SourceMgrDiagnosticHandler handler(sourceMgr, &context);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    return 1;

  bool ok = true;
  if (!ptxFile.empty())
    ok &= succeeded(compile(*module, "isa", ptxFile,
                            cubinFile.empty() ? StringRef(outputFile) : ""));
  if (ok && !cubinFile.empty())
    ok &= succeeded(compile(*module, "bin", cubinFile, outputFile));
  if (ok && ptxFile.empty() && cubinFile.empty())
    ok &= succeeded(compile(*module, "bin", "", outputFile));
  return ok ? 0 : 1;
}
