#include "dualstack/agent/nodes.hpp"

#include <algorithm>

namespace dualstack::agent {

bool PrefixLess::operator()(const ip::Prefix& a, const ip::Prefix& b) const {
  if (a.address() != b.address()) return a.address() < b.address();
  return a.length() < b.length();
}

std::string_view hopSourceName(HopSource s) {
  switch (s) {
    case HopSource::InternalIP:
      return "InternalIP";
    case HopSource::ExternalIP:
      return "ExternalIP";
    case HopSource::None:
      break;
  }
  return "none";
}

namespace {

void addProblem(std::string& problems, const std::string& p) {
  if (!problems.empty()) problems += "; ";
  problems += p;
}

}  // namespace

NodeInfo summarize(const k8s::Node& node) {
  NodeInfo info;
  for (const k8s::Unusable& u : node.unusable) {
    // An InternalIP or ExternalIP that is no address is simply no next hop.
    if (u.kind != k8s::Unusable::Kind::PodCidr) continue;
    addProblem(info.problem, "podCIDR \"" + u.text.substr(0, 64) + "\" is not a CIDR");
  }
  for (const k8s::PodCidr& c : node.podCIDRs) {
    const ip::Prefix& p = c.prefix;
    FamilyInfo& f = p.family() == ip::Family::V4 ? info.v4 : info.v6;
    if (f.podCIDR) {
      // Kubernetes allows one per family; the first one stands, as kube-proxy and kubelet read it.
      addProblem(info.problem, "second IPv" + std::string(ip::familyName(p.family())) +
                                   " podCIDR " + p.str() + " ignored");
      continue;
    }
    f.podCIDR = p.network();
  }
  for (const HopSource source : {HopSource::InternalIP, HopSource::ExternalIP}) {
    for (const k8s::NodeAddress& a : node.addresses) {
      if (a.type != hopSourceName(source)) continue;
      FamilyInfo& f = a.address.isV4() ? info.v4 : info.v6;
      if (f.nextHop) continue;
      f.nextHop = a.address;
      f.source = source;
    }
  }
  return info;
}

void NodeTable::index(const std::string& name, const NodeInfo& info) {
  for (const FamilyInfo* f : {&info.v4, &info.v6}) {
    if (!f->podCIDR) continue;
    auto& names = byCIDR_[*f->podCIDR];
    names.insert(std::lower_bound(names.begin(), names.end(), name), name);
  }
}

void NodeTable::unindex(const std::string& name, const NodeInfo& info) {
  for (const FamilyInfo* f : {&info.v4, &info.v6}) {
    if (!f->podCIDR) continue;
    const auto it = byCIDR_.find(*f->podCIDR);
    if (it == byCIDR_.end()) continue;
    auto& names = it->second;
    names.erase(std::remove(names.begin(), names.end(), name), names.end());
    if (names.empty()) byCIDR_.erase(it);
  }
}

namespace {

void appendCIDRs(std::vector<ip::Prefix>& out, const NodeInfo& info) {
  for (const FamilyInfo* f : {&info.v4, &info.v6}) {
    if (f->podCIDR) out.push_back(*f->podCIDR);
  }
}

}  // namespace

std::vector<ip::Prefix> NodeTable::upsert(const k8s::Node& node) {
  NodeInfo info = summarize(node);
  std::vector<ip::Prefix> touched;
  const auto it = nodes_.find(node.name);
  if (it != nodes_.end()) {
    if (it->second == info) return touched;
    appendCIDRs(touched, it->second);
    if (it->second.v4.podCIDR != info.v4.podCIDR || it->second.v6.podCIDR != info.v6.podCIDR) {
      ++cidrGeneration_;
    }
    unindex(it->first, it->second);
    it->second = std::move(info);
    index(it->first, it->second);
    appendCIDRs(touched, it->second);
  } else {
    const auto [added, ok] = nodes_.emplace(node.name, std::move(info));
    (void)ok;
    index(added->first, added->second);
    appendCIDRs(touched, added->second);
    if (added->second.v4.podCIDR || added->second.v6.podCIDR) ++cidrGeneration_;
  }
  std::sort(touched.begin(), touched.end(), PrefixLess());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  return touched;
}

std::vector<ip::Prefix> NodeTable::erase(std::string_view name) {
  std::vector<ip::Prefix> touched;
  const auto it = nodes_.find(name);
  if (it == nodes_.end()) return touched;
  appendCIDRs(touched, it->second);
  if (!touched.empty()) ++cidrGeneration_;
  unindex(it->first, it->second);
  nodes_.erase(it);
  return touched;
}

void NodeTable::replaceAll(const std::vector<k8s::Node>& nodes) {
  std::map<std::string, NodeInfo, std::less<>> fresh;
  for (const auto& n : nodes) fresh.insert_or_assign(n.name, summarize(n));
  if (fresh == nodes_) return;
  const auto cidrs = [](const std::map<std::string, NodeInfo, std::less<>>& m) {
    std::vector<ip::Prefix> out;
    for (const auto& [name, info] : m) appendCIDRs(out, info);
    std::sort(out.begin(), out.end(), PrefixLess());
    return out;
  };
  if (cidrs(fresh) != cidrs(nodes_)) ++cidrGeneration_;
  nodes_ = std::move(fresh);
  byCIDR_.clear();
  for (const auto& [name, info] : nodes_) index(name, info);
}

const NodeInfo* NodeTable::find(std::string_view name) const {
  const auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : &it->second;
}

std::vector<std::string> NodeTable::claimants(const ip::Prefix& podCIDR) const {
  const auto it = byCIDR_.find(podCIDR.network());
  return it == byCIDR_.end() ? std::vector<std::string>{} : it->second;
}

std::vector<ip::Prefix> NodeTable::podCIDRs(ip::Family f) const {
  std::vector<ip::Prefix> out;
  for (const auto& [p, names] : byCIDR_) {
    if (p.family() == f) out.push_back(p);
  }
  return out;
}

}  // namespace dualstack::agent
