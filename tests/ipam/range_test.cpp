#include "dualstack/ipam/range.hpp"

#include <gtest/gtest.h>

#include "dualstack/cni/error.hpp"

namespace dualstack::ipam {
namespace {

ip::Address A(const char* text) { return *ip::Address::parse(text); }
ip::Prefix P(const char* text) { return *ip::Prefix::parse(text); }

Range plain(const char* cidr) {
  return makeRange(P(cidr), std::nullopt, std::nullopt, std::nullopt, "r");
}

std::string error(const char* cidr, const char* start, const char* end, const char* gw) {
  auto opt = [](const char* t) { return t ? std::optional(A(t)) : std::nullopt; };
  try {
    makeRange(P(cidr), opt(start), opt(end), opt(gw), "ipam.ranges[0][0]");
  } catch (const cni::Error& e) {
    EXPECT_EQ(e.code(), cni::Code::InvalidConfig);
    return e.msg();
  }
  return "(no error)";
}

TEST(Range, HostLocalDefaults) {
  const Range v4 = plain("10.244.1.0/24");
  EXPECT_EQ(v4.gateway.str(), "10.244.1.1");
  EXPECT_EQ(v4.start.str(), "10.244.1.1");
  EXPECT_EQ(v4.end.str(), "10.244.1.254");  // broadcast excluded
  EXPECT_TRUE(v4.usable() == 253);
  const Range v6 = plain("fd00:10:244:1::/64");
  EXPECT_EQ(v6.gateway.str(), "fd00:10:244:1::1");
  EXPECT_EQ(v6.start.str(), "fd00:10:244:1::1");
  EXPECT_EQ(v6.end.str(), "fd00:10:244:1:ffff:ffff:ffff:ffff");  // IPv6 has no broadcast
  EXPECT_TRUE(v6.usable() == (ip::u128{1} << 64) - 2);
  EXPECT_EQ(v4.str(), "10.244.1.0/24");
}

TEST(Range, SmallestSubnets) {
  EXPECT_TRUE(plain("10.0.0.0/30").usable() == 1);
  EXPECT_TRUE(plain("fd00::/126").usable() == 2);
  EXPECT_TRUE(plain("fd00::100/120").usable() == 254);
  EXPECT_EQ(plain("fd00::100/120").end.str(), "fd00::1ff");
  for (const char* tooSmall : {"10.0.0.0/31", "10.0.0.0/32", "fd00::/127", "fd00::/128"}) {
    EXPECT_NE(error(tooSmall, nullptr, nullptr, nullptr).find("is too small"), std::string::npos)
        << tooSmall;
  }
}

TEST(Range, WholeIpv6SpaceDoesNotOverflow) {
  const Range r = makeRange(P("::/0"), A("::"), std::nullopt, std::nullopt, "r");
  EXPECT_TRUE(r.usable() == ~ip::u128{0} - 1);  // 2^128 minus network and gateway
}

TEST(Range, Reserved) {
  const Range r = plain("10.0.0.0/24");
  EXPECT_TRUE(r.isReserved(A("10.0.0.0")));
  EXPECT_TRUE(r.isReserved(A("10.0.0.1")));
  EXPECT_TRUE(r.isReserved(A("10.0.0.255")));
  EXPECT_FALSE(r.isReserved(A("10.0.0.254")));
  const Range v6 = plain("fd00::/64");
  EXPECT_FALSE(v6.isReserved(A("fd00::ffff:ffff:ffff:ffff")));
  EXPECT_TRUE(v6.isReserved(A("fd00::")));
}

TEST(Range, Errors) {
  EXPECT_EQ(error("10.0.0.1/24", nullptr, nullptr, nullptr),
            "ipam.ranges[0][0]: 10.0.0.1/24 has host bits set (the network is 10.0.0.0/24)");
  EXPECT_EQ(error("10.0.0.0/24", "10.0.1.5", nullptr, nullptr),
            "ipam.ranges[0][0]: rangeStart 10.0.1.5 is outside the subnet 10.0.0.0/24");
  EXPECT_EQ(error("10.0.0.0/24", nullptr, "fd00::1", nullptr),
            "ipam.ranges[0][0]: rangeEnd fd00::1 is outside the subnet 10.0.0.0/24");
  EXPECT_EQ(error("10.0.0.0/24", nullptr, nullptr, "10.1.0.1"),
            "ipam.ranges[0][0]: gateway 10.1.0.1 is outside the subnet 10.0.0.0/24");
  EXPECT_EQ(error("10.0.0.0/24", "10.0.0.9", "10.0.0.8", nullptr),
            "ipam.ranges[0][0]: rangeStart 10.0.0.9 is after rangeEnd 10.0.0.8");
  EXPECT_NE(error("10.0.0.0/24", "10.0.0.1", "10.0.0.1", nullptr).find("no usable address"),
            std::string::npos);
}

TEST(RangeSets, OverlapsAreRejectedAcrossAndWithinSets) {
  auto r = [](const char* cidr, const char* s = nullptr, const char* e = nullptr) {
    auto opt = [](const char* t) { return t ? std::optional(A(t)) : std::nullopt; };
    return makeRange(P(cidr), opt(s), opt(e), std::nullopt, "r");
  };
  const std::vector<std::string> names{"ipam.ranges[0]", "ipam.ranges[1]"};
  try {
    checkRangeSets({{0, {r("10.0.0.0/16")}}, {1, {r("10.0.5.0/24")}}}, names);
    ADD_FAILURE();
  } catch (const cni::Error& e) {
    EXPECT_EQ(e.msg(), "ipam.ranges[1][0]: 10.0.5.0/24 overlaps ipam.ranges[0][0] (10.0.0.0/16)");
  }
  // host-local allows disjoint pieces of one subnet.
  EXPECT_NO_THROW(checkRangeSets({{0, {r("10.0.0.0/24", "10.0.0.10", "10.0.0.19")}},
                                  {1, {r("10.0.0.0/24", "10.0.0.20", "10.0.0.29")}}},
                                 names));
  EXPECT_NO_THROW(checkRangeSets({{0, {r("10.0.0.0/24")}}, {1, {r("fd00::/64")}}}, names));
  EXPECT_THROW(checkRangeSets({{0, {r("10.0.0.0/24"), r("fd00::/64")}}}, names), cni::Error);
  EXPECT_THROW(checkRangeSets({{0, {r("fd00::/64"), r("fd00::/120")}}}, names), cni::Error);
}

TEST(Decimal, Prints128BitCounts) {
  EXPECT_EQ(decimal(0), "0");
  EXPECT_EQ(decimal(253), "253");
  EXPECT_EQ(decimal(~ip::u128{0}), "340282366920938463463374607431768211455");
}

}  // namespace
}  // namespace dualstack::ipam
