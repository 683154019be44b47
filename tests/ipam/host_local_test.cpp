// The reference host-local (Debian's containernetworking-plugins, /usr/lib/cni/host-local) and
// dualstack-ipam on one dataDir: an operator can switch `type` either way, and the two never hand
// out one address twice.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <thread>

#include "support/support.hpp"

namespace dualstack::ipam {
namespace {

namespace fs = std::filesystem;
using dualstack::testing::RunResult;
using nlohmann::json;

const char* kHostLocal = "/usr/lib/cni/host-local";

class HostLocalInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!dualstack::testing::referencePluginsInstalled()) {
      GTEST_SKIP() << "SKIPPED: /usr/lib/cni/host-local is not installed "
                      "(apt-get install containernetworking-plugins)";
    }
  }

  dualstack::testing::TempDir tmp;
  std::string dataDir = tmp.file("networks");
  std::string store = dataDir + "/net1";

  json conf(const char* type) const {
    return {
        {"cniVersion", "1.0.0"},
        {"name", "net1"},
        {"type", "bridge"},
        {"ipam",
         {{"type", type},
          {"dataDir", dataDir},
          {"ranges", {{{{"subnet", "10.244.1.0/24"}}}, {{{"subnet", "fd00:10:244:1::/64"}}}}}}}};
  }

  RunResult run(bool ours, const std::string& command, const std::string& id) const {
    const std::string bin = ours ? dualstack::testing::binPath("dualstack-ipam") : kHostLocal;
    return dualstack::testing::runPlugin(
        bin, dualstack::testing::cniEnv(command, id, "/var/run/netns/x"),
        conf(ours ? "dualstack-ipam" : "host-local").dump());
  }

  static std::vector<std::string> addresses(const RunResult& r) {
    return dualstack::testing::resultCidrs(r);
  }
  std::set<std::string> ipFiles() const { return dualstack::testing::allocationFiles(store); }

  std::vector<std::string> indexFiles() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(store + "/.dualstack")) {
      out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

#define EXPECT_OK(r) EXPECT_EQ((r).exitCode, 0) << (r).out << (r).err

TEST_F(HostLocalInterop, AlternatingAddsNeverShareAnAddress) {
  std::set<std::string> seen;
  std::vector<std::string> v4;
  for (int i = 0; i < 20; ++i) {
    const bool ours = i % 2 == 1;
    auto r = run(ours, "ADD", "c" + std::to_string(i));
    EXPECT_OK(r);
    const auto a = addresses(r);
    ASSERT_EQ(a.size(), 2U) << r.out;
    for (const auto& x : a) EXPECT_TRUE(seen.insert(x).second) << "handed out twice: " << x;
    v4.push_back(a[0]);
  }
  // Both follow the shared last_reserved_ip.N, so the round robin simply continues.
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(v4[static_cast<std::size_t>(i)], "10.244.1." + std::to_string(i + 2) + "/24");
  }
  // Each releases its own.
  for (int i = 0; i < 20; ++i) EXPECT_OK(run(i % 2 == 1, "DEL", "c" + std::to_string(i)));
  EXPECT_TRUE(ipFiles().empty());
  EXPECT_EQ(indexFiles(), (std::vector<std::string>{"state"}));
}

TEST_F(HostLocalInterop, ConcurrentAddsShareTheLock) {
  constexpr int kPods = 32;
  std::vector<RunResult> results(kPods);
  std::vector<std::thread> threads;
  for (int i = 0; i < kPods; ++i) {
    threads.emplace_back([&, i] {
      results[static_cast<std::size_t>(i)] = run(i % 2 == 0, "ADD", "p" + std::to_string(i));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> seen;
  for (const auto& r : results) {
    EXPECT_OK(r);
    for (const auto& a : addresses(r))
      EXPECT_TRUE(seen.insert(a).second) << "handed out twice: " << a;
  }
  EXPECT_EQ(seen.size(), 2U * kPods);
  EXPECT_EQ(ipFiles().size(), 2U * kPods);
}

TEST_F(HostLocalInterop, SwitchingFromHostLocalKeepsAllocations) {
  auto hl = run(false, "ADD", "pod1");
  EXPECT_OK(hl);
  ASSERT_EQ(addresses(hl).size(), 2U);
  // Same attachment under dualstack-ipam: the same addresses, not new ones.
  auto ours = run(true, "ADD", "pod1");
  EXPECT_OK(ours);
  EXPECT_EQ(addresses(ours), addresses(hl));
  EXPECT_OK(run(true, "CHECK", "pod1"));
  EXPECT_EQ(ipFiles().size(), 2U);
  // ... and ours can release what host-local allocated.
  EXPECT_OK(run(true, "DEL", "pod1"));
  EXPECT_TRUE(ipFiles().empty());
}

TEST_F(HostLocalInterop, SwitchingBackToHostLocal) {
  EXPECT_OK(run(true, "ADD", "pod1"));
  EXPECT_OK(run(true, "ADD", "pod2"));
  EXPECT_OK(run(false, "CHECK", "pod1"));
  // host-local walks the whole tree, our index included, and deletes by content only.
  EXPECT_OK(run(false, "DEL", "pod1"));
  EXPECT_EQ(ipFiles(), (std::set<std::string>{"10.244.1.3", "fd00:10:244:1::3"}));
  EXPECT_EQ(indexFiles(), (std::vector<std::string>{"pod1@eth0", "pod2@eth0", "state"}));
  // Our index notices the change behind its back.
  auto check = run(true, "CHECK", "pod1");
  EXPECT_NE(check.exitCode, 0);
  EXPECT_EQ(check.json().value("code", 0), 103) << check.out;
  EXPECT_OK(run(true, "CHECK", "pod2"));
  EXPECT_EQ(indexFiles(), (std::vector<std::string>{"pod2@eth0", "state"}));
  // host-local's next ADD skips what we hold.
  auto next = run(false, "ADD", "pod3");
  EXPECT_EQ(addresses(next), (std::vector<std::string>{"10.244.1.4/24", "fd00:10:244:1::4/64"}));
}

}  // namespace
}  // namespace dualstack::ipam
