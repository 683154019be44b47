// The kernel work of one dual-stack pod done through lib/netlink in one process: what an ADD and a
// DEL cost without process start-up, IPAM, sysctls or the rest of the plugin. See bench/README.md.
//
//   build/bench/netlink [pods]     (root; default 25 pods)
//
// Every namespace it uses is its own: it unshares a fresh "node" namespace before anything else
// (only a down lo, no route out of the machine) and one namespace per pod. They have no name and
// vanish with the process, whatever way it ends.
#include <linux/if_addr.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "dualstack/cni/error.hpp"
#include "dualstack/ip/address.hpp"
#include "dualstack/netlink/addr.hpp"
#include "dualstack/netlink/link.hpp"
#include "dualstack/netlink/route.hpp"
#include "dualstack/netns/netns.hpp"

namespace {

using namespace dualstack;
using Clock = std::chrono::steady_clock;
using netlink::Route;

ip::Prefix prefix(const char* text) { return *ip::Prefix::parse(text); }
ip::Address address(const char* text) { return *ip::Address::parse(text); }

// A new network namespace; the calling thread is left in it.
netns::Netns unshareNetns() {
  if (::unshare(CLONE_NEWNET) != 0) {
    throw cni::errnoError(cni::Code::IoFailure, "unshare a network namespace (needs root)", errno);
  }
  return netns::Netns::current();
}

// What the plugin's ADD does in the kernel for one pod, minus sysctls: sockets in both
// namespaces, the veth with its peer created in the pod, two addresses, the pod end up, four pod
// routes and two node routes. 12 acknowledged requests.
void addPod(const netns::Netns& pod, int i) {
  netlink::Socket host("node netns");
  std::optional<netlink::Socket> podSock;
  {
    netns::ScopedSetns in(pod);
    podSock.emplace("pod netns");
  }
  const ip::Prefix ip4(address("10.244.1.10").plus(static_cast<ip::u128>(i)), 24);
  const ip::Prefix ip6(address("fd00:10::10").plus(static_cast<ip::u128>(i)), 64);
  const ip::Address gw4 = address("10.244.1.1");
  const ip::Address gw6 = address("fd00:10::1");

  netlink::VethSpec spec;
  spec.hostName = "dsbench" + std::to_string(i);
  spec.hostAlias = "bench/container-" + std::to_string(i) + "/eth0";
  spec.peerName = "eth0";
  spec.peerNetnsFd = pod.fd();
  const netlink::Veth veth = netlink::createVeth(host, *podSock, spec);
  netlink::addAddress(*podSock, veth.peer, ip4, IFA_F_NOPREFIXROUTE);
  netlink::addAddress(*podSock, veth.peer, ip6, IFA_F_NODAD | IFA_F_NOPREFIXROUTE);
  netlink::setLinkUp(*podSock, veth.peer);
  netlink::addRoute(*podSock, Route::onLink(ip::Prefix::host(gw4), veth.peer.index), "eth0");
  netlink::addRoute(*podSock, Route::via(prefix("0.0.0.0/0"), gw4, veth.peer.index), "eth0");
  netlink::addRoute(*podSock, Route::onLink(ip::Prefix::host(gw6), veth.peer.index), "eth0");
  netlink::addRoute(*podSock, Route::via(prefix("::/0"), gw6, veth.peer.index), "eth0");
  netlink::addRoute(host, Route::onLink(ip::Prefix::host(ip4.address()), veth.host.index),
                    veth.host.name);
  netlink::addRoute(host, Route::onLink(ip::Prefix::host(ip6.address()), veth.host.index),
                    veth.host.name);
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Nearest rank.
double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

void report(const char* what, const std::vector<double>& v) {
  std::printf("| %s | %.2f ms | %.2f ms | %.2f ms | %zu |\n", what, percentile(v, 0.5),
              percentile(v, 0.9), *std::min_element(v.begin(), v.end()), v.size());
}

int run(int pods) {
  const netns::Netns node = unshareNetns();
  // The pods' namespaces are made before the timed part: creating or destroying one runs under
  // the RTNL lock too and would slow whatever ADD overlaps it.
  std::vector<netns::Netns> podNs;
  podNs.reserve(static_cast<std::size_t>(pods));
  for (int i = 0; i < pods; ++i) podNs.push_back(unshareNetns());
  if (::setns(node.fd(), CLONE_NEWNET) != 0) {
    throw cni::errnoError(cni::Code::IoFailure, "return to the node namespace", errno);
  }

  std::vector<double> add;
  std::vector<double> del;
  for (int i = 0; i < pods; ++i) {
    const auto t0 = Clock::now();
    addPod(podNs[static_cast<std::size_t>(i)], i);
    add.push_back(ms(Clock::now() - t0));
  }
  netlink::Socket host("node netns");
  for (int i = 0; i < pods; ++i) {
    const auto t0 = Clock::now();
    if (!netlink::deleteLink(host, "dsbench" + std::to_string(i))) {
      throw cni::Error(cni::Code::Internal, "veth dsbench" + std::to_string(i) + " is missing");
    }
    del.push_back(ms(Clock::now() - t0));
  }
  std::printf("| dual-stack pod, netlink layer, one process | p50 | p90 | min | pods |\n");
  std::printf("|---|---|---|---|---|\n");
  report("ADD: sockets, veth, 2 addresses, link up, 6 routes (12 requests)", add);
  report("DEL: delete the veth", del);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int pods = argc == 2 ? std::atoi(argv[1]) : 25;
  if (argc > 2 || pods < 1 || pods > 1000) {
    std::fprintf(stderr, "usage: %s [pods, 1-1000, default 25]\n", argv[0]);
    return 2;
  }
  try {
    return run(pods);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench/netlink: %s\n", e.what());
    return 1;
  }
}
