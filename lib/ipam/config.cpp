#include "dualstack/ipam/config.hpp"

#include <algorithm>
#include <cerrno>

#include "dualstack/cni/error.hpp"
#include "dualstack/cni/json.hpp"

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

}  // namespace

std::optional<ip::Family> preferredFamily(const std::vector<k8s::NodeAddress>& addresses) {
  for (const char* type : {"InternalIP", "ExternalIP"}) {
    for (const auto& a : addresses) {
      if (a.type == type) return a.address.family();
    }
  }
  if (!addresses.empty()) return addresses.front().address.family();
  return std::nullopt;
}

std::vector<RangeSet> rangeSetsForNode(const k8s::Node& node, std::string_view fieldPrefix) {
  std::vector<RangeSet> sets;
  for (std::size_t i = 0; i < node.podCIDRs.size(); ++i) {
    const auto& c = node.podCIDRs[i];
    const std::string field = std::string(fieldPrefix) + c.field;
    for (std::size_t j = 0; j < i; ++j) {
      const auto& other = node.podCIDRs[j];
      if (other.prefix.family() == c.prefix.family()) {
        throw Error(Code::InvalidConfig, field + ": " + c.prefix.str() + " is a second " +
                                             std::string(familyLabel(c.prefix.family())) +
                                             " pod CIDR after " + other.prefix.str() +
                                             "; a node has at most one per family");
      }
    }
    sets.push_back(
        RangeSet{i, {makeRange(c.prefix, std::nullopt, std::nullopt, std::nullopt, field)}});
  }
  if (const auto first = preferredFamily(node.addresses)) {
    std::stable_partition(sets.begin(), sets.end(),
                          [&](const RangeSet& s) { return s.family() == *first; });
  }
  return sets;
}

std::vector<RangeSet> rangeSets(const IpamConfig& cfg) {
  if (cfg.node) return rangeSetsForNode(cfg.node->load(), cfg.node->fieldPrefix());
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
                              scope == Scope::Allocate ? Access::Api : Access::CacheOnly);
  } else if (cfg.ranges.empty()) {
    throw Error(Code::InvalidConfig,
                "ipam: no address source: set ipam.node (podCIDRs or file) or host-local's "
                "ipam.ranges");
  }
  checkRangeSets(cfg.ranges, names);
  return cfg;
}

}  // namespace dualstack::ipam
