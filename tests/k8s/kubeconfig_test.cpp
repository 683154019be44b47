#include "dualstack/k8s/kubeconfig.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apiserver.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::k8s {
namespace {

using sys::Code;
using sys::Error;
using testing::base64;
using testing::writeText;

const char* kFull = R"(apiVersion: v1
kind: Config
current-context: cni
contexts:
- name: admin
  context: {cluster: prod, user: admin}
- name: cni
  context:
    cluster: prod
    user: cni
    namespace: kube-system
clusters:
- name: prod
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority: pki/ca.crt
users:
- name: admin
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
- name: cni
  user:
    tokenFile: secrets/token
    client-certificate: /abs/client.crt
    client-key: client.key
)";

TEST(Kubeconfig, FollowsCurrentContextAndResolvesPathsAgainstItsDirectory) {
  const Kubeconfig kc = parseKubeconfig(kFull, "/etc/cni/net.d/dualstack.kubeconfig");
  EXPECT_EQ(kc.contextName, "cni");
  EXPECT_EQ(kc.clusterName, "prod");
  EXPECT_EQ(kc.userName, "cni");
  EXPECT_EQ(kc.server, "https://10.0.0.1:6443");
  EXPECT_EQ(kc.caFile, "/etc/cni/net.d/pki/ca.crt");
  EXPECT_EQ(kc.tokenFile, "/etc/cni/net.d/secrets/token");
  EXPECT_EQ(kc.clientCertFile, "/abs/client.crt");
  EXPECT_EQ(kc.clientKeyFile, "/etc/cni/net.d/client.key");
  EXPECT_FALSE(kc.insecureSkipTlsVerify);
}

TEST(Kubeconfig, DecodesDataFields) {
  std::string text = kFull;
  text.replace(text.find("current-context: cni"), 20, "current-context: admin");
  text.replace(text.find("    certificate-authority: pki/ca.crt"), 37,
               "    certificate-authority-data: " + base64("-----BEGIN CERTIFICATE-----\nX\n"));
  const Kubeconfig kc = parseKubeconfig(text, "/k");
  EXPECT_EQ(kc.userName, "admin");
  EXPECT_EQ(kc.caData, "-----BEGIN CERTIFICATE-----\nX\n");
  EXPECT_EQ(kc.caFile, "");
  EXPECT_EQ(kc.clientCertData, "cert");
  EXPECT_EQ(kc.clientKeyData, "key");
  EXPECT_EQ(kc.credentialDescription(),
            "client certificate client-certificate-data of kubeconfig user \"admin\" in /k");
}

TEST(Kubeconfig, ReadsJsonWithTabs) {
  const char* json =
      "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Config\",\n"
      "\t\"clusters\": [{\"name\": \"c\", \"cluster\": {\"server\": \"https://h:6443\", "
      "\"insecure-skip-tls-verify\": true}}],\n"
      "\t\"contexts\": [{\"name\": \"x\", \"context\": {\"cluster\": \"c\", \"user\": \"u\"}}],\n"
      "\t\"users\": [{\"name\": \"u\", \"user\": {\"token\": \"abc.def\"}}],\n"
      "\t\"current-context\": \"x\"\n}\n";
  const Kubeconfig kc = parseKubeconfig(json, "/etc/k.json");
  EXPECT_EQ(kc.server, "https://h:6443");
  EXPECT_TRUE(kc.insecureSkipTlsVerify);
  EXPECT_EQ(kc.token, "abc.def");
  EXPECT_EQ(bearerToken(kc), "abc.def");
  EXPECT_EQ(kc.credentialDescription(), "token of kubeconfig user \"u\" in /etc/k.json");
}

TEST(Kubeconfig, ContextWithoutUserIsAnonymous) {
  const Kubeconfig kc = parseKubeconfig(
      "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
      "clusters: [{name: c, cluster: {server: 'https://h'}}]\n",
      "/k");
  EXPECT_EQ(bearerToken(kc), "");
  EXPECT_NE(kc.credentialDescription().find("anonymous"), std::string::npos);
}

struct BadCase {
  const char* name;
  std::string text;
  const char* message;
};

class KubeconfigBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(KubeconfigBad, IsRejectedNamingTheProblem) {
  try {
    parseKubeconfig(GetParam().text, "/etc/k");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::InvalidConfig);
    EXPECT_NE(e.msg().find(GetParam().message), std::string::npos) << e.msg();
    EXPECT_EQ(e.msg().rfind("kubeconfig /etc/k: ", 0), 0U) << e.msg();
    EXPECT_EQ(e.msg().find("s3cret"), std::string::npos) << e.msg();
  }
}

std::string nested(const std::string& open, const std::string& inner, const std::string& close,
                   std::size_t depth) {
  std::string t;
  for (std::size_t i = 0; i < depth; ++i) t += open;
  t += inner;
  for (std::size_t i = 0; i < depth; ++i) t += close;
  return t;
}

// "a:\n b:\n  a:\n ..." one level per line, each indented one more space.
std::string indentedMaps(std::size_t depth) {
  std::string t;
  for (std::size_t i = 0; i < depth; ++i) t += std::string(i, ' ') + "a:\n";
  return t + std::string(depth, ' ') + "x\n";
}

const std::string kBase =
    "contexts: [{name: a, context: {cluster: c, user: u}}]\n"
    "clusters: [{name: c, cluster: {server: 'https://h'}}]\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, KubeconfigBad,
    ::testing::Values(
        BadCase{"NotYaml", "clusters: [\n", "not valid YAML or JSON"},
        BadCase{"NotAMap", "- a\n- b\n", "expected a map"},
        BadCase{"NoCurrentContext", kBase, "current-context is not set"},
        BadCase{"UnknownContext", "current-context: b\n" + kBase,
                "context \"b\" is not in contexts"},
        BadCase{"UnknownUser", "current-context: a\n" + kBase, "user \"u\" is not in users"},
        BadCase{"UnknownCluster",
                "current-context: a\ncontexts: [{name: a, context: {cluster: z}}]\n"
                "clusters: [{name: c, cluster: {server: 'https://h'}}]\n",
                "cluster \"z\" is not in clusters"},
        BadCase{"NoServer",
                "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
                "clusters: [{name: c, cluster: {}}]\n",
                "clusters[0].cluster.server: missing is not an https:// URL"},
        BadCase{"BadServer",
                "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
                "clusters: [{name: c, cluster: {server: 'ftp://h'}}]\n",
                "\"ftp://h\" is not an https:// URL"},
        // The bearer token would cross the network in cleartext.
        BadCase{"PlainHttpServer",
                "current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
                "clusters: [{name: c, cluster: {server: 'http://10.0.0.1:8080'}}]\n"
                "users: [{name: u, user: {token: s3cret}}]\n",
                "clusters[0].cluster.server: \"http://10.0.0.1:8080\" is not an https:// URL"},
        BadCase{"PlainHttpServerUpperCase",
                "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
                "clusters: [{name: c, cluster: {server: 'HTTP://h'}}]\n",
                "\"HTTP://h\" is not an https:// URL"},
        // yaml-cpp parses recursively; it stops itself at about 500 levels, flow or block.
        BadCase{"DeepFlowSequence", "current-context: " + nested("[", "a", "]", 100000) + "\n",
                "nested too deeply"},
        BadCase{"DeepFlowMap", "current-context: " + nested("{a: ", "a", "}", 100000) + "\n",
                "nested too deeply"},
        BadCase{"DeepJson", "{\"clusters\": " + nested("[", "0", "]", 100000) + "}",
                "nested too deeply"},
        BadCase{"DeepBlockSequence", "clusters:\n" + nested("- ", "a", "", 100000) + "\n",
                "nested too deeply"},
        BadCase{"DeepBlockMap", indentedMaps(600), "nested too deeply"},
        BadCase{"InsecureWithCa",
                "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
                "clusters: [{name: c, cluster: {server: 'https://h', certificate-authority: ca, "
                "insecure-skip-tls-verify: true}}]\n",
                "exclude each other"},
        BadCase{"BadBool",
                "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
                "clusters: [{name: c, cluster: {server: 'https://h', "
                "insecure-skip-tls-verify: maybe}}]\n",
                "insecure-skip-tls-verify: expected true or false"},
        BadCase{"BadBase64",
                "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
                "clusters: [{name: c, cluster: {server: 'https://h', "
                "certificate-authority-data: '!!!'}}]\n",
                "certificate-authority-data: not valid base64"},
        // Bytes >= 0x80 once crashed the decoder; a missing '=' or data after it is invalid too.
        BadCase{"Base64HighBytes",
                "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
                "clusters: [{name: c, cluster: {server: 'https://h', "
                "certificate-authority-data: \"QUJD\u00e9\u00e9==\"}}]\n",
                "certificate-authority-data: not valid base64"},
        BadCase{"Base64MissingPadding",
                "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
                "clusters: [{name: c, cluster: {server: 'https://h', "
                "certificate-authority-data: 'QUI'}}]\n",
                "certificate-authority-data: not valid base64"},
        BadCase{"Base64DataAfterPadding",
                "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
                "clusters: [{name: c, cluster: {server: 'https://h', "
                "certificate-authority-data: 'QUI=QUJD'}}]\n",
                "certificate-authority-data: not valid base64"},
        BadCase{"Exec",
                "current-context: a\n" + kBase +
                    "users: [{name: u, user: {exec: {command: aws, apiVersion: x}}}]\n",
                "users[0].user.exec is not supported"},
        BadCase{"Password",
                "current-context: a\n" + kBase +
                    "users: [{name: u, user: {username: admin, password: s3cret}}]\n",
                "users[0].user.username is not supported"},
        BadCase{
            "CertWithoutKey",
            "current-context: a\n" + kBase + "users: [{name: u, user: {client-certificate: c}}]\n",
            "client-certificate without client-key"},
        BadCase{
            "TokenWithNewline",
            "current-context: a\n" + kBase + "users: [{name: u, user: {token: \"s3cret\\nX\"}}]\n",
            "token contains control characters"},
        BadCase{"TokenFileWithNul",
                "current-context: a\n" + kBase +
                    "users: [{name: u, user: {tokenFile: \"/etc/hostname\\0.token\"}}]\n",
                "users[0].user.tokenFile: not a file name"},
        BadCase{"CaFileWithNul",
                "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n"
                "clusters: [{name: c, cluster: {server: 'https://h', "
                "certificate-authority: \"/etc/hostname\\0\"}}]\n",
                "clusters[0].cluster.certificate-authority: not a file name"},
        BadCase{"TokenNotString",
                "current-context: a\n" + kBase + "users: [{name: u, user: {token: [s3cret]}}]\n",
                "users[0].user.token: expected a string"}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(Kubeconfig, TokenFileIsReadAtEveryCallAndTrimmed) {
  dualstack::testing::TempDir tmp;
  writeText(tmp.file("token"), "first-token\n");
  const Kubeconfig kc =
      parseKubeconfig("current-context: a\n" + kBase +
                          "users: [{name: u, user: {tokenFile: token, token: inline}}]\n",
                      tmp.file("kubeconfig"));
  EXPECT_EQ(kc.tokenFile, tmp.file("token"));
  EXPECT_EQ(bearerToken(kc), "first-token");
  writeText(tmp.file("token"), "  second-token \n");
  EXPECT_EQ(bearerToken(kc), "second-token");
  EXPECT_EQ(
      kc.credentialDescription(),
      "token file " + tmp.file("token") + " of kubeconfig user \"u\" in " + tmp.file("kubeconfig"));

  writeText(tmp.file("token"), "\n");
  try {
    bearerToken(kc);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(e.msg().find("token file " + tmp.file("token")), std::string::npos) << e.msg();
    EXPECT_NE(e.msg().find("is empty"), std::string::npos) << e.msg();
  }
  std::filesystem::remove(tmp.file("token"));
  try {
    bearerToken(kc);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::IoFailure);
    EXPECT_NE(e.msg().find("No such file"), std::string::npos) << e.msg();
  }
}

TEST(Kubeconfig, MissingFileIsAnIoFailureNamingIt) {
  try {
    loadKubeconfig("/nonexistent/dualstack.kubeconfig");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::IoFailure);
    EXPECT_EQ(e.msg(),
              "read kubeconfig /nonexistent/dualstack.kubeconfig: No such file or directory");
  }
}

// Files a kubeconfig names are read without blocking: a FIFO is named, a symlink (a Secret
// volume's, kubelet's rotated certificate) is followed.
TEST(Kubeconfig, AFifoIsNamedAndALinkIsFollowed) {
  dualstack::testing::TempDir tmp;
  ASSERT_EQ(::mkfifo(tmp.file("fifo").c_str(), 0600), 0);
  ::alarm(30);  // a blocking open fails the test binary instead of hanging it
  try {
    loadKubeconfig(tmp.file("fifo"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::IoFailure);
    EXPECT_EQ(e.msg(), "kubeconfig " + tmp.file("fifo") + " is a FIFO, not a regular file");
  }
  const Kubeconfig kc = parseKubeconfig(
      "current-context: a\n" + kBase + "users: [{name: u, user: {tokenFile: fifo}}]\n",
      tmp.file("kubeconfig"));
  try {
    bearerToken(kc);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::IoFailure);
    EXPECT_EQ(e.msg(), "token file " + tmp.file("fifo") + " is a FIFO, not a regular file");
  }
  ::alarm(0);
  writeText(tmp.file("real-token"), "linked-token\n");
  std::filesystem::remove(tmp.file("fifo"));
  std::filesystem::create_symlink(tmp.file("real-token"), tmp.file("fifo"));
  EXPECT_EQ(bearerToken(kc), "linked-token");
}

}  // namespace
}  // namespace dualstack::k8s
