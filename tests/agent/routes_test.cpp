// The pure reconcile decisions: desired routes from Nodes, and the diff against a route list.
#include "dualstack/agent/routes.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "agent/fakes.hpp"

namespace dualstack::agent {
namespace {

using namespace agenttest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// What the diff helper below prints for the removal of the agent's own route to `dst`.
std::string deleteOwn(const char* dst) {
  return "delete " + P(dst).str() + " metric " + std::to_string(ownMetric(P(dst))) + " proto 77";
}

std::vector<std::string> dsts(const std::vector<Wanted>& ws) {
  std::vector<std::string> out;
  for (const auto& w : ws) out.push_back(w.dst.str() + " via " + w.via.str() + " " + w.node);
  return out;
}

TEST(DesiredRoutes, EveryOtherNodesPodCIDRViaItsAddressOfTheSameFamily) {
  NodeTable t;
  for (int n = 1; n <= 3; ++n) t.upsert(dualNode(n));
  const Desired d = desiredRoutes(t, "node2");
  EXPECT_THAT(dsts(d.routes), ElementsAre("10.244.1.0/24 via 192.168.1.1 node1",
                                          "10.244.3.0/24 via 192.168.1.3 node3",
                                          "fd00:10:244:1::/64 via fd00:1::1 node1",
                                          "fd00:10:244:3::/64 via fd00:1::3 node3"));
  EXPECT_THAT(d.notRouted, IsEmpty());
}

TEST(DesiredRoutes, ANodeWithoutAnAddressOfAFamilyGetsNoRouteForIt) {
  NodeTable t;
  t.upsert(
      node("v4only", {"10.244.5.0/24", "fd00:10:244:5::/64"}, {{"InternalIP", "192.168.1.5"}}));
  t.upsert(node("ext", {"10.244.6.0/24"}, {{"ExternalIP", "192.168.1.6"}}));
  t.upsert(node("nocidr", {}, {{"InternalIP", "192.168.1.7"}}));
  const Desired d = desiredRoutes(t, "self");
  EXPECT_THAT(dsts(d.routes), ElementsAre("10.244.5.0/24 via 192.168.1.5 v4only",
                                          "10.244.6.0/24 via 192.168.1.6 ext"));
  ASSERT_EQ(d.notRouted.size(), 1u);
  EXPECT_EQ(d.notRouted[0].dst, P("fd00:10:244:5::/64"));
  EXPECT_EQ(d.notRouted[0].node, "v4only");
  EXPECT_THAT(d.notRouted[0].reason, HasSubstr("no IPv6 InternalIP or ExternalIP"));
}

TEST(DesiredRoutes, APodCIDROfTwoNodesIsRoutedToNeither) {
  NodeTable t;
  t.upsert(dualNode(1));
  auto twin = dualNode(2);
  twin.podCIDRs[0].prefix = P("10.244.1.0/24");
  t.upsert(twin);
  const Desired d = desiredRoutes(t, "node3");
  EXPECT_THAT(dsts(d.routes), ElementsAre("fd00:10:244:1::/64 via fd00:1::1 node1",
                                          "fd00:10:244:2::/64 via fd00:1::2 node2"));
  ASSERT_EQ(d.notRouted.size(), 1u);
  EXPECT_THAT(d.notRouted[0].reason, HasSubstr("claimed by several nodes (node1, node2)"));
  // Nor away from this node when it is one of them.
  EXPECT_THAT(desiredRoutes(t, "node1").notRouted[0].reason, HasSubstr("this node among them"));
}

TEST(DesiredRoutes, OnlyTheGivenDestinations) {
  NodeTable t;
  for (int n = 1; n <= 3; ++n) t.upsert(dualNode(n));
  const Desired d = desiredRoutes(
      t, "node2", {P("10.244.3.0/24"), P("10.244.9.0/24"), P("10.244.3.0/24"), P("10.244.2.0/24")});
  EXPECT_THAT(dsts(d.routes), ElementsAre("10.244.3.0/24 via 192.168.1.3 node3"));
}

TEST(HopProblem, ConnectedIsFineGatewayOrNothingIsNot) {
  const std::vector<netlink::Route> table = {
      connected("192.168.1.0/24"), via("0.0.0.0/0", "192.168.1.254", RTPROT_BOOT),
      via("10.50.0.0/16", "192.168.1.254", RTPROT_STATIC), connected("fd00:1::/64"),
      via("10.60.0.0/16", "192.168.1.7", kOwn)};
  const auto problem = [&](const char* hop) {
    return hopProblem(A(hop), longestMatch(A(hop), table, kOwn));
  };
  EXPECT_EQ(problem("192.168.1.9"), std::nullopt);
  EXPECT_EQ(problem("fd00:1::9"), std::nullopt);
  EXPECT_THAT(problem("10.50.1.1").value_or(""),
              HasSubstr("reached only through the gateway 192.168.1.254 (route 10.50.0.0/16)"));
  EXPECT_THAT(problem("172.16.0.1").value_or(""), HasSubstr("through the gateway 192.168.1.254"));
  EXPECT_THAT(problem("fd00:2::1").value_or(""), HasSubstr("no route to fd00:2::1"));
  // The agent's own routes never make a next hop reachable.
  EXPECT_THAT(problem("10.60.0.1").value_or(""), HasSubstr("gateway 192.168.1.254"));
}

class DiffTest : public ::testing::Test {
 protected:
  DiffTest() {
    options.protocol = kOwn;
    options.removeUnwanted = true;
    options.hopCheck = [this](const ip::Address& hop) {
      return hopProblem(hop, longestMatch(hop, base, kOwn));
    };
  }
  static Wanted want(const char* dst, const char* hop, const char* node = "n") {
    return {P(dst), A(hop), node, HopSource::InternalIP};
  }
  Plan run(const std::vector<Wanted>& wanted, std::vector<netlink::Route> extra) {
    std::vector<netlink::Route> actual = base;
    actual.insert(actual.end(), extra.begin(), extra.end());
    return diff(wanted, actual, options);
  }
  static std::vector<std::string> actions(const Plan& p) {
    std::vector<std::string> out;
    for (const auto& a : p.actions) {
      const char* k = a.kind == Action::Kind::Add       ? "add "
                      : a.kind == Action::Kind::Replace ? "replace "
                                                        : "delete ";
      std::string s = k;
      if (a.kind == Action::Kind::Delete) {
        s += a.route.dst.str() + " metric " + std::to_string(a.route.metric.value_or(0)) +
             " proto " + std::to_string(a.route.protocol);
      } else {
        // Additions and replacements always carry the destination's own metric.
        EXPECT_EQ(a.route.metric, ownMetric(a.route.dst)) << a.route.dst.str();
        netlink::Route shown = a.route;
        shown.metric.reset();
        s += netlink::describe(shown) + " proto " + std::to_string(a.route.protocol);
      }
      out.push_back(s);
    }
    return out;
  }

  std::vector<netlink::Route> base = {connected("192.168.1.0/24"), connected("fd00:1::/64"),
                                      via("0.0.0.0/0", "192.168.1.254", RTPROT_BOOT)};
  DiffOptions options;
};

TEST_F(DiffTest, MissingRoutesAreAddedWithTheOwnProtocol) {
  const Plan p =
      run({want("10.244.2.0/24", "192.168.1.2"), want("fd00:10:244:2::/64", "fd00:1::2")}, {});
  EXPECT_THAT(actions(p), ElementsAre("add 10.244.2.0/24 via 192.168.1.2 proto 77",
                                      "add fd00:10:244:2::/64 via fd00:1::2 proto 77"));
  EXPECT_EQ(p.inPlace, 0u);
}

TEST_F(DiffTest, OwnRoutesAsWantedAreAdoptedUntouched) {
  const Plan p = run(
      {want("10.244.2.0/24", "192.168.1.2"), want("fd00:10:244:2::/64", "fd00:1::2")},
      {via("10.244.2.0/24", "192.168.1.2", kOwn), via("fd00:10:244:2::/64", "fd00:1::2", kOwn)});
  EXPECT_THAT(actions(p), IsEmpty());
  EXPECT_EQ(p.inPlace, 2u);
}

TEST_F(DiffTest, AChangedNextHopIsReplacedInPlaceNeverDeletedFirst) {
  const Plan p =
      run({want("10.244.2.0/24", "192.168.1.22")}, {via("10.244.2.0/24", "192.168.1.2", kOwn)});
  EXPECT_THAT(actions(p), ElementsAre("replace 10.244.2.0/24 via 192.168.1.22 proto 77"));
}

TEST_F(DiffTest, OwnRoutesNoNodeWantsAreRemovedOnlyOnceSynced) {
  const std::vector<netlink::Route> stale = {via("10.244.9.0/24", "192.168.1.9", kOwn),
                                             via("fd00:10:244:9::/64", "fd00:1::9", kOwn)};
  options.removeUnwanted = false;
  EXPECT_THAT(actions(run({}, stale)), IsEmpty());
  options.removeUnwanted = true;
  EXPECT_THAT(actions(run({}, stale)),
              ElementsAre(deleteOwn("10.244.9.0/24"), deleteOwn("fd00:10:244:9::/64")));
}

TEST_F(DiffTest, RoutesOfOtherProtocolsAreNeverTouched) {
  // Not wanted: left alone whatever they are.
  const std::vector<netlink::Route> foreign = {via("10.244.9.0/24", "192.168.1.9", RTPROT_STATIC),
                                               via("10.99.0.0/16", "192.168.1.9", RTPROT_BOOT)};
  EXPECT_THAT(actions(run({}, foreign)), IsEmpty());
  // Wanted: a conflict, reported, nothing installed.
  const Plan p = run({want("10.244.9.0/24", "192.168.1.9", "node9")}, foreign);
  EXPECT_THAT(actions(p), IsEmpty());
  ASSERT_EQ(p.conflicts.size(), 1u);
  EXPECT_EQ(p.conflicts[0].node, "node9");
  EXPECT_THAT(p.conflicts[0].existing, HasSubstr("10.244.9.0/24 via 192.168.1.9"));
  EXPECT_THAT(p.conflicts[0].existing, HasSubstr("proto 4"));
}

TEST_F(DiffTest, AnOperatorsRouteBesideOursMakesOursYield) {
  const Plan p = run({want("10.244.9.0/24", "192.168.1.9")},
                     {via("10.244.9.0/24", "192.168.1.9", kOwn),
                      via("10.244.9.0/24", "192.168.1.200", RTPROT_STATIC, 100)});
  EXPECT_THAT(actions(p), ElementsAre(deleteOwn("10.244.9.0/24")));
  EXPECT_EQ(p.conflicts.size(), 1u);
}

TEST_F(DiffTest, ABlackholeOfAnotherProtocolIsAConflictToo) {
  netlink::Route hole;
  hole.dst = P("10.244.9.0/24");
  hole.type = RTN_BLACKHOLE;
  hole.protocol = RTPROT_STATIC;
  const Plan p = run({want("10.244.9.0/24", "192.168.1.9")}, {hole});
  EXPECT_THAT(actions(p), IsEmpty());
  ASSERT_EQ(p.conflicts.size(), 1u);
  EXPECT_THAT(p.conflicts[0].existing, HasSubstr("blackhole"));
}

TEST_F(DiffTest, ANextHopNotDirectlyReachableIsReportedAndNotInstalled) {
  const Plan p = run(
      {want("10.244.4.0/24", "10.20.0.4", "far"), want("fd00:10:244:4::/64", "fd00:9::4", "far")},
      {via("fd00:10:244:4::/64", "fd00:1::4", kOwn)});
  // The stale own route to the node's old address goes too.
  EXPECT_THAT(actions(p), ElementsAre(deleteOwn("fd00:10:244:4::/64")));
  ASSERT_EQ(p.unreachable.size(), 2u);
  EXPECT_EQ(p.unreachable[0].node, "far");
  EXPECT_EQ(p.unreachable[0].via, A("10.20.0.4"));
  EXPECT_THAT(p.unreachable[0].reason, HasSubstr("only through the gateway 192.168.1.254"));
  EXPECT_THAT(p.unreachable[1].reason, HasSubstr("no route to fd00:9::4"));
}

TEST_F(DiffTest, ExtraOwnRoutesForADestinationGoAndTheOneAtTheDefaultMetricStays) {
  const Plan p = run(
      {want("10.244.2.0/24", "192.168.1.2")},
      {via("10.244.2.0/24", "192.168.1.2", kOwn, 50), via("10.244.2.0/24", "192.168.1.2", kOwn)});
  EXPECT_THAT(actions(p), ElementsAre("delete 10.244.2.0/24 metric 50 proto 77"));
  EXPECT_EQ(p.inPlace, 1u);
}

TEST(OwnMetric, IPv4DestinationsSpreadOverManyMetricsIPv6KeepsTheDefault) {
  std::set<std::uint32_t> seen;
  for (int i = 0; i < 5000; ++i) {
    const auto m = ownMetric(P(
        ("10." + std::to_string(64 + i / 256) + "." + std::to_string(i % 256) + ".0/24").c_str()));
    EXPECT_GE(m, 1u);
    EXPECT_LE(m, 4093u);
    seen.insert(m);
  }
  EXPECT_GT(seen.size(), 2500u) << "5,000 podCIDRs on thousands of metrics, not a few";
  EXPECT_EQ(ownMetric(P("10.244.1.0/24")), ownMetric(P("10.244.1.7/24")))
      << "host bits do not count";
  EXPECT_NE(ownMetric(P("10.244.1.0/24")), ownMetric(P("10.244.1.0/25")));
  EXPECT_EQ(ownMetric(P("fd00:10:244:1::/64")), 1024u);
}

TEST_F(DiffTest, AnOwnRouteAtAnotherMetricIsReplacedByOneAtItsOwn) {
  // E.g. left by a version that used the kernel's default metric.
  const Plan p =
      run({want("10.244.2.0/24", "192.168.1.2")}, {via("10.244.2.0/24", "192.168.1.2", kOwn, 0)});
  // The new one first: the destination is never without a route.
  EXPECT_THAT(actions(p), ElementsAre("add 10.244.2.0/24 via 192.168.1.2 proto 77",
                                      "delete 10.244.2.0/24 metric 0 proto 77"));
}

TEST_F(DiffTest, AMultipathOwnRouteIsReplacedByASinglePath) {
  auto mp = via("10.244.2.0/24", "192.168.1.2", kOwn);
  mp.multipath = true;
  EXPECT_THAT(actions(run({want("10.244.2.0/24", "192.168.1.2")}, {mp})),
              ElementsAre("replace 10.244.2.0/24 via 192.168.1.2 proto 77"));
}

TEST_F(DiffTest, RemovalsComeBeforeAdditions) {
  // A podCIDR moved from one node to another is a replace; an unrelated stale one a delete.
  const Plan p =
      run({want("10.244.1.0/24", "192.168.1.1"), want("10.244.2.0/24", "192.168.1.3")},
          {via("10.244.2.0/24", "192.168.1.2", kOwn), via("10.244.8.0/24", "192.168.1.8", kOwn)});
  EXPECT_THAT(actions(p),
              ElementsAre(deleteOwn("10.244.8.0/24"), "add 10.244.1.0/24 via 192.168.1.1 proto 77",
                          "replace 10.244.2.0/24 via 192.168.1.3 proto 77"));
}

}  // namespace
}  // namespace dualstack::agent
