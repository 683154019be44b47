// Fakes for the agent's unit tests: a main routing table that behaves like the kernel's for the
// requests the agent makes, cluster sets that remember what they were given, and a Node source
// the test drives.
#pragma once

#include <linux/rtnetlink.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dualstack/agent/agent.hpp"
#include "dualstack/agent/kernel.hpp"
#include "dualstack/agent/log.hpp"
#include "dualstack/agent/routes.hpp"
#include "dualstack/k8s/node.hpp"
#include "dualstack/netlink/route.hpp"
#include "dualstack/sys/error.hpp"
#include "support/ip.hpp"

namespace dualstack::agenttest {

using testing::A;
using testing::P;

// The routing protocol number the agent under test marks its routes with.
inline constexpr std::uint8_t kOwn = 77;

// A Node as the API would state it, through the parse the informer uses.
inline k8s::Node node(std::string name, std::vector<std::string> cidrs,
                      std::vector<std::pair<std::string, std::string>> addresses) {
  nlohmann::json obj = {{"metadata", {{"name", std::move(name)}}},
                        {"spec", {{"podCIDRs", std::move(cidrs)}}},
                        {"status", {{"addresses", nlohmann::json::array()}}}};
  for (auto& [type, addr] : addresses) {
    obj["status"]["addresses"].push_back({{"type", type}, {"address", addr}});
  }
  return k8s::parseNode(obj, "test node");
}

// A dual-stack node "nodeN": podCIDRs 10.244.N.0/24 and fd00:10:244:N::/64, InternalIPs
// 192.168.1.N and fd00:1::N (on the test's connected network).
inline k8s::Node dualNode(int n) {
  const std::string i = std::to_string(n);
  return node("node" + i, {"10.244." + i + ".0/24", "fd00:10:244:" + i + "::/64"},
              {{"InternalIP", "192.168.1." + i}, {"InternalIP", "fd00:1::" + i}});
}

inline netlink::Route connected(const char* dst, int oif = 2) {
  netlink::Route r;
  r.dst = P(dst);
  r.oif = oif;
  r.protocol = RTPROT_KERNEL;
  r.scope = RT_SCOPE_LINK;
  if (r.dst.family() == ip::Family::V6) r.metric = 256;
  return r;
}

// The agent's routing protocol number in these tests.
inline constexpr std::uint8_t kAgentProtocol = 77;

// A route as a dump shows it. Without a metric: the agent's own metric for its protocol, else the
// kernel's default (IPv4 0, IPv6 1024).
inline netlink::Route via(const char* dst, const char* gw, std::uint8_t protocol,
                          std::optional<std::uint32_t> metric = std::nullopt) {
  netlink::Route r;
  r.dst = P(dst);
  r.gateway = A(gw);
  r.protocol = protocol;
  r.oif = 2;
  if (metric) {
    r.metric = metric;
  } else if (protocol == kAgentProtocol) {
    r.metric = agent::ownMetric(r.dst);
  } else if (r.dst.family() == ip::Family::V6) {
    r.metric = 1024;
  }
  return r;
}

// The main table. Requests behave as the kernel's do: add refuses an existing (dst, metric),
// replace swaps it, remove matches dst, metric and (when given) protocol, a gateway must lie in
// a route without gateway ("connected").
class FakeRouteTable : public agent::RouteTable {
 public:
  struct Op {
    std::string kind;  // dump, lookup, add, replace, remove
    std::string dst;
  };

  explicit FakeRouteTable(std::vector<netlink::Route> routes = {}) : routes_(std::move(routes)) {}

  std::vector<netlink::Route> dump(ip::Family f) override {
    std::unique_lock lock(mu_);
    gateWait(lock);
    record("dump", ip::familyName(f));
    if (failDump_) throw sys::Error(sys::Code::IoFailure, "dump failed (test)");
    std::vector<netlink::Route> out;
    for (const auto& r : routes_) {
      if (r.dst.family() == f) out.push_back(r);
    }
    return out;
  }

  std::optional<netlink::Route> lookup(const ip::Address& addr) override {
    std::unique_lock lock(mu_);
    gateWait(lock);
    record("lookup", addr.str());
    const netlink::Route* best = nullptr;
    for (const auto& r : routes_) {
      if (r.dst.family() != addr.family() || !r.dst.contains(addr)) continue;
      if (best == nullptr || r.dst.length() > best->dst.length() ||
          (r.dst.length() == best->dst.length() &&
           r.metric.value_or(0) < best->metric.value_or(0))) {
        best = &r;
      }
    }
    if (best == nullptr) return std::nullopt;
    return *best;
  }

  Outcome add(const netlink::Route& route, std::string* why) override {
    std::unique_lock lock(mu_);
    gateWait(lock);
    record("add", route.dst.str());
    if (!reachable(*route.gateway)) {
      *why = "Network is unreachable (test)";
      return Outcome::Unreachable;
    }
    if (find(route) != routes_.end()) {
      *why = "File exists (test)";
      return Outcome::Exists;
    }
    routes_.push_back(normalized(route));
    return Outcome::Done;
  }

  Outcome replace(const netlink::Route& route, std::string* why) override {
    std::unique_lock lock(mu_);
    gateWait(lock);
    record("replace", route.dst.str());
    if (!reachable(*route.gateway)) {
      *why = "No route to host (test)";
      return Outcome::Unreachable;
    }
    const auto it = find(route);
    if (it != routes_.end()) {
      *it = normalized(route);
    } else {
      routes_.push_back(normalized(route));
    }
    return Outcome::Done;
  }

  bool remove(const netlink::Route& route) override {
    std::unique_lock lock(mu_);
    gateWait(lock);
    record("remove", route.dst.str());
    for (auto it = routes_.begin(); it != routes_.end(); ++it) {
      if (it->dst.network() == route.dst.network() && metricOf(*it) == metricOf(route) &&
          (route.protocol == 0 || it->protocol == route.protocol)) {
        routes_.erase(it);
        return true;
      }
    }
    return false;
  }

  // Test controls.
  std::vector<netlink::Route> routes() {
    const std::lock_guard lock(mu_);
    return routes_;
  }
  void put(const netlink::Route& r) {
    const std::lock_guard lock(mu_);
    routes_.push_back(r);
  }
  void erase(const ip::Prefix& dst) {
    const std::lock_guard lock(mu_);
    routes_.erase(std::remove_if(routes_.begin(), routes_.end(),
                                 [&](const auto& r) { return r.dst.network() == dst; }),
                  routes_.end());
  }
  std::vector<Op> ops() {
    const std::lock_guard lock(mu_);
    return ops_;
  }
  std::size_t count(const std::string& kind) {
    const std::lock_guard lock(mu_);
    return static_cast<std::size_t>(
        std::count_if(ops_.begin(), ops_.end(), [&](const Op& o) { return o.kind == kind; }));
  }
  void clearOps() {
    const std::lock_guard lock(mu_);
    ops_.clear();
  }
  void failDumps(bool fail) {
    const std::lock_guard lock(mu_);
    failDump_ = fail;
  }
  // While closed, every request waits (to hold a reconcile in the middle of its pass).
  void closeGate() {
    const std::lock_guard lock(mu_);
    gateOpen_ = false;
  }
  void openGate() {
    {
      const std::lock_guard lock(mu_);
      gateOpen_ = true;
    }
    cv_.notify_all();
  }
  bool someoneWaitsAtGate() {
    const std::lock_guard lock(mu_);
    return waiting_ > 0;
  }
  // Routes of protocol `p` to `dst`.
  std::vector<netlink::Route> routesTo(const char* dst, std::optional<std::uint8_t> p = {}) {
    const std::lock_guard lock(mu_);
    std::vector<netlink::Route> out;
    for (const auto& r : routes_) {
      if (r.dst.network() == P(dst) && (!p || r.protocol == *p)) out.push_back(r);
    }
    return out;
  }

 private:
  static std::uint32_t metricOf(const netlink::Route& r) {
    return r.metric.value_or(r.dst.family() == ip::Family::V4 ? 0 : 1024);
  }
  static netlink::Route normalized(netlink::Route r) {
    r.dst = r.dst.network();
    r.metric = metricOf(r);
    if (r.oif == 0) r.oif = 2;
    return r;
  }
  std::vector<netlink::Route>::iterator find(const netlink::Route& route) {
    return std::find_if(routes_.begin(), routes_.end(), [&](const auto& r) {
      return r.dst.network() == route.dst.network() && metricOf(r) == metricOf(route);
    });
  }
  bool reachable(const ip::Address& gw) const {
    return std::any_of(routes_.begin(), routes_.end(), [&](const auto& r) {
      return !r.gateway && r.type == RTN_UNICAST && r.dst.family() == gw.family() &&
             r.dst.contains(gw);
    });
  }
  void record(std::string kind, std::string_view what) {
    ops_.push_back({std::move(kind), std::string(what)});
  }
  void gateWait(std::unique_lock<std::mutex>& lock) {
    ++waiting_;
    cv_.wait(lock, [&] { return gateOpen_; });
    --waiting_;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool gateOpen_ = true;
  int waiting_ = 0;
  bool failDump_ = false;
  std::vector<netlink::Route> routes_;
  std::vector<Op> ops_;
};

class FakeClusterSets : public agent::ClusterSets {
 public:
  bool sync(const std::vector<ip::Prefix>& v4, const std::vector<ip::Prefix>& v6) override {
    const std::lock_guard lock(mu_);
    ++syncs_;
    if (have4_ == v4 && have6_ == v6) return false;
    have4_ = v4;
    have6_ = v6;
    ++writes_;
    return true;
  }
  std::vector<ip::Prefix> v4() {
    const std::lock_guard lock(mu_);
    return have4_;
  }
  std::vector<ip::Prefix> v6() {
    const std::lock_guard lock(mu_);
    return have6_;
  }
  int syncs() {
    const std::lock_guard lock(mu_);
    return syncs_;
  }
  // What a firewall reload does.
  void flush() {
    const std::lock_guard lock(mu_);
    have4_.clear();
    have6_.clear();
  }

 private:
  std::mutex mu_;
  std::vector<ip::Prefix> have4_, have6_;
  int syncs_ = 0, writes_ = 0;
};

// A Node source the test drives: list(), change() and remove() call the agent's callbacks on the
// test's thread once run() has started.
class FakeSource : public agent::NodeSource {
 public:
  void run(std::stop_token stop, const Callbacks& callbacks) override {
    {
      std::unique_lock lock(mu_);
      if (failAtStart_) throw sys::Error(sys::Code::InvalidConfig, "no kubeconfig (test)");
      callbacks_ = &callbacks;
    }
    cv_.notify_all();
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    cv.wait(lock, stop, [] { return false; });
    const std::lock_guard guard(mu_);
    callbacks_ = nullptr;
  }
  agent::WatchCounters counters() const override {
    agent::WatchCounters c;
    c.lists = lists_;
    c.events = events_;
    return c;
  }

  void waitRunning() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return callbacks_ != nullptr; });
  }
  void list(std::vector<k8s::Node> nodes) {
    waitRunning();
    ++lists_;
    callbacks_->onList(std::move(nodes));
  }
  void change(const k8s::Node& n) {
    waitRunning();
    ++events_;
    callbacks_->onChange(n);
  }
  void remove(const std::string& name) {
    waitRunning();
    ++events_;
    callbacks_->onDelete(name);
  }
  void failAtStart() { failAtStart_ = true; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  const Callbacks* callbacks_ = nullptr;
  bool failAtStart_ = false;
  std::atomic<std::uint64_t> lists_{0}, events_{0};
};

// Log records captured for assertions.
class LogCapture {
 public:
  LogCapture()
      : log_(agent::Level::Debug, [this](std::string_view line) {
          const std::lock_guard lock(mu_);
          lines_.emplace_back(line);
        }) {}
  agent::Log& log() { return log_; }
  // Records (whole lines) containing `needle`.
  std::size_t count(std::string_view needle) {
    const std::lock_guard lock(mu_);
    return static_cast<std::size_t>(
        std::count_if(lines_.begin(), lines_.end(),
                      [&](const std::string& l) { return l.find(needle) != std::string::npos; }));
  }
  std::vector<std::string> lines() {
    const std::lock_guard lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
  agent::Log log_;
};

}  // namespace dualstack::agenttest
