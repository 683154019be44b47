#include "dualstack/agent/routes.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "dualstack/sys/hash.hpp"

namespace dualstack::agent {

namespace {

std::string familyWord(ip::Family f) { return "IPv" + std::string(ip::familyName(f)); }

// The route (or its absence) for one podCIDR.
void desireOne(const NodeTable& table, std::string_view self, const ip::Prefix& dst, Desired& out) {
  const std::vector<std::string> names = table.claimants(dst);
  if (names.empty()) return;
  const bool mine = std::find(names.begin(), names.end(), self) != names.end();
  if (names.size() > 1) {
    // Two Nodes with one podCIDR is a misconfiguration (or a node replaced under the same
    // podCIDR mid-update): any choice could route pods to the wrong node, so none is made.
    std::string others;
    for (const auto& n : names) others += (others.empty() ? "" : ", ") + n;
    out.notRouted.push_back({dst, names.front(),
                             "podCIDR " + dst.str() + " is claimed by several nodes (" + others +
                                 ")" + (mine ? ", this node among them" : "")});
    return;
  }
  if (mine) return;
  const NodeInfo* info = table.find(names.front());
  if (info == nullptr) return;
  const FamilyInfo& f = info->family(dst.family());
  if (!f.nextHop) {
    out.notRouted.push_back({dst, names.front(),
                             "node has no " + familyWord(dst.family()) +
                                 " InternalIP or ExternalIP to route its podCIDR to"});
    return;
  }
  out.routes.push_back({dst, *f.nextHop, names.front(), f.source});
}

bool isExactly(const netlink::Route& r, const Wanted& w) {
  return r.type == RTN_UNICAST && !r.multipath && r.gateway == w.via &&
         r.metric.value_or(0) == ownMetric(w.dst);
}

std::string typeName(std::uint8_t type) {
  switch (type) {
    case RTN_BLACKHOLE:
      return "blackhole";
    case RTN_UNREACHABLE:
      return "unreachable";
    case RTN_PROHIBIT:
      return "prohibit";
    case RTN_THROW:
      return "throw";
    default:
      return "type " + std::to_string(type);
  }
}

std::string show(const netlink::Route& r) {
  std::string s = r.type == RTN_UNICAST ? "" : typeName(r.type) + " ";
  s += netlink::describe(r);
  s += " proto " + std::to_string(r.protocol);
  return s;
}

netlink::Route deletion(const netlink::Route& have) {
  netlink::Route r;
  r.dst = have.dst;
  r.table = have.table;
  r.metric = have.metric.value_or(0);
  r.protocol = have.protocol;
  return r;
}

}  // namespace

Desired desiredRoutes(const NodeTable& table, std::string_view self) {
  Desired out;
  for (const ip::Family f : {ip::Family::V4, ip::Family::V6}) {
    for (const ip::Prefix& dst : table.podCIDRs(f)) desireOne(table, self, dst, out);
  }
  return out;
}

Desired desiredRoutes(const NodeTable& table, std::string_view self,
                      const std::vector<ip::Prefix>& dsts) {
  std::vector<ip::Prefix> sorted = dsts;
  for (auto& p : sorted) p = p.network();
  std::sort(sorted.begin(), sorted.end(), PrefixLess());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  Desired out;
  for (const ip::Prefix& dst : sorted) desireOne(table, self, dst, out);
  return out;
}

std::optional<std::string> hopProblem(const ip::Address& hop,
                                      const std::optional<netlink::Route>& best) {
  const std::string h = hop.str();
  if (!best) return "no route to " + h + " on this node";
  if (best->type != RTN_UNICAST) {
    return h + " is covered by " + show(*best) + ", not a directly connected network";
  }
  if (best->gateway) {
    return h + " is reached only through the gateway " + best->gateway->str() + " (route " +
           best->dst.network().str() +
           "), not directly: host-gw routing needs the nodes on one network segment";
  }
  return std::nullopt;
}

std::optional<netlink::Route> longestMatch(const ip::Address& addr,
                                           const std::vector<netlink::Route>& routes,
                                           std::uint8_t ignoreProtocol) {
  const netlink::Route* best = nullptr;
  for (const netlink::Route& r : routes) {
    if (r.protocol == ignoreProtocol || r.dst.family() != addr.family()) continue;
    if (!r.dst.contains(addr)) continue;
    if (best == nullptr || r.dst.length() > best->dst.length() ||
        (r.dst.length() == best->dst.length() && r.metric.value_or(0) < best->metric.value_or(0))) {
      best = &r;
    }
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

std::uint32_t ownMetric(const ip::Prefix& dst) {
  if (dst.family() == ip::Family::V6) return 1024;
  // FNV-1a 32 over the address (network byte order) and the length.
  const auto value = static_cast<std::uint32_t>(dst.network().address().value());
  const char bytes[5] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                         static_cast<char>(value >> 8), static_cast<char>(value),
                         static_cast<char>(dst.length())};
  std::uint32_t h = sys::fnv1a32(std::string_view(bytes, sizeof bytes));
  // FNV's low bits follow the last bytes closely; a final mix spreads neighbouring podCIDRs.
  h ^= h >> 16;
  h *= 0x85ebca6bU;
  h ^= h >> 13;
  h *= 0xc2b2ae35U;
  h ^= h >> 16;
  return 1 + h % 4093;
}

netlink::Route routeFor(const Wanted& w, std::uint8_t protocol) {
  netlink::Route r;
  r.dst = w.dst.network();
  r.gateway = w.via;
  r.protocol = protocol;
  r.metric = ownMetric(r.dst);
  return r;
}

Plan diff(const std::vector<Wanted>& wanted, const std::vector<netlink::Route>& actual,
          const DiffOptions& options) {
  struct AtDst {
    const Wanted* wanted = nullptr;
    std::vector<const netlink::Route*> own, foreign;
  };
  std::map<ip::Prefix, AtDst, PrefixLess> byDst;
  for (const Wanted& w : wanted) byDst[w.dst.network()].wanted = &w;
  for (const netlink::Route& r : actual) {
    const ip::Prefix dst = r.dst.network();
    if (r.protocol == options.protocol) {
      byDst[dst].own.push_back(&r);
    } else if (const auto it = byDst.find(dst); it != byDst.end()) {
      it->second.foreign.push_back(&r);
    }
  }

  Plan plan;
  const auto remove = [&](const netlink::Route& r, const std::string& node) {
    plan.actions.push_back({Action::Kind::Delete, deletion(r), node});
  };
  for (const auto& [dst, at] : byDst) {
    if (at.wanted == nullptr) {
      if (!options.removeUnwanted) continue;
      for (const auto* r : at.own) remove(*r, {});
      continue;
    }
    const Wanted& w = *at.wanted;
    if (!at.foreign.empty()) {
      plan.conflicts.push_back({dst, w.node, show(*at.foreign.front())});
      for (const auto* r : at.own) remove(*r, w.node);
      continue;
    }
    if (options.hopCheck) {
      if (auto why = options.hopCheck(w.via)) {
        plan.unreachable.push_back({dst, w.node, w.via, std::move(*why)});
        for (const auto* r : at.own) remove(*r, w.node);
        continue;
      }
    }
    // The one own route at the destination's own metric is the one kept (or replaced in place);
    // any other own route for this destination goes.
    const netlink::Route* keep = nullptr;
    for (const auto* r : at.own) {
      if (keep == nullptr && r->metric.value_or(0) == ownMetric(dst)) {
        keep = r;
      } else {
        remove(*r, w.node);
      }
    }
    if (keep != nullptr && isExactly(*keep, w)) {
      ++plan.inPlace;
    } else {
      plan.actions.push_back({keep != nullptr ? Action::Kind::Replace : Action::Kind::Add,
                              routeFor(w, options.protocol), w.node});
    }
  }
  // Removals of routes to destinations that get no new route come first; a destination that
  // gets one keeps its old route(s) until the new one is in, so it is never without a route.
  std::set<ip::Prefix, PrefixLess> installing;
  for (const Action& a : plan.actions) {
    if (a.kind != Action::Kind::Delete) installing.insert(a.route.dst.network());
  }
  const auto rank = [&](const Action& a) {
    if (a.kind != Action::Kind::Delete) return 1;
    return installing.count(a.route.dst.network()) != 0 ? 2 : 0;
  };
  std::stable_sort(plan.actions.begin(), plan.actions.end(),
                   [&](const Action& x, const Action& y) { return rank(x) < rank(y); });
  return plan;
}

}  // namespace dualstack::agent
