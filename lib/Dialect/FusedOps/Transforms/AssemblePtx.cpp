//===- AssemblePtx.cpp - PTX objects to cubins under a time limit ---------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Dialect/FusedOps/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"

namespace mlir::fusedops {
#define GEN_PASS_DEF_FUSEDOPSASSEMBLEPTX
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h.inc"
} // namespace mlir::fusedops

using namespace mlir;

namespace {
/// A temporary file removed on destruction.
struct TemporaryFile {
  SmallString<128> path;
  std::error_code create(StringRef suffix) {
    int fd = -1;
    std::error_code ec =
        llvm::sys::fs::createTemporaryFile("fusedops-ptxas", suffix, fd, path);
    if (!ec)
      llvm::sys::fs::closeFile(fd);
    return ec;
  }
  ~TemporaryFile() {
    if (!path.empty())
      llvm::sys::fs::remove(path);
  }
};

struct FusedOpsAssemblePtxPass
    : public fusedops::impl::FusedOpsAssemblePtxBase<FusedOpsAssemblePtxPass> {
  using Base::Base;

  /// The cubin of `ptx` for `targetChip`, or failure with a diagnostic on
  /// `binary`.
  FailureOr<std::string> assemble(gpu::BinaryOp binary, StringRef ptx,
                                  StringRef targetChip) {
    TemporaryFile input, output, log;
    for (auto [file, suffix] :
         {std::pair(&input, "ptx"), std::pair(&output, "cubin"),
          std::pair(&log, "log")})
      if (std::error_code ec = file->create(suffix))
        return binary.emitError()
               << "cannot create a temporary file for ptxas: " << ec.message();
    {
      std::error_code ec;
      llvm::raw_fd_ostream os(input.path, ec);
      if (!ec) {
        os << ptx;
        os.close();
        ec = os.error();
        os.clear_error();
      }
      if (ec)
        return binary.emitError() << "cannot write the PTX for ptxas to "
                                  << input.path << ": " << ec.message();
    }
    std::string arch = ("-arch=" + targetChip).str();
    std::string level = "-O" + std::to_string(optLevel);
    SmallVector<StringRef> args = {ptxas,      arch, level,
                                   input.path, "-o", output.path};
    std::optional<StringRef> redirects[] = {std::nullopt, StringRef(log.path),
                                            StringRef(log.path)};
    std::string message;
    bool failedToRun = false;
    int status =
        llvm::sys::ExecuteAndWait(ptxas, args, std::nullopt, redirects, timeout,
                                  /*MemoryLimit=*/0, &message, &failedToRun);
    if (status == -2 && !failedToRun)
      return binary.emitError()
             << ptxas << " did not finish within " << timeout.getValue()
             << " s and was stopped; raise the pipeline's ptxas-timeout or "
                "check the toolkit";
    if (status != 0) {
      auto text = llvm::MemoryBuffer::getFile(log.path);
      return binary.emitError()
             << ptxas << " failed ("
             << (message.empty() ? "exit " + std::to_string(status) : message)
             << ")" << (text ? ":\n" + (*text)->getBuffer().str() : "");
    }
    auto cubin = llvm::MemoryBuffer::getFile(output.path, /*IsText=*/false);
    if (!cubin || (*cubin)->getBufferSize() == 0)
      return binary.emitError() << ptxas << " wrote no cubin";
    return (*cubin)->getBuffer().str();
  }

  void runOnOperation() override {
    if (ptxas.empty()) {
      getOperation().emitError() << "fusedops-assemble-ptx needs ptxas=<path>";
      return signalPassFailure();
    }
    WalkResult result = getOperation().walk([&](gpu::BinaryOp binary) {
      SmallVector<Attribute> objects;
      for (Attribute attr : binary.getObjects()) {
        auto object = dyn_cast<gpu::ObjectAttr>(attr);
        if (!object || object.getFormat() != gpu::CompilationTarget::Assembly) {
          objects.push_back(attr);
          continue;
        }
        // PTX is assembled for the chip it was generated for: the object's
        // own NVVM target (a gpu.module may carry one that differs from the
        // pipeline's chip), else the pass's.
        auto target = dyn_cast<NVVM::NVVMTargetAttr>(object.getTarget());
        FailureOr<std::string> cubin =
            assemble(binary, object.getObject().getValue(),
                     target ? target.getChip() : StringRef(chip));
        if (failed(cubin))
          return WalkResult::interrupt();
        objects.push_back(
            gpu::ObjectAttr::get(binary.getContext(), object.getTarget(),
                                 gpu::CompilationTarget::Binary,
                                 StringAttr::get(binary.getContext(), *cubin),
                                 object.getProperties(), object.getKernels()));
      }
      binary.setObjectsAttr(ArrayAttr::get(binary.getContext(), objects));
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }
};
} // namespace
