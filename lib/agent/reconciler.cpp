#include "dualstack/agent/reconciler.hpp"
#include "dualstack/sys/error.hpp"

#include <algorithm>
#include <unordered_map>

namespace dualstack::agent {

namespace {

// Up to this many actions in one pass are logged one by one at info level; a larger pass (the
// first one on a big cluster) gets one summary line, its actions at debug level.
constexpr std::size_t kActionsLoggedOneByOne = 20;

std::string viaText(const netlink::Route& r) { return r.gateway ? r.gateway->str() : ""; }

}  // namespace

bool Reconciler::Scope::contains(const ip::Prefix& p) const {
  if (family && p.family() != *family) return false;
  return dsts == nullptr || std::binary_search(dsts->begin(), dsts->end(), p, PrefixLess());
}

Reconciler::Reconciler(ReconcilerConfig config, RouteTable* routes, ClusterSets* sets, Log& log)
    : config_(std::move(config)), routes_(routes), sets_(sets), log_(log) {}

PassResult Reconciler::full(const Desired& desired, const ClusterPrefixes& cluster, bool synced) {
  PassResult result;
  // One family at a time: half the memory of a pass over both, and a next hop is only ever
  // looked up among the routes of its own family.
  for (const ip::Family family : {ip::Family::V4, ip::Family::V6}) {
    if (routes_ == nullptr) break;
    std::vector<netlink::Route> actual;
    try {
      actual = routes_->dump(family);
    } catch (const sys::Error& e) {
      log_.error("cannot read the routing table", {{"error", e.msg()}});
      ++result.failed;
      continue;
    }
    // Next hops are checked against the others' routes only, a handful beside the agent's own.
    std::vector<netlink::Route> others;
    for (const auto& r : actual) {
      if (r.protocol != config_.protocol) others.push_back(r);
    }
    Desired mine;
    for (const Wanted& w : desired.routes) {
      if (w.dst.family() == family) mine.routes.push_back(w);
    }
    for (const NotRouted& n : desired.notRouted) {
      if (n.dst.family() == family) mine.notRouted.push_back(n);
    }
    DiffOptions options;
    options.protocol = config_.protocol;
    options.removeUnwanted = synced;
    options.hopCheck = [&](const ip::Address& hop) {
      return hopProblem(hop, longestMatch(hop, others, config_.protocol));
    };
    const PassResult r = apply(mine, Scope{nullptr, family}, actual, options);
    result.added += r.added;
    result.replaced += r.replaced;
    result.removed += r.removed;
    result.failed += r.failed;
    result.needFull = result.needFull || r.needFull;
  }
  // The sets mirror the Node list: before the first complete list they would be emptied.
  if (synced) syncSets(cluster, result);
  return result;
}

PassResult Reconciler::partial(const Desired& desired, const std::vector<ip::Prefix>& dsts,
                               const std::optional<ClusterPrefixes>& cluster, bool synced) {
  PassResult result;
  if (routes_ != nullptr && !dsts.empty()) {
    std::vector<ip::Prefix> scope = dsts;
    for (auto& p : scope) p = p.network();
    std::sort(scope.begin(), scope.end(), PrefixLess());
    scope.erase(std::unique(scope.begin(), scope.end()), scope.end());
    try {
      std::vector<netlink::Route> actual;
      for (const ip::Prefix& dst : scope) {
        // The table entry the kernel uses for the podCIDR's first address: the podCIDR's own
        // route if there is one (and the best of them if several protocols have one).
        auto r = routes_->lookup(dst.first());
        if (r && r->dst.network() == dst) actual.push_back(*r);
      }
      std::unordered_map<std::string, std::optional<std::string>> hops;
      DiffOptions options;
      options.protocol = config_.protocol;
      options.removeUnwanted = synced;
      options.hopCheck = [&](const ip::Address& hop) {
        const auto [it, fresh] = hops.try_emplace(hop.str());
        if (fresh) it->second = hopProblem(hop, routes_->lookup(hop));
        return it->second;
      };
      result = apply(desired, Scope{&scope, std::nullopt}, actual, options);
    } catch (const sys::Error& e) {
      log_.error("cannot read the routing table", {{"error", e.msg()}});
      ++result.failed;
    }
  }
  if (synced && cluster) syncSets(*cluster, result);
  return result;
}

PassResult Reconciler::apply(const Desired& desired, const Scope& scope,
                             const std::vector<netlink::Route>& actual,
                             const DiffOptions& options) {
  PassResult result;
  const Plan plan = diff(desired.routes, actual, options);
  const Level each = plan.actions.size() <= kActionsLoggedOneByOne ? Level::Info : Level::Debug;

  Entries unreachable, conflicts, notRouted;
  for (const Unreachable& u : plan.unreachable) {
    unreachable[u.dst] = {u.node, u.via.str(), u.reason};
  }
  for (const Conflict& c : plan.conflicts) conflicts[c.dst] = {c.node, "", c.existing};
  for (const NotRouted& n : desired.notRouted) notRouted[n.dst] = {n.node, "", n.reason};

  // The node a route no one wants any more was for, as the last pass knew it.
  const auto formerNode = [&](const ip::Prefix& dst) {
    const std::lock_guard lock(mu_);
    const auto it = wanted_.find(dst);
    return it == wanted_.end() ? std::string() : it->second;
  };
  std::set<ip::Prefix, PrefixLess> failedDsts;
  for (const Action& action : plan.actions) {
    Action a = action;
    const ip::Prefix dst = a.route.dst.network();
    if (a.node.empty()) a.node = formerNode(dst);
    const std::string dstText = dst.str();
    try {
      std::string why;
      switch (a.kind) {
        case Action::Kind::Delete:
          if (routes_->remove(a.route)) {
            ++result.removed;
            log_.write(each, "route removed", {{"node", a.node}, {"dst", dstText}});
          }
          break;
        case Action::Kind::Add:
        case Action::Kind::Replace: {
          const bool add = a.kind == Action::Kind::Add;
          const auto outcome = add ? routes_->add(a.route, &why) : routes_->replace(a.route, &why);
          if (outcome == RouteTable::Outcome::Done) {
            ++(add ? result.added : result.replaced);
            log_.write(each, add ? "route added" : "route replaced",
                       {{"node", a.node}, {"dst", dstText}, {"via", viaText(a.route)}});
          } else if (outcome == RouteTable::Outcome::Unreachable) {
            unreachable[dst] = {a.node, viaText(a.route), "the kernel refused it: " + why};
            failedDsts.insert(dst);
            if (!add) {
              // The route we have points at the node's old address: it must not stay either.
              netlink::Route stale = a.route;
              stale.gateway.reset();
              stale.metric = ownMetric(dst);
              if (routes_->remove(stale)) ++result.removed;
            }
          } else {
            // A route for this destination appeared since it was read: look again, fully.
            log_.debug("route exists already", {{"dst", dstText}, {"detail", why}});
            failedDsts.insert(dst);
            result.needFull = true;
          }
          break;
        }
      }
    } catch (const sys::Error& e) {
      ++result.failed;
      failedDsts.insert(dst);
      log_.error("route change failed", {{"node", a.node}, {"dst", dstText}, {"error", e.msg()}});
    }
  }
  if (each == Level::Debug) {
    log_.info("routes updated", {{"added", std::to_string(result.added)},
                                 {"replaced", std::to_string(result.replaced)},
                                 {"removed", std::to_string(result.removed)},
                                 {"failed", std::to_string(result.failed)}});
  }

  const std::lock_guard lock(mu_);
  if (scope.dsts == nullptr) {
    std::erase_if(wanted_, [&](const auto& e) { return scope.contains(e.first); });
    std::erase_if(installed_, [&](const auto& p) { return scope.contains(p); });
  } else {
    for (const ip::Prefix& p : *scope.dsts) {
      wanted_.erase(p);
      installed_.erase(p);
    }
  }
  for (const Wanted& w : desired.routes) {
    const ip::Prefix dst = w.dst.network();
    if (!scope.contains(dst)) continue;
    wanted_[dst] = w.node;
    if (!unreachable.count(dst) && !conflicts.count(dst) && !failedDsts.count(dst)) {
      installed_.insert(dst);
    }
  }
  update(unreachable_, "unreachable", scope, std::move(unreachable));
  update(conflicts_, "conflict", scope, std::move(conflicts));
  update(notRouted_, "not routed", scope, std::move(notRouted));
  return result;
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): fresh's entries are moved in at the end
void Reconciler::update(Entries& entries, const char* kind, const Scope& scope, Entries fresh) {
  const std::string k = kind;
  for (const auto& [dst, e] : fresh) {
    const auto old = entries.find(dst);
    if (old != entries.end() && old->second == e) continue;
    if (k == "unreachable") {
      log_.warn("next hop not directly reachable: no route installed",
                {{"node", e.node}, {"dst", dst.str()}, {"via", e.via}, {"reason", e.reason}});
    } else if (k == "conflict") {
      log_.warn("another route covers this podCIDR: leaving it alone",
                {{"node", e.node}, {"dst", dst.str()}, {"existing", e.reason}});
    } else {
      log_.warn("podCIDR gets no route",
                {{"node", e.node}, {"dst", dst.str()}, {"reason", e.reason}});
    }
  }
  for (auto it = entries.begin(); it != entries.end();) {
    if (!scope.contains(it->first) || fresh.count(it->first)) {
      ++it;
      continue;
    }
    log_.info(k + " resolved", {{"node", it->second.node}, {"dst", it->first.str()}});
    it = entries.erase(it);
  }
  for (auto& [dst, e] : fresh) entries.insert_or_assign(dst, std::move(e));
}

void Reconciler::syncSets(const ClusterPrefixes& cluster, PassResult& result) {
  if (sets_ == nullptr) return;
  try {
    result.setsWritten = sets_->sync(cluster.v4, cluster.v6);
    if (result.setsWritten) {
      log_.info("cluster podCIDR sets updated", {{"ipv4", std::to_string(cluster.v4.size())},
                                                 {"ipv6", std::to_string(cluster.v6.size())}});
    }
    const std::lock_guard lock(mu_);
    cluster4_ = cluster.v4.size();
    cluster6_ = cluster.v6.size();
  } catch (const sys::Error& e) {
    ++result.failed;
    log_.error("cannot update the cluster podCIDR sets", {{"error", e.msg()}});
  }
}

std::size_t Reconciler::removeOwnRoutes() {
  if (routes_ == nullptr) return 0;
  std::size_t removed = 0;
  for (const ip::Family f : {ip::Family::V4, ip::Family::V6}) {
    for (const netlink::Route& r : routes_->dump(f)) {
      if (r.protocol != config_.protocol) continue;
      netlink::Route del;
      del.dst = r.dst;
      del.metric = r.metric.value_or(0);
      del.protocol = r.protocol;
      if (routes_->remove(del)) ++removed;
    }
  }
  return removed;
}

RouteReport Reconciler::report() const {
  const std::lock_guard lock(mu_);
  RouteReport r;
  for (const auto& [dst, node] : wanted_) {
    (dst.family() == ip::Family::V4 ? r.wanted4 : r.wanted6)++;
  }
  for (const auto& dst : installed_) {
    (dst.family() == ip::Family::V4 ? r.installed4 : r.installed6)++;
  }
  const auto list = [](const Entries& entries) {
    std::vector<RouteReport::Problem> out;
    for (const auto& [dst, e] : entries) out.push_back({dst.str(), e.node, e.via, e.reason});
    return out;
  };
  r.unreachable = list(unreachable_);
  r.conflicts = list(conflicts_);
  r.notRouted = list(notRouted_);
  r.cluster4 = cluster4_;
  r.cluster6 = cluster6_;
  return r;
}

}  // namespace dualstack::agent
