// The agent's loop with a fake Node source and a fake main table: adoption at start, nothing
// removed before the first list, events coalesced, the periodic pass, bounded state.
#include "dualstack/agent/agent.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "agent/fakes.hpp"
#include "dualstack/sys/error.hpp"
#include "support/support.hpp"

namespace dualstack::agent {
namespace {

using namespace agenttest;
using dualstack::testing::eventually;
using namespace std::chrono_literals;

class AgentTest : public ::testing::Test {
 protected:
  AgentTest()
      : kernel({connected("192.168.1.0/24"), connected("fd00:1::/64"),
                via("0.0.0.0/0", "192.168.1.254", RTPROT_BOOT)}) {}
  ~AgentTest() override { stop(); }

  void start(std::chrono::milliseconds interval = 30s, std::chrono::milliseconds coalesce = 10ms) {
    AgentConfig c;
    c.self = "node1";
    c.protocol = kOwn;
    c.interval = interval;
    c.coalesce = coalesce;
    c.retryInitial = 20ms;
    agent = std::make_unique<Agent>(c, source, &kernel, &sets, logs.log());
    thread = std::jthread([this](std::stop_token st) {
      try {
        agent->run(st);
      } catch (const std::exception& e) {
        runError = e.what();
      }
    });
    source.waitRunning();
  }
  void stop() {
    if (thread.joinable()) {
      thread.request_stop();
      thread.join();
    }
  }
  std::size_t ownRoutes() {
    std::size_t n = 0;
    for (const auto& r : kernel.routes()) n += r.protocol == kOwn;
    return n;
  }
  std::vector<k8s::Node> nodes(int count) {
    std::vector<k8s::Node> out;
    for (int n = 1; n <= count; ++n) out.push_back(dualNode(n));
    return out;
  }

  FakeRouteTable kernel;
  FakeClusterSets sets;
  FakeSource source;
  LogCapture logs;
  std::unique_ptr<Agent> agent;
  std::jthread thread;
  std::string runError;
};

TEST_F(AgentTest, TheFirstListInstallsEveryRouteInOneFullPass) {
  start();
  source.list(nodes(4));
  ASSERT_TRUE(eventually([&] { return agent->fullPasses() == 1; }));
  EXPECT_EQ(ownRoutes(), 6u);
  EXPECT_EQ(sets.v4().size(), 4u);
  const AgentSnapshot s = agent->snapshot();
  EXPECT_TRUE(s.synced);
  EXPECT_EQ(s.nodes, 4u);
  EXPECT_EQ(s.routes.installed4 + s.routes.installed6, 6u);
}

TEST_F(AgentTest, OwnRoutesFromBeforeARestartAreAdoptedWithoutAChange) {
  for (int n = 2; n <= 3; ++n) {
    const std::string i = std::to_string(n);
    kernel.put(via(("10.244." + i + ".0/24").c_str(), ("192.168.1." + i).c_str(), kOwn));
    kernel.put(via(("fd00:10:244:" + i + "::/64").c_str(), ("fd00:1::" + i).c_str(), kOwn));
  }
  start();
  source.list(nodes(3));
  ASSERT_TRUE(eventually([&] { return agent->fullPasses() == 1; }));
  EXPECT_EQ(kernel.count("add") + kernel.count("replace") + kernel.count("remove"), 0u)
      << "routes that are right are neither replaced nor removed: they never flap";
  EXPECT_EQ(ownRoutes(), 4u);
}

TEST_F(AgentTest, NothingIsRemovedBeforeTheFirstCompleteList) {
  // Routes of a previous run, one of them for a node that is gone.
  kernel.put(via("10.244.2.0/24", "192.168.1.2", kOwn));
  kernel.put(via("10.244.9.0/24", "192.168.1.9", kOwn));
  start(/*interval=*/20ms);
  // The API server does not answer: many periodic deadlines pass without a list.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(kernel.ops().size(), 0u) << "not even read: nothing is known to reconcile against";
  EXPECT_EQ(sets.syncs(), 0) << "the sets are not emptied either";
  EXPECT_EQ(ownRoutes(), 2u);
  source.list(nodes(3));
  ASSERT_TRUE(eventually([&] { return kernel.routesTo("10.244.9.0/24").empty(); }));
  EXPECT_EQ(kernel.routesTo("10.244.2.0/24", kOwn).size(), 1u);
}

TEST_F(AgentTest, EventsChangeRoutesWithPartialPasses) {
  start();
  source.list(nodes(3));
  ASSERT_TRUE(eventually([&] { return agent->fullPasses() == 1; }));
  kernel.clearOps();

  auto moved = dualNode(2);
  moved.addresses[0].address = A("192.168.1.22");
  source.change(moved);
  ASSERT_TRUE(eventually([&] {
    const auto r = kernel.routesTo("10.244.2.0/24", kOwn);
    return r.size() == 1 && r[0].gateway == A("192.168.1.22");
  }));
  source.change(dualNode(4));
  ASSERT_TRUE(eventually([&] { return kernel.routesTo("fd00:10:244:4::/64", kOwn).size() == 1; }));
  EXPECT_TRUE(eventually([&] { return sets.v6().size() == 4; }))
      << "a new podCIDR reaches the sets";
  source.remove("node3");
  ASSERT_TRUE(eventually([&] { return kernel.routesTo("10.244.3.0/24").empty(); }));
  EXPECT_TRUE(eventually([&] { return sets.v4().size() == 3; }));
  EXPECT_EQ(kernel.count("dump"), 0u) << "events never dump the whole table";
  for (const auto& op : kernel.ops()) {
    EXPECT_FALSE(op.kind == "remove" && op.dst == "10.244.2.0/24") << "replaced, not removed";
  }
  EXPECT_EQ(agent->fullPasses(), 1u);
}

TEST_F(AgentTest, ABurstOfEventsIsCoalescedIntoAFewPasses) {
  start();
  source.list(nodes(50));
  ASSERT_TRUE(eventually([&] { return agent->fullPasses() == 1; }));
  // Hold the next pass inside the kernel while 1,000 events arrive.
  kernel.closeGate();
  auto first = dualNode(2);
  first.addresses[0].address = A("192.168.1.102");
  source.change(first);
  ASSERT_TRUE(eventually([&] { return kernel.someoneWaitsAtGate(); }));
  for (int i = 0; i < 1000; ++i) {
    auto n = dualNode(3 + i % 40);
    n.addresses[0].address = A("192.168.1." + std::to_string(100 + (i % 40) + (i / 40) % 2));
    source.change(n);
  }
  const auto before = agent->passes();
  kernel.openGate();
  ASSERT_TRUE(eventually([&] {
    const auto r = kernel.routesTo("10.244.42.0/24", kOwn);
    return r.size() == 1 &&
           r[0].gateway == A("192.168.1.139");  // the last event for node42 (i = 999)
  }));
  std::this_thread::sleep_for(50ms);
  EXPECT_LE(agent->passes() - before, 2u) << "the held pass and one for the whole burst";
  EXPECT_EQ(agent->fullPasses(), 1u);
}

TEST_F(AgentTest, EventsThatChangeNothingRoutingNeedsMakeNoPass) {
  start();
  source.list(nodes(5));
  ASSERT_TRUE(eventually([&] { return agent->fullPasses() == 1; }));
  const auto before = agent->passes();
  for (int i = 0; i < 2000; ++i) {
    auto n = dualNode(1 + i % 5);
    // A heartbeat: a Node that differs only where routing does not look.
    n.addresses.push_back({"Hostname", A("10.9.0." + std::to_string(1 + i % 5))});
    source.change(n);
  }
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(agent->passes(), before);
}

TEST_F(AgentTest, ThePeriodicPassRestoresARouteDeletedByHandAndFlushedSets) {
  start(/*interval=*/50ms);
  source.list(nodes(3));
  ASSERT_TRUE(eventually([&] { return ownRoutes() == 4; }));
  kernel.erase(P("10.244.3.0/24"));
  sets.flush();
  ASSERT_TRUE(eventually([&] { return kernel.routesTo("10.244.3.0/24", kOwn).size() == 1; }));
  EXPECT_TRUE(eventually([&] { return sets.v4().size() == 3; }));
}

TEST_F(AgentTest, AFailedPassIsRetriedSoonerThanTheInterval) {
  kernel.failDumps(true);
  start(/*interval=*/30s);
  source.list(nodes(3));
  ASSERT_TRUE(eventually([&] { return agent->snapshot().reconcileErrors >= 1; }));
  kernel.failDumps(false);
  EXPECT_TRUE(eventually([&] { return ownRoutes() == 4; }, 5s));
}

TEST_F(AgentTest, RepeatedEventsForTheSameNodesDoNotGrowItsState) {
  start();
  source.list(nodes(3));
  ASSERT_TRUE(eventually([&] { return agent->fullPasses() == 1; }));
  auto far = dualNode(3);
  far.addresses = {{"InternalIP", A("10.20.0.3")}, {"InternalIP", A("fd00:1::3")}};
  const auto sizeOfState = [&] {
    const AgentSnapshot s = agent->snapshot();
    return std::make_tuple(s.nodes, s.routes.wanted4 + s.routes.wanted6,
                           s.routes.unreachable.size(), s.routes.conflicts.size(),
                           s.routes.notRouted.size());
  };
  for (int round = 0; round < 200; ++round) {
    source.change(round % 2 ? dualNode(3) : far);
    auto n2 = dualNode(2);
    n2.addresses[0].address = A("192.168.1." + std::to_string(2 + round % 2));
    source.change(n2);
  }
  source.change(far);
  ASSERT_TRUE(eventually([&] { return agent->snapshot().routes.unreachable.size() == 1; }));
  const auto settled = sizeOfState();
  for (int round = 0; round < 200; ++round) {
    source.change(round % 2 ? dualNode(3) : far);
  }
  source.change(far);
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(eventually([&] { return agent->snapshot().routes.unreachable.size() == 1; }));
  EXPECT_EQ(sizeOfState(), settled);
  EXPECT_EQ(std::get<0>(settled), 3u);
  const std::string text = renderMetrics(agent->snapshot());
  EXPECT_EQ(text.size(), renderMetrics(agent->snapshot()).size());
}

TEST_F(AgentTest, StopReturnsAtOnceAndRoutesStay) {
  start();
  source.list(nodes(3));
  ASSERT_TRUE(eventually([&] { return ownRoutes() == 4; }));
  const auto t0 = std::chrono::steady_clock::now();
  stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(ownRoutes(), 4u);
  EXPECT_EQ(agent->removeOwnRoutes(), 4u);
  EXPECT_EQ(ownRoutes(), 0u);
}

TEST_F(AgentTest, ASourceThatCannotStartEndsTheAgentWithItsError) {
  source.failAtStart();
  AgentConfig c;
  c.self = "node1";
  c.protocol = kOwn;
  Agent a(c, source, &kernel, &sets, logs.log());
  std::stop_source never;
  EXPECT_THROW(a.run(never.get_token()), sys::Error);
}

}  // namespace
}  // namespace dualstack::agent
