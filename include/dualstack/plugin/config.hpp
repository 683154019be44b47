// The main plugin's own options, parsed from the network config.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dualstack/cni/config.hpp"
#include "dualstack/cni/env.hpp"
#include "dualstack/ip/address.hpp"

namespace dualstack::plugin {

struct PluginConfig {
  std::string ipamType;                  // ipam.type, found on CNI_PATH
  std::optional<int> mtu;                // unset: the MTU of the node's default-route device
  bool ipMasq = false;                   // masquerade pod traffic leaving the node
  std::vector<ip::Prefix> ipMasqExcept;  // destinations never masqueraded (besides podCIDRs)
  std::optional<std::array<std::uint8_t, 6>> mac;  // pod end: runtimeConfig.mac, CNI_ARGS MAC
  std::string store;                               // storeTag() of the IPAM's dataDir
};

// The whole request as far as this plugin can judge it, checked before any verb acts: its own
// options, the MAC the runtime asks for, and, when the IPAM is dualstack-ipam, the ipam section
// by that plugin's own rules (a DEL or GC that the IPAM would refuse must not delete the veth
// first). Error(InvalidConfig) naming the field on a bad option (a bad CNI_ARGS MAC is
// InvalidEnv); unknown fields are ignored as the reference plugins do (a conflist may carry
// options for other tools).
PluginConfig parsePluginConfig(const cni::Env& env, const cni::NetConf& conf);

}  // namespace dualstack::plugin
