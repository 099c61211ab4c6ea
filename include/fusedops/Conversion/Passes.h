//===- Passes.h - fusedops conversion passes --------------------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_CONVERSION_PASSES_H
#define FUSEDOPS_CONVERSION_PASSES_H

#include "fusedops/Conversion/FusedOpsToGPU/FusedOpsToGPU.h"
#include "mlir/Pass/Pass.h"

namespace mlir::fusedops {

#define GEN_PASS_DECL
#include "fusedops/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "fusedops/Conversion/Passes.h.inc"

} // namespace mlir::fusedops

#endif // FUSEDOPS_CONVERSION_PASSES_H
