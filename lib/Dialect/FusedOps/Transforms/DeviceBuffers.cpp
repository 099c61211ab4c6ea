//===- DeviceBuffers.cpp - buffers of fusedops ops in GPU memory ----------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"
#include "fusedops/Dialect/FusedOps/Transforms/Passes.h"

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
      if (user->getDialect() &&
          isa<FusedOpsDialect>(user->getDialect()))
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
  }
};
} // namespace
