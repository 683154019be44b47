// The one parse of a Node: from the API's object, a Node file and an inline ipam.node.
#include "dualstack/k8s/node.hpp"

#include <gtest/gtest.h>

#include "apiserver.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::k8s {
namespace {

using nlohmann::json;
using sys::Code;
using sys::Error;

TEST(ParseNode, FallsBackToPodCidrAndKeepsAddressOrder) {
  const Node n = parseNode(json::parse(R"({
    "metadata": {"name": "old"},
    "spec": {"podCIDR": "10.244.7.0/24"},
    "status": {"addresses": [{"type": "InternalIP", "address": "fd00::7"},
                             {"type": "Hostname", "address": "old"},
                             {"type": "ExternalIP", "address": "203.0.113.7"}]}})"),
                           "node");
  EXPECT_EQ(n.name, "old");
  EXPECT_EQ(testing::podCidrTexts(n), std::vector<std::string>{"10.244.7.0/24"});
  EXPECT_EQ(n.podCIDRs[0].field, "spec.podCIDR");
  ASSERT_EQ(n.addresses.size(), 2U);
  EXPECT_EQ(n.addresses[0].address.str(), "fd00::7");
  EXPECT_EQ(n.addresses[1].type, "ExternalIP");
  EXPECT_TRUE(n.unusable.empty()) << "a Hostname that is no IP address is left out, not unusable";
}

TEST(ParseNode, WithoutPodCidrsIsEmptyNotAnError) {
  const Node n = parseNode(json::parse(R"({"metadata": {"name": "new"}, "spec": {}})"), "node");
  EXPECT_TRUE(n.podCIDRs.empty());
  EXPECT_TRUE(parseNode(json::parse(R"({"spec": {"podCIDRs": [], "podCIDR": ""}})"), "node")
                  .podCIDRs.empty());
}

TEST(ParseNode, WrongTypesAreNamed) {
  try {
    parseNode(json::parse(R"({"spec": {"podCIDRs": [1]}})"), "node \"a\"");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::DecodeFailure);
    EXPECT_NE(e.msg().find("node \"a\".spec.podCIDRs[0]: expected a string"), std::string::npos)
        << e.msg();
  }
  // A config's inline node: its fields, and the config's code.
  try {
    parseNode(json::parse(R"({"addresses": [{"type": "InternalIP"}]})"), "ipam.node",
              NodeLayout::Inline, Code::InvalidConfig);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::InvalidConfig);
    EXPECT_EQ(e.msg(), "ipam.node.addresses[0].address is missing");
  }
}

TEST(ParseNode, NotAnObject) {
  for (const auto& [where, msg] :
       {std::pair<std::string, std::string>{"node \"a\"",
                                            "node \"a\": expected a Node object, got an array"},
        {"", "expected a Node object, got an array"}}) {
    try {
      parseNode(json::array(), where);
      ADD_FAILURE();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::DecodeFailure);
      EXPECT_EQ(e.msg(), msg);
    }
  }
}

TEST(ParseNode, UnusableValuesAreKeptForTheReaderToJudge) {
  const Node n = parseNode(json::parse(R"({"spec": {"podCIDRs": ["banana", "10.244.1.7/24"]},
      "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.300"},
                               {"type": "ExternalIP", "address": "203.0.113.9"}]}})"),
                           "node");
  ASSERT_EQ(n.podCIDRs.size(), 1U);
  EXPECT_EQ(n.podCIDRs[0].prefix.str(), "10.244.1.7/24") << "host bits are the reader's to judge";
  EXPECT_EQ(n.podCIDRs[0].field, "spec.podCIDRs[1]");
  ASSERT_EQ(n.unusable.size(), 2U);
  EXPECT_EQ(n.unusable[0].kind, Unusable::Kind::PodCidr);
  EXPECT_EQ(n.unusable[0].field, "spec.podCIDRs[0]");
  EXPECT_EQ(n.unusable[0].text, "banana");
  EXPECT_EQ(n.unusable[1].kind, Unusable::Kind::Address);
  EXPECT_EQ(n.unusable[1].field, "status.addresses[0].address");
  ASSERT_EQ(n.addresses.size(), 1U);
  EXPECT_EQ(n.addresses[0].address.str(), "203.0.113.9");
}

TEST(ParseNode, InlineAndObjectGiveTheSameNode) {
  const Node fromObject =
      parseNode(testing::nodeObject("w", {"10.244.1.0/24", "fd00:10:244:1::/64"},
                                    {{"InternalIP", "fd00::5"}, {"InternalIP", "192.168.10.5"}}),
                "node");
  const Node fromInline =
      parseNode(json::parse(R"({"podCIDRs": ["10.244.1.0/24", "fd00:10:244:1::/64"],
                      "addresses": [{"type": "InternalIP", "address": "fd00::5"},
                                    {"type": "InternalIP", "address": "192.168.10.5"}]})"),
                "ipam.node", NodeLayout::Inline, Code::InvalidConfig);
  EXPECT_EQ(testing::podCidrTexts(fromInline), testing::podCidrTexts(fromObject));
  EXPECT_EQ(fromInline.podCIDRs[1].field, "podCIDRs[1]");
  EXPECT_EQ(fromObject.podCIDRs[1].field, "spec.podCIDRs[1]");
  ASSERT_EQ(fromInline.addresses.size(), fromObject.addresses.size());
  for (std::size_t i = 0; i < fromInline.addresses.size(); ++i) {
    EXPECT_EQ(fromInline.addresses[i].type, fromObject.addresses[i].type);
    EXPECT_EQ(fromInline.addresses[i].address, fromObject.addresses[i].address);
  }
  // The inline form has no spec: a singular podCIDR there is not one of its fields.
  EXPECT_TRUE(parseNode(json::parse(R"({"podCIDR": "10.0.0.0/24"})"), "ipam.node",
                        NodeLayout::Inline, Code::InvalidConfig)
                  .podCIDRs.empty());
}

}  // namespace
}  // namespace dualstack::k8s
