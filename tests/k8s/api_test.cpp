// getNode() against the test API server, over real TLS.
#include "dualstack/k8s/api.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "apiserver.hpp"
#include "dualstack/k8s/http.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::k8s {
namespace {

using namespace testing;

constexpr const char* kToken = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu.c2lnbmF0dXJl";

class Api : public ::testing::Test {
 protected:
  void SetUp() override {
    server.setTokens({{kToken, "allow"}});
    server.setNode(
        nodeObject("worker-1", {"10.244.1.0/24", "fd00:10:244:1::/64"},
                   {{"InternalIP", "192.168.10.5"}, {"InternalIP", "fd00:192:168:10::5"}}));
  }

  Kubeconfig kubeconfig(KubeconfigSpec spec) const {
    if (spec.server.empty()) spec.server = server.url();
    const std::string path = tmp.file("kubeconfig");
    testing::writeText(path, testing::kubeconfigYaml(spec));
    return loadKubeconfig(path);
  }
  KubeconfigSpec withToken() const {
    KubeconfigSpec s;
    s.caFile = Pki::get().caCrt;
    s.token = kToken;
    return s;
  }
  static NodeRequest request(const std::string& name = "worker-1") {
    return {name, "ipam.node.name", std::chrono::milliseconds(5000)};
  }

  // The error getNode throws; checks the token is not in it.
  Error failure(const Kubeconfig& kc, const NodeRequest& r = request()) const {
    try {
      getNode(kc, r);
    } catch (const Error& e) {
      EXPECT_EQ(e.msg().find(kToken), std::string::npos) << e.msg();
      return e;
    }
    ADD_FAILURE() << "getNode succeeded";
    return Error(Code::Internal, "");
  }

  dualstack::testing::TempDir tmp;
  TestApiServer server;
};

TEST_F(Api, ReadsTheNodeWithATokenAndTheClusterCa) {
  const Node n = getNode(kubeconfig(withToken()), request());
  EXPECT_EQ(n.name, "worker-1");
  EXPECT_EQ(testing::podCidrTexts(n),
            (std::vector<std::string>{"10.244.1.0/24", "fd00:10:244:1::/64"}));
  // The Hostname (the node's name, no IP address) is not part of the model.
  ASSERT_EQ(n.addresses.size(), 2U);
  EXPECT_EQ(n.addresses[0].type, "InternalIP");
  EXPECT_EQ(n.addresses[0].address.str(), "192.168.10.5");
  EXPECT_EQ(n.addresses[1].address.str(), "fd00:192:168:10::5");
  EXPECT_TRUE(n.unusable.empty());
  EXPECT_EQ(server.requests(), 1);
}

TEST_F(Api, CaDataWorksLikeCaFile) {
  KubeconfigSpec s = withToken();
  s.caFile.clear();
  s.caData = dualstack::testing::readFile(Pki::get().caCrt);
  EXPECT_EQ(getNode(kubeconfig(s), request()).podCIDRs.size(), 2U);
}

TEST_F(Api, ClientCertificateAuthenticates) {
  server.setClient("system:node:worker-1", "allow");
  KubeconfigSpec s;
  s.caFile = Pki::get().caCrt;
  s.certFile = Pki::get().clientCrt;
  s.keyFile = Pki::get().clientKey;
  EXPECT_EQ(getNode(kubeconfig(s), request()).podCIDRs.size(), 2U);

  server.setClient("system:node:worker-1", "forbid");
  const Error e = failure(kubeconfig(s));
  EXPECT_NE(e.msg().find("client certificate " + Pki::get().clientCrt), std::string::npos)
      << e.msg();
}

TEST_F(Api, CertificateAndKeyInOneFileLikeKubeletConf) {
  server.setClient("system:node:worker-1", "allow");
  KubeconfigSpec s;
  s.caFile = Pki::get().caCrt;
  s.certFile = Pki::get().clientPem;
  s.keyFile = Pki::get().clientPem;
  EXPECT_EQ(getNode(kubeconfig(s), request()).podCIDRs.size(), 2U);
}

TEST_F(Api, TokenFileIsReadAgainForEachRequest) {
  KubeconfigSpec s = withToken();
  s.token.clear();
  s.tokenFile = tmp.file("token");
  testing::writeText(s.tokenFile, std::string(kToken) + "\n");
  const Kubeconfig kc = kubeconfig(s);
  EXPECT_NO_THROW(getNode(kc, request()));

  // Rotation: the server accepts only the new token, the file holds it.
  server.setTokens({{"rotated-token-2", "allow"}});
  testing::writeText(s.tokenFile, "rotated-token-2\n");
  EXPECT_NO_THROW(getNode(kc, request()));
}

TEST_F(Api, WrongTokenIs401NamingTheCredential) {
  KubeconfigSpec s = withToken();
  s.tokenFile = tmp.file("token");
  s.token.clear();
  testing::writeText(s.tokenFile, "not-the-token");
  const Error e = failure(kubeconfig(s));
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_NE(e.msg().find("401 Unauthorized"), std::string::npos) << e.msg();
  EXPECT_NE(e.msg().find("token file " + s.tokenFile), std::string::npos) << e.msg();
  EXPECT_NE(e.msg().find("needs `get` on `nodes`"), std::string::npos) << e.msg();
  EXPECT_NE(e.msg().find(server.url()), std::string::npos) << e.msg();
  EXPECT_EQ(e.msg().find("not-the-token"), std::string::npos) << e.msg();
}

TEST_F(Api, ForbiddenIs403SayingWhatIsNeeded) {
  server.setTokens({{kToken, "forbid"}});
  const Error e = failure(kubeconfig(withToken()));
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_NE(e.msg().find("403 Forbidden"), std::string::npos) << e.msg();
  EXPECT_NE(e.msg().find("token of kubeconfig user \"dualstack-cni\""), std::string::npos)
      << e.msg();
  EXPECT_NE(e.msg().find(TestApiServer::kUser), std::string::npos) << e.msg();
  EXPECT_NE(e.msg().find("needs `get` on `nodes`"), std::string::npos) << e.msg();
}

TEST_F(Api, UnknownNodeIs404) {
  const Error e = failure(kubeconfig(withToken()), request("worker-9"));
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_NE(e.msg().find("node \"worker-9\" not found at " + server.url()), std::string::npos)
      << e.msg();
  EXPECT_NE(e.msg().find("is K8S_NODE_NAME / node.name right?"), std::string::npos) << e.msg();
  EXPECT_NE(e.msg().find("the name came from ipam.node.name"), std::string::npos) << e.msg();
}

TEST_F(Api, DeeplyNestedAnswerIsDecodeFailure) {
  const std::string deep = R"({"kind": "Node", "metadata": {"name": "worker-1", "x": )" +
                           dualstack::testing::nestedJson(100000, true) + "}}";
  server.setNodeText("worker-1", deep);
  const Error e = failure(kubeconfig(withToken()));
  EXPECT_EQ(e.code(), Code::DecodeFailure);
  EXPECT_NE(e.msg().find("answered GET " + server.url() +
                         "/api/v1/nodes/worker-1, but the "
                         "answer is nested deeper than 128 levels"),
            std::string::npos)
      << e.msg().substr(0, 400);
  server.setNodeText("worker-1", "<html>oops</html>");
  EXPECT_NE(failure(kubeconfig(withToken())).msg().find("not valid JSON"), std::string::npos);
}

TEST_F(Api, WrongCaFailsSayingTls) {
  KubeconfigSpec s = withToken();
  s.caFile = Pki::get().otherCaCrt;
  const Error e = failure(kubeconfig(s));
  EXPECT_EQ(e.code(), Code::IoFailure);
  EXPECT_NE(e.msg().find("TLS with the Kubernetes API server " + server.url() + " failed"),
            std::string::npos)
      << e.msg();
  EXPECT_NE(e.msg().find("certificate"), std::string::npos) << e.msg();
  EXPECT_NE(e.msg().find("check certificate-authority(-data) of cluster \"test\""),
            std::string::npos)
      << e.msg();
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(Api, NoCaMeansTheSystemCasWhichDoNotKnowOurs) {
  KubeconfigSpec s = withToken();
  s.caFile.clear();
  EXPECT_NE(failure(kubeconfig(s)).msg().find("TLS"), std::string::npos);
}

TEST_F(Api, InsecureSkipTlsVerifyAcceptsAnyCertificate) {
  KubeconfigSpec s = withToken();
  s.caFile.clear();
  s.insecure = true;
  EXPECT_NO_THROW(getNode(kubeconfig(s), request()));
}

TEST_F(Api, MissingCaFileIsNamed) {
  KubeconfigSpec s = withToken();
  s.caFile = tmp.file("missing-ca.crt");
  const Error e = failure(kubeconfig(s));
  EXPECT_NE(e.msg().find("read certificate-authority " + s.caFile), std::string::npos) << e.msg();
}

TEST_F(Api, ServerDownIsApiUnavailableNamingTheServer) {
  server.stop();
  const Kubeconfig kc = kubeconfig(withToken());
  try {
    getNode(kc, request());
    FAIL();
  } catch (const ApiUnavailable& e) {
    EXPECT_EQ(e.code(), Code::TryAgainLater);
    EXPECT_NE(e.msg().find("cannot reach the Kubernetes API server " + server.url()),
              std::string::npos)
        << e.msg();
  }
}

TEST_F(Api, OverloadedServerIsApiUnavailable) {
  server.forceStatus(503);
  EXPECT_THROW(getNode(kubeconfig(withToken()), request()), ApiUnavailable);
}

TEST_F(Api, SilentServerTimesOut) {
  testing::SilentListener silent;
  KubeconfigSpec s = withToken();
  s.server = silent.url();
  const Kubeconfig kc = kubeconfig(s);
  const auto start = std::chrono::steady_clock::now();
  try {
    getNode(kc, {"worker-1", "x", std::chrono::milliseconds(300)});
    FAIL();
  } catch (const ApiUnavailable& e) {
    EXPECT_NE(e.msg().find("imed out"), std::string::npos) << e.msg();
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(250));
  // Far below a hang, with room for a loaded machine.
  EXPECT_LT(took, std::chrono::milliseconds(5000));
}

}  // namespace
}  // namespace dualstack::k8s
