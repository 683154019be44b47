// CHECK: the attachment still looks as ADD left it. Later plugins of a chain may have added
// addresses, routes or settings; only what ADD created and what prevResult lists is verified.
#include <algorithm>
#include <cctype>

#include "common.hpp"
#include "dualstack/cni/error.hpp"
#include "dualstack/netlink/addr.hpp"
#include "dualstack/netlink/route.hpp"
#include "dualstack/plugin/config.hpp"
#include "dualstack/plugin/plugin.hpp"

namespace dualstack::plugin {

using cni::Code;
using cni::Error;

namespace {

bool sameMac(std::string a, std::string b) {
  auto lower = [](std::string& s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  };
  lower(a);
  lower(b);
  return a == b;
}

bool hasRoute(const std::vector<netlink::Route>& routes, const ip::Prefix& dst,
              const std::optional<ip::Address>& gw, int oif) {
  return std::any_of(routes.begin(), routes.end(), [&](const netlink::Route& r) {
    return r.dst.network() == dst.network() && (!gw || r.gateway == gw) &&
           (oif == 0 || r.oif == oif);
  });
}

// The index in prevResult.interfaces of our pod interface: the one named CNI_IFNAME inside
// CNI_NETNS.
int podInterfaceIndex(const cni::Result& prev, const cni::Env& env) {
  std::optional<int> found;
  for (std::size_t i = 0; i < prev.interfaces.size(); ++i) {
    if (prev.interfaces[i].name == env.ifname && prev.interfaces[i].sandbox == env.netns) {
      found = static_cast<int>(i);
    }
  }
  if (!found) {
    throw Error(Code::CheckFailed,
                "prevResult has no interface " + env.ifname + " in " + env.netns);
  }
  return *found;
}

// The pod end: the veth is there, up, with prevResult's MAC, addresses and routes. Returns the
// pod's addresses from prevResult; what differs is added to `problems`.
std::vector<ip::Address> checkPodEnd(const cni::Env& env, const cni::Result& prev, int podIndex,
                                     std::vector<std::string>& problems) {
  const cni::Interface& want = prev.interfaces[static_cast<std::size_t>(podIndex)];
  const netns::Netns podNs = openPodNetns(env);
  netlink::Socket pod = openSocketIn(podNs, "pod netns");
  auto link = netlink::getLink(pod, env.ifname);
  if (!link) {
    throw Error(Code::CheckFailed, "CHECK of " + env.ifname + " in container " + env.containerId +
                                       " failed: the pod has no interface " + env.ifname);
  }
  if (link->kind != "veth")
    problems.push_back(env.ifname + " is a " + (link->kind.empty() ? "non-veth" : link->kind) +
                       " device, not a veth");
  if (!want.mac.empty() && (!link->mac || !sameMac(netlink::macString(*link->mac), want.mac))) {
    problems.push_back(env.ifname + " has MAC " +
                       (link->mac ? netlink::macString(*link->mac) : "none") +
                       ", prevResult says " + want.mac);
  }
  if (!link->up()) problems.push_back(env.ifname + " is down");
  const auto addrs = netlink::listAddresses(pod, link->index);
  std::vector<ip::Address> podAddrs;
  for (const auto& ipc : prev.ips) {
    if (ipc.interface != podIndex) continue;
    podAddrs.push_back(ipc.address.address());
    const bool present = std::any_of(addrs.begin(), addrs.end(), [&](const netlink::AddrInfo& a) {
      return a.prefix == ipc.address;
    });
    if (!present)
      problems.push_back("address " + ipc.address.str() + " is missing on " + env.ifname);
  }
  for (const auto& r : prev.routes) {
    const auto routes = netlink::listRoutes(
        pod, r.dst.family(), r.table ? static_cast<std::uint32_t>(*r.table) : RT_TABLE_MAIN);
    if (!hasRoute(routes, r.dst, r.gw, 0)) {
      problems.push_back("pod route " + r.dst.str() + (r.gw ? " via " + r.gw->str() : "") +
                         " is missing");
    }
  }
  return podAddrs;
}

// The node end: this attachment's host veth is there and up, with a host route to each of the
// pod's addresses.
void checkNodeEnd(const cni::Env& env, const cni::NetConf& conf, const PluginConfig& pc,
                  const std::vector<ip::Address>& podAddrs, std::vector<std::string>& problems) {
  netlink::Socket host("node netns");
  auto hostLink = findHostVeth(host, conf.name, pc.store, {env.containerId, env.ifname});
  if (!hostLink) {
    problems.push_back("the node-side veth of this attachment is missing");
    return;
  }
  if (!hostLink->up()) problems.push_back("node-side veth " + hostLink->name + " is down");
  for (const auto& a : podAddrs) {
    const auto routes = netlink::listRoutes(host, a.family(), RT_TABLE_MAIN, hostLink->index);
    if (!hasRoute(routes, ip::Prefix::host(a), std::nullopt, hostLink->index)) {
      problems.push_back("node route " + ip::Prefix::host(a).str() + " dev " + hostLink->name +
                         " is missing");
    }
  }
}

}  // namespace

void cmdCheck(const cni::Env& env, const cni::NetConf& conf) {
  const PluginConfig pc = parsePluginConfig(env, conf);
  if (conf.prevResult().is_null()) {
    throw Error(Code::InvalidConfig, "CHECK needs prevResult, the result of the ADD being checked");
  }
  const cni::Result prev = cni::Result::fromJson(conf.prevResult(), "prevResult");
  callIpam(pc.ipamType, cni::Command::Check, env, conf.raw.dump());

  const int podIndex = podInterfaceIndex(prev, env);
  std::vector<std::string> problems;
  const std::vector<ip::Address> podAddrs = checkPodEnd(env, prev, podIndex, problems);
  checkNodeEnd(env, conf, pc, podAddrs, problems);
  if (!problems.empty()) {
    std::string msg = "CHECK of " + env.ifname + " in container " + env.containerId + " failed: ";
    for (std::size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    throw Error(Code::CheckFailed, msg);
  }
}

}  // namespace dualstack::plugin
