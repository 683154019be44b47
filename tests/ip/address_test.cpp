#include "dualstack/ip/address.hpp"

#include <gtest/gtest.h>

namespace dualstack::ip {
namespace {

Address A(const char* text) {
  auto a = Address::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(Address{});
}

Prefix P(const char* text) {
  auto p = Prefix::parse(text);
  EXPECT_TRUE(p.has_value()) << text;
  return p.value_or(Prefix{});
}

TEST(Address, ParsesBothFamilies) {
  EXPECT_EQ(A("10.244.1.5"), Address::v4(0x0af40105));
  EXPECT_TRUE(A("10.244.1.5").isV4());
  EXPECT_EQ(A("::1"), Address::v6(1));
  EXPECT_EQ(A("fd00::1").family(), Family::V6);
  EXPECT_EQ(A("255.255.255.255").value(), 0xffffffffU);
  EXPECT_EQ(A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").value(), ~u128{0});
}

TEST(Address, RejectsMalformedText) {
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4",
                          "1.2.3.4/24", "fd00::1::2", "fd00:::1", "g::1", "12345::", "abc",
                          "1.2.3.-4", "::ffff:1.2.3", "fe80::1%eth0"}) {
    EXPECT_FALSE(Address::parse(bad).has_value()) << bad;
  }
  // Longer than any address text: rejected before reaching inet_pton.
  EXPECT_FALSE(Address::parse(std::string(100, '1')).has_value());
  // A NUL inside: inet_pton would read only what comes before it.
  for (const std::string& bad : {std::string("10.0.0.1\0", 9), std::string("10.0.0.1\0junk", 13),
                                 std::string("fd00::1\0", 8), std::string("\0", 1)}) {
    EXPECT_FALSE(Address::parse(bad).has_value()) << bad.size();
    EXPECT_FALSE(Prefix::parse(bad + "/24").has_value()) << bad.size();
    EXPECT_FALSE(Prefix::parse(bad, /*allowBare=*/true).has_value()) << bad.size();
  }
}

TEST(Address, CanonicalTextIsRfc5952) {
  // host-local names its files by Go's net.IP.String(), which follows RFC 5952: the same text
  // must name the same file here.
  EXPECT_EQ(A("FD00:0:0:0:0:0:0:1").str(), "fd00::1");
  EXPECT_EQ(A("fd00:0000:0000:0001:0000:0000:0000:0005").str(), "fd00:0:0:1::5");
  EXPECT_EQ(A("2001:db8:0:0:1:0:0:1").str(), "2001:db8::1:0:0:1");     // leftmost longest run
  EXPECT_EQ(A("2001:db8:0:1:1:1:1:1").str(), "2001:db8:0:1:1:1:1:1");  // a single 0 stays
  EXPECT_EQ(A("0:0:0:0:0:0:0:0").str(), "::");
  EXPECT_EQ(A("::ffff:10.1.2.3").str(), "::ffff:10.1.2.3");
  EXPECT_EQ(A("::ffff:10.1.2.3").family(), Family::V6);
  EXPECT_EQ(A("10.0.0.1").str(), "10.0.0.1");
}

TEST(Address, BytesRoundTrip) {
  for (const char* text : {"10.244.1.5", "fd00:10:244:1::5", "::", "255.255.255.255"}) {
    const Address a = A(text);
    unsigned char buf[16];
    a.toBytes(buf);
    EXPECT_EQ(Address::fromBytes(a.family(), buf), a) << text;
  }
}

TEST(Address, ArithmeticWrapsWithinTheFamily) {
  EXPECT_EQ(A("10.0.0.255").plus(1), A("10.0.1.0"));
  EXPECT_EQ(A("255.255.255.255").plus(1), A("0.0.0.0"));
  EXPECT_EQ(A("0.0.0.0").minus(1), A("255.255.255.255"));
  EXPECT_EQ(A("fd00::ffff:ffff:ffff:ffff").plus(1), A("fd00:0:0:1::"));
  EXPECT_EQ(A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").plus(1), A("::"));
  EXPECT_EQ(A("::").minus(1), A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
}

TEST(Address, OrdersByFamilyThenValue) {
  EXPECT_LT(A("10.0.0.1"), A("10.0.0.2"));
  EXPECT_LT(A("255.255.255.255"), A("::"));
  EXPECT_NE(A("::"), A("0.0.0.0"));
}

TEST(Prefix, ParsesAndRejects) {
  EXPECT_EQ(P("10.244.1.0/24").length(), 24);
  EXPECT_EQ(P("::/0").length(), 0);
  EXPECT_EQ(P("fd00::/128").length(), 128);
  for (const char* bad :
       {"10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "fd00::/129", "10.0.0.0/-1", "10.0.0.0/08",
        "10.0.0.0/1a", "10.0.0.0/ 8", "/8", "x/8", "10.0.0.0/8/8", "10.0.0.0/1000"}) {
    EXPECT_FALSE(Prefix::parse(bad).has_value()) << bad;
  }
  auto bare = Prefix::parse("10.0.0.7", /*allowBare=*/true);
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->length(), 32);
  auto bare6 = Prefix::parse("fd00::7", /*allowBare=*/true);
  ASSERT_TRUE(bare6);
  EXPECT_EQ(bare6->length(), 128);
}

TEST(Prefix, HostBitsAndNetwork) {
  EXPECT_FALSE(P("10.244.1.0/24").hostBitsSet());
  EXPECT_TRUE(P("10.244.1.1/24").hostBitsSet());
  EXPECT_EQ(P("10.244.1.77/24").network(), P("10.244.1.0/24"));
  EXPECT_TRUE(P("fd00::1/64").hostBitsSet());
  EXPECT_EQ(P("fd00::1/64").network().str(), "fd00::/64");
  EXPECT_FALSE(P("0.0.0.0/0").hostBitsSet());
  EXPECT_TRUE(P("10.0.0.0/0").hostBitsSet());
  EXPECT_FALSE(P("10.0.0.9/32").hostBitsSet());
  EXPECT_FALSE(P("fd00::9/128").hostBitsSet());
}

struct Edge {
  const char* prefix;
  const char* first;
  const char* last;
  u128 sizeMinusOne;
};

void PrintTo(const Edge& e, std::ostream* os) { *os << e.prefix; }

class PrefixEdges : public ::testing::TestWithParam<Edge> {};

TEST_P(PrefixEdges, FirstLastAndSize) {
  const Edge& e = GetParam();
  const Prefix p = P(e.prefix);
  EXPECT_EQ(p.first(), A(e.first));
  EXPECT_EQ(p.last(), A(e.last));
  EXPECT_TRUE(p.sizeMinusOne() == e.sizeMinusOne);
  EXPECT_TRUE(p.contains(A(e.first)));
  EXPECT_TRUE(p.contains(A(e.last)));
  if (p.length() > 0) {
    EXPECT_FALSE(p.contains(A(e.first).minus(1)));
    EXPECT_FALSE(p.contains(A(e.last).plus(1)));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Lengths, PrefixEdges,
    ::testing::Values(Edge{"10.244.1.0/24", "10.244.1.0", "10.244.1.255", 255},
                      Edge{"10.244.1.4/30", "10.244.1.4", "10.244.1.7", 3},
                      Edge{"10.244.1.6/31", "10.244.1.6", "10.244.1.7", 1},
                      Edge{"10.244.1.9/32", "10.244.1.9", "10.244.1.9", 0},
                      Edge{"0.0.0.0/0", "0.0.0.0", "255.255.255.255", 0xffffffffU},
                      Edge{"fd00:10:244:1::/64", "fd00:10:244:1::",
                           "fd00:10:244:1:ffff:ffff:ffff:ffff", (u128{1} << 64) - 1},
                      Edge{"fd00::100/120", "fd00::100", "fd00::1ff", 255},
                      Edge{"fd00::4/126", "fd00::4", "fd00::7", 3},
                      Edge{"fd00::6/127", "fd00::6", "fd00::7", 1},
                      Edge{"fd00::9/128", "fd00::9", "fd00::9", 0},
                      Edge{"::/0", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ~u128{0}}));

TEST(Prefix, ContainsChecksFamily) {
  EXPECT_FALSE(P("::/0").contains(A("10.0.0.1")));
  EXPECT_FALSE(P("0.0.0.0/0").contains(A("::1")));
  EXPECT_TRUE(P("::/0").contains(A("::ffff:10.0.0.1")));
}

TEST(Prefix, Overlaps) {
  EXPECT_TRUE(P("10.0.0.0/8").overlaps(P("10.244.1.0/24")));
  EXPECT_TRUE(P("10.244.1.0/24").overlaps(P("10.0.0.0/8")));
  EXPECT_FALSE(P("10.244.1.0/24").overlaps(P("10.244.2.0/24")));
  EXPECT_FALSE(P("10.0.0.0/8").overlaps(P("::/0")));
  EXPECT_TRUE(P("fd00::/64").overlaps(P("fd00::4/126")));
}

TEST(Prefix, Text) {
  EXPECT_EQ(P("10.244.1.5/24").str(), "10.244.1.5/24");
  EXPECT_EQ(P("FD00:0::5/64").str(), "fd00::5/64");
  EXPECT_EQ(Prefix::host(A("fd00::5")).str(), "fd00::5/128");
}

}  // namespace
}  // namespace dualstack::ip
