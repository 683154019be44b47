// DEL, GC and STATUS of the dualstack binary: DEL is idempotent and never needs the pod's
// namespace; GC removes what the runtime no longer knows and keeps the rest.
#include <gmock/gmock.h>

#include "dualstack/plugin/hostveth.hpp"
#include "plugin_fixture.hpp"

namespace dualstack::plugintest {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

using PluginDel = PluginTest;

TEST_F(PluginDel, RepeatedDelSucceeds) {
  auto& pod = newPod();
  const json conf = pluginConf("10-dualstack.conflist");
  const json r = add(pod, "cid-del", conf);
  ASSERT_THAT(nodeVeths(), ElementsAre(r["interfaces"][0]["name"].get<std::string>()));
  for (int i = 0; i < 3; ++i) {
    const RunResult d = del(pod.path(), "cid-del", conf);
    EXPECT_EQ(d.exitCode, 0) << "DEL #" << i + 1 << ": " << describe(d);
    EXPECT_EQ(d.out, "");
  }
  EXPECT_THAT(nodeVeths(), IsEmpty());
  EXPECT_THAT(linkNames(pod), ElementsAre("lo"));
  EXPECT_THAT(allocations("dualstack"), IsEmpty());
  EXPECT_THAT(routes(node(), false), IsEmpty());
  EXPECT_THAT(routes(node(), true), IsEmpty());
}

// An ADD killed between creating the veth and setting its alias leaves the node end under our
// hashed name with no alias; DEL must still remove it, or every later ADD of that pod fails.
TEST_F(PluginDel, DelRemovesAVethWhoseAddWasKilledBeforeTheAlias) {
  auto& pod = newPod();
  const json conf = pluginConf("10-dualstack.conflist");
  const std::string name =
      plugin::hostVethName(conf["name"].get<std::string>(), {"cid-k", "eth0"}, 0);
  ASSERT_EQ(testing::shell("ip -n " + node().name() + " link add " + name +
                           " type veth peer name eth0 netns " + pod.name()),
            0);
  ASSERT_THAT(nodeVeths(), ElementsAre(name));
  const RunResult d = del(pod.path(), "cid-k", conf);
  EXPECT_EQ(d.exitCode, 0) << describe(d);
  EXPECT_THAT(nodeVeths(), IsEmpty());
  EXPECT_THAT(linkNames(pod), ElementsAre("lo"));
  add(pod, "cid-k", conf);  // and the pod can be attached again
  EXPECT_THAT(nodeVeths(), ElementsAre(name));
}

TEST_F(PluginDel, DelWithEmptyNetns) {
  auto& pod = newPod();
  const json conf = pluginConf("10-dualstack.conflist");
  add(pod, "cid-del", conf);
  const RunResult d = del("", "cid-del", conf);
  EXPECT_EQ(d.exitCode, 0) << describe(d);
  EXPECT_THAT(nodeVeths(), IsEmpty());
  // The pod end went with the node end.
  EXPECT_THAT(linkNames(pod), ElementsAre("lo"));
  EXPECT_THAT(allocations("dualstack"), IsEmpty());
}

TEST_F(PluginDel, DelAfterThePodNetnsWasDeleted) {
  auto& pod = newPod();
  const std::string path = pod.path();
  const json conf = pluginConf("10-dualstack.conflist");
  add(pod, "cid-del", conf);
  ASSERT_EQ(allocations("dualstack").size(), 2u);
  pod.remove();
  const RunResult d = del(path, "cid-del", conf);
  EXPECT_EQ(d.exitCode, 0) << describe(d);
  EXPECT_THAT(nodeVeths(), IsEmpty());
  EXPECT_THAT(allocations("dualstack"), IsEmpty());
  // And again with the netns gone and empty CNI_NETNS, as containerd sends it.
  EXPECT_EQ(del("", "cid-del", conf).exitCode, 0);
}

TEST_F(PluginDel, DelOfAnAttachmentNeverAddedSucceedsAndKeepsOthers) {
  auto& pod = newPod();
  const json conf = pluginConf("30-ipv4-only.conflist");
  const json r = add(pod, "cid-kept", conf);
  const RunResult d = del("", "cid-unknown", conf);
  EXPECT_EQ(d.exitCode, 0) << describe(d);
  EXPECT_THAT(nodeVeths(), ElementsAre(r["interfaces"][0]["name"].get<std::string>()));
  EXPECT_EQ(allocations("ipv4-only"),
            (std::map<std::string, std::string>{{"10.244.3.2", owner("cid-kept")}}));
  EXPECT_TRUE(ping(node(), "10.244.3.2"));
}

// ---- GC (CNI 1.1.0) ----

TEST_F(PluginDel, GcRemovesWhatIsNotValidAndKeepsTheRest) {
  const json conf = pluginConf("10-dualstack.conflist", "1.1.0");
  auto& a = newPod();
  auto& b = newPod();
  auto& c = newPod();
  const json ra = add(a, "cid-a", conf);
  const json rb = add(b, "cid-b", conf);
  const json rc = add(c, "cid-c", conf);
  const std::string hostA = ra["interfaces"][0]["name"], hostB = rb["interfaces"][0]["name"],
                    hostC = rc["interfaces"][0]["name"];
  ASSERT_THAT(nodeVeths(), UnorderedElementsAre(hostA, hostB, hostC));
  // A link of somebody else that looks like ours must survive GC.
  mustExec(node(), "ip link add dsforeign0 type veth peer name dsforeign1");

  json gc = conf;
  gc["cni.dev/valid-attachments"] = json::parse(
      R"([{"containerID":"cid-a","ifname":"eth0"},{"containerID":"cid-c","ifname":"eth0"}])");
  const RunResult r = runNetworkVerb("GC", gc);
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_EQ(r.out, "");

  EXPECT_THAT(nodeVeths(), UnorderedElementsAre(hostA, hostC, "dsforeign0", "dsforeign1"));
  EXPECT_THAT(linkNames(b), ElementsAre("lo"));
  EXPECT_EQ(allocations("dualstack"),
            (std::map<std::string, std::string>{{"10.244.1.2", owner("cid-a")},
                                                {"10.244.1.4", owner("cid-c")},
                                                {"fd00:10:244:1::2", owner("cid-a")},
                                                {"fd00:10:244:1::4", owner("cid-c")}}));
  EXPECT_TRUE(ping(a, "10.244.1.4"));
  EXPECT_TRUE(ping(c, "fd00:10:244:1::2"));
  EXPECT_EQ(check(a, "cid-a", conf, ra).exitCode, 0);
}

TEST_F(PluginDel, GcWithTheOldKeyAndAnEmptyListReleasesEverything) {
  const json conf = pluginConf("30-ipv4-only.conflist", "1.1.0");
  auto& a = newPod();
  auto& b = newPod();
  add(a, "cid-a", conf);
  add(b, "cid-b", conf);
  json gc = conf;
  gc["cni.dev/attachments"] = json::array();  // libcni before 1.2
  const RunResult r = runNetworkVerb("GC", gc);
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_THAT(nodeVeths(), IsEmpty());
  EXPECT_THAT(allocations("ipv4-only"), IsEmpty());
}

TEST_F(PluginDel, GcLeavesOtherNetworksAlone) {
  const json v4 = pluginConf("30-ipv4-only.conflist", "1.1.0");
  const json v6 = pluginConf("40-ipv6-only.conflist", "1.1.0");
  auto& a = newPod();
  auto& b = newPod();
  add(a, "cid-a", v4);
  const json rb = add(b, "cid-b", v6);
  json gc = v4;
  gc["cni.dev/valid-attachments"] = json::array();
  EXPECT_EQ(runNetworkVerb("GC", gc).exitCode, 0);
  EXPECT_THAT(nodeVeths(), ElementsAre(rb["interfaces"][0]["name"].get<std::string>()));
  EXPECT_THAT(allocations("ipv4-only"), IsEmpty());
  EXPECT_EQ(allocations("ipv6-only"),
            (std::map<std::string, std::string>{{"fd00:10:244:4::2", owner("cid-b")}}));
}

// A veth made before its alias recorded the store ("dualstack:<network>:<ifname>:<id>") is still
// found by CHECK, DEL and GC.
TEST_F(PluginDel, VethsWithTheAliasOfEarlierVersionsAreStillFound) {
  const json conf = pluginConf("10-dualstack.conflist", "1.1.0");
  const std::string network = conf["name"];
  auto& a = newPod();
  auto& b = newPod();
  const json ra = add(a, "cid-a", conf);
  const json rb = add(b, "cid-b", conf);
  for (const auto& [r, cid] : {std::pair{ra, "cid-a"}, std::pair{rb, "cid-b"}}) {
    mustExec(node(), "ip link set dev " + r["interfaces"][0]["name"].get<std::string>() +
                         " alias " + plugin::legacyHostVethAlias(network, {cid, "eth0"}));
  }
  const RunResult ck = check(a, "cid-a", conf, ra);
  EXPECT_EQ(ck.exitCode, 0) << describe(ck);
  EXPECT_EQ(del(a.path(), "cid-a", conf).exitCode, 0);
  EXPECT_THAT(nodeVeths(), ElementsAre(rb["interfaces"][0]["name"].get<std::string>()));
  json gc = conf;
  gc["cni.dev/valid-attachments"] = json::array();
  const RunResult r = runNetworkVerb("GC", gc);
  EXPECT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_THAT(nodeVeths(), IsEmpty());
  EXPECT_THAT(allocations(network), IsEmpty());
}

// An IPAM that cannot do a GC (Debian's host-local 1.1 has none: "missing containerID") keeps
// every address: the veths stay too, rather than leaving attachments with addresses but no link.
TEST_F(PluginDel, GcRemovesNothingWhenTheIpamRefusesIt) {
  if (!testing::referencePluginsInstalled()) {
    GTEST_SKIP()
        << "SKIPPED: /usr/lib/cni/host-local is not installed (containernetworking-plugins)";
  }
  json conf = json::parse(R"({
    "cniVersion": "1.1.0", "name": "hl-net", "type": "dualstack",
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.7.0/24"}]]}})");
  conf["ipam"]["dataDir"] = dataDir();
  json addConf = conf;
  addConf["cniVersion"] = "1.0.0";
  auto& a = newPod();
  const json ra = add(a, "cid-a", addConf);
  const auto before = testing::snapshotTree(dataDir());
  json gc = conf;
  gc["cni.dev/valid-attachments"] = json::array();
  const RunResult r = runNetworkVerb("GC", gc);
  const json e = errorOf(r);
  EXPECT_THAT(e.value("msg", ""), HasSubstr("nothing removed: the IPAM plugin refused it"));
  EXPECT_THAT(nodeVeths(), ElementsAre(ra["interfaces"][0]["name"].get<std::string>()));
  EXPECT_EQ(testing::snapshotTree(dataDir()), before);
  EXPECT_EQ(del(a.path(), "cid-a", addConf).exitCode, 0);
}

TEST_F(PluginDel, GcNeedsVersion110) {
  const json conf = pluginConf("10-dualstack.conflist", "1.0.0");
  const RunResult r = runNetworkVerb("GC", conf);
  EXPECT_EQ(errorOf(r).value("code", 0), 1) << describe(r);
}

// ---- STATUS (CNI 1.1.0) ----

TEST_F(PluginDel, StatusSucceeds) {
  for (const char* file : {"10-dualstack.conflist", "20-dualstack-ipv6-primary.conflist",
                           "30-ipv4-only.conflist", "40-ipv6-only.conflist"}) {
    const RunResult r = runNetworkVerb("STATUS", pluginConf(file, "1.1.0"));
    EXPECT_EQ(r.exitCode, 0) << file << ": " << describe(r);
    EXPECT_EQ(r.out, "") << file;
  }
  // STATUS does not exist before 1.1.0.
  const RunResult old = runNetworkVerb("STATUS", pluginConf("10-dualstack.conflist", "1.0.0"));
  EXPECT_EQ(errorOf(old).value("code", 0), 1) << describe(old);
}

TEST_F(PluginDel, StatusReportsAnExhaustedRange) {
  // A /30 has one usable address besides network, gateway and broadcast.
  json conf = pluginConf("30-ipv4-only.conflist", "1.1.0");
  conf["ipam"]["node"]["podCIDRs"] = json::array({"10.244.9.0/30"});
  auto& a = newPod();
  add(a, "cid-a", conf);
  const RunResult r = runNetworkVerb("STATUS", conf);
  const json e = errorOf(r);
  EXPECT_EQ(e.value("code", 0), 50) << describe(r);
  EXPECT_THAT(e.value("msg", ""), HasSubstr("10.244.9.0/30"));
}

}  // namespace
}  // namespace dualstack::plugintest
