#include "dualstack/ipam/config.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "dualstack/cni/error.hpp"
#include "support/support.hpp"

namespace dualstack::ipam {
namespace {

using nlohmann::json;

cni::NetConf netconf(const json& ipam, json extra = json::object()) {
  json j = {{"cniVersion", "1.0.0"}, {"name", "net1"}, {"type", "bridge"}, {"ipam", ipam}};
  j.update(extra);
  return cni::parseNetConf(j.dump(), cni::Command::Add);
}

cni::Env env(const std::string& args = "") {
  cni::Env e;
  e.command = cni::Command::Add;
  e.containerId = "c1";
  e.ifname = "eth0";
  e.args = args;
  e.argPairs = cni::parseCniArgs(args);
  return e;
}

const json kNode = {{"type", "dualstack-ipam"},
                    {"node", {{"podCIDRs", {"10.244.1.0/24", "fd00:10:244:1::/64"}}}}};

std::vector<RangeSet> sets(const json& ipam) {
  return rangeSets(parseIpamConfig(netconf(ipam), env(), Scope::Allocate));
}

struct Failure {
  cni::Code code = cni::Code::Internal;
  std::string msg = "(no error)";
};

Failure failure(const json& ipam, const std::string& args = "", json extra = json::object()) {
  try {
    sets(ipam);
    auto cfg = parseIpamConfig(netconf(ipam, extra), env(args), Scope::Allocate);
    assignRequested(rangeSets(cfg), cfg.requested);
  } catch (const cni::Error& e) {
    return {e.code(), e.msg()};
  }
  return {};
}

std::vector<std::string> texts(const std::vector<RangeSet>& s) {
  std::vector<std::string> out;
  for (const auto& r : s) out.push_back(r.str());
  return out;
}

TEST(IpamConfig, InlineNodeDefaults) {
  auto cfg = parseIpamConfig(netconf(kNode), env(), Scope::Allocate);
  EXPECT_EQ(cfg.network, "net1");
  EXPECT_EQ(cfg.dataDir, "/var/lib/cni/networks");
  EXPECT_TRUE(cfg.routes.empty());
  auto s = rangeSets(cfg);
  ASSERT_EQ(s.size(), 2U);
  EXPECT_EQ(texts(s), (std::vector<std::string>{"10.244.1.0/24", "fd00:10:244:1::/64"}));
  EXPECT_EQ(s[0].id, 0U);
  EXPECT_EQ(s[1].id, 1U);
  EXPECT_EQ(s[1].ranges[0].gateway.str(), "fd00:10:244:1::1");
}

TEST(IpamConfig, OrderFollowsTheNodesAddresses) {
  json ipam = kNode;
  // First InternalIP is IPv6: IPv6 first, whatever the podCIDRs order.
  ipam["node"]["addresses"] = {{{"type", "Hostname"}, {"address", "node-a"}},
                               {{"type", "ExternalIP"}, {"address", "203.0.113.5"}},
                               {{"type", "InternalIP"}, {"address", "fd00:192:168:10::5"}},
                               {{"type", "InternalIP"}, {"address", "192.168.10.5"}}};
  auto s = sets(ipam);
  EXPECT_EQ(texts(s), (std::vector<std::string>{"fd00:10:244:1::/64", "10.244.1.0/24"}));
  EXPECT_EQ(s[0].id, 1U);  // last_reserved_ip.N keeps the podCIDRs index

  // No InternalIP: the first ExternalIP decides.
  ipam["node"]["addresses"] = {{{"type", "ExternalIP"}, {"address", "2001:db8::5"}},
                               {{"type", "ExternalIP"}, {"address", "203.0.113.5"}}};
  EXPECT_EQ(sets(ipam)[0].family(), ip::Family::V6);

  // Neither: the first address that is an IP.
  ipam["node"]["addresses"] = {{{"type", "Hostname"}, {"address", "node-a"}},
                               {{"type", "InternalDNS"}, {"address", "fd00::1"}}};
  EXPECT_EQ(sets(ipam)[0].family(), ip::Family::V6);

  // None at all: podCIDRs order.
  ipam["node"]["addresses"] = json::array();
  ipam["node"]["podCIDRs"] = {"fd00:10:244:1::/64", "10.244.1.0/24"};
  EXPECT_EQ(sets(ipam)[0].family(), ip::Family::V6);
}

TEST(IpamConfig, SingleStackNode) {
  json ipam = kNode;
  ipam["node"]["podCIDRs"] = {"10.244.1.0/24"};
  ipam["node"]["addresses"] = {{{"type", "InternalIP"}, {"address", "fd00::5"}}};
  auto s = sets(ipam);
  ASSERT_EQ(s.size(), 1U);
  EXPECT_EQ(s[0].family(), ip::Family::V4);
}

TEST(IpamConfig, HostLocalRangesAndRoutes) {
  json ipam = {{"type", "dualstack-ipam"},
               {"dataDir", "/run/x"},
               {"ranges",
                {{{{"subnet", "10.1.0.0/16"},
                   {"rangeStart", "10.1.2.10"},
                   {"rangeEnd", "10.1.2.20"},
                   {"gateway", "10.1.0.254"}}},
                 {{{"subnet", "fd00::/64"}}}}},
               {"routes", {{{"dst", "0.0.0.0/0"}}, {{"dst", "::/0"}, {"gw", "fd00::1"}}}}};
  auto cfg = parseIpamConfig(netconf(ipam), env(), Scope::Allocate);
  EXPECT_EQ(cfg.dataDir, "/run/x");
  ASSERT_EQ(cfg.ranges.size(), 2U);
  EXPECT_EQ(cfg.ranges[0].ranges[0].gateway.str(), "10.1.0.254");
  EXPECT_EQ(cfg.ranges[0].str(), "10.1.0.0/16 (10.1.2.10-10.1.2.20)");
  ASSERT_EQ(cfg.routes.size(), 2U);
  EXPECT_EQ(cfg.routes[1].gw->str(), "fd00::1");
  EXPECT_FALSE(cfg.routes[0].gw);
}

TEST(IpamConfig, HostLocalsOldSingleRangeIsPrepended) {
  json ipam = {{"subnet", "10.2.0.0/24"}, {"ranges", {{{{"subnet", "fd00::/64"}}}}}};
  auto cfg = parseIpamConfig(netconf(ipam), env(), Scope::Allocate);
  ASSERT_EQ(cfg.ranges.size(), 2U);
  EXPECT_EQ(cfg.ranges[0].str(), "10.2.0.0/24");
  EXPECT_EQ(cfg.ranges[1].id, 1U);
}

TEST(IpamConfig, RequestedAddressesFromAllThreeSources) {
  json extra = {{"runtimeConfig", {{"ips", {"10.244.1.9/24"}}}},
                {"args", {{"cni", {{"ips", {"fd00:10:244:1::9"}}}}}}};
  auto cfg =
      parseIpamConfig(netconf(kNode, extra), env("IgnoreUnknown=1;IP=10.244.1.9,fd00:10:244:1::9"),
                      Scope::Allocate);
  ASSERT_EQ(cfg.requested.size(), 2U);  // duplicates collapse
  EXPECT_EQ(cfg.requested[0].address.str(), "10.244.1.9");
  EXPECT_EQ(cfg.requested[0].source, "runtimeConfig.ips[0]");
  EXPECT_EQ(cfg.requested[1].source, "args.cni.ips[0]");
  auto only = parseIpamConfig(netconf(kNode), env("IP=10.244.1.7"), Scope::Allocate);
  ASSERT_EQ(only.requested.size(), 1U);
  EXPECT_EQ(only.requested[0].source, "CNI_ARGS IP");
}

TEST(IpamConfig, StoreScopeValidatesEverythingAndReadsNoFile) {
  // DEL and GC never read the node source (its file may be gone, its API server down)...
  json ipam = {{"dataDir", "/tmp/x"}, {"node", {{"file", "/nonexistent/node.json"}}}};
  EXPECT_EQ(parseIpamConfig(netconf(ipam), env(), Scope::Store).dataDir, "/tmp/x");
  ipam["node"] = {{"kubeconfig", "/nonexistent/kubeconfig"}, {"name", "worker-1"}};
  EXPECT_EQ(parseIpamConfig(netconf(ipam), env(), Scope::Store).dataDir, "/tmp/x");
  // ...but refuse a config that ADD would refuse, before they touch the store.
  EXPECT_THROW(parseIpamConfig(netconf({{"dataDir", "rel/x"}}), env(), Scope::Store), cni::Error);
  ipam["node"] = {{"podCIDRs", {"garbage"}}};
  EXPECT_THROW(parseIpamConfig(netconf(ipam), env(), Scope::Store), cni::Error);
}

struct BadCase {
  const char* name;
  json ipam;
  std::string args;
  json extra;
  cni::Code code;
  const char* msg;  // expected message (exact)
};

// Keeps ctest's test names readable.
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class BadConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, FailsWithTheRightCodeNamingTheField) {
  const auto& c = GetParam();
  const Failure f = failure(c.ipam, c.args, c.extra);
  EXPECT_EQ(static_cast<int>(f.code), static_cast<int>(c.code)) << f.msg;
  EXPECT_EQ(f.msg, c.msg);
}

// DEL and GC parse with Scope::Store and never load the node source: the same config is refused
// with the same error, before the store is touched. Only whether a requested address lies in a
// range is left to allocation: a DEL carrying the ADD's request for one is not refused.
TEST_P(BadConfig, IsRefusedByDelAndGcToo) {
  const auto& c = GetParam();
  const bool allocationOnly = std::string_view(c.name) == "RequestedOutside";
  Failure f;
  try {
    parseIpamConfig(netconf(c.ipam, c.extra), env(c.args), Scope::Store);
  } catch (const cni::Error& e) {
    f = {e.code(), e.msg()};
  }
  if (allocationOnly) {
    EXPECT_EQ(f.msg, "(no error)");
    return;
  }
  EXPECT_EQ(static_cast<int>(f.code), static_cast<int>(c.code)) << f.msg;
  EXPECT_EQ(f.msg, c.msg);
}

json node(json podCIDRs) { return {{"node", {{"podCIDRs", std::move(podCIDRs)}}}}; }
json ranges(json r) { return {{"ranges", std::move(r)}}; }

INSTANTIATE_TEST_SUITE_P(
    Cases, BadConfig,
    ::testing::Values(
        BadCase{"BadCidr", node({"10.244.1.0/33"}), "", json::object(), cni::Code::InvalidConfig,
                "ipam.node.podCIDRs[0]: \"10.244.1.0/33\" is not an address in CIDR form (like "
                "10.244.1.0/24)"},
        BadCase{"NotAString", node({24}), "", json::object(), cni::Code::InvalidConfig,
                "ipam.node.podCIDRs[0]: expected a string, got a number"},
        BadCase{"HostBits", node({"10.244.1.0/24", "fd00::1/64"}), "", json::object(),
                cni::Code::InvalidConfig,
                "ipam.node.podCIDRs[1]: fd00::1/64 has host bits set (the network is fd00::/64)"},
        BadCase{"NoPodCidrs", node(json::array()), "", json::object(), cni::Code::InvalidConfig,
                "ipam.node.podCIDRs is missing or empty: give the node's pod CIDRs (at most one "
                "IPv4 and one IPv6), or use ipam.node.file"},
        BadCase{"NoNodeFields",
                {{"node", json::object()}},
                "",
                json::object(),
                cni::Code::InvalidConfig,
                "ipam.node.podCIDRs is missing or empty: give the node's pod CIDRs (at most one "
                "IPv4 and one IPv6), or use ipam.node.file"},
        BadCase{"TwoOfAFamily", node({"10.244.1.0/24", "fd00::/64", "10.244.2.0/24"}), "",
                json::object(), cni::Code::InvalidConfig,
                "ipam.node.podCIDRs[2]: 10.244.2.0/24 is a second IPv4 pod CIDR after "
                "10.244.1.0/24; a node has at most one per family"},
        BadCase{"TooSmall", node({"10.244.1.0/31"}), "", json::object(), cni::Code::InvalidConfig,
                "ipam.node.podCIDRs[0]: 10.244.1.0/31 is too small: it has no usable address "
                "besides the network, gateway and broadcast addresses"},
        BadCase{"TooSmall6", node({"fd00::/127"}), "", json::object(), cni::Code::InvalidConfig,
                "ipam.node.podCIDRs[0]: fd00::/127 is too small: it has no usable address "
                "besides the network, gateway and broadcast addresses"},
        BadCase{"NoSource",
                {{"type", "dualstack-ipam"}},
                "",
                json::object(),
                cni::Code::InvalidConfig,
                "ipam: no address source: set ipam.node (podCIDRs or file) or host-local's "
                "ipam.ranges"},
        BadCase{"NodeAndRanges",
                {{"node", {{"podCIDRs", {"10.0.0.0/24"}}}},
                 {"ranges", {{{{"subnet", "10.1.0.0/24"}}}}}},
                "",
                json::object(),
                cni::Code::InvalidConfig,
                "ipam: give either node or host-local's ranges/subnet, not both"},
        BadCase{"FileAndInline",
                {{"node", {{"file", "/x"}, {"podCIDRs", {"10.0.0.0/24"}}}}},
                "",
                json::object(),
                cni::Code::InvalidConfig,
                "ipam.node: give either file or podCIDRs/addresses, not both"},
        BadCase{"RelativeFile",
                {{"node", {{"file", "node.json"}}}},
                "",
                json::object(),
                cni::Code::InvalidConfig,
                "ipam.node.file: \"node.json\" is not an absolute path"},
        BadCase{"RelativeKubeconfig",
                {{"node", {{"kubeconfig", "etc/k"}, {"name", "n"}}}},
                "",
                json::object(),
                cni::Code::InvalidConfig,
                "ipam.node.kubeconfig: \"etc/k\" is not an absolute path"},
        BadCase{"KubeconfigAndFile",
                {{"node", {{"kubeconfig", "/etc/k"}, {"file", "/n.json"}}}},
                "",
                json::object(),
                cni::Code::InvalidConfig,
                "ipam.node: give either kubeconfig or file, not both"},
        BadCase{"BadNodeAddress",
                {{"node",
                  {{"podCIDRs", {"10.0.0.0/24"}},
                   {"addresses", {{{"type", "InternalIP"}, {"address", "10.0.0.300"}}}}}}},
                "",
                json::object(),
                cni::Code::InvalidConfig,
                "ipam.node.addresses[0].address: \"10.0.0.300\" is not an IP address"},
        BadCase{"RelativeDataDir",
                {{"dataDir", "var/lib"}, {"node", {{"podCIDRs", {"10.0.0.0/24"}}}}},
                "",
                json::object(),
                cni::Code::InvalidConfig,
                "ipam.dataDir: \"var/lib\" is not an absolute path"},
        BadCase{"DataDirType",
                {{"dataDir", 5}},
                "",
                json::object(),
                cni::Code::InvalidConfig,
                "ipam.dataDir: expected a string, got a number"},
        BadCase{"Overlap", ranges({{{{"subnet", "10.0.0.0/16"}}}, {{{"subnet", "10.0.1.0/24"}}}}),
                "", json::object(), cni::Code::InvalidConfig,
                "ipam.ranges[1][0]: 10.0.1.0/24 overlaps ipam.ranges[0][0] (10.0.0.0/16)"},
        BadCase{"RangeStartOutside",
                ranges({{{{"subnet", "10.0.0.0/24"}, {"rangeStart", "10.0.1.1"}}}}), "",
                json::object(), cni::Code::InvalidConfig,
                "ipam.ranges[0][0]: rangeStart 10.0.1.1 is outside the subnet 10.0.0.0/24"},
        BadCase{"RangeEndOutside",
                ranges({{{{"subnet", "10.0.0.0/24"}, {"rangeEnd", "10.0.1.1"}}}}), "",
                json::object(), cni::Code::InvalidConfig,
                "ipam.ranges[0][0]: rangeEnd 10.0.1.1 is outside the subnet 10.0.0.0/24"},
        BadCase{"GatewayOutside", ranges({{{{"subnet", "fd00::/64"}, {"gateway", "fd01::1"}}}}), "",
                json::object(), cni::Code::InvalidConfig,
                "ipam.ranges[0][0]: gateway fd01::1 is outside the subnet fd00::/64"},
        BadCase{"BadGatewayText", ranges({{{{"subnet", "fd00::/64"}, {"gateway", "x"}}}}), "",
                json::object(), cni::Code::InvalidConfig,
                "ipam.ranges[0][0].gateway: \"x\" is not an IP address"},
        BadCase{"MissingSubnet", ranges({{{{"rangeStart", "10.0.0.5"}}}}), "", json::object(),
                cni::Code::InvalidConfig, "ipam.ranges[0][0].subnet is missing"},
        BadCase{"RangeSetNotArray", ranges({{{"subnet", "10.0.0.0/24"}}}), "", json::object(),
                cni::Code::InvalidConfig,
                "ipam.ranges[0]: expected an array of ranges, got an object"},
        BadCase{"EmptyRangeSet", ranges(json::array({json::array()})), "", json::object(),
                cni::Code::InvalidConfig, "ipam.ranges[0] is empty"},
        BadCase{"RouteHostBits",
                {{"node", {{"podCIDRs", {"10.0.0.0/24"}}}}, {"routes", {{{"dst", "10.0.0.1/8"}}}}},
                "",
                json::object(),
                cni::Code::InvalidConfig,
                "ipam.routes[0].dst: 10.0.0.1/8 has host bits set (the network is 10.0.0.0/8)"},
        BadCase{"RouteGwFamily",
                {{"node", {{"podCIDRs", {"10.0.0.0/24"}}}},
                 {"routes", {{{"dst", "0.0.0.0/0"}, {"gw", "fd00::1"}}}}},
                "",
                json::object(),
                cni::Code::InvalidConfig,
                "ipam.routes[0].gw: fd00::1 is not of the family of dst 0.0.0.0/0"},
        BadCase{"RequestedNotAnIp",
                node({"10.0.0.0/24"}),
                "",
                {{"runtimeConfig", {{"ips", {"x"}}}}},
                cni::Code::InvalidConfig,
                "runtimeConfig.ips[0]: \"x\" is not an IP address"},
        BadCase{"RequestedOutside", node({"10.0.0.0/24"}), "IP=10.9.0.5", json::object(),
                cni::Code::InvalidConfig,
                "CNI_ARGS IP: requested address 10.9.0.5 is in none of the ranges (10.0.0.0/24)"},
        BadCase{"CniArgsIpMalformed", node({"10.0.0.0/24"}), "IP=10.0.0.5,nope", json::object(),
                cni::Code::InvalidEnv, "CNI_ARGS IP: \"nope\" is not an IP address"},
        BadCase{"ArgsIpsType",
                node({"10.0.0.0/24"}),
                "",
                {{"args", {{"cni", {{"ips", "10.0.0.5"}}}}}},
                cni::Code::InvalidConfig,
                "args.cni.ips: expected an array, got a string"}),
    [](const ::testing::TestParamInfo<BadCase>& p) { return std::string(p.param.name); });

TEST(IpamConfig, MissingIpamSection) {
  auto conf =
      cni::parseNetConf(R"({"cniVersion":"1.0.0","name":"n","type":"bridge"})", cni::Command::Add);
  try {
    parseIpamConfig(conf, env(), Scope::Store);
    ADD_FAILURE();
  } catch (const cni::Error& e) {
    EXPECT_EQ(e.code(), cni::Code::InvalidConfig);
  }
}

class NodeFileTest : public ::testing::Test {
 protected:
  dualstack::testing::TempDir dir;
  json ipam() const { return {{"node", {{"file", dir.file("node.json")}}}}; }
  void write(const std::string& text) { std::ofstream(dir.file("node.json")) << text; }
};

TEST_F(NodeFileTest, ReadsAKubectlNodeObject) {
  write(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"},
            "spec":{"podCIDR":"10.244.1.0/24","podCIDRs":["10.244.1.0/24","fd00:10:244:1::/64"]},
            "status":{"addresses":[{"type":"InternalIP","address":"fd00:192:168:10::5"},
                                   {"type":"InternalIP","address":"192.168.10.5"},
                                   {"type":"Hostname","address":"n1"}]}})");
  auto s = sets(ipam());
  EXPECT_EQ(texts(s), (std::vector<std::string>{"fd00:10:244:1::/64", "10.244.1.0/24"}));
}

TEST_F(NodeFileTest, OldNodeWithOnlyPodCidr) {
  write(R"({"spec":{"podCIDR":"10.244.3.0/24"}})");
  EXPECT_EQ(texts(sets(ipam())), (std::vector<std::string>{"10.244.3.0/24"}));
}

TEST_F(NodeFileTest, Failures) {
  // Missing: the daemon writing it may not have run yet.
  Failure f = failure(ipam());
  EXPECT_EQ(f.code, cni::Code::TryAgainLater) << f.msg;
  EXPECT_NE(f.msg.find(dir.file("node.json")), std::string::npos);

  write("{not json");
  f = failure(ipam());
  EXPECT_EQ(f.code, cni::Code::DecodeFailure) << f.msg;
  EXPECT_NE(f.msg.find("node file " + dir.file("node.json") + " is not valid JSON"),
            std::string::npos)
      << f.msg;

  write(R"({"spec":{}})");
  f = failure(ipam());
  EXPECT_EQ(f.code, cni::Code::TryAgainLater) << f.msg;
  EXPECT_NE(f.msg.find("has no spec.podCIDRs yet"), std::string::npos) << f.msg;

  write(R"({"spec":{"podCIDRs":["10.244.1.7/24"]}})");
  f = failure(ipam());
  EXPECT_EQ(f.code, cni::Code::InvalidConfig);
  EXPECT_EQ(f.msg, "node file " + dir.file("node.json") +
                       ": spec.podCIDRs[0]: 10.244.1.7/24 has host bits set (the network is "
                       "10.244.1.0/24)");
}

}  // namespace
}  // namespace dualstack::ipam
