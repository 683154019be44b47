// With Debian's reference plugins (containernetworking-plugins v1.1.1, CNI <= 1.0.0): portmap
// chained after dualstack, and the reference bridge delegating to dualstack-ipam.
#include <gmock/gmock.h>

#include "plugin_fixture.hpp"

namespace dualstack::plugintest {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

class PluginChain : public PluginTest {
 protected:
  void SetUp() override {
    PluginTest::SetUp();
    if (IsSkipped()) return;
    if (!testing::referencePluginsInstalled()) {
      GTEST_SKIP() << "SKIPPED: the reference plugins are not installed in /usr/lib/cni "
                      "(apt-get install containernetworking-plugins)";
    }
  }
  static bool haveBusybox() { return testing::shell("command -v busybox >/dev/null") == 0; }

  // A one-shot TCP server on `port` inside pod that answers `reply` (gone after one connection
  // or 5 s, whichever comes first, also when the test fails).
  static void serveOnce(const TestNetns& pod, int port, const std::string& reply) {
    mustExec(pod, "(timeout 5 busybox nc -l -p " + std::to_string(port) + " -e /bin/echo " + reply +
                      " >/dev/null 2>&1 &)");
  }
  // Connects from ns to addr:port and returns what the server said; retries for up to ~2 s while
  // the server is starting.
  static std::string fetch(const TestNetns& ns, const std::string& addr, int port) {
    std::string out;
    ns.exec("for i in $(seq 40); do out=$(busybox nc -w 1 " + addr + " " + std::to_string(port) +
                " </dev/null 2>/dev/null) && [ -n \"$out\" ] && echo \"$out\" && exit 0; "
                "sleep 0.05; done; exit 1",
            &out);
    return out;
  }
};

TEST_F(PluginChain, PortmapChainedAfterDualstack) {
  // The node's own addresses, which the host port is reached on.
  addStubDevice(node(), "uplink0");
  mustExec(node(),
           "ip addr add 192.0.2.10/24 dev uplink0 && "
           "ip addr add 2001:db8::10/64 dev uplink0 nodad");
  auto& pod = newPod();
  // Unique on the machine: the machine's own ruleset is searched for it below.
  const std::string cid = testing::uniqueName("portmap");
  const json ds = pluginConf("50-dualstack-portmap.conflist", "", 0);
  json pm = pluginConf("50-dualstack-portmap.conflist", "", 1);
  ASSERT_EQ(pm.at("type"), "portmap");
  ASSERT_EQ(pm.at("cniVersion"), "1.0.0");

  const json r = add(pod, cid, ds);
  pm["prevResult"] = r;
  pm["runtimeConfig"]["portMappings"] =
      json::parse(R"([{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}])");
  const RunResult pr = run("ADD", pod.path(), cid, pm, "eth0", "/usr/lib/cni/portmap");
  ASSERT_EQ(pr.exitCode, 0) << describe(pr);
  // portmap understood our result and passed it on unchanged.
  EXPECT_EQ(pr.json(), r);

  // portmap v1.1.1 writes iptables rules (Debian's iptables is the nf_tables variant; its IPv6
  // DNAT is an xtables target `nft` cannot print, so read them back with iptables-save).
  const std::string rules4 = mustExec(node(), "iptables-save");
  const std::string rules6 = mustExec(node(), "ip6tables-save");
  EXPECT_THAT(rules4, HasSubstr("--dport 18080 -j DNAT --to-destination 10.244.5.2:80"));
  EXPECT_THAT(rules6, HasSubstr("--dport 18080 -j DNAT --to-destination [fd00:10:244:5::2]:80"));
  EXPECT_THAT(rules4, HasSubstr("id: \\\"" + cid + "\\\""));
  EXPECT_THAT(rules6, HasSubstr("id: \\\"" + cid + "\\\""));
  // ... inside the node namespace only.
  std::string machine4, machine6;
  testing::shell("iptables-save 2>/dev/null", &machine4);
  testing::shell("ip6tables-save 2>/dev/null", &machine6);
  EXPECT_THAT(machine4, Not(HasSubstr(cid)));
  EXPECT_THAT(machine6, Not(HasSubstr(cid)));

  if (haveBusybox()) {
    serveOnce(pod, 80, "via-portmap-4");
    EXPECT_EQ(fetch(node(), "192.0.2.10", 18080), "via-portmap-4\n");
    serveOnce(pod, 80, "via-portmap-6");
    EXPECT_EQ(fetch(node(), "2001:db8::10", 18080), "via-portmap-6\n");
  }

  // DEL in reverse order, both with the final result as prevResult.
  const RunResult pd = run("DEL", pod.path(), cid, pm, "eth0", "/usr/lib/cni/portmap");
  EXPECT_EQ(pd.exitCode, 0) << describe(pd);
  const std::string after4 = mustExec(node(), "iptables-save");
  const std::string after6 = mustExec(node(), "ip6tables-save");
  EXPECT_THAT(after4, Not(HasSubstr("10.244.5.2")));
  EXPECT_THAT(after6, Not(HasSubstr("fd00:10:244:5::2")));
  EXPECT_THAT(after4 + after6, Not(HasSubstr(cid)));
  json dsDel = ds;
  dsDel["prevResult"] = r;
  const RunResult dd = del(pod.path(), cid, dsDel);
  EXPECT_EQ(dd.exitCode, 0) << describe(dd);
  EXPECT_THAT(nodeVeths(), IsEmpty());
  EXPECT_THAT(allocations("dualstack-portmap"), IsEmpty());
}

TEST_F(PluginChain, ReferenceBridgeDelegatingToDualstackIpam) {
  // The bridge plugin puts the gateways on its bridge device, which would run duplicate-address
  // detection (~1-2 s "tentative"); that is the reference bridge's behaviour, not the IPAM's, so
  // the node namespace turns DAD off for new devices.
  mustExec(node(), "sysctl -qw net.ipv6.conf.default.accept_dad=0");
  json conf = json::parse(R"({
    "cniVersion": "1.0.0", "name": "brnet", "type": "bridge", "bridge": "dsbr0", "isGateway": true,
    "ipam": {"type": "dualstack-ipam",
             "node": {"podCIDRs": ["10.250.0.0/24", "fd00:250::/64"],
                      "addresses": [{"type": "InternalIP", "address": "fd00:192:168::5"},
                                    {"type": "InternalIP", "address": "192.168.0.5"}]}}})");
  conf["ipam"]["dataDir"] = dataDir();
  const std::string bridge = "/usr/lib/cni/bridge";
  auto& a = newPod();
  auto& b = newPod();
  const RunResult ar = run("ADD", a.path(), "cid-a", conf, "eth0", bridge);
  ASSERT_EQ(ar.exitCode, 0) << describe(ar);
  const RunResult br = run("ADD", b.path(), "cid-b", conf, "eth0", bridge);
  ASSERT_EQ(br.exitCode, 0) << describe(br);
  const json ra = ar.json();

  // Node order: the node's first InternalIP is IPv6.
  ASSERT_EQ(ra.at("ips").size(), 2u) << ra.dump();
  EXPECT_EQ(ra["ips"][0].at("address"), "fd00:250::2/64");
  EXPECT_EQ(ra["ips"][0].at("gateway"), "fd00:250::1");
  EXPECT_EQ(ra["ips"][1].at("address"), "10.250.0.2/24");
  EXPECT_EQ(ra["ips"][1].at("gateway"), "10.250.0.1");
  const json& ctr = ra.at("interfaces").at(ra["ips"][0].at("interface").get<std::size_t>());
  EXPECT_EQ(ctr.at("name"), "eth0");
  EXPECT_EQ(ctr.at("sandbox"), a.path());

  EXPECT_THAT(globalAddrs(a, "eth0"), UnorderedElementsAre("fd00:250::2/64", "10.250.0.2/24"));
  EXPECT_THAT(globalAddrs(node(), "dsbr0"),
              UnorderedElementsAre("fd00:250::1/64", "10.250.0.1/24"));
  EXPECT_TRUE(ping(a, "10.250.0.1")) << "pod -> bridge gateway, IPv4";
  EXPECT_TRUE(ping(a, "fd00:250::1")) << "pod -> bridge gateway, IPv6";
  EXPECT_TRUE(ping(a, "10.250.0.3")) << "pod -> pod, IPv4";
  EXPECT_TRUE(ping(a, "fd00:250::3")) << "pod -> pod, IPv6";
  EXPECT_EQ(allocations("brnet"),
            (std::map<std::string, std::string>{{"10.250.0.2", owner("cid-a")},
                                                {"10.250.0.3", owner("cid-b")},
                                                {"fd00:250::2", owner("cid-a")},
                                                {"fd00:250::3", owner("cid-b")}}));

  for (const auto& [pod, cid] : {std::pair{&a, "cid-a"}, std::pair{&b, "cid-b"}}) {
    const RunResult d = run("DEL", pod->path(), cid, conf, "eth0", bridge);
    EXPECT_EQ(d.exitCode, 0) << describe(d);
    EXPECT_THAT(linkNames(*pod), ElementsAre("lo"));
  }
  EXPECT_THAT(allocations("brnet"), IsEmpty());
}

}  // namespace
}  // namespace dualstack::plugintest
