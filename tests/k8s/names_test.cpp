#include "dualstack/k8s/names.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dualstack::k8s {
namespace {

TEST(Names, DnsLabel) {
  EXPECT_TRUE(validDnsLabel("kube-system"));
  EXPECT_TRUE(validDnsLabel(std::string(63, 'a')));
  for (const std::string& bad :
       std::vector<std::string>{"", "Kube", "-a", "a-", "a.b", "a_b", std::string(64, 'a')}) {
    EXPECT_FALSE(validDnsLabel(bad)) << bad;
  }
}

TEST(Names, NodeNamesAreDnsSubdomains) {
  EXPECT_TRUE(validNodeName("worker-1"));
  EXPECT_TRUE(validNodeName("ip-10-0-1-5.eu-west-1.compute.internal"));
  EXPECT_TRUE(validNodeName(std::string(63, 'a') + "." + std::string(63, 'b')));
  for (const std::string& bad :
       std::vector<std::string>{"", "Worker-1", "-a", "a-", "a..b", "../x", "a/b", "a_b", ".a",
                                "a.", std::string(64, 'a'), std::string(254, 'a')}) {
    EXPECT_FALSE(validNodeName(bad)) << bad;
  }
}

TEST(Names, ServiceAccountIsNamespaceSlashName) {
  const auto ref = parseServiceAccount("kube-system/dualstack-cni.plugin");
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(ref->ns, "kube-system");
  EXPECT_EQ(ref->name, "dualstack-cni.plugin");
  // A namespace is a label, not a subdomain; each part must be there.
  for (const char* bad : {"kube-system", "/sa", "ns/", "kube.system/sa", "ns/sa/x", "NS/sa"}) {
    EXPECT_FALSE(parseServiceAccount(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace dualstack::k8s
