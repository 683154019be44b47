// ipMasq: masquerade (IPv4 and IPv6) of pod traffic that leaves the node, via libnftables.
//
// Each network gets its own table in the network namespace of the calling thread (the node's),
// laid out in dualstack/nft/table.hpp:
//
//   table inet dualstack_<network> {
//     set pods     { type ifname; }                       # host-side veths of the pods
//     set except4  { type ipv4_addr; flags interval; }    # never masqueraded
//     set except6  { type ipv6_addr; flags interval; }
//     set cluster4 { type ipv4_addr; flags interval; }    # every Node's podCIDRs (the agent's)
//     set cluster6 { type ipv6_addr; flags interval; }
//     chain postrouting {
//       type nat hook postrouting priority srcnat; policy accept;
//       iifname @pods ip daddr != @except4 ip daddr != @cluster4 masquerade comment "... v2 IPv4"
//       iifname @pods ip6 daddr != @except6 ip6 daddr != @cluster6 masquerade comment "... v2 IPv6"
//     }
//   }
//
// Pods are keyed by host interface name, so DEL needs neither the pod's addresses nor its netns.
// Multicast (224.0.0.0/4, ff00::/8) and IPv4 limited broadcast are always excluded. The cluster
// sets are created empty here and filled by dualstack-agent; without the agent they stay empty.
// enable/disable of one network are serialized (with the agent too) by the table's lock, and
// every change is one atomic nftables transaction. All three work in the network namespace of
// the calling thread (libnftables binds its socket when the context is created, per call).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "dualstack/cni/error.hpp"
#include "dualstack/ip/address.hpp"

namespace dualstack::plugin {

// Masquerades traffic that arrives from host-side veth `hostIfname` and leaves the node, except
// traffic to `exclude` (the node's podCIDRs + the operator's ipMasqExcept; overlapping or
// duplicate prefixes and host bits are fine). Creates the network's table if needed and replaces
// its exclusion sets with `exclude`. Idempotent.
// Throws cni::Error: InvalidConfig for a bad network name, Internal for a bad interface name,
// IoFailure when nftables refuses (the message carries nft's error and a hint).
void enableMasquerade(std::string_view network, std::string_view hostIfname,
                      const std::vector<ip::Prefix>& exclude);

// Removes hostIfname from the network's pods; when it was the last one, deletes the network's
// table (and with it the chain and sets) unless the agent's cluster sets hold podCIDRs, which
// then stay with the table and its rules. Nothing to remove is success.
void disableMasquerade(std::string_view network, std::string_view hostIfname);

// For GC: the host interface names currently masqueraded for `network`, sorted. Empty when the
// network has no table.
std::vector<std::string> masqueradedInterfaces(std::string_view network);

// The nftables table name used for `network` (family inet), e.g. "dualstack_k8s-pod-network".
std::string masqueradeTableName(std::string_view network);

// The lock file serializing enable/disable of `network` (/run/dualstack-cni/masq-<network>.lock).
// It is never removed by the plugin: unlinking a lock file others may be waiting on breaks flock.
std::string masqueradeLockPath(std::string_view network);

}  // namespace dualstack::plugin
