// What the agent keeps of each Node: per family its podCIDR and the address other nodes route
// that podCIDR to. Nothing else of a Node is kept (a Node object is several KB; this is ~200
// bytes), and a Node event that changes none of it changes nothing here.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dualstack/ip/address.hpp"
#include "dualstack/k8s/node.hpp"

namespace dualstack::agent {

// Orders prefixes (family, address, length) for maps and sorted lists.
struct PrefixLess {
  bool operator()(const ip::Prefix& a, const ip::Prefix& b) const;
};

// Where a node's next hop of one family came from.
enum class HopSource : std::uint8_t { None, InternalIP, ExternalIP };
std::string_view hopSourceName(HopSource s);

struct FamilyInfo {
  std::optional<ip::Prefix> podCIDR;  // network form (host bits cleared)
  std::optional<ip::Address> nextHop;
  HopSource source = HopSource::None;

  friend bool operator==(const FamilyInfo&, const FamilyInfo&) = default;
};

struct NodeInfo {
  FamilyInfo v4, v6;
  // Values of the Node that could not be used (a podCIDR that is no CIDR, a second podCIDR of a
  // family), for `dualstack-agent status`; empty when all is well.
  std::string problem;

  const FamilyInfo& family(ip::Family f) const { return f == ip::Family::V4 ? v4 : v6; }
  friend bool operator==(const NodeInfo&, const NodeInfo&) = default;
};

// The routing facts of a Node. The next hop of a family is the node's first InternalIP of that
// family, else (a node without one, e.g. only public addresses) its first ExternalIP of that
// family: the route is installed only if that address is directly reachable from this node, so
// falling back to an ExternalIP can never send traffic anywhere the node's own routes would not.
NodeInfo summarize(const k8s::Node& node);

// Every Node the agent knows, by name, with an index from podCIDR to the nodes claiming it.
class NodeTable {
 public:
  // Adds or replaces a node. Returns the podCIDRs whose routes may have changed (the node's old
  // and new ones); empty when nothing that matters for routing changed.
  std::vector<ip::Prefix> upsert(const k8s::Node& node);
  // Removes a node; returns its podCIDRs (empty if it was not known).
  std::vector<ip::Prefix> erase(std::string_view name);
  // Replaces every node with `nodes` (a full list from the API).
  void replaceAll(const std::vector<k8s::Node>& nodes);

  std::size_t size() const { return nodes_.size(); }
  const NodeInfo* find(std::string_view name) const;
  const std::map<std::string, NodeInfo, std::less<>>& nodes() const { return nodes_; }
  // The nodes claiming `podCIDR` (normally one), sorted; empty if none.
  std::vector<std::string> claimants(const ip::Prefix& podCIDR) const;
  // Every podCIDR of a family, sorted.
  std::vector<ip::Prefix> podCIDRs(ip::Family f) const;
  // Increases whenever the set of podCIDRs changes (not when only a next hop does).
  std::uint64_t podCIDRGeneration() const { return cidrGeneration_; }

 private:
  void index(const std::string& name, const NodeInfo& info);
  void unindex(const std::string& name, const NodeInfo& info);

  std::map<std::string, NodeInfo, std::less<>> nodes_;
  std::map<ip::Prefix, std::vector<std::string>, PrefixLess> byCIDR_;
  std::uint64_t cidrGeneration_ = 0;
};

}  // namespace dualstack::agent
