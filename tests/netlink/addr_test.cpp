#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <algorithm>

#include "dualstack/netlink/addr.hpp"
#include "dualstack/netlink/route.hpp"
#include "dualstack/netns/sysctl.hpp"
#include "dualstack/sys/error.hpp"
#include "netlink/kernel_fixture.hpp"

namespace dualstack {
namespace {

using netlink::AddrInfo;
using sys::Code;
using ::testing::HasSubstr;
using testkernel::errorOf;
using testkernel::KernelTest;
using testkernel::P;

class AddrTest : public KernelTest {
 protected:
  // A pod interface with carrier (both ends up), so that DAD would really run.
  netlink::Veth upVeth(const std::string& tag) {
    auto veth = makeVeth(tag);
    netlink::setLinkUp(pod(), veth.peer);
    return veth;
  }

  static std::optional<AddrInfo> find(const std::vector<AddrInfo>& addrs, const ip::Prefix& p) {
    auto it = std::find_if(addrs.begin(), addrs.end(), [&](auto& a) { return a.prefix == p; });
    if (it == addrs.end()) return std::nullopt;
    return *it;
  }
};

TEST_F(AddrTest, NoDadAddressIsUsableAtOnce) {
  const auto veth = upVeth("addr0");
  netlink::addAddress(pod(), veth.peer, P("fd00:10::5/64"), IFA_F_NODAD);
  // Control: without NODAD the kernel runs DAD and the address starts out tentative.
  netlink::addAddress(pod(), veth.peer, P("fd00:20::5/64"));

  const auto addrs = netlink::listAddresses(pod(), veth.peer.index, ip::Family::V6);
  const auto nodad = find(addrs, P("fd00:10::5/64"));
  ASSERT_TRUE(nodad.has_value());
  EXPECT_FALSE(nodad->tentative());
  EXPECT_NE(nodad->flags & IFA_F_NODAD, 0u);
  EXPECT_EQ(nodad->index, veth.peer.index);
  EXPECT_EQ(nodad->scope, RT_SCOPE_UNIVERSE);
  const auto dad = find(addrs, P("fd00:20::5/64"));
  ASSERT_TRUE(dad.has_value());
  EXPECT_TRUE(dad->tentative());
}

TEST_F(AddrTest, Ipv4AddressWithLabelAndFamilyFilter) {
  const auto veth = upVeth("addr1");
  netlink::addAddress(pod(), veth.peer, P("10.244.1.5/24"));
  netlink::addAddress(pod(), veth.peer, P("fd00:10::5/64"), IFA_F_NODAD);
  const auto v4 = netlink::listAddresses(pod(), veth.peer.index, ip::Family::V4);
  ASSERT_EQ(v4.size(), 1u);
  EXPECT_EQ(v4[0].prefix, P("10.244.1.5/24"));
  EXPECT_EQ(v4[0].label, "eth0");
  EXPECT_FALSE(v4[0].tentative());

  const auto all = netlink::listAddresses(pod(), veth.peer.index);
  EXPECT_TRUE(find(all, P("10.244.1.5/24")).has_value());
  EXPECT_TRUE(find(all, P("fd00:10::5/64")).has_value());
  // Index filter: lo's 127.0.0.1 is not listed (lo is down in a new netns and has none anyway,
  // so give it one).
  netlink::addAddress(pod(), netlink::Iface{1, "lo"}, P("127.0.0.1/8"));
  EXPECT_FALSE(find(netlink::listAddresses(pod(), veth.peer.index), P("127.0.0.1/8")));
  EXPECT_TRUE(find(netlink::listAddresses(pod()), P("127.0.0.1/8")));
}

TEST_F(AddrTest, DuplicateAddressIsAlreadyExists) {
  const auto veth = upVeth("addr2");
  netlink::addAddress(pod(), veth.peer, P("fd00:10::5/64"), IFA_F_NODAD);
  const auto e =
      errorOf([&] { netlink::addAddress(pod(), veth.peer, P("fd00:10::5/64"), IFA_F_NODAD); });
  EXPECT_EQ(e.code(), Code::AlreadyExists);
  EXPECT_THAT(e.msg(), HasSubstr("add address fd00:10::5/64 to eth0 in pod netns: File exists"));
}

TEST_F(AddrTest, DeleteIsIdempotent) {
  const auto veth = upVeth("addr3");
  netlink::addAddress(pod(), veth.peer, P("10.244.1.5/24"));
  netlink::addAddress(pod(), veth.peer, P("fd00:10::5/64"), IFA_F_NODAD);
  EXPECT_TRUE(netlink::deleteAddress(pod(), veth.peer, P("10.244.1.5/24")));
  EXPECT_TRUE(netlink::deleteAddress(pod(), veth.peer, P("fd00:10::5/64")));
  EXPECT_FALSE(netlink::deleteAddress(pod(), veth.peer, P("10.244.1.5/24")));
  EXPECT_FALSE(netlink::deleteAddress(pod(), veth.peer, P("fd00:10::5/64")));
  netlink::deleteLink(pod(), veth.peer.index);
  EXPECT_FALSE(netlink::deleteAddress(pod(), veth.peer, P("10.244.1.5/24")));
  EXPECT_FALSE(netlink::deleteAddress(pod(), veth.peer, P("fd00:10::5/64")));
}

TEST_F(AddrTest, NoPrefixRoute) {
  const auto veth = upVeth("addr4");
  netlink::addAddress(pod(), veth.peer, P("10.244.1.5/24"), IFA_F_NOPREFIXROUTE);
  netlink::addAddress(pod(), veth.peer, P("fd00:10::5/64"), IFA_F_NODAD | IFA_F_NOPREFIXROUTE);
  netlink::addAddress(pod(), veth.peer, P("10.99.0.5/24"));
  netlink::addAddress(pod(), veth.peer, P("fd00:99::5/64"), IFA_F_NODAD);
  auto has = [&](ip::Family f, const char* dst) {
    const auto routes = netlink::listRoutes(pod(), f);
    return std::any_of(routes.begin(), routes.end(), [&](auto& r) { return r.dst == P(dst); });
  };
  EXPECT_FALSE(has(ip::Family::V4, "10.244.1.0/24"));
  EXPECT_FALSE(has(ip::Family::V6, "fd00:10::/64"));
  EXPECT_TRUE(has(ip::Family::V4, "10.99.0.0/24"));
  EXPECT_TRUE(has(ip::Family::V6, "fd00:99::/64"));
  const auto a = netlink::listAddresses(pod(), veth.peer.index, ip::Family::V4);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_NE(a[0].flags & IFA_F_NOPREFIXROUTE, 0u);
}

TEST_F(AddrTest, Ipv6DisabledInThePodIsExplained) {
  const auto veth = upVeth("addr5");
  {
    netns::ScopedSetns in(podNs().ns());
    netns::writeSysctl("net/ipv6/conf/eth0/disable_ipv6", "1");
  }
  const auto e =
      errorOf([&] { netlink::addAddress(pod(), veth.peer, P("fd00::5/64"), IFA_F_NODAD); });
  EXPECT_EQ(e.code(), Code::IoFailure);
  EXPECT_THAT(e.msg(), HasSubstr("add address fd00::5/64 to eth0 in pod netns: Permission denied"));
  EXPECT_THAT(e.msg(), HasSubstr("is IPv6 disabled in the pod netns "
                                 "(net.ipv6.conf.eth0.disable_ipv6=1)?"));
}

TEST_F(AddrTest, AddressOnAMissingLink) {
  const auto e = errorOf([&] {
    netlink::addAddress(pod(), netlink::Iface{4242, "eth9"}, P("10.0.0.1/24"));
  });
  EXPECT_THAT(e.msg(), HasSubstr("add address 10.0.0.1/24 to eth9 in pod netns: No such device"));
}

}  // namespace
}  // namespace dualstack
