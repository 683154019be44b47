// Bad input, run as a runtime runs the plugins: every case is one ADD of `dualstack` (and of
// `dualstack-ipam` where the input concerns it) with the host side inside a fresh "node"
// namespace and a fresh pod namespace. Each must fail with the CNI error code the specification
// gives for it and a message naming the offending field or variable, and leave both the address
// store and the kernel state of both namespaces exactly as they were.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/support.hpp"

namespace dualstack::hardening {
namespace {

using nlohmann::json;
using testing::EnvMap;
using testing::RunResult;
using testing::TempDir;
using testing::TestNetns;

// The value written into the kubeconfig used by the Kubernetes case; it must never be echoed.
constexpr const char* kSecretToken = "tok-SECRET-91f3c2d7e0a4";

enum Binaries : unsigned { kPlugin = 1, kIpam = 2, kBoth = 3 };

// What one invocation gets: the config (or raw stdin text instead) and the environment.
struct Invocation {
  json conf;
  std::optional<std::string> rawStdin;
  EnvMap env;
  std::string scratch;  // a directory inside the snapshotted tree, for files a case needs
  std::string podPath;
};

using Mutator = std::function<void(Invocation&)>;

struct BadInput {
  std::string name;
  unsigned binaries;
  int code;
  std::vector<std::string> msgParts;  // each must appear in the error's msg
  Mutator mutate;
};

std::ostream& operator<<(std::ostream& os, const BadInput& c) { return os << c.name; }

// One case: the binaries it runs default to both.
BadInput bad(std::string name, int code, std::vector<std::string> msgParts, Mutator mutate,
             unsigned binaries = kBoth) {
  return {std::move(name), binaries, code, std::move(msgParts), std::move(mutate)};
}

// ---- mutators ----

Mutator set(const std::string& pointer, json value) {
  return [pointer, value](Invocation& in) { in.conf[json::json_pointer(pointer)] = value; };
}
Mutator erase(const std::string& pointer) {
  return [pointer](Invocation& in) {
    const json::json_pointer p(pointer);
    in.conf[p.parent_pointer()].erase(p.back());
  };
}
Mutator setEnv(const std::string& key, std::string value) {
  return [key, value](Invocation& in) { in.env[key] = value; };
}
Mutator unsetEnv(const std::string& key) {
  return [key](Invocation& in) { in.env.erase(key); };
}
Mutator raw(std::string text) {
  return [text](Invocation& in) { in.rawStdin = text; };
}
Mutator all(std::vector<Mutator> ms) {
  return [ms](Invocation& in) {
    for (const auto& m : ms) m(in);
  };
}
// Raw stdin: the config with the value at `pointer` replaced by `depth` levels of nesting.
Mutator deepAt(const std::string& pointer, std::size_t depth, bool objects = false) {
  return [pointer, depth, objects](Invocation& in) {
    constexpr const char* kMark = "\"@deep@\"";
    in.conf[json::json_pointer(pointer)] = "@deep@";
    std::string text = in.conf.dump();
    text.replace(text.find(kMark), std::string(kMark).size(),
                 testing::nestedJson(depth, objects, "\"10.244.1.0/24\""));
    in.rawStdin = text;
  };
}
// A file in the case's scratch directory (created before the "before" snapshot).
Mutator withFile(const std::string& name, const std::string& content,
                 std::function<void(Invocation&, const std::string& path)> use) {
  return [name, content, use](Invocation& in) {
    const std::string path = in.scratch + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    use(in, path);
  };
}

// The file given to ipam.node as its kubeconfig (for node worker-1), or as its node file.
void asKubeconfig(Invocation& in, const std::string& path) {
  in.conf["ipam"]["node"] = {{"kubeconfig", path}, {"name", "worker-1"}};
}
void asNodeFile(Invocation& in, const std::string& path) {
  in.conf["ipam"]["node"] = {{"file", path}};
}

// A FIFO in the case's scratch directory: a plain open of it would wait for a writer forever.
Mutator withFifo(const std::string& name,
                 std::function<void(Invocation&, const std::string& path)> use) {
  return [name, use](Invocation& in) {
    const std::string path = in.scratch + "/" + name;
    if (::mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST) {
      throw std::runtime_error("mkfifo " + path);
    }
    use(in, path);
  };
}

// `text` written n times.
std::string repeated(std::string_view text, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += text;
  return s;
}

const json kNodeAddrs = json::array({{{"type", "InternalIP"}, {"address", "192.168.10.5"}}});

std::vector<BadInput> cases() {
  const std::string huge(2u << 20, ' ');
  std::string nested(200000, '[');
  std::vector<BadInput> c = {
      // ---- stdin that is not a config ----
      bad("EmptyStdin", 6, {"not valid JSON"}, raw("")),
      bad("MalformedJson", 6, {"not valid JSON"}, raw("{\"cniVersion\": \"1.0.0\", name}")),
      bad("TruncatedJson", 6, {"not valid JSON"},
          [](Invocation& in) {
            const auto t = in.conf.dump();
            in.rawStdin = t.substr(0, t.size() / 2);
          }),
      bad("TrailingGarbage", 6, {"not valid JSON"},
          [](Invocation& in) { in.rawStdin = in.conf.dump() + " }{"; }),
      bad("NulByteInside", 6, {"not valid JSON"},
          [](Invocation& in) {
            auto t = in.conf.dump();
            t.insert(10, 1, '\0');
            in.rawStdin = t;
          }),
      bad("InvalidUtf8", 6, {"not valid JSON"},
          [](Invocation& in) {
            auto t = in.conf.dump();
            t.insert(t.find("dualstack\""), "\xc3\x28");
            in.rawStdin = t;
          }),
      bad("NameNotUtf8", 6, {"not valid JSON"},
          [](Invocation& in) {
            auto t = in.conf.dump();
            t.replace(t.find("\"dualstack\""), 11, "\"dualstack\xff\"");
            in.rawStdin = t;
          }),
      bad(
          "RuntimeConfigMacNotUtf8", 6, {"not valid JSON"},
          [](Invocation& in) {
            in.conf["runtimeConfig"] = {{"mac", "@MAC@"}};
            auto t = in.conf.dump();
            t.replace(t.find("@MAC@"), 5, "0a:58:0a:f4:01:\xff");
            in.rawStdin = t;
          },
          kPlugin),
      bad("NumberTooLargeForADouble", 6, {"not valid JSON", "number overflow"},
          [](Invocation& in) { in.rawStdin = in.conf.dump().insert(1, "\"x\": 1e999, "); }),
      bad("NotAnObject", 6, {"must be a JSON object", "an array"}, raw("[1, 2, 3]")),
      bad("Oversized", 6, {"larger than"}, [huge](Invocation& in) { in.conf["padding"] = huge; }),
      bad("DeeplyNestedUnterminated", 6, {"nested deeper than 128"}, raw(nested)),
      // Valid JSON 100,000 levels deep is ~200 KB, under the stdin limit; copying it crashed.
      bad("DeepInPodCidrs", 6, {"network config on stdin is nested deeper than 128 levels"},
          deepAt("/ipam/node/podCIDRs", 100000)),
      bad("DeepObjectsInPodCidrs", 6, {"nested deeper than 128"},
          deepAt("/ipam/node/podCIDRs", 100000, true)),
      bad("DeepInRuntimeConfig", 6, {"nested deeper than 128"},
          deepAt("/runtimeConfig/portMappings", 100000)),
      bad("DeepInArgs", 6, {"nested deeper than 128"}, deepAt("/args/cni/ips", 100000, true)),
      bad("DeepInPrevResult", 6, {"nested deeper than 128"}, deepAt("/prevResult/dns", 100000)),
      bad("DeepInUnknownField", 6, {"nested deeper than 128"}, deepAt("/vendor", 100000)),
      bad("DeepJustPastTheLimit", 6, {"nested deeper than 128"}, deepAt("/vendor", 128)),
      bad("DeepWholeConfig", 6, {"nested deeper than 128"}, raw(testing::nestedJson(170000, true))),

      // ---- cniVersion / cniVersions ----
      bad("CniVersionMissing", 1, {"cniVersion is missing"}, erase("/cniVersion")),
      bad("CniVersionUnknown", 1, {"cniVersion", "9.9.9", "not supported"},
          set("/cniVersion", "9.9.9")),
      bad("CniVersionEmpty", 1, {"cniVersion", "not supported"}, set("/cniVersion", "")),
      bad("CniVersionTwoParts", 1, {"cniVersion", "\"1.0\""}, set("/cniVersion", "1.0")),
      bad("CniVersionNumber", 6, {"cniVersion", "expected a string"}, set("/cniVersion", 1.0)),
      bad("CniVersionsNotArray", 7, {"cniVersions", "expected an array"},
          set("/cniVersions", "1.0.0")),
      bad("CniVersionsItemNumber", 7, {"cniVersions[1]", "expected a string"},
          set("/cniVersions", json::array({"1.0.0", 1}))),
      bad("CniVersionsWithoutCniVersion", 7, {"cniVersions", "1.0.0"},
          set("/cniVersions", json::array({"0.4.0", "1.1.0"}))),
      bad("CniVersionsOnlyUnsupported", 1, {"cniVersions", "2.0.0"},
          set("/cniVersions", json::array({"2.0.0", "9.9.9"}))),

      // ---- name and type ----
      bad("NameMissing", 7, {"name is missing"}, erase("/name")),
      bad("NameNumber", 7, {"name", "expected a string"}, set("/name", 7)),
      bad("NamePathTraversal", 7, {"name", "../x", "not a valid network name"},
          set("/name", "../x")),
      bad("NameWithSlash", 7, {"name", "a/b"}, set("/name", "a/b")),
      bad("NameDotDot", 7, {"name", "not a valid network name"}, set("/name", "..")),
      bad("NameControlCharacter", 7, {"name", "not a valid network name"}, set("/name", "net\n1")),
      bad("NameTooLong", 7, {"name", "at most 64"}, set("/name", std::string(65, 'n'))),
      // Messages quote the bad value cut to a length: a cut through a UTF-8 sequence must still
      // give a valid JSON error.
      bad("NameNonAsciiCutInQuote", 7, {"name", "not a valid network name"},
          set("/name", "a" + repeated("\u00e9", 40))),
      bad("CniVersionNonAsciiCutInQuote", 1, {"cniVersion", "not supported"},
          set("/cniVersion", "1" + repeated("\u00e9", 30))),
      bad("TypeNumber", 7, {"type", "expected a string"}, set("/type", 3)),

      // ---- the plugin's own options ----
      bad("MtuString", 7, {"mtu", "expected an integer"}, set("/mtu", "1500"), kPlugin),
      bad("MtuFloat", 7, {"mtu", "expected an integer"}, set("/mtu", 1500.5), kPlugin),
      bad("MtuNegative", 7, {"mtu", "out of range"}, set("/mtu", -1), kPlugin),
      bad("MtuTooLarge", 7, {"mtu", "out of range"}, set("/mtu", 1000000), kPlugin),
      bad("MtuBelowIpv6Minimum", 7, {"mtu", "1280"}, set("/mtu", 576), kPlugin),
      bad("IpMasqString", 7, {"ipMasq", "true or false"}, set("/ipMasq", "true"), kPlugin),
      bad("IpMasqExceptString", 7, {"ipMasqExcept", "expected an array"},
          set("/ipMasqExcept", "10.0.0.0/8"), kPlugin),
      bad("IpMasqExceptItemNumber", 7, {"ipMasqExcept[0]", "expected a CIDR string"},
          set("/ipMasqExcept", json::array({5})), kPlugin),
      bad("IpMasqExceptSlash33", 7, {"ipMasqExcept[0]", "not a CIDR"},
          set("/ipMasqExcept", json::array({"10.0.0.0/33"})), kPlugin),
      bad("IpMasqExceptHostBits", 7, {"ipMasqExcept[0]", "host bits"},
          set("/ipMasqExcept", json::array({"10.0.0.1/8"})), kPlugin),
      bad("RuntimeConfigMacInvalid", 7, {"runtimeConfig.mac"},
          set("/runtimeConfig", {{"mac", "zz:zz"}}), kPlugin),
      bad("RuntimeConfigMacSigned", 7, {"runtimeConfig.mac", "not a MAC address"},
          set("/runtimeConfig", {{"mac", "0e:-1:00:00:00:01"}}), kPlugin),
      bad("RuntimeConfigMacSpace", 7, {"runtimeConfig.mac", "not a MAC address"},
          set("/runtimeConfig", {{"mac", "0e: 1:00:00:00:01"}}), kPlugin),
      bad("CniArgsMacInvalid", 4, {"CNI_ARGS MAC"}, setEnv("CNI_ARGS", "IgnoreUnknown=1;MAC=zz"),
          kPlugin),

      // ---- ipam ----
      bad("IpamMissing", 7, {"ipam is missing"}, erase("/ipam")),
      bad("IpamString", 7, {"ipam", "expected an object"}, set("/ipam", "dualstack-ipam")),
      bad("IpamTypeMissing", 7, {"ipam.type is missing"}, erase("/ipam/type"), kPlugin),
      bad("IpamTypeNumber", 7, {"ipam.type", "expected a string"}, set("/ipam/type", 1), kPlugin),
      bad("IpamTypeRelativePath", 7, {"ipam.type", "../x", "not a path"}, set("/ipam/type", "../x"),
          kPlugin),
      bad("IpamTypeAbsolutePath", 7, {"ipam.type", "/bin/sh", "not a path"},
          set("/ipam/type", "/bin/sh"), kPlugin),
      bad("IpamTypeNotOnCniPath", 7, {"no-such-ipam-plugin"},
          set("/ipam/type", "no-such-ipam-plugin"), kPlugin),
      bad("IpamDataDirNumber", 7, {"ipam.dataDir", "expected a string"}, set("/ipam/dataDir", 5)),
      bad("IpamDataDirRelative", 7, {"ipam.dataDir", "not an absolute path"},
          set("/ipam/dataDir", "relative/dir")),
      bad("IpamNodeString", 7, {"ipam.node", "expected an object"}, set("/ipam/node", "worker-1")),
      bad("IpamNodePodCidrsString", 7, {"ipam.node.podCIDRs", "expected an array"},
          set("/ipam/node/podCIDRs", "10.244.1.0/24")),
      bad("IpamNodePodCidrNumber", 7, {"ipam.node.podCIDRs[0]", "expected a string"},
          set("/ipam/node/podCIDRs", json::array({42}))),
      bad("IpamNodePodCidrsEmpty", 7, {"ipam.node.podCIDRs", "empty"},
          set("/ipam/node/podCIDRs", json::array())),
      bad("IpamNodeTwoIpv4PodCidrs", 7, {"ipam.node.podCIDRs[1]", "second IPv4"},
          set("/ipam/node/podCIDRs", json::array({"10.244.1.0/24", "10.245.1.0/24"}))),
      bad("IpamNodePodCidrHostBits", 7, {"ipam.node.podCIDRs[0]", "host bits"},
          set("/ipam/node/podCIDRs", json::array({"10.244.1.7/24"}))),
      bad("IpamNodePodCidrV4Slash33", 7, {"ipam.node.podCIDRs[0]", "not an address in CIDR form"},
          set("/ipam/node/podCIDRs", json::array({"10.244.1.0/33"}))),
      bad("IpamNodePodCidrV6Slash129", 7, {"ipam.node.podCIDRs[1]", "not an address in CIDR form"},
          set("/ipam/node/podCIDRs", json::array({"10.244.1.0/24", "fd00:10:244:1::/129"}))),
      bad("IpamNodePodCidrTooSmall", 7, {"ipam.node.podCIDRs[0]", "too small"},
          set("/ipam/node/podCIDRs", json::array({"10.244.1.0/31"}))),
      bad("IpamNodeAddressesString", 7, {"ipam.node.addresses", "expected an array"},
          set("/ipam/node/addresses", "192.168.10.5")),
      bad("IpamNodeAddressNotObject", 7, {"ipam.node.addresses[0]", "expected an object"},
          set("/ipam/node/addresses", json::array({5}))),
      bad("IpamNodeAddressTypeNumber", 7, {"ipam.node.addresses[0].type", "expected a string"},
          set("/ipam/node/addresses", json::array({{{"type", 1}, {"address", "192.168.10.5"}}}))),
      bad("IpamNodeInternalIpNotAnIp", 7, {"ipam.node.addresses[0].address", "not an IP address"},
          set("/ipam/node/addresses",
              json::array({{{"type", "InternalIP"}, {"address", "node-1"}}}))),
      bad("IpamNodeFileNumber", 7, {"ipam.node.file", "expected a string"},
          set("/ipam/node", {{"file", 3}})),
      bad("IpamNodeFileRelative", 7, {"ipam.node.file", "not an absolute path"},
          set("/ipam/node", {{"file", "node.json"}})),
      bad("IpamNodeFileAndPodCidrs", 7, {"ipam.node", "either file or podCIDRs"},
          set("/ipam/node/file", "/etc/node.json")),
      bad("IpamNodeFileMissing", 11, {"ipam.node.file", "no-such-node.json"},
          [](Invocation& in) {
            in.conf["ipam"]["node"] = {{"file", in.scratch + "/no-such-node.json"}};
          }),
      bad("IpamNodeFileNotJson", 6, {"node file", "not valid JSON"},
          withFile("node.json", "{\"spec\": ", asNodeFile)),
      bad("IpamNodeFilePodCidrsWrongType", 7, {"node file", "spec.podCIDRs", "expected an array"},
          withFile("node.json", R"({"spec": {"podCIDRs": "10.244.1.0/24"}})", asNodeFile)),
      bad("IpamNodeFileDeeplyNested", 6, {"node file", "is nested deeper than 128 levels"},
          withFile("node.json", R"({"spec": {"podCIDRs": )" + testing::nestedJson(100000) + "}}",
                   asNodeFile)),
      bad("IpamNodeFileNoPodCidrsYet", 11, {"node file", "no spec.podCIDRs yet"},
          withFile("node.json", R"({"spec": {}, "status": {}})", asNodeFile)),
      bad("IpamNodeKubeconfigNumber", 7, {"ipam.node.kubeconfig", "expected a string"},
          set("/ipam/node", {{"kubeconfig", 1}, {"name", "worker-1"}})),
      bad("IpamNodeKubeconfigRelative", 7, {"ipam.node.kubeconfig", "not an absolute path"},
          set("/ipam/node", {{"kubeconfig", "kube.conf"}, {"name", "worker-1"}})),
      bad("IpamNodeNameInvalid", 7, {"ipam.node.name", "not a valid Kubernetes node name"},
          set("/ipam/node", {{"kubeconfig", "/etc/kube.conf"}, {"name", "../Worker"}})),
      bad("IpamNodeTimeoutWrongType", 7, {"ipam.node.timeout"},
          set("/ipam/node", {{"kubeconfig", "/etc/kube.conf"}, {"name", "w1"}, {"timeout", true}})),
      bad("IpamNodeApiServerUnreachable", 11, {"127.0.0.1:1"},
          withFile("kube.conf",
                   std::string("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: "
                               "{server: \"https://127.0.0.1:1\", insecure-skip-tls-verify: true}\n"
                               "users:\n- name: u\n  user: {token: \"") +
                       kSecretToken +
                       "\"}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                       "current-context: x\n",
                   [](Invocation& in, const std::string& p) {
                     in.conf["ipam"]["node"] = {
                         {"kubeconfig", p}, {"name", "worker-1"}, {"timeout", "1s"}};
                   })),
      bad("IpamKubeconfigMalformed", 7, {"kube.conf"},
          withFile("kube.conf", std::string("clusters: [ {server: \"") + kSecretToken + "\"\n",
                   asKubeconfig)),
      // The bearer token must never travel in cleartext, even to a server that would answer.
      bad("IpamKubeconfigPlainHttp", 7,
          {"kube.conf", "clusters[0].cluster.server",
           "\"http://127.0.0.1:1\" is not an https:// URL"},
          withFile("kube.conf",
                   std::string("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: "
                               "{server: \"http://127.0.0.1:1\"}\nusers:\n- name: u\n  user: "
                               "{token: \"") +
                       kSecretToken +
                       "\"}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                       "current-context: x\n",
                   asKubeconfig)),
      bad("IpamKubeconfigDeepYaml", 7, {"kube.conf", "nested too deeply"},
          withFile("kube.conf",
                   "current-context: " + std::string(100000, '[') + "x" + std::string(100000, ']') +
                       "\n",
                   asKubeconfig)),
      bad("IpamKubeconfigDeepBlockYaml", 7, {"kube.conf", "nested too deeply"},
          withFile(
              "kube.conf",
              [] {
                std::string t = "clusters:\n";
                for (int i = 0; i < 100000; ++i) t += "- ";
                return t + "x\n";
              }(),
              asKubeconfig)),

      bad("IpamNodeFileIsAFifo", 5, {"node file", "is a FIFO, not a regular file"},
          withFifo("node.json", asNodeFile)),
      bad("IpamNodeFileIsADirectory", 5, {"node file", "is a directory, not a regular file"},
          [](Invocation& in) {
            in.conf["ipam"]["node"] = {{"file", in.scratch}};
          }),
      bad("IpamKubeconfigIsAFifo", 5, {"kubeconfig", "is a FIFO, not a regular file"},
          withFifo("kube.conf", asKubeconfig)),
      bad("IpamNodeAndRanges", 7, {"ipam", "not both"},
          set("/ipam/ranges", json::array({json::array({{{"subnet", "10.9.0.0/24"}}})}))),
      bad("IpamNoAddressSource", 7, {"ipam", "no address source"}, erase("/ipam/node")),
      bad("IpamRangesString", 7, {"ipam.ranges", "expected an array"},
          all({erase("/ipam/node"), set("/ipam/ranges", "10.9.0.0/24")})),
      bad("IpamRangeSetNotArray", 7, {"ipam.ranges[0]", "expected an array"},
          all({erase("/ipam/node"),
               set("/ipam/ranges", json::array({{{"subnet", "10.9.0.0/24"}}}))})),
      bad("IpamRangeNotObject", 7, {"ipam.ranges[0][0]", "expected an object"},
          all({erase("/ipam/node"),
               set("/ipam/ranges", json::array({json::array({"10.9.0.0/24"})}))})),
      bad("IpamRangeSubnetMissing", 7, {"ipam.ranges[0][0].subnet is missing"},
          all({erase("/ipam/node"),
               set("/ipam/ranges", json::array({json::array({json::object()})}))})),
      bad("IpamRangeSubnetInvalid", 7, {"ipam.ranges[0][0].subnet", "not an address in CIDR form"},
          all({erase("/ipam/node"),
               set("/ipam/ranges", json::array({json::array({{{"subnet", "10.9.0.0/99"}}})}))})),
      bad("IpamRangeStartNumber", 7, {"ipam.ranges[0][0].rangeStart", "expected a string"},
          all({erase("/ipam/node"),
               set("/ipam/ranges", json::array({json::array(
                                       {{{"subnet", "10.9.0.0/24"}, {"rangeStart", 10}}})}))})),
      bad("IpamRangeStartOutsideSubnet", 7, {"ipam.ranges[0][0]", "rangeStart", "outside"},
          all({erase("/ipam/node"),
               set("/ipam/ranges", json::array({json::array({{{"subnet", "10.9.0.0/24"},
                                                              {"rangeStart", "10.8.0.5"}}})}))})),
      bad("IpamRangeEndBeforeStart", 7, {"ipam.ranges[0][0]", "rangeStart", "after rangeEnd"},
          all({erase("/ipam/node"),
               set("/ipam/ranges", json::array({json::array({{{"subnet", "10.9.0.0/24"},
                                                              {"rangeStart", "10.9.0.50"},
                                                              {"rangeEnd", "10.9.0.20"}}})}))})),
      bad("IpamRangeGatewayInvalid", 7, {"ipam.ranges[0][0].gateway", "not an IP address"},
          all({erase("/ipam/node"),
               set("/ipam/ranges",
                   json::array({json::array({{{"subnet", "10.9.0.0/24"}, {"gateway", "gw"}}})}))})),
      bad("IpamRangesOverlap", 7, {"ipam.ranges[1]", "overlaps"},
          all({erase("/ipam/node"),
               set("/ipam/ranges", json::array({json::array({{{"subnet", "10.9.0.0/16"}}}),
                                                json::array({{{"subnet", "10.9.4.0/24"}}})}))})),
      bad("IpamRoutesString", 7, {"ipam.routes", "expected an array"},
          set("/ipam/routes", "0.0.0.0/0")),
      bad("IpamRouteDstMissing", 7, {"ipam.routes[0].dst is missing"},
          set("/ipam/routes", json::array({{{"gw", "10.244.1.1"}}}))),
      bad("IpamRouteGwOtherFamily", 7, {"ipam.routes[0].gw", "family"},
          set("/ipam/routes", json::array({{{"dst", "0.0.0.0/0"}, {"gw", "fd00::1"}}}))),

      // ---- runtimeConfig, args, prevResult ----
      bad("RuntimeConfigString", 7, {"runtimeConfig", "expected an object"},
          set("/runtimeConfig", "ips")),
      bad("RuntimeConfigIpsNotArray", 7, {"runtimeConfig.ips", "expected an array"},
          set("/runtimeConfig", {{"ips", "10.244.1.9"}})),
      bad("RuntimeConfigIpInvalid", 7, {"runtimeConfig.ips[0]", "not an IP address"},
          set("/runtimeConfig", {{"ips", json::array({"10.244.1.300"})}})),
      // JSON strings may hold NUL ("\u0000"); C APIs would stop reading there.
      bad("RuntimeConfigIpWithNul", 7, {"runtimeConfig.ips[0]", "not an IP address"},
          set("/runtimeConfig", {{"ips", json::array({std::string("10.244.1.9\0junk", 15)})}})),
      bad("IpamNodeFileWithNul", 7, {"ipam.node.file", "not an absolute path"},
          set("/ipam/node", {{"file", std::string("/etc/hostname\0.json", 19)}})),
      bad("IpamNodeKubeconfigWithNul", 7, {"ipam.node.kubeconfig", "not an absolute path"},
          set("/ipam/node",
              {{"kubeconfig", std::string("/etc/hostname\0.conf", 19)}, {"name", "w1"}})),
      bad("ArgsString", 7, {"args", "expected an object"}, set("/args", "cni")),
      bad("ArgsCniIpsNotArray", 7, {"args.cni.ips", "expected an array"},
          set("/args", {{"cni", {{"ips", 1}}}})),
      bad("PrevResultString", 6, {"prevResult", "expected an object"}, set("/prevResult", "{}")),
      bad("PrevResultBadAddress", 6, {"prevResult", "ips[0].address"},
          set("/prevResult",
              {{"cniVersion", "1.0.0"}, {"ips", json::array({{{"address", "nope"}}})}})),
      bad("PrevResultInterfaceIndex", 6, {"prevResult", "ips[0].interface"},
          set("/prevResult",
              {{"cniVersion", "1.0.0"},
               {"ips", json::array({{{"address", "10.1.0.2/24"}, {"interface", 4}}})}})),

      // ---- environment ----
      bad("CommandUnknown", 4, {"CNI_COMMAND", "ATTACH"}, setEnv("CNI_COMMAND", "ATTACH")),
      bad("ContainerIdMissing", 4, {"CNI_CONTAINERID is not set"}, unsetEnv("CNI_CONTAINERID")),
      bad("ContainerIdPathTraversal", 4, {"CNI_CONTAINERID", "../x"},
          setEnv("CNI_CONTAINERID", "../x")),
      bad("ContainerIdWithSlash", 4, {"CNI_CONTAINERID", "a/b"}, setEnv("CNI_CONTAINERID", "a/b")),
      bad("ContainerIdControlCharacter", 4, {"CNI_CONTAINERID", "\\x01"},
          setEnv("CNI_CONTAINERID", "abc\x01")),
      bad("ContainerIdTooLong", 4, {"CNI_CONTAINERID", "128"},
          setEnv("CNI_CONTAINERID", std::string(129, 'c'))),
      bad("IfnameMissing", 4, {"CNI_IFNAME is not set"}, unsetEnv("CNI_IFNAME")),
      bad("IfnameEmpty", 4, {"CNI_IFNAME is not set"}, setEnv("CNI_IFNAME", "")),
      bad("IfnameTooLong", 4, {"CNI_IFNAME", "eth0123456789abc"},
          setEnv("CNI_IFNAME", "eth0123456789abc")),
      bad("IfnameWithSlash", 4, {"CNI_IFNAME", "e/0"}, setEnv("CNI_IFNAME", "e/0")),
      bad("IfnameDot", 4, {"CNI_IFNAME", "\".\""}, setEnv("CNI_IFNAME", ".")),
      bad("IfnameDotDot", 4, {"CNI_IFNAME", "\"..\""}, setEnv("CNI_IFNAME", "..")),
      bad("IfnameWithSpace", 4, {"CNI_IFNAME"}, setEnv("CNI_IFNAME", "eth 0")),
      // Names the kernel would take but the result's JSON cannot carry, or only as other text.
      bad("IfnameNotUtf8", 4, {"CNI_IFNAME", "eth\\xff", "printable ASCII"},
          setEnv("CNI_IFNAME", "eth\xff")),
      bad("IfnameUtf8BeyondAscii", 4, {"CNI_IFNAME", "printable ASCII"},
          setEnv("CNI_IFNAME", "eth\xc3\xa9")),
      bad("ContainerIdNotUtf8", 4, {"CNI_CONTAINERID", "\\xff"},
          setEnv("CNI_CONTAINERID", "abc\xff")),
      bad("NetnsNotUtf8", 4, {"CNI_NETNS", "\\xff", "printable ASCII"},
          [](Invocation& in) { in.env["CNI_NETNS"] = in.podPath + "\xff"; }),
      bad("CniArgsIpNotUtf8", 4, {"CNI_ARGS IP", "not an IP address"},
          setEnv("CNI_ARGS", "IgnoreUnknown=1;IP=10.244.1.9\xff")),
      bad("CniArgsMacNotUtf8", 4, {"CNI_ARGS MAC"},
          setEnv("CNI_ARGS", "IgnoreUnknown=1;MAC=0a:58:0a:f4:01:0\xff"), kPlugin),
      bad("CniPathMissing", 4, {"CNI_PATH is not set"}, unsetEnv("CNI_PATH")),
      bad("CniArgsHuge", 4, {"CNI_ARGS", "bytes long"},
          setEnv("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=" + std::string(70000, 'p'))),
      bad("CniArgsNotKeyValue", 4, {"CNI_ARGS", "not a KEY=VALUE pair"},
          setEnv("CNI_ARGS", "IgnoreUnknown=1;garbage")),
      bad("CniArgsIpInvalid", 4, {"CNI_ARGS IP", "not an IP address"},
          setEnv("CNI_ARGS", "IgnoreUnknown=1;IP=10.244.1.999")),
      bad("NetnsMissingVariable", 4, {"CNI_NETNS is not set"}, unsetEnv("CNI_NETNS")),
      bad(
          "NetnsDoesNotExist", 3, {"CNI_NETNS", "does not exist"},
          [](Invocation& in) { in.env["CNI_NETNS"] = in.scratch + "/no-such-netns"; }, kPlugin),
      bad("NetnsRegularFile", 4, {"CNI_NETNS", "not a network namespace"},
          withFile("not-a-netns", "x",
                   [](Invocation& in, const std::string& p) { in.env["CNI_NETNS"] = p; }),
          kPlugin),
      bad(
          "NetnsDirectory", 4, {"CNI_NETNS", "not a network namespace"},
          [](Invocation& in) { in.env["CNI_NETNS"] = in.scratch; }, kPlugin),
      bad("NetnsFifo", 4, {"CNI_NETNS", "is a FIFO, not a network namespace"},
          withFifo("netns", [](Invocation& in, const std::string& p) { in.env["CNI_NETNS"] = p; }),
          kPlugin),
      bad("NetnsSymlinkToFifo", 4, {"CNI_NETNS", "is a FIFO, not a network namespace"},
          withFifo("fifo",
                   [](Invocation& in, const std::string& p) {
                     std::filesystem::create_symlink(p, in.scratch + "/netns-link");
                     in.env["CNI_NETNS"] = in.scratch + "/netns-link";
                   }),
          kPlugin),
      bad("NetnsCharacterDevice", 4, {"CNI_NETNS /dev/null is a character device"},
          setEnv("CNI_NETNS", "/dev/null"), kPlugin),
      bad("NetnsMountNamespace", 4, {"CNI_NETNS", "/proc/self/ns/mnt"},
          setEnv("CNI_NETNS", "/proc/self/ns/mnt"), kPlugin),
      bad("NetnsIsThePluginsOwn", 4, {"CNI_NETNS", "plugin's own network namespace"},
          setEnv("CNI_NETNS", "/proc/self/ns/net"), kPlugin),
  };
  return c;
}

// ---- the observed state ----

std::string mustShell(const std::string& command) {
  std::string out;
  const int rc = testing::shell(command + " 2>&1", &out);
  if (rc != 0)
    throw std::runtime_error("`" + command + "` failed (" + std::to_string(rc) + "): " + out);
  return out;
}

struct KernelState {
  std::map<std::string, std::string> views;
  bool operator==(const KernelState&) const = default;
};

KernelState kernelState(const std::vector<const TestNetns*>& namespaces) {
  KernelState s;
  for (const auto* ns : namespaces) {
    for (const char* view : {"-d link show", "addr show", "route show", "-6 route show"}) {
      s.views[ns->name() + ": ip " + view] = mustShell("ip -n " + ns->name() + " " + view);
    }
  }
  return s;
}

std::string diff(const KernelState& a, const KernelState& b) {
  std::string out;
  for (const auto& [k, v] : a.views) {
    const auto it = b.views.find(k);
    if (it == b.views.end() || it->second != v) {
      out +=
          "--- " + k + " before:\n" + v + "--- after:\n" + (it == b.views.end() ? "" : it->second);
    }
  }
  return out;
}

std::string listTree(const std::map<std::string, std::string>& tree) {
  std::string out;
  for (const auto& [path, content] : tree)
    out += " " + path + "(" + std::to_string(content.size()) + ")";
  return out;
}

json baseConf(const std::string& dataDir) {
  std::ifstream f(testing::sourcePath("conf/10-dualstack.conflist"));
  const json list = json::parse(f);
  json conf = list.at("plugins").at(0);
  conf["name"] = list.at("name");
  conf["cniVersion"] = list.at("cniVersion");
  conf["ipam"]["dataDir"] = dataDir;
  return conf;
}

class BadInputTest : public ::testing::TestWithParam<BadInput> {
 protected:
  // A plugin that rejects oversized stdin stops reading it: writing the rest must fail with
  // EPIPE, not kill the test process.
  static void SetUpTestSuite() { std::signal(SIGPIPE, SIG_IGN); }
};

// A node and a pod namespace, and a store that already holds another pod's addresses: a bad
// request must leave them as they are.
struct Resident {
  TempDir tmp;
  TestNetns node{"node"};
  TestNetns pod{"pod"};
  json good = baseConf(tmp.file("store/networks"));

  // The resident pod's ADD, with the good config.
  void add() const {
    const RunResult r = testing::runPlugin(testing::binPath("dualstack-ipam"),
                                           testing::cniEnv("ADD", "resident", pod.path()),
                                           good.dump(), node.path());
    ASSERT_EQ(r.exitCode, 0) << "setup ADD failed: " << r.out << r.err;
  }
  KernelState kernel() const { return kernelState({&node, &pod}); }
};

// A run as a failure message shows it.
std::string shown(const RunResult& r) {
  return "exit " + std::to_string(r.exitCode) + "\nstdout: " + r.out.substr(0, 2000) +
         "\nstderr: " + r.err.substr(0, 2000);
}

// The run failed with one line on stdout, a CNI error of `code` whose msg holds every part.
void expectCniError(const RunResult& r, int code, const std::vector<std::string>& parts) {
  EXPECT_NE(r.exitCode, 0) << shown(r);
  const json e = r.json();
  ASSERT_TRUE(e.is_object()) << "stdout is not a CNI error: " << shown(r);
  EXPECT_TRUE(e.contains("cniVersion") && e["cniVersion"].is_string()) << shown(r);
  ASSERT_TRUE(e.contains("code") && e["code"].is_number_integer()) << shown(r);
  ASSERT_TRUE(e.contains("msg") && e["msg"].is_string()) << shown(r);
  EXPECT_EQ(e["code"].get<int>(), code) << shown(r);
  const std::string msg = e["msg"].get<std::string>();
  for (const auto& part : parts) EXPECT_THAT(msg, ::testing::HasSubstr(part)) << shown(r);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << shown(r);
}

TEST_P(BadInputTest, IsRejectedWithItsCodeAndChangesNothing) {
  DUALSTACK_REQUIRE_ROOT();
  const BadInput& c = GetParam();
  Resident res;
  ASSERT_NO_FATAL_FAILURE(res.add());
  const std::string scratch = res.tmp.file("scratch");
  std::filesystem::create_directories(scratch);

  for (const unsigned which : {unsigned{kPlugin}, unsigned{kIpam}}) {
    if ((c.binaries & which) == 0) continue;
    const std::string binary = which == kPlugin ? "dualstack" : "dualstack-ipam";
    SCOPED_TRACE(binary);

    Invocation in{res.good, std::nullopt, testing::cniEnv("ADD", "cid-" + c.name, res.pod.path()),
                  scratch, res.pod.path()};
    c.mutate(in);
    const std::string input = in.rawStdin ? *in.rawStdin : in.conf.dump();

    const auto treeBefore = testing::snapshotTree(res.tmp.path());
    const KernelState kernelBefore = res.kernel();
    // Bad input is rejected at once: nothing in it may make a plugin wait.
    const RunResult r = testing::runPlugin(testing::binPath(binary), in.env, input, res.node.path(),
                                           std::chrono::seconds(30));
    const auto treeAfter = testing::snapshotTree(res.tmp.path());
    const KernelState kernelAfter = res.kernel();

    expectCniError(r, c.code, c.msgParts);
    // Never a credential anywhere.
    EXPECT_EQ(r.out.find(kSecretToken), std::string::npos) << shown(r);
    EXPECT_EQ(r.err.find(kSecretToken), std::string::npos) << shown(r);
    EXPECT_TRUE(treeBefore == treeAfter)
        << "files changed\nbefore:" << listTree(treeBefore) << "\nafter: " << listTree(treeAfter);
    EXPECT_TRUE(kernelBefore == kernelAfter) << "kernel state changed:\n"
                                             << diff(kernelBefore, kernelAfter);
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, BadInputTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<BadInput>& p) { return p.param.name; });

// The corpus is meant to stay large: guard against it shrinking by accident.
TEST(BadInputCorpus, HasAtLeastSixtyDistinctCases) {
  const auto all = cases();
  std::set<std::string> names;
  for (const auto& c : all) names.insert(c.name);
  EXPECT_EQ(names.size(), all.size()) << "duplicate case names";
  EXPECT_GE(all.size(), 60u);
}

// ---- every field both binaries read, given a value of each wrong JSON type ----
//
// The reference plugins decode their config into typed structs, so a field of the wrong type
// fails the whole request. Here too: code 7 naming the field (6 where the specification makes it
// a decode failure: cniVersion, and the result in prevResult), from both binaries, and nothing
// created. A null counts as absent, as in Go.

enum Kind : unsigned {
  kString = 1,
  kInteger = 2,
  kFraction = 4,
  kBool = 8,
  kArray = 16,
  kObject = 32
};

const std::vector<std::pair<Kind, json>>& samples() {
  static const std::vector<std::pair<Kind, json>> values = {
      {kString, "x"}, {kInteger, 5},           {kFraction, 1.5},
      {kBool, true},  {kArray, json::array()}, {kObject, json::object()}};
  return values;
}

struct TypedField {
  std::string pointer;  // where in the config
  std::string path;     // how the error names it
  unsigned accepts;     // the kinds that are not a type error
  unsigned binaries = kBoth;
  int code = 7;
  Mutator shape = nullptr;  // puts the config in the form the field belongs to
  std::string command = "ADD";
};

std::ostream& operator<<(std::ostream& os, const TypedField& f) { return os << f.pointer; }

std::vector<TypedField> typedFields() {
  const Mutator kube =
      set("/ipam/node", {{"kubeconfig", "/etc/cni/net.d/none.kubeconfig"}, {"name", "worker-1"}});
  const Mutator nodeFile = set("/ipam/node", {{"file", "/etc/cni/net.d/none.json"}});
  const Mutator ranges =
      all({erase("/ipam/node"),
           set("/ipam/ranges", json::array({json::array({{{"subnet", "10.9.0.0/24"}}})}))});
  const Mutator oldRange = all({erase("/ipam/node"), set("/ipam/subnet", "10.9.0.0/24")});
  const Mutator route = set("/ipam/routes", json::array({{{"dst", "0.0.0.0/0"}}}));
  const Mutator prev = set("/prevResult", json::parse(R"({"cniVersion": "1.0.0",
      "interfaces": [{"name": "eth0", "mac": "0a:58:0a:f4:01:09", "sandbox": "/run/netns/x"}],
      "ips": [{"address": "10.244.1.9/24", "gateway": "10.244.1.1", "interface": 0}],
      "routes": [{"dst": "0.0.0.0/0", "gw": "10.244.1.1"}], "dns": {}})"));
  const auto gc = [](const char* key) {
    return all(
        {set("/cniVersion", "1.1.0"),
         set(std::string("/") + key, json::array({{{"containerID", "c1"}, {"ifname", "eth0"}}}))});
  };
  const unsigned number = kInteger | kFraction;
  std::vector<TypedField> f = {
      {"/cniVersion", "cniVersion", kString, kBoth, 6},
      {"/cniVersions", "cniVersions", kArray},
      {"/cniVersions/0", "cniVersions[0]", kString, kBoth, 7,
       set("/cniVersions", json::array({"1.0.0"}))},
      {"/name", "name", kString},
      {"/type", "type", kString},
      {"/logFile", "logFile", kString},
      {"/logLevel", "logLevel", kString},
      {"/ipam", "ipam", kObject},
      {"/runtimeConfig", "runtimeConfig", kObject},
      {"/args", "args", kObject},
      {"/prevResult", "prevResult", kObject, kBoth, 6},
      // The plugin's own options.
      {"/mtu", "mtu", kInteger, kPlugin},
      {"/ipMasq", "ipMasq", kBool, kPlugin},
      {"/ipMasqExcept", "ipMasqExcept", kArray, kPlugin},
      {"/ipMasqExcept/0", "ipMasqExcept[0]", kString, kPlugin, 7,
       set("/ipMasqExcept", json::array({"10.0.0.0/8"}))},
      {"/runtimeConfig/mac", "runtimeConfig.mac", kString, kPlugin},
      // ipam, read by dualstack-ipam (and by dualstack through it).
      {"/ipam/type", "ipam.type", kString},
      {"/ipam/dataDir", "ipam.dataDir", kString},
      {"/ipam/routes", "ipam.routes", kArray},
      {"/ipam/routes/0", "ipam.routes[0]", kObject, kBoth, 7, route},
      {"/ipam/routes/0/dst", "ipam.routes[0].dst", kString, kBoth, 7, route},
      {"/ipam/routes/0/gw", "ipam.routes[0].gw", kString, kBoth, 7, route},
      {"/ipam/routes/0/mtu", "ipam.routes[0].mtu", kInteger, kBoth, 7, route},
      {"/ipam/routes/0/advmss", "ipam.routes[0].advmss", kInteger, kBoth, 7, route},
      {"/ipam/routes/0/priority", "ipam.routes[0].priority", kInteger, kBoth, 7, route},
      {"/ipam/routes/0/table", "ipam.routes[0].table", kInteger, kBoth, 7, route},
      {"/ipam/routes/0/scope", "ipam.routes[0].scope", kInteger, kBoth, 7, route},
      {"/ipam/node", "ipam.node", kObject},
      {"/ipam/node/podCIDRs", "ipam.node.podCIDRs", kArray},
      {"/ipam/node/podCIDRs/0", "ipam.node.podCIDRs[0]", kString},
      {"/ipam/node/addresses", "ipam.node.addresses", kArray},
      {"/ipam/node/addresses/0", "ipam.node.addresses[0]", kObject},
      {"/ipam/node/addresses/0/type", "ipam.node.addresses[0].type", kString},
      {"/ipam/node/addresses/0/address", "ipam.node.addresses[0].address", kString},
      {"/ipam/node/file", "ipam.node.file", kString, kBoth, 7, nodeFile},
      {"/ipam/node/kubeconfig", "ipam.node.kubeconfig", kString, kBoth, 7, kube},
      {"/ipam/node/name", "ipam.node.name", kString, kBoth, 7, kube},
      {"/ipam/node/timeout", "ipam.node.timeout", kString | number, kBoth, 7, kube},
      {"/ipam/node/cacheTTL", "ipam.node.cacheTTL", kString | number, kBoth, 7, kube},
      {"/ipam/ranges", "ipam.ranges", kArray, kBoth, 7, ranges},
      {"/ipam/ranges/0", "ipam.ranges[0]", kArray, kBoth, 7, ranges},
      {"/ipam/ranges/0/0", "ipam.ranges[0][0]", kObject, kBoth, 7, ranges},
      {"/ipam/ranges/0/0/subnet", "ipam.ranges[0][0].subnet", kString, kBoth, 7, ranges},
      {"/ipam/ranges/0/0/rangeStart", "ipam.ranges[0][0].rangeStart", kString, kBoth, 7, ranges},
      {"/ipam/ranges/0/0/rangeEnd", "ipam.ranges[0][0].rangeEnd", kString, kBoth, 7, ranges},
      {"/ipam/ranges/0/0/gateway", "ipam.ranges[0][0].gateway", kString, kBoth, 7, ranges},
      {"/ipam/subnet", "ipam.subnet", kString, kBoth, 7, oldRange},
      {"/ipam/rangeStart", "ipam.rangeStart", kString, kBoth, 7, oldRange},
      {"/ipam/rangeEnd", "ipam.rangeEnd", kString, kBoth, 7, oldRange},
      {"/ipam/gateway", "ipam.gateway", kString, kBoth, 7, oldRange},
      // Without subnet host-local ignores them, but its decoder still types them.
      {"/ipam/rangeStart", "ipam.rangeStart", kString, kBoth, 7, nullptr},
      {"/runtimeConfig/ips", "runtimeConfig.ips", kArray},
      {"/runtimeConfig/ips/0", "runtimeConfig.ips[0]", kString, kBoth, 7,
       set("/runtimeConfig/ips", json::array({"10.244.1.77"}))},
      {"/args/cni", "args.cni", kObject},
      {"/args/cni/ips", "args.cni.ips", kArray},
      {"/args/cni/ips/0", "args.cni.ips[0]", kString, kBoth, 7,
       set("/args/cni/ips", json::array({"10.244.1.77"}))},
      // prevResult is a result: a field of the wrong type there is a decode failure.
      {"/prevResult/interfaces", "prevResult: interfaces", kArray, kBoth, 6, prev},
      {"/prevResult/interfaces/0", "prevResult: interfaces[0]", kObject, kBoth, 6, prev},
      {"/prevResult/interfaces/0/name", "prevResult: interfaces[0].name", kString, kBoth, 6, prev},
      {"/prevResult/interfaces/0/mac", "prevResult: interfaces[0].mac", kString, kBoth, 6, prev},
      {"/prevResult/interfaces/0/mtu", "prevResult: interfaces[0].mtu", kInteger, kBoth, 6, prev},
      {"/prevResult/interfaces/0/sandbox", "prevResult: interfaces[0].sandbox", kString, kBoth, 6,
       prev},
      {"/prevResult/ips", "prevResult: ips", kArray, kBoth, 6, prev},
      {"/prevResult/ips/0", "prevResult: ips[0]", kObject, kBoth, 6, prev},
      {"/prevResult/ips/0/address", "prevResult: ips[0].address", kString, kBoth, 6, prev},
      {"/prevResult/ips/0/gateway", "prevResult: ips[0].gateway", kString, kBoth, 6, prev},
      {"/prevResult/ips/0/interface", "prevResult: ips[0].interface", kInteger, kBoth, 6, prev},
      {"/prevResult/ips/0/version", "prevResult: ips[0].version", kString, kBoth, 6, prev},
      {"/prevResult/routes", "prevResult: routes", kArray, kBoth, 6, prev},
      {"/prevResult/routes/0", "prevResult: routes[0]", kObject, kBoth, 6, prev},
      {"/prevResult/routes/0/dst", "prevResult: routes[0].dst", kString, kBoth, 6, prev},
      {"/prevResult/routes/0/gw", "prevResult: routes[0].gw", kString, kBoth, 6, prev},
      {"/prevResult/routes/0/mtu", "prevResult: routes[0].mtu", kInteger, kBoth, 6, prev},
      {"/prevResult/routes/0/advmss", "prevResult: routes[0].advmss", kInteger, kBoth, 6, prev},
      {"/prevResult/routes/0/priority", "prevResult: routes[0].priority", kInteger, kBoth, 6, prev},
      {"/prevResult/routes/0/table", "prevResult: routes[0].table", kInteger, kBoth, 6, prev},
      {"/prevResult/routes/0/scope", "prevResult: routes[0].scope", kInteger, kBoth, 6, prev},
      {"/prevResult/dns", "prevResult: dns", kObject, kBoth, 6, prev},
  };
  // GC's attachment lists, under both names libcni has used.
  for (const char* key : {"cni.dev~1valid-attachments", "cni.dev~1attachments"}) {
    const std::string name = std::string(key).replace(std::string(key).find("~1"), 2, "/");
    const std::string p = std::string("/") + key;
    f.push_back({p, name, kArray, kBoth, 7, gc(key), "GC"});
    f.push_back({p + "/0", name + "[0]", kObject, kBoth, 7, gc(key), "GC"});
    f.push_back({p + "/0/containerID", name + "[0].containerID", kString, kBoth, 7, gc(key), "GC"});
    f.push_back({p + "/0/ifname", name + "[0].ifname", kString, kBoth, 7, gc(key), "GC"});
  }
  return f;
}

class WrongTypeTest : public ::testing::TestWithParam<TypedField> {};

TEST_P(WrongTypeTest, IsRejectedNamingTheFieldAndChangesNothing) {
  DUALSTACK_REQUIRE_ROOT();
  const TypedField& f = GetParam();
  Resident res;
  ASSERT_NO_FATAL_FAILURE(res.add());

  // The kernel is compared once around all of this field's invocations (a change would stay);
  // the files around each.
  const KernelState kernelBefore = res.kernel();
  std::size_t tried = 0;
  for (const auto& [kind, value] : samples()) {
    if ((f.accepts & kind) != 0) continue;
    for (const unsigned which : {unsigned{kPlugin}, unsigned{kIpam}}) {
      if ((f.binaries & which) == 0) continue;
      const std::string binary = which == kPlugin ? "dualstack" : "dualstack-ipam";
      SCOPED_TRACE(binary + " with " + f.pointer + " = " + value.dump());
      Invocation in{res.good, std::nullopt, testing::cniEnv(f.command, "cid-typed", res.pod.path()),
                    res.tmp.path(), res.pod.path()};
      if (f.shape) f.shape(in);
      in.conf[json::json_pointer(f.pointer)] = value;

      const auto treeBefore = testing::snapshotTree(res.tmp.path());
      const RunResult r =
          testing::runPlugin(testing::binPath(binary), in.env, in.conf.dump(), res.node.path());
      expectCniError(r, f.code, {f.path + ": expected"});
      EXPECT_TRUE(testing::snapshotTree(res.tmp.path()) == treeBefore) << "files changed";
      ++tried;
    }
  }
  EXPECT_GE(tried, 4U) << "a field should meet at least four wrong types";
  const KernelState kernelAfter = res.kernel();
  EXPECT_TRUE(kernelBefore == kernelAfter) << "kernel state changed:\n"
                                           << diff(kernelBefore, kernelAfter);
}

INSTANTIATE_TEST_SUITE_P(Fields, WrongTypeTest, ::testing::ValuesIn(typedFields()),
                         [](const ::testing::TestParamInfo<TypedField>& p) {
                           std::string name = std::to_string(p.index) + "_";
                           for (const char c : p.param.pointer) {
                             name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace dualstack::hardening
