// Naming of the node-side veth end. The name is derived from the attachment alone, so DEL and GC
// find the link without the pod's namespace (a runtime may call DEL after removing it), and the
// link's alias records which attachment owns it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "dualstack/cni/config.hpp"

namespace dualstack::plugin {

// How many alternative names an attachment may use when its first name is taken by another
// attachment (a 52-bit hash collision, or a foreign link that happens to match).
inline constexpr int kHostVethCandidates = 4;

// "ds" + 13 hex digits of a hash of (network, container ID, ifname, candidate): 15 characters,
// the kernel's limit.
std::string hostVethName(std::string_view network, const cni::Attachment& a, int candidate);

// The address store of an attachment as its node-side veth records it: 12 hex digits of a hash
// of the IPAM's dataDir (host-local and dualstack-ipam name their store by it), with repeated,
// "." and trailing slashes removed. Two configs naming one network but different stores then
// never take each other's veths for their own.
std::string storeTag(std::string_view dataDir);

// The alias stored on the host end: "dualstack:<network>@<store tag>:<ifname>:<containerID>".
std::string hostVethAlias(std::string_view network, std::string_view store,
                          const cni::Attachment& a);
// The alias of links made before the store was recorded: "dualstack:<network>:<ifname>:<id>".
std::string legacyHostVethAlias(std::string_view network, const cni::Attachment& a);

// The attachment an alias names, when the alias is of `network` and of the store tagged `store`
// (or a legacy alias of `network`, which names no store); nullopt for any other link.
std::optional<cni::Attachment> parseHostVethAlias(std::string_view network, std::string_view store,
                                                  std::string_view alias);

}  // namespace dualstack::plugin
