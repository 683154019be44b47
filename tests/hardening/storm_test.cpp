// A node drain or a rollout: many ADDs and DELs at once on one store. PARALLEL workers each run
// `dualstack-ipam` ADD, then DEL, of fresh attachments until OPERATIONS calls have been made; the
// last attachment of each worker stays. While an attachment is live nobody else may be handed its
// addresses; at the end the store holds exactly the live attachments and the index agrees.
//
// CI: 1,000 operations at 64 parallel. The soak (bench/soak.sh) sets DUALSTACK_STORM_OPERATIONS.
#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <mutex>
#include <thread>

#include "hardening.hpp"

namespace dualstack::hardening {
namespace {

using nlohmann::json;

TEST(Storm, ParallelAddDelNeverDuplicatesNorLeaks) {
  testing::TempDir tmp;
  const std::string dataDir = tmp.file("data");
  const json conf = {{"cniVersion", "1.0.0"},
                     {"name", "storm"},
                     {"type", "dualstack"},
                     {"ipam",
                      {{"type", "dualstack-ipam"},
                       {"dataDir", dataDir},
                       {"node", {{"podCIDRs", {"10.251.0.0/22", "fd00:251::/64"}}}}}}};
  const int operations = envInt("DUALSTACK_STORM_OPERATIONS", 1000);
  const int parallel = envInt("DUALSTACK_STORM_PARALLEL", 64);
  const std::string binary = testing::binPath("dualstack-ipam");

  std::mutex mu;
  std::map<std::string, std::string> holder;  // address -> attachment holding it right now
  std::vector<std::string> problems;
  std::map<std::string, std::vector<std::string>> survivors;  // containerID -> addresses
  std::atomic<int> addTickets{operations / 2};                // each ADD is followed by its DEL
  std::atomic<int> done{0};

  auto call = [&](const std::string& command, const std::string& id) {
    testing::EnvMap env = testing::cniEnv(command, id, "/var/run/netns/storm");
    PluginProcess p(binary, env, conf.dump(), std::nullopt);
    auto o = p.wait();
    ++done;
    return o;
  };
  auto worker = [&](int w) {
    for (int n = 0;; ++n) {
      if (addTickets.fetch_sub(1) < 1) return;
      const std::string id = "storm-" + std::to_string(w) + "-" + std::to_string(n);
      const auto add = call("ADD", id);
      const auto addrs = resultAddresses(add.out);
      {
        std::lock_guard lock(mu);
        if (add.exitCode != 0 || addrs.size() != 2) {
          problems.push_back("ADD " + id + " failed: " + add.out);
          return;
        }
        for (const auto& a : addrs) {
          auto [it, fresh] = holder.emplace(a, id);
          if (!fresh)
            problems.push_back(a + " handed to " + id + " while " + it->second + " holds it");
        }
      }
      if (addTickets.load() < 1) {  // the worker's last attachment stays
        std::lock_guard lock(mu);
        survivors[id] = addrs;
        return;
      }
      {
        std::lock_guard lock(mu);  // from here on the addresses may go to someone else
        for (const auto& a : addrs) holder.erase(a);
      }
      const auto del = call("DEL", id);
      if (del.exitCode != 0) {
        std::lock_guard lock(mu);
        problems.push_back("DEL " + id + " failed: " + del.out);
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < parallel; ++w) threads.emplace_back(worker, w);
  for (auto& t : threads) t.join();

  for (const auto& p : problems) ADD_FAILURE() << p;
  const StoreView v = readStore(dataDir + "/storm");
  std::map<std::string, Owner> expected;
  for (const auto& [id, addrs] : survivors) {
    for (const auto& a : addrs) expected[a] = Owner{id, "eth0"};
  }
  EXPECT_EQ(v.allocations, expected) << "leaked or lost allocations";
  EXPECT_TRUE(v.tempFiles.empty());
  EXPECT_TRUE(v.unreadable.empty());
  EXPECT_EQ(indexDisagreements(v), "");
  // The index must also be complete: every live attachment has its entry.
  for (const auto& [id, addrs] : survivors) {
    auto it = v.index.find(Owner{id, "eth0"});
    ASSERT_NE(it, v.index.end()) << "no index entry for " << id;
    EXPECT_EQ(it->second, std::set<std::string>(addrs.begin(), addrs.end()));
  }
  std::cout << "[ storm ] " << done.load() << " operations at " << parallel << " parallel, "
            << survivors.size() << " attachments left live, " << problems.size() << " problems\n";
  // Every ADD ran, and every DEL but the survivors'.
  EXPECT_EQ(done.load() + static_cast<int>(survivors.size()), operations / 2 * 2);
}

}  // namespace
}  // namespace dualstack::hardening
