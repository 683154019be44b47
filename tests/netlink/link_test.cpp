#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <linux/if.h>
#include <linux/if_link.h>
#include <unistd.h>
#include <algorithm>

#include "dualstack/netlink/addr.hpp"
#include "dualstack/netlink/link.hpp"
#include "dualstack/sys/error.hpp"
#include "netlink/kernel_fixture.hpp"

namespace dualstack {
namespace {

using netlink::VethSpec;
using sys::Code;
using ::testing::HasSubstr;
using testkernel::errorOf;
using testkernel::KernelTest;

class LinkTest : public KernelTest {
 protected:
  VethSpec spec(const std::string& hostName, const std::string& peerName = "eth0") {
    VethSpec s;
    s.hostName = hostName;
    s.peerName = peerName;
    s.peerNetnsFd = podNs().ns().fd();
    return s;
  }
};

TEST_F(LinkTest, VethWithPeerCreatedInThePodNetns) {
  VethSpec s = spec("dstveth0");
  s.hostMtu = 1400;
  s.peerMtu = 1380;
  s.hostAlias = "dualstack/net1/0123456789abcdef/eth0";
  const auto veth = netlink::createVeth(host(), pod(), s);

  const auto h = netlink::getLink(host(), "dstveth0");
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->index, veth.host.index);
  EXPECT_EQ(veth.host.name, "dstveth0");
  EXPECT_EQ(h->kind, "veth");
  EXPECT_EQ(h->mtu, 1400u);
  EXPECT_EQ(h->alias, s.hostAlias);
  EXPECT_TRUE(h->up());
  EXPECT_EQ(h->peerIndex, veth.peer.index);
  EXPECT_TRUE(h->linkNetnsId.has_value());

  const auto p = netlink::getLink(pod(), "eth0");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->index, veth.peer.index);
  EXPECT_EQ(veth.peer.name, "eth0");
  EXPECT_EQ(p->kind, "veth");
  EXPECT_EQ(p->mtu, 1380u);
  ASSERT_TRUE(p->mac.has_value());
  EXPECT_EQ(*p->mac, veth.peerMac);
  EXPECT_EQ(veth.peerMac[0] & 0x03, 0x02) << "locally administered unicast";
  EXPECT_FALSE(p->up()) << "the peer is brought up separately";
  EXPECT_EQ(p->peerIndex, veth.host.index);

  EXPECT_FALSE(netlink::getLink(host(), "eth0").has_value());
  EXPECT_FALSE(netlink::getLink(pod(), "dstveth0").has_value());

  const auto byIndex = netlink::getLink(pod(), veth.peer.index);
  ASSERT_TRUE(byIndex.has_value());
  EXPECT_EQ(byIndex->name, "eth0");
}

TEST_F(LinkTest, PeerUpAndHostEndDownOnRequest) {
  VethSpec s = spec("dstveth1");
  s.hostUp = false;
  const auto veth = netlink::createVeth(host(), pod(), s);
  EXPECT_FALSE(netlink::getLink(host(), veth.host.index)->up());
  netlink::setLinkUp(pod(), veth.peer);
  netlink::setLinkUp(host(), veth.host);
  EXPECT_TRUE(netlink::getLink(pod(), veth.peer.index)->up());
  EXPECT_TRUE(netlink::getLink(host(), veth.host.index)->up());
  // Lower layer up once both ends are up.
  EXPECT_NE(netlink::getLink(pod(), veth.peer.index)->flags & IFF_LOWER_UP, 0u);
}

TEST_F(LinkTest, GivenPeerMacIsUsed) {
  VethSpec s = spec("dstveth2");
  s.peerMac = netlink::Mac{0x02, 0x42, 0xac, 0x11, 0x00, 0x05};
  const auto veth = netlink::createVeth(host(), pod(), s);
  EXPECT_EQ(veth.peerMac, *s.peerMac);
  EXPECT_EQ(netlink::macString(veth.peerMac), "02:42:ac:11:00:05");
  EXPECT_EQ(*netlink::getLink(pod(), "eth0")->mac, *s.peerMac);
}

TEST_F(LinkTest, NamesOfFifteenCharacters) {
  const std::string hostName = "dst456789012345";
  const std::string peerName = "eth456789012345";
  ASSERT_EQ(hostName.size(), 15u);
  const auto veth = netlink::createVeth(host(), pod(), spec(hostName, peerName));
  EXPECT_EQ(netlink::getLink(host(), hostName)->index, veth.host.index);
  EXPECT_EQ(netlink::getLink(pod(), peerName)->index, veth.peer.index);

  auto e = errorOf([&] { netlink::createVeth(host(), pod(), spec(hostName + "6")); });
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_THAT(e.msg(), HasSubstr("longer than 15 characters"));
  e = errorOf([&] { netlink::createVeth(host(), pod(), spec("dstok", "eth0:1")); });
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_THAT(e.msg(), HasSubstr("invalid container interface name \"eth0:1\""));
  EXPECT_THROW(netlink::createVeth(host(), pod(), spec("dst ok")), sys::Error);
  EXPECT_THROW(netlink::createVeth(host(), pod(), spec("..")), sys::Error);
  EXPECT_FALSE(netlink::getLink(host(), hostName + "6").has_value());
}

TEST_F(LinkTest, DuplicateNamesSayWhichEndExists) {
  VethSpec s = spec("dstdup0");
  s.hostAlias = "first";
  netlink::createVeth(host(), pod(), s);

  auto e = errorOf([&] { netlink::createVeth(host(), pod(), spec("dstdup0", "eth1")); });
  EXPECT_EQ(e.code(), Code::AlreadyExists);
  EXPECT_THAT(e.msg(), HasSubstr("create veth dstdup0 (peer eth1 in pod netns) in node netns: "
                                 "File exists (an interface named dstdup0 already exists in node "
                                 "netns (alias \"first\"))"));

  e = errorOf([&] { netlink::createVeth(host(), pod(), spec("dstdup1", "eth0")); });
  EXPECT_EQ(e.code(), Code::AlreadyExists);
  EXPECT_THAT(e.msg(), HasSubstr("an interface named eth0 already exists in pod netns"));
  // Nothing half-made was left behind.
  EXPECT_FALSE(netlink::getLink(host(), "dstdup1").has_value());
  EXPECT_FALSE(netlink::getLink(pod(), "eth1").has_value());
}

TEST_F(LinkTest, FailureAfterCreationRemovesThePair) {
  testkernel::TempNetns elsewhere("other");
  VethSpec s = spec("dstroll0");
  s.peerNetnsFd = elsewhere.ns().fd();  // not the namespace of pod(): the lookup there fails
  const auto e = errorOf([&] { netlink::createVeth(host(), pod(), s); });
  EXPECT_EQ(e.code(), Code::Internal);
  EXPECT_THAT(e.msg(), HasSubstr("the new peer eth0 is not visible in pod netns"));
  EXPECT_FALSE(netlink::getLink(host(), "dstroll0").has_value());
}

TEST_F(LinkTest, DeleteIsIdempotent) {
  const auto veth = makeVeth("del0");
  EXPECT_TRUE(netlink::deleteLink(host(), "dstdel0"));
  EXPECT_FALSE(netlink::getLink(pod(), "eth0").has_value()) << "the peer goes with it";
  EXPECT_FALSE(netlink::deleteLink(host(), "dstdel0"));
  EXPECT_FALSE(netlink::deleteLink(host(), veth.host.index));
  EXPECT_FALSE(netlink::deleteLink(pod(), "eth0"));

  makeVeth("del1");
  EXPECT_TRUE(netlink::deleteLink(pod(), "eth0"));
  EXPECT_FALSE(netlink::getLink(host(), "dstdel1").has_value());
}

TEST_F(LinkTest, ListLinksWithKindAndAlias) {
  makeVeth("list0", "eth0", "pod-a");
  makeVeth("list1", "eth1", "pod-b");
  const auto all = netlink::listLinks(host());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].name, "lo");
  EXPECT_EQ(all[0].kind, "");

  auto veths = netlink::listLinks(host(), "veth");
  ASSERT_EQ(veths.size(), 2u);
  std::sort(veths.begin(), veths.end(), [](auto& a, auto& b) { return a.name < b.name; });
  EXPECT_EQ(veths[0].name, "dstlist0");
  EXPECT_EQ(veths[0].alias, "pod-a");
  EXPECT_EQ(veths[1].name, "dstlist1");
  EXPECT_EQ(veths[1].alias, "pod-b");
  EXPECT_EQ(veths[1].kind, "veth");
  EXPECT_TRUE(netlink::listLinks(host(), "bridge").empty());
  EXPECT_EQ(netlink::listLinks(pod(), "veth").size(), 2u);
}

TEST_F(LinkTest, AliasCanBeChangedAndCleared) {
  const auto veth = makeVeth("alias0", "eth0", "one");
  netlink::setLinkAlias(host(), veth.host, "two");
  EXPECT_EQ(netlink::getLink(host(), veth.host.index)->alias, "two");
  netlink::setLinkAlias(host(), veth.host, "");
  EXPECT_EQ(netlink::getLink(host(), veth.host.index)->alias, "");
}

TEST_F(LinkTest, AddrGenModeNoneMeansNoLinkLocal) {
  const auto control = makeVeth("agm0", "eth0");
  const auto veth = makeVeth("agm1", "eth1");
  netlink::setAddrGenMode(pod(), veth.peer, IN6_ADDR_GEN_MODE_NONE);
  netlink::setLinkUp(pod(), control.peer);
  netlink::setLinkUp(pod(), veth.peer);
  // The link-local address appears once linkwatch has seen the carrier, up to a second later.
  bool controlHasLinkLocal = false;
  for (int i = 0; i < 300 && !controlHasLinkLocal; ++i) {
    controlHasLinkLocal =
        !netlink::listAddresses(pod(), control.peer.index, ip::Family::V6).empty();
    if (!controlHasLinkLocal) ::usleep(10000);
  }
  ASSERT_TRUE(controlHasLinkLocal);
  EXPECT_TRUE(netlink::listAddresses(pod(), veth.peer.index, ip::Family::V6).empty());
}

TEST_F(LinkTest, ChangesOnAVanishedLinkAreClear) {
  const auto veth = makeVeth("gone0");
  netlink::deleteLink(host(), veth.host.index);
  const auto e = errorOf([&] { netlink::setLinkUp(pod(), veth.peer); });
  EXPECT_THAT(e.msg(), HasSubstr("set up eth0 in pod netns: No such device"));
  EXPECT_THAT(e.msg(), HasSubstr("the link is gone"));
}

}  // namespace
}  // namespace dualstack
