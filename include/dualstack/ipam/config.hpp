// The `ipam` section of the network config, and where the node's podCIDRs come from.
//
//   "ipam": {
//     "type": "dualstack-ipam",
//     "dataDir": "/var/lib/cni/networks",          (default; the store is <dataDir>/<name>)
//     "node": {"podCIDRs": ["10.244.1.0/24", "fd00:10:244:1::/64"],
//              "addresses": [{"type": "InternalIP", "address": "192.168.10.5"}]}
//          or {"file": "/etc/cni/node.json"}        (a Node object as `kubectl get node -o json`
//                                                    prints it, read at every ADD/CHECK/STATUS)
//          or {"kubeconfig": "/etc/cni/net.d/dualstack-cni.kubeconfig", "name": "worker-1",
//              "timeout": "2s", "cacheTTL": "60s"}  (the Kubernetes API, cached under dataDir)
//          (see dualstack/ipam/node_source.hpp)
//     -- or, instead of node, host-local's syntax --
//     "ranges": [[{"subnet": "10.244.1.0/24", "rangeStart": "10.244.1.10",
//                  "rangeEnd": "10.244.1.99", "gateway": "10.244.1.1"}]],
//     "subnet": ..., "rangeStart": ..., "rangeEnd": ..., "gateway": ...  (host-local's old form)
//     "routes": [{"dst": "0.0.0.0/0", "gw": "10.244.1.1"}]                (copied into results)
//   }
//
// Each podCIDR becomes a range set of one range (gateway network+1, like host-local's default).
//
// Order of `ips` in results: the family of the node's first InternalIP comes first, else that of
// its first ExternalIP, else that of its first address of any type; with no addresses known, the
// podCIDRs order. This is the order Kubernetes expects ("all podIPs in a node match the IP family
// preference of its .status.addresses") and the one CRI-O and podman show. With host-local's
// `ranges`, results keep the ranges order, as host-local does.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualstack/cni/config.hpp"
#include "dualstack/cni/env.hpp"
#include "dualstack/cni/result.hpp"
#include "dualstack/ip/address.hpp"
#include "dualstack/ipam/allocator.hpp"
#include "dualstack/ipam/node_source.hpp"
#include "dualstack/ipam/range.hpp"
#include "dualstack/k8s/node.hpp"

namespace dualstack::ipam {

inline constexpr std::string_view kDefaultDataDir = "/var/lib/cni/networks";

struct IpamConfig {
  std::string network;  // the network name: the store is <dataDir>/<network>
  std::string dataDir;
  std::vector<cni::Route> routes;
  std::vector<RangeSet> ranges;            // host-local syntax; empty when `node` is set
  std::shared_ptr<const NodeSource> node;  // null with host-local syntax
  std::vector<Requested> requested;        // runtimeConfig.ips, args.cni.ips, CNI_ARGS IP=
};

// Every scope validates the whole section: a DEL or GC whose config could not serve an ADD is
// refused before it touches the store. The scope only decides what the node source may do once
// loaded (parsing never loads it; DEL and GC never do).
enum class Scope {
  Store,     // DEL, GC: a Kubernetes API node source would only read its cache
  Allocate,  // ADD, STATUS: the node source may ask the API server
  Check,     // CHECK: a Kubernetes API node source only reads its cache
};

// Parses and validates conf.ipam, reading no file. Errors: Error(InvalidConfig) naming the field;
// a malformed CNI_ARGS IP= is Error(InvalidEnv).
IpamConfig parseIpamConfig(const cni::NetConf& conf, const cni::Env& env, Scope scope);

// The range sets to allocate from, in result order (loads the node source when there is one).
std::vector<RangeSet> rangeSets(const IpamConfig& cfg);
// One set per podCIDR (set id = its index in podCIDRs), ordered by the node's address family
// preference. Error(InvalidConfig) for host bits, a too-small CIDR, or two CIDRs of one family,
// naming the field after `fieldPrefix` (NodeSource::fieldPrefix()).
std::vector<RangeSet> rangeSetsForNode(const k8s::Node& node, std::string_view fieldPrefix);
// The node's preferred family (see the header comment), if its addresses tell.
std::optional<ip::Family> preferredFamily(const std::vector<k8s::NodeAddress>& addresses);

}  // namespace dualstack::ipam
