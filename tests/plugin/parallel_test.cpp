// Many ADDs and DELs at once on one node, as a runtime starting a node's pods does: no address
// handed out twice, no lost masquerade entry, nothing left afterwards.
#include <thread>

#include <gmock/gmock.h>

#include "plugin_fixture.hpp"

namespace dualstack::plugintest {
namespace {

using ::testing::IsEmpty;

using PluginParallel = PluginTest;

TEST_F(PluginParallel, SixteenAddsThenSixteenDelsAtOnce) {
  constexpr std::size_t kPods = 16;
  const json conf = withMasq(pluginConf("10-dualstack.conflist"));
  const std::string network = conf["name"];
  std::vector<TestNetns*> pods;
  for (std::size_t i = 0; i < kPods; ++i) pods.push_back(&newPod());
  auto cid = [](std::size_t i) { return "cid-" + std::to_string(i); };

  std::vector<RunResult> adds(kPods);
  {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < kPods; ++i) {
      threads.emplace_back([&, i] { adds[i] = tryAdd(*pods[i], cid(i), conf); });
    }
    for (auto& t : threads) t.join();
  }
  std::set<std::string> addrs, hostNames;
  for (std::size_t i = 0; i < kPods; ++i) {
    const RunResult& r = adds[i];
    ASSERT_EQ(r.exitCode, 0) << "ADD " << cid(i) << ": " << describe(r);
    const json j = r.json();
    for (const auto& ipc : j.at("ips")) addrs.insert(ipc.at("address").get<std::string>());
    hostNames.insert(j["interfaces"][0]["name"].get<std::string>());
  }
  EXPECT_EQ(addrs.size(), 2u * kPods) << "an address was handed out twice";
  EXPECT_EQ(hostNames.size(), kPods);
  EXPECT_EQ(nodeVeths(), hostNames);
  EXPECT_EQ(allocations(network).size(), 2u * kPods);
  for (const auto& a : addrs) EXPECT_TRUE(ping(node(), bare(a))) << a;
  // Every pod is masqueraded: its host end is in the set.
  const std::string rules = mustExec(node(), "nft list ruleset");
  for (const auto& h : hostNames) EXPECT_NE(rules.find(h), std::string::npos) << h;

  std::vector<RunResult> dels(kPods);
  {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < kPods; ++i) {
      threads.emplace_back([&, i] { dels[i] = del(pods[i]->path(), cid(i), conf); });
    }
    for (auto& t : threads) t.join();
  }
  for (std::size_t i = 0; i < kPods; ++i) {
    EXPECT_EQ(dels[i].exitCode, 0) << "DEL " << cid(i) << ": " << describe(dels[i]);
  }
  EXPECT_THAT(nodeVeths(), IsEmpty());
  EXPECT_THAT(allocations(network), IsEmpty());
  EXPECT_EQ(mustExec(node(), "nft list ruleset"), "");
  EXPECT_THAT(routes(node(), false), IsEmpty());
  EXPECT_THAT(routes(node(), true), IsEmpty());
}

}  // namespace
}  // namespace dualstack::plugintest
