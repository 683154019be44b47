// The main plugin's own options, parsed from the network config.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dualstack/cni/config.hpp"
#include "dualstack/ip/address.hpp"

namespace dualstack::plugin {

struct PluginConfig {
  std::string ipamType;                  // ipam.type, found on CNI_PATH
  std::optional<int> mtu;                // unset: the MTU of the node's default-route device
  bool ipMasq = false;                   // masquerade pod traffic leaving the node
  std::vector<ip::Prefix> ipMasqExcept;  // destinations never masqueraded (besides podCIDRs)
};

// Error(InvalidConfig) naming the field on a bad option; unknown fields are ignored as the
// reference plugins do (a conflist may carry options for other tools).
PluginConfig parsePluginConfig(const cni::NetConf& conf);

}  // namespace dualstack::plugin
