// The agent's view of the kernel: the main routing table and the masquerade table's cluster
// sets, behind interfaces so that the reconcile logic runs against fakes in unit tests.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dualstack/ip/address.hpp"
#include "dualstack/netlink/route.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::agent {

class RouteTable {
 public:
  virtual ~RouteTable() = default;

  // Every route of one family in the main table, of every protocol (one dump).
  virtual std::vector<netlink::Route> dump(ip::Family family) = 0;
  // The main-table entry the kernel would use for `addr` (RTM_GETROUTE with RTM_F_FIB_MATCH);
  // std::nullopt when there is no route to it.
  virtual std::optional<netlink::Route> lookup(const ip::Address& addr) = 0;

  enum class Outcome {
    Done,
    Unreachable,  // the kernel refused the gateway as not directly reachable (*why says how)
    Exists,       // add only: a route with that destination and metric is already there
  };
  // Creates the route only if there is none for its destination and metric (NLM_F_EXCL).
  virtual Outcome add(const netlink::Route& route, std::string* why) = 0;
  // Swaps the next hop of the route with that destination and metric in one step.
  virtual Outcome replace(const netlink::Route& route, std::string* why) = 0;
  // Deletes the route with that destination and metric if it has route.protocol (the kernel
  // compares it); false if there was none.
  virtual bool remove(const netlink::Route& route) = 0;
};

// The main table of the network namespace of the calling thread, through one rtnetlink socket.
// Other failures than those in Outcome throw sys::Error.
std::unique_ptr<RouteTable> kernelRouteTable();

class ClusterSets {
 public:
  virtual ~ClusterSets() = default;
  // Makes the sets hold exactly these podCIDRs (creating table and sets when missing); returns
  // whether anything had to be written. Throws sys::Error.
  virtual bool sync(const std::vector<ip::Prefix>& v4, const std::vector<ip::Prefix>& v6) = 0;
};

// The cluster4/cluster6 sets of `network`'s nftables table (dualstack/nft/table.hpp) in the
// calling thread's network namespace, changed under the table's lock. Throws sys::Error when
// nftables cannot be used (no libnftables, no nf_tables in the kernel).
std::unique_ptr<ClusterSets> nftClusterSets(std::string network);

}  // namespace dualstack::agent
