// dualstack-install against a temporary host root: atomic replacement under concurrent execs,
// the kubeconfig from a service account and its rotation, SIGTERM, uninstall, bad input.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dualstack/install/files.hpp"
#include "dualstack/install/installer.hpp"
#include "dualstack/install/kubeconfig.hpp"
#include "dualstack/k8s/api.hpp"
#include "dualstack/k8s/kubeconfig.hpp"
#include "dualstack/sys/error.hpp"
#include "k8s/apiserver.hpp"
#include "support/child.hpp"
#include "support/support.hpp"

extern char** environ;

namespace dualstack::install {
namespace {

using dualstack::testing::readFile;

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

void writeAll(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

// Replaces a file the way kubelet updates a projected token: a new file renamed over the old.
void rotate(const std::string& path, const std::string& content) {
  writeAll(path + ".new", content);
  fs::rename(path + ".new", path);
}

mode_t modeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

std::string base64Url(const std::string& s) {
  std::string b = base64Encode(s);
  for (auto& c : b) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!b.empty() && b.back() == '=') b.pop_back();
  return b;
}

// A service-account-like JWT (unsigned: only the API server checks signatures).
std::string jwt(std::int64_t iat, std::int64_t exp,
                const std::string& sub = "system:serviceaccount:kube-system:dualstack-cni") {
  const std::string payload = "{\"iss\":\"https://kubernetes.default.svc\",\"sub\":\"" + sub +
                              "\",\"iat\":" + std::to_string(iat) +
                              ",\"exp\":" + std::to_string(exp) + "}";
  return base64Url(R"({"alg":"RS256","kid":"k1"})") + "." + base64Url(payload) + ".c2lnbmF0dXJl";
}

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

using dualstack::testing::eventually;

using dualstack::testing::Child;

class Installer : public ::testing::Test {
 protected:
  dualstack::testing::TempDir tmp;
  std::string host = tmp.file("host");
  std::string sa = tmp.file("sa");
  std::string binDir = host + "/opt/cni/bin";
  std::string confDir = host + "/etc/cni/net.d";
  std::string kubeconfig = confDir + "/dualstack-cni.kubeconfig";
  std::string conflist = confDir + "/10-dualstack.conflist";
  std::string errFile = tmp.file("install.err");
  std::string ca = "-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n";

  void SetUp() override {
    fs::create_directories(host);
    fs::create_directories(sa);
    writeAll(sa + "/token", jwt(now(), now() + 3600) + "\n");
    writeAll(sa + "/ca.crt", ca);
  }

  std::vector<std::string> args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {dualstack::testing::binPath("dualstack-install"),
                                  "--host-root",
                                  host,
                                  "--source-dir",
                                  dualstack::testing::binDir(),
                                  "--token-file",
                                  sa + "/token",
                                  "--ca-file",
                                  sa + "/ca.crt",
                                  "--server",
                                  "https://192.0.2.1:6443"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::vector<std::string> env(const std::string& node = "worker-1") const {
    std::vector<std::string> e = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    if (!node.empty()) e.push_back("K8S_NODE_NAME=" + node);
    return e;
  }
  // Runs to completion (--once or a failure); returns the exit status.
  int runOnce(std::vector<std::string> extra = {}, const std::string& node = "worker-1") {
    extra.push_back("--once");
    Child c(args(extra), env(node), errFile);
    EXPECT_TRUE(c.started());
    return c.wait(30s);
  }
  std::string err() const { return readFile(errFile); }

  // The installer's loop, started with `extra`, once it has installed (wrap the call in
  // ASSERT_NO_FATAL_FAILURE); stopLoop() sends it SIGTERM and returns its exit status.
  std::unique_ptr<Child> installer;
  void startLoop(const std::vector<std::string>& extra) {
    installer = std::make_unique<Child>(args(extra), env(), errFile);
    ASSERT_TRUE(installer->started());
    ASSERT_TRUE(eventually([&] { return fs::exists(conflist); }, 30s)) << err();
  }
  int stopLoop() {
    installer->signal(SIGTERM);
    return installer->wait(10s);
  }
  // Whether, within `limit`, the kubeconfig carries `token` / the installer's log holds `text`.
  bool kubeconfigCarries(const std::string& token, std::chrono::milliseconds limit) const {
    return eventually([&] { return readFile(kubeconfig).find(token) != std::string::npos; }, limit);
  }
  bool logs(const std::string& text, std::chrono::milliseconds limit) const {
    return eventually([&] { return err().find(text) != std::string::npos; }, limit);
  }

  std::vector<std::string> filesUnder(const std::string& dir) const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
      if (!e.is_directory()) out.push_back(fs::relative(e.path(), dir).string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

TEST(InstallUnits, Base64AndTokenTimes) {
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("f"), "Zg==");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_EQ(base64Encode("foo"), "Zm9v");
  EXPECT_EQ(base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64Encode("\xff\xfe\xfd"), "//79");

  const auto t = tokenTimes(jwt(1700000000, 1700003600));
  ASSERT_TRUE(t.issuedAt && t.expiresAt);
  EXPECT_EQ(*t.issuedAt, 1700000000);
  EXPECT_EQ(*t.expiresAt, 1700003600);
  // base64url characters ('-', '_') in the payload decode too.
  const auto u = tokenTimes(jwt(1, 2, "a?>?>~~~"));
  EXPECT_EQ(u.expiresAt, std::optional<std::int64_t>(2));
  EXPECT_FALSE(tokenTimes("an-opaque-static-token").expiresAt);
  EXPECT_FALSE(tokenTimes("a.!!!.c").expiresAt);

  EXPECT_EQ(serverUrl("10.96.0.1", "443"), "https://10.96.0.1:443");
  EXPECT_EQ(serverUrl("fd00:10:96::1", "443"), "https://[fd00:10:96::1]:443");
}

// exp and iat are cast to integers: only numbers that are times may be (1e300 is not).
TEST(InstallUnits, TokenTimesOutOfRangeAreLeftOut) {
  const auto claims = [](const std::string& iat, const std::string& exp) {
    return base64Url(R"({"alg":"RS256"})") + "." +
           base64Url(R"({"iat":)" + iat + R"(,"exp":)" + exp + "}") + ".c2ln";
  };
  // The last second of the year 9999, and the start of the epoch.
  auto t = tokenTimes(claims("0", "253402300799"));
  EXPECT_EQ(t.issuedAt, std::optional<std::int64_t>(0));
  EXPECT_EQ(t.expiresAt, std::optional<std::int64_t>(253402300799));
  EXPECT_EQ(t.problem, "");
  t = tokenTimes(claims("1700000000.75", "1700003600.5"));
  EXPECT_EQ(t.issuedAt, std::optional<std::int64_t>(1700000000));
  EXPECT_EQ(t.expiresAt, std::optional<std::int64_t>(1700003600));

  for (const char* bad : {"253402300800", "1e300", "-1", "-1e300", "9223372036854775807",
                          "18446744073709551615", "\"1700003600\"", "true", "[1]", "{\"a\":1}"}) {
    t = tokenTimes(claims("1700000000", bad));
    EXPECT_EQ(t.expiresAt, std::nullopt) << bad;
    EXPECT_EQ(t.issuedAt, std::optional<std::int64_t>(1700000000)) << bad;
    EXPECT_THAT(t.problem, HasSubstr("exp claim")) << bad;
    EXPECT_THAT(t.problem, HasSubstr("is not a time")) << bad;
    t = tokenTimes(claims(bad, "1700003600"));
    EXPECT_EQ(t.issuedAt, std::nullopt) << bad;
    EXPECT_EQ(t.expiresAt, std::optional<std::int64_t>(1700003600)) << bad;
    EXPECT_THAT(t.problem, HasSubstr("iat claim")) << bad;
  }
  // A payload nested past any limit is no trouble: only top-level claims are read.
  const std::string deep =
      base64Url(R"({"exp":1700003600,"x":)" + dualstack::testing::nestedJson(100000) + "}");
  EXPECT_EQ(tokenTimes("aGVhZA." + deep + ".c2ln").expiresAt,
            std::optional<std::int64_t>(1700003600));
}

TEST(InstallUnits, KubeconfigIsOnlyWrittenForHttps) {
  const std::string pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  for (const char* server : {"http://10.96.0.1:443", "HTTP://x", "10.96.0.1:443", ""}) {
    try {
      renderKubeconfig(server, pem, "abc.def.ghi", "token file t");
      ADD_FAILURE() << "wrote a kubeconfig for " << server;
    } catch (const sys::Error& e) {
      EXPECT_EQ(e.code(), sys::Code::InvalidConfig);
      EXPECT_THAT(e.msg(), HasSubstr("is not an https:// URL")) << e.msg();
      EXPECT_EQ(e.msg().find("abc.def.ghi"), std::string::npos) << e.msg();
    }
  }
}

TEST(InstallUnits, KubeconfigParsesWithThePluginsParser) {
  const std::string pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  const std::string text =
      renderKubeconfig("https://[fd00::1]:6443", pem, "abc.def.ghi", "token file t");
  const auto kc = k8s::parseKubeconfig(text, "test");
  EXPECT_EQ(kc.server, "https://[fd00::1]:6443");
  EXPECT_EQ(kc.caData, pem);
  EXPECT_EQ(kc.token, "abc.def.ghi");
  try {
    renderKubeconfig("https://x:1", pem, "abc def", "token file /sa/token");
    FAIL() << "a token with a space was accepted";
  } catch (const sys::Error& e) {
    EXPECT_THAT(e.msg(), HasSubstr("token file /sa/token holds a character"));
  }
}

TEST(InstallUnits, ConflistGetsTheNodeAndKubeconfig) {
  const std::string templ = readFile(dualstack::testing::sourcePath("conf/10-dualstack.conflist"));
  const auto j = nlohmann::json::parse(renderConflist(templ, "t", "/etc/cni/net.d/k", "worker-7"));
  const auto& node = j["plugins"][0]["ipam"]["node"];
  EXPECT_EQ(node["kubeconfig"], "/etc/cni/net.d/k");
  EXPECT_EQ(node["name"], "worker-7");
  EXPECT_FALSE(node.contains("podCIDRs"));
  EXPECT_FALSE(node.contains("addresses"));
  EXPECT_EQ(j["name"], "dualstack");

  EXPECT_THROW(
      renderConflist(R"({"plugins": [{"type": "bridge", "ipam": {"type": "host-local"}}]})", "t",
                     "/k", "n"),
      sys::Error);
  EXPECT_THROW(renderConflist("{not json", "t", "/k", "n"), sys::Error);
  // Dumping the rendered list recurses once per level: a deep template is refused first.
  const std::string deep = R"({"plugins": [{"type": "dualstack", "ipam": {"type": "dualstack-ipam",
      "x": )" + dualstack::testing::nestedJson(100000) +
                           "}}]}";
  try {
    renderConflist(deep, "template /t.conflist", "/k", "n");
    FAIL() << "accepted";
  } catch (const sys::Error& e) {
    EXPECT_THAT(e.msg(), HasSubstr("template /t.conflist is nested deeper than 128 levels"));
  }
}

TEST_F(Installer, OnceInstallsBinariesKubeconfigAndConflist) {
  ASSERT_EQ(runOnce(), 0) << err();
  for (const char* b : {"dualstack", "dualstack-ipam"}) {
    const std::string dst = binDir + "/" + b;
    EXPECT_EQ(modeOf(dst), 0755u) << b;
    EXPECT_TRUE(readFile(dst) == readFile(dualstack::testing::binPath(b))) << b;
  }
  EXPECT_EQ(modeOf(kubeconfig), 0600u);
  const auto kc = k8s::loadKubeconfig(kubeconfig);
  EXPECT_EQ(kc.server, "https://192.0.2.1:6443");
  EXPECT_EQ(kc.token + "\n", readFile(sa + "/token"));
  EXPECT_EQ(kc.caData, ca);

  EXPECT_EQ(modeOf(conflist), 0644u);
  const auto j = nlohmann::json::parse(readFile(conflist));
  EXPECT_EQ(j["plugins"][0]["ipam"]["node"]["name"], "worker-1");
  EXPECT_EQ(j["plugins"][0]["ipam"]["node"]["kubeconfig"],
            "/etc/cni/net.d/dualstack-cni.kubeconfig");
  EXPECT_EQ(j["plugins"][0]["ipam"]["dataDir"], "/var/lib/cni/networks");

  // Nothing else: no temp files left behind.
  EXPECT_EQ(filesUnder(host),
            (std::vector<std::string>{"etc/cni/net.d/10-dualstack.conflist",
                                      "etc/cni/net.d/dualstack-cni.kubeconfig",
                                      "opt/cni/bin/dualstack", "opt/cni/bin/dualstack-ipam"}));

  // Again: the binaries are left alone.
  ASSERT_EQ(runOnce(), 0) << err();
  EXPECT_THAT(err(), HasSubstr("up to date: " + binDir + "/dualstack"));

  // The installed plugin answers: the node ends up working.
  std::string out;
  EXPECT_EQ(
      dualstack::testing::shell("env -u CNI_COMMAND " + binDir + "/dualstack-ipam --version", &out),
      0);
  EXPECT_THAT(out, HasSubstr("dualstack-ipam "));
}

// What the installer writes is what the plugin uses: its kubeconfig, made from the pod's token
// and CA, reads the node from a (test) API server over verified TLS.
TEST_F(Installer, WrittenKubeconfigReadsTheNodeFromTheApiServer) {
  k8s::testing::TestApiServer server;
  const std::string token = jwt(now(), now() + 3600);
  writeAll(sa + "/token", token + "\n");
  writeAll(sa + "/ca.crt", readFile(k8s::testing::Pki::get().caCrt));
  server.setTokens({{token, "allow"}});
  server.setNode(k8s::testing::nodeObject("worker-1", {"10.244.1.0/24", "fd00:10:244:1::/64"},
                                          {{"InternalIP", "fd00:192:168:10::5"}}));
  ASSERT_EQ(runOnce({"--server", server.url()}), 0) << err();
  const auto kc = k8s::loadKubeconfig(kubeconfig);
  const k8s::Node node = k8s::getNode(kc, {"worker-1", "test", std::chrono::milliseconds(5000)});
  EXPECT_EQ(k8s::testing::podCidrTexts(node),
            (std::vector<std::string>{"10.244.1.0/24", "fd00:10:244:1::/64"}));
  EXPECT_EQ(server.requests(), 1);
}

// With --token-service-account the kubeconfig holds a token of its own from the TokenRequest
// API, not the pod's: it keeps working after the pod's token is revoked (the pod deleted).
TEST_F(Installer, ATokenRequestTokenOutlivesThePodsOwnToken) {
  k8s::testing::TestApiServer server;
  const std::string podToken = jwt(now(), now() + 3600);
  writeAll(sa + "/token", podToken + "\n");
  writeAll(sa + "/ca.crt", readFile(k8s::testing::Pki::get().caCrt));
  server.setTokens({{podToken, "allow"}});
  server.setNode(
      k8s::testing::nodeObject("worker-1", {"10.244.1.0/24"}, {{"InternalIP", "192.168.10.5"}}));
  ASSERT_EQ(runOnce({"--server", server.url(), "--token-service-account",
                     "kube-system/dualstack-cni", "--token-expiration", "2h"}),
            0)
      << err();
  EXPECT_EQ(modeOf(kubeconfig), 0600u);
  EXPECT_THAT(readFile(kubeconfig),
              HasSubstr("TokenRequest token of service account kube-system/dualstack-cni"));
  const auto kc = k8s::loadKubeconfig(kubeconfig);
  EXPECT_NE(kc.token, podToken);
  const auto times = tokenTimes(kc.token);
  ASSERT_TRUE(times.expiresAt.has_value());
  EXPECT_NEAR(static_cast<double>(*times.expiresAt - now()), 7200, 120) << "the lifetime asked for";
  // The pod goes away: its token is no longer accepted; the plugin's still is.
  server.setTokens({{podToken, "forbid"}});
  const k8s::Node node = k8s::getNode(kc, {"worker-1", "test", std::chrono::milliseconds(5000)});
  EXPECT_EQ(k8s::testing::podCidrTexts(node), (std::vector<std::string>{"10.244.1.0/24"}));
}

TEST_F(Installer, AFailedTokenRequestWritesNothing) {
  k8s::testing::TestApiServer server;
  const std::string podToken = jwt(now(), now() + 3600);
  writeAll(sa + "/token", podToken + "\n");
  writeAll(sa + "/ca.crt", readFile(k8s::testing::Pki::get().caCrt));
  server.setTokens({{podToken, "forbid"}});
  EXPECT_NE(
      runOnce({"--server", server.url(), "--token-service-account", "kube-system/dualstack-cni"}),
      0);
  EXPECT_THAT(err(), HasSubstr("serviceaccounts/token"));
  EXPECT_TRUE(filesUnder(host).empty()) << "nothing installed";
  EXPECT_NE(runOnce({"--token-service-account", "nobody"}), 0);
  EXPECT_THAT(err(), HasSubstr("NAMESPACE/NAME"));
  EXPECT_NE(
      runOnce({"--token-service-account", "kube-system/dualstack-cni", "--token-expiration", "5m"}),
      0);
  EXPECT_THAT(err(), HasSubstr("at least 10m"));
}

// parseOptions on the arguments after the program name.
Options parsed(std::vector<std::string> args) {
  std::vector<char*> argv{const_cast<char*>("dualstack-install")};
  for (auto& a : args) argv.push_back(a.data());
  bool help = false;
  return parseOptions(static_cast<int>(argv.size()), argv.data(), &help);
}

// Durations in Go's form, as the agent and ipam.node take them, or a bare number of seconds.
TEST(InstallerOptions, DurationsInGoFormOrSeconds) {
  using std::chrono::milliseconds;
  EXPECT_EQ(parsed({"--interval", "1m30s"}).interval, milliseconds(90000));
  EXPECT_EQ(parsed({"--interval", "500ms"}).interval, milliseconds(500));
  EXPECT_EQ(parsed({"--interval", "10"}).interval, milliseconds(10000));
  EXPECT_EQ(parsed({"--interval", "1.5"}).interval, milliseconds(1500));
  EXPECT_EQ(parsed({"--token-expiration", "2h"}).tokenExpiration, std::chrono::hours(2));
  for (const char* bad : {"0", "0s", "25h", "-1s", "soon", "1x", "[1]", ""}) {
    try {
      parsed({"--interval", bad});
      ADD_FAILURE() << "accepted --interval " << bad;
    } catch (const sys::Error& e) {
      EXPECT_EQ(e.code(), sys::Code::InvalidConfig);
      EXPECT_THAT(e.msg(), ::testing::HasSubstr("is not a duration such as 500ms")) << bad;
    }
  }
}

// A namespace is a DNS label, the account's name a DNS subdomain.
TEST(InstallerOptions, TokenServiceAccountNames) {
  EXPECT_EQ(
      parsed({"--token-service-account", "kube-system/dualstack-cni.plugin"}).tokenServiceAccount,
      "kube-system/dualstack-cni.plugin");
  for (const char* bad : {"nobody", "/sa", "ns/", "kube.system/sa", "ns/s/a", "NS/sa"}) {
    EXPECT_THROW(parsed({"--token-service-account", bad}), sys::Error) << bad;
  }
}

TEST_F(Installer, ReplacingABinaryNeverBreaksAConcurrentExec) {
  ASSERT_EQ(runOnce(), 0) << err();
  const std::string target = binDir + "/dualstack";
  // Two different programs that both answer --version (dualstack-ipam is dualstack's own file).
  const std::string a = readFile(dualstack::testing::binPath("dualstack"));
  const std::string b = readFile(dualstack::testing::binPath("dualstack-install"));
  ASSERT_NE(a, b);

  // The exec loop is another process, as a container runtime is: it must never inherit the
  // writer's file descriptors (a child forked while one is open would hold it until its exec).
  const std::string stopFile = tmp.file("stop"), result = tmp.file("result");
  Child loop(
      {"/bin/sh", "-c",
       "n=0; f=0; while [ ! -e " + stopFile + " ]; do " + target +
           " --version >/dev/null 2>&1 || f=$((f+1)); n=$((n+1)); done; echo $n $f >" + result},
      {"PATH=/usr/bin:/bin"}, tmp.file("loop.err"));
  ASSERT_TRUE(loop.started());
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  int replaced = 0;
  while (replaced < 40 || std::chrono::steady_clock::now() < deadline - 3s) {
    EXPECT_TRUE(replaceFile(binDir, "dualstack", replaced % 2 == 0 ? b : a, 0755));
    ++replaced;
  }
  writeAll(stopFile, "");
  ASSERT_EQ(loop.wait(10s), 0);
  int execs = 0, failures = -1;
  std::istringstream(readFile(result)) >> execs >> failures;
  EXPECT_EQ(failures, 0) << readFile(tmp.file("loop.err"));
  EXPECT_GE(execs, 20) << "the exec loop hardly ran; the test proves little";
  EXPECT_EQ(modeOf(target), 0755u);
  EXPECT_EQ(filesUnder(binDir), (std::vector<std::string>{"dualstack", "dualstack-ipam"}));
}

TEST_F(Installer, RewritesTheKubeconfigWhenTheTokenRotatesAndLeavesFilesOnSigterm) {
  ASSERT_NO_FATAL_FAILURE(startLoop({"--interval", "200ms"}));
  const std::string fresh = jwt(now(), now() + 7200, "rotated");
  rotate(sa + "/token", fresh);
  ASSERT_TRUE(kubeconfigCarries(fresh, 10s)) << err();
  EXPECT_EQ(modeOf(kubeconfig), 0600u);
  EXPECT_EQ(k8s::loadKubeconfig(kubeconfig).token, fresh);
  // (The log line follows the rename.)
  EXPECT_TRUE(logs("rewrote " + kubeconfig, 5s)) << err();

  EXPECT_EQ(stopLoop(), 0) << err();
  for (const auto& f : {binDir + "/dualstack", binDir + "/dualstack-ipam", kubeconfig, conflist}) {
    EXPECT_TRUE(fs::exists(f)) << f;
  }
  EXPECT_THAT(err(), HasSubstr("leaving the installed files in place"));
}

TEST_F(Installer, ReadsTheTokenAgainBeforeItExpires) {
  // The interval is long; only the token's own lifetime (3 s, re-read at 80%) brings the check
  // forward.
  writeAll(sa + "/token", jwt(now(), now() + 3));
  ASSERT_NO_FATAL_FAILURE(startLoop({"--interval", "10m"}));
  const std::string fresh = jwt(now(), now() + 3600, "next");
  rotate(sa + "/token", fresh);
  EXPECT_TRUE(kubeconfigCarries(fresh, 8s)) << err();
  EXPECT_EQ(stopLoop(), 0) << err();
}

TEST_F(Installer, UninstallOnExitRemovesWhatItInstalledOnly) {
  fs::create_directories(binDir);
  fs::create_directories(confDir);
  writeAll(binDir + "/loopback", "#!/bin/sh\n");
  writeAll(confDir + "/99-other.conflist", "{}");
  ASSERT_NO_FATAL_FAILURE(startLoop({"--uninstall-on-exit", "--interval", "1s"}));
  EXPECT_EQ(stopLoop(), 0) << err();
  EXPECT_EQ(filesUnder(host),
            (std::vector<std::string>{"etc/cni/net.d/99-other.conflist", "opt/cni/bin/loopback"}));
  EXPECT_THAT(err(), HasSubstr("removed " + conflist));
}

// With a DaemonSet's maxSurge, the next version's installer starts before this one stops: what
// it wrote in the meantime is not ours to remove. Nor is a file an operator replaced.
TEST_F(Installer, UninstallLeavesFilesReplacedSinceInPlace) {
  ASSERT_NO_FATAL_FAILURE(startLoop({"--uninstall-on-exit", "--interval", "10m"}));
  const std::string newer = R"({"name": "dualstack", "plugins": [{"type": "newer"}]})";
  rotate(conflist, newer);
  rotate(binDir + "/dualstack-ipam", "#!/bin/sh\necho newer\n");
  EXPECT_EQ(stopLoop(), 0) << err();
  EXPECT_EQ(filesUnder(host), (std::vector<std::string>{"etc/cni/net.d/10-dualstack.conflist",
                                                        "opt/cni/bin/dualstack-ipam"}));
  EXPECT_EQ(readFile(conflist), newer);
  EXPECT_EQ(readFile(binDir + "/dualstack-ipam"), "#!/bin/sh\necho newer\n");
  EXPECT_THAT(err(),
              HasSubstr("left " + conflist + " in place: it changed since it was installed"));
  EXPECT_THAT(err(), HasSubstr("removed " + kubeconfig));
  EXPECT_THAT(err(), HasSubstr("removed " + binDir + "/dualstack\n"));
}

// The kubeconfig it rewrote after a token rotation is still its own.
TEST_F(Installer, UninstallRemovesTheKubeconfigItRewrote) {
  ASSERT_NO_FATAL_FAILURE(startLoop({"--uninstall-on-exit", "--interval", "200ms"}));
  const std::string fresh = jwt(now(), now() + 7200, "rotated");
  rotate(sa + "/token", fresh);
  ASSERT_TRUE(kubeconfigCarries(fresh, 10s)) << err();
  ASSERT_TRUE(logs("rewrote " + kubeconfig, 5s)) << err();
  EXPECT_EQ(stopLoop(), 0) << err();
  EXPECT_EQ(filesUnder(host), std::vector<std::string>{}) << err();
}

TEST_F(Installer, BadInputChangesNothing) {
  // No token.
  fs::remove(sa + "/token");
  EXPECT_EQ(runOnce(), 1);
  EXPECT_THAT(err(),
              HasSubstr("read service account token " + sa + "/token: No such file or directory"));
  EXPECT_EQ(filesUnder(host), std::vector<std::string>{});
  writeAll(sa + "/token", "\n");
  EXPECT_EQ(runOnce(), 1);
  EXPECT_THAT(err(), HasSubstr("service account token " + sa + "/token is empty"));
  // A FIFO in place of the token: a plain open would wait for a writer forever.
  fs::remove(sa + "/token");
  ASSERT_EQ(::mkfifo((sa + "/token").c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(runOnce(), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_THAT(err(),
              HasSubstr("service account token " + sa + "/token is a FIFO, not a regular file"));
  EXPECT_EQ(filesUnder(host), std::vector<std::string>{});
  fs::remove(sa + "/token");
  writeAll(sa + "/token", jwt(now(), now() + 3600));

  // No node name.
  EXPECT_EQ(runOnce({}, ""), 1);
  EXPECT_THAT(err(), HasSubstr("no node name: set K8S_NODE_NAME"));
  EXPECT_EQ(runOnce({}, "Bad_Name"), 1);
  EXPECT_THAT(err(), HasSubstr("node name \"Bad_Name\" is not a valid Kubernetes node name"));

  // A CA that is not one.
  writeAll(sa + "/ca.crt", "garbage");
  EXPECT_EQ(runOnce(), 1);
  EXPECT_THAT(err(),
              HasSubstr("cluster CA certificate " + sa + "/ca.crt holds no PEM certificate"));
  writeAll(sa + "/ca.crt", ca);

  // A template without dualstack-ipam.
  writeAll(tmp.file("t.conflist"), R"({"name": "x", "plugins": [{"type": "bridge"}]})");
  EXPECT_EQ(runOnce({"--conflist-template", tmp.file("t.conflist")}), 1);
  EXPECT_THAT(err(),
              HasSubstr(tmp.file("t.conflist") + " has no plugin with ipam.type dualstack-ipam"));

  // A source directory without the binaries.
  EXPECT_EQ(runOnce({"--source-dir", tmp.path()}), 1);
  EXPECT_THAT(err(), HasSubstr("read plugin binary " + tmp.file("dualstack")));

  // Unknown options and bad durations.
  EXPECT_EQ(runOnce({"--frobnicate"}), 1);
  EXPECT_THAT(err(), HasSubstr("unknown argument \"--frobnicate\""));
  EXPECT_EQ(runOnce({"--interval", "soon"}), 1);
  EXPECT_THAT(err(), HasSubstr("--interval \"soon\" is not a duration"));
  EXPECT_EQ(filesUnder(host), std::vector<std::string>{});

  // Plain http would carry the token in cleartext.
  EXPECT_EQ(runOnce({"--server", "http://192.0.2.1:8080"}), 1);
  EXPECT_THAT(err(), HasSubstr("API server \"http://192.0.2.1:8080\" must be an https:// URL"));
  // A template nested past the limit.
  writeAll(tmp.file("deep.conflist"), R"({"plugins": [{"ipam": {"type": "dualstack-ipam", "x": )" +
                                          dualstack::testing::nestedJson(100000) + "}}]}");
  EXPECT_EQ(runOnce({"--conflist-template", tmp.file("deep.conflist")}), 1);
  EXPECT_THAT(err(), HasSubstr(tmp.file("deep.conflist") + " is nested deeper than 128 levels"));
  EXPECT_EQ(filesUnder(host), std::vector<std::string>{});

  // A conf dir that cannot be created: nothing is installed, not even the binaries.
  fs::create_directories(host + "/etc/cni");
  writeAll(host + "/etc/cni/net.d", "a file where the directory should be");
  EXPECT_EQ(runOnce(), 1);
  EXPECT_THAT(err(), HasSubstr(host + "/etc/cni/net.d"));
  EXPECT_FALSE(fs::exists(binDir + "/dualstack"));
  EXPECT_FALSE(fs::exists(binDir + "/dualstack-ipam"));
}

// A token whose exp is not a time still installs (the API server judges the token); the installer
// says that it cannot schedule by it.
TEST_F(Installer, TokenWithExpiryOutOfRangeIsReportedNotConverted) {
  writeAll(sa + "/token", base64Url(R"({"alg":"RS256"})") + "." +
                              base64Url(R"({"iat":1700000000,"exp":1e300})") + ".c2ln\n");
  ASSERT_EQ(runOnce(), 0) << err();
  EXPECT_THAT(err(), HasSubstr("warning: service account token " + sa +
                               "/token: its exp claim 1e+300 is not a time"));
  EXPECT_TRUE(fs::exists(kubeconfig));
}

TEST_F(Installer, HelpAndVersion) {
  std::string out;
  EXPECT_EQ(
      dualstack::testing::shell(dualstack::testing::binPath("dualstack-install") + " --help", &out),
      0);
  EXPECT_THAT(out, HasSubstr("--uninstall-on-exit"));
  EXPECT_EQ(dualstack::testing::shell(
                dualstack::testing::binPath("dualstack-install") + " --version", &out),
            0);
  EXPECT_THAT(out, HasSubstr("dualstack-install "));
}

}  // namespace
}  // namespace dualstack::install
