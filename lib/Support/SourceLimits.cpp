//===- SourceLimits.cpp - bounds on text parsed for a caller --------------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Support/SourceLimits.h"

#include "llvm/ADT/SmallVector.h"

#include <algorithm>

using namespace llvm;
using namespace mlir;
using namespace mlir::fusedops;

std::optional<std::string> mlir::fusedops::checkSourceNesting(StringRef source,
                                                              unsigned limit) {
  SmallVector<char> open;
  size_t line = 1;
  for (size_t i = 0, e = source.size(); i < e; ++i) {
    char c = source[i];
    switch (c) {
    case '\n':
      ++line;
      break;
    case '"':
      // A string literal: skip to its closing quote, over escapes.
      for (++i; i < e && source[i] != '"'; ++i) {
        if (source[i] == '\\')
          ++i;
        else if (source[i] == '\n')
          ++line;
      }
      break;
    case '/':
      if (i + 1 < e && source[i + 1] == '/')
        while (i + 1 < e && source[i + 1] != '\n')
          ++i;
      break;
    case '(':
    case '[':
    case '{':
    case '<':
      open.push_back(c);
      if (open.size() > limit)
        return "the source nests brackets deeper than " +
               std::to_string(limit) + " levels (line " + std::to_string(line) +
               "); fusedops parses at most that on the caller's thread, "
               "where a deeper parse could overflow its stack: flatten the "
               "module or compile it with fusedops-compile";
      break;
    case '>':
      // `->` is an arrow; a `>` that closes nothing open as `<` is a
      // comparison (`d0 >= 0`) or a syntax error the parser reports.
      if (i > 0 && source[i - 1] == '-')
        break;
      if (!open.empty() && open.back() == '<')
        open.pop_back();
      break;
    case ')':
    case ']':
    case '}': {
      char opener = c == ')' ? '(' : c == ']' ? '[' : '{';
      // Unclosed `<` inside (a syntax error) must not hide depth: pop to the
      // matching opener, and leave a mismatch to the parser.
      while (!open.empty() && open.back() == '<')
        open.pop_back();
      if (!open.empty() && open.back() == opener)
        open.pop_back();
      break;
    }
    default:
      break;
    }
  }
  return std::nullopt;
}

int64_t mlir::fusedops::getJsonNesting(StringRef text) {
  int64_t depth = 0, deepest = 0;
  bool inString = false, escaped = false;
  for (char c : text) {
    if (inString) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        inString = false;
      continue;
    }
    if (c == '"')
      inString = true;
    else if (c == '[' || c == '{')
      deepest = std::max(deepest, ++depth);
    else if (c == ']' || c == '}')
      --depth;
  }
  return deepest;
}
