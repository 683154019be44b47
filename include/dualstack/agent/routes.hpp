// The pure half of the agent's reconcile: which routes the Node table asks for, and what to do
// so that the kernel's main table has them. No kernel here: the diff works on route lists, so
// every decision is tested without root.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dualstack/agent/nodes.hpp"
#include "dualstack/ip/address.hpp"
#include "dualstack/netlink/route.hpp"

namespace dualstack::agent {

// One route the cluster asks for: another node's podCIDR via that node's address.
struct Wanted {
  ip::Prefix dst;
  ip::Address via;
  std::string node;
  HopSource source = HopSource::None;
};

// A podCIDR that gets no route, and why (no address of its family, claimed by two nodes).
struct NotRouted {
  ip::Prefix dst;
  std::string node;
  std::string reason;
};

struct Desired {
  std::vector<Wanted> routes;        // sorted by dst
  std::vector<NotRouted> notRouted;  // sorted by dst
};

// The routes for every podCIDR of the table except `self`'s own.
Desired desiredRoutes(const NodeTable& table, std::string_view self);
// The same, for the podCIDRs `dsts` only (those a Node event touched).
Desired desiredRoutes(const NodeTable& table, std::string_view self,
                      const std::vector<ip::Prefix>& dsts);

// Why `hop` is not a next hop a host-gw route may use, given `best`, the route this node would
// send packets for `hop` by (the longest match in the main table, or the kernel's lookup);
// std::nullopt when it is directly reachable (a route without a gateway: a connected network).
std::optional<std::string> hopProblem(const ip::Address& hop,
                                      const std::optional<netlink::Route>& best);

// The longest-prefix match for `addr` among `routes` (lowest metric among equals), ignoring
// routes of protocol `ignoreProtocol` (the agent's own routes never make a next hop reachable).
std::optional<netlink::Route> longestMatch(const ip::Address& addr,
                                           const std::vector<netlink::Route>& routes,
                                           std::uint8_t ignoreProtocol);

// The metric of the agent's route to `dst`. IPv6: the kernel's default, 1024. IPv4: 1 to 4093,
// a hash of the destination. The kernel keeps IPv4 next hops in a table hashed by device,
// protocol and metric but not by gateway, and looks a route's next hop up there whenever a route
// is added or replaced: with thousands of nodes behind one device at one metric, every route
// change would walk all of them (measured: 5,000 routes 7x the kernel time). A metric of its own
// per destination spreads them; it changes nothing else, as each podCIDR has one route.
std::uint32_t ownMetric(const ip::Prefix& dst);

// The route the agent installs for `w` with its protocol number (main table, ownMetric(), the
// device left to the kernel).
netlink::Route routeFor(const Wanted& w, std::uint8_t protocol);

struct Action {
  enum class Kind { Add, Replace, Delete };
  Kind kind = Kind::Add;
  netlink::Route route;
  std::string node;  // the node it is for; empty for a route no node wants any more
};

// A podCIDR some other route (another protocol: an operator's, a cloud's) already covers. The
// agent installs nothing there and removes its own route for it, so the other one is in effect.
struct Conflict {
  ip::Prefix dst;
  std::string node;
  std::string existing;  // the other route, as `ip route` would show it
};

struct Unreachable {
  ip::Prefix dst;
  std::string node;
  ip::Address via;
  std::string reason;
};

struct Plan {
  std::vector<Action> actions;
  std::vector<Conflict> conflicts;
  std::vector<Unreachable> unreachable;
  std::size_t inPlace = 0;  // wanted routes already installed exactly
};

struct DiffOptions {
  std::uint8_t protocol = 0;
  // Whether own routes no one wants are removed: false until the first complete list of Nodes
  // arrived, so a restart while the API server is down removes nothing.
  bool removeUnwanted = false;
  // Why a next hop is not usable (hopProblem of its best route); nullopt when it is.
  std::function<std::optional<std::string>(const ip::Address&)> hopCheck;
};

// What to do so that the routes to the destinations in scope are exactly `wanted`. `actual` holds
// the kernel's routes of the main table for those destinations, of every protocol; only routes
// with options.protocol are ever changed or removed.
Plan diff(const std::vector<Wanted>& wanted, const std::vector<netlink::Route>& actual,
          const DiffOptions& options);

}  // namespace dualstack::agent
