// ADD of the dualstack binary: result shape per CNI version, what it builds in the pod and on the
// node, node-order of the IPs, single-stack networks, MTU, and the reference host-local as IPAM.
#include <arpa/inet.h>

#include <cstdio>
#include <regex>

#include <gmock/gmock.h>

#include "dualstack/plugin/hostveth.hpp"
#include "plugin_fixture.hpp"

namespace dualstack::plugintest {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// ---- every CNI version ----

class PluginVersions : public PluginTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(PluginVersions, AddResultShapeCheckAndDel) {
  const std::string version = GetParam();
  const bool v1 = version.rfind("1.", 0) == 0;
  const bool v11 = version == "1.1.0";
  const bool hasCheck = version != "0.3.0" && version != "0.3.1";
  auto& pod = newPod();
  const json conf = pluginConf("10-dualstack.conflist", version);

  const json r = add(pod, "cid-ver", conf);

  EXPECT_EQ(r.at("cniVersion"), version);
  ASSERT_EQ(r.at("interfaces").size(), 2u) << r.dump();
  const json& host = r["interfaces"][0];
  const json& ctr = r["interfaces"][1];
  // The host end: no sandbox, its real name and MAC in the node namespace.
  const std::string hostName = host.at("name");
  EXPECT_TRUE(std::regex_match(hostName, std::regex("ds[0-9a-f]{13}"))) << hostName;
  EXPECT_FALSE(host.contains("sandbox")) << r.dump();
  EXPECT_EQ(host.at("mac"), link(node(), hostName).at("address"));
  // The container end: CNI_IFNAME inside CNI_NETNS, its real MAC.
  EXPECT_EQ(ctr.at("name"), "eth0");
  EXPECT_EQ(ctr.at("sandbox"), pod.path());
  EXPECT_EQ(ctr.at("mac"), link(pod, "eth0").at("address"));
  // mtu on interfaces exists from 1.1.0 on only.
  if (v11) {
    EXPECT_EQ(ctr.at("mtu"), 1500);
  } else {
    EXPECT_FALSE(ctr.contains("mtu")) << r.dump();
    EXPECT_FALSE(host.contains("mtu")) << r.dump();
  }

  ASSERT_EQ(r.at("ips").size(), 2u) << r.dump();
  EXPECT_EQ(r["ips"][0].at("address"), "10.244.1.2/24");
  EXPECT_EQ(r["ips"][0].at("gateway"), "10.244.1.1");
  EXPECT_EQ(r["ips"][1].at("address"), "fd00:10:244:1::2/64");
  EXPECT_EQ(r["ips"][1].at("gateway"), "fd00:10:244:1::1");
  for (const auto& ipc : r["ips"]) {
    EXPECT_EQ(ipc.at("interface"), 1) << "ips[].interface must be the index of eth0: " << r.dump();
  }
  if (v1) {
    EXPECT_FALSE(r["ips"][0].contains("version")) << r.dump();
    EXPECT_FALSE(r["ips"][1].contains("version")) << r.dump();
  } else {
    EXPECT_EQ(r["ips"][0].at("version"), "4");
    EXPECT_EQ(r["ips"][1].at("version"), "6");
  }
  EXPECT_EQ(r.at("routes"), json::parse(R"([{"dst":"0.0.0.0/0","gw":"10.244.1.1"},
                                            {"dst":"::/0","gw":"fd00:10:244:1::1"}])"));

  const RunResult c = check(pod, "cid-ver", conf, r);
  if (hasCheck) {
    EXPECT_EQ(c.exitCode, 0) << describe(c);
    EXPECT_EQ(c.out, "");
  } else {
    // CHECK does not exist before 0.4.0: incompatible version.
    EXPECT_EQ(errorOf(c).value("code", 0), 1) << describe(c);
  }

  const RunResult d = del(pod.path(), "cid-ver", conf);
  EXPECT_EQ(d.exitCode, 0) << describe(d);
  EXPECT_EQ(d.out, "");
  EXPECT_THAT(nodeVeths(), IsEmpty());
  EXPECT_THAT(linkNames(pod), ElementsAre("lo"));
  EXPECT_THAT(allocations("dualstack"), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(EveryCniVersion, PluginVersions,
                         ::testing::Values("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                           std::string n = p.param;
                           std::replace(n.begin(), n.end(), '.', '_');
                           return "v" + n;
                         });

// ---- dual-stack: what ADD builds ----

// "aa:bb:cc:dd:ee:ff" -> "fe80::a8bb:ccff:fedd:eeff", the address the kernel would generate.
std::string eui64LinkLocal(const std::string& mac) {
  unsigned b[6] = {};
  if (std::sscanf(mac.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) !=
      6) {
    return "bad MAC " + mac;
  }
  in6_addr a{};
  const unsigned bytes[16] = {0xfe,      0x80, 0,    0,    0,    0,    0,    0,
                              b[0] ^ 2U, b[1], b[2], 0xff, 0xfe, b[3], b[4], b[5]};
  for (int i = 0; i < 16; ++i) a.s6_addr[i] = static_cast<std::uint8_t>(bytes[i]);
  char out[INET6_ADDRSTRLEN];
  return ::inet_ntop(AF_INET6, &a, out, sizeof out) != nullptr ? out : "inet_ntop failed";
}

using PluginAdd = PluginTest;

TEST_F(PluginAdd, DualStackPodAndNodeStateAndPingsRightAfterAdd) {
  // A fresh namespace may inherit forwarding from the machine; start from "off" to see ADD turn
  // it on.
  mustExec(node(), "sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0");
  auto& a = newPod();
  auto& b = newPod();
  const json conf = pluginConf("10-dualstack.conflist");
  const json ra = add(a, "cid-a", conf);
  const json rb = add(b, "cid-b", conf);

  // Usable right away: no sleep anywhere in this test, one packet with a 1 s limit per ping, and
  // IPv6 first so that each is the first packet of its path (neighbour discovery included).
  EXPECT_TRUE(ping(a, "fd00:10:244:1::1")) << "pod a -> its gateway, IPv6";
  EXPECT_TRUE(ping(node(), "fd00:10:244:1::3")) << "node -> pod b, IPv6";
  EXPECT_TRUE(ping(b, "fd00:10:244:1::2")) << "pod b -> pod a, IPv6";
  EXPECT_TRUE(ping(a, "fd00:10:244:1::3")) << "pod a -> pod b, IPv6";
  EXPECT_TRUE(ping(node(), "fd00:10:244:1::2")) << "node -> pod a, IPv6";
  EXPECT_TRUE(ping(a, "10.244.1.1")) << "pod a -> its gateway, IPv4";
  EXPECT_TRUE(ping(node(), "10.244.1.3")) << "node -> pod b, IPv4";
  EXPECT_TRUE(ping(b, "10.244.1.2")) << "pod b -> pod a, IPv4";
  EXPECT_TRUE(ping(a, "10.244.1.3")) << "pod a -> pod b, IPv4";
  EXPECT_TRUE(ping(node(), "10.244.1.2")) << "node -> pod a, IPv4";

  // Nothing waits for duplicate-address detection, on either end (link-local included).
  EXPECT_THAT(tentativeAddrs(a), IsEmpty());
  EXPECT_THAT(tentativeAddrs(b), IsEmpty());
  EXPECT_THAT(tentativeAddrs(node()), IsEmpty());

  // Pod a: eth0 up with both addresses, NODAD + NOPREFIXROUTE, lo up.
  const json eth0 = link(a, "eth0");
  EXPECT_EQ(eth0.at("linkinfo").at("info_kind"), "veth");
  EXPECT_EQ(eth0.at("operstate"), "UP");
  EXPECT_EQ(eth0.at("mtu"), 1500);
  EXPECT_THAT(globalAddrs(a, "eth0"), UnorderedElementsAre("10.244.1.2/24", "fd00:10:244:1::2/64"));
  for (const auto& ad : addrInfo(a, "eth0")) {
    if (ad.value("scope", "") != "global") continue;
    EXPECT_TRUE(ad.value("noprefixroute", false)) << ad.dump();
    if (ad.at("family") == "inet6") {
      EXPECT_TRUE(ad.value("nodad", false)) << ad.dump();
    }
  }
  EXPECT_THAT(link(a, "lo").at("flags"), ::testing::Contains("UP"));
  EXPECT_EQ(routes(a, false), (std::set<std::string>{"default via 10.244.1.1 dev eth0",
                                                     "10.244.1.0/24 via 10.244.1.1 dev eth0",
                                                     "10.244.1.1 dev eth0 scope link"}));
  EXPECT_EQ(routes(a, true),
            (std::set<std::string>{"default via fd00:10:244:1::1 dev eth0",
                                   "fd00:10:244:1::/64 via fd00:10:244:1::1 dev eth0",
                                   "fd00:10:244:1::1 dev eth0"}));

  // Node: the host end carries the gateways as /32 and /128, a host route per pod address.
  const std::string hostA = ra["interfaces"][0]["name"];
  const std::string hostB = rb["interfaces"][0]["name"];
  EXPECT_NE(hostA, hostB);
  EXPECT_THAT(nodeVeths(), UnorderedElementsAre(hostA, hostB));
  const json hl = link(node(), hostA);
  EXPECT_EQ(hl.at("ifalias"), "dualstack:dualstack@" + plugin::storeTag(dataDir()) + ":eth0:cid-a");
  EXPECT_EQ(hl.at("operstate"), "UP");
  EXPECT_EQ(hl.at("mtu"), 1500);
  EXPECT_THAT(globalAddrs(node(), hostA),
              UnorderedElementsAre("10.244.1.1/32", "fd00:10:244:1::1/128"));
  EXPECT_EQ(routes(node(), false, "dev " + hostA),
            (std::set<std::string>{"10.244.1.2 scope link"}));
  EXPECT_EQ(routes(node(), true, "dev " + hostA), (std::set<std::string>{"fd00:10:244:1::2"}));
  EXPECT_EQ(routes(node(), false, "dev " + hostB),
            (std::set<std::string>{"10.244.1.3 scope link"}));
  EXPECT_EQ(sysctl(node(), "net/ipv6/conf/" + hostA + "/accept_ra"), "0");
  // Its link-local address is the kernel's (EUI-64 of its MAC) but /128, so that it joins no
  // subnet-router anycast group (which would slow down the veth's deletion).
  EXPECT_EQ(sysctl(node(), "net/ipv6/conf/" + hostA + "/addr_gen_mode"), "1");
  std::vector<std::string> linkLocal;
  for (const auto& ad : addrInfo(node(), hostA)) {
    if (ad.value("scope", "") == "link") {
      linkLocal.push_back(ad.value("local", "") + "/" + std::to_string(ad.value("prefixlen", 0)));
    }
  }
  EXPECT_THAT(linkLocal, ElementsAre(eui64LinkLocal(hl.at("address")) + "/128"));
  EXPECT_EQ(mustExec(node(), "cat /proc/net/anycast6").find(hostA), std::string::npos)
      << mustExec(node(), "cat /proc/net/anycast6");
  EXPECT_EQ(sysctl(node(), "net/ipv4/ip_forward"), "1");
  EXPECT_EQ(sysctl(node(), "net/ipv6/conf/all/forwarding"), "1");

  // The store: one address per family and attachment.
  EXPECT_EQ(allocations("dualstack"),
            (std::map<std::string, std::string>{{"10.244.1.2", owner("cid-a")},
                                                {"10.244.1.3", owner("cid-b")},
                                                {"fd00:10:244:1::2", owner("cid-a")},
                                                {"fd00:10:244:1::3", owner("cid-b")}}));

  EXPECT_EQ(del(a.path(), "cid-a", conf).exitCode, 0);
  EXPECT_EQ(del(b.path(), "cid-b", conf).exitCode, 0);
  EXPECT_THAT(nodeVeths(), IsEmpty());
  EXPECT_THAT(allocations("dualstack"), IsEmpty());
  EXPECT_THAT(routes(node(), false), IsEmpty());
  EXPECT_THAT(routes(node(), true), IsEmpty());
}

// A packet the node forwards from pod b to pod a has a source address that is not on a's node
// end, so the neighbour solicitation for pod a goes out from that link's link-local address:
// without one the node never asks, and b cannot reach a until a speaks first.
TEST_F(PluginAdd, ForwardedIpv6ToAPodTheNodeHasNotHeardFrom) {
  auto& a = newPod();
  auto& b = newPod();
  const json conf = pluginConf("10-dualstack.conflist");
  add(a, "cid-a", conf);
  add(b, "cid-b", conf);
  // Forget whatever ADD's own traffic taught the node and the pods.
  for (const TestNetns* ns : std::initializer_list<const TestNetns*>{&node(), &a, &b}) {
    mustExec(*ns, "ip -6 neigh flush all");
  }
  EXPECT_TRUE(ping(b, "fd00:10:244:1::2")) << "pod b -> pod a, IPv6, node knows neither";
  EXPECT_TRUE(ping(a, "fd00:10:244:1::3")) << "pod a -> pod b, IPv6";
  EXPECT_EQ(del(a.path(), "cid-a", conf).exitCode, 0);
  EXPECT_EQ(del(b.path(), "cid-b", conf).exitCode, 0);
}

TEST_F(PluginAdd, Ipv6PrimaryNodeOrdersIpv6First) {
  auto& pod = newPod();
  const json conf = pluginConf("20-dualstack-ipv6-primary.conflist");
  const json r = add(pod, "cid-v6p", conf);
  ASSERT_EQ(r.at("ips").size(), 2u) << r.dump();
  EXPECT_EQ(r["ips"][0].at("address"), "fd00:10:244:2::2/64");
  EXPECT_EQ(r["ips"][0].at("gateway"), "fd00:10:244:2::1");
  EXPECT_EQ(r["ips"][1].at("address"), "10.244.2.2/24");
  EXPECT_EQ(r["ips"][1].at("gateway"), "10.244.2.1");
  EXPECT_THAT(globalAddrs(pod, "eth0"),
              UnorderedElementsAre("10.244.2.2/24", "fd00:10:244:2::2/64"));
  EXPECT_TRUE(ping(node(), "fd00:10:244:2::2"));
  EXPECT_TRUE(ping(node(), "10.244.2.2"));
  EXPECT_THAT(tentativeAddrs(pod), IsEmpty());
  EXPECT_EQ(check(pod, "cid-v6p", conf, r).exitCode, 0);
  EXPECT_EQ(del(pod.path(), "cid-v6p", conf).exitCode, 0);
  EXPECT_THAT(allocations("dualstack-v6"), IsEmpty());
  EXPECT_THAT(nodeVeths(), IsEmpty());
}

TEST_F(PluginAdd, Ipv4OnlyNetwork) {
  mustExec(node(), "sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0");
  auto& a = newPod();
  auto& b = newPod();
  const json conf = pluginConf("30-ipv4-only.conflist");
  const json ra = add(a, "cid-a", conf);
  add(b, "cid-b", conf);
  ASSERT_EQ(ra.at("ips").size(), 1u) << ra.dump();
  EXPECT_EQ(ra["ips"][0].at("address"), "10.244.3.2/24");
  EXPECT_EQ(ra.at("routes"), json::parse(R"([{"dst":"0.0.0.0/0","gw":"10.244.3.1"}])"));
  EXPECT_THAT(globalAddrs(a, "eth0"), ElementsAre("10.244.3.2/24"));
  EXPECT_THAT(routes(a, true), IsEmpty());
  EXPECT_TRUE(ping(a, "10.244.3.3"));
  EXPECT_TRUE(ping(node(), "10.244.3.2"));
  // The kernel still gives the links IPv6 link-local addresses; none waits for DAD.
  EXPECT_THAT(tentativeAddrs(a), IsEmpty());
  EXPECT_THAT(tentativeAddrs(node()), IsEmpty());
  const std::string host = ra["interfaces"][0]["name"];
  EXPECT_THAT(globalAddrs(node(), host), ElementsAre("10.244.3.1/32"));
  // Forwarding only for the family in use.
  EXPECT_EQ(sysctl(node(), "net/ipv4/ip_forward"), "1");
  EXPECT_EQ(sysctl(node(), "net/ipv6/conf/all/forwarding"), "0");
  EXPECT_EQ(allocations("ipv4-only"),
            (std::map<std::string, std::string>{{"10.244.3.2", owner("cid-a")},
                                                {"10.244.3.3", owner("cid-b")}}));
  EXPECT_EQ(del(a.path(), "cid-a", conf).exitCode, 0);
  EXPECT_EQ(del(b.path(), "cid-b", conf).exitCode, 0);
  EXPECT_THAT(allocations("ipv4-only"), IsEmpty());
  EXPECT_THAT(nodeVeths(), IsEmpty());
}

TEST_F(PluginAdd, Ipv6OnlyNetwork) {
  mustExec(node(), "sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0");
  auto& a = newPod();
  auto& b = newPod();
  const json conf = pluginConf("40-ipv6-only.conflist");
  const json ra = add(a, "cid-a", conf);
  add(b, "cid-b", conf);
  ASSERT_EQ(ra.at("ips").size(), 1u) << ra.dump();
  EXPECT_EQ(ra["ips"][0].at("address"), "fd00:10:244:4::2/64");
  EXPECT_EQ(ra.at("routes"), json::parse(R"([{"dst":"::/0","gw":"fd00:10:244:4::1"}])"));
  EXPECT_THAT(globalAddrs(a, "eth0"), ElementsAre("fd00:10:244:4::2/64"));
  EXPECT_THAT(routes(a, false), IsEmpty());
  EXPECT_TRUE(ping(a, "fd00:10:244:4::3"));
  EXPECT_TRUE(ping(node(), "fd00:10:244:4::2"));
  EXPECT_THAT(tentativeAddrs(a), IsEmpty());
  EXPECT_THAT(tentativeAddrs(node()), IsEmpty());
  const std::string host = ra["interfaces"][0]["name"];
  EXPECT_THAT(globalAddrs(node(), host), ElementsAre("fd00:10:244:4::1/128"));
  EXPECT_EQ(sysctl(node(), "net/ipv4/ip_forward"), "0");
  EXPECT_EQ(sysctl(node(), "net/ipv6/conf/all/forwarding"), "1");
  EXPECT_EQ(del(a.path(), "cid-a", conf).exitCode, 0);
  EXPECT_EQ(del(b.path(), "cid-b", conf).exitCode, 0);
  EXPECT_THAT(allocations("ipv6-only"), IsEmpty());
  EXPECT_THAT(nodeVeths(), IsEmpty());
}

// ---- MTU ----

TEST_F(PluginAdd, MtuOptionOnBothEnds) {
  auto& pod = newPod();
  json conf = pluginConf("10-dualstack.conflist", "1.1.0");
  conf["mtu"] = 1400;
  const json r = add(pod, "cid-mtu", conf);
  EXPECT_EQ(r["interfaces"][1].at("mtu"), 1400);
  EXPECT_EQ(link(pod, "eth0").at("mtu"), 1400);
  EXPECT_EQ(link(node(), r["interfaces"][0]["name"]).at("mtu"), 1400);
  // The path really carries 1400-byte packets (1372 + 8 ICMP + 20 IPv4), not one byte more.
  EXPECT_EQ(node().exec("ping -c1 -W1 -M do -s 1372 10.244.1.2"), 0);
  EXPECT_NE(node().exec("ping -c1 -W1 -M do -s 1373 10.244.1.2"), 0);
}

TEST_F(PluginAdd, MtuOf1280IsAccepted) {
  auto& pod = newPod();
  json conf = pluginConf("40-ipv6-only.conflist", "1.1.0");
  conf["mtu"] = 1280;
  const json r = add(pod, "cid-mtu", conf);
  EXPECT_EQ(r["interfaces"][1].at("mtu"), 1280);
  EXPECT_EQ(link(pod, "eth0").at("mtu"), 1280);
  EXPECT_TRUE(ping(node(), "fd00:10:244:4::2"));
}

TEST_F(PluginAdd, DefaultMtuFollowsTheNodesDefaultRouteDevice) {
  addStubDevice(node(), "uplink0", 9000);
  mustExec(node(), "ip addr add 192.0.2.10/24 dev uplink0 && ip route add default via 192.0.2.1");
  auto& pod = newPod();
  const json conf = pluginConf("20-dualstack-ipv6-primary.conflist", "1.1.0");
  ASSERT_FALSE(conf.contains("mtu"));
  const json r = add(pod, "cid-mtu", conf);
  EXPECT_EQ(r["interfaces"][1].at("mtu"), 9000);
  EXPECT_EQ(link(pod, "eth0").at("mtu"), 9000);
  EXPECT_EQ(link(node(), r["interfaces"][0]["name"]).at("mtu"), 9000);
  EXPECT_TRUE(ping(node(), "10.244.2.2"));
}

TEST_F(PluginAdd, DefaultMtuWithoutDefaultRouteIs1500) {
  // A device with a big MTU that is not the default-route device must not be picked.
  addStubDevice(node(), "other0", 9000);
  mustExec(node(), "ip addr add 192.0.2.10/24 dev other0");
  auto& pod = newPod();
  const json conf = pluginConf("30-ipv4-only.conflist", "1.1.0");
  const json r = add(pod, "cid-mtu", conf);
  EXPECT_EQ(r["interfaces"][1].at("mtu"), 1500);
  EXPECT_EQ(link(pod, "eth0").at("mtu"), 1500);
}

// ---- several networks in one pod, requested MAC ----

TEST_F(PluginAdd, SecondNetworkInThePodKeepsTheFirstDefaultRoute) {
  auto& pod = newPod();
  const json first = pluginConf("10-dualstack.conflist");
  const json second = pluginConf("30-ipv4-only.conflist");
  const json r0 = add(pod, "cid-multi", first, "eth0");
  const json r1 = add(pod, "cid-multi", second, "net1");
  // net1 gets its own subnet; the default route stays with eth0 and is not claimed by net1.
  EXPECT_THAT(globalAddrs(pod, "net1"), ElementsAre("10.244.3.2/24"));
  EXPECT_EQ(r1.value("routes", json::array()), json::array()) << r1.dump();
  EXPECT_EQ(routes(pod, false),
            (std::set<std::string>{
                "default via 10.244.1.1 dev eth0", "10.244.1.0/24 via 10.244.1.1 dev eth0",
                "10.244.1.1 dev eth0 scope link", "10.244.3.0/24 via 10.244.3.1 dev net1",
                "10.244.3.1 dev net1 scope link"}));
  EXPECT_TRUE(ping(node(), "10.244.3.2"));
  EXPECT_TRUE(ping(node(), "10.244.1.2"));
  EXPECT_EQ(check(pod, "cid-multi", second, r1, "net1").exitCode, 0);
  EXPECT_EQ(check(pod, "cid-multi", first, r0, "eth0").exitCode, 0);
  EXPECT_EQ(del(pod.path(), "cid-multi", second, "net1").exitCode, 0);
  EXPECT_THAT(linkNames(pod), UnorderedElementsAre("lo", "eth0"));
  EXPECT_TRUE(ping(node(), "fd00:10:244:1::2"));
  EXPECT_THAT(allocations("ipv4-only"), IsEmpty());
  EXPECT_EQ(allocations("dualstack").size(), 2u);
}

TEST_F(PluginAdd, RequestedMacFromCniArgs) {
  auto& pod = newPod();
  const json conf = pluginConf("10-dualstack.conflist");
  const RunResult r = run(testing::cniEnv("ADD", "cid-mac", pod.path(), "eth0",
                                          "IgnoreUnknown=1;K8S_POD_NAME=x;MAC=0e:00:00:ab:cd:ef"),
                          conf);
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_EQ(r.json()["interfaces"][1].at("mac"), "0e:00:00:ab:cd:ef");
  EXPECT_EQ(link(pod, "eth0").at("address"), "0e:00:00:ab:cd:ef");
  EXPECT_TRUE(ping(node(), "fd00:10:244:1::2"));
}

TEST_F(PluginAdd, RequestedMacThatIsMulticastIsRejectedBeforeAnything) {
  auto& pod = newPod();
  json conf = pluginConf("10-dualstack.conflist");
  conf["runtimeConfig"]["mac"] = "01:00:5e:00:00:01";
  const RunResult r = tryAdd(pod, "cid-mac", conf);
  EXPECT_EQ(errorOf(r).value("code", 0), 7) << describe(r);
  EXPECT_THAT(nodeVeths(), IsEmpty());
  EXPECT_THAT(linkNames(pod), ElementsAre("lo"));
  EXPECT_THAT(testing::snapshotTree(dataDir()), IsEmpty());
}

// ---- the reference host-local as IPAM ----

TEST_F(PluginAdd, ReferenceHostLocalAsIpam) {
  if (!testing::referencePluginsInstalled()) {
    GTEST_SKIP()
        << "SKIPPED: /usr/lib/cni/host-local is not installed (containernetworking-plugins)";
  }
  auto& a = newPod();
  auto& b = newPod();
  const json conf = json::parse(R"({
    "cniVersion": "1.0.0", "name": "hl-net", "type": "dualstack",
    "ipam": {"type": "host-local",
             "ranges": [[{"subnet": "10.244.7.0/24"}], [{"subnet": "fd00:10:244:7::/64"}]]}})");
  json c = conf;
  c["ipam"]["dataDir"] = dataDir();
  const json ra = add(a, "cid-a", c);
  const json rb = add(b, "cid-b", c);
  ASSERT_EQ(ra.at("ips").size(), 2u) << ra.dump();
  EXPECT_EQ(ra["ips"][0].at("address"), "10.244.7.2/24");
  EXPECT_EQ(ra["ips"][0].at("gateway"), "10.244.7.1");
  EXPECT_EQ(ra["ips"][1].at("address"), "fd00:10:244:7::2/64");
  EXPECT_EQ(ra["ips"][1].at("gateway"), "fd00:10:244:7::1");
  EXPECT_EQ(ra["ips"][0].at("interface"), 1);
  EXPECT_THAT(globalAddrs(a, "eth0"), UnorderedElementsAre("10.244.7.2/24", "fd00:10:244:7::2/64"));
  EXPECT_TRUE(ping(a, resultAddr(rb, false)));
  EXPECT_TRUE(ping(a, resultAddr(rb, true)));
  EXPECT_TRUE(ping(node(), "10.244.7.2"));
  EXPECT_TRUE(ping(node(), "fd00:10:244:7::2"));
  EXPECT_EQ(allocations("hl-net").at("10.244.7.2"), owner("cid-a"));
  EXPECT_EQ(allocations("hl-net").at("fd00:10:244:7::2"), owner("cid-a"));
  const RunResult ck = check(a, "cid-a", c, ra);
  EXPECT_EQ(ck.exitCode, 0) << describe(ck);
  EXPECT_EQ(del(a.path(), "cid-a", c).exitCode, 0);
  EXPECT_EQ(del(b.path(), "cid-b", c).exitCode, 0);
  EXPECT_THAT(allocations("hl-net"), IsEmpty());
  EXPECT_THAT(nodeVeths(), IsEmpty());
}

}  // namespace
}  // namespace dualstack::plugintest
