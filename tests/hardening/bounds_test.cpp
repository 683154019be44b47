// Nothing hangs: a store lock another process keeps ends in the stated CNI error within the
// documented bound, and leaves nothing behind. Run as a runtime runs the plugins.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/support.hpp"

namespace dualstack::hardening {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using std::chrono::steady_clock;
using ::testing::HasSubstr;
using testing::RunResult;
using testing::TempDir;

constexpr seconds kLockWait{20};  // sys::kLockWait

int codeOf(const RunResult& r) {
  const json j = r.json();
  return j.is_object() && j.contains("code") && j["code"].is_number_integer() ? j["code"].get<int>()
                                                                              : -1;
}
std::string msgOf(const RunResult& r) {
  const json j = r.json();
  return j.is_object() && j.contains("msg") && j["msg"].is_string() ? j["msg"].get<std::string>()
                                                                    : r.out;
}

// The store lock held by a process that does not let go: ADD waits for the bound, then says
// who holds which lock, with code 11, and changes nothing.
TEST(StoreLockBound, AHeldStoreLockIsTryAgainLaterNamingTheLockAndItsHolder) {
  TempDir tmp;
  const std::string dataDir = tmp.file("data");
  const json conf = {{"cniVersion", "1.0.0"},
                     {"name", "locked"},
                     {"type", "dualstack"},
                     {"ipam",
                      {{"type", "dualstack-ipam"},
                       {"dataDir", dataDir},
                       {"node", {{"podCIDRs", {"10.251.0.0/24", "fd00:251::/64"}}}}}}};
  const auto env = testing::cniEnv("ADD", "c1", "/var/run/netns/locked");
  const auto ipam = testing::binPath("dualstack-ipam");
  ASSERT_EQ(testing::runPlugin(ipam, testing::cniEnv("ADD", "c0", "/x"), conf.dump()).exitCode, 0);
  const std::string lock = dataDir + "/locked/lock";
  const auto before = testing::snapshotTree(dataDir);
  {
    const testing::LockHolder holder(lock);
    const auto start = steady_clock::now();
    const RunResult r = testing::runPlugin(ipam, env, conf.dump());
    const auto took = steady_clock::now() - start;
    EXPECT_EQ(codeOf(r), 11) << r.out;
    EXPECT_THAT(msgOf(r), HasSubstr("the store lock " + lock + " is held by PID " +
                                    std::to_string(holder.pid())));
    EXPECT_THAT(msgOf(r), HasSubstr("not released within 20 s"));
    EXPECT_GE(took, kLockWait);
    EXPECT_LT(took, kLockWait + seconds(15));
  }
  EXPECT_EQ(testing::snapshotTree(dataDir), before) << "a timed-out ADD must change nothing";
  const RunResult ok = testing::runPlugin(ipam, env, conf.dump());
  EXPECT_EQ(ok.exitCode, 0) << "once the holder is gone, ADD works: " << ok.out;
}

}  // namespace
}  // namespace dualstack::hardening
