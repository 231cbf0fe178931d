// Failpoints read JAMBA_FAILPOINTS once, at the first evaluation; this
// binary sets it before any.
#include "core/failpoint.h"

#include <stdlib.h>

#include "gtest/gtest.h"

namespace jamba {
namespace {

TEST(FailpointTest, FiresAsTheEnvironmentSays) {
  setenv("JAMBA_FAILPOINTS", "always,third@3,bad@x,zero@0,,", 1);
  EXPECT_TRUE(FailpointFires("always"));
  EXPECT_TRUE(FailpointFires("always"));
  EXPECT_FALSE(FailpointFires("third"));
  EXPECT_FALSE(FailpointFires("third"));
  EXPECT_TRUE(FailpointFires("third"));
  EXPECT_TRUE(FailpointFires("third"));
  EXPECT_FALSE(FailpointFires("bad"));   // malformed count: off
  EXPECT_FALSE(FailpointFires("zero"));  // counts start at 1: off
  EXPECT_FALSE(FailpointFires("unnamed"));
  EXPECT_FALSE(FailpointFires(""));
}

}  // namespace
}  // namespace jamba
