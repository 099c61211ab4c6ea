//===- DeviceBuffers.cpp - buffers of fusedops ops in GPU memory ----------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace mlir::fusedops {
#define GEN_PASS_DEF_FUSEDOPSDEVICEBUFFERS
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h.inc"
} // namespace mlir::fusedops

using namespace mlir;
using namespace mlir::fusedops;

/// Whether `value` (or a view of it) is an operand of a fusedops op.
static bool reachesFusedOp(Value value) {
  SmallVector<Value> worklist = {value};
  DenseSet<Value> seen;
  while (!worklist.empty()) {
    Value current = worklist.pop_back_val();
    if (!seen.insert(current).second)
      continue;
    for (Operation *user : current.getUsers()) {
      if (user->getDialect() && isa<FusedOpsDialect>(user->getDialect()))
        return true;
      if (auto view = dyn_cast<ViewLikeOpInterface>(user))
        if (view.getViewSource() == current)
          worklist.push_back(view->getResult(0));
      if (isa<memref::CastOp>(user))
        worklist.push_back(user->getResult(0));
    }
  }
  return false;
}

namespace {
struct FusedOpsDeviceBuffersPass
    : public fusedops::impl::FusedOpsDeviceBuffersBase<
          FusedOpsDeviceBuffersPass> {
  void runOnOperation() override {
    SmallVector<memref::AllocOp> allocs;
    getOperation().walk([&](memref::AllocOp alloc) {
      // Kernels' own buffers live in gpu.module; only host allocations move.
      if (!alloc->getParentOfType<gpu::GPUModuleOp>() &&
          reachesFusedOp(alloc.getResult()))
        allocs.push_back(alloc);
    });
    for (memref::AllocOp alloc : allocs) {
      OpBuilder b(alloc);
      auto device = gpu::AllocOp::create(
          b, alloc.getLoc(), alloc.getType(), /*asyncToken=*/Type(),
          /*asyncDependencies=*/ValueRange{}, alloc.getDynamicSizes(),
          alloc.getSymbolOperands(), /*hostShared=*/UnitAttr());
      for (Operation *user : llvm::to_vector(alloc->getUsers()))
        if (auto dealloc = dyn_cast<memref::DeallocOp>(user)) {
          OpBuilder db(dealloc);
          gpu::DeallocOp::create(db, dealloc.getLoc(), /*asyncToken=*/Type(),
                                 ValueRange{}, device.getMemref());
          dealloc.erase();
        }
      alloc.getResult().replaceAllUsesWith(device.getMemref());
      alloc.erase();
    }
    freeDeviceBuffersOnDevice();
  }

  /// `memref.dealloc`s of GPU buffers (from gpu.alloc, through views and
  /// function results) become `gpu.dealloc`: the deallocation pipeline
  /// frees what a function owns, including GPU buffers a callee returned,
  /// and a host free() of a device pointer would crash.
  void freeDeviceBuffersOnDevice() {
    ModuleOp module = getOperation();
    DenseSet<Value> device;
    module.walk([&](gpu::AllocOp alloc) { device.insert(alloc.getMemref()); });
    bool changed = true;
    while (changed) {
      changed = false;
      auto mark = [&](Value value) { changed |= device.insert(value).second; };
      module.walk([&](Operation *op) {
        if (op->getParentOfType<gpu::GPUModuleOp>())
          return;
        if (auto view = dyn_cast<ViewLikeOpInterface>(op)) {
          if (device.contains(view.getViewSource()))
            mark(op->getResult(0));
        } else if (isa<memref::CastOp>(op)) {
          if (device.contains(op->getOperand(0)))
            mark(op->getResult(0));
        } else if (auto meta = dyn_cast<memref::ExtractStridedMetadataOp>(op)) {
          if (device.contains(meta.getSource()))
            mark(meta.getBaseBuffer());
        } else if (auto call = dyn_cast<func::CallOp>(op)) {
          auto callee = module.lookupSymbol<func::FuncOp>(call.getCallee());
          if (!callee || callee.isExternal())
            return;
          callee.walk([&](func::ReturnOp ret) {
            for (auto [index, operand] : llvm::enumerate(ret.getOperands()))
              if (device.contains(operand))
                mark(call.getResult(index));
          });
        }
      });
    }
    SmallVector<memref::DeallocOp> deallocs;
    module.walk([&](memref::DeallocOp dealloc) {
      if (device.contains(dealloc.getMemref()))
        deallocs.push_back(dealloc);
    });
    for (memref::DeallocOp dealloc : deallocs) {
      OpBuilder b(dealloc);
      gpu::DeallocOp::create(b, dealloc.getLoc(), /*asyncToken=*/Type(),
                             ValueRange{}, dealloc.getMemref());
      dealloc.erase();
    }
  }
};
} // namespace
