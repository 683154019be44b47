// Reconcile passes against a fake main table: what is done, what is reported, what is logged.
#include "dualstack/agent/reconciler.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/fakes.hpp"

namespace dualstack::agent {
namespace {

using namespace agenttest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class ReconcilerTest : public ::testing::Test {
 protected:
  ReconcilerTest()
      : kernel({connected("192.168.1.0/24"), connected("fd00:1::/64"),
                via("0.0.0.0/0", "192.168.1.254", RTPROT_BOOT)}),
        rec({"node1", kOwn}, &kernel, &sets, logs.log()) {
    for (int n = 1; n <= 3; ++n) table.upsert(dualNode(n));
  }
  PassResult full(bool synced = true) {
    return rec.full(desiredRoutes(table, "node1"),
                    {table.podCIDRs(ip::Family::V4), table.podCIDRs(ip::Family::V6)}, synced);
  }
  PassResult partial(const std::vector<ip::Prefix>& dsts) {
    return rec.partial(desiredRoutes(table, "node1", dsts), dsts, std::nullopt, true);
  }

  FakeRouteTable kernel;
  FakeClusterSets sets;
  LogCapture logs;
  NodeTable table;
  Reconciler rec;
};

TEST_F(ReconcilerTest, AFullPassInstallsEveryRouteAndFillsTheSets) {
  const PassResult r = full();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.added, 4u);
  EXPECT_EQ(kernel.routesTo("10.244.2.0/24", kOwn).size(), 1u);
  EXPECT_EQ(kernel.routesTo("fd00:10:244:3::/64", kOwn)[0].gateway, A("fd00:1::3"));
  EXPECT_TRUE(kernel.routesTo("10.244.1.0/24").empty()) << "its own node gets no route";
  EXPECT_EQ(kernel.count("dump"), 2u) << "one dump per family, not one per route";
  EXPECT_EQ(kernel.count("lookup"), 0u);
  EXPECT_THAT(sets.v4(), ElementsAre(P("10.244.1.0/24"), P("10.244.2.0/24"), P("10.244.3.0/24")));
  const RouteReport rep = rec.report();
  EXPECT_EQ(rep.wanted4, 2u);
  EXPECT_EQ(rep.installed4, 2u);
  EXPECT_EQ(rep.installed6, 2u);
  EXPECT_EQ(rep.cluster6, 3u);

  // Again: nothing to do.
  kernel.clearOps();
  EXPECT_EQ(full().added, 0u);
  EXPECT_EQ(kernel.count("add") + kernel.count("replace") + kernel.count("remove"), 0u);
}

TEST_F(ReconcilerTest, BeforeTheFirstListNothingIsRemovedAndTheSetsAreNotWritten) {
  kernel.put(via("10.244.9.0/24", "192.168.1.9", kOwn));
  full(false);
  EXPECT_EQ(kernel.routesTo("10.244.9.0/24", kOwn).size(), 1u);
  EXPECT_EQ(sets.syncs(), 0);
  full(true);
  EXPECT_TRUE(kernel.routesTo("10.244.9.0/24").empty());
}

TEST_F(ReconcilerTest, APartialPassLooksUpOnlyItsDestinations) {
  full();
  kernel.clearOps();
  auto moved = dualNode(2);
  moved.addresses[0].address = A("192.168.1.22");
  const auto touched = table.upsert(moved);
  const PassResult r = partial(touched);
  EXPECT_EQ(r.replaced, 1u);
  EXPECT_EQ(r.added + r.removed, 0u) << "replaced, never removed and added again";
  EXPECT_EQ(kernel.routesTo("10.244.2.0/24", kOwn)[0].gateway, A("192.168.1.22"));
  EXPECT_EQ(kernel.count("dump"), 0u);
  // The node's two podCIDRs and their two next hops: the cost of an event does not depend on
  // the size of the cluster.
  EXPECT_EQ(kernel.count("lookup"), 4u);
}

TEST_F(ReconcilerTest, ADeletedNodesRoutesGoInAPartialPass) {
  full();
  const auto touched = table.erase("node3");
  const PassResult r = partial(touched);
  EXPECT_EQ(r.removed, 2u);
  EXPECT_TRUE(kernel.routesTo("10.244.3.0/24").empty());
  EXPECT_TRUE(kernel.routesTo("fd00:10:244:3::/64").empty());
  EXPECT_EQ(rec.report().wanted4, 1u);
}

TEST_F(ReconcilerTest, AnUnreachableNextHopIsReportedAndLoggedOncePerChange) {
  auto far = dualNode(4);
  far.addresses = {{"InternalIP", A("10.20.0.4")}, {"InternalIP", A("fd00:1::4")}};
  table.upsert(far);
  full();
  full();
  full();
  EXPECT_TRUE(kernel.routesTo("10.244.4.0/24").empty());
  EXPECT_EQ(kernel.routesTo("fd00:10:244:4::/64", kOwn).size(), 1u);
  const RouteReport rep = rec.report();
  ASSERT_EQ(rep.unreachable.size(), 1u);
  EXPECT_EQ(rep.unreachable[0].dst, "10.244.4.0/24");
  EXPECT_EQ(rep.unreachable[0].via, "10.20.0.4");
  EXPECT_EQ(rep.unreachable[0].node, "node4");
  EXPECT_THAT(rep.unreachable[0].reason, HasSubstr("through the gateway 192.168.1.254"));
  EXPECT_EQ(rep.installed4, 2u);
  EXPECT_EQ(rep.wanted4, 3u);
  EXPECT_EQ(logs.count("next hop not directly reachable"), 1u) << "once, not at every pass";

  // It becomes reachable: installed, and the log says so.
  kernel.put(connected("10.20.0.0/24", 3));
  full();
  EXPECT_EQ(kernel.routesTo("10.244.4.0/24", kOwn).size(), 1u);
  EXPECT_THAT(rec.report().unreachable, IsEmpty());
  EXPECT_EQ(logs.count("unreachable resolved"), 1u);
}

TEST_F(ReconcilerTest, TheKernelsRefusalOfAGatewayIsAnUnreachableNextHopToo) {
  full();
  // The fake table says 192.168.1.0/24 is connected, so the diff finds the hop fine; the kernel
  // (the fake, told otherwise) refuses it. The old route must not stay.
  kernel.erase(P("192.168.1.0/24"));
  kernel.put(connected("192.168.1.0/25"));
  auto moved = dualNode(2);
  moved.addresses[0].address = A("192.168.1.200");
  const auto touched = table.upsert(moved);
  rec.partial(desiredRoutes(table, "node1", touched), touched, std::nullopt, true);
  EXPECT_TRUE(kernel.routesTo("10.244.2.0/24").empty());
  ASSERT_EQ(rec.report().unreachable.size(), 1u);
}

TEST_F(ReconcilerTest, AForeignRouteIsAConflictLoggedOnceAndNeverTouched) {
  kernel.put(via("10.244.3.0/24", "192.168.1.50", RTPROT_STATIC));
  full();
  full();
  const auto theirs = kernel.routesTo("10.244.3.0/24");
  ASSERT_EQ(theirs.size(), 1u);
  EXPECT_EQ(theirs[0].protocol, RTPROT_STATIC);
  EXPECT_EQ(theirs[0].gateway, A("192.168.1.50"));
  ASSERT_EQ(rec.report().conflicts.size(), 1u);
  EXPECT_EQ(rec.report().conflicts[0].node, "node3");
  EXPECT_EQ(logs.count("another route covers this podCIDR"), 1u);
  for (const auto& op : kernel.ops()) {
    EXPECT_FALSE(op.dst == "10.244.3.0/24" && op.kind != "dump" && op.kind != "lookup")
        << op.kind << " " << op.dst;
  }
}

TEST_F(ReconcilerTest, AFailedDumpChangesNothingAndCounts) {
  kernel.failDumps(true);
  const PassResult r = full();
  EXPECT_EQ(r.failed, 2u) << "one failed dump per family";
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(kernel.count("add"), 0u);
  EXPECT_EQ(logs.count("cannot read the routing table"), 2u);
}

TEST_F(ReconcilerTest, RemoveOwnRoutesRemovesOnlyTheAgents) {
  kernel.put(via("10.244.9.0/24", "192.168.1.9", RTPROT_STATIC));
  full();
  EXPECT_EQ(rec.removeOwnRoutes(), 4u);
  for (const auto& r : kernel.routes()) EXPECT_NE(r.protocol, kOwn);
  EXPECT_EQ(kernel.routesTo("10.244.9.0/24").size(), 1u);
}

TEST_F(ReconcilerTest, WithoutRoutingOnlyTheSetsAreKept) {
  Reconciler setsOnly({"node1", kOwn}, nullptr, &sets, logs.log());
  const PassResult r =
      setsOnly.full(desiredRoutes(table, "node1"), {table.podCIDRs(ip::Family::V4), {}}, true);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(sets.v4().size(), 3u);
  EXPECT_EQ(kernel.ops().size(), 0u);
}

}  // namespace
}  // namespace dualstack::agent
