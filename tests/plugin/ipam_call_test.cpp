// How `dualstack` runs its IPAM plugin: dualstack-ipam of its own build in process, anything else
// (another IPAM plugin, a dualstack-ipam of another build) exec'd, with the same answers either
// way.
#include <gmock/gmock.h>

#include <regex>

#include "plugin_fixture.hpp"

namespace dualstack::plugintest {
namespace {

using ::testing::HasSubstr;

class IpamCall : public PluginTest {
 protected:
  // CNI_PATH with only our build and the reference plugins: dualstack-ipam is this build.
  static std::string ownBuildPath() { return testing::binDir() + ":/usr/lib/cni"; }
  // CNI_PATH whose dualstack-ipam is the same code without a build ID: it is exec'd.
  static std::string execPath() { return testing::execIpamDir() + ":" + ownBuildPath(); }

  RunResult addWithPath(const TestNetns& pod, const std::string& cid, const json& conf,
                        const std::string& cniPath) const {
    EnvMap env = testing::cniEnv("ADD", cid, pod.path());
    env["CNI_PATH"] = cniPath;
    return run(env, conf);
  }

  // The pid of the log records of `prog` ("dualstack", "dualstack-ipam"); all must agree.
  static std::string pidOf(const std::string& log, const std::string& prog) {
    const std::regex record("prog=" + prog + " pid=([0-9]+) ");
    std::set<std::string> pids;
    for (std::sregex_iterator it(log.begin(), log.end(), record), end; it != end; ++it) {
      pids.insert((*it)[1].str());
    }
    if (pids.size() != 1) throw std::runtime_error("no single pid for " + prog + " in: " + log);
    return *pids.begin();
  }
};

TEST_F(IpamCall, OwnBuildRunsInProcessAnotherCopyIsExeced) {
  const testing::TempDir logs;
  json conf = pluginConf("10-dualstack.conflist");
  conf["logLevel"] = "info";
  for (const bool exec : {false, true}) {
    SCOPED_TRACE(exec ? "dualstack-ipam without a build ID" : "dualstack-ipam of this build");
    conf["logFile"] = logs.file(exec ? "exec.log" : "own.log");
    auto& pod = newPod();
    const RunResult r =
        addWithPath(pod, exec ? "cid-exec" : "cid-own", conf, exec ? execPath() : ownBuildPath());
    ASSERT_EQ(r.exitCode, 0) << describe(r);
    const std::string log = testing::readFile(conf["logFile"].get<std::string>());
    // Both plugins log their ADD; the IPAM's record carries the pid of the process it ran in.
    EXPECT_THAT(log, HasSubstr("prog=dualstack-ipam"));
    if (exec) {
      EXPECT_NE(pidOf(log, "dualstack-ipam"), pidOf(log, "dualstack")) << log;
    } else {
      EXPECT_EQ(pidOf(log, "dualstack-ipam"), pidOf(log, "dualstack")) << log;
    }
  }
}

TEST_F(IpamCall, DualstackIpamOfAnotherBuildIsExeced) {
  // A program named dualstack-ipam that is not this build must be the one that answers, even
  // when it answers differently from our own IPAM code.
  const testing::TempDir other;
  const std::string script = other.file("dualstack-ipam");
  {
    std::ofstream f(script);
    f << "#!/bin/sh\ncat >/dev/null\n"
         "echo '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"an IPAM plugin of another "
         "build\"}'\n"
         "exit 1\n";
  }
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  auto& pod = newPod();
  const RunResult r = addWithPath(pod, "cid-other", pluginConf("10-dualstack.conflist"),
                                  other.path() + ":" + ownBuildPath());
  const json e = errorOf(r);
  EXPECT_EQ(e.value("code", 0), 11) << describe(r);
  EXPECT_EQ(e.value("msg", ""), "plugin dualstack-ipam: an IPAM plugin of another build");
  EXPECT_TRUE(nodeVeths().empty());
  EXPECT_TRUE(allocations("dualstack").empty());
}

TEST_F(IpamCall, IpamErrorsAreTheSameInProcessAndExeced) {
  // An IPAM failure as the runtime sees it: the error on stdout, the exit status and both lines
  // on stderr (the IPAM's own, then the plugin's). A node file that does not exist: the plugin's
  // own check of the ipam section reads no file, so the IPAM is the one that fails.
  json conf = pluginConf("10-dualstack.conflist");
  conf["ipam"]["node"] = {{"file", "/nonexistent/dualstack-node.json"}};
  auto& pod = newPod();
  const RunResult own = addWithPath(pod, "cid-err", conf, ownBuildPath());
  const RunResult exec = addWithPath(pod, "cid-err", conf, execPath());
  EXPECT_EQ(errorOf(own).value("code", 0), 11) << describe(own);
  EXPECT_THAT(errorOf(own).value("msg", ""), HasSubstr("plugin dualstack-ipam: "));
  EXPECT_EQ(own.exitCode, exec.exitCode);
  EXPECT_EQ(own.out, exec.out);
  EXPECT_EQ(own.err, exec.err);
  EXPECT_THAT(own.err, HasSubstr("\ndualstack: plugin dualstack-ipam: "));
  EXPECT_EQ(own.err.rfind("dualstack-ipam: ", 0), 0u) << own.err;
}

}  // namespace
}  // namespace dualstack::plugintest
