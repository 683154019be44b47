#include "dualstack/ipam/config.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "dualstack/cni/error.hpp"
#include "dualstack/cni/json.hpp"
#include "dualstack/sys/file.hpp"

namespace dualstack::ipam {

using cni::Code;
using cni::Error;
using cni::json;
using ip::Address;
using ip::Prefix;

namespace {

std::string shown(std::string_view s) { return "\"" + std::string(s.substr(0, 64)) + "\""; }

std::string indexed(std::string_view where, std::size_t i) {
  return std::string(where) + "[" + std::to_string(i) + "]";
}

Prefix parseCidr(const std::string& text, const std::string& field) {
  auto p = Prefix::parse(text);
  if (!p) {
    throw Error(Code::InvalidConfig, field + ": " + shown(text) +
                                         " is not an address in CIDR form (like 10.244.1.0/24)");
  }
  return *p;
}

std::optional<Address> optAddress(const json& obj, const char* key, const std::string& where) {
  const auto text = cni::optString(obj, key, where);
  if (!text) return std::nullopt;
  auto a = Address::parse(*text);
  if (!a) {
    throw Error(Code::InvalidConfig,
                cni::fieldPath(where, key) + ": " + shown(*text) + " is not an IP address");
  }
  return a;
}

Range parseRange(const json& obj, const std::string& where) {
  if (!obj.is_object()) {
    throw Error(Code::InvalidConfig,
                where + ": expected an object, got " + std::string(cni::typeName(obj)));
  }
  const auto subnet = parseCidr(cni::reqString(obj, "subnet", where), where + ".subnet");
  return makeRange(subnet, optAddress(obj, "rangeStart", where), optAddress(obj, "rangeEnd", where),
                   optAddress(obj, "gateway", where), where);
}

std::vector<cni::Route> parseRoutes(const json& ipam) {
  std::vector<cni::Route> routes;
  const json* list = cni::optArray(ipam, "routes", "ipam");
  if (list == nullptr) return routes;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string where = indexed("ipam.routes", i);
    const json& item = (*list)[i];
    if (!item.is_object()) {
      throw Error(Code::InvalidConfig,
                  where + ": expected an object, got " + std::string(cni::typeName(item)));
    }
    cni::Route r;
    r.dst = parseCidr(cni::reqString(item, "dst", where), where + ".dst");
    if (r.dst.hostBitsSet()) {
      throw Error(Code::InvalidConfig, where + ".dst: " + r.dst.str() +
                                           " has host bits set (the network is " +
                                           r.dst.network().str() + ")");
    }
    r.gw = optAddress(item, "gw", where);
    if (r.gw && r.gw->family() != r.dst.family()) {
      throw Error(Code::InvalidConfig,
                  where + ".gw: " + r.gw->str() + " is not of the family of dst " + r.dst.str());
    }
    auto small = [&](const char* key, std::int64_t min, std::int64_t max) -> std::optional<int> {
      if (auto v = cni::optInt(item, key, where, min, max)) return static_cast<int>(*v);
      return std::nullopt;
    };
    r.mtu = small("mtu", 0, 65535);
    r.advmss = small("advmss", 0, 65535);
    r.priority = small("priority", 0, 2147483647);
    r.table = small("table", 0, 2147483647);
    r.scope = small("scope", 0, 255);
    routes.push_back(r);
  }
  return routes;
}

void addRequested(std::vector<Requested>& out, const std::string& text, const std::string& source,
                  Code code) {
  // "10.244.1.5" or "10.244.1.5/24" (podman and the ips capability send either).
  auto p = Prefix::parse(text, /*allowBare=*/true);
  if (!p) {
    throw Error(code, source + ": " + shown(text) + " is not an IP address");
  }
  for (const auto& r : out) {
    if (r.address == p->address()) return;
  }
  out.push_back({p->address(), source});
}

void parseRequestedList(std::vector<Requested>& out, const json& obj, const char* key,
                        const std::string& where) {
  const json* list = cni::optArray(obj, key, where);
  if (list == nullptr) return;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string field = indexed(cni::fieldPath(where, key), i);
    if (!(*list)[i].is_string()) {
      throw Error(Code::InvalidConfig,
                  field + ": expected a string, got " + std::string(cni::typeName((*list)[i])));
    }
    addRequested(out, (*list)[i].get<std::string>(), field, Code::InvalidConfig);
  }
}

std::vector<Requested> parseRequested(const cni::NetConf& conf, const cni::Env& env) {
  std::vector<Requested> out;
  parseRequestedList(out, conf.runtimeConfig(), "ips", "runtimeConfig");
  if (const json* cniArgs = cni::optObject(conf.args(), "cni", "args")) {
    parseRequestedList(out, *cniArgs, "ips", "args.cni");
  }
  if (auto ipArg = env.arg("IP")) {
    std::size_t pos = 0;
    while (pos <= ipArg->size()) {
      auto comma = ipArg->find(',', pos);
      if (comma == std::string::npos) comma = ipArg->size();
      const auto item = ipArg->substr(pos, comma - pos);
      if (!item.empty()) addRequested(out, item, "CNI_ARGS IP", Code::InvalidEnv);
      pos = comma + 1;
    }
  }
  return out;
}

NodeAddress parseNodeAddress(const json& item, const std::string& where, bool* isIp) {
  NodeAddress a;
  a.type = cni::reqString(item, "type", where);
  const auto text = cni::reqString(item, "address", where);
  auto parsed = Address::parse(text);
  *isIp = parsed.has_value();
  if (parsed) {
    a.address = *parsed;
  } else if (a.type == "InternalIP" || a.type == "ExternalIP") {
    throw Error(Code::InvalidConfig, where + ".address: " + shown(text) + " is not an IP address");
  }
  return a;
}

std::vector<NodeAddress> parseNodeAddresses(const json* list, const std::string& where) {
  std::vector<NodeAddress> out;
  if (list == nullptr) return out;
  for (std::size_t i = 0; i < list->size(); ++i) {
    bool isIp = false;
    auto a = parseNodeAddress((*list)[i], indexed(where, i), &isIp);
    if (isIp) out.push_back(std::move(a));
  }
  return out;
}

std::vector<PodCidr> parsePodCidrs(const json* list, const std::string& where) {
  std::vector<PodCidr> out;
  if (list == nullptr) return out;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string field = indexed(where, i);
    if (!(*list)[i].is_string()) {
      throw Error(Code::InvalidConfig,
                  field + ": expected a string, got " + std::string(cni::typeName((*list)[i])));
    }
    out.push_back({parseCidr((*list)[i].get<std::string>(), field), field});
  }
  return out;
}

// Checked when the config is parsed, so that DEL and GC, which never load a node source, refuse
// an inline node that ADD would refuse.
class InlineNode final : public NodeSource {
 public:
  explicit InlineNode(NodeInfo info) : info_(std::move(info)) {
    if (info_.podCIDRs.empty()) {
      throw Error(Code::InvalidConfig,
                  "ipam.node.podCIDRs is missing or empty: give the node's pod CIDRs (at most "
                  "one IPv4 and one IPv6), or use ipam.node.file");
    }
    (void)rangeSetsForNode(info_);
  }
  NodeInfo load() const override { return info_; }
  std::string describe() const override { return "ipam.node"; }

 private:
  NodeInfo info_;
};

class NodeFile final : public NodeSource {
 public:
  explicit NodeFile(std::string path) : path_(std::move(path)) {}
  NodeInfo load() const override {
    std::string text;
    const sys::FileProblem p =
        sys::readRegularFileAt(AT_FDCWD, path_, 8U << 20, sys::Links::Follow, text);
    if (p.err == EFBIG)
      throw Error(Code::InvalidConfig, "node file " + path_ + " is larger than 8 MiB");
    if (p.err != 0) {
      // The daemon that writes the file may simply not have run yet.
      throw cni::errnoError(p.err == ENOENT ? Code::TryAgainLater : Code::IoFailure,
                            "read node file " + path_ + " (ipam.node.file)", p.err);
    }
    if (p) throw Error(Code::IoFailure, "node file " + path_ + " (ipam.node.file) " + p.describe());
    const json node = cni::parseJson(text, "node file " + path_);
    NodeInfo info = parseNodeObject(node, "node file " + path_);
    if (info.podCIDRs.empty()) {
      throw Error(Code::TryAgainLater, "node file " + path_ +
                                           " has no spec.podCIDRs yet (they are assigned by "
                                           "kube-controller-manager --allocate-node-cidrs)");
    }
    return info;
  }
  std::string describe() const override { return "node file " + path_; }

 private:
  std::string path_;
};

class KubeNode final : public NodeSource {
 public:
  KubeNode(k8s::NodeApiConfig cfg, const std::string& dataDir, k8s::Access access)
      : source_(std::move(cfg), dataDir), access_(access) {}
  NodeInfo load() const override {
    const k8s::Node n = source_.read(access_);
    json addresses = json::array();
    for (const auto& a : n.addresses) {
      addresses.push_back({{"type", a.type}, {"address", a.address}});
    }
    const json obj = {{"spec", {{"podCIDRs", n.podCIDRs}}}, {"status", {{"addresses", addresses}}}};
    return parseNodeObject(obj, describe());
  }
  std::string describe() const override { return source_.describe(); }

 private:
  k8s::ApiNodeSource source_;
  k8s::Access access_;
};

}  // namespace

NodeInfo parseNodeObject(const json& node, std::string_view where) {
  const std::string w(where);
  try {
    NodeInfo info;
    if (const json* spec = cni::optObject(node, "spec", "")) {
      if (const json* list = cni::optArray(*spec, "podCIDRs", "spec")) {
        info.podCIDRs = parsePodCidrs(list, "spec.podCIDRs");
      } else if (auto one = cni::optString(*spec, "podCIDR", "spec")) {
        info.podCIDRs.push_back({parseCidr(*one, "spec.podCIDR"), "spec.podCIDR"});
      }
    }
    if (const json* status = cni::optObject(node, "status", "")) {
      info.addresses =
          parseNodeAddresses(cni::optArray(*status, "addresses", "status"), "status.addresses");
    }
    for (auto& c : info.podCIDRs) c.field = w + ": " + c.field;
    return info;
  } catch (Error& e) {
    throw e.context(w);
  }
}

std::unique_ptr<NodeSource> makeNodeSource(const json& node, std::string_view where,
                                           const std::string& dataDir, k8s::Access access) {
  const std::string w(where);
  if (!node.is_object()) {
    throw Error(Code::InvalidConfig,
                w + ": expected an object, got " + std::string(cni::typeName(node)));
  }
  if (k8s::isNodeApiConfig(node)) {
    return std::make_unique<KubeNode>(k8s::parseNodeApiConfig(node, w), dataDir, access);
  }
  const bool inlineForm = node.contains("podCIDRs") || node.contains("addresses");
  if (auto file = cni::optString(node, "file", w)) {
    if (inlineForm) {
      throw Error(Code::InvalidConfig, w + ": give either file or podCIDRs/addresses, not both");
    }
    if (file->empty() || (*file)[0] != '/' || file->find('\0') != std::string::npos) {
      throw Error(Code::InvalidConfig, w + ".file: " + shown(*file) + " is not an absolute path");
    }
    return std::make_unique<NodeFile>(*file);
  }
  NodeInfo info;
  info.podCIDRs = parsePodCidrs(cni::optArray(node, "podCIDRs", w), w + ".podCIDRs");
  info.addresses = parseNodeAddresses(cni::optArray(node, "addresses", w), w + ".addresses");
  return std::make_unique<InlineNode>(std::move(info));
}

std::optional<ip::Family> preferredFamily(const std::vector<NodeAddress>& addresses) {
  for (const char* type : {"InternalIP", "ExternalIP"}) {
    for (const auto& a : addresses) {
      if (a.type == type) return a.address.family();
    }
  }
  if (!addresses.empty()) return addresses.front().address.family();
  return std::nullopt;
}

std::vector<RangeSet> rangeSetsForNode(const NodeInfo& node) {
  std::vector<RangeSet> sets;
  for (std::size_t i = 0; i < node.podCIDRs.size(); ++i) {
    const auto& c = node.podCIDRs[i];
    for (std::size_t j = 0; j < i; ++j) {
      const auto& other = node.podCIDRs[j];
      if (other.prefix.family() == c.prefix.family()) {
        throw Error(Code::InvalidConfig, c.field + ": " + c.prefix.str() + " is a second " +
                                             std::string(familyLabel(c.prefix.family())) +
                                             " pod CIDR after " + other.prefix.str() +
                                             "; a node has at most one per family");
      }
    }
    sets.push_back(
        RangeSet{i, {makeRange(c.prefix, std::nullopt, std::nullopt, std::nullopt, c.field)}});
  }
  if (const auto first = preferredFamily(node.addresses)) {
    std::stable_partition(sets.begin(), sets.end(),
                          [&](const RangeSet& s) { return s.family() == *first; });
  }
  return sets;
}

std::vector<RangeSet> rangeSets(const IpamConfig& cfg) {
  if (cfg.node) return rangeSetsForNode(cfg.node->load());
  return cfg.ranges;
}

IpamConfig parseIpamConfig(const cni::NetConf& conf, const cni::Env& env, Scope scope) {
  if (!conf.ipam().is_object()) {
    throw Error(Code::InvalidConfig,
                "ipam is missing: dualstack-ipam reads its settings from "
                "the config's ipam object");
  }
  const json& ipam = conf.ipam();
  // Not used here (the runtime found this binary by it), but a config with a non-string type is
  // as malformed as for the plugin that reads it.
  cni::optString(ipam, "type", "ipam");
  IpamConfig cfg;
  cfg.network = conf.name;
  cfg.dataDir = cni::optString(ipam, "dataDir", "ipam").value_or(std::string(kDefaultDataDir));
  if (cfg.dataDir.empty() || cfg.dataDir[0] != '/' || cfg.dataDir.find('\0') != std::string::npos) {
    throw Error(Code::InvalidConfig,
                "ipam.dataDir: " + shown(cfg.dataDir) + " is not an absolute path");
  }

  cfg.routes = parseRoutes(ipam);
  cfg.requested = parseRequested(conf, env);

  // host-local: the old single-range form is prepended to ranges.
  std::vector<std::string> names;
  if (cni::member(ipam, "subnet", "ipam") != nullptr) {
    cfg.ranges.push_back(RangeSet{0, {parseRange(ipam, "ipam")}});
    names.emplace_back("ipam");
  } else {
    for (const char* key : {"rangeStart", "rangeEnd", "gateway"}) optAddress(ipam, key, "ipam");
  }
  if (const json* ranges = cni::optArray(ipam, "ranges", "ipam")) {
    for (std::size_t i = 0; i < ranges->size(); ++i) {
      const std::string where = indexed("ipam.ranges", i);
      const json& set = (*ranges)[i];
      if (!set.is_array()) {
        throw Error(Code::InvalidConfig, where + ": expected an array of ranges, got " +
                                             std::string(cni::typeName(set)));
      }
      RangeSet rs{cfg.ranges.size(), {}};
      for (std::size_t j = 0; j < set.size(); ++j)
        rs.ranges.push_back(parseRange(set[j], indexed(where, j)));
      cfg.ranges.push_back(std::move(rs));
      names.push_back(where);
    }
  }
  const json* node = cni::member(ipam, "node", "ipam");
  if (node != nullptr && !cfg.ranges.empty()) {
    throw Error(Code::InvalidConfig,
                "ipam: give either node or host-local's ranges/subnet, not both");
  }
  if (node != nullptr) {
    cfg.node = makeNodeSource(*node, "ipam.node", cfg.dataDir,
                              scope == Scope::Allocate ? k8s::Access::Api : k8s::Access::CacheOnly);
  } else if (cfg.ranges.empty()) {
    throw Error(Code::InvalidConfig,
                "ipam: no address source: set ipam.node (podCIDRs or file) or host-local's "
                "ipam.ranges");
  }
  checkRangeSets(cfg.ranges, names);
  return cfg;
}

}  // namespace dualstack::ipam
