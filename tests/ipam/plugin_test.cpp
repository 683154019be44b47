// Runs the built dualstack-ipam binary the way a runtime (or a main plugin delegating) does.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "support/support.hpp"

namespace dualstack::ipam {
namespace {

namespace fs = std::filesystem;
using dualstack::testing::RunResult;
using nlohmann::json;

const std::vector<std::string> kVersions = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};

class IpamBinary : public ::testing::Test {
 protected:
  dualstack::testing::TempDir tmp;
  std::string dataDir = tmp.file("networks");
  std::string store = dataDir + "/net1";
  std::string binary = dualstack::testing::binPath("dualstack-ipam");

  json conf(const std::string& version = "1.0.0") const {
    return {{"cniVersion", version},
            {"name", "net1"},
            {"type", "bridge"},
            {"ipam",
             {{"type", "dualstack-ipam"},
              {"dataDir", dataDir},
              {"node",
               {{"podCIDRs", {"10.244.1.0/24", "fd00:10:244:1::/64"}},
                {"addresses",
                 {{{"type", "InternalIP"}, {"address", "192.168.10.5"}},
                  {{"type", "InternalIP"}, {"address", "fd00:192:168:10::5"}}}}}}}}};
  }

  RunResult run(const std::string& command, const std::string& id, const json& c,
                const std::string& ifname = "eth0", const std::string& args = "",
                const std::string& netns = "/var/run/netns/test") const {
    return dualstack::testing::runPlugin(
        binary, dualstack::testing::cniEnv(command, id, netns, ifname, args), c.dump());
  }
  RunResult runRaw(const dualstack::testing::EnvMap& env, const std::string& input) const {
    return dualstack::testing::runPlugin(binary, env, input);
  }

  std::vector<std::string> addresses(const RunResult& r) const {
    return dualstack::testing::resultCidrs(r);
  }

  // Per-IP files in the store.
  std::set<std::string> ipFiles() const {
    if (!fs::exists(store)) return {};
    return dualstack::testing::allocationFiles(store);
  }
};

using dualstack::testing::readFile;

#define EXPECT_OK(r) EXPECT_EQ((r).exitCode, 0) << (r).out << (r).err

void expectError(const RunResult& r, int code, const std::string& msgPart = "") {
  EXPECT_NE(r.exitCode, 0);
  const json j = r.json();
  ASSERT_TRUE(j.is_object()) << "stdout: " << r.out << " stderr: " << r.err;
  EXPECT_EQ(j.value("code", -1), code) << r.out;
  EXPECT_TRUE(j.contains("msg") && j["msg"].is_string()) << r.out;
  EXPECT_TRUE(j.contains("cniVersion")) << r.out;
  if (!msgPart.empty()) {
    EXPECT_NE(j.value("msg", "").find(msgPart), std::string::npos) << r.out;
  }
}

TEST_F(IpamBinary, Version) {
  for (const auto& v : kVersions) {
    auto r = runRaw({{"CNI_COMMAND", "VERSION"}}, json{{"cniVersion", v}}.dump());
    EXPECT_OK(r);
    const json j = r.json();
    EXPECT_EQ(j["cniVersion"], v);
    EXPECT_EQ(j["supportedVersions"], json(kVersions));
  }
}

TEST_F(IpamBinary, EveryVersionAddCheckDel) {
  for (const auto& v : kVersions) {
    SCOPED_TRACE(v);
    const json c = conf(v);
    auto add = run("ADD", "c-" + v, c);
    EXPECT_OK(add);
    const json j = add.json();
    EXPECT_EQ(j["cniVersion"], v);
    EXPECT_FALSE(j.contains("interfaces"));
    ASSERT_EQ(j["ips"].size(), 2U) << add.out;
    for (std::size_t i = 0; i < 2; ++i) {
      const json& ipc = j["ips"][i];
      EXPECT_FALSE(ipc.contains("interface"));
      const std::string fam = i == 0 ? "4" : "6";
      if (v < "1.0.0") {
        EXPECT_EQ(ipc.value("version", ""), fam);
      } else {
        EXPECT_FALSE(ipc.contains("version"));
      }
    }
    EXPECT_EQ(j["ips"][0]["gateway"], "10.244.1.1");
    EXPECT_EQ(j["ips"][1]["gateway"], "fd00:10:244:1::1");
    EXPECT_EQ(j["ips"][0]["address"].get<std::string>().substr(0, 9), "10.244.1.");
    EXPECT_TRUE(j["ips"][0]["address"].get<std::string>().ends_with("/24"));
    EXPECT_TRUE(j["ips"][1]["address"].get<std::string>().ends_with("/64"));

    auto check = run("CHECK", "c-" + v, c);
    if (v < "0.4.0") {
      expectError(check, 1);
    } else {
      EXPECT_OK(check);
    }
    EXPECT_OK(run("DEL", "c-" + v, c));
    EXPECT_OK(run("DEL", "c-" + v, c));
  }
  EXPECT_TRUE(ipFiles().empty());
}

TEST_F(IpamBinary, AddIsIdempotentAndDelReleases) {
  const json c = conf();
  auto first = run("ADD", "pod1", c);
  EXPECT_OK(first);
  EXPECT_EQ(addresses(first), (std::vector<std::string>{"10.244.1.2/24", "fd00:10:244:1::2/64"}));
  auto again = run("ADD", "pod1", c);
  EXPECT_OK(again);
  EXPECT_EQ(again.out, first.out);
  EXPECT_EQ(ipFiles().size(), 2U);

  auto other = run("ADD", "pod2", c);
  EXPECT_EQ(addresses(other), (std::vector<std::string>{"10.244.1.3/24", "fd00:10:244:1::3/64"}));
  auto eth1 = run("ADD", "pod1", c, "eth1");
  EXPECT_EQ(addresses(eth1), (std::vector<std::string>{"10.244.1.4/24", "fd00:10:244:1::4/64"}));

  EXPECT_OK(run("CHECK", "pod1", c));
  EXPECT_OK(run("DEL", "pod1", c, "eth0", "", ""));  // containerd sends no netns on DEL
  expectError(run("CHECK", "pod1", c), 103, "pod1/eth0 holds no IPv4 address in 10.244.1.0/24");
  EXPECT_OK(run("DEL", "pod1", c));
  EXPECT_OK(run("CHECK", "pod1", c, "eth1"));
  EXPECT_EQ(ipFiles(), (std::set<std::string>{"10.244.1.3", "10.244.1.4", "fd00:10:244:1::3",
                                              "fd00:10:244:1::4"}));
  // Round robin: the released .2 is not handed out again straight away.
  EXPECT_EQ(addresses(run("ADD", "pod3", c)),
            (std::vector<std::string>{"10.244.1.5/24", "fd00:10:244:1::5/64"}));
}

TEST_F(IpamBinary, ResultOrderFollowsTheNode) {
  json c = conf();
  c["ipam"]["node"]["addresses"] = {{{"type", "InternalIP"}, {"address", "fd00:192:168:10::5"}},
                                    {{"type", "InternalIP"}, {"address", "192.168.10.5"}}};
  EXPECT_EQ(addresses(run("ADD", "pod1", c)),
            (std::vector<std::string>{"fd00:10:244:1::2/64", "10.244.1.2/24"}));
}

TEST_F(IpamBinary, RoutesFromTheConfig) {
  json c = conf("1.1.0");
  c["ipam"]["routes"] = {{{"dst", "0.0.0.0/0"}}, {{"dst", "::/0"}, {"gw", "fd00:10:244:1::1"}}};
  const json j = run("ADD", "pod1", c).json();
  EXPECT_EQ(j["routes"],
            json::parse(R"([{"dst":"0.0.0.0/0"},{"dst":"::/0","gw":"fd00:10:244:1::1"}])"));
}

TEST_F(IpamBinary, RequestedAddressesSurviveANetworkReload) {
  json c = conf();
  auto first = addresses(run("ADD", "pod1", c));
  ASSERT_EQ(first.size(), 2U);
  // podman network reload: DEL, then ADD asking for the same addresses.
  EXPECT_OK(run("DEL", "pod1", c));
  run("ADD", "pod2", c);  // someone else moves the round robin on
  c["runtimeConfig"] = {{"ips", first}};
  EXPECT_EQ(addresses(run("ADD", "pod1", c)), first);

  auto viaArgs = run("ADD", "pod3", conf(), "eth0", "IgnoreUnknown=1;IP=10.244.1.77");
  EXPECT_EQ(addresses(viaArgs)[0], "10.244.1.77/24");
  expectError(run("ADD", "pod4", conf(), "eth0", "IP=10.244.1.77"), 102,
              "10.244.1.77 is already allocated to pod3/eth0");
}

TEST_F(IpamBinary, GcReleasesWhatIsNotValid) {
  const json c = conf("1.1.0");
  for (const char* id : {"a", "b", "c"}) EXPECT_OK(run("ADD", id, c));
  json gc = c;
  gc["cni.dev/valid-attachments"] = {{{"containerID", "b"}, {"ifname", "eth0"}}};
  auto r = dualstack::testing::runPlugin(
      binary, {{"CNI_COMMAND", "GC"}, {"CNI_PATH", "/nonexistent"}}, gc.dump());
  EXPECT_OK(r);
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(ipFiles(), (std::set<std::string>{"10.244.1.3", "fd00:10:244:1::3"}));
  EXPECT_OK(run("CHECK", "b", c));
  EXPECT_EQ(fs::exists(store + "/.dualstack/a@eth0"), false);

  gc["cni.dev/valid-attachments"] = json::array();
  EXPECT_OK(dualstack::testing::runPlugin(
      binary, {{"CNI_COMMAND", "GC"}, {"CNI_PATH", "/nonexistent"}}, gc.dump()));
  EXPECT_TRUE(ipFiles().empty());

  // Older libcni spells the key cni.dev/attachments.
  EXPECT_OK(run("ADD", "d", c));
  json old = c;
  old["cni.dev/attachments"] = json::array();
  EXPECT_OK(dualstack::testing::runPlugin(
      binary, {{"CNI_COMMAND", "GC"}, {"CNI_PATH", "/nonexistent"}}, old.dump()));
  EXPECT_TRUE(ipFiles().empty());

  // Without a list (libcni's GCNetworkList without arguments) or with null, none is valid.
  for (const bool withNull : {false, true}) {
    EXPECT_OK(run("ADD", "e", c));
    ASSERT_EQ(ipFiles().size(), 2U);
    json none = c;
    if (withNull) none["cni.dev/valid-attachments"] = nullptr;
    EXPECT_OK(dualstack::testing::runPlugin(
        binary, {{"CNI_COMMAND", "GC"}, {"CNI_PATH", "/nonexistent"}}, none.dump()));
    EXPECT_TRUE(ipFiles().empty()) << "null list: " << withNull;
  }
}

// A list that is there but broken, or a key that looks like a misspelled list, is refused before
// the store is touched: guessing would release live pods' addresses.
TEST_F(IpamBinary, GcRefusesABrokenListAndChangesNothing) {
  const json c = conf("1.1.0");
  for (const char* id : {"a", "b"}) EXPECT_OK(run("ADD", id, c));
  const auto before = dualstack::testing::snapshotTree(dataDir);
  const json a = {{"containerID", "a"}, {"ifname", "eth0"}};
  struct Case {
    const char* key;
    json list;
    const char* msg;
  };
  const std::vector<Case> cases = {
      {"cni.dev/valid-attachments", "a", "cni.dev/valid-attachments: expected an array"},
      {"cni.dev/valid-attachments", json::array({a, "b"}),
       "cni.dev/valid-attachments[1]: expected an object"},
      {"cni.dev/valid-attachments", json::array({a, {{"containerId", "b"}, {"ifname", "eth0"}}}),
       "cni.dev/valid-attachments[1].containerID is missing"},
      {"cni.dev/valid-attachments", json::array({a, {{"containerID", "b"}}}),
       "cni.dev/valid-attachments[1].ifname is missing"},
      {"cni.dev/valid-attachments", json::array({{{"containerID", 5}, {"ifname", "eth0"}}}),
       "cni.dev/valid-attachments[0].containerID: expected a string"},
      {"cni.dev/valid-attachments", json::array({{{"containerID", "../b"}, {"ifname", "eth0"}}}),
       "cni.dev/valid-attachments[0].containerID is not a valid container ID"},
      {"cni.dev/valid-attachments", json::array({{{"containerID", "b"}, {"ifname", "eth 0"}}}),
       "cni.dev/valid-attachments[0].ifname is not a valid interface name"},
      {"cni.dev/attachments", json::array({{{"containerID", "b"}}}),
       "cni.dev/attachments[0].ifname"},
      {"cni.dev/valid-attachment", json::array({a}), "unknown key \"cni.dev/valid-attachment\""},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.list.dump());
    json gc = c;
    gc[k.key] = k.list;
    expectError(dualstack::testing::runPlugin(
                    binary, {{"CNI_COMMAND", "GC"}, {"CNI_PATH", "/nonexistent"}}, gc.dump()),
                7, k.msg);
    EXPECT_EQ(dualstack::testing::snapshotTree(dataDir), before);
  }
}

TEST_F(IpamBinary, Status) {
  auto status = [&](const json& c) {
    return dualstack::testing::runPlugin(
        binary, {{"CNI_COMMAND", "STATUS"}, {"CNI_PATH", "/nonexistent"}}, c.dump());
  };
  json c = conf("1.1.0");
  EXPECT_OK(status(c));
  EXPECT_FALSE(fs::exists(dataDir));  // STATUS writes nothing

  c["ipam"]["node"] = {{"file", tmp.file("node.json")}};
  expectError(status(c), 50, "no pod CIDR known");
  std::ofstream(tmp.file("node.json")) << R"({"spec":{}})";
  expectError(status(c), 50, "no spec.podCIDRs yet");
  std::ofstream(tmp.file("node.json")) << R"({"spec":{"podCIDRs":["10.244.9.0/30"]}})";
  EXPECT_OK(status(c));
  EXPECT_OK(run("ADD", "only", c));
  expectError(status(c), 50,
              "no free IPv4 address left in 10.244.9.0/30 (1 allocated of 1 usable)");

  // STATUS and GC need 1.1.0.
  expectError(status(conf("1.0.0")), 1);
}

TEST_F(IpamBinary, DelNeverReadsTheNodeSource) {
  json c = conf();
  c["ipam"]["node"] = {{"file", tmp.file("node.json")}};
  std::ofstream(tmp.file("node.json")) << R"({"spec":{"podCIDRs":["10.244.1.0/24"]}})";
  EXPECT_OK(run("ADD", "pod1", c));
  fs::remove(tmp.file("node.json"));
  EXPECT_OK(run("DEL", "pod1", c));
  EXPECT_TRUE(ipFiles().empty());
  expectError(run("ADD", "pod2", c), 11, tmp.file("node.json"));
}

TEST_F(IpamBinary, BadInputLeavesTheStoreAsItWas) {
  EXPECT_OK(run("ADD", "existing", conf()));
  const auto before = dualstack::testing::snapshotTree(dataDir);
  auto env = dualstack::testing::cniEnv("ADD", "pod1", "/var/run/netns/x");
  auto withIpam = [&](const json& ipamPatch) {
    json c = conf();
    c["ipam"].update(ipamPatch);
    return c.dump();
  };
  auto node = [&](json podCIDRs) {
    json c = conf();
    c["ipam"]["node"]["podCIDRs"] = std::move(podCIDRs);
    return c.dump();
  };
  json badName = conf();
  badName["name"] = "../x";
  json badVersion = conf();
  badVersion["cniVersion"] = "0.2.0";
  auto noId = env;
  noId.erase("CNI_CONTAINERID");
  auto badIf = env;
  badIf["CNI_IFNAME"] = "a/b";

  struct Case {
    const char* what;
    dualstack::testing::EnvMap env;
    std::string input;
    int code;
    std::string msg;
  };
  const std::vector<Case> cases = {
      {"malformed JSON", env, "{\"cniVersion\": ", 6, "not valid JSON"},
      {"unsupported version", env, badVersion.dump(), 1, "0.2.0"},
      {"missing env", noId, conf().dump(), 4, "CNI_CONTAINERID"},
      {"bad ifname", badIf, conf().dump(), 4, "CNI_IFNAME"},
      {"bad CIDR", env, node({"10.244.1.0/24", "fd00::/200"}), 7, "ipam.node.podCIDRs[1]"},
      {"host bits", env, node({"10.244.1.1/24"}), 7, "has host bits set"},
      {"path in name", env, badName.dump(), 7, "not a valid network name"},
      {"no podCIDRs", env, node(json::array()), 7, "ipam.node.podCIDRs is missing or empty"},
      {"two of a family", env, node({"10.244.1.0/24", "10.244.2.0/24"}), 7,
       "at most one per family"},
      {"no ipam", env, R"({"cniVersion":"1.0.0","name":"net1","type":"x"})", 7, "ipam is missing"},
      {"relative dataDir", env, withIpam({{"dataDir", "x/y"}}), 7, "ipam.dataDir"},
      {"requested outside", env, withIpam(json::object()), 7, "none of the ranges"},
  };
  for (auto c : cases) {
    SCOPED_TRACE(c.what);
    if (std::string(c.what) == "requested outside") c.env["CNI_ARGS"] = "IP=10.9.9.9";
    expectError(runRaw(c.env, c.input), c.code, c.msg);
    EXPECT_EQ(dualstack::testing::snapshotTree(dataDir), before);
  }
}

TEST_F(IpamBinary, ExhaustionNamesTheRangeAndChangesNothing) {
  json c = conf();
  c["ipam"]["node"]["podCIDRs"] = {"10.244.1.0/24", "fd00:10:244:1::/126"};
  EXPECT_OK(run("ADD", "a", c));
  EXPECT_OK(run("ADD", "b", c));
  const auto before = dualstack::testing::snapshotTree(dataDir);
  // IPv4 has room, IPv6 not: neither family may be allocated.
  expectError(run("ADD", "c", c), 101,
              "no free IPv6 address left in fd00:10:244:1::/126 (2 allocated of 2 usable)");
  EXPECT_EQ(dualstack::testing::snapshotTree(dataDir), before);
}

TEST_F(IpamBinary, SixtyFourParallelAddsThenDels) {
  const json c = conf();
  constexpr int kPods = 64;
  std::vector<RunResult> results(kPods);
  auto parallel = [&](const std::string& command) {
    std::vector<std::thread> threads;
    for (int i = 0; i < kPods; ++i) {
      threads.emplace_back([&, i] {
        results[static_cast<std::size_t>(i)] = run(command, "pod" + std::to_string(i), c);
      });
    }
    for (auto& t : threads) t.join();
  };
  parallel("ADD");
  std::set<std::string> seen;
  for (const auto& r : results) {
    EXPECT_OK(r);
    for (const auto& a : addresses(r)) EXPECT_TRUE(seen.insert(a).second) << "duplicate " << a;
  }
  EXPECT_EQ(seen.size(), 2U * kPods);
  EXPECT_EQ(ipFiles().size(), 2U * kPods);
  // Every pod's file names it.
  for (int i = 0; i < kPods; ++i) {
    for (const auto& a : addresses(results[static_cast<std::size_t>(i)])) {
      EXPECT_EQ(readFile(store + "/" + a.substr(0, a.find('/'))),
                "pod" + std::to_string(i) + "\r\neth0");
    }
  }
  parallel("DEL");
  for (const auto& r : results) EXPECT_OK(r);
  EXPECT_TRUE(ipFiles().empty());
  std::vector<std::string> index;
  for (const auto& e : fs::directory_iterator(store + "/.dualstack")) {
    index.push_back(e.path().filename().string());
  }
  EXPECT_EQ(index, (std::vector<std::string>{"state"}));
}

}  // namespace
}  // namespace dualstack::ipam
