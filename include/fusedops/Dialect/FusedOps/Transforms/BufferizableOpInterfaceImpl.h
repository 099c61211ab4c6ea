//===- BufferizableOpInterfaceImpl.h - fusedops bufferization ---*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_DIALECT_FUSEDOPS_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H
#define FUSEDOPS_DIALECT_FUSEDOPS_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H

namespace mlir {
class DialectRegistry;

namespace fusedops {
/// Attaches BufferizableOpInterface to every fusedops op, so that upstream
/// `one-shot-bufferize` takes their tensor form to the buffer form the GPU
/// lowering consumes.
void registerBufferizableOpInterfaceExternalModels(DialectRegistry &registry);
} // namespace fusedops
} // namespace mlir

#endif // FUSEDOPS_DIALECT_FUSEDOPS_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H
