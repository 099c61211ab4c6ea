//===- Internal.h - what the C API's source files share ---------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_LIB_CAPI_INTERNAL_H
#define FUSEDOPS_LIB_CAPI_INTERNAL_H

#include "fusedops-c/Compiler.h"

#include <string>

/// Sets the C API's last error on this thread and returns `status`
/// (Compiler.cpp).
fusedops_compile_status fusedopsCapiFail(fusedops_compile_status status,
                                         std::string message);

/// `text` in a buffer from malloc (the caller frees it with
/// fusedopsBufferFree), or null where malloc fails.
char *fusedopsCapiCopyOut(const std::string &text);

#endif // FUSEDOPS_LIB_CAPI_INTERNAL_H
