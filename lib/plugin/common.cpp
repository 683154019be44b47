#include "common.hpp"

#include "dualstack/cni/error.hpp"
#include "dualstack/plugin/hostveth.hpp"

namespace dualstack::plugin {

using cni::Code;
using cni::Error;

std::optional<netlink::LinkInfo> findHostVeth(netlink::Socket& host, const std::string& network,
                                              const std::string& store,
                                              const cni::Attachment& attachment) {
  const std::string alias = hostVethAlias(network, store, attachment);
  const std::string legacy = legacyHostVethAlias(network, attachment);
  for (int c = 0; c < kHostVethCandidates; ++c) {
    auto link = netlink::getLink(host, hostVethName(network, attachment, c));
    if (!link) return std::nullopt;  // names are taken in order: a gap ends the search
    // The kernel ignores an alias in the create request, so ADD sets it right after: an ADD
    // killed in between leaves our name without an alias. The name is a hash of network,
    // container ID and ifname, so such a link is ours, and DEL must be able to remove it.
    if (link->alias == alias || link->alias == legacy || link->alias.empty()) return link;
  }
  return std::nullopt;
}

std::vector<std::string> freeHostVethNames(netlink::Socket& host, const std::string& network,
                                           const cni::Attachment& attachment) {
  std::vector<std::string> free;
  for (int c = 0; c < kHostVethCandidates; ++c) {
    std::string name = hostVethName(network, attachment, c);
    if (!netlink::getLink(host, name)) free.push_back(std::move(name));
  }
  return free;
}

netlink::Socket openSocketIn(const netns::Netns& ns, std::string where) {
  netns::ScopedSetns in(ns);
  return netlink::Socket(std::move(where));
}

netns::Netns openPodNetns(const cni::Env& env) {
  auto pod = netns::Netns::open(env.netns, "CNI_NETNS");
  if (pod.sameAs(netns::Netns::current())) {
    throw Error(Code::InvalidEnv,
                "CNI_NETNS=" + env.netns +
                    " is the plugin's own network namespace (the node's); the pod "
                    "needs a namespace of its own");
  }
  return pod;
}

ip::Address gatewayFor(const cni::IpConfig& ipc) {
  if (ipc.gateway) return *ipc.gateway;
  return ipc.address.network().address().plus(1);
}

}  // namespace dualstack::plugin
