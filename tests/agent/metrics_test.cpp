#include "dualstack/agent/metrics.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dualstack::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

AgentSnapshot sample() {
  AgentSnapshot s;
  s.node = "worker-1";
  s.version = "0.1.0-gabc";
  s.routeProtocol = 77;
  s.synced = true;
  s.nodes = 3;
  s.routes.wanted4 = 2;
  s.routes.installed4 = 1;
  s.routes.wanted6 = 2;
  s.routes.installed6 = 2;
  s.routes.unreachable = {{"10.244.3.0/24", "worker-3", "10.20.0.3",
                           "10.20.0.3 is reached only through the gateway 192.168.1.254"}};
  s.routes.cluster4 = 3;
  s.routes.cluster6 = 3;
  s.reconcilesFull = 4;
  s.reconcilesPartial = 9;
  s.lastReconcileUnixMs = 1'700'000'000'000;
  s.lastReconcileSeconds = 0.0021;
  s.watch.lists = 1;
  s.watch.watchRestarts = 2;
  s.watch.events = 40;
  s.watch.lastSyncUnixMs = 1'700'000'000'000;
  s.nowUnixMs = 1'700'000'003'500;
  s.token.enabled = true;
  s.token.file = "/etc/cni/net.d/dualstack-cni.kubeconfig";
  s.token.expiresUnix = 1'700'086'400;
  s.token.renewals = 1;
  return s;
}

TEST(Metrics, PrometheusTextWithEveryFamilyTypedAndLabelled) {
  AgentSnapshot s = sample();
  Histogram h;
  h.observe(0.002);
  h.observe(0.3);
  s.reconcileDuration = h.snapshot();
  const std::string text = renderMetrics(s);
  for (const char* line :
       {"dualstack_agent_info{version=\"0.1.0-gabc\",node=\"worker-1\",route_protocol=\"77\"} 1\n",
        "# TYPE dualstack_agent_nodes gauge\ndualstack_agent_nodes 3\n",
        "dualstack_agent_routes_wanted{family=\"ipv4\"} 2\n",
        "dualstack_agent_routes_installed{family=\"ipv4\"} 1\n",
        "dualstack_agent_unreachable_next_hops 1\n",
        "# TYPE dualstack_agent_reconciles_total counter\n",
        "dualstack_agent_reconciles_total{kind=\"full\"} 4\n",
        "dualstack_agent_reconciles_total{kind=\"partial\"} 9\n",
        "dualstack_agent_reconcile_duration_seconds_bucket{le=\"0.005\"} 1\n",
        "dualstack_agent_reconcile_duration_seconds_bucket{le=\"0.5\"} 2\n",
        "dualstack_agent_reconcile_duration_seconds_bucket{le=\"+Inf\"} 2\n",
        "dualstack_agent_reconcile_duration_seconds_count 2\n",
        "dualstack_agent_watch_restarts_total 2\n", "dualstack_agent_seconds_since_last_sync 3.5\n",
        "dualstack_agent_token_expiry_timestamp_seconds 1700086400\n",
        "dualstack_agent_synced 1\n"}) {
    EXPECT_THAT(text, HasSubstr(line));
  }
  // Every sample's family has HELP and TYPE.
  std::size_t types = 0, helps = 0;
  for (std::size_t pos = 0; (pos = text.find("# TYPE ", pos)) != std::string::npos; ++pos) ++types;
  for (std::size_t pos = 0; (pos = text.find("# HELP ", pos)) != std::string::npos; ++pos) ++helps;
  EXPECT_EQ(types, helps);
  EXPECT_GE(types, 24u);
}

TEST(Metrics, NoTokenFamiliesWithoutTokenManagementAndNeverSyncedIsMinusOne) {
  AgentSnapshot s = sample();
  s.token.enabled = false;
  s.watch.lastSyncUnixMs = 0;
  const std::string text = renderMetrics(s);
  EXPECT_THAT(text, Not(HasSubstr("token")));
  EXPECT_THAT(text, HasSubstr("dualstack_agent_seconds_since_last_sync -1\n"));
}

TEST(Metrics, LabelValuesAreEscaped) {
  AgentSnapshot s = sample();
  s.version = "a\"b\\c\nd";
  EXPECT_THAT(renderMetrics(s), HasSubstr("version=\"a\\\"b\\\\c\\nd\""));
}

TEST(Status, JsonHoldsCountsAndAtMostTheListedProblems) {
  AgentSnapshot s = sample();
  for (int i = 0; i < 10; ++i)
    s.routes.conflicts.push_back({"10.9." + std::to_string(i) + ".0/24", "n", "", "x"});
  const auto j = renderStatus(s, 4);
  EXPECT_EQ(j["conflicts"]["count"], 10);
  EXPECT_EQ(j["conflicts"]["items"].size(), 4u);
  EXPECT_EQ(j["unreachable"]["items"][0]["via"], "10.20.0.3");
  EXPECT_EQ(j["routes"]["ipv6"]["installed"], 2);
}

TEST(Status, TheSummaryNamesWhatIsWrongAndWhy) {
  const std::string text = formatStatus(renderStatus(sample()));
  EXPECT_THAT(text, HasSubstr("on node worker-1, route protocol 77"));
  EXPECT_THAT(text,
              HasSubstr("Nodes: 3 seen; synced with the API server, last heard from it 3s ago"));
  EXPECT_THAT(text, HasSubstr("Routes IPv4: 2 wanted, 1 installed (see below)"));
  EXPECT_THAT(text, HasSubstr("Next hops not directly reachable (no route installed): 1\n"
                              "  10.244.3.0/24 via 10.20.0.3 (node worker-3): 10.20.0.3 is reached "
                              "only through the gateway 192.168.1.254\n"));
  EXPECT_THAT(
      text,
      HasSubstr("Reconciles: 4 full, 9 after events, 0 with errors; last 3s ago, took 2.1 ms"));
  EXPECT_THAT(text, HasSubstr("token expires 2023-11-15T22:13:20Z (in 23h59m)"));
}

TEST(Status, NotSyncedSaysItIsWaiting) {
  AgentSnapshot s = sample();
  s.synced = false;
  s.watch.lastSyncUnixMs = 0;
  EXPECT_THAT(formatStatus(renderStatus(s)),
              HasSubstr("WAITING for the first complete list, last heard from it never"));
}

}  // namespace
}  // namespace dualstack::agent
