// The agent against the real kernel: three (or four) node namespaces on a bridge in a namespace
// of its own, the agent running for node 1.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agent/cluster_fixture.hpp"

namespace dualstack::agenttest {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class AgentKernelTest : public ClusterTest {};

TEST_F(AgentKernelTest, RoutesToEveryOtherNodeWithTheAgentsProtocolAndTrafficFlows) {
  EXPECT_FALSE(ping(1, "10.244.2.1")) << "no route before the agent";
  startAgent();
  source_->list(threeNodes());
  ASSERT_TRUE(eventually([&] { return ownRouteCount() == 4; })) << ownRoutes();
  const std::string r = ownRoutes();
  EXPECT_THAT(r, HasSubstr("10.244.2.0/24 via 192.168.77.2 dev eth0"));
  EXPECT_THAT(r, HasSubstr("10.244.3.0/24 via 192.168.77.3 dev eth0"));
  EXPECT_THAT(r, HasSubstr("fd00:10:244:2::/64 via fd00:77::2 dev eth0"));
  EXPECT_THAT(r, HasSubstr("fd00:10:244:3::/64 via fd00:77::3 dev eth0"));
  EXPECT_THAT(r, Not(HasSubstr("10.244.1.0"))) << "its own podCIDR gets no route";
  for (const char* addr : {"10.244.2.1", "10.244.3.1", "fd00:10:244:2::1", "fd00:10:244:3::1"}) {
    EXPECT_TRUE(ping(1, addr)) << addr;
  }
  const agent::AgentSnapshot s = agent_->snapshot();
  EXPECT_EQ(s.routes.installed4, 2u);
  EXPECT_EQ(s.routes.installed6, 2u);
}

TEST_F(AgentKernelTest, AChangedAddressIsReplacedAndTheRouteNeverDisappears) {
  startAgent();
  source_->list(threeNodes());
  ASSERT_TRUE(eventually([&] { return ownRouteCount() == 4; }));
  mustExec(node(2),
           "ip addr add 192.168.77.12/24 dev eth0 && ip addr add fd00:77::12/64 dev eth0 nodad");
  dualstack::testing::TempDir tmp;
  RouteMonitor monitor(node(1), tmp.file("monitor"));
  auto moved = k8sNode(2);
  moved.addresses = {{"InternalIP", agenttest::A("192.168.77.12")},
                     {"InternalIP", agenttest::A("fd00:77::12")}};
  source_->change(moved);
  ASSERT_TRUE(eventually([&] {
    const std::string r = ownRoutes();
    return r.find("via 192.168.77.12") != std::string::npos &&
           r.find("via fd00:77::12") != std::string::npos;
  })) << ownRoutes();
  const std::string seen = monitor.output();
  // The monitor saw the new next hops (so it was listening) and no deletion at all.
  EXPECT_THAT(seen, HasSubstr("10.244.2.0/24 via 192.168.77.12"));
  EXPECT_THAT(seen, HasSubstr("fd00:10:244:2::/64 via fd00:77::12"));
  EXPECT_THAT(seen, Not(HasSubstr("Deleted"))) << seen;
  EXPECT_EQ(ownRouteCount(), 4u);
}

TEST_F(AgentKernelTest, ARestartedAgentAdoptsItsRoutesWithoutTouchingThem) {
  startAgent();
  source_->list(threeNodes());
  ASSERT_TRUE(eventually([&] { return ownRouteCount() == 4; }));
  const std::string before = ownRoutes();
  dualstack::testing::TempDir tmp;
  RouteMonitor monitor(node(1), tmp.file("monitor"));
  restartAgent();
  source_->list(threeNodes());
  ASSERT_TRUE(eventually([&] { return agent_->fullPasses() >= 1; }));
  EXPECT_EQ(ownRoutes(), before);
  EXPECT_EQ(monitor.output(), "") << "not one route deleted, added or replaced";
}

TEST_F(AgentKernelTest, ARouteOfAnotherProtocolIsNeverTouched) {
  // An operator's route for node 3's podCIDR, deliberately elsewhere.
  mustExec(node(1), "ip route add 10.244.3.0/24 via 192.168.77.2 proto static");
  startAgent();
  source_->list(threeNodes());
  ASSERT_TRUE(eventually([&] { return ownRouteCount() == 3; })) << ownRoutes();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(mustExec(node(1), "ip route show 10.244.3.0/24"),
            "10.244.3.0/24 via 192.168.77.2 dev eth0 proto static \n");
  ASSERT_TRUE(eventually([&] { return agent_->snapshot().routes.conflicts.size() == 1; }));
  EXPECT_EQ(agent_->snapshot().routes.conflicts[0].node, "node3");
  EXPECT_EQ(logs_.count("another route covers this podCIDR"), 1u);
  // Still untouched when the agent removes its own routes on exit.
  stopAgent();
  EXPECT_EQ(agent_->removeOwnRoutes(), 3u);
  EXPECT_EQ(ownRouteCount(), 0u);
  EXPECT_EQ(mustExec(node(1), "ip route show 10.244.3.0/24"),
            "10.244.3.0/24 via 192.168.77.2 dev eth0 proto static \n");
}

TEST_F(AgentKernelTest, ANextHopNotOnTheSharedNetworkIsReportedAndNotInstalled) {
  mustExec(node(1),
           "ip route add default via 192.168.77.254 && ip -6 route add default via fd00:77::fe");
  auto far = agenttest::node("node4", {"10.244.4.0/24", "fd00:10:244:4::/64"},
                             {{"InternalIP", "10.99.0.4"}, {"InternalIP", "fd00:99::4"}});
  startAgent();
  auto nodes = threeNodes();
  nodes.push_back(far);
  source_->list(nodes);
  ASSERT_TRUE(eventually([&] { return agent_->snapshot().routes.unreachable.size() == 2; }));
  EXPECT_EQ(ownRouteCount(), 4u) << ownRoutes();
  const auto u = agent_->snapshot().routes.unreachable;
  EXPECT_EQ(u[0].dst, "10.244.4.0/24");
  EXPECT_EQ(u[0].via, "10.99.0.4");
  EXPECT_THAT(u[0].reason, HasSubstr("reached only through the gateway 192.168.77.254"));
  EXPECT_THAT(u[1].reason, HasSubstr("through the gateway fd00:77::fe"));
  // Directly reachable once the node is on a connected network: a partial pass installs it.
  mustExec(node(1),
           "ip addr add 10.99.0.1/24 dev eth0 && ip addr add fd00:99::1/64 dev eth0 nodad");
  source_->change(k8sNode(1));  // an unrelated event makes no pass...
  far.addresses.push_back({"Hostname", agenttest::A("192.0.2.4")});
  source_->change(far);   // ...nor this one (nothing routing needs changed)
  agent_->requestFull();  // SIGHUP: every route, every next hop again
  ASSERT_TRUE(eventually([&] { return ownRouteCount() == 6; })) << ownRoutes();
  EXPECT_TRUE(agent_->snapshot().routes.unreachable.empty());
}

TEST_F(AgentKernelTest, ADeletedNodeLosesItsRoutesAndAJoiningOneGetsThem) {
  startAgent();
  source_->list(threeNodes());
  ASSERT_TRUE(eventually([&] { return ownRouteCount() == 4; }));
  addNode(4);
  source_->change(k8sNode(4));
  ASSERT_TRUE(eventually([&] { return ownRouteCount() == 6; }));
  EXPECT_TRUE(ping(1, "fd00:10:244:4::1"));
  source_->remove("node2");
  ASSERT_TRUE(eventually([&] { return ownRouteCount() == 4; }));
  EXPECT_THAT(ownRoutes(), Not(HasSubstr("10.244.2.0")));
}

TEST_F(AgentKernelTest, ARouteDeletedByHandReturnsWithinOnePeriod) {
  startAgent(/*interval=*/300ms);
  source_->list(threeNodes());
  ASSERT_TRUE(eventually([&] { return ownRouteCount() == 4; }));
  mustExec(node(1), "ip route del 10.244.2.0/24 && ip -6 route del fd00:10:244:3::/64");
  ASSERT_TRUE(eventually([&] { return ownRouteCount() == 4; }, 5s));
  EXPECT_THAT(ownRoutes(), HasSubstr("fd00:10:244:3::/64 via fd00:77::3"));
}

TEST_F(AgentKernelTest, TheClusterSetsHoldEveryPodCIDRAndComeBackAfterAFlush) {
  startAgent(/*interval=*/300ms);
  source_->list(threeNodes());
  const auto elements = [&](const char* set) {
    std::string out;
    if (node(1).exec("nft -j list set " + nft::qualifiedTable(network_) + " " + set, &out) != 0) {
      return std::vector<std::string>{};
    }
    std::vector<std::string> v;
    const auto doc = nlohmann::json::parse(out);
    for (const auto& item : doc.at("nftables")) {
      if (!item.contains("set") || !item["set"].contains("elem")) continue;
      for (const auto& e : item["set"]["elem"]) {
        v.push_back(e["prefix"]["addr"].get<std::string>() + "/" +
                    std::to_string(e["prefix"]["len"].get<int>()));
      }
    }
    return v;
  };
  ASSERT_TRUE(eventually([&] { return elements("cluster4").size() == 3; }))
      << mustExec(node(1), "nft list ruleset");
  EXPECT_THAT(elements("cluster4"),
              ::testing::ElementsAre("10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"));
  EXPECT_THAT(
      elements("cluster6"),
      ::testing::ElementsAre("fd00:10:244:1::/64", "fd00:10:244:2::/64", "fd00:10:244:3::/64"));
  mustExec(node(1), "nft flush ruleset");
  ASSERT_TRUE(eventually([&] { return elements("cluster6").size() == 3; }, 5s));
  source_->remove("node3");
  ASSERT_TRUE(eventually([&] { return elements("cluster4").size() == 2; }));
}

}  // namespace
}  // namespace dualstack::agenttest
