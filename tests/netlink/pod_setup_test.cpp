// A whole dual-stack pod wired through this layer's API, as the plugin's ADD does it: checked
// end to end with ping, and timed (printed, not asserted).
#include <gtest/gtest.h>

#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

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
using testkernel::TempNetns;
using Clock = std::chrono::steady_clock;

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

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(std::lround(p * static_cast<double>(v.size() - 1)));
  return v[i];
}

TEST_F(PodSetup, TimingOfAFullDualStackPod) {
  constexpr int kPods = 25;
  // Namespaces are made before and destroyed after the timed part: tearing one down runs the
  // kernel's cleanup_net under the RTNL lock and would slow whatever ADD overlaps it.
  std::vector<std::unique_ptr<TempNetns>> pods;
  pods.reserve(kPods);
  for (int i = 0; i < kPods; ++i) pods.push_back(std::make_unique<TempNetns>("perf"));
  // Let the cleanup of the namespaces of earlier tests finish first.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::vector<double> add;
  std::vector<double> del;
  for (int i = 0; i < kPods; ++i) {
    PodPlan plan;
    plan.hostName = "dstperf" + std::to_string(i);
    plan.alias = "net/container-" + std::to_string(i) + "/eth0";
    plan.ip4 = ip::Prefix(A("10.244.1.10").plus(static_cast<ip::u128>(i)), 24);
    plan.ip6 = ip::Prefix(A("fd00:10::10").plus(static_cast<ip::u128>(i)), 64);
    const auto t0 = Clock::now();
    // As in a fresh plugin process: the host socket is opened too.
    netlink::Socket hostSock("node netns");
    addPod(hostSock, pods[static_cast<std::size_t>(i)]->path(), plan);
    add.push_back(ms(Clock::now() - t0));
  }
  for (int i = 0; i < kPods; ++i) {
    const auto t0 = Clock::now();
    ASSERT_TRUE(netlink::deleteLink(host(), "dstperf" + std::to_string(i)));
    del.push_back(ms(Clock::now() - t0));
  }
  std::printf(
      "[  TIMING  ] dual-stack pod ADD kernel work (open host+pod sockets, veth, 2 addrs, up, "
      "6 routes; 12 requests): p50 %.2f ms, p90 %.2f ms, min %.2f ms over %d pods\n",
      percentile(add, 0.5), percentile(add, 0.9), *std::min_element(add.begin(), add.end()), kPods);
  std::printf("[  TIMING  ] veth delete: p50 %.2f ms, p90 %.2f ms\n", percentile(del, 0.5),
              percentile(del, 0.9));
}

}  // namespace
}  // namespace dualstack
