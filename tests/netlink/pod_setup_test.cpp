// A whole dual-stack pod wired through this layer's API, as the plugin's ADD does it, checked end
// to end with ping. What it costs is measured by bench/netlink.cpp.
#include <gtest/gtest.h>

#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <optional>
#include <string>

#include "dualstack/netlink/addr.hpp"
#include "dualstack/netlink/link.hpp"
#include "dualstack/netlink/route.hpp"
#include "dualstack/netns/netns.hpp"
#include "netlink/kernel_fixture.hpp"

namespace dualstack {
namespace {

using netlink::Route;
using testkernel::A;
using testkernel::KernelTest;
using testkernel::P;

struct PodPlan {
  std::string hostName;
  std::string alias;
  ip::Prefix ip4 = P("10.244.1.5/24");
  ip::Prefix ip6 = P("fd00:10::5/64");
  ip::Address gw4 = A("10.244.1.1");
  ip::Address gw6 = A("fd00:10::1");
};

// Opens the pod's netns and socket, creates the veth, addresses, links up, pod and node routes:
// 12 acknowledged requests.
netlink::Veth addPod(netlink::Socket& host, const std::string& podPath, const PodPlan& plan) {
  const auto podNs = netns::Netns::open(podPath, "CNI_NETNS");
  std::optional<netlink::Socket> pod;
  {
    netns::ScopedSetns in(podNs);
    pod.emplace("pod netns");
  }
  netlink::VethSpec spec;
  spec.hostName = plan.hostName;
  spec.hostAlias = plan.alias;
  spec.peerName = "eth0";
  spec.peerNetnsFd = podNs.fd();
  auto veth = netlink::createVeth(host, *pod, spec);

  netlink::addAddress(*pod, veth.peer, plan.ip4, IFA_F_NOPREFIXROUTE);
  netlink::addAddress(*pod, veth.peer, plan.ip6, IFA_F_NODAD | IFA_F_NOPREFIXROUTE);
  netlink::setLinkUp(*pod, veth.peer);
  netlink::addRoute(*pod, Route::onLink(ip::Prefix::host(plan.gw4), veth.peer.index), "eth0");
  netlink::addRoute(*pod, Route::via(P("0.0.0.0/0"), plan.gw4, veth.peer.index), "eth0");
  netlink::addRoute(*pod, Route::onLink(ip::Prefix::host(plan.gw6), veth.peer.index), "eth0");
  netlink::addRoute(*pod, Route::via(P("::/0"), plan.gw6, veth.peer.index), "eth0");
  netlink::addRoute(host, Route::onLink(ip::Prefix::host(plan.ip4.address()), veth.host.index),
                    veth.host.name);
  netlink::addRoute(host, Route::onLink(ip::Prefix::host(plan.ip6.address()), veth.host.index),
                    veth.host.name);
  return veth;
}

class PodSetup : public KernelTest {};

TEST_F(PodSetup, DualStackPodIsReachableBothWays) {
  PodPlan plan;
  plan.hostName = "dstpod0";
  const auto veth = addPod(host(), podNs().path(), plan);
  // The node end answers for the gateways (one way a plugin can do it; proxy ARP/NDP is another).
  netlink::addAddress(host(), veth.host, ip::Prefix::host(plan.gw4));
  netlink::addAddress(host(), veth.host, ip::Prefix::host(plan.gw6), IFA_F_NODAD);

  using testkernel::run;
  // ping runs in the test thread's namespace: the node.
  EXPECT_EQ(run({"ping", "-c1", "-W3", "10.244.1.5"}), 0) << "node -> pod over IPv4";
  EXPECT_EQ(run({"ping", "-6", "-c1", "-W3", "fd00:10::5"}), 0) << "node -> pod over IPv6";
  EXPECT_EQ(run({"ip", "netns", "exec", podNs().name(), "ping", "-c1", "-W3", "10.244.1.1"}), 0)
      << "pod -> gateway over IPv4";
  EXPECT_EQ(run({"ip", "netns", "exec", podNs().name(), "ping", "-6", "-c1", "-W3", "fd00:10::1"}),
            0)
      << "pod -> gateway over IPv6";

  // The kernel's own fe80:: address still goes through DAD; ours must not.
  for (const auto& a : netlink::listAddresses(pod(), veth.peer.index)) {
    if (a.scope == RT_SCOPE_UNIVERSE) {
      EXPECT_FALSE(a.tentative()) << a.prefix.str();
    }
  }
}

}  // namespace
}  // namespace dualstack
