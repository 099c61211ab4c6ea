//===- consumer.cpp - uses the installed fusedops package -----------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// Parses and verifies a function holding a fusedops op with the installed
// headers and libraries, prints it back, and exits non-zero on any failure.
//
//===----------------------------------------------------------------------===//

#include "fusedops/InitFusedOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/raw_ostream.h"

int main() {
  mlir::DialectRegistry registry;
  registry.insert<mlir::func::FuncDialect>();
  mlir::fusedops::registerAllDialects(registry);
  mlir::MLIRContext context(registry);

  const char *text = R"mlir(
    func.func @f(%q: memref<8x16xf8E4M3FN>, %s: memref<f32>, %o: memref<8x16xf16>) {
      fusedops.dequantize ins(%q, %s : memref<8x16xf8E4M3FN>, memref<f32>)
          outs(%o : memref<8x16xf16>) granularity = tensor
          {tile = #fusedops.tile<block = [8, 16], warps = 1>}
      return
    }
  )mlir";
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(text, &context);
  if (!module || mlir::failed(mlir::verify(*module)))
    return 1;
  module->print(llvm::outs());
  return 0;
}
