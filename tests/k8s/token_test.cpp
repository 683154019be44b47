// requestToken() against the test API server, inClusterConfig(), and RFC 3339 times.
#include "dualstack/k8s/token.hpp"

#include <gtest/gtest.h>

#include <ctime>
#include <thread>

#include "apiserver.hpp"
#include "dualstack/k8s/api.hpp"
#include "dualstack/sys/env.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::k8s {
namespace {

using namespace testing;

constexpr const char* kAdmin = "token-admin-secret";

class TokenRequest : public ::testing::Test {
 protected:
  TokenRequest() : server(testing::ApiServerOptions{1.0, 1}) {
    server.setTokens({{kAdmin, "allow"}, {"no-rights", "forbid"}});
    server.setNode(nodeObject("worker-1", {"10.244.1.0/24"}, {{"InternalIP", "192.168.10.5"}}));
  }
  Kubeconfig kubeconfig(const std::string& token) const {
    KubeconfigSpec s;
    s.server = server.url();
    s.caFile = Pki::get().caCrt;
    s.token = token;
    const std::string path = tmp.file("kubeconfig-" + std::to_string(counter++));
    testing::writeText(path, testing::kubeconfigYaml(s));
    return loadKubeconfig(path);
  }
  Error failure(const std::function<void()>& f) const {
    try {
      f();
    } catch (const Error& e) {
      EXPECT_EQ(e.msg().find(kAdmin), std::string::npos) << e.msg();
      return e;
    }
    ADD_FAILURE() << "no error";
    return Error(Code::Internal, "");
  }

  TestApiServer server;
  dualstack::testing::TempDir tmp;
  mutable int counter = 0;
};

TEST_F(TokenRequest, IssuedTokenWorksUntilItExpires) {
  const auto now = std::time(nullptr);
  const TokenResult t =
      requestToken(kubeconfig(kAdmin), "kube-system", "dualstack-cni", std::chrono::seconds(3));
  EXPECT_FALSE(t.token.empty());
  EXPECT_NE(t.token, kAdmin);
  EXPECT_GE(t.expiresUnix, now + 2);
  EXPECT_LE(t.expiresUnix, now + 5);
  const auto posts = server.requestLog();
  EXPECT_EQ(posts.back(),
            "/api/v1/namespaces/kube-system/serviceaccounts/dualstack-cni/token 201 token");

  // The new token reads the node...
  const NodeRequest get{"worker-1", "test", std::chrono::milliseconds(5000)};
  EXPECT_EQ(getNode(kubeconfig(t.token), get).podCIDRs.size(), 1U);
  // ...and once expired, it is refused.
  while (std::time(nullptr) <= t.expiresUnix) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const Error e = failure([&] { getNode(kubeconfig(t.token), get); });
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_NE(e.msg().find("401 Unauthorized"), std::string::npos) << e.msg();
}

TEST_F(TokenRequest, TheServersLimitsAndRefusals) {
  server.set("min-token-expiration", "600");
  Error e = failure([&] {
    requestToken(kubeconfig(kAdmin), "kube-system", "dualstack-cni", std::chrono::seconds(60));
  });
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_NE(e.msg().find("refused a token request for service account kube-system/dualstack-cni"),
            std::string::npos)
      << e.msg();
  EXPECT_NE(e.msg().find("may not specify a duration less than 600 seconds"), std::string::npos)
      << e.msg();

  e = failure([&] {
    requestToken(kubeconfig("no-rights"), "kube-system", "dualstack-cni",
                 std::chrono::seconds(3600));
  });
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_NE(e.msg().find("403 Forbidden"), std::string::npos) << e.msg();
  EXPECT_NE(e.msg().find("`create` on `serviceaccounts/token` for kube-system/dualstack-cni"),
            std::string::npos)
      << e.msg();

  e = failure([&] {
    requestToken(kubeconfig("unknown"), "kube-system", "dualstack-cni", std::chrono::seconds(3600));
  });
  EXPECT_NE(e.msg().find("401 Unauthorized"), std::string::npos) << e.msg();

  server.fail(503, 30);
  EXPECT_THROW(
      requestToken(kubeconfig(kAdmin), "kube-system", "dualstack-cni", std::chrono::seconds(3600)),
      ApiUnavailable);
  server.fail(0, 0);

  const int before = server.requests();
  e = failure(
      [&] { requestToken(kubeconfig(kAdmin), "Kube_System", "x", std::chrono::seconds(3600)); });
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  e = failure([&] {
    requestToken(kubeconfig(kAdmin), "kube-system", "../nodes", std::chrono::seconds(3600));
  });
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_EQ(server.requests(), before);  // refused before asking
}

TEST_F(TokenRequest, IssuedTokensSurviveARestartOfTheServer) {
  const TokenResult t =
      requestToken(kubeconfig(kAdmin), "kube-system", "dualstack-cni", std::chrono::seconds(600));
  server.restart();
  EXPECT_EQ(
      getNode(kubeconfig(t.token), {"worker-1", "test", std::chrono::milliseconds(5000)}).name,
      "worker-1");
}

TEST(Rfc3339, Times) {
  EXPECT_EQ(parseRfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parseRfc3339("2024-05-01T10:00:00Z"), 1714557600);
  EXPECT_EQ(parseRfc3339("2024-05-01T10:00:00.123456Z"), 1714557600);
  EXPECT_EQ(parseRfc3339("2024-05-01T12:00:00+02:00"), 1714557600);
  EXPECT_EQ(parseRfc3339("2024-05-01T09:30:00-00:30"), 1714557600);
  for (const char* bad :
       {"", "2024-05-01", "2024-05-01T10:00:00", "2024-13-01T10:00:00Z", "2024-05-01T10:00:00Zjunk",
        "2024-05-01 10:00:00Z", "2024-05-01T10:00:00.Z", "2024-05-01T10:00:00+0200"}) {
    EXPECT_EQ(parseRfc3339(bad), -1) << bad;
  }
}

class InClusterConfig : public ::testing::Test {
 protected:
  InClusterConfig() {
    testing::writeText(dir.file("token"), "service-account-token\n");
    testing::writeText(dir.file("ca.crt"), dualstack::testing::readFile(Pki::get().caCrt));
  }
  sys::EnvLookup env(std::string host, std::string port) const {
    return [host, port](const char* name) -> std::optional<std::string> {
      if (std::string(name) == "KUBERNETES_SERVICE_HOST" && !host.empty()) return host;
      if (std::string(name) == "KUBERNETES_SERVICE_PORT" && !port.empty()) return port;
      return std::nullopt;
    };
  }
  dualstack::testing::TempDir dir;
};

TEST_F(InClusterConfig, FromTheServiceAccountMount) {
  const Kubeconfig kc = inClusterConfig(env("10.96.0.1", "443"), dir.path());
  EXPECT_EQ(kc.server, "https://10.96.0.1:443");
  EXPECT_EQ(kc.caFile, dir.file("ca.crt"));
  EXPECT_EQ(kc.tokenFile, dir.file("token"));
  EXPECT_EQ(bearerToken(kc), "service-account-token");
  // kubelet rotates the token in place: the next request sends the new one.
  testing::writeText(dir.file("token"), "rotated-token\n");
  EXPECT_EQ(bearerToken(kc), "rotated-token");

  EXPECT_EQ(inClusterConfig(env("fd00:10:96::1", "6443"), dir.path()).server,
            "https://[fd00:10:96::1]:6443");
}

TEST_F(InClusterConfig, ReadsFromTheAPIServer) {
  TestApiServer server;
  server.setTokens({{"service-account-token", "allow"}});
  server.setNode(nodeObject("worker-1", {"10.244.1.0/24"}, {{"InternalIP", "192.168.10.5"}}));
  const Kubeconfig kc =
      inClusterConfig(env("127.0.0.1", std::to_string(server.port())), dir.path());
  EXPECT_EQ(getNode(kc, {"worker-1", "test", std::chrono::milliseconds(5000)}).name, "worker-1");
}

TEST_F(InClusterConfig, OutsideAPodOrWithoutTheMount) {
  auto code = [&](const sys::EnvLookup& e, const std::string& d) {
    try {
      inClusterConfig(e, d);
    } catch (const Error& err) {
      return std::make_pair(err.code(), err.msg());
    }
    return std::make_pair(Code::Internal, std::string("accepted"));
  };
  auto [c, msg] = code(env("", "443"), dir.path());
  EXPECT_EQ(c, Code::InvalidConfig);
  EXPECT_NE(msg.find("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"),
            std::string::npos)
      << msg;
  EXPECT_EQ(code(env("10.96.0.1", ""), dir.path()).first, Code::InvalidConfig);
  EXPECT_EQ(code(env("10.96.0.1", "http"), dir.path()).first, Code::InvalidConfig);
  EXPECT_EQ(code(env("10.96.0.1", "70000"), dir.path()).first, Code::InvalidConfig);
  EXPECT_EQ(code(env("evil/path", "443"), dir.path()).first, Code::InvalidConfig);
  std::tie(c, msg) = code(env("10.96.0.1", "443"), dir.file("missing"));
  EXPECT_EQ(c, Code::IoFailure);
  EXPECT_NE(msg.find(dir.file("missing") + "/token"), std::string::npos) << msg;
  ::unlink(dir.file("ca.crt").c_str());
  std::tie(c, msg) = code(env("10.96.0.1", "443"), dir.path());
  EXPECT_EQ(c, Code::IoFailure);
  EXPECT_NE(msg.find("ca.crt"), std::string::npos) << msg;
}

}  // namespace
}  // namespace dualstack::k8s
