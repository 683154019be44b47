// Throwaway namespaces for the agent's kernel tests: an "underlay" namespace holding a bridge,
// and node namespaces, each with an eth0 on that bridge (192.168.77.N/24, fd00:77::N/64) and no
// route out of the machine. The agent under test runs for node 1: its routing-table socket and
// nftables context are opened while the test thread is inside node 1's namespace, and the test
// thread leaves it again at once. Everything goes with the namespaces at the end of the test.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent/fakes.hpp"
#include "dualstack/agent/agent.hpp"
#include "dualstack/agent/kernel.hpp"
#include "dualstack/netns/netns.hpp"
#include "dualstack/nft/table.hpp"
#include "support/child.hpp"
#include "support/support.hpp"

namespace dualstack::agenttest {

using namespace std::chrono_literals;
using dualstack::testing::TestNetns;

inline std::string mustExec(const TestNetns& ns, const std::string& command) {
  std::string out;
  if (ns.exec(command, &out) != 0) {
    throw std::runtime_error("in " + ns.name() + ": `" + command + "` failed: " + out);
  }
  return out;
}

using dualstack::testing::eventually;

// A background `ip monitor route` in a namespace, ended by PID.
class RouteMonitor {
 public:
  RouteMonitor(const TestNetns& ns, const std::string& file)
      : file_(file),
        monitor_({"ip", "-n", ns.name(), "monitor", "route"},
                 {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
                 dualstack::testing::Child::Output{file, "/dev/null"}) {
    // `ip monitor` subscribes right after it starts; give it that moment.
    std::this_thread::sleep_for(200ms);
  }
  // Everything it printed; stops it first.
  std::string output() {
    monitor_.signal(SIGTERM);
    monitor_.wait(10s);
    return dualstack::testing::readFile(file_);
  }

 private:
  std::string file_;
  dualstack::testing::Child monitor_;
};

class ClusterTest : public ::testing::Test {
 public:
  // Node N as the API shows it: podCIDRs 10.244.N.0/24 and fd00:10:244:N::/64, its eth0
  // addresses as InternalIPs.
  static k8s::Node k8sNode(int n) {
    const std::string i = std::to_string(n);
    return agenttest::node("node" + i, {"10.244." + i + ".0/24", "fd00:10:244:" + i + "::/64"},
                           {{"InternalIP", "192.168.77." + i}, {"InternalIP", "fd00:77::" + i}});
  }
  static std::vector<k8s::Node> threeNodes() { return {k8sNode(1), k8sNode(2), k8sNode(3)}; }

 protected:
  void SetUp() override {
    DUALSTACK_REQUIRE_ROOT();
    network_ = dualstack::testing::uniqueName("agnet");
    underlay_ = std::make_unique<TestNetns>("ul");
    mustExec(*underlay_, "ip link add br0 type bridge && ip link set br0 up");
    for (int n = 1; n <= 3; ++n) addNode(n);
  }

  void TearDown() override {
    stopAgent();
    agent_.reset();
    routes_.reset();
    sets_.reset();
    nodes_.clear();
    underlay_.reset();
    if (!network_.empty()) ::unlink(nft::lockPath(network_).c_str());
  }

  // Node namespace N on the bridge.
  const TestNetns& addNode(int n) {
    auto ns = std::make_unique<TestNetns>("n" + std::to_string(n));
    const std::string i = std::to_string(n);
    // DAD would hold the IPv6 addresses for a second; it is not what is tested.
    mustExec(*ns, "sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0");
    mustExec(*ns, "ip link add eth0 type veth peer name ul" + i + " netns " + underlay_->name());
    mustExec(*underlay_, "ip link set ul" + i + " master br0 && ip link set ul" + i + " up");
    mustExec(*ns, "ip addr add 192.168.77." + i + "/24 dev eth0 && ip addr add fd00:77::" + i +
                      "/64 dev eth0 nodad && ip link set eth0 up");
    // The node's "pods": an address of each of its podCIDRs.
    mustExec(*ns, "ip addr add 10.244." + i + ".1/32 dev lo && ip addr add fd00:10:244:" + i +
                      "::1/128 dev lo");
    nodes_.push_back(std::move(ns));
    return *nodes_.back();
  }
  const TestNetns& node(int n) const { return *nodes_.at(static_cast<std::size_t>(n - 1)); }

  // The agent of node 1, reading Nodes from `source_`.
  void startAgent(std::chrono::milliseconds interval = 30s) {
    {
      const auto handle = netns::Netns::open(node(1).path());
      netns::ScopedSetns in(handle);
      if (!routes_) routes_ = agent::kernelRouteTable();
      if (!sets_) sets_ = agent::nftClusterSets(network_);
    }
    agent::AgentConfig c;
    c.self = "node1";
    c.protocol = kOwn;
    c.interval = interval;
    agent_ = std::make_unique<agent::Agent>(c, *source_, routes_.get(), sets_.get(), logs_.log());
    thread_ = std::jthread([this](std::stop_token st) { agent_->run(st); });
    source_->waitRunning();
  }
  void stopAgent() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }
  // A fresh agent process, as after kill -9: new socket, new context, new source.
  void restartAgent() {
    stopAgent();
    agent_.reset();
    routes_.reset();
    sets_.reset();
    source_ = std::make_unique<FakeSource>();
    startAgent();
  }

  // `ip route show proto 77` of node 1 (both families), one route per line.
  std::string ownRoutes() {
    return mustExec(node(1), "ip -4 route show proto 77; ip -6 route show proto 77");
  }
  std::size_t ownRouteCount() {
    const std::string r = ownRoutes();
    return static_cast<std::size_t>(std::count(r.begin(), r.end(), '\n'));
  }
  bool ping(int from, const std::string& addr) {
    return node(from).exec("ping -c1 -W1 " + addr) == 0;
  }

  std::string network_;
  std::unique_ptr<TestNetns> underlay_;
  std::vector<std::unique_ptr<TestNetns>> nodes_;
  std::unique_ptr<FakeSource> source_ = std::make_unique<FakeSource>();
  LogCapture logs_;
  std::unique_ptr<agent::RouteTable> routes_;
  std::unique_ptr<agent::ClusterSets> sets_;
  std::unique_ptr<agent::Agent> agent_;
  std::jthread thread_;
};

}  // namespace dualstack::agenttest
