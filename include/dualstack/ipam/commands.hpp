// The verbs of the dualstack-ipam binary, wired into cni::pluginMain by cmd/dualstack-ipam.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualstack/cni/config.hpp"
#include "dualstack/cni/env.hpp"
#include "dualstack/cni/skel.hpp"
#include "dualstack/ip/address.hpp"

namespace dualstack::ipam {

// The plugin's name: its `ipam.type`, and the name the program is installed under.
inline constexpr std::string_view kPluginName = "dualstack-ipam";

// One address per range set for (CNI_CONTAINERID, CNI_IFNAME), in the node's family order;
// idempotent. Returns the result in conf.cniVersion's format (no `interfaces`).
cni::SerialisedResult cmdAdd(const cni::Env& env, const cni::NetConf& conf);
// Releases the attachment's addresses; success when it holds none. Never reads the node source.
void cmdDel(const cni::Env& env, const cni::NetConf& conf);
// Error(CheckFailed) unless the attachment holds an address in every range set (and every
// prevResult address inside our ranges is one of them).
void cmdCheck(const cni::Env& env, const cni::NetConf& conf);
// Releases every allocation whose attachment is not in conf.validAttachments (without a list:
// every allocation of the network, see cni::NetConf).
void cmdGc(const cni::Env& env, const cni::NetConf& conf);
// Error(NotAvailable) when no podCIDR is known or a range set is exhausted.
void cmdStatus(const cni::Env& env, const cni::NetConf& conf);

// DEL's work on the store <dataDir>/<network>, shared with `dualstack-ipam release`: releases
// the attachment's addresses under the store lock and returns them (none when the store does not
// exist). Error(IoFailure) listing every address that could not be released.
std::vector<ip::Address> releaseAttachment(const std::string& dataDir, const std::string& network,
                                           const cni::Attachment& a);

cni::Handlers handlers();

}  // namespace dualstack::ipam
