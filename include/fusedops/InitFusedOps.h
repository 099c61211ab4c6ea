//===- InitFusedOps.h - register fusedops dialects and passes ---*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// What a tool or another compiler calls to make fusedops available: the
// dialect with its external models, and (as they are added) the passes and
// pipelines. Mirrors mlir/InitAllDialects.h.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_INITFUSEDOPS_H
#define FUSEDOPS_INITFUSEDOPS_H

#include "fusedops/Dialect/FusedOps/IR/FusedOps.h"
#include "fusedops/Dialect/FusedOps/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/IR/DialectRegistry.h"

namespace mlir::fusedops {

/// Adds the fusedops dialect and its interface models to `registry`.
inline void registerAllDialects(DialectRegistry &registry) {
  registry.insert<FusedOpsDialect>();
  registerBufferizableOpInterfaceExternalModels(registry);
}

} // namespace mlir::fusedops

#endif // FUSEDOPS_INITFUSEDOPS_H
