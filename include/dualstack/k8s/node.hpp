// The Node model every layer shares: what dualstack-ipam and the node agent need of a Node,
// typed once, from whichever object states it (the API's Node, a Node file, the inline
// ipam.node of a config, the node cache).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualstack/ip/address.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::k8s {

struct PodCidr {
  ip::Prefix prefix;  // as written: host bits are kept, for the reader to judge
  std::string field;  // where it was read, relative to the object: "spec.podCIDRs[1]"
};

struct NodeAddress {
  std::string type;  // InternalIP, ExternalIP, ...
  ip::Address address;
};

// A value that is not what its field promises. Readers decide: dualstack-ipam refuses the Node,
// the agent notes it and routes what it can.
struct Unusable {
  enum class Kind { PodCidr, Address };
  Kind kind;
  std::string field;  // "spec.podCIDRs[0]", "status.addresses[2].address"
  std::string text;
};

struct Node {
  std::string name;                    // metadata.name; empty when the object has none
  std::vector<PodCidr> podCIDRs;       // spec.podCIDRs, else [spec.podCIDR]; may be empty
  std::vector<NodeAddress> addresses;  // status.addresses that are IP addresses, in order
  std::vector<Unusable> unusable;      // podCIDRs that are no CIDR, InternalIP/ExternalIP no IP
};

// Where a Node's fields are in the object parsed.
enum class NodeLayout {
  Object,  // a Node as the API gives it: metadata.name, spec.podCIDR(s), status.addresses
  Inline,  // a config's ipam.node: podCIDRs and addresses at the top
};

// The one parse of a Node. A field of the wrong type is Error(`code`) naming it from `where`
// ("<where>.spec.podCIDRs[0]: expected a string, got a number"); an empty `where` names fields
// from the object. Values of the right type that are unusable land in Node::unusable; addresses
// of other types that are no IP address (a Hostname) are left out.
Node parseNode(const nlohmann::json& obj, std::string_view where,
               NodeLayout layout = NodeLayout::Object, sys::Code code = sys::Code::DecodeFailure);

}  // namespace dualstack::k8s
