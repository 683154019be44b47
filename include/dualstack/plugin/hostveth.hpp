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

// The alias stored on the host end: "dualstack:<network>:<ifname>:<containerID>".
std::string hostVethAlias(std::string_view network, const cni::Attachment& a);

// Parses an alias written by hostVethAlias for `network`; nullopt for foreign links.
std::optional<cni::Attachment> parseHostVethAlias(std::string_view network, std::string_view alias);

}  // namespace dualstack::plugin
