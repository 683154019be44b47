// The plugin's kubeconfig kept with TokenRequest tokens: written atomically with mode 0600, with
// the agent's server and CA, renewed at 80% of the lifetime, failures counted and retried.
#include "dualstack/agent/token.hpp"

#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ctime>
#include <thread>

#include "agent/fakes.hpp"
#include "dualstack/k8s/kubeconfig.hpp"
#include "dualstack/sys/error.hpp"
#include "support/support.hpp"

namespace dualstack::agent {
namespace {

using agenttest::LogCapture;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr const char* kCa = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";

class TokenTest : public ::testing::Test {
 protected:
  k8s::Kubeconfig agentConfig() {
    k8s::Kubeconfig kc;
    kc.server = "https://10.96.0.1:443";
    kc.caData = kCa;
    kc.tokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token";
    return kc;
  }
  TokenKeeper keeper(TokenKeeper::Request request) {
    TokenKeeperConfig c;
    c.file = dir.file("dualstack-cni.kubeconfig");
    c.serviceAccount = "kube-system/dualstack-cni";
    c.expiration = 1h;
    c.retryInitial = 10ms;
    c.retryMax = 40ms;
    return TokenKeeper(
        c, std::move(request), [this] { return agentConfig(); }, logs.log());
  }

  dualstack::testing::TempDir dir;
  LogCapture logs;
};

TEST_F(TokenTest, WritesAKubeconfigThePluginCanReadWithMode0600) {
  std::chrono::seconds asked{0};
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  auto k = keeper([&](std::chrono::seconds exp) {
    asked = exp;
    return IssuedToken{"header.payload.sig", now + 3600};
  });
  ASSERT_TRUE(k.renew());
  EXPECT_EQ(asked, 1h);
  const std::string path = dir.file("dualstack-cni.kubeconfig");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  const k8s::Kubeconfig kc = k8s::loadKubeconfig(path);
  EXPECT_EQ(kc.server, "https://10.96.0.1:443");
  EXPECT_EQ(kc.caData, kCa);
  EXPECT_EQ(kc.token, "header.payload.sig");
  EXPECT_THAT(dualstack::testing::readFile(path), HasSubstr("# Written by dualstack-agent"));
  const TokenState s = k.state();
  EXPECT_EQ(s.expiresUnix, now + 3600);
  EXPECT_EQ(s.renewals, 1u);
  // Nothing else is left in the directory (no temp file).
  EXPECT_EQ(dualstack::testing::snapshotTree(dir.path()).size(), 1u);
}

TEST_F(TokenTest, AFailureKeepsTheOldFileAndIsCounted) {
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  bool fail = false;
  auto k = keeper([&](std::chrono::seconds) {
    if (fail) throw sys::Error(sys::Code::TryAgainLater, "cannot reach the API server (test)");
    return IssuedToken{"first.token.x", now + 3600};
  });
  ASSERT_TRUE(k.renew());
  const std::string before = dualstack::testing::readFile(dir.file("dualstack-cni.kubeconfig"));
  fail = true;
  EXPECT_FALSE(k.renew());
  EXPECT_EQ(dualstack::testing::readFile(dir.file("dualstack-cni.kubeconfig")), before);
  EXPECT_EQ(k.state().failures, 1u);
  EXPECT_THAT(k.state().lastError, HasSubstr("cannot reach the API server"));
  EXPECT_EQ(logs.count("cannot renew the plugin's token"), 1u);
}

TEST_F(TokenTest, RenewalIsDueAt80PercentOfTheLifetime) {
  EXPECT_EQ(TokenKeeper::renewAfter(1000, 1000 + 86400), std::chrono::seconds(69120));
  EXPECT_EQ(TokenKeeper::renewAfter(1000, 1000 + 600), std::chrono::seconds(480));
  EXPECT_EQ(TokenKeeper::renewAfter(1000, 999), std::chrono::seconds(10)) << "never a busy loop";
}

TEST_F(TokenTest, RunRetriesWithBackoffUntilItWorks) {
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  std::atomic<int> calls{0};
  auto k = keeper([&](std::chrono::seconds) {
    if (++calls < 4) throw sys::Error(sys::Code::TryAgainLater, "down (test)");
    return IssuedToken{"late.token.x", now + 3600};
  });
  std::jthread t([&](std::stop_token st) { k.run(st); });
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (k.state().renewals == 0 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(k.state().renewals, 1u);
  EXPECT_EQ(k.state().failures, 3u);
  EXPECT_TRUE(k.state().lastError.empty());
  const auto t0 = std::chrono::steady_clock::now();
  t.request_stop();
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "waiting 48 minutes, yet stops at once";
  EXPECT_EQ(calls.load(), 4);
}

TEST_F(TokenTest, AnAgentKubeconfigWithoutACaIsRefused) {
  TokenKeeperConfig c;
  c.file = dir.file("k");
  bool asked = false;
  TokenKeeper k(
      c,
      [&](std::chrono::seconds) {
        asked = true;
        return IssuedToken{"t.t.t", 1};
      },
      [] { return k8s::Kubeconfig{}; }, logs.log());
  EXPECT_FALSE(k.renew());
  EXPECT_FALSE(asked) << "no token is requested that could not be used";
  EXPECT_THAT(k.state().lastError, HasSubstr("no cluster CA"));
}

}  // namespace
}  // namespace dualstack::agent
