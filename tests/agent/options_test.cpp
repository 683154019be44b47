#include "dualstack/agent/options.hpp"
#include "dualstack/sys/error.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace dualstack::agent {
namespace {

using ::testing::HasSubstr;

Options parse(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), "dualstack-agent");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return parseOptions(static_cast<int>(argv.size()), argv.data(),
                      [&](const char* name) -> std::optional<std::string> {
                        const auto it = env.find(name);
                        if (it == env.end()) return std::nullopt;
                        return it->second;
                      });
}

std::string errorOf(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  try {
    parse(std::move(args), std::move(env));
  } catch (const sys::Error& e) {
    EXPECT_EQ(e.code(), sys::Code::InvalidConfig);
    return e.msg();
  }
  return "<no error>";
}

TEST(AgentOptions, Defaults) {
  const Options o = parse({}, {{"NODE_NAME", "worker-1"}});
  EXPECT_EQ(o.mode, Options::Mode::Run);
  EXPECT_EQ(o.nodeName, "worker-1");
  EXPECT_TRUE(o.kubeconfig.empty()) << "in-cluster";
  EXPECT_EQ(o.metricsAddress.host, "127.0.0.1");
  EXPECT_EQ(o.metricsAddress.port, 9967);
  EXPECT_EQ(o.reconcileInterval, std::chrono::seconds(30));
  EXPECT_EQ(o.routeProtocol, 77);
  EXPECT_TRUE(o.routes);
  EXPECT_FALSE(o.removeRoutesOnExit);
  EXPECT_EQ(o.cniNetwork, "dualstack");
  EXPECT_TRUE(o.pluginKubeconfig.empty());
  EXPECT_EQ(o.tokenExpiration, std::chrono::hours(24));
}

TEST(AgentOptions, EveryFlag) {
  const Options o = parse({"--kubeconfig",
                           "/etc/k.conf",
                           "--node-name=n1",
                           "--metrics-address",
                           "[::1]:9000",
                           "--reconcile-interval",
                           "1m30s",
                           "--route-protocol",
                           "201",
                           "--no-routes",
                           "--remove-routes-on-exit",
                           "--cni-network",
                           "k8s-pod-network",
                           "--plugin-kubeconfig",
                           "/host/etc/cni/net.d/dualstack-cni.kubeconfig",
                           "--token-service-account",
                           "cni/agent",
                           "--token-expiration",
                           "1h",
                           "--log-level",
                           "debug"},
                          {{"NODE_NAME", "ignored"}});
  EXPECT_EQ(o.kubeconfig, "/etc/k.conf");
  EXPECT_EQ(o.nodeName, "n1") << "the flag wins over NODE_NAME";
  EXPECT_EQ(o.metricsAddress.host, "::1");
  EXPECT_EQ(o.reconcileInterval, std::chrono::seconds(90));
  EXPECT_EQ(o.routeProtocol, 201);
  EXPECT_FALSE(o.routes);
  EXPECT_TRUE(o.removeRoutesOnExit);
  EXPECT_EQ(o.cniNetwork, "k8s-pod-network");
  EXPECT_EQ(o.tokenNamespace, "cni");
  EXPECT_EQ(o.tokenServiceAccount, "agent");
  EXPECT_EQ(o.tokenExpiration, std::chrono::hours(1));
  EXPECT_EQ(o.logLevel, Level::Debug);
}

TEST(AgentOptions, BadValuesAreRefusedNamingTheFlag) {
  const std::map<std::string, std::string> env = {{"NODE_NAME", "n"}};
  EXPECT_THAT(errorOf({}), HasSubstr("no node name"));
  EXPECT_THAT(errorOf({"--node-name", "Bad_Name"}), HasSubstr("not a valid Node name"));
  EXPECT_THAT(errorOf({"--route-protocol", "3"}, env), HasSubstr("from 5 to 255"));
  EXPECT_THAT(errorOf({"--route-protocol", "256"}, env), HasSubstr("--route-protocol"));
  EXPECT_THAT(errorOf({"--reconcile-interval", "100ms"}, env), HasSubstr("between 1s and 1h"));
  EXPECT_THAT(errorOf({"--token-expiration", "5m"}, env), HasSubstr("10m (the API's minimum)"));
  EXPECT_THAT(errorOf({"--token-service-account", "nobody"}, env), HasSubstr("NAMESPACE/NAME"));
  EXPECT_THAT(errorOf({"--plugin-kubeconfig", "relative"}, env), HasSubstr("absolute"));
  EXPECT_THAT(errorOf({"--cni-network", "../x"}, env), HasSubstr("--cni-network"));
  EXPECT_THAT(errorOf({"--metrics-address", "9967"}, env), HasSubstr("--metrics-address"));
  EXPECT_THAT(errorOf({"--log-level", "loud"}, env), HasSubstr("--log-level"));
  EXPECT_THAT(errorOf({"--no-routes=yes"}, env), HasSubstr("takes no value"));
  EXPECT_THAT(errorOf({"--kubeconfig"}, env), HasSubstr("needs a value"));
  EXPECT_THAT(errorOf({"--frobnicate"}, env), HasSubstr("unknown argument"));
}

TEST(AgentOptions, StatusHelpVersion) {
  const Options s = parse({"status", "--metrics-address", "127.0.0.1:1234"});
  EXPECT_EQ(s.mode, Options::Mode::Status);
  EXPECT_EQ(s.metricsAddress.port, 1234);
  EXPECT_THAT(errorOf({"status", "--no-routes"}), HasSubstr("takes only --metrics-address"));
  EXPECT_EQ(parse({"--help"}).mode, Options::Mode::Help);
  EXPECT_EQ(parse({"--version"}).mode, Options::Mode::Version);
  for (const char* flag :
       {"--kubeconfig", "--node-name", "--metrics-address", "--reconcile-interval",
        "--route-protocol", "--no-routes", "--remove-routes-on-exit", "--cni-network",
        "--plugin-kubeconfig", "--token-service-account", "--token-expiration", "--log-level",
        "status"}) {
    EXPECT_THAT(usage(), HasSubstr(flag));
  }
}

}  // namespace
}  // namespace dualstack::agent
