// ipMasq with the agent's cluster sets, on real traffic: a pod attached to node 1 by the plugin
// (ipMasq on) reaches a pod address on node 2 with its own address (never masqueraded), and an
// "outside" namespace on the same network, which has no route to the pods, only masqueraded.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agent/cluster_fixture.hpp"

namespace dualstack::agenttest {
namespace {

using nlohmann::json;

class AgentMasqueradeTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    if (IsSkipped()) return;
    // Before node 1's agent routes, its default route leads to node 2 (so the first pings work
    // without it); node 2 routes node 1's podCIDRs back (its own agent's job; here by hand).
    mustExec(node(1),
             "ip route add default via 192.168.77.2 && ip -6 route add default via fd00:77::2");
    mustExec(node(2),
             "ip route add 10.244.1.0/24 via 192.168.77.1 && "
             "ip -6 route add fd00:10:244:1::/64 via fd00:77::1");
    // Node 2 counts echo requests to its pod addresses by source: the pod's own address (not
    // masqueraded) or node 1's (masqueraded).
    mustExec(
        node(2),
        "nft \"add table inet seen; "
        "add chain inet seen input { type filter hook input priority 0; policy accept; }; "
        "add rule inet seen input ip daddr 10.244.2.1 ip saddr 10.244.1.0/24 counter; "
        "add rule inet seen input ip daddr 10.244.2.1 ip saddr 192.168.77.1 counter; "
        "add rule inet seen input ip6 daddr fd00:10:244:2::1 ip6 saddr fd00:10:244:1::/64 counter; "
        "add rule inet seen input ip6 daddr fd00:10:244:2::1 ip6 saddr fd00:77::1 counter\"");
    outside_ = &addNode(9);
    pod_ = std::make_unique<TestNetns>("pod");
    conf_ = {{"cniVersion", "1.0.0"},
             {"name", network_},
             {"type", "dualstack"},
             {"ipMasq", true},
             {"ipam",
              {{"type", "dualstack-ipam"},
               {"dataDir", data_.path()},
               {"node",
                {{"podCIDRs", {"10.244.1.0/24", "fd00:10:244:1::/64"}},
                 {"addresses",
                  {{{"type", "InternalIP"}, {"address", "192.168.77.1"}},
                   {{"type", "InternalIP"}, {"address", "fd00:77::1"}}}}}}}}};
    const auto r = dualstack::testing::runPlugin(
        dualstack::testing::binPath("dualstack"),
        dualstack::testing::cniEnv("ADD", "masq-pod", pod_->path()), conf_.dump(), node(1).path());
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  }
  void TearDown() override {
    if (pod_) {
      dualstack::testing::runPlugin(dualstack::testing::binPath("dualstack"),
                                    dualstack::testing::cniEnv("DEL", "masq-pod", pod_->path()),
                                    conf_.dump(), node(1).path());
    }
    pod_.reset();
    ClusterTest::TearDown();
  }

  // Echo requests node 2's pod addresses got: {IPv4 from the pod, IPv4 from node 1, IPv6 from
  // the pod, IPv6 from node 1}.
  std::vector<int> seen() {
    const json doc = json::parse(mustExec(node(2), "nft -j list chain inet seen input"));
    std::vector<int> counts;
    for (const auto& item : doc.at("nftables")) {
      if (!item.contains("rule")) continue;
      for (const auto& e : item["rule"].at("expr")) {
        if (e.contains("counter")) counts.push_back(e["counter"].at("packets").get<int>());
      }
    }
    return counts;
  }
  bool podPings(const std::string& addr) { return pod_->exec("ping -c1 -W1 " + addr) == 0; }

  dualstack::testing::TempDir data_;
  json conf_;
  const TestNetns* outside_ = nullptr;
  std::unique_ptr<TestNetns> pod_;
};

TEST_F(AgentMasqueradeTest, PodToPodIsNeverMasqueradedWhileTrafficToTheOutsideIs) {
  // Without the agent the plugin masquerades everything but its own node's podCIDRs.
  ASSERT_TRUE(podPings("10.244.2.1"));
  ASSERT_TRUE(podPings("fd00:10:244:2::1"));
  EXPECT_EQ(seen(), (std::vector<int>{0, 1, 0, 1})) << "masqueraded: node 2 saw node 1's address";

  startAgent();
  source_->list(threeNodes());
  ASSERT_TRUE(eventually([&] { return agent_->snapshot().routes.cluster4 == 3; }));
  ASSERT_TRUE(podPings("10.244.2.1"));
  ASSERT_TRUE(podPings("fd00:10:244:2::1"));
  EXPECT_EQ(seen(), (std::vector<int>{1, 1, 1, 1})) << "node 2 saw the pod's own address";

  // The outside has no route to the pods: its answers come back only because the pod's traffic
  // to it is masqueraded.
  EXPECT_TRUE(podPings("192.168.77.9"));
  EXPECT_TRUE(podPings("fd00:77::9"));
}

}  // namespace
}  // namespace dualstack::agenttest
