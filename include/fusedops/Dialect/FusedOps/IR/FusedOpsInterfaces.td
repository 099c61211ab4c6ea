//===- FusedOpsInterfaces.td - fusedops op interfaces ------*- tablegen -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_DIALECT_FUSEDOPS_IR_FUSEDOPSINTERFACES_TD
#define FUSEDOPS_DIALECT_FUSEDOPS_IR_FUSEDOPSINTERFACES_TD

include "mlir/IR/OpBase.td"

def FusedOps_TileConfigurableOpInterface
    : OpInterface<"TileConfigurableOpInterface"> {
  let cppNamespace = "::mlir::fusedops";
  let description = [{
    An op that lowers to one tiled kernel whose configuration is given by an
    optional `tile` attribute (`#fusedops.tile<...>`). The autotuner and the
    lowering reach the tile through this interface only.
  }];
  let methods = [
    InterfaceMethod<
      /*desc=*/"Number of entries the tile's `block` list has at most.",
      /*retTy=*/"unsigned", /*methodName=*/"getTileBlockRank">,
    InterfaceMethod<
      /*desc=*/[{Number of entries the tile's `block` list has at least
        (those past it take the op's documented defaults); by default all
        of them.}],
      /*retTy=*/"unsigned", /*methodName=*/"getMinTileBlockRank", (ins), [{}],
      [{ return $_op.getTileBlockRank(); }]>,
    InterfaceMethod<
      /*desc=*/"The tile configuration, or null when none is set.",
      /*retTy=*/"::mlir::fusedops::TileConfigAttr",
      /*methodName=*/"getTileConfig", (ins), [{}], [{
        return $_op.getTileAttr();
      }]>,
    InterfaceMethod<
      /*desc=*/"Sets (or, with null, removes) the tile configuration.",
      /*retTy=*/"void", /*methodName=*/"setTileConfig",
      (ins "::mlir::fusedops::TileConfigAttr":$tile), [{}], [{
        $_op.setTileAttr(tile);
      }]>
  ];
  let verify = [{
    return ::mlir::fusedops::detail::verifyTileConfigurableOp($_op);
  }];
}

#endif // FUSEDOPS_DIALECT_FUSEDOPS_IR_FUSEDOPSINTERFACES_TD
