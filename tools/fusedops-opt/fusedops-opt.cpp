//===- fusedops-opt.cpp - the fusedops optimizer driver -------------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// mlir-opt with the fusedops dialect and passes added to upstream's dialects,
// extensions and passes (which the lowering pipeline uses).
//
//===----------------------------------------------------------------------===//

#include "fusedops/InitFusedOps.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::fusedops::registerAllPasses();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::fusedops::registerAllDialects(registry);
  mlir::fusedops::registerPipelineDependencies(registry);

  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "fusedops optimizer driver\n", registry));
}
