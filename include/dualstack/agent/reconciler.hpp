// One reconcile of the agent: the desired routes (from the Node table) against the kernel's main
// table, then the actions that make them equal, on the agent's own routes only; and the cluster
// podCIDRs into the masquerade table's sets.
//
//   full:     one dump per family; every destination; own routes no Node wants are removed (once
//             the first complete list of Nodes has arrived); next hops checked against the dump
//   partial:  only the destinations a Node event touched, each looked up in the kernel
//             (RTM_GETROUTE): its cost does not grow with the size of the cluster
//
// The reconciler remembers what it found (routes installed, next hops not directly reachable,
// destinations other routes cover, podCIDRs without a route) for /metrics and `status`, and
// logs each of those once when it appears, changes or goes away, not at every pass.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "dualstack/agent/kernel.hpp"
#include "dualstack/agent/log.hpp"
#include "dualstack/agent/nodes.hpp"
#include "dualstack/agent/routes.hpp"

namespace dualstack::agent {

struct ReconcilerConfig {
  std::string self;           // this node's name: it gets no route
  std::uint8_t protocol = 0;  // the agent's rtnetlink protocol number
};

// Every podCIDR of the cluster, for the masquerade table's sets.
struct ClusterPrefixes {
  std::vector<ip::Prefix> v4, v6;
};

struct PassResult {
  std::size_t added = 0, replaced = 0, removed = 0;
  std::size_t failed = 0;  // actions or set updates that failed (logged)
  bool setsWritten = false;
  // Something was not as the last dump said (a route appeared in between): a full pass will
  // sort it out.
  bool needFull = false;
  bool ok() const { return failed == 0 && !needFull; }
};

// What /metrics and `status` show of the routes. Problem lists are sorted by destination.
struct RouteReport {
  struct Problem {
    std::string dst, node, via, reason;
  };
  std::size_t wanted4 = 0, wanted6 = 0;        // routes the Node table asks for
  std::size_t installed4 = 0, installed6 = 0;  // of those, in the kernel as wanted
  std::vector<Problem> unreachable;            // next hop not directly reachable
  std::vector<Problem> conflicts;              // another protocol's route covers the podCIDR
  std::vector<Problem> notRouted;              // no address of the family, claimed twice
  std::size_t cluster4 = 0, cluster6 = 0;      // elements last written to the cluster sets
};

class Reconciler {
 public:
  // `routes` may be null (routing off: --no-routes), `sets` too (no cluster sets).
  Reconciler(ReconcilerConfig config, RouteTable* routes, ClusterSets* sets, Log& log);

  // A complete pass. `synced`: the Node table holds a complete list from the API.
  PassResult full(const Desired& desired, const ClusterPrefixes& cluster, bool synced);
  // The destinations `dsts` only; the sets only when `cluster` is given (podCIDRs changed).
  PassResult partial(const Desired& desired, const std::vector<ip::Prefix>& dsts,
                     const std::optional<ClusterPrefixes>& cluster, bool synced);
  // Removes every route with the agent's protocol from the main table (one dump); returns how
  // many. For --remove-routes-on-exit.
  std::size_t removeOwnRoutes();

  RouteReport report() const;

 private:
  struct Entry {
    std::string node, via, reason;
    friend bool operator==(const Entry&, const Entry&) = default;
  };
  using Entries = std::map<ip::Prefix, Entry, PrefixLess>;

  // The destinations a pass is about: the given ones (sorted), or all of a family.
  struct Scope {
    const std::vector<ip::Prefix>* dsts = nullptr;
    std::optional<ip::Family> family;
    bool contains(const ip::Prefix& p) const;
  };
  PassResult apply(const Desired& desired, const Scope& scope,
                   const std::vector<netlink::Route>& actual, const DiffOptions& options);
  void syncSets(const ClusterPrefixes& cluster, PassResult& result);
  // Replaces the entries of `kind` in scope, logging what changed.
  void update(Entries& entries, const char* kind, const Scope& scope, Entries fresh);

  ReconcilerConfig config_;
  RouteTable* routes_;
  ClusterSets* sets_;
  Log& log_;

  mutable std::mutex mu_;  // the state below; report() runs on another thread
  std::map<ip::Prefix, std::string, PrefixLess> wanted_;  // dst -> node
  std::set<ip::Prefix, PrefixLess> installed_;            // wanted and in the kernel as wanted
  Entries unreachable_, conflicts_, notRouted_;
  std::size_t cluster4_ = 0, cluster6_ = 0;
};

}  // namespace dualstack::agent
