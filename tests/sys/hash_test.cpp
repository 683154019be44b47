#include "dualstack/sys/hash.hpp"

#include <gtest/gtest.h>

namespace dualstack::sys {
namespace {

// The published FNV-1a test vectors.
TEST(Fnv1a, MatchesTheReferenceVectors) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ULL);
  EXPECT_EQ(fnv1a32(""), 0x811c9dc5U);
  EXPECT_EQ(fnv1a32("a"), 0xe40c292cU);
  EXPECT_EQ(fnv1a32("foobar"), 0xbf9cf968U);
}

TEST(Fnv1a, ContinuingIsHashingTheConcatenation) {
  EXPECT_EQ(fnv1a64("bar", fnv1a64("foo")), fnv1a64("foobar"));
  EXPECT_EQ(fnv1a32("bar", fnv1a32("foo")), fnv1a32("foobar"));
  static_assert(fnv1a64("a") == 0xaf63dc4c8601ec8cULL, "usable at compile time");
}

}  // namespace
}  // namespace dualstack::sys
