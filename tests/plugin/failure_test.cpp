// ADD that fails: bad input is rejected before anything changes, a failure half way through is
// rolled back completely, and a second ADD of a live attachment never hurts the first.
#include <sys/stat.h>

#include <gmock/gmock.h>

#include "plugin_fixture.hpp"

namespace dualstack::plugintest {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class PluginAddFailure : public PluginTest {
 protected:
  // The whole observable state: the node's links, routes and the store, and the pod's links.
  struct State {
    std::set<std::string> nodeLinks, nodeRoutes4, nodeRoutes6, podLinks;
    std::map<std::string, std::string> store;
    bool operator==(const State&) const = default;
  };
  State state(const TestNetns& pod) {
    return {linkNames(node()), routes(node(), false), routes(node(), true), linkNames(pod),
            testing::snapshotTree(dataDir())};
  }
  static std::string show(const State& s) {
    std::string out = "node links:";
    for (const auto& l : s.nodeLinks) out += " " + l;
    out += "; node routes:";
    for (const auto& r : s.nodeRoutes4) out += " [" + r + "]";
    for (const auto& r : s.nodeRoutes6) out += " [" + r + "]";
    out += "; pod links:";
    for (const auto& l : s.podLinks) out += " " + l;
    out += "; store:";
    for (const auto& [f, c] : s.store) out += " " + f;
    return out;
  }

  // Runs ADD expecting `code` with `msgPart` in the message, and no change at all.
  void expectRejected(const TestNetns& pod, const EnvMap& env, const json& conf, int code,
                      const std::string& msgPart) {
    const State before = state(pod);
    const RunResult r = run(env, conf);
    const json e = errorOf(r);
    EXPECT_EQ(e.value("code", 0), code) << describe(r);
    EXPECT_THAT(e.value("msg", ""), HasSubstr(msgPart)) << describe(r);
    const State after = state(pod);
    EXPECT_TRUE(before == after) << "before: " << show(before) << "\nafter:  " << show(after);
  }
};

// ---- a second ADD of a live attachment ----

TEST_F(PluginAddFailure, SecondAddOfTheSameAttachmentFailsAndKeepsTheFirst) {
  auto& pod = newPod();
  const json conf = pluginConf("10-dualstack.conflist");
  const json first = add(pod, "cid-twice", conf);
  const auto store = allocations("dualstack");
  ASSERT_EQ(store.size(), 2u);

  const RunResult r = tryAdd(pod, "cid-twice", conf);
  const json e = errorOf(r);
  EXPECT_EQ(e.value("code", 0), 102) << describe(r);
  EXPECT_THAT(e.value("msg", ""), HasSubstr("already has an interface named eth0"));

  // The first ADD's addresses are still allocated and still work.
  EXPECT_EQ(allocations("dualstack"), store);
  EXPECT_THAT(nodeVeths(), ElementsAre(first["interfaces"][0]["name"].get<std::string>()));
  EXPECT_EQ(link(pod, "eth0").at("address"), first["interfaces"][1]["mac"]);
  EXPECT_TRUE(ping(node(), "10.244.1.2"));
  EXPECT_TRUE(ping(node(), "fd00:10:244:1::2"));
  EXPECT_TRUE(ping(pod, "fd00:10:244:1::1"));
  EXPECT_EQ(check(pod, "cid-twice", conf, first).exitCode, 0);
}

// ---- failures half way through ADD: everything is undone ----

TEST_F(PluginAddFailure, PodRouteViaAnUnreachableGatewayRollsBackEverything) {
  auto& pod = newPod();
  auto& other = newPod();
  json conf = pluginConf("10-dualstack.conflist");
  // The IPv6 routes come last: by then the veth, both addresses and the IPv4 routes exist.
  conf["ipam"]["routes"] = json::parse(R"([{"dst": "fd00:99::/64", "gw": "fd00:98::1"}])");
  // A pod that is fine before and after: the rollback must not touch it.
  const json good = add(other, "cid-other", pluginConf("10-dualstack.conflist"));
  const auto storeBefore = allocations("dualstack");

  const RunResult r = tryAdd(pod, "cid-half", conf);
  const json e = errorOf(r);
  EXPECT_THAT(e.value("msg", ""), HasSubstr("fd00:99::/64")) << describe(r);

  EXPECT_THAT(nodeVeths(), ElementsAre(good["interfaces"][0]["name"].get<std::string>()));
  EXPECT_THAT(linkNames(pod), ElementsAre("lo"));
  EXPECT_THAT(routes(pod, false), IsEmpty());
  EXPECT_THAT(routes(pod, true), IsEmpty());
  EXPECT_EQ(allocations("dualstack"), storeBefore);
  EXPECT_EQ(
      routes(node(), false),
      (std::set<std::string>{"10.244.1.2 dev " + good["interfaces"][0]["name"].get<std::string>() +
                             " scope link"}));
  EXPECT_TRUE(ping(other, "10.244.1.1"));
  EXPECT_TRUE(ping(node(), "fd00:10:244:1::2"));
}

TEST_F(PluginAddFailure, Ipv4PodRouteViaAnUnreachableGatewayRollsBack) {
  auto& pod = newPod();
  json conf = pluginConf("30-ipv4-only.conflist");
  conf["ipam"]["routes"] = json::parse(R"([{"dst": "192.168.0.0/16", "gw": "10.99.0.1"}])");
  const RunResult r = tryAdd(pod, "cid-half", conf);
  const json e = errorOf(r);
  EXPECT_THAT(e.value("msg", ""), HasSubstr("192.168.0.0/16")) << describe(r);
  EXPECT_THAT(nodeVeths(), IsEmpty());
  EXPECT_THAT(linkNames(pod), ElementsAre("lo"));
  EXPECT_THAT(allocations("ipv4-only"), IsEmpty());
}

TEST_F(PluginAddFailure, ConflictingNodeRouteRollsBackAndIsLeftAlone) {
  // Someone else already routes the address the pod will get (first in a fresh store).
  addStubDevice(node(), "blocker0");
  mustExec(node(), "ip route add 10.244.1.2/32 dev blocker0");
  auto& pod = newPod();
  const json conf = pluginConf("10-dualstack.conflist");
  const RunResult r = tryAdd(pod, "cid-half", conf);
  const json e = errorOf(r);
  EXPECT_THAT(e.value("msg", ""), HasSubstr("10.244.1.2")) << describe(r);

  EXPECT_THAT(nodeVeths(), IsEmpty());
  EXPECT_THAT(linkNames(pod), ElementsAre("lo"));
  EXPECT_THAT(allocations("dualstack"), IsEmpty());
  // The foreign route is untouched; nothing of ours is left in either family.
  EXPECT_EQ(routes(node(), false), (std::set<std::string>{"10.244.1.2 dev blocker0 scope link"}));
  EXPECT_THAT(routes(node(), true), IsEmpty());

  // Once the conflict is gone, the same attachment comes up.
  mustExec(node(), "ip route del 10.244.1.2/32 dev blocker0");
  const json ok = add(pod, "cid-half", conf);
  EXPECT_TRUE(ping(node(), resultAddr(ok, false)));
  EXPECT_TRUE(ping(node(), resultAddr(ok, true)));
}

TEST_F(PluginAddFailure, IpamResultThatIsNotUtf8IsReleased) {
  // An IPAM plugin that allocates (the real one does the work) but prints a result JSON cannot
  // hold: a string with a byte that is not UTF-8. Its exit status is 0, so it holds addresses.
  TempDir bin;
  const std::string fake = bin.file("utf8-ipam");
  {
    std::ofstream f(fake);
    f << "#!/bin/sh\n"
      << "[ \"$CNI_COMMAND\" = ADD ] || exec " << testing::binPath("dualstack-ipam") << "\n"
      << testing::binPath("dualstack-ipam") << " >/dev/null || exit 1\n"
      << "printf '{\"cniVersion\": \"1.0.0\", \"ips\": [{\"address\": \"10.244.1.2/24\"}], "
         "\"dns\": {\"domain\": \"pod\\377\"}}\\n'\n";
  }
  ASSERT_EQ(::chmod(fake.c_str(), 0755), 0);
  auto& pod = newPod();
  json conf = pluginConf("10-dualstack.conflist");
  conf["ipam"]["type"] = "utf8-ipam";
  EnvMap env = testing::cniEnv("ADD", "cid-utf8", pod.path());
  env["CNI_PATH"] = bin.path() + ":" + testing::cniPath();

  const RunResult r = run(env, conf);
  const json e = errorOf(r);
  EXPECT_EQ(e.value("code", 0), 6) << describe(r);
  EXPECT_THAT(e.value("msg", ""), HasSubstr("the output of plugin utf8-ipam is not valid JSON"));
  EXPECT_THAT(allocations("dualstack"), IsEmpty()) << describe(r);
  EXPECT_THAT(nodeVeths(), IsEmpty());
  EXPECT_THAT(linkNames(pod), ElementsAre("lo"));
}

// ---- bad input: rejected, nothing changed ----

TEST_F(PluginAddFailure, InterfaceAlreadyInThePod) {
  auto& pod = newPod();
  addStubDevice(pod, "eth0");
  const json conf = pluginConf("10-dualstack.conflist");
  expectRejected(pod, testing::cniEnv("ADD", "cid-bad", pod.path()), conf, 102,
                 "already has an interface named eth0");
  EXPECT_NE(link(pod, "eth0").at("linkinfo").at("info_kind"), "veth");
}

TEST_F(PluginAddFailure, NetnsThatIsNotANetns) {
  auto& pod = newPod();
  TempDir tmp;
  mustShell("touch " + tmp.file("not-a-netns"));
  expectRejected(pod, testing::cniEnv("ADD", "cid-bad", tmp.file("not-a-netns")),
                 pluginConf("10-dualstack.conflist"), 4, "not a network namespace");
}

TEST_F(PluginAddFailure, NetnsThatDoesNotExist) {
  auto& pod = newPod();
  const std::string missing = "/run/netns/" + testing::uniqueName("missing");
  expectRejected(pod, testing::cniEnv("ADD", "cid-bad", missing),
                 pluginConf("10-dualstack.conflist"), 3, missing);
}

TEST_F(PluginAddFailure, NetnsThatIsTheNodesOwn) {
  auto& pod = newPod();
  expectRejected(pod, testing::cniEnv("ADD", "cid-bad", node().path()),
                 pluginConf("10-dualstack.conflist"), 4, "the plugin's own network namespace");
}

TEST_F(PluginAddFailure, NetnsUnset) {
  auto& pod = newPod();
  EnvMap env = testing::cniEnv("ADD", "cid-bad", pod.path());
  env.erase("CNI_NETNS");
  expectRejected(pod, env, pluginConf("10-dualstack.conflist"), 4, "CNI_NETNS");
}

TEST_F(PluginAddFailure, IpamTypeThatIsAPath) {
  auto& pod = newPod();
  for (const char* type : {"/usr/lib/cni/host-local", "../dualstack-ipam"}) {
    json conf = pluginConf("10-dualstack.conflist");
    conf["ipam"]["type"] = type;
    expectRejected(pod, testing::cniEnv("ADD", "cid-bad", pod.path()), conf, 7, "ipam.type");
  }
}

TEST_F(PluginAddFailure, MtuBelow1280) {
  auto& pod = newPod();
  json conf = pluginConf("10-dualstack.conflist");
  conf["mtu"] = 1279;
  expectRejected(pod, testing::cniEnv("ADD", "cid-bad", pod.path()), conf, 7, "1280");
}

TEST_F(PluginAddFailure, IpamPluginNotOnCniPath) {
  auto& pod = newPod();
  json conf = pluginConf("10-dualstack.conflist");
  conf["ipam"]["type"] = "no-such-ipam";
  const RunResult r = tryAdd(pod, "cid-bad", conf);
  EXPECT_THAT(errorOf(r).value("msg", ""), HasSubstr("no-such-ipam")) << describe(r);
  EXPECT_THAT(nodeVeths(), IsEmpty());
  EXPECT_THAT(linkNames(pod), ElementsAre("lo"));
}

}  // namespace
}  // namespace dualstack::plugintest
