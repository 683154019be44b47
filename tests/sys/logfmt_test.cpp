#include "dualstack/sys/logfmt.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace dualstack::sys {
namespace {

TEST(LogValue, QuotesAndEscapesWhatCouldBreakALine) {
  EXPECT_EQ(logValue("eth0"), "eth0");
  EXPECT_EQ(logValue(""), "\"\"");
  EXPECT_EQ(logValue("two words"), "\"two words\"");
  EXPECT_EQ(logValue("a\nb"), "\"a\\nb\"");
  EXPECT_EQ(logValue("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(logValue("k=v"), "\"k=v\"");
  EXPECT_EQ(logValue(std::string("x\x01y")), "\"x\\x01y\"");
  EXPECT_EQ(logValue("back\\slash"), "\"back\\\\slash\"");
  EXPECT_EQ(logValue("abcdef", 3), "\"abc...\"");
}

TEST(LogTimestamp, IsUtcWithMilliseconds) {
  EXPECT_TRUE(
      std::regex_match(logTimestamp(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << logTimestamp();
}

}  // namespace
}  // namespace dualstack::sys
