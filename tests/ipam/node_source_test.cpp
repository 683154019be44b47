// The ipam.node schema of the Kubernetes API source, and its cache policy against the test API
// server.
#include "dualstack/ipam/node_source.hpp"

#include <gtest/gtest.h>

#include "dualstack/cni/error.hpp"
#include "dualstack/k8s/names.hpp"
#include "k8s/apiserver.hpp"

namespace dualstack::ipam {
namespace {

using cni::Code;
using cni::Error;
using k8s::CachedNode;
using k8s::Node;
using k8s::readCache;
using k8s::writeCache;
using nlohmann::json;
using std::chrono::milliseconds;
namespace testing = k8s::testing;
using testing::nodeObject;
using testing::Pki;
using testing::TestApiServer;

cni::EnvLookup env(std::optional<std::string> nodeName) {
  return [nodeName](const char* name) -> std::optional<std::string> {
    if (std::string(name) == "K8S_NODE_NAME") return nodeName;
    return std::nullopt;
  };
}

TEST(NodeApiConfig, NameFromConfigThenEnvThenHostName) {
  const json base = {{"kubeconfig", "/etc/k"}};
  json withName = base;
  withName["name"] = "worker-1";
  auto c = parseNodeApiConfig(withName, "ipam.node", env("worker-2"));
  EXPECT_EQ(c.name, "worker-1");
  EXPECT_EQ(c.nameSource, "ipam.node.name");
  EXPECT_EQ(c.timeout, milliseconds(2000));
  EXPECT_EQ(c.cacheTTL, milliseconds(60000));

  c = parseNodeApiConfig(base, "ipam.node", env("worker-2"));
  EXPECT_EQ(c.name, "worker-2");
  EXPECT_EQ(c.nameSource, "K8S_NODE_NAME");

  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::string lower = host;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (k8s::validNodeName(lower)) {
    c = parseNodeApiConfig(base, "ipam.node", env(std::nullopt));
    EXPECT_EQ(c.name, lower);
    EXPECT_EQ(c.nameSource, "the host name");
  }

  json timed = withName;
  timed["timeout"] = "250ms";
  timed["cacheTTL"] = 0;
  c = parseNodeApiConfig(timed, "ipam.node", env(std::nullopt));
  EXPECT_EQ(c.timeout, milliseconds(250));
  EXPECT_EQ(c.cacheTTL, milliseconds(0));
}

TEST(NodeApiConfig, BadInputIsNamed) {
  struct Case {
    json node;
    std::optional<std::string> env;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{{"kubeconfig", "k"}, {"name", "a"}},
       {},
       "ipam.node.kubeconfig: \"k\" is not an absolute path"},
      {{{"kubeconfig", 7}}, {}, "ipam.node.kubeconfig"},
      {{{"kubeconfig", "/k"}, {"file", "/n.json"}}, {}, "give either kubeconfig or file"},
      {{{"kubeconfig", "/k"}, {"podCIDRs", json::array()}},
       {},
       "give either kubeconfig or podCIDRs"},
      {{{"kubeconfig", "/k"}, {"name", "../etc"}},
       {},
       "node name \"../etc\" (from ipam.node.name)"},
      {{{"kubeconfig", "/k"}}, "Worker_1", "node name \"Worker_1\" (from K8S_NODE_NAME)"},
      {{{"kubeconfig", "/k"}, {"name", "a"}, {"timeout", "0s"}}, {}, "ipam.node.timeout: must be"},
      {{{"kubeconfig", "/k"}, {"name", "a"}, {"cacheTTL", "forever"}}, {}, "ipam.node.cacheTTL: "},
  };
  for (const auto& c : cases) {
    try {
      parseNodeApiConfig(c.node, "ipam.node", env(c.env));
      ADD_FAILURE() << "accepted " << c.node.dump();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::InvalidConfig);
      EXPECT_NE(e.msg().find(c.message), std::string::npos) << e.msg();
    }
  }
}

constexpr const char* kToken = "c2VjcmV0LXRva2VuLWZvci1jYWNoZS10ZXN0cw";

// The cache policy with a real server behind it.
class Policy : public ::testing::Test {
 protected:
  void SetUp() override {
    server.setTokens({{kToken, "allow"}});
    server.setNode(nodeObject("worker-1", {"10.244.1.0/24", "fd00:10:244:1::/64"},
                              {{"InternalIP", "192.168.10.5"}}));
    testing::KubeconfigSpec s;
    s.server = server.url();
    s.caFile = Pki::get().caCrt;
    s.token = kToken;
    testing::writeText(kubeconfig, testing::kubeconfigYaml(s));
  }

  ApiNodeSource source(const std::string& ttl) {
    const json node = {{"kubeconfig", kubeconfig}, {"name", "worker-1"}, {"cacheTTL", ttl}};
    return ApiNodeSource(parseNodeApiConfig(node, "ipam.node", env(std::nullopt)), dataDir,
                         [this](const std::string& m) { warnings.push_back(m); });
  }

  dualstack::testing::TempDir tmp;
  std::string kubeconfig = tmp.file("dualstack.kubeconfig");
  std::string dataDir = tmp.file("networks");
  TestApiServer server;
  std::vector<std::string> warnings;
};

TEST_F(Policy, FreshCacheSavesTheRequest) {
  auto src = source("1h");
  EXPECT_EQ(src.read(Access::Api).podCIDRs.size(), 2U);
  EXPECT_EQ(server.requests(), 1);
  EXPECT_EQ(src.read(Access::Api).podCIDRs.size(), 2U);
  EXPECT_EQ(server.requests(), 1);
  const auto c = readCache(src.cacheFile());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->server, server.url());
  EXPECT_EQ(c->kubeconfig, kubeconfig);
  EXPECT_TRUE(warnings.empty());
}

TEST_F(Policy, ExpiredCacheIsRefreshed) {
  auto src = source("0s");
  src.read(Access::Api);
  server.setNode(nodeObject("worker-1", {"10.244.1.0/24", "fd00:10:244:1::/64"},
                            {{"InternalIP", "fd00:192:168:10::5"}}));
  EXPECT_EQ(src.read(Access::Api).addresses[0].address.str(), "fd00:192:168:10::5");
  EXPECT_EQ(server.requests(), 2);
  EXPECT_EQ(readCache(src.cacheFile())->node.addresses[0].address.str(), "fd00:192:168:10::5");
}

TEST_F(Policy, StaleCacheStandsInWhileTheServerIsDown) {
  auto src = source("0s");
  src.read(Access::Api);
  server.stop();
  const Node n = src.read(Access::Api);
  EXPECT_EQ(n.podCIDRs.size(), 2U);
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_NE(warnings[0].find("cannot reach the Kubernetes API server " + server.url()),
            std::string::npos)
      << warnings[0];
  EXPECT_NE(warnings[0].find("using the copy of node \"worker-1\""), std::string::npos)
      << warnings[0];
}

TEST_F(Policy, StaleCacheDoesNotHideAuthErrors) {
  auto src = source("0s");
  src.read(Access::Api);
  server.setTokens({});
  try {
    src.read(Access::Api);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(e.msg().find("401"), std::string::npos) << e.msg();
  }
}

TEST_F(Policy, NoCacheAndServerDownIsCode11NamingTheServer) {
  server.stop();
  try {
    source("1h").read(Access::Api);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::TryAgainLater);
    EXPECT_NE(e.msg().find(server.url()), std::string::npos) << e.msg();
  }
}

TEST_F(Policy, NodeWithoutPodCidrsIsCode11AndNotCached) {
  server.setNode(nodeObject("worker-1", {}, {{"InternalIP", "192.168.10.5"}}));
  auto src = source("1h");
  try {
    src.read(Access::Api);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::TryAgainLater);
    EXPECT_NE(e.msg().find("waiting for podCIDRs to be assigned (is kube-controller-manager "
                           "running with --allocate-node-cidrs?)"),
              std::string::npos)
        << e.msg();
  }
  EXPECT_EQ(readCache(src.cacheFile()), std::nullopt);
}

TEST_F(Policy, CacheOnlyNeverAsks) {
  auto src = source("0s");
  try {
    src.read(Access::CacheOnly);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(e.msg().find("no cached copy"), std::string::npos) << e.msg();
  }
  EXPECT_EQ(server.requests(), 0);
  src.read(Access::Api);
  EXPECT_EQ(src.read(Access::CacheOnly).podCIDRs.size(), 2U);
  EXPECT_EQ(server.requests(), 1);
}

TEST_F(Policy, CacheOfAnotherKubeconfigOrCorruptIsIgnored) {
  auto src = source("1h");
  CachedNode other{{"worker-1", {{*ip::Prefix::parse("10.99.0.0/24"), "spec.podCIDRs[0]"}}, {}, {}},
                   "/other.kubeconfig",
                   "https://x",
                   {}};
  other.fetchedAt = std::chrono::system_clock::now();
  writeCache(src.cacheFile(), other);
  EXPECT_EQ(src.read(Access::Api).podCIDRs.size(), 2U);
  EXPECT_EQ(server.requests(), 1);

  testing::writeText(src.cacheFile(), "{not json");
  EXPECT_EQ(src.read(Access::Api).podCIDRs.size(), 2U);
  EXPECT_EQ(server.requests(), 2);
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_NE(warnings[0].find("ignoring the node cache"), std::string::npos) << warnings[0];
}

// A cache whose fetchedAtMs is beyond what the clock can hold is corrupt: the server is asked.
TEST_F(Policy, CacheFromBeyondTheClockIsIgnored) {
  auto src = source("1h");
  for (const char* ms : {"9223372036854775807", "9223372036854"}) {
    testing::writeText(src.cacheFile(),
                       std::string(R"({"version": 1, "node": "worker-1", "kubeconfig": ")") +
                           kubeconfig + R"(", "fetchedAtMs": )" + ms +
                           R"(, "podCIDRs": ["10.99.0.0/24"]})");
    EXPECT_EQ(src.read(Access::Api).podCIDRs.size(), 2U) << ms;
  }
  EXPECT_EQ(server.requests(), 2);
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_NE(warnings[0].find("ignoring the node cache"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("fetchedAtMs"), std::string::npos) << warnings[0];
}

// A Node whose podCIDR is no CIDR is refused naming it, and not cached: the next ADD asks again.
TEST_F(Policy, UnusableNodeIsInvalidConfigAndNotCached) {
  server.setNode(nodeObject("worker-1", {"10.244.1.0/24", "fd00:10:244:1::/6400"},
                            {{"InternalIP", "192.168.10.5"}}));
  auto src = source("1h");
  try {
    src.read(Access::Api);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::InvalidConfig);
    EXPECT_EQ(e.msg(), "node \"worker-1\" from the Kubernetes API (kubeconfig " + kubeconfig +
                           "): spec.podCIDRs[1]: \"fd00:10:244:1::/6400\" is not an address in "
                           "CIDR form (like 10.244.1.0/24)");
  }
  EXPECT_EQ(readCache(src.cacheFile()), std::nullopt);
}

// A cache an older version wrote holds what the API said, usable or not.
TEST_F(Policy, UnusableCacheIsInvalidConfig) {
  auto src = source("1h");
  testing::writeText(src.cacheFile(),
                     R"({"version": 1, "node": "worker-1", "kubeconfig": ")" + kubeconfig +
                         R"(", "fetchedAtMs": )" +
                         std::to_string(std::chrono::duration_cast<milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count()) +
                         R"(, "podCIDRs": ["10.244.1.0/24"], "addresses": )" +
                         R"([{"type": "InternalIP", "address": "192.168.10.300"}]})");
  for (const Access access : {Access::Api, Access::CacheOnly}) {
    try {
      src.read(access);
      ADD_FAILURE();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::InvalidConfig);
      EXPECT_EQ(e.msg(), "node \"worker-1\" from the Kubernetes API (kubeconfig " + kubeconfig +
                             "): status.addresses[0].address: \"192.168.10.300\" is not an IP "
                             "address");
    }
  }
  EXPECT_EQ(server.requests(), 0);
}

}  // namespace
}  // namespace dualstack::ipam
