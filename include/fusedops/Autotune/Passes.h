//===- Passes.h - fusedops autotuning passes --------------------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_AUTOTUNE_PASSES_H
#define FUSEDOPS_AUTOTUNE_PASSES_H

#include "mlir/Pass/Pass.h"

namespace mlir::fusedops {

#define GEN_PASS_DECL
#include "fusedops/Autotune/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "fusedops/Autotune/Passes.h.inc"

} // namespace mlir::fusedops

#endif // FUSEDOPS_AUTOTUNE_PASSES_H
