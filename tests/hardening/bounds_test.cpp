// Nothing hangs: an IPAM delegate that never answers, floods its stdout or leaves a child holding
// its pipes, and a store lock another process keeps, each end in the stated CNI error within the
// documented bound, and leave no process, no veth and no allocation behind. Run as a runtime runs
// the plugins, with the host side inside a throwaway "node" namespace.
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

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::seconds;
using std::chrono::steady_clock;
using ::testing::HasSubstr;
using testing::RunResult;
using testing::TempDir;
using testing::TestNetns;

constexpr seconds kDelegateTimeout{60};  // DelegateLimits::timeout
constexpr seconds kLockWait{20};         // sys::kLockWait

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

pid_t pidIn(const std::string& file) {
  std::ifstream in(file);
  pid_t pid = -1;
  in >> pid;
  return pid;
}

// `dualstack` with an IPAM delegate written as a shell script, in a node and a pod namespace.
class DelegateBounds : public ::testing::Test {
 protected:
  void SetUp() override {
    DUALSTACK_REQUIRE_ROOT();
    node_ = std::make_unique<TestNetns>("node");
    pod_ = std::make_unique<TestNetns>("pod");
  }

  // The delegate `name`; its script can write PIDs into dir().
  void writeIpam(const std::string& name, const std::string& body) const {
    const std::string path = tmp_.file(name);
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    fs::permissions(path, fs::perms::owner_all);
  }
  std::string dir() const { return tmp_.path(); }

  RunResult add(const std::string& ipamType, const std::string& id = "c1") const {
    json conf = {{"cniVersion", "1.0.0"},
                 {"name", "bounds"},
                 {"type", "dualstack"},
                 {"ipam", {{"type", ipamType}}}};
    auto env = testing::cniEnv("ADD", id, pod_->path());
    env["CNI_PATH"] = tmp_.path() + ":" + testing::cniPath();
    return testing::runPlugin(testing::binPath("dualstack"), env, conf.dump(), node_->path());
  }

  // Links of a namespace, by name.
  std::string links(const TestNetns& ns) const {
    std::string out;
    testing::shell("ip -n " + ns.name() + " -o link show | awk -F': ' '{print $2}'", &out);
    return out;
  }
  void expectNoVeth() const {
    EXPECT_EQ(links(*node_), "lo\n") << "the node keeps a link of the failed ADD";
    EXPECT_EQ(links(*pod_), "lo\n") << "the pod keeps a link of the failed ADD";
  }

  TempDir tmp_;
  std::unique_ptr<TestNetns> node_;
  std::unique_ptr<TestNetns> pod_;
};

TEST_F(DelegateBounds, ADelegateThatNeverAnswersIsKilledWithItsChildrenAfterTheBound) {
  // Reads its config, starts a child that keeps stdout and stderr open, and never answers.
  writeIpam("stuck-ipam", "cat >/dev/null\nsleep 3600 &\necho $! >" + dir() +
                              "/child.pid\necho $$ >" + dir() + "/self.pid\nexec sleep 3600");
  const auto start = steady_clock::now();
  const RunResult r = add("stuck-ipam");
  const auto took = steady_clock::now() - start;
  EXPECT_FALSE(r.timedOut);
  EXPECT_NE(r.exitCode, 0);
  EXPECT_EQ(codeOf(r), 11) << r.out;
  EXPECT_THAT(msgOf(r), HasSubstr("plugin stuck-ipam did not finish ADD within 60 s")) << r.out;
  EXPECT_GE(took, kDelegateTimeout);
  EXPECT_LT(took, kDelegateTimeout + seconds(20)) << "the bound is the delegate's timeout";
  EXPECT_TRUE(testing::processGone(pidIn(dir() + "/self.pid"))) << "the delegate still runs";
  EXPECT_TRUE(testing::processGone(pidIn(dir() + "/child.pid")))
      << "the delegate's child still runs";
  expectNoVeth();
}

TEST_F(DelegateBounds, ADelegateThatFloodsStdoutIsStoppedAtOneMebibyte) {
  writeIpam("flood-ipam",
            "cat >/dev/null\necho $$ >" + dir() + "/self.pid\nexec yes '{\"ips\": []}'");
  const auto start = steady_clock::now();
  const RunResult r = add("flood-ipam");
  EXPECT_LT(steady_clock::now() - start, seconds(30));
  EXPECT_NE(r.exitCode, 0);
  EXPECT_EQ(codeOf(r), 5) << r.out.substr(0, 500);
  EXPECT_THAT(msgOf(r), HasSubstr("plugin flood-ipam wrote more than 1 MiB to stdout"));
  EXPECT_LT(r.out.size(), 4096u) << "the flood must not reach the runtime";
  EXPECT_TRUE(testing::processGone(pidIn(dir() + "/self.pid")));
  expectNoVeth();
}

TEST_F(DelegateBounds, ADelegateThatExitsWhileAChildHoldsItsPipesIsHeardAtOnce) {
  // Fails with a CNI error but leaves a child behind that keeps its stdout and stderr open.
  writeIpam(
      "leaky-ipam",
      "cat >/dev/null\nsleep 3600 &\necho $! >" + dir() +
          "/child.pid\necho '{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"no such range\"}'\n"
          "echo 'leaky-ipam: giving up' >&2\nexit 1");
  const auto start = steady_clock::now();
  const RunResult r = add("leaky-ipam");
  EXPECT_LT(steady_clock::now() - start, seconds(30)) << "waited for the child's end of the pipes";
  EXPECT_EQ(codeOf(r), 7) << r.out;
  EXPECT_THAT(msgOf(r), HasSubstr("plugin leaky-ipam: no such range"));
  EXPECT_THAT(r.err, HasSubstr("leaky-ipam: giving up")) << "the delegate's stderr is forwarded";
  EXPECT_TRUE(testing::processGone(pidIn(dir() + "/child.pid")))
      << "the delegate's child still runs";
  expectNoVeth();
}

TEST_F(DelegateBounds, ASuccessfulDelegateThatLeavesAChildBehindCounts) {
  writeIpam("leaky-ok-ipam",
            "cat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\nsleep 3600 &\necho $! >" +
                dir() +
                "/child.pid\necho '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":"
                "\"10.250.0.2/24\",\"gateway\":\"10.250.0.1\"}]}'");
  const auto start = steady_clock::now();
  const RunResult r = add("leaky-ok-ipam");
  EXPECT_LT(steady_clock::now() - start, seconds(30));
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("10.250.0.2/24"));
  EXPECT_TRUE(testing::processGone(pidIn(dir() + "/child.pid")))
      << "the delegate's child still runs";
  auto env = testing::cniEnv("DEL", "c1", pod_->path());
  env["CNI_PATH"] = tmp_.path() + ":" + testing::cniPath();
  const json conf = {{"cniVersion", "1.0.0"},
                     {"name", "bounds"},
                     {"type", "dualstack"},
                     {"ipam", {{"type", "leaky-ok-ipam"}}}};
  const RunResult d =
      testing::runPlugin(testing::binPath("dualstack"), env, conf.dump(), node_->path());
  EXPECT_EQ(d.exitCode, 0) << d.out << d.err;
  expectNoVeth();
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
