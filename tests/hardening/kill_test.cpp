// Runtimes kill plugins at any moment (timeouts, a pod deleted during its own creation). ADDs and
// DELs of both binaries run PARALLEL at a time while a random share of them is SIGKILLed at a
// random moment. After every round no address may belong to two attachments, neither in the
// store nor on two pods; at the end a DEL of every killed attachment plus a GC with the survivors
// must leave exactly the survivors' allocations, no temp file and no host veth of the others.
//
// CI size: 200 attachments (half pods through `dualstack`, half `dualstack-ipam` alone). The soak
// (bench/soak.sh) raises DUALSTACK_KILL_ATTACHMENTS and DUALSTACK_KILL_ROUNDS.
//
// A kill is due a random time after its own process started, drawn below a bound kept per kind
// of operation (pod/IPAM-only x ADD/DEL): the bound shrinks after a kill that came when the
// plugin had already exited and grows after one that landed, so on a fast machine and on a slow
// one (sanitizers, a loaded CI) most kills hit a running plugin, at moments covering its whole run.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "hardening.hpp"

namespace dualstack::hardening {
namespace {

using nlohmann::json;
using testing::EnvMap;
using testing::TempDir;
using testing::TestNetns;

constexpr const char* kNetwork = "killnet";

enum class State { Absent, Live, Dirty };  // Dirty: an op was killed; the runtime must DEL it

struct Attachment {
  std::string containerId;
  bool pod = false;  // through `dualstack` with a pod netns; else `dualstack-ipam` alone
  std::unique_ptr<TestNetns> netns;
  State state = State::Absent;
  std::vector<std::string> addresses;  // from the last successful ADD
};

class KillTest : public ::testing::Test {
 protected:
  TempDir tmp;
  std::string dataDir = tmp.file("data");
  std::string storeDir = dataDir + "/" + kNetwork;

  json conf(const std::string& version = "1.0.0") const {
    return {{"cniVersion", version},
            {"name", kNetwork},
            {"type", "dualstack"},
            {"ipam",
             {{"type", "dualstack-ipam"},
              {"dataDir", dataDir},
              {"node", {{"podCIDRs", {"10.250.0.0/16", "fd00:250::/64"}}}}}}};
  }

  std::unique_ptr<PluginProcess> start(const Attachment& a, const std::string& command,
                                       const TestNetns& node, const json& c) const {
    const std::string netns = a.pod ? a.netns->path() : "/var/run/netns/none";
    EnvMap env = testing::cniEnv(command, a.containerId, netns);
    if (a.pod) {
      return std::make_unique<PluginProcess>(testing::binPath("dualstack"), env, c.dump(),
                                             node.path());
    }
    return std::make_unique<PluginProcess>(testing::binPath("dualstack-ipam"), env, c.dump(),
                                           std::nullopt);
  }
};

// Sends SIGKILL to each process at its moment, from its own thread, while the test goes on
// starting the rest of a batch. The destructor returns once every kill has been sent: only then
// may the processes be reaped (a kill after the reap could hit a reused pid).
class Killer {
 public:
  using Clock = std::chrono::steady_clock;
  Killer() : thread_([this] { run(); }) {}
  ~Killer() {
    {
      const std::lock_guard<std::mutex> l(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  Killer(const Killer&) = delete;
  Killer& operator=(const Killer&) = delete;

  void at(Clock::time_point when, const PluginProcess* p) {
    {
      const std::lock_guard<std::mutex> l(mu_);
      due_.emplace(when, p);
    }
    cv_.notify_one();
  }

 private:
  void run() {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      if (due_.empty()) {
        if (done_) return;
        cv_.wait(l);
        continue;
      }
      const auto next = due_.begin();
      if (Clock::now() >= next->first) {
        next->second->kill();
        due_.erase(next);
      } else {
        cv_.wait_until(l, next->first);
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<Clock::time_point, const PluginProcess*> due_;
  bool done_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

// Addresses (global scope) on each pod's eth0.
std::map<std::string, std::string> podAddresses(const std::vector<Attachment>& all) {
  std::map<std::string, std::string> owners;  // address -> container ID; duplicates reported
  for (const auto& a : all) {
    if (!a.pod) continue;
    std::string out;
    a.netns->exec("ip -j addr show dev eth0 scope global 2>/dev/null", &out);
    const auto j = json::parse(out, nullptr, false);
    if (!j.is_array()) continue;
    for (const auto& link : j) {
      if (!link.is_object() || !link.contains("addr_info")) continue;
      for (const auto& ai : link["addr_info"]) {
        const std::string addr = stringField(ai, "local");
        if (addr.empty()) continue;  // ip -j lists filtered-out addresses as {}
        auto [it, fresh] = owners.emplace(addr, a.containerId);
        EXPECT_TRUE(fresh) << addr << " is configured on two pods: " << it->second << " and "
                           << a.containerId;
      }
    }
  }
  return owners;
}

TEST_F(KillTest, RandomKillsNeverDoubleAllocateAndGcRepairsEverything) {
  DUALSTACK_REQUIRE_ROOT();
  becomeSubreaper();
  const int total = envInt("DUALSTACK_KILL_ATTACHMENTS", 200);
  const int rounds = envInt("DUALSTACK_KILL_ROUNDS", 16);
  const int parallel = envInt("DUALSTACK_KILL_PARALLEL", 32);
  const int firstBoundMs = envInt("DUALSTACK_KILL_MAX_DELAY_MS", 60);
  std::mt19937 rng(
      static_cast<unsigned>(envInt("DUALSTACK_KILL_SEED", static_cast<int>(::getpid()))));
  std::cout << "[ kill ] " << total << " attachments, " << rounds << " rounds of " << parallel
            << ", first kill bound " << firstBoundMs << " ms\n";

  TestNetns node("knode");
  std::vector<Attachment> all(static_cast<std::size_t>(total));
  for (int i = 0; i < total; ++i) {
    auto& a = all[static_cast<std::size_t>(i)];
    a.containerId = "kill-" + std::to_string(i);
    a.pod = i % 2 == 0;
    if (a.pod) a.netns = std::make_unique<TestNetns>("kpod");
  }
  const json c = conf();
  int ops = 0, scheduled = 0, killedMidway = 0, adds = 0, dels = 0;
  // Kill bound in microseconds per kind: index = pod * 2 + (command == "DEL").
  std::array<double, 4> boundUs;
  boundUs.fill(firstBoundMs * 1000.0);
  auto kindOf = [&all](std::size_t att, const std::string& command) {
    return (all[att].pod ? 2 : 0) + (command == "DEL" ? 1 : 0);
  };

  for (int round = 0; round < rounds; ++round) {
    // A round touches `parallel` distinct attachments, in turn so that every one gets used.
    std::vector<std::size_t> pick;
    for (int k = 0; k < parallel && k < total; ++k) {
      pick.push_back(static_cast<std::size_t>((round * parallel + k) % total));
    }
    struct Op {
      std::size_t att;
      std::string command;
      std::unique_ptr<PluginProcess> proc;
      std::optional<std::chrono::microseconds> killAfter;  // after its start; none: runs to the end
    };
    std::vector<Op> batch;
    for (std::size_t idx : pick) {
      const auto& a = all[idx];
      Op op{idx, a.state == State::Absent ? "ADD" : "DEL", nullptr, {}};
      if (rng() % 3 == 0) {
        const double bound = boundUs[static_cast<std::size_t>(kindOf(idx, op.command))];
        std::uniform_real_distribution<double> delay(0.0, bound);
        op.killAfter = std::chrono::microseconds(static_cast<long>(delay(rng)));
        ++scheduled;
      }
      batch.push_back(std::move(op));
    }
    {
      // Kills are due while later processes of the batch are still being started.
      Killer killer;
      for (auto& op : batch) {
        op.proc = start(all[op.att], op.command, node, c);
        if (op.killAfter)
          killer.at(std::chrono::steady_clock::now() + *op.killAfter, op.proc.get());
      }
    }  // every kill is sent before any process of the batch is reaped
    for (auto& op : batch) {
      auto& a = all[op.att];
      const auto o = op.proc->wait();
      ++ops;
      (op.command == "ADD" ? adds : dels)++;
      if (op.killAfter) {
        double& bound = boundUs[static_cast<std::size_t>(kindOf(op.att, op.command))];
        bound = std::clamp(o.killed ? bound * 1.15 : bound * 0.7, 200.0, 2'000'000.0);
      }
      if (o.killed) {
        ++killedMidway;
        a.state = State::Dirty;
        continue;
      }
      ASSERT_EQ(o.exitCode, 0) << op.command << " of " << a.containerId
                               << " failed without a kill: " << o.out;
      if (op.command == "ADD") {
        a.state = State::Live;
        a.addresses = resultAddresses(o.out);
        ASSERT_EQ(a.addresses.size(), 2u) << o.out;
      } else {
        a.state = State::Absent;
        a.addresses.clear();
      }
    }
    reapOrphans();  // IPAM children of killed `dualstack` processes finish before the checks

    // No address belongs to two attachments: every live attachment's addresses are held by it in
    // the store (one file per address, so nobody else holds them) and no two pods carry one.
    const StoreView v = readStore(storeDir);
    std::set<std::string> seen;
    for (const auto& a : all) {
      if (a.state != State::Live) continue;
      for (const auto& addr : a.addresses) {
        EXPECT_TRUE(seen.insert(addr).second)
            << "round " << round << ": " << addr << " handed to two live attachments";
        auto it = v.allocations.find(addr);
        ASSERT_NE(it, v.allocations.end()) << "round " << round << ": " << addr << " of "
                                           << a.containerId << " is not in the store";
        EXPECT_EQ(it->second.containerId, a.containerId) << "round " << round << ": " << addr;
      }
    }
    EXPECT_TRUE(v.unreadable.empty())
        << "round " << round << ": torn allocation file " << v.unreadable.front();
    podAddresses(all);
    if (HasFailure()) return;
  }

  // The runtime's repair: DEL whatever was interrupted, then GC with the attachments it keeps.
  for (auto& a : all) {
    if (a.state != State::Dirty) continue;
    auto p = start(a, "DEL", node, c);
    const auto o = p->wait();
    ASSERT_EQ(o.exitCode, 0) << "DEL of killed " << a.containerId << ": " << o.out;
    a.state = State::Absent;
  }
  json gc = conf("1.1.0");
  gc["cni.dev/valid-attachments"] = json::array();
  std::size_t survivors = 0;
  for (const auto& a : all) {
    if (a.state != State::Live) continue;
    gc["cni.dev/valid-attachments"].push_back({{"containerID", a.containerId}, {"ifname", "eth0"}});
    ++survivors;
  }
  const auto gcRun = testing::runPlugin(
      testing::binPath("dualstack"),
      EnvMap{{"CNI_COMMAND", "GC"}, {"CNI_PATH", testing::cniPath()}}, gc.dump(), node.path());
  ASSERT_EQ(gcRun.exitCode, 0) << gcRun.out << gcRun.err;

  const StoreView v = readStore(storeDir);
  std::map<std::string, Owner> expected;
  for (const auto& a : all) {
    if (a.state != State::Live) continue;
    for (const auto& addr : a.addresses) expected[addr] = Owner{a.containerId, "eth0"};
  }
  EXPECT_EQ(v.allocations, expected) << "the store must hold exactly the survivors' addresses";
  EXPECT_TRUE(v.tempFiles.empty()) << "stray temp file " << v.tempFiles.front();
  EXPECT_EQ(indexDisagreements(v), "");

  std::string aliases;
  node.exec("ip -d -j link show type veth", &aliases);
  const auto lj = json::parse(aliases, nullptr, false);
  std::set<std::string> hostVethOwners;
  if (lj.is_array()) {
    for (const auto& l : lj) {
      // "dualstack:<network>@<store>:eth0:<containerID>"
      const std::string alias = stringField(l, "ifalias");
      const std::string prefix = "dualstack:" + std::string(kNetwork) + "@";
      const auto owner = alias.find(":eth0:");
      if (alias.rfind(prefix, 0) == 0 && owner != std::string::npos) {
        hostVethOwners.insert(alias.substr(owner + 6));
      }
    }
  }
  std::set<std::string> livePods;
  for (const auto& a : all) {
    if (a.pod && a.state == State::Live) livePods.insert(a.containerId);
  }
  EXPECT_EQ(hostVethOwners, livePods) << "host veths must be exactly the surviving pods'";
  podAddresses(all);

  std::cout << "[ kill ] " << ops << " operations (" << adds << " ADD, " << dels << " DEL), "
            << scheduled << " kills scheduled, " << killedMidway << " landed mid-operation, "
            << survivors << " survivors; store, index and veths consistent after DEL + GC\n"
            << "[ kill ] final kill bounds (ms): IPAM ADD " << boundUs[0] / 1000 << ", IPAM DEL "
            << boundUs[1] / 1000 << ", pod ADD " << boundUs[2] / 1000 << ", pod DEL "
            << boundUs[3] / 1000 << "\n";
  RecordProperty("operations", ops);
  RecordProperty("killed", killedMidway);
  // A kill that always lands after the process exited would prove nothing.
  EXPECT_GE(killedMidway * 4, scheduled) << "too few kills landed while a plugin was running";

  // Survivors still tear down cleanly.
  for (auto& a : all) {
    if (a.state != State::Live) continue;
    auto p = start(a, "DEL", node, c);
    ASSERT_EQ(p->wait().exitCode, 0) << "DEL of survivor " << a.containerId;
  }
  EXPECT_TRUE(readStore(storeDir).allocations.empty());
}

}  // namespace
}  // namespace dualstack::hardening
