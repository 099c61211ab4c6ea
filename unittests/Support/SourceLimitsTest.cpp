//===- SourceLimitsTest.cpp - the nesting bound on parsed sources ---------===//
//
// Part of fusedops, under the MIT License.
//
//===----------------------------------------------------------------------===//

#include "fusedops/Support/SourceLimits.h"

#include "gtest/gtest.h"

#include <string>

using namespace mlir::fusedops;

namespace {
std::string nested(unsigned depth, char open, char close) {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(SourceLimits, CountsEveryBracketKind) {
  for (auto [open, close] : {std::pair{'(', ')'}, std::pair{'[', ']'},
                             std::pair{'{', '}'}, std::pair{'<', '>'}}) {
    EXPECT_FALSE(checkSourceNesting(nested(8, open, close), 8)) << open;
    std::optional<std::string> message =
        checkSourceNesting(nested(9, open, close), 8);
    ASSERT_TRUE(message) << open;
    EXPECT_NE(message->find("deeper than 8 levels (line 1)"), std::string::npos)
        << *message;
  }
  // Siblings do not add up.
  EXPECT_FALSE(checkSourceNesting("[[]] [[]] {()} <<>>", 2));
  // Mixed kinds do.
  EXPECT_TRUE(checkSourceNesting("{[(<x>)]}", 3));
}

TEST(SourceLimits, SkipsStringsCommentsAndArrows) {
  EXPECT_FALSE(checkSourceNesting("\"[[[[\\\"[[[\" // {{{{{{\n(x)", 1));
  // `->` closes nothing: the type below nests 2 deep, not 1 after the arrow.
  EXPECT_FALSE(checkSourceNesting("!t<(i32) -> i32>", 2));
  EXPECT_TRUE(checkSourceNesting("!t<(i32) -> <<i32>>>", 2));
  // A comparison in an integer set neither closes nor hides a level.
  EXPECT_FALSE(checkSourceNesting("affine_set<(d0) : (d0 >= 0)>", 2));
  // Unclosed `<` before a `)` do not count forever.
  EXPECT_FALSE(checkSourceNesting("(<) (<) (<) (<)", 2));
}

TEST(SourceLimits, NamesTheLineAndWhatToDo) {
  std::optional<std::string> message =
      checkSourceNesting("module {\n// [[[[\n\"{{{{\"\n  [[[\n", 3);
  ASSERT_TRUE(message);
  EXPECT_NE(message->find("(line 4)"), std::string::npos) << *message;
  EXPECT_NE(message->find("fusedops-compile"), std::string::npos) << *message;
}

TEST(SourceLimits, HugeInputsNeitherRecurseNorFail) {
  EXPECT_TRUE(checkSourceNesting(std::string(1 << 22, '[')));
  std::string flat;
  for (int i = 0; i < 100000; ++i)
    flat += "[[x]] ";
  EXPECT_FALSE(checkSourceNesting(flat));
}
} // namespace
