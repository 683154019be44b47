// ADD: IPAM, then a veth pair with both families addressed and routed on both ends.
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <cstdio>

#include "common.hpp"
#include "dualstack/cni/error.hpp"
#include "dualstack/cni/json.hpp"
#include "dualstack/netlink/addr.hpp"
#include "dualstack/netlink/route.hpp"
#include "dualstack/netns/sysctl.hpp"
#include "dualstack/plugin/config.hpp"
#include "dualstack/plugin/hostveth.hpp"
#include "dualstack/plugin/masq.hpp"
#include "dualstack/plugin/plugin.hpp"
#include "dualstack/plugin/rollback.hpp"

namespace dualstack::plugin {

using cni::Code;
using cni::Error;

namespace {

constexpr std::uint32_t kDefaultMtu = 1500;

bool hasFamily(const cni::Result& r, ip::Family f) {
  for (const auto& ipc : r.ips) {
    if (ipc.address.family() == f) return true;
  }
  return false;
}

// Picks the node-side name: the first candidate that is free. A link that already carries this
// attachment's alias is a leftover of an earlier ADD of the same attachment whose pod end lives
// elsewhere (the pod has no CNI_IFNAME, we checked): it is replaced.
std::string chooseHostName(netlink::Socket& host, const std::string& network,
                           const std::string& store, const cni::Attachment& a) {
  const std::string alias = hostVethAlias(network, store, a);
  const std::string legacy = legacyHostVethAlias(network, a);
  for (int c = 0; c < kHostVethCandidates; ++c) {
    std::string name = hostVethName(network, a, c);
    auto link = netlink::getLink(host, name);
    if (!link) return name;
    if (link->alias == alias || link->alias == legacy) {
      netlink::deleteLink(host, link->index);
      return name;
    }
  }
  throw Error(Code::AlreadyExists,
              "every node-side interface name for this attachment is taken by other links (" +
                  hostVethName(network, a, 0) + ", ...)");
}

// The routes the pod gets for one family: the IPAM's routes of that family, else a default route.
std::vector<cni::Route> podRoutes(const cni::Result& ipam, ip::Family f, const ip::Address& gw) {
  std::vector<cni::Route> routes;
  for (const auto& r : ipam.routes) {
    if (r.dst.family() != f) continue;
    cni::Route copy = r;
    if (!copy.gw) copy.gw = gw;
    routes.push_back(copy);
  }
  if (routes.empty()) {
    routes.push_back(
        cni::Route{ip::Prefix(f == ip::Family::V4 ? ip::Address::v4(0) : ip::Address::v6(0), 0),
                   gw,
                   {},
                   {},
                   {},
                   {},
                   {}});
  }
  return routes;
}

// fe80::/64 with the modified EUI-64 interface identifier of `mac` (RFC 4291 appendix A), as the
// kernel would have generated it.
ip::Address linkLocalFromMac(const netlink::Mac& mac) {
  const unsigned char bytes[16] = {0xfe,   0x80,   0,
                                   0,      0,      0,
                                   0,      0,      static_cast<unsigned char>(mac[0] ^ 0x02),
                                   mac[1], mac[2], 0xff,
                                   0xfe,   mac[3], mac[4],
                                   mac[5]};
  return ip::Address::fromBytes(ip::Family::V6, bytes);
}

netlink::Route toNetlink(const cni::Route& r, int oif) {
  netlink::Route nr;
  nr.dst = r.dst;
  nr.gateway = r.gw;
  nr.oif = oif;
  if (r.priority) nr.metric = static_cast<std::uint32_t>(*r.priority);
  if (r.table) nr.table = static_cast<std::uint32_t>(*r.table);
  if (r.mtu) nr.mtu = static_cast<std::uint32_t>(*r.mtu);
  if (r.advmss) nr.advmss = static_cast<std::uint32_t>(*r.advmss);
  if (r.scope) nr.scope = static_cast<std::uint8_t>(*r.scope);
  return nr;
}

// A pod attached to several networks (eth0, eth1, ...) keeps the route to a destination that an
// earlier attachment installed through another interface, e.g. the default route: later
// attachments do not fail on it. Returns whether the route was added (or already ours).
bool addPodRoute(netlink::Socket& pod, const netlink::Route& route, const std::string& ifname) {
  try {
    netlink::addRoute(pod, route, ifname, netlink::IfExists::AcceptIdentical);
    return true;
  } catch (const Error& e) {
    if (e.code() != Code::AlreadyExists) throw;
    for (const auto& existing : netlink::listRoutes(pod, route.dst.family(), route.table)) {
      if (existing.dst.network() == route.dst.network() && existing.oif != route.oif) {
        std::fprintf(stderr,
                     "dualstack: the pod already routes %s through another interface; "
                     "keeping that route\n",
                     route.dst.str().c_str());
        return false;
      }
    }
    throw;
  }
}

// Held open for the sysctls of both ends (netns::SysctlDir says why).
constexpr std::string_view kIpv6Conf = "net/ipv6/conf";

// The MTU of both ends: the config's, else that of the node's default route, else 1500.
std::uint32_t linkMtu(const PluginConfig& pc, netlink::Socket& host) {
  if (pc.mtu) return static_cast<std::uint32_t>(*pc.mtu);
  if (auto m = netlink::defaultRouteMtu(host)) return *m;
  return kDefaultMtu;
}

netlink::VethSpec vethSpec(const PluginConfig& pc, const std::string& network, const cni::Env& env,
                           const cni::Attachment& attachment, int podNsFd,
                           const std::string& hostName, std::uint32_t mtu, bool v6) {
  netlink::VethSpec spec;
  spec.hostName = hostName;
  spec.hostMtu = mtu;
  spec.hostAlias = hostVethAlias(network, pc.store, attachment);
  // Down until its sysctls are set: an IPv6 link-local address would otherwise start DAD.
  spec.hostUp = false;
  spec.peerName = env.ifname;
  spec.peerMtu = mtu;
  spec.peerNetnsFd = podNsFd;
  spec.peerMac = pc.mac;
  // With forwarding on, every IPv6 prefix of the node end joins its subnet-router anycast
  // address; for the kernel's fe80::/64 link-local that anycast entry makes deleting the veth
  // wait an extra RCU round (~20 ms of every DEL). The node end gets no generated link-local;
  // it gets one as /128 (configureNodeEnd, no anycast), which it still needs: the neighbour
  // solicitation for a pod address on behalf of a forwarded packet is sent from the link's
  // link-local address.
  if (v6) spec.hostAddrGenMode = IN6_ADDR_GEN_MODE_NONE;
  return spec;
}

// What both ends are configured from: the IPAM's answer and the new pair.
struct NewPair {
  const cni::Env& env;
  const cni::Result& ipam;
  const netlink::Veth& veth;
  const std::string& hostName;
  bool v4, v6;
};

// The pod end: its IPv6 sysctls, its addresses, the link (and lo) up, then per family an on-link
// route to the node end's gateway address and everything else via it. Returns the IPAM's routes
// it installed, for the result.
std::vector<cni::Route> configurePodEnd(netlink::Socket& pod, const netns::Netns& podNs,
                                        const NewPair& p) {
  const cni::Env& env = p.env;
  const cni::Result& ipam = p.ipam;
  const netlink::Veth& veth = p.veth;
  // /proc/sys/net belongs to the namespace of whoever opens it, hence the setns.
  {
    netns::ScopedSetns in(podNs);
    if (p.v6) {
      const netns::SysctlDir podConf(kIpv6Conf);
      podConf.setIfDifferent(env.ifname + "/disable_ipv6", "0");
      podConf.write(env.ifname + "/accept_dad", "0");
      podConf.write(env.ifname + "/keep_addr_on_down", "1");
    } else {
      // No IPv6 address of ours, but the kernel still gives the link a link-local address and
      // runs DAD on it; without IPv6 in the kernel there is no such file, which is fine.
      try {
        netns::SysctlDir(kIpv6Conf).write(env.ifname + "/accept_dad", "0");
      } catch (const Error&) {
      }
    }
  }
  for (const auto& ipc : ipam.ips) {
    netlink::addAddress(pod, veth.peer, ipc.address, IFA_F_NODAD | IFA_F_NOPREFIXROUTE);
  }
  netlink::setLinkUp(pod, veth.peer);
  if (auto lo = netlink::getLink(pod, "lo"); lo && !lo->up()) netlink::setLinkUp(pod, lo->iface());

  std::vector<cni::Route> installed;
  std::vector<ip::Family> families;
  if (p.v4) families.push_back(ip::Family::V4);
  if (p.v6) families.push_back(ip::Family::V6);
  for (const auto family : families) {
    const cni::IpConfig* first = nullptr;
    for (const auto& ipc : ipam.ips) {
      if (ipc.address.family() == family && first == nullptr) first = &ipc;
    }
    const ip::Address gw = gatewayFor(*first);
    // The gateway is the node end's address, reachable on the link; everything else goes via
    // it, including the pod's own subnet: other pods sit behind other veths.
    netlink::Route onLink;
    onLink.dst = ip::Prefix::host(gw);
    onLink.oif = veth.peer.index;
    netlink::addRoute(pod, onLink, env.ifname);
    const ip::Prefix subnet = first->address.network();
    auto routes = podRoutes(ipam, family, gw);
    bool subnetCovered = false;
    for (const auto& r : routes) subnetCovered = subnetCovered || r.dst == subnet;
    if (!subnetCovered && subnet.length() < subnet.address().bits()) {
      netlink::Route viaGw;
      viaGw.dst = subnet;
      viaGw.gateway = gw;
      viaGw.oif = veth.peer.index;
      netlink::addRoute(pod, viaGw, env.ifname, netlink::IfExists::AcceptIdentical);
    }
    for (const auto& r : routes) {
      if (addPodRoute(pod, toNetlink(r, veth.peer.index), env.ifname)) installed.push_back(r);
    }
  }
  return installed;
}

// The node end: its IPv6 sysctls, the gateways as host addresses, the link up, a link-local /128
// for IPv6, a host route per pod address, forwarding on. Returns the node end as the kernel lists
// it (for its MAC).
std::optional<netlink::LinkInfo> configureNodeEnd(netlink::Socket& host, netlink::Socket& pod,
                                                  const NewPair& p) {
  const cni::Result& ipam = p.ipam;
  const netlink::Veth& veth = p.veth;
  const std::string& hostName = p.hostName;
  std::optional<netns::SysctlDir> nodeConf;
  if (p.v6) {
    nodeConf.emplace(kIpv6Conf);
    nodeConf->setIfDifferent(hostName + "/disable_ipv6", "0");
    nodeConf->write(hostName + "/accept_dad", "0");
    nodeConf->write(hostName + "/accept_ra", "0");
  } else {
    try {
      netns::SysctlDir(kIpv6Conf).write(hostName + "/accept_dad", "0");
    } catch (const Error&) {
    }
  }
  std::vector<ip::Address> gateways;
  for (const auto& ipc : ipam.ips) {
    const ip::Address gw = gatewayFor(ipc);
    if (std::find(gateways.begin(), gateways.end(), gw) != gateways.end()) continue;
    gateways.push_back(gw);
    netlink::addAddress(host, veth.host, ip::Prefix::host(gw), IFA_F_NODAD | IFA_F_NOPREFIXROUTE);
  }
  netlink::setLinkUp(host, veth.host);
  // Both ends got their carrier just now. The kernel attaches a device's transmit queue when it
  // processes the carrier change, which for a veth whose two ends have the same ifindex (fresh
  // namespaces) it may postpone by up to a second; until then every packet is dropped. Reading a
  // link back (RTM_GETLINK) makes the kernel process its pending change at once, so the pod can
  // send its first packet the moment ADD returns. The node end's reply also gives its MAC.
  auto hostLink = netlink::getLink(host, veth.host.index);
  (void)netlink::getLink(pod, veth.peer.index);
  if (p.v6 && hostLink && hostLink->mac) {
    netlink::addAddress(host, veth.host, ip::Prefix::host(linkLocalFromMac(*hostLink->mac)),
                        IFA_F_NODAD | IFA_F_NOPREFIXROUTE);
  }
  for (const auto& ipc : ipam.ips) {
    netlink::Route toPod;
    toPod.dst = ip::Prefix::host(ipc.address.address());
    toPod.oif = veth.host.index;
    netlink::addRoute(host, toPod, hostName, netlink::IfExists::AcceptIdentical);
  }
  if (p.v4) netns::setSysctlIfDifferent("net/ipv4/ip_forward", "1");
  if (p.v6) nodeConf->setIfDifferent("all/forwarding", "1");
  return hostLink;
}

// Undo steps (Rollback): each gets copies of what it needs.
void releaseAddresses(const std::string& ipamType, const cni::Env& env, const std::string& config) {
  callIpam(ipamType, cni::Command::Del, env, config);
}

void deleteVeth(int hostIndex) {
  // A socket of its own: the failure being undone may have left ADD's out of step.
  netlink::Socket host("node netns");
  netlink::deleteLink(host, hostIndex);
}

}  // namespace

cni::SerialisedResult cmdAdd(const cni::Env& env, const cni::NetConf& conf) {
  const PluginConfig pc = parsePluginConfig(env, conf);
  const cni::Attachment attachment{env.containerId, env.ifname};
  const netns::Netns podNs = openPodNetns(env);
  netlink::Socket host("node netns");
  netlink::Socket pod = openSocketIn(podNs, "pod netns");
  if (netlink::getLink(pod, env.ifname)) {
    throw Error(Code::AlreadyExists, "the pod's network namespace " + env.netns +
                                         " already has an interface named " + env.ifname +
                                         " (CNI_IFNAME)");
  }

  Rollback rollback;
  const std::string confText = conf.raw.dump();
  nlohmann::json ipamOut;
  try {
    ipamOut = callIpam(pc.ipamType, cni::Command::Add, env, confText);
  } catch (const Error& e) {
    // The IPAM plugin exited 0 but printed something that is not JSON (bytes that are not UTF-8,
    // say): it may hold addresses for the attachment now.
    if (e.code() == Code::DecodeFailure) {
      rollback.add("release addresses (IPAM DEL)", releaseAddresses, pc.ipamType, env, confText);
    }
    throw;
  }
  rollback.add("release addresses (IPAM DEL)", releaseAddresses, pc.ipamType, env, confText);
  const cni::Result ipam = cni::Result::fromJson(ipamOut, "result of IPAM plugin " + pc.ipamType);
  if (ipam.ips.empty()) {
    throw Error(Code::InvalidConfig, "IPAM plugin " + pc.ipamType + " returned no address");
  }
  const bool v4 = hasFamily(ipam, ip::Family::V4);
  const bool v6 = hasFamily(ipam, ip::Family::V6);

  const std::uint32_t mtu = linkMtu(pc, host);
  const std::string hostName = chooseHostName(host, conf.name, pc.store, attachment);
  const netlink::Veth veth = netlink::createVeth(
      host, pod, vethSpec(pc, conf.name, env, attachment, podNs.fd(), hostName, mtu, v6));
  rollback.add("delete veth " + hostName, deleteVeth, veth.host.index);

  const NewPair pair{env, ipam, veth, hostName, v4, v6};
  std::vector<cni::Route> ipamRoutes = configurePodEnd(pod, podNs, pair);
  const std::optional<netlink::LinkInfo> hostLink = configureNodeEnd(host, pod, pair);

  if (pc.ipMasq) {
    std::vector<ip::Prefix> exclude = pc.ipMasqExcept;
    for (const auto& ipc : ipam.ips) exclude.push_back(ipc.address.network());
    enableMasquerade(conf.name, hostName, exclude);
    rollback.add("remove masquerade for " + hostName, disableMasquerade, conf.name, hostName);
  }

  cni::Result result;
  result.interfaces.push_back(
      {hostName, hostLink && hostLink->mac ? netlink::macString(*hostLink->mac) : "", {}, ""});
  result.interfaces.push_back(
      {env.ifname, netlink::macString(veth.peerMac), static_cast<int>(mtu), env.netns});
  result.dns = ipam.dns;
  result.routes = std::move(ipamRoutes);
  for (const auto& ipc : ipam.ips) {
    result.ips.push_back(cni::IpConfig{ipc.address, gatewayFor(ipc), 1});
  }
  cni::SerialisedResult out = result.serialise(conf.cniVersion);
  rollback.commit();
  return out;
}

}  // namespace dualstack::plugin
