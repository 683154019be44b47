// Tests of the `dualstack` binary as a runtime runs it. Every test gets a throwaway "node" network
// namespace (the plugin runs with its host side inside it, never in the machine's namespace), a
// temporary dataDir, and throwaway "pod" namespaces. The test process itself never changes
// namespace: the plugin child enters the node namespace (runPlugin), and the kernel state is read
// with `ip -j -n <netns> ...` / `ip netns exec`. Everything is removed by destructors, also when an
// assertion fails or a helper throws.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dualstack/plugin/masq.hpp"
#include "support/support.hpp"

namespace dualstack::plugintest {

using nlohmann::json;
using testing::EnvMap;
using testing::RunResult;
using testing::TempDir;
using testing::TestNetns;

// Runs a shell command; throws with its output when it fails (test setup that must work).
inline std::string mustShell(const std::string& command) {
  std::string out;
  if (testing::shell(command + " 2>&1", &out) != 0) {
    throw std::runtime_error("`" + command + "` failed: " + out);
  }
  return out;
}

// `ip -j <args>` parsed.
inline json ipJson(const std::string& args) {
  const std::string out = mustShell("ip -j " + args);
  auto j = json::parse(out, nullptr, false);
  if (j.is_discarded()) throw std::runtime_error("ip -j " + args + ": not JSON: " + out);
  return j;
}

// Runs a command inside ns; throws on failure.
inline std::string mustExec(const TestNetns& ns, const std::string& command) {
  std::string out;
  if (ns.exec(command, &out) != 0) {
    throw std::runtime_error("in " + ns.name() + ": `" + command + "` failed: " + out);
  }
  return out;
}

inline std::string sysctl(const TestNetns& ns, const std::string& key) {
  std::string v = mustExec(ns, "cat /proc/sys/" + key);
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

// A device that is not a veth, for routes and MTUs on the node: a dummy, or an ifb where the
// kernel has no dummy driver (it behaves the same for addresses and routes).
inline void addStubDevice(const TestNetns& ns, const std::string& name, int mtu = 1500) {
  const std::string m = " mtu " + std::to_string(mtu);
  if (ns.exec("ip link add " + name + m + " type dummy") != 0) {
    mustExec(ns, "ip link add " + name + m + " type ifb");
  }
  mustExec(ns, "ip link set " + name + " up");
}

inline json readJsonFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return json::parse(ss.str());
}

// "10.244.1.2/24" -> "10.244.1.2"
inline std::string bare(const std::string& cidr) { return cidr.substr(0, cidr.find('/')); }
inline bool isV6(const std::string& addr) { return addr.find(':') != std::string::npos; }

// The address (no prefix length) of the result's IP of one family; throws when there is none.
inline std::string resultAddr(const json& result, bool v6) {
  for (const auto& ipc : result.at("ips")) {
    const auto a = ipc.at("address").get<std::string>();
    if (isV6(a) == v6) return bare(a);
  }
  throw std::runtime_error(std::string("result has no IPv") + (v6 ? "6" : "4") +
                           " address: " + result.dump());
}

// The error object a failed invocation printed on stdout, with the exit status checked.
inline json errorOf(const RunResult& r) {
  EXPECT_NE(r.exitCode, 0) << "expected a failure; stdout: " << r.out << " stderr: " << r.err;
  const json j = r.json();
  EXPECT_TRUE(j.is_object() && j.contains("code") && j.contains("msg"))
      << "no CNI error on stdout: " << r.out << " stderr: " << r.err;
  return j.is_object() ? j : json::object();
}

inline std::string describe(const RunResult& r) {
  return "exit " + std::to_string(r.exitCode) + ", stdout: " + r.out + ", stderr: " + r.err;
}

class PluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DUALSTACK_REQUIRE_ROOT();
    node_ = std::make_unique<TestNetns>("node");
  }

  void TearDown() override {
    pods_.clear();
    node_.reset();
    // Lock files of masqueraded networks: safe to remove here, the network names are this
    // test's own (uniqueName) and nothing else uses them.
    for (const auto& n : masqNetworks_) ::unlink(plugin::masqueradeLockPath(n).c_str());
  }

  const TestNetns& node() const { return *node_; }
  const std::string& dataDir() const { return data_.path(); }

  // A new pod namespace, removed at the end of the test (or earlier with remove()).
  TestNetns& newPod() {
    pods_.push_back(std::make_unique<TestNetns>("pod"));
    return *pods_.back();
  }

  // The config a runtime passes to plugin `index` of conf/<file>: that plugin's object plus the
  // list's name and cniVersion (or `version`), with ipam.dataDir pointing at this test's dataDir.
  json pluginConf(std::string_view file, std::string_view version = "",
                  std::size_t index = 0) const {
    const json list = readJsonFile(testing::sourcePath("conf/" + std::string(file)));
    json conf = list.at("plugins").at(index);
    conf["name"] = list.at("name");
    conf["cniVersion"] =
        version.empty() ? list.at("cniVersion").get<std::string>() : std::string(version);
    if (conf.contains("ipam")) conf["ipam"]["dataDir"] = dataDir();
    return conf;
  }

  // A network name unique to this test with ipMasq on (its masquerade lock file is removed in
  // TearDown).
  json withMasq(json conf) {
    conf["name"] = testing::uniqueName("masq");
    conf["ipMasq"] = true;
    masqNetworks_.push_back(conf["name"].get<std::string>());
    return conf;
  }

  // Runs `binary` (ours by name, or an absolute path) with the node namespace as its namespace.
  RunResult run(const EnvMap& env, const json& conf,
                const std::string& binary = "dualstack") const {
    const std::string path = binary.front() == '/' ? binary : testing::binPath(binary);
    return testing::runPlugin(path, env, conf.dump(), node_->path());
  }
  RunResult run(std::string_view command, const std::string& netns, const std::string& cid,
                const json& conf, const std::string& ifname = "eth0",
                const std::string& binary = "dualstack") const {
    return run(testing::cniEnv(command, cid, netns, ifname), conf, binary);
  }

  RunResult tryAdd(const TestNetns& pod, const std::string& cid, const json& conf,
                   const std::string& ifname = "eth0") const {
    return run("ADD", pod.path(), cid, conf, ifname);
  }

  // ADD that must succeed: the parsed result.
  json add(const TestNetns& pod, const std::string& cid, const json& conf,
           const std::string& ifname = "eth0") const {
    const RunResult r = tryAdd(pod, cid, conf, ifname);
    if (r.exitCode != 0) throw std::runtime_error("ADD " + cid + " failed: " + describe(r));
    const json j = r.json();
    if (!j.is_object()) throw std::runtime_error("ADD " + cid + ": result is not JSON: " + r.out);
    return j;
  }

  RunResult del(const std::string& netns, const std::string& cid, const json& conf,
                const std::string& ifname = "eth0") const {
    return run("DEL", netns, cid, conf, ifname);
  }

  // CHECK with prevResult = the ADD's result, as a runtime builds it.
  RunResult check(const TestNetns& pod, const std::string& cid, json conf, const json& prevResult,
                  const std::string& ifname = "eth0") const {
    conf["prevResult"] = prevResult;
    return run("CHECK", pod.path(), cid, conf, ifname);
  }

  // GC / STATUS: no attachment, only CNI_COMMAND and CNI_PATH.
  RunResult runNetworkVerb(std::string_view command, const json& conf) const {
    return run(EnvMap{{"CNI_COMMAND", std::string(command)}, {"CNI_PATH", testing::cniPath()}},
               conf);
  }

  // ---- kernel state, read from outside with ip -j ----

  // Links of ns (ip -j -d link show [extra]).
  static json links(const TestNetns& ns, const std::string& extra = "") {
    return ipJson("-d -n " + ns.name() + " link show " + extra);
  }
  static json link(const TestNetns& ns, const std::string& name) {
    const json l = ipJson("-d -n " + ns.name() + " link show dev " + name);
    return l.at(0);
  }
  static std::set<std::string> linkNames(const TestNetns& ns, const std::string& extra = "") {
    std::set<std::string> names;
    for (const auto& l : links(ns, extra)) names.insert(l.at("ifname").get<std::string>());
    return names;
  }
  std::set<std::string> nodeVeths() const { return linkNames(*node_, "type veth"); }

  // addr_info of one device.
  static json addrInfo(const TestNetns& ns, const std::string& dev) {
    return ipJson("-n " + ns.name() + " addr show dev " + dev).at(0).at("addr_info");
  }
  // "addr/len" of the global addresses of dev.
  static std::set<std::string> globalAddrs(const TestNetns& ns, const std::string& dev) {
    std::set<std::string> out;
    for (const auto& a : addrInfo(ns, dev)) {
      if (a.value("scope", "") != "global") continue;
      out.insert(a.at("local").get<std::string>() + "/" +
                 std::to_string(a.at("prefixlen").get<int>()));
    }
    return out;
  }
  // Addresses of every device of ns still in duplicate-address detection (or failed it).
  static std::vector<std::string> tentativeAddrs(const TestNetns& ns) {
    std::vector<std::string> out;
    for (const auto& l : ipJson("-n " + ns.name() + " addr show")) {
      for (const auto& a : l.at("addr_info")) {
        if (a.value("tentative", false) || a.value("dadfailed", false)) {
          out.push_back(l.at("ifname").get<std::string>() + " " + a.at("local").get<std::string>());
        }
      }
    }
    return out;
  }

  // Routes as "dst [via gw] dev X [scope S]" text, main table, one family; IPv6 link-local and
  // multicast routes the kernel adds to every device are left out.
  static std::set<std::string> routes(const TestNetns& ns, bool v6, const std::string& extra = "") {
    std::set<std::string> out;
    for (const auto& r :
         ipJson(std::string(v6 ? "-6" : "-4") + " -n " + ns.name() + " route show " + extra)) {
      const std::string dst = r.at("dst").get<std::string>();
      if (v6 && (dst.rfind("fe80::", 0) == 0 || dst.rfind("ff00::", 0) == 0)) continue;
      std::string s = dst;
      if (r.contains("gateway")) s += " via " + r["gateway"].get<std::string>();
      if (r.contains("dev")) s += " dev " + r["dev"].get<std::string>();
      if (r.contains("scope")) s += " scope " + r["scope"].get<std::string>();
      out.insert(s);
    }
    return out;
  }

  // The allocations of `network` in this test's store: address file -> content.
  std::map<std::string, std::string> allocations(const std::string& network) const {
    std::map<std::string, std::string> out;
    for (const auto& [rel, content] : testing::snapshotTree(dataDir() + "/" + network)) {
      if (rel == "lock" || rel.rfind("last_reserved_ip.", 0) == 0 || rel.front() == '.') continue;
      out[rel] = content;
    }
    return out;
  }
  static std::string owner(const std::string& cid, const std::string& ifname = "eth0") {
    return cid + "\r\n" + ifname;
  }

  static bool ping(const TestNetns& from, const std::string& addr) {
    return from.exec("ping -c1 -W1 " + addr) == 0;
  }

 private:
  TempDir data_;
  std::unique_ptr<TestNetns> node_;
  std::vector<std::unique_ptr<TestNetns>> pods_;
  std::vector<std::string> masqNetworks_;
};

}  // namespace dualstack::plugintest
