#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <algorithm>
#include <tuple>

#include "dualstack/netlink/addr.hpp"
#include "dualstack/netlink/route.hpp"
#include "dualstack/sys/error.hpp"
#include "netlink/kernel_fixture.hpp"

namespace dualstack {
namespace {

using netlink::IfExists;
using netlink::Route;
using sys::Code;
using ::testing::HasSubstr;
using testkernel::A;
using testkernel::errorOf;
using testkernel::KernelTest;
using testkernel::P;

class RouteTest : public KernelTest {
 protected:
  netlink::Veth upVeth(const std::string& tag, const std::string& peer = "eth0") {
    auto veth = makeVeth(tag, peer);
    netlink::setLinkUp(pod(), veth.peer);
    return veth;
  }

  static Route onLink(const char* dst, int oif) { return Route::onLink(P(dst), oif); }
  static Route via(const char* dst, const char* gw, int oif) {
    return Route::via(P(dst), A(gw), oif);
  }

  static std::optional<Route> find(const std::vector<Route>& routes, const char* dst) {
    auto it = std::find_if(routes.begin(), routes.end(), [&](auto& r) { return r.dst == P(dst); });
    if (it == routes.end()) return std::nullopt;
    return *it;
  }
};

// The wiring of a ptp-style pod: host routes on the node, gateway on-link + default in the pod.
TEST_F(RouteTest, NodeAndPodRoutesOfAPod) {
  const auto veth = upVeth("rt0");
  netlink::addAddress(pod(), veth.peer, P("10.244.1.5/24"), IFA_F_NOPREFIXROUTE);
  netlink::addAddress(pod(), veth.peer, P("fd00:10::5/64"), IFA_F_NODAD | IFA_F_NOPREFIXROUTE);

  netlink::addRoute(host(), onLink("10.244.1.5/32", veth.host.index), veth.host.name);
  netlink::addRoute(host(), onLink("fd00:10::5/128", veth.host.index), veth.host.name);
  netlink::addRoute(pod(), onLink("10.244.1.1/32", veth.peer.index), "eth0");
  netlink::addRoute(pod(), via("0.0.0.0/0", "10.244.1.1", veth.peer.index), "eth0");
  netlink::addRoute(pod(), onLink("fd00:10::1/128", veth.peer.index), "eth0");
  netlink::addRoute(pod(), via("::/0", "fd00:10::1", veth.peer.index), "eth0");

  const auto node4 = netlink::listRoutes(host(), ip::Family::V4);
  const auto hostRoute = find(node4, "10.244.1.5/32");
  ASSERT_TRUE(hostRoute.has_value());
  EXPECT_EQ(hostRoute->oif, veth.host.index);
  EXPECT_EQ(hostRoute->scope, RT_SCOPE_LINK);
  EXPECT_FALSE(hostRoute->gateway.has_value());
  EXPECT_EQ(hostRoute->protocol, RTPROT_BOOT);
  EXPECT_EQ(hostRoute->table, static_cast<std::uint32_t>(RT_TABLE_MAIN));
  const auto node6 = netlink::listRoutes(host(), ip::Family::V6, RT_TABLE_MAIN, veth.host.index);
  ASSERT_TRUE(find(node6, "fd00:10::5/128").has_value());
  EXPECT_EQ(find(node6, "fd00:10::5/128")->metric, 1024u) << "the kernel's IPv6 default metric";

  const auto pod4 = netlink::listRoutes(pod(), ip::Family::V4);
  ASSERT_EQ(pod4.size(), 2u);
  const auto gw = find(pod4, "10.244.1.1/32");
  ASSERT_TRUE(gw.has_value());
  EXPECT_EQ(gw->scope, RT_SCOPE_LINK);
  const auto def4 = find(pod4, "0.0.0.0/0");
  ASSERT_TRUE(def4.has_value());
  EXPECT_EQ(def4->gateway, A("10.244.1.1"));
  EXPECT_EQ(def4->oif, veth.peer.index);
  EXPECT_EQ(def4->scope, RT_SCOPE_UNIVERSE);
  EXPECT_EQ(netlink::describe(*def4, "eth0"), "0.0.0.0/0 via 10.244.1.1 dev eth0");

  const auto pod6 = netlink::listRoutes(pod(), ip::Family::V6, RT_TABLE_MAIN, veth.peer.index);
  EXPECT_TRUE(find(pod6, "fd00:10::1/128").has_value());
  ASSERT_TRUE(find(pod6, "::/0").has_value());
  EXPECT_EQ(find(pod6, "::/0")->gateway, A("fd00:10::1"));
  EXPECT_FALSE(find(pod6, "fd00:10::/64").has_value()) << "NOPREFIXROUTE";
}

TEST_F(RouteTest, ExistingRoutes) {
  const auto veth = upVeth("rt1");
  const auto other = upVeth("rt2", "eth1");
  netlink::addRoute(pod(), onLink("10.244.1.1/32", veth.peer.index), "eth0");
  netlink::addRoute(pod(), via("0.0.0.0/0", "10.244.1.1", veth.peer.index), "eth0");
  netlink::addRoute(pod(), onLink("fd00:10::1/128", veth.peer.index), "eth0");
  netlink::addRoute(pod(), via("::/0", "fd00:10::1", veth.peer.index), "eth0");

  auto e = errorOf(
      [&] { netlink::addRoute(pod(), via("0.0.0.0/0", "10.244.1.1", veth.peer.index), "eth0"); });
  EXPECT_EQ(e.code(), Code::AlreadyExists);
  EXPECT_THAT(e.msg(), HasSubstr("add route 0.0.0.0/0 via 10.244.1.1 dev eth0 in pod netns: File "
                                 "exists"));

  // The identical route is fine where asked for (a repeated ADD).
  netlink::addRoute(pod(), via("0.0.0.0/0", "10.244.1.1", veth.peer.index), "eth0",
                    IfExists::AcceptIdentical);
  netlink::addRoute(pod(), via("::/0", "fd00:10::1", veth.peer.index), "eth0",
                    IfExists::AcceptIdentical);
  netlink::addRoute(pod(), onLink("fd00:10::1/128", veth.peer.index), "eth0",
                    IfExists::AcceptIdentical);

  // A different one is not.
  netlink::addRoute(pod(), onLink("10.244.2.1/32", other.peer.index), "eth1");
  e = errorOf([&] {
    netlink::addRoute(pod(), via("0.0.0.0/0", "10.244.2.1", other.peer.index), "eth1",
                      IfExists::AcceptIdentical);
  });
  EXPECT_EQ(e.code(), Code::AlreadyExists);
  EXPECT_THAT(e.msg(), HasSubstr("existing: 0.0.0.0/0 via 10.244.1.1 dev #" +
                                 std::to_string(veth.peer.index)));
  EXPECT_EQ(netlink::listRoutes(pod(), ip::Family::V4, RT_TABLE_MAIN, other.peer.index).size(), 1u);
}

TEST_F(RouteTest, GatewayNotOnLinkIsExplained) {
  const auto veth = upVeth("rt3");
  auto e = errorOf(
      [&] { netlink::addRoute(pod(), via("0.0.0.0/0", "10.244.1.1", veth.peer.index), "eth0"); });
  EXPECT_THAT(e.msg(), HasSubstr("add route 0.0.0.0/0 via 10.244.1.1 dev eth0 in pod netns: "
                                 "Network is unreachable"));
  EXPECT_THAT(e.msg(), HasSubstr("gateway 10.244.1.1 is not reachable on eth0"));
  e = errorOf(
      [&] { netlink::addRoute(pod(), via("::/0", "fd00:10::1", veth.peer.index), "eth0"); });
  EXPECT_THAT(e.msg(), HasSubstr("gateway fd00:10::1 is not reachable on eth0"));
}

TEST_F(RouteTest, RouteOnADownLink) {
  auto veth = makeVeth("rt4");
  const auto e =
      errorOf([&] { netlink::addRoute(pod(), onLink("10.244.1.1/32", veth.peer.index), "eth0"); });
  EXPECT_THAT(e.msg(), HasSubstr("add route 10.244.1.1/32 dev eth0 scope link in pod netns: "
                                 "Network is down"));
  EXPECT_THAT(e.msg(), HasSubstr("(is eth0 up?)"));
}

TEST_F(RouteTest, DeleteIsIdempotent) {
  const auto veth = upVeth("rt5");
  const Route gw4 = onLink("10.244.1.1/32", veth.peer.index);
  const Route def4 = via("0.0.0.0/0", "10.244.1.1", veth.peer.index);
  const Route gw6 = onLink("fd00:10::1/128", veth.peer.index);
  const Route def6 = via("::/0", "fd00:10::1", veth.peer.index);
  for (const auto& r : {gw4, def4, gw6, def6}) netlink::addRoute(pod(), r, "eth0");
  for (const auto& r : {def4, gw4, def6, gw6}) EXPECT_TRUE(netlink::deleteRoute(pod(), r, "eth0"));
  for (const auto& r : {def4, gw4, def6, gw6}) {
    EXPECT_FALSE(netlink::deleteRoute(pod(), r, "eth0"));
  }
  EXPECT_TRUE(netlink::listRoutes(pod(), ip::Family::V4).empty());
  netlink::deleteLink(pod(), veth.peer.index);
  EXPECT_FALSE(netlink::deleteRoute(pod(), def4, "eth0"));
  EXPECT_FALSE(netlink::deleteRoute(pod(), def6, "eth0"));
}

TEST_F(RouteTest, TableMetricMtuAdvmssRoundTrip) {
  const auto veth = upVeth("rt6");
  Route r = onLink("10.50.0.0/16", veth.peer.index);
  r.table = 1000;
  r.metric = 50;
  r.mtu = 1300;
  r.advmss = 1260;
  netlink::addRoute(pod(), r, "eth0");
  Route r6 = onLink("fd00:50::/48", veth.peer.index);
  r6.table = 100;
  r6.metric = 7;
  r6.mtu = 1280;
  netlink::addRoute(pod(), r6, "eth0");

  EXPECT_FALSE(find(netlink::listRoutes(pod(), ip::Family::V4), "10.50.0.0/16").has_value());
  const auto got = find(netlink::listRoutes(pod(), ip::Family::V4, 1000), "10.50.0.0/16");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->table, 1000u);
  EXPECT_EQ(got->metric, 50u);
  EXPECT_EQ(got->mtu, 1300u);
  EXPECT_EQ(got->advmss, 1260u);
  EXPECT_EQ(netlink::describe(*got, "eth0"),
            "10.50.0.0/16 dev eth0 scope link metric 50 table 1000 mtu 1300 advmss 1260");
  const auto got6 = find(netlink::listRoutes(pod(), ip::Family::V6, 100), "fd00:50::/48");
  ASSERT_TRUE(got6.has_value());
  EXPECT_EQ(got6->metric, 7u);
  EXPECT_EQ(got6->mtu, 1280u);

  netlink::addRoute(pod(), r, "eth0", IfExists::AcceptIdentical);
  EXPECT_TRUE(netlink::deleteRoute(pod(), r, "eth0"));
  EXPECT_TRUE(netlink::listRoutes(pod(), ip::Family::V4, 1000).empty());
  EXPECT_TRUE(netlink::listRoutes(pod(), ip::Family::V4, 4242).empty()) << "a table never used";
}

TEST_F(RouteTest, HostBitsOfTheDestinationAreCleared) {
  const auto veth = upVeth("rt7");
  netlink::addRoute(pod(), onLink("10.60.0.7/24", veth.peer.index), "eth0");
  EXPECT_TRUE(find(netlink::listRoutes(pod(), ip::Family::V4), "10.60.0.0/24").has_value());
}

TEST_F(RouteTest, DefaultRouteMtu) {
  EXPECT_FALSE(netlink::defaultRouteMtu(host()).has_value());

  // An IPv4 uplink on the node (its far end sits in the pod namespace, unused).
  netlink::VethSpec up;
  up.hostName = "dstup0";
  up.hostMtu = 1400;
  up.peerName = "up0";
  up.peerNetnsFd = podNs().ns().fd();
  const auto uplink = netlink::createVeth(host(), pod(), up);
  netlink::addAddress(host(), uplink.host, P("192.0.2.10/24"));
  netlink::addRoute(host(), via("0.0.0.0/0", "192.0.2.1", uplink.host.index), "dstup0");
  EXPECT_EQ(netlink::defaultRouteMtu(host()), 1400u);

  // The default route with the lowest metric counts, and a lower MTU on the route itself wins.
  Route lower = via("0.0.0.0/0", "192.0.2.1", uplink.host.index);
  lower.metric = 5;
  lower.mtu = 1300;
  netlink::addRoute(host(), lower, "dstup0");
  EXPECT_EQ(netlink::defaultRouteMtu(host()), 1400u);
  EXPECT_TRUE(
      netlink::deleteRoute(host(), via("0.0.0.0/0", "192.0.2.1", uplink.host.index), "dstup0"));
  EXPECT_EQ(netlink::defaultRouteMtu(host()), 1300u);

  // IPv6 only: the pod side.
  netlink::VethSpec v6;
  v6.hostName = "dstup1";
  v6.peerName = "eth0";
  v6.peerMtu = 1380;
  v6.peerNetnsFd = podNs().ns().fd();
  const auto veth = netlink::createVeth(host(), pod(), v6);
  netlink::setLinkUp(pod(), veth.peer);
  EXPECT_FALSE(netlink::defaultRouteMtu(pod()).has_value());
  netlink::addAddress(pod(), veth.peer, P("fd00:99::2/64"), IFA_F_NODAD);
  netlink::addRoute(pod(), via("::/0", "fd00:99::1", veth.peer.index), "eth0");
  EXPECT_EQ(netlink::defaultRouteMtu(pod()), 1380u);
}

// A route with a protocol of its own, as a routing daemon keeps it: replaced in place, found by
// lookups with that protocol, and removed only by a delete naming its protocol.
class OwnRouteTest : public RouteTest {
 protected:
  static constexpr std::uint8_t kOwn = 77;

  void SetUp() override {
    RouteTest::SetUp();
    if (IsSkipped()) return;
    link_ = upVeth("own0");
    // The pod namespace stands for a node on a shared subnet with two neighbours.
    netlink::addAddress(pod(), link_.peer, P("192.168.50.1/24"));
    netlink::addAddress(pod(), link_.peer, P("fd00:50::1/64"), IFA_F_NODAD);
  }

  static Route own(const char* dst, const char* gw) {
    Route r = Route::via(P(dst), A(gw), 0);
    r.protocol = kOwn;
    return r;
  }

  std::vector<Route> routesTo(const char* dst) {
    std::vector<Route> out;
    for (const auto f : {ip::Family::V4, ip::Family::V6}) {
      for (const auto& r : netlink::listRoutes(pod(), f)) {
        if (r.dst == P(dst)) out.push_back(r);
      }
    }
    return out;
  }

  netlink::Veth link_;
};

TEST_F(OwnRouteTest, ReplaceSwapsTheNextHopOfTheOneRoute) {
  for (const auto& [dst, gw1, gw2] :
       {std::tuple{"10.244.2.0/24", "192.168.50.2", "192.168.50.3"},
        std::tuple{"fd00:10:244:2::/64", "fd00:50::2", "fd00:50::3"}}) {
    SCOPED_TRACE(dst);
    netlink::addRoute(pod(), own(dst, gw1));
    auto routes = routesTo(dst);
    ASSERT_EQ(routes.size(), 1u);
    EXPECT_EQ(routes[0].protocol, kOwn);
    EXPECT_EQ(routes[0].oif, link_.peer.index) << "the kernel resolves the device";

    netlink::replaceRoute(pod(), own(dst, gw2));
    routes = routesTo(dst);
    ASSERT_EQ(routes.size(), 1u) << "replaced, not added beside (IPv6 would make it multipath)";
    EXPECT_EQ(routes[0].gateway, A(gw2));
    EXPECT_EQ(routes[0].protocol, kOwn);
    EXPECT_FALSE(routes[0].multipath);

    // Replace also creates.
    ASSERT_TRUE(netlink::deleteRoute(pod(), own(dst, gw2), {}, kOwn));
    netlink::replaceRoute(pod(), own(dst, gw1));
    EXPECT_EQ(routesTo(dst).size(), 1u);
  }
}

TEST_F(OwnRouteTest, DeleteWithAProtocolNeverRemovesAnotherProtocolsRoute) {
  for (const auto& [dst, gw] : {std::pair{"10.244.3.0/24", "192.168.50.2"},
                                std::pair{"fd00:10:244:3::/64", "fd00:50::2"}}) {
    SCOPED_TRACE(dst);
    Route theirs = own(dst, gw);
    theirs.protocol = RTPROT_STATIC;
    netlink::addRoute(pod(), theirs);
    EXPECT_FALSE(netlink::deleteRoute(pod(), own(dst, gw), {}, kOwn));
    // Without a gateway in the request either: the protocol alone protects it.
    Route anyHop;
    anyHop.dst = P(dst);
    EXPECT_FALSE(netlink::deleteRoute(pod(), anyHop, {}, kOwn));
    ASSERT_EQ(routesTo(dst).size(), 1u);
    EXPECT_EQ(routesTo(dst)[0].protocol, RTPROT_STATIC);
    EXPECT_TRUE(netlink::deleteRoute(pod(), anyHop, {}, RTPROT_STATIC));
    EXPECT_TRUE(routesTo(dst).empty());
  }
}

TEST_F(OwnRouteTest, AGatewayThatIsNotOnLinkIsRefusedByTheKernel) {
  netlink::addRoute(pod(), own("0.0.0.0/0", "192.168.50.254"));
  netlink::addRoute(pod(), own("::/0", "fd00:50::fe"));
  // Reachable only through the default route: not a next hop a host-gw route may use.
  auto e = errorOf([&] { netlink::addRoute(pod(), own("10.244.4.0/24", "10.9.9.9")); });
  EXPECT_THAT(e.msg(), HasSubstr("Network is unreachable"));
  EXPECT_THAT(e.msg(), HasSubstr("gateway 10.9.9.9 is not reachable"));
  e = errorOf([&] { netlink::replaceRoute(pod(), own("fd00:10:244:4::/64", "fd00:99::9")); });
  EXPECT_THAT(e.msg(), HasSubstr("replace route fd00:10:244:4::/64 via fd00:99::9"));
  EXPECT_THAT(e.msg(), HasSubstr("No route to host"));
}

TEST_F(OwnRouteTest, LookupFindsTheTableEntryAndTellsAConnectedNextHop) {
  netlink::addRoute(pod(), own("10.244.5.0/24", "192.168.50.2"));
  netlink::addRoute(pod(), own("fd00:10:244:5::/64", "fd00:50::2"));

  auto r = netlink::lookupRoute(pod(), A("10.244.5.9"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->dst, P("10.244.5.0/24"));
  EXPECT_EQ(r->protocol, kOwn);
  EXPECT_EQ(r->gateway, A("192.168.50.2"));
  r = netlink::lookupRoute(pod(), A("fd00:10:244:5::1"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->dst, P("fd00:10:244:5::/64"));
  EXPECT_EQ(r->protocol, kOwn);
  EXPECT_EQ(r->gateway, A("fd00:50::2"));

  // A neighbour on the shared subnet: the connected route, without a gateway.
  for (const char* hop : {"192.168.50.7", "fd00:50::7"}) {
    r = netlink::lookupRoute(pod(), A(hop));
    ASSERT_TRUE(r.has_value()) << hop;
    EXPECT_FALSE(r->gateway.has_value()) << hop;
    EXPECT_EQ(r->protocol, RTPROT_KERNEL) << hop;
  }
  // Nowhere to go.
  EXPECT_FALSE(netlink::lookupRoute(pod(), A("10.1.2.3")).has_value());
  EXPECT_FALSE(netlink::lookupRoute(pod(), A("2001:db8::1")).has_value());
  // A blackhole is no way there either.
  Route hole;
  hole.dst = P("10.66.0.0/16");
  hole.type = RTN_BLACKHOLE;
  netlink::addRoute(pod(), hole);
  EXPECT_FALSE(netlink::lookupRoute(pod(), A("10.66.1.1")).has_value());
}

TEST_F(RouteTest, MixedFamiliesAreRejected) {
  const auto e = errorOf([&] { netlink::addRoute(pod(), via("::/0", "10.0.0.1", 1), "lo"); });
  EXPECT_EQ(e.code(), Code::Internal);
  EXPECT_THAT(e.msg(), HasSubstr("gateway is not of the destination's address family"));
}

}  // namespace
}  // namespace dualstack
