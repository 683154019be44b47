// The dualstack-agent binary as the DaemonSet runs it: in node 1's namespace of the bridge
// cluster, against the test API server (TLS, tokens, list/watch, TokenRequest) listening inside
// that namespace, ended by signals.
#include <signal.h>
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agent/cluster_fixture.hpp"
#include "dualstack/agent/http.hpp"
#include "dualstack/k8s/api.hpp"
#include "dualstack/k8s/kubeconfig.hpp"
#include "k8s/apiserver.hpp"
#include "support/child.hpp"

namespace dualstack::agenttest {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kIp = "/usr/sbin/ip";

class AgentDaemonTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    if (IsSkipped()) return;
    {
      // The server's process is forked from inside node 1's namespace: it listens there.
      const auto handle = netns::Netns::open(node(1).path());
      netns::ScopedSetns in(handle);
      server_ = std::make_unique<k8s::testing::TestApiServer>();
    }
    server_->setTokens({{"agent-token", "allow"}});
    std::vector<nlohmann::json> nodes;
    for (int n = 1; n <= 3; ++n) nodes.push_back(apiNode(n));
    server_->setNodes(nodes);
    kubeconfig_ = tmp_.file("agent.kubeconfig");
    k8s::testing::KubeconfigSpec spec;
    spec.server = server_->url();
    spec.caFile = k8s::testing::Pki::get().caCrt;
    spec.token = "agent-token";
    k8s::testing::writeText(kubeconfig_, k8s::testing::kubeconfigYaml(spec));
  }
  void TearDown() override {
    agent_.reset();
    server_.reset();
    ClusterTest::TearDown();
  }

  static nlohmann::json apiNode(int n) {
    const std::string i = std::to_string(n);
    return k8s::testing::nodeObject(
        "node" + i, {"10.244." + i + ".0/24", "fd00:10:244:" + i + "::/64"},
        {{"InternalIP", "192.168.77." + i}, {"InternalIP", "fd00:77::" + i}});
  }

  std::vector<std::string> agentArgs(std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {kIp,
                                  "netns",
                                  "exec",
                                  node(1).name(),
                                  dualstack::testing::binPath("dualstack-agent"),
                                  "--kubeconfig",
                                  kubeconfig_,
                                  "--node-name",
                                  "node1",
                                  "--metrics-address",
                                  metrics_,
                                  "--cni-network",
                                  network_};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  void startDaemon(std::vector<std::string> extra = {}) {
    agent_ = std::make_unique<dualstack::testing::Child>(
        agentArgs(std::move(extra)), std::vector<std::string>{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
        tmp_.file("agent.log"));
    ASSERT_TRUE(agent_->started());
  }
  std::string log() { return dualstack::testing::readFile(tmp_.file("agent.log")); }

  // GET on the agent's address, from inside node 1.
  agent::HttpReply get(const std::string& path) {
    const auto handle = netns::Netns::open(node(1).path());
    netns::ScopedSetns in(handle);
    return agent::httpGet(agent::parseSocketAddress(metrics_, "test"), path,
                          std::chrono::seconds(5));
  }
  std::string status() {
    std::string out;
    node(1).exec(
        dualstack::testing::binPath("dualstack-agent") + " status --metrics-address " + metrics_,
        &out);
    return out;
  }

  dualstack::testing::TempDir tmp_;
  std::unique_ptr<k8s::testing::TestApiServer> server_;
  std::string kubeconfig_;
  std::string metrics_ = "127.0.0.1:19967";
  std::unique_ptr<dualstack::testing::Child> agent_;
};

TEST_F(AgentDaemonTest, RoutesServesItsStateAndStopsWithinASecondLeavingTheRoutes) {
  startDaemon({"--plugin-kubeconfig", tmp_.file("plugin.kubeconfig"), "--token-expiration", "1h"});
  ASSERT_TRUE(eventually([&] { return ownRouteCount() == 4; })) << log();
  EXPECT_TRUE(ping(1, "fd00:10:244:3::1"));

  ASSERT_TRUE(eventually([&] { return get("/healthz").status == 200; })) << log();
  const agent::HttpReply metrics = get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, HasSubstr("dualstack_agent_routes_installed{family=\"ipv6\"} 2\n"));
  EXPECT_THAT(metrics.body, HasSubstr("dualstack_agent_synced 1\n"));
  EXPECT_THAT(metrics.body, HasSubstr("dualstack_agent_token_expiry_timestamp_seconds"));
  EXPECT_EQ(get("/nothing").status, 404);
  const std::string s = status();
  EXPECT_THAT(s, HasSubstr("Nodes: 3 seen; synced with the API server"));
  EXPECT_THAT(s, HasSubstr("Routes IPv4: 2 wanted, 2 installed"));
  EXPECT_THAT(s, HasSubstr("token expires"));

  // The plugin's kubeconfig: 0600, a token of its own that reads the node.
  const std::string pk = tmp_.file("plugin.kubeconfig");
  struct stat st {};
  ASSERT_EQ(::stat(pk.c_str(), &st), 0) << log();
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  {
    const auto handle = netns::Netns::open(node(1).path());
    netns::ScopedSetns in(handle);
    const k8s::Kubeconfig kc = k8s::loadKubeconfig(pk);
    EXPECT_NE(kc.token, "agent-token");
    EXPECT_EQ(k8s::getNode(kc, {"node2", "test", std::chrono::milliseconds(5000)}).podCIDRs.size(),
              2u);
  }

  // A Node deleted in the API: its routes go.
  server_->deleteNode("node3");
  ASSERT_TRUE(eventually([&] { return ownRouteCount() == 2; })) << ownRoutes();

  const auto t0 = std::chrono::steady_clock::now();
  agent_->signal(SIGTERM);
  EXPECT_EQ(agent_->wait(std::chrono::seconds(5)), 0) << log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  EXPECT_EQ(ownRouteCount(), 2u) << "routes stay";
  EXPECT_THAT(log(), HasSubstr("msg=\"SIGTERM: stopping\""));
}

TEST_F(AgentDaemonTest, RemoveRoutesOnExitRemovesItsOwnOnly) {
  mustExec(node(1), "ip route add 10.99.0.0/16 via 192.168.77.3 proto static");
  startDaemon({"--remove-routes-on-exit"});
  ASSERT_TRUE(eventually([&] { return ownRouteCount() == 4; })) << log();
  agent_->signal(SIGINT);
  EXPECT_EQ(agent_->wait(std::chrono::seconds(5)), 0) << log();
  EXPECT_EQ(ownRouteCount(), 0u);
  EXPECT_EQ(mustExec(node(1), "ip route show 10.99.0.0/16"),
            "10.99.0.0/16 via 192.168.77.3 dev eth0 proto static \n");
}

TEST_F(AgentDaemonTest, WhileTheApiServerFailsNothingIsRemovedAndSighupReconciles) {
  // A route of a previous run to a node that no longer exists.
  mustExec(node(1), "ip route add 10.244.9.0/24 via 192.168.77.9 proto 77");
  server_->fail(503, 3);
  startDaemon();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_THAT(ownRoutes(), HasSubstr("10.244.9.0/24")) << "not removed while nothing is known";
  EXPECT_THAT(status(), HasSubstr("WAITING for the first complete list"));
  EXPECT_EQ(get("/healthz").status, 200) << "an unreachable API server is no reason to restart";
  ASSERT_TRUE(eventually([&] { return ownRouteCount() == 4; })) << log();
  EXPECT_THAT(ownRoutes(), Not(HasSubstr("10.244.9.0/24")));

  mustExec(node(1), "ip route del 10.244.2.0/24");
  agent_->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return ownRouteCount() == 4; }, std::chrono::seconds(5))) << log();
  EXPECT_THAT(log(), HasSubstr("SIGHUP: reconciling everything now"));
}

TEST(AgentCli, HelpVersionBadFlagsAndNoAgentToAsk) {
  std::string out;
  const std::string bin = dualstack::testing::binPath("dualstack-agent");
  EXPECT_EQ(dualstack::testing::shell(bin + " --help", &out), 0);
  EXPECT_THAT(out, HasSubstr("--plugin-kubeconfig FILE"));
  EXPECT_EQ(dualstack::testing::shell(bin + " --version", &out), 0);
  EXPECT_THAT(out, HasSubstr("dualstack-agent "));
  EXPECT_EQ(dualstack::testing::shell(bin + " --node-name n --route-protocol 2 2>&1", &out), 2);
  EXPECT_THAT(out, HasSubstr("--route-protocol"));
  EXPECT_EQ(dualstack::testing::shell(bin + " --nonsense 2>&1", &out), 2);
  // Nothing listens on a port the kernel just handed out and took back.
  agent::HttpServer probe({"127.0.0.1", 0}, [](std::string_view) { return agent::HttpReply{}; });
  const std::string port = std::to_string(probe.port());
  { agent::HttpServer gone = std::move(probe); }
  EXPECT_EQ(dualstack::testing::shell(bin + " status --metrics-address 127.0.0.1:" + port + " 2>&1",
                                      &out),
            1);
  EXPECT_THAT(out, HasSubstr("is dualstack-agent running?"));
}

}  // namespace
}  // namespace dualstack::agenttest
