// Pieces shared by the verbs of the dualstack plugin (private to lib/plugin).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualstack/cni/config.hpp"
#include "dualstack/cni/env.hpp"
#include "dualstack/cni/result.hpp"
#include "dualstack/netlink/link.hpp"
#include "dualstack/netlink/socket.hpp"
#include "dualstack/netns/netns.hpp"

namespace dualstack::plugin {

// The node-side veth of the attachment in the store tagged `store`: one of its candidate names,
// carrying its alias (or the legacy alias, or none: see findHostVeth).
std::optional<netlink::LinkInfo> findHostVeth(netlink::Socket& host, const std::string& network,
                                              const std::string& store,
                                              const cni::Attachment& attachment);
// The candidate names of the attachment that no link has.
std::vector<std::string> freeHostVethNames(netlink::Socket& host, const std::string& network,
                                           const cni::Attachment& attachment);

// Runs the IPAM plugin `type` for `command` with `config` (the config as received), the way
// cni::delegate() does. When `type` is dualstack-ipam and the file of that name on CNI_PATH is
// this very program (the same build: equal GNU build IDs), its code runs in this process and the
// exec is saved; the result, errors, logs and stderr are the same either way. Any other IPAM
// plugin, or a dualstack-ipam of another build, is exec'd.
nlohmann::json callIpam(const std::string& type, cni::Command command, const cni::Env& env,
                        const std::string& config);

// Whether the ELF file `binary` is this program's build (its GNU build ID equals ours).
bool isThisBuild(const std::string& binary);

// A netlink socket bound to `ns` (opened while briefly inside it).
netlink::Socket openSocketIn(const netns::Netns& ns, std::string where);

// Opens CNI_NETNS for ADD/CHECK: it must exist, be a network namespace, and not be ours.
netns::Netns openPodNetns(const cni::Env& env);

// The gateway of each family: the IPAM's, else the subnet's first address.
ip::Address gatewayFor(const cni::IpConfig& ipc);

}  // namespace dualstack::plugin
