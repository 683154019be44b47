// Every verb that removes something — DEL and GC of `dualstack` (and through it of
// `dualstack-ipam`), `dualstack-ipam release` and `dualstack-ipam gc` — against two live pods
// added through the plugin, with a table of requests that are invalid or about something else:
// what an attacker or a buggy runtime could send. After each one both pods must keep everything:
// eth0 with both addresses, their routes, their node-side veths, the node's routes to them, their
// masquerade entries and their allocations (the store byte for byte). Then a valid GC that lists
// one pod releases exactly the other.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "dualstack/plugin/hostveth.hpp"
#include "plugin/plugin_fixture.hpp"

namespace dualstack::plugintest {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Everything of the node and both pods that a destructive verb could change.
struct World {
  std::map<std::string, std::string> store;
  std::set<std::string> nodeVeths;
  std::map<std::string, std::string> nodeAliases;
  std::set<std::string> nodeRoutes4, nodeRoutes6;
  std::string ruleset;
  std::vector<std::set<std::string>> podAddrs, podRoutes4, podRoutes6;
  bool operator==(const World&) const = default;
};

std::string diff(const World& a, const World& b) {
  std::string out;
  if (a.store != b.store) {
    out += " the store changed:";
    for (const auto& [file, content] : a.store) {
      const auto it = b.store.find(file);
      if (it == b.store.end())
        out += " " + file + " removed";
      else if (it->second != content)
        out += " " + file + " rewritten";
    }
    for (const auto& [file, content] : b.store) {
      if (a.store.count(file) == 0) out += " " + file + " added";
    }
    out += ";";
  }
  if (a.nodeVeths != b.nodeVeths || a.nodeAliases != b.nodeAliases) out += " node veths changed;";
  if (a.nodeRoutes4 != b.nodeRoutes4 || a.nodeRoutes6 != b.nodeRoutes6)
    out += " node routes changed;";
  if (a.ruleset != b.ruleset) out += " nftables changed;";
  if (a.podAddrs != b.podAddrs) out += " pod addresses changed;";
  if (a.podRoutes4 != b.podRoutes4 || a.podRoutes6 != b.podRoutes6) out += " pod routes changed;";
  return out;
}

class Destructive : public PluginTest {
 protected:
  void SetUp() override {
    PluginTest::SetUp();
    if (IsSkipped()) return;
    conf_ = withMasq(pluginConf("10-dualstack.conflist", "1.1.0"));
    network_ = conf_["name"].get<std::string>();
    pods_ = {&newPod(), &newPod()};
    results_ = {add(*pods_[0], "cid-a", conf_), add(*pods_[1], "cid-b", conf_)};
    live_ = world();
    ASSERT_EQ(live_.nodeVeths.size(), 2u);
    ASSERT_EQ(allocations(network_).size(), 4u);
    ASSERT_THAT(live_.ruleset, HasSubstr(hostVeth(0)));
    ASSERT_THAT(live_.ruleset, HasSubstr(hostVeth(1)));
  }

  World world() const {
    World w;
    w.store = testing::snapshotTree(dataDir());
    for (const auto& l : links(node(), "type veth")) {
      const std::string name = l.at("ifname");
      w.nodeVeths.insert(name);
      w.nodeAliases[name] = l.value("ifalias", "");
    }
    w.nodeRoutes4 = routes(node(), false);
    w.nodeRoutes6 = routes(node(), true);
    w.ruleset = mustExec(node(), "nft list ruleset");
    for (const auto* pod : pods_) {
      const bool attached = linkNames(*pod).count("eth0") == 1;
      w.podAddrs.push_back(attached ? globalAddrs(*pod, "eth0") : std::set<std::string>{});
      w.podRoutes4.push_back(routes(*pod, false));
      w.podRoutes6.push_back(routes(*pod, true));
    }
    return w;
  }

  std::string hostVeth(std::size_t i) const {
    return results_.at(i)["interfaces"][0]["name"].get<std::string>();
  }

  // The request must leave both pods exactly as they were.
  void expectUntouched(const std::string& what) const {
    const World now = world();
    EXPECT_TRUE(now == live_) << what << ":" << diff(live_, now);
  }

  // Runs `dualstack` in the node namespace with `env` and `conf`; `code` 0: must succeed, else
  // must fail with that CNI code.
  void expectOutcome(const std::string& what, const EnvMap& env, const json& conf, int code,
                     const std::string& msgPart = "") const {
    const RunResult r = run(env, conf);
    if (code == 0) {
      EXPECT_EQ(r.exitCode, 0) << what << ": " << describe(r);
    } else {
      const json e = errorOf(r);
      EXPECT_EQ(e.value("code", 0), code) << what << ": " << describe(r);
      EXPECT_THAT(e.value("msg", ""), HasSubstr(msgPart)) << what;
    }
    expectUntouched(what);
  }

  EnvMap delEnv(const std::string& cid, const std::string& ifname = "eth0",
                const std::string& args = "") const {
    return testing::cniEnv("DEL", cid, pods_[0]->path(), ifname, args);
  }
  static EnvMap gcEnv() { return {{"CNI_COMMAND", "GC"}, {"CNI_PATH", testing::cniPath()}}; }

  json conf_;
  std::string network_;
  std::vector<TestNetns*> pods_;
  std::vector<json> results_;
  World live_;
};

// A change to the config, and the outcome it must have: 0 (succeeds, touching nothing of the
// live pods) or the CNI error code, with a part of the message.
struct Mutation {
  std::string what;
  std::function<void(json&)> change;
  int code;
  std::string msg;
};

const json kBoth = json::parse(
    R"([{"containerID": "cid-a", "ifname": "eth0"}, {"containerID": "cid-b", "ifname": "eth0"}])");

// Sections that DEL and GC do not use themselves but ADD does: a request carrying them broken is
// as invalid as an ADD with them would be.
std::vector<Mutation> brokenSections(const std::string& otherDataDir) {
  return {
      {"bad ipam.node", [](json& c) { c["ipam"]["node"]["podCIDRs"] = {"garbage"}; }, 7,
       "ipam.node.podCIDRs[0]"},
      {"ipam.node with two IPv4 CIDRs",
       [](json& c) {
         c["ipam"]["node"]["podCIDRs"] = {"10.244.1.0/24", "10.244.2.0/24"};
       },
       7, "at most one per family"},
      {"ipam.node and ranges",
       [](json& c) {
         c["ipam"]["ranges"] = {{{{"subnet", "10.9.0.0/24"}}}};
       },
       7, "not both"},
      {"bad ipam.routes",
       [](json& c) {
         c["ipam"]["routes"] = {{{"dst", "10.0.0.1/8"}}};
       },
       7, "ipam.routes[0].dst"},
      {"relative dataDir", [](json& c) { c["ipam"]["dataDir"] = "networks"; }, 7, "ipam.dataDir"},
      {"ipam missing", [](json& c) { c.erase("ipam"); }, 7, "ipam is missing"},
      {"ipam.type a path", [](json& c) { c["ipam"]["type"] = "../dualstack-ipam"; }, 7,
       "ipam.type"},
      {"bad ipMasqExcept", [](json& c) { c["ipMasqExcept"] = {"10.0.0.1/8"}; }, 7,
       "ipMasqExcept[0]"},
      {"ipMasqExcept not CIDRs", [](json& c) { c["ipMasqExcept"] = {"pods"}; }, 7,
       "ipMasqExcept[0]"},
      {"bad mtu", [](json& c) { c["mtu"] = 100; }, 7, "mtu"},
      {"bad prevResult",
       [](json& c) {
         c["prevResult"] = {{"ips", "10.244.1.2"}};
       },
       6, "prevResult"},
      {"prevResult not an object", [](json& c) { c["prevResult"] = "x"; }, 6, "prevResult"},
      {"bad runtimeConfig.ips",
       [](json& c) {
         c["runtimeConfig"] = {{"ips", {"nope"}}};
       },
       7, "runtimeConfig.ips[0]"},
      {"bad runtimeConfig.mac",
       [](json& c) {
         c["runtimeConfig"] = {{"mac", "zz"}};
       },
       7, "runtimeConfig.mac"},
      {"runtimeConfig not an object", [](json& c) { c["runtimeConfig"] = "x"; }, 7,
       "runtimeConfig"},
      {"bad network name", [](json& c) { c["name"] = "../" + c["name"].get<std::string>(); }, 7,
       "not a valid network name"},
      {"unsupported cniVersion", [](json& c) { c["cniVersion"] = "9.9.9"; }, 1, "9.9.9"},
      {"other dataDir and broken node",
       [otherDataDir](json& c) {
         c["ipam"]["dataDir"] = otherDataDir;
         c["ipam"]["node"] = {{"file", "relative.json"}};
       },
       7, "ipam.node.file"},
  };
}

TEST_F(Destructive, DelRefusesInvalidRequestsAndLeavesOthersAlone) {
  TempDir other;
  for (const auto& m : brokenSections(other.path())) {
    json c = conf_;
    m.change(c);
    expectOutcome("DEL of cid-a with " + m.what, delEnv("cid-a"), c, m.code, m.msg);
  }
  const std::vector<std::pair<std::string, EnvMap>> badEnv = {
      {"CNI_ARGS IP= not an address", delEnv("cid-a", "eth0", "IgnoreUnknown=1;IP=nope")},
      {"CNI_ARGS MAC= not a MAC", delEnv("cid-a", "eth0", "IgnoreUnknown=1;MAC=zz")},
      {"CNI_ARGS not pairs", delEnv("cid-a", "eth0", "garbage")},
      {"container ID with a path", delEnv("../cid-a")},
      {"ifname with a slash", delEnv("cid-a", "eth0/")},
  };
  for (const auto& [what, env] : badEnv) expectOutcome("DEL with " + what, env, conf_, 4);
  EnvMap noId = delEnv("cid-a");
  noId.erase("CNI_CONTAINERID");
  expectOutcome("DEL without CNI_CONTAINERID", noId, conf_, 4, "CNI_CONTAINERID");

  // About something else: succeeds, and touches nothing of the live pods.
  const json otherNet = withMasq(conf_);  // another name, its lock file removed at the end
  json otherStore = conf_;
  otherStore["ipam"]["dataDir"] = other.path();
  json missingStore = conf_;
  missingStore["ipam"]["dataDir"] = other.file("not-there");
  json unknownKeys = conf_;
  unknownKeys["cni.dev/valid-attachment"] = json::array();
  unknownKeys["containerId"] = "cid-b";
  const std::vector<std::tuple<std::string, EnvMap, json>> foreign = {
      {"another network", delEnv("cid-a"), otherNet},
      {"another container", delEnv("cid-c"), conf_},
      {"another ifname", delEnv("cid-a", "eth1"), conf_},
      {"a container ID differing in case", delEnv("CID-A"), conf_},
      {"another dataDir", delEnv("cid-a"), otherStore},
      {"a dataDir that does not exist", delEnv("cid-a"), missingStore},
      {"unknown keys of another container", delEnv("cid-c"), unknownKeys},
  };
  for (const auto& [what, env, c] : foreign) expectOutcome("DEL of " + what, env, c, 0);
  EXPECT_FALSE(fs::exists(other.file("not-there")));
  EXPECT_TRUE(testing::snapshotTree(other.path()).empty()) << "DEL created a store elsewhere";

  // And the real thing removes exactly cid-a.
  const RunResult d = run(delEnv("cid-a"), conf_);
  ASSERT_EQ(d.exitCode, 0) << describe(d);
  EXPECT_EQ(nodeVeths(), (std::set<std::string>{hostVeth(1)}));
  EXPECT_EQ(globalAddrs(*pods_[1], "eth0"), live_.podAddrs[1]);
  EXPECT_EQ(allocations(network_).size(), 2u);
  for (const auto& [addr, held] : allocations(network_)) EXPECT_EQ(held, owner("cid-b")) << addr;
}

TEST_F(Destructive, GcRefusesInvalidRequestsAndLeavesOthersAlone) {
  TempDir other;
  // Broken sections, with a list that keeps both pods: refused all the same.
  for (const auto& m : brokenSections(other.path())) {
    json c = conf_;
    c["cni.dev/valid-attachments"] = kBoth;
    m.change(c);
    expectOutcome("GC with " + m.what, gcEnv(), c, m.code, m.msg);
  }
  // Lists that are there but broken: refused, naming the field.
  const json a = kBoth[0];
  const std::vector<std::tuple<std::string, json, std::string>> badLists = {
      {"list not an array", {{"cni.dev/valid-attachments", a}}, "expected an array"},
      {"entry not an object",
       {{"cni.dev/valid-attachments", {a, "cid-b"}}},
       "cni.dev/valid-attachments[1]"},
      {"entry with containerId",
       {{"cni.dev/valid-attachments", {a, {{"containerId", "cid-b"}, {"ifname", "eth0"}}}}},
       "cni.dev/valid-attachments[1].containerID is missing"},
      {"entry without ifname",
       {{"cni.dev/valid-attachments", {a, {{"containerID", "cid-b"}}}}},
       "cni.dev/valid-attachments[1].ifname is missing"},
      {"entry with a number",
       {{"cni.dev/valid-attachments", {a, {{"containerID", 7}, {"ifname", "eth0"}}}}},
       "cni.dev/valid-attachments[1].containerID"},
      {"entry with an invalid container ID",
       {{"cni.dev/valid-attachments", {a, {{"containerID", "cid b"}, {"ifname", "eth0"}}}}},
       "not a valid container ID"},
      {"entry with an invalid ifname",
       {{"cni.dev/valid-attachments", {a, {{"containerID", "cid-b"}, {"ifname", "eth0:1"}}}}},
       "not a valid interface name"},
      {"the older key broken",
       {{"cni.dev/attachments", {a, {{"containerID", "cid-b"}}}}},
       "cni.dev/attachments[1].ifname"},
      {"misspelled key", {{"cni.dev/valid-attachment", kBoth}}, "unknown key"},
      {"misspelled key next to the right one",
       {{"cni.dev/valid-attachments", kBoth}, {"cni.dev/valid-attachment", json::array()}},
       "unknown key"},
      {"camel-cased key", {{"cni.dev/validAttachments", kBoth}}, "unknown key"},
      {"two lists that disagree",
       {{"cni.dev/valid-attachments", kBoth}, {"cni.dev/attachments", json::array({a})}},
       "list different attachments"},
  };
  for (const auto& [what, patch, msg] : badLists) {
    json c = conf_;
    c.update(patch);
    expectOutcome("GC with " + what, gcEnv(), c, 7, msg);
  }
  json old = conf_;
  old["cniVersion"] = "1.0.0";
  old["cni.dev/valid-attachments"] = json::array();
  expectOutcome("GC at cniVersion 1.0.0", gcEnv(), old, 1, "1.1.0");

  // About something else: succeeds, and touches nothing of the live pods, even though no live pod
  // is listed.
  const json otherNet = withMasq(conf_);  // another name, its lock file removed at the end
  json otherStore = conf_;
  otherStore["ipam"]["dataDir"] = other.path();
  json both = conf_;
  both["cni.dev/valid-attachments"] = kBoth;
  json bothOldKey = conf_;
  bothOldKey["cni.dev/attachments"] = kBoth;
  json bothAndMore = conf_;
  bothAndMore["cni.dev/valid-attachments"] = kBoth;
  bothAndMore["cni.dev/valid-attachments"].push_back(
      {{"containerID", "cid-z"}, {"ifname", "eth0"}});
  const std::vector<std::pair<std::string, json>> foreign = {
      {"another network without a list", otherNet},
      {"another dataDir without a list", otherStore},
      {"a list of both pods", both},
      {"a list of both pods under the older key", bothOldKey},
      {"a list of both pods and others", bothAndMore},
  };
  for (const auto& [what, c] : foreign) expectOutcome("GC of " + what, gcEnv(), c, 0);
  EXPECT_TRUE(testing::snapshotTree(other.path()).empty()) << "GC created a store elsewhere";

  // A valid GC listing cid-a releases exactly cid-b: its veth, routes, masquerade entry and
  // addresses.
  json gc = conf_;
  gc["cni.dev/valid-attachments"] = json::array({a});
  const RunResult r = run(gcEnv(), gc);
  ASSERT_EQ(r.exitCode, 0) << describe(r);
  EXPECT_EQ(r.out, "");
  const World after = world();
  EXPECT_EQ(after.nodeVeths, (std::set<std::string>{hostVeth(0)}));
  EXPECT_EQ(after.podAddrs[0], live_.podAddrs[0]);
  EXPECT_EQ(after.podRoutes4[0], live_.podRoutes4[0]);
  EXPECT_EQ(after.podRoutes6[0], live_.podRoutes6[0]);
  EXPECT_THAT(linkNames(*pods_[1]), ::testing::ElementsAre("lo"));
  const std::string b4 = resultAddr(results_[1], false), b6 = resultAddr(results_[1], true);
  EXPECT_EQ(allocations(network_),
            (std::map<std::string, std::string>{{resultAddr(results_[0], false), owner("cid-a")},
                                                {resultAddr(results_[0], true), owner("cid-a")}}));
  for (const auto& route : after.nodeRoutes4) EXPECT_THAT(route, ::testing::Not(HasSubstr(b4)));
  for (const auto& route : after.nodeRoutes6) EXPECT_THAT(route, ::testing::Not(HasSubstr(b6)));
  EXPECT_THAT(after.ruleset, HasSubstr(hostVeth(0)));
  EXPECT_THAT(after.ruleset, ::testing::Not(HasSubstr(hostVeth(1))));
  EXPECT_TRUE(ping(*pods_[0], "10.244.1.1"));
}

// libcni's GCNetworkList without arguments (cnitool's gc) sends no list: none is valid, and both
// plugins agree. A node end left by another store stays.
TEST_F(Destructive, GcWithoutAListReleasesEveryAttachmentOfThisStore) {
  TempDir other;
  // Another store on the same node needs pod CIDRs of its own.
  json elsewhere = conf_;
  elsewhere["ipam"]["dataDir"] = other.path();
  elsewhere["ipam"]["node"]["podCIDRs"] = {"10.244.9.0/24", "fd00:10:244:9::/64"};
  auto& third = newPod();
  const json r3 = add(third, "cid-c", elsewhere);
  const std::string v3 = r3["interfaces"][0]["name"];
  for (const bool withNull : {false, true}) {
    json gc = conf_;
    if (withNull) gc["cni.dev/valid-attachments"] = nullptr;
    const RunResult r = run(gcEnv(), gc);
    EXPECT_EQ(r.exitCode, 0) << describe(r);
    EXPECT_EQ(nodeVeths(), (std::set<std::string>{v3})) << "null list: " << withNull;
    EXPECT_TRUE(allocations(network_).empty());
  }
  const auto elsewhereStore = testing::snapshotTree(other.path() + "/" + network_);
  for (const bool v6 : {false, true}) {
    const auto it = elsewhereStore.find(resultAddr(r3, v6));
    ASSERT_NE(it, elsewhereStore.end()) << "the other store lost " << resultAddr(r3, v6);
    EXPECT_EQ(it->second, owner("cid-c"));
  }
  EXPECT_EQ(globalAddrs(third, "eth0").size(), 2u);
  EXPECT_THAT(mustExec(node(), "nft list ruleset"), HasSubstr(v3));
}

// The operator commands of dualstack-ipam against the same store.
TEST_F(Destructive, ReleaseAndGcCommandsRefuseInvalidRequestsAndLeaveOthersAlone) {
  TempDir other;
  const std::string cli = "env -u CNI_COMMAND " + testing::binPath("dualstack-ipam") + " ";
  const std::string store = "--data-dir " + dataDir() + " --network " + network_;
  const std::string liveA = other.file("live-a.json");
  const std::string mistyped = other.file("mistyped.json");
  const std::string notAList = other.file("not-a-list.json");
  const std::string badEntry = other.file("bad-entry.json");
  const std::string none = other.file("none.json");
  std::ofstream(liveA) << R"([{"containerID": "cid-a", "ifname": "eth0"}])";
  std::ofstream(mistyped) << R"([{"containerId": "cid-a", "ifname": "eth0"}])";
  std::ofstream(notAList) << R"({"containerID": "cid-a", "ifname": "eth0"})";
  std::ofstream(badEntry)
      << R"([{"containerID": "cid-a", "ifname": "eth0"}, {"containerID": "../b", "ifname": "eth0"}])";
  std::ofstream(none) << "[]";
  std::ofstream(other.file("broken.conflist"))
      << R"({"name": ")" + network_ +
             R"(", "plugins": [{"type": "dualstack", "ipam": {"type": "dualstack-ipam", "dataDir": ")" +
             dataDir() + R"(", "node": {"podCIDRs": ["bad"]}}}]})";
  struct Case {
    std::string args;
    int status;
  };
  const std::vector<Case> cases = {
      // Invalid: refused.
      {"release " + store + " --container-id ../cid-a --ifname eth0", 1},
      {"release " + store + " --container-id cid-a --ifname eth0/", 1},
      {"release " + store + " --container-id cid-a", 2},
      {"release --data-dir " + dataDir() + " --network ../" + network_ +
           " --container-id cid-a --ifname eth0",
       1},
      {"release --data-dir networks --network " + network_ + " --container-id cid-a --ifname eth0",
       2},
      {"release --config " + other.file("broken.conflist") + " --container-id cid-a --ifname eth0",
       1},
      {"release " + store + " --container-id cid-a --ifname eth0 --force", 2},
      {"gc " + store + " --live " + mistyped, 1},
      {"gc " + store + " --live " + notAList, 1},
      {"gc " + store + " --live " + badEntry, 1},
      {"gc " + store + " --live " + other.file("missing.json"), 1},
      {"gc " + store + " --cache-dir " + other.path(),
       1},  // no cached attachment: refuses to guess
      {"gc " + store + " --live " + liveA + " --cache-dir " + other.path(), 2},
      {"gc --data-dir networks --network " + network_ + " --live " + none, 2},
      {"gc --config " + other.file("broken.conflist") + " --live " + none, 1},
      // About something else: succeeds, touching nothing of the live pods.
      {"release --data-dir " + dataDir() + " --network " + network_ +
           "-other --container-id cid-a --ifname eth0",
       0},
      {"release " + store + " --container-id cid-c --ifname eth0", 0},
      {"release " + store + " --container-id cid-a --ifname eth1", 0},
      {"release --data-dir " + other.path() + " --network " + network_ +
           " --container-id cid-a --ifname eth0",
       0},
      {"gc --data-dir " + dataDir() + " --network " + network_ + "-other --live " + none, 0},
      {"gc --data-dir " + other.path() + " --network " + network_ + " --live " + none, 0},
      {"gc " + store + " --live " + none + " --dry-run", 0},
  };
  for (const auto& c : cases) {
    std::string out;
    const int status = testing::shell(cli + c.args + " 2>&1", &out);
    EXPECT_EQ(status, c.status) << c.args << ": " << out;
    expectUntouched("dualstack-ipam " + c.args);
  }
  // The dry run of a GC keeping cid-a names exactly cid-b's addresses.
  std::string out;
  ASSERT_EQ(
      testing::shell(cli + "gc " + store + " --live " + liveA + " --dry-run 2>/dev/null", &out), 0);
  EXPECT_EQ(out, "would release " + resultAddr(results_[1], false) + " (cid-b/eth0) from " +
                     dataDir() + "/" + network_ + "\nwould release " +
                     resultAddr(results_[1], true) + " (cid-b/eth0) from " + dataDir() + "/" +
                     network_ + "\n");
  expectUntouched("gc --dry-run");
}

}  // namespace
}  // namespace dualstack::plugintest
