// The real dualstack-ipam binary with "node": {"kubeconfig": ...}, against the test API server.
#include <gtest/gtest.h>

#include <filesystem>

#include "apiserver.hpp"
#include "support/support.hpp"

namespace dualstack::k8s {
namespace {

namespace fs = std::filesystem;
using dualstack::testing::RunResult;
using nlohmann::json;
using testing::nodeObject;
using testing::Pki;
using testing::TestApiServer;

constexpr const char* kToken = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.c2VydmljZWFjY291bnQ.bm90LXJlYWw";
constexpr const char* kRotated = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjIifQ.cm90YXRlZA.c2lnbmF0dXJlMg";

const std::vector<std::pair<std::string, std::string>> kV4First = {
    {"InternalIP", "192.168.10.5"}, {"InternalIP", "fd00:192:168:10::5"}};
const std::vector<std::pair<std::string, std::string>> kV6First = {
    {"InternalIP", "fd00:192:168:10::5"}, {"InternalIP", "192.168.10.5"}};
const std::vector<std::string> kDualCidrs = {"10.244.1.0/24", "fd00:10:244:1::/64"};

class IpamWithApi : public ::testing::Test {
 protected:
  void SetUp() override {
    server.setTokens({{kToken, "allow"}});
    testing::writeText(tokenFile, std::string(kToken) + "\n");
    testing::KubeconfigSpec s;
    s.server = server.url();
    s.caFile = Pki::get().caCrt;
    s.tokenFile = tokenFile;
    writeKubeconfig(s);
  }

  void writeKubeconfig(const testing::KubeconfigSpec& s) {
    testing::writeText(kubeconfig, testing::kubeconfigYaml(s));
  }

  // The shipped conf/60-dualstack-kubernetes.conflist, pointed at this test's files.
  json conf(const std::string& ttl = "60s", const std::optional<std::string>& name = "worker-1",
            const std::string& version = "1.0.0") const {
    const json list = json::parse(dualstack::testing::readFile(
        dualstack::testing::sourcePath("conf/60-dualstack-kubernetes.conflist")));
    json plugin = list["plugins"][0];
    plugin["cniVersion"] = version;
    plugin["name"] = list["name"];
    plugin["ipam"]["dataDir"] = dataDir;
    json& node = plugin["ipam"]["node"];
    node["kubeconfig"] = kubeconfig;
    node["cacheTTL"] = ttl;
    if (name) node["name"] = *name;
    return plugin;
  }

  RunResult run(const std::string& command, const std::string& id, const json& c,
                const dualstack::testing::EnvMap& extra = {}) const {
    // GC and STATUS concern no attachment: a runtime sets no CNI_CONTAINERID for them.
    auto env =
        command == "GC" || command == "STATUS"
            ? dualstack::testing::EnvMap{{"CNI_COMMAND", command}, {"CNI_PATH", "/nonexistent"}}
            : dualstack::testing::cniEnv(command, id, "/var/run/netns/test");
    for (const auto& [k, v] : extra) env[k] = v;
    RunResult r = dualstack::testing::runPlugin(binary, env, c.dump());
    // The bearer token never leaves the process, whatever happens.
    for (const char* t : {kToken, kRotated}) {
      EXPECT_EQ(r.out.find(t), std::string::npos) << r.out;
      EXPECT_EQ(r.err.find(t), std::string::npos) << r.err;
    }
    return r;
  }

  static std::vector<std::string> ips(const RunResult& r) {
    std::vector<std::string> out;
    const json j = r.json();
    if (j.is_object() && j.contains("ips")) {
      for (const auto& ipc : j["ips"]) out.push_back(ipc["address"].get<std::string>());
    }
    return out;
  }

  // Expects a CNI error with `code` whose msg contains every part.
  static void expectError(const RunResult& r, int code, const std::vector<std::string>& parts) {
    EXPECT_NE(r.exitCode, 0) << r.out;
    const json j = r.json();
    ASSERT_TRUE(j.is_object()) << r.out << r.err;
    EXPECT_EQ(j.value("code", -1), code) << r.out;
    const std::string msg = j.value("msg", "");
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "no '" << p << "' in " << msg;
  }

  std::size_t storedAddresses() const {
    std::size_t n = 0;
    const std::string store = dataDir + "/dualstack";
    if (!fs::exists(store)) return 0;
    for (const auto& e : fs::directory_iterator(store)) {
      const auto name = e.path().filename().string();
      if (e.is_regular_file() && name != "lock" && name.rfind("last_reserved_ip.", 0) != 0) ++n;
    }
    return n;
  }

  dualstack::testing::TempDir tmp;
  std::string dataDir = tmp.file("networks");
  std::string kubeconfig = tmp.file("net.d/dualstack-cni.kubeconfig");
  std::string tokenFile = tmp.file("net.d/token");
  std::string binary = dualstack::testing::binPath("dualstack-ipam");
  TestApiServer server;
};

TEST_F(IpamWithApi, Ipv4PrimaryNodeGivesIpv4First) {
  server.setNode(nodeObject("worker-1", kDualCidrs, kV4First));
  const RunResult r = run("ADD", "c1", conf());
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(ips(r), (std::vector<std::string>{"10.244.1.2/24", "fd00:10:244:1::2/64"}));
  EXPECT_EQ(r.err, "");
}

TEST_F(IpamWithApi, Ipv6PrimaryNodeGivesIpv6First) {
  server.setNode(nodeObject("worker-1", kDualCidrs, kV6First));
  for (const std::string version : {"0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    const RunResult r =
        run("ADD", "c" + std::to_string(server.requests()), conf("0s", "worker-1", version));
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    const auto got = ips(r);
    ASSERT_EQ(got.size(), 2U) << r.out;
    EXPECT_EQ(got[0].find("fd00:10:244:1::"), 0U) << version << " " << r.out;
    EXPECT_EQ(got[1].find("10.244.1."), 0U) << version << " " << r.out;
  }
}

TEST_F(IpamWithApi, SingleStackNodes) {
  server.setNode(nodeObject("worker-1", {"10.244.3.0/24"}, {{"InternalIP", "192.168.10.5"}}));
  RunResult r = run("ADD", "v4", conf("0s"));
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(ips(r), std::vector<std::string>{"10.244.3.2/24"});

  server.setNode(nodeObject("worker-2", {"fd00:10:244:4::/64"}, {{"InternalIP", "fd00::5"}}));
  r = run("ADD", "v6", conf("0s", std::nullopt), {{"K8S_NODE_NAME", "worker-2"}});
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(ips(r), std::vector<std::string>{"fd00:10:244:4::2/64"});
}

TEST_F(IpamWithApi, WarmCacheAsksNothing) {
  server.setNode(nodeObject("worker-1", kDualCidrs, kV4First));
  ASSERT_EQ(run("ADD", "c1", conf("1h")).exitCode, 0);
  ASSERT_EQ(run("ADD", "c2", conf("1h")).exitCode, 0);
  ASSERT_EQ(run("CHECK", "c2", conf("1h")).exitCode, 0);
  ASSERT_EQ(run("STATUS", "", conf("1h", "worker-1", "1.1.0")).exitCode, 0);
  EXPECT_EQ(server.requests(), 1);
  const std::string cache = dataDir + "/.dualstack-k8s/worker-1.json";
  const json c = json::parse(dualstack::testing::readFile(cache));
  EXPECT_EQ(c["podCIDRs"], json(kDualCidrs));
  EXPECT_EQ(c["server"], server.url());
  EXPECT_EQ(fs::status(cache).permissions(), fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(dualstack::testing::readFile(cache).find(kToken), std::string::npos);
}

TEST_F(IpamWithApi, RotatedTokenFileIsPickedUp) {
  server.setNode(nodeObject("worker-1", kDualCidrs, kV4First));
  ASSERT_EQ(run("ADD", "c1", conf("0s")).exitCode, 0);
  server.setTokens({{kRotated, "allow"}});
  testing::writeText(tokenFile, std::string(kRotated) + "\n");
  const RunResult r = run("ADD", "c2", conf("0s"));
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(server.requests(), 2);
}

TEST_F(IpamWithApi, WrongTokenIs401NamingTheTokenFile) {
  server.setNode(nodeObject("worker-1", kDualCidrs, kV4First));
  server.setTokens({{kRotated, "allow"}});
  const RunResult r = run("ADD", "c1", conf());
  expectError(r, 7, {"401 Unauthorized", "token file " + tokenFile, "`get` on `nodes`"});
  EXPECT_EQ(storedAddresses(), 0U);
}

TEST_F(IpamWithApi, InlineTokenForbiddenIs403NamingTheUser) {
  server.setNode(nodeObject("worker-1", kDualCidrs, kV4First));
  server.setTokens({{kToken, "forbid"}});
  testing::KubeconfigSpec s;
  s.server = server.url();
  s.caFile = Pki::get().caCrt;
  s.token = kToken;
  writeKubeconfig(s);
  const RunResult r = run("ADD", "c1", conf());
  expectError(r, 7,
              {"403 Forbidden", "token of kubeconfig user \"dualstack-cni\"", "`get` on `nodes`",
               "cannot get resource \"nodes\""});
}

TEST_F(IpamWithApi, UnknownNodeIs404) {
  server.setNode(nodeObject("worker-1", kDualCidrs, kV4First));
  const RunResult r = run("ADD", "c1", conf("60s", std::nullopt), {{"K8S_NODE_NAME", "worker-7"}});
  expectError(r, 7, {"node \"worker-7\" not found", "K8S_NODE_NAME / node.name"});
}

TEST_F(IpamWithApi, NodeWithoutPodCidrsIsCode11) {
  server.setNode(nodeObject("worker-1", {}, kV4First));
  const RunResult r = run("ADD", "c1", conf());
  expectError(r, 11,
              {"waiting for podCIDRs to be assigned (is kube-controller-manager running "
               "with --allocate-node-cidrs?)"});
  EXPECT_EQ(storedAddresses(), 0U);
  // STATUS says the plugin cannot serve ADDs yet.
  expectError(run("STATUS", "", conf("60s", "worker-1", "1.1.0")), 50, {"waiting for podCIDRs"});
}

TEST_F(IpamWithApi, ServerDownWithFreshCacheStillAdds) {
  server.setNode(nodeObject("worker-1", kDualCidrs, kV6First));
  ASSERT_EQ(run("ADD", "c1", conf("1h")).exitCode, 0);
  server.stop();
  const RunResult r = run("ADD", "c2", conf("1h"));
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(ips(r), (std::vector<std::string>{"fd00:10:244:1::3/64", "10.244.1.3/24"}));
  EXPECT_EQ(r.err, "");
}

TEST_F(IpamWithApi, ServerDownWithStaleCacheAddsAndWarns) {
  server.setNode(nodeObject("worker-1", kDualCidrs, kV4First));
  ASSERT_EQ(run("ADD", "c1", conf("0s")).exitCode, 0);
  server.stop();
  const RunResult r = run("ADD", "c2", conf("0s"));
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(ips(r).size(), 2U);
  EXPECT_NE(r.err.find("warning: cannot reach the Kubernetes API server " + server.url()),
            std::string::npos)
      << r.err;
}

TEST_F(IpamWithApi, ServerDownWithoutCacheIsCode11NamingTheServer) {
  server.stop();
  const RunResult r = run("ADD", "c1", conf());
  expectError(r, 11, {"cannot reach the Kubernetes API server " + server.url()});
  EXPECT_EQ(storedAddresses(), 0U);
}

TEST_F(IpamWithApi, WrongCaFailsSayingTls) {
  server.setNode(nodeObject("worker-1", kDualCidrs, kV4First));
  testing::KubeconfigSpec s;
  s.server = server.url();
  s.caFile = Pki::get().otherCaCrt;
  s.tokenFile = tokenFile;
  writeKubeconfig(s);
  const RunResult r = run("ADD", "c1", conf());
  expectError(
      r, 5,
      {"TLS with the Kubernetes API server " + server.url() + " failed", "certificate-authority"});
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(IpamWithApi, DelCheckAndGcNeverAskTheServer) {
  server.setNode(nodeObject("worker-1", kDualCidrs, kV4First));
  ASSERT_EQ(run("ADD", "c1", conf("0s")).exitCode, 0);
  ASSERT_EQ(run("ADD", "c2", conf("0s")).exitCode, 0);
  EXPECT_EQ(storedAddresses(), 4U);
  server.stop();
  // A kubeconfig that no longer even parses does not matter to DEL, GC or CHECK.
  testing::writeText(kubeconfig, "garbage: [");

  RunResult r = run("CHECK", "c1", conf("0s"));
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  r = run("DEL", "c1", conf("0s"));
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(storedAddresses(), 2U);
  r = run("DEL", "c1", conf("0s"));
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;

  json gc = conf("0s", "worker-1", "1.1.0");
  gc["cni.dev/valid-attachments"] = json::array();
  r = run("GC", "", gc);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_EQ(storedAddresses(), 0U);
}

TEST_F(IpamWithApi, ClientCertificateFromKubeletStyleKubeconfig) {
  server.setNode(nodeObject("worker-1", kDualCidrs, kV4First));
  server.setClient("system:node:worker-1", "allow");
  testing::KubeconfigSpec s;
  s.server = server.url();
  s.caData = dualstack::testing::readFile(Pki::get().caCrt);
  s.certFile = Pki::get().clientCrt;
  s.keyFile = Pki::get().clientKey;
  s.user = "system:node:worker-1";
  writeKubeconfig(s);
  const RunResult r = run("ADD", "c1", conf());
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
}

TEST_F(IpamWithApi, WithoutLibcurlSaysToInstallIt) {
  DUALSTACK_REQUIRE_ROOT();
  const std::string lib = "/usr/lib/x86_64-linux-gnu/libcurl.so.4";
  if (!fs::exists(lib)) GTEST_SKIP() << "no " << lib;
  server.setNode(nodeObject("worker-1", kDualCidrs, kV4First));
  // The plugin in a private mount namespace where libcurl is an empty file.
  const std::string wrapper = tmp.file("without-libcurl.sh");
  testing::writeText(wrapper, "#!/bin/sh\nexec unshare -m sh -c 'mount --bind /dev/null " + lib +
                                  " && exec " + binary + "'\n");
  fs::permissions(wrapper, fs::perms::owner_all);
  auto env = dualstack::testing::cniEnv("ADD", "c1", "/var/run/netns/test");
  const RunResult r = dualstack::testing::runPlugin(wrapper, env, conf().dump());
  expectError(r, 5, {"cannot load libcurl.so.4", "install libcurl4 to use node.kubeconfig"});
  EXPECT_EQ(server.requests(), 0);
}

}  // namespace
}  // namespace dualstack::k8s
