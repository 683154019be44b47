#include "dualstack/agent/nodes.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/fakes.hpp"

namespace dualstack::agent {
namespace {

using namespace agenttest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(Summarize, InternalIPOfEachFamilyWithHostBitsOfThePodCIDRCleared) {
  const NodeInfo info = summarize(node("a", {"10.244.1.7/24", "fd00:10:244:1::9/64"},
                                       {{"Hostname", "a"},
                                        {"ExternalIP", "203.0.113.1"},
                                        {"InternalIP", "192.168.1.1"},
                                        {"InternalIP", "fd00:1::1"},
                                        {"InternalIP", "192.168.9.9"}}));
  EXPECT_EQ(info.v4.podCIDR, P("10.244.1.0/24"));
  EXPECT_EQ(info.v6.podCIDR, P("fd00:10:244:1::/64"));
  EXPECT_EQ(info.v4.nextHop, A("192.168.1.1")) << "the first InternalIP, not the ExternalIP";
  EXPECT_EQ(info.v4.source, HopSource::InternalIP);
  EXPECT_EQ(info.v6.nextHop, A("fd00:1::1"));
  EXPECT_TRUE(info.problem.empty()) << info.problem;
}

TEST(Summarize, ExternalIPOnlyWhenThereIsNoInternalIPOfThatFamily) {
  const NodeInfo info = summarize(node("a", {"10.244.1.0/24", "fd00:10:244:1::/64"},
                                       {{"ExternalIP", "2001:db8::1"},
                                        {"InternalIP", "192.168.1.1"},
                                        {"ExternalIP", "203.0.113.1"}}));
  EXPECT_EQ(info.v4.nextHop, A("192.168.1.1"));
  EXPECT_EQ(info.v6.nextHop, A("2001:db8::1"));
  EXPECT_EQ(info.v6.source, HopSource::ExternalIP);
}

TEST(Summarize, UnusableValuesAreNotedAndSkipped) {
  const NodeInfo info = summarize(node("a", {"banana", "10.244.1.0/24", "10.244.9.0/24"},
                                       {{"InternalIP", "not-an-ip"}, {"Hostname", "10.0.0.1"}}));
  EXPECT_EQ(info.v4.podCIDR, P("10.244.1.0/24")) << "the first of a family stands";
  EXPECT_FALSE(info.v6.podCIDR);
  EXPECT_FALSE(info.v4.nextHop) << "a Hostname is no address to route to";
  EXPECT_THAT(info.problem, HasSubstr("podCIDR \"banana\" is not a CIDR"));
  EXPECT_THAT(info.problem, HasSubstr("second IPv4 podCIDR 10.244.9.0/24 ignored"));
}

TEST(NodeTable, UpsertReportsTouchedPodCIDRsAndNothingForAnUnchangedNode) {
  NodeTable t;
  EXPECT_THAT(t.upsert(dualNode(1)), ElementsAre(P("10.244.1.0/24"), P("fd00:10:244:1::/64")));
  const auto gen = t.podCIDRGeneration();
  // kubelet's status heartbeats and label changes: nothing routing needs changed.
  auto same = dualNode(1);
  same.addresses.push_back({"Hostname", A("10.0.0.1")});
  EXPECT_THAT(t.upsert(same), IsEmpty());
  EXPECT_THAT(t.upsert(dualNode(1)), IsEmpty());
  EXPECT_EQ(t.podCIDRGeneration(), gen);
  EXPECT_EQ(t.size(), 1u);
}

TEST(NodeTable, AChangedAddressTouchesTheNodesPodCIDRsButNotTheGeneration) {
  NodeTable t;
  t.upsert(dualNode(1));
  const auto gen = t.podCIDRGeneration();
  auto moved = dualNode(1);
  moved.addresses[0].address = A("192.168.1.99");
  EXPECT_THAT(t.upsert(moved), ElementsAre(P("10.244.1.0/24"), P("fd00:10:244:1::/64")));
  EXPECT_EQ(t.find("node1")->v4.nextHop, A("192.168.1.99"));
  EXPECT_EQ(t.podCIDRGeneration(), gen) << "the set of podCIDRs is the same";
}

TEST(NodeTable, AChangedPodCIDRTouchesOldAndNewAndMovesTheIndex) {
  NodeTable t;
  t.upsert(dualNode(1));
  const auto gen = t.podCIDRGeneration();
  auto changed = dualNode(1);
  changed.podCIDRs[0].prefix = P("10.244.77.0/24");
  EXPECT_THAT(t.upsert(changed),
              ElementsAre(P("10.244.1.0/24"), P("10.244.77.0/24"), P("fd00:10:244:1::/64")));
  EXPECT_GT(t.podCIDRGeneration(), gen);
  EXPECT_THAT(t.claimants(P("10.244.1.0/24")), IsEmpty());
  EXPECT_THAT(t.claimants(P("10.244.77.0/24")), ElementsAre("node1"));
  EXPECT_THAT(t.podCIDRs(ip::Family::V4), ElementsAre(P("10.244.77.0/24")));
}

TEST(NodeTable, EraseAndReplaceAll) {
  NodeTable t;
  t.upsert(dualNode(1));
  t.upsert(dualNode(2));
  EXPECT_THAT(t.erase("node1"), ElementsAre(P("10.244.1.0/24"), P("fd00:10:244:1::/64")));
  EXPECT_THAT(t.erase("node1"), IsEmpty());
  EXPECT_EQ(t.size(), 1u);
  const auto gen = t.podCIDRGeneration();
  t.replaceAll({dualNode(2)});
  EXPECT_EQ(t.podCIDRGeneration(), gen) << "the same list changes nothing";
  t.replaceAll({dualNode(3), dualNode(4)});
  EXPECT_GT(t.podCIDRGeneration(), gen);
  EXPECT_EQ(t.find("node2"), nullptr);
  EXPECT_THAT(t.podCIDRs(ip::Family::V6),
              ElementsAre(P("fd00:10:244:3::/64"), P("fd00:10:244:4::/64")));
  EXPECT_THAT(t.claimants(P("10.244.2.0/24")), IsEmpty());
}

TEST(NodeTable, APodCIDRClaimedTwiceHasBothClaimants) {
  NodeTable t;
  t.upsert(dualNode(1));
  auto twin = dualNode(2);
  twin.podCIDRs[0].prefix = P("10.244.1.0/24");
  t.upsert(twin);
  EXPECT_THAT(t.claimants(P("10.244.1.0/24")), ElementsAre("node1", "node2"));
  t.erase("node1");
  EXPECT_THAT(t.claimants(P("10.244.1.0/24")), ElementsAre("node2"));
}

TEST(NodeTable, RepeatedEventsForTheSameNodesDoNotGrowIt) {
  NodeTable t;
  for (int round = 0; round < 1000; ++round) {
    for (int n = 1; n <= 3; ++n) {
      auto nd = dualNode(n);
      nd.addresses[0].address = A("192.168.1." + std::to_string(n + (round % 2) * 100));
      t.upsert(nd);
    }
  }
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.podCIDRs(ip::Family::V4).size(), 3u);
  for (int n = 1; n <= 3; ++n) {
    EXPECT_EQ(t.claimants(P("10.244." + std::to_string(n) + ".0/24")).size(), 1u);
  }
}

}  // namespace
}  // namespace dualstack::agent
