//===- SourceLimits.h - bounds on text parsed for a caller ------*- C++ -*-===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//
//
// MLIR's parser recurses once per nested region, attribute, type or
// parenthesis, on the calling thread's stack: about 5,000 nested regions or a
// 100,000-deep attribute overflow an 8 MiB stack and kill the process. The
// tools may die so on a hostile file, but the C API and the Python package
// parse on their caller's thread, inside the caller's program. They first
// bound the source's nesting with checkSourceNesting: a linear scan, no
// recursion, far below any depth that threatens a thread's stack.
//
//===----------------------------------------------------------------------===//

#ifndef FUSEDOPS_SUPPORT_SOURCELIMITS_H
#define FUSEDOPS_SUPPORT_SOURCELIMITS_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>

namespace mlir::fusedops {

/// The deepest bracket nesting the C API parses: real modules stay below 20;
/// 256 levels of MLIR's parser need well under 1 MiB of stack.
inline constexpr unsigned kMaxSourceNesting = 256;

/// Where `source` nests `(`, `[`, `{` and `<` deeper than `limit` (strings
/// and `//` comments skipped, `->` not a bracket): a message saying the
/// line, the depth and what to change; std::nullopt if it does not.
std::optional<std::string>
checkSourceNesting(llvm::StringRef source, unsigned limit = kMaxSourceNesting);

/// The deepest nesting of JSON arrays and objects in `text` (outside
/// strings), counted without recursion: llvm::json::parse recurses once per
/// level, so JSON from a caller (a tuning cache, an op request) is measured
/// with this before it is parsed.
int64_t getJsonNesting(llvm::StringRef text);

} // namespace mlir::fusedops

#endif // FUSEDOPS_SUPPORT_SOURCELIMITS_H
