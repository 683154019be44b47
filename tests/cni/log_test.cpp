// The operator's log (logFile / logLevel): record format, levels, the file's safety properties,
// and what the built plugins write when a runtime runs them.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualstack/cni/error.hpp"
#include "dualstack/cni/log.hpp"
#include "support/support.hpp"

namespace dualstack::cni {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
namespace t = dualstack::testing;

using dualstack::testing::readFile;

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string l; std::getline(ss, l);) out.push_back(l);
  return out;
}

// time=2024-05-01T10:00:00.123Z level=... prog=... pid=N cmd=... container=... ifname=...
// network=... elapsed_ms=N.NNN msg=...
const std::regex kRecord(
    R"(^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(error|info|debug) prog=\S+ pid=\d+ )"
    R"(cmd=\S+ container=\S+ ifname=\S+ network=\S+ elapsed_ms=\d+\.\d{3} msg=.+$)");

// ---- pure pieces ----

TEST(ParseLogConfig, AcceptsTheDocumentedValues) {
  EXPECT_FALSE(parseLogConfig(json::object()).enabled());
  const auto cfg = parseLogConfig({{"logFile", "/var/log/ds.log"}, {"logLevel", "debug"}});
  EXPECT_EQ(cfg.file, "/var/log/ds.log");
  EXPECT_EQ(cfg.level, LogLevel::Debug);
  EXPECT_EQ(parseLogConfig({{"logLevel", "info"}}).level, LogLevel::Info);
  EXPECT_EQ(parseLogConfig({{"logLevel", "error"}}).level, LogLevel::Error);
  EXPECT_FALSE(parseLogConfig({{"logLevel", nullptr}}).enabled());
}

void expectRejected(const json& raw, const std::string& field) {
  try {
    parseLogConfig(raw);
    ADD_FAILURE() << "accepted " << raw.dump();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::InvalidConfig) << e.msg();
    EXPECT_THAT(e.msg(), HasSubstr(field));
  }
}

TEST(ParseLogConfig, RejectsWrongTypesAndValuesNamingTheField) {
  expectRejected({{"logLevel", "verbose"}}, "logLevel");
  expectRejected({{"logLevel", 2}}, "logLevel");
  expectRejected({{"logFile", "relative.log"}}, "logFile");
  expectRejected({{"logFile", ""}}, "logFile");
  expectRejected({{"logFile", true}}, "logFile");
}

class LoggerTest : public ::testing::Test {
 protected:
  t::TempDir tmp;
  std::string path = tmp.file("cni.log");

  static void fill(Logger& log) { log.context() = {"dualstack", "ADD", "cid-1", "eth0", "net1"}; }
};

TEST_F(LoggerTest, RecordCarriesEveryFieldOnOneLine) {
  Logger log;
  fill(log);
  log.configure({path, LogLevel::Info});
  log.error("first line\nsecond \"line\"");
  const auto got = lines(readFile(path));
  ASSERT_EQ(got.size(), 1u) << readFile(path);
  EXPECT_TRUE(std::regex_match(got[0], kRecord)) << got[0];
  EXPECT_THAT(got[0], HasSubstr(" level=error prog=dualstack pid=" + std::to_string(::getpid())));
  EXPECT_THAT(got[0], HasSubstr(" cmd=ADD container=cid-1 ifname=eth0 network=net1 elapsed_ms="));
  EXPECT_THAT(got[0], HasSubstr(R"( msg="first line\nsecond \"line\"")"));
}

TEST_F(LoggerTest, LevelsFilterRecords) {
  Logger log;
  fill(log);
  log.configure({path, LogLevel::Info});
  log.error("e");
  log.info("i");
  log.debug("d");
  const auto got = lines(readFile(path));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_THAT(got[0], HasSubstr("level=error"));
  EXPECT_THAT(got[1], HasSubstr("level=info"));

  Logger quiet;  // logFile alone: errors only
  fill(quiet);
  const std::string other = tmp.file("errors.log");
  quiet.configure({other, std::nullopt});
  quiet.info("i");
  quiet.error("e");
  EXPECT_EQ(lines(readFile(other)).size(), 1u);
}

TEST_F(LoggerTest, UnconfiguredLoggerWritesNothing) {
  Logger log;
  fill(log);
  log.configure({});
  EXPECT_FALSE(log.configured());
  EXPECT_FALSE(log.enabled(LogLevel::Error));
  ::testing::internal::CaptureStderr();
  log.error("x");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST_F(LoggerTest, CreatesTheFileMode0600AndAppends) {
  {
    std::ofstream(path) << "earlier line\n";
    ::chmod(path.c_str(), 0644);  // an existing file keeps its mode
    Logger log;
    fill(log);
    log.configure({path, LogLevel::Error});
    log.error("appended");
    const auto got = lines(readFile(path));
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0], "earlier line");
  }
  const std::string fresh = tmp.file("fresh.log");
  const mode_t old = ::umask(0);
  {
    Logger log;
    fill(log);
    log.configure({fresh, LogLevel::Error});
    log.error("x");
  }
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(LoggerTest, DoesNotFollowASymlinkAndWarnsInstead) {
  const std::string target = tmp.file("target");
  std::ofstream(target) << "";
  ASSERT_EQ(::symlink(target.c_str(), path.c_str()), 0);
  Logger log;
  fill(log);
  ::testing::internal::CaptureStderr();
  log.configure({path, LogLevel::Info});
  log.error("must not land in the target");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, HasSubstr("cannot open log file " + path));
  EXPECT_EQ(readFile(target), "");
}

// A FIFO at the log path would block the open until someone read it; a device would take the
// records. Both are refused with a warning, at once.
TEST_F(LoggerTest, AFifoOrADeviceIsRefusedWithAWarningWithoutBlocking) {
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  for (const std::string& target : {path, std::string("/dev/null")}) {
    Logger log;
    fill(log);
    ::testing::internal::CaptureStderr();
    ::alarm(30);  // a blocking open fails the test binary instead of hanging it
    log.configure({target, LogLevel::Info});
    log.error("goes nowhere");
    ::alarm(0);
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_THAT(err, HasSubstr("cannot open log file " + target + " (logFile): it is a "));
    EXPECT_THAT(err, HasSubstr("not a regular file; not logging to it"));
  }
}

TEST_F(LoggerTest, UnopenableFileWarnsAndDoesNotThrow) {
  Logger log;
  fill(log);
  ::testing::internal::CaptureStderr();
  EXPECT_NO_THROW(log.configure({tmp.path(), LogLevel::Info}));  // a directory
  EXPECT_NO_THROW(log.error("x"));
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("warning: cannot open log file"));
}

// Many processes appending at once: every record arrives whole, none is interleaved with another.
TEST_F(LoggerTest, ParallelWritersNeverInterleave) {
  constexpr int kProcs = 8;
  constexpr int kRecords = 150;
  const std::string payload(3000, 'p');
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      Logger log;
      log.context() = {"w" + std::to_string(p), "ADD", "c", "eth0", "n"};
      log.configure({path, LogLevel::Info});
      for (int i = 0; i < kRecords; ++i) log.info("r" + std::to_string(i) + " " + payload);
      _exit(0);
    }
    pids.push_back(pid);
  }
  for (const pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const auto got = lines(readFile(path));
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kProcs * kRecords));
  const std::regex record(
      R"(^time=\S+ level=info prog=w\d pid=\d+ cmd=ADD container=c ifname=eth0 )"
      R"(network=n elapsed_ms=\S+ msg="r\d+ p{3000}"$)");
  for (const auto& l : got) ASSERT_TRUE(std::regex_match(l, record)) << l.substr(0, 200);
}

// ---- the built plugins, run as a runtime runs them ----

constexpr const char* kSecret = "sekret-4f9e1b77c0";

class PluginLog : public ::testing::Test {
 protected:
  t::TempDir tmp;
  std::string logPath = tmp.file("cni.log");

  json conf() const {
    return {{"cniVersion", "1.0.0"},
            {"name", "logged-net"},
            {"type", "dualstack"},
            {"logFile", logPath},
            {"logLevel", "info"},
            // Credential-looking values anywhere in the config must never reach the log.
            {"apiToken", kSecret},
            {"runtimeConfig", {{"secret", kSecret}}},
            {"ipam",
             {{"type", "dualstack-ipam"},
              {"dataDir", tmp.file("store")},
              {"password", kSecret},
              {"node", {{"podCIDRs", {"10.244.1.0/24", "fd00:10:244:1::/64"}}}}}}};
  }
  t::RunResult ipam(const std::string& command, const json& c, const std::string& cid = "cid-log") {
    return t::runPlugin(t::binPath("dualstack-ipam"),
                        t::cniEnv(command, cid, "/var/run/netns/none", "eth0",
                                  "IgnoreUnknown=1;K8S_POD_NAME=" + std::string(kSecret)),
                        c.dump());
  }
};

TEST_F(PluginLog, FailedAddExplainsItselfInOneLine) {
  json c = conf();
  c["ipam"]["dataDir"] = "relative/store";
  const t::RunResult r = ipam("ADD", c);
  ASSERT_NE(r.exitCode, 0);
  const std::string msg = r.json().value("msg", "");
  ASSERT_THAT(msg, HasSubstr("ipam.dataDir"));
  const auto got = lines(readFile(logPath));
  ASSERT_EQ(got.size(), 1u) << readFile(logPath);
  EXPECT_TRUE(std::regex_match(got[0], kRecord)) << got[0];
  EXPECT_THAT(got[0], HasSubstr("level=error prog=dualstack-ipam"));
  EXPECT_THAT(got[0], HasSubstr("cmd=ADD container=cid-log ifname=eth0 network=logged-net"));
  EXPECT_THAT(got[0], HasSubstr(" msg=" + logValue("ADD failed (code 7): " + msg)));
  EXPECT_THAT(got[0], ::testing::EndsWith("is not an absolute path\""));
}

TEST_F(PluginLog, BadConfigIsStillLoggedWithTheUsableOptions) {
  json c = conf();
  c["name"] = "../escape";
  const t::RunResult r = ipam("ADD", c);
  ASSERT_NE(r.exitCode, 0);
  const auto got = lines(readFile(logPath));
  ASSERT_EQ(got.size(), 1u) << readFile(logPath);
  EXPECT_THAT(got[0], HasSubstr("network=../escape"));
  EXPECT_THAT(got[0], HasSubstr("code 7"));
}

TEST_F(PluginLog, InfoRecordsSuccessWithTheAddresses) {
  ASSERT_EQ(ipam("ADD", conf()).exitCode, 0);
  ASSERT_EQ(ipam("DEL", conf()).exitCode, 0);
  const auto got = lines(readFile(logPath));
  ASSERT_EQ(got.size(), 2u) << readFile(logPath);
  EXPECT_THAT(got[0], HasSubstr(R"(level=info prog=dualstack-ipam)"));
  EXPECT_THAT(got[0], HasSubstr(R"(msg="ADD ok: 10.244.1.2/24 fd00:10:244:1::2/64")"));
  EXPECT_THAT(got[1], HasSubstr(R"(cmd=DEL)"));
  EXPECT_THAT(got[1], HasSubstr(R"(msg="DEL ok")"));
}

TEST_F(PluginLog, DebugNeverLogsSecrets) {
  json c = conf();
  c["logLevel"] = "debug";
  ASSERT_EQ(ipam("ADD", c).exitCode, 0);
  c["ipam"]["node"]["podCIDRs"] = "broken";
  ASSERT_NE(ipam("ADD", c, "cid-2").exitCode, 0);
  // A kubeconfig holding a token, for an API server that refuses connections.
  const std::string kubeconfig = tmp.file("kube.conf");
  std::ofstream(kubeconfig)
      << "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: "
         "{server: \"https://127.0.0.1:1\"}\nusers:\n- name: u\n  user: {token: \""
      << kSecret
      << "\"}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
         "current-context: x\n";
  c["ipam"]["node"] = {{"kubeconfig", kubeconfig}, {"name", "worker-1"}, {"timeout", "1s"}};
  c["ipam"]["dataDir"] = tmp.file("store2");
  ASSERT_NE(ipam("ADD", c, "cid-3").exitCode, 0);

  const std::string log = readFile(logPath);
  const auto got = lines(log);
  ASSERT_GE(got.size(), 5u) << log;
  for (const auto& l : got) EXPECT_TRUE(std::regex_match(l, kRecord)) << l;
  EXPECT_THAT(log, HasSubstr("level=debug"));
  EXPECT_THAT(log, HasSubstr("CNI_ARGS keys IgnoreUnknown,K8S_POD_NAME"));
  EXPECT_THAT(log, HasSubstr("127.0.0.1:1"));
  EXPECT_THAT(log, Not(HasSubstr(kSecret)));
}

TEST_F(PluginLog, UnwritableLogFileDoesNotFailTheOperation) {
  json c = conf();
  c["logFile"] = tmp.file("no-such-dir/cni.log");
  const t::RunResult r = ipam("ADD", c);
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("warning: cannot open log file " + tmp.file("no-such-dir/cni.log")));
  EXPECT_TRUE(r.json().contains("ips")) << r.out;
}

TEST_F(PluginLog, WithoutOptionsNothingChanges) {
  json c = conf();
  c.erase("logFile");
  c.erase("logLevel");
  const t::RunResult ok = ipam("ADD", c);
  EXPECT_EQ(ok.exitCode, 0);
  EXPECT_EQ(ok.err, "");
  c["ipam"]["dataDir"] = 5;
  const t::RunResult bad = ipam("ADD", c, "cid-2");
  EXPECT_NE(bad.exitCode, 0);
  // Only today's one error line on stderr.
  EXPECT_EQ(lines(bad.err).size(), 1u) << bad.err;
  EXPECT_THAT(bad.err, Not(HasSubstr("time=")));
  EXPECT_FALSE(std::ifstream(logPath).good());
}

TEST_F(PluginLog, LogLevelWithoutLogFileWritesToStderr) {
  json c = conf();
  c.erase("logFile");
  const t::RunResult r = ipam("ADD", c);
  ASSERT_EQ(r.exitCode, 0) << r.err;
  const auto got = lines(r.err);
  ASSERT_EQ(got.size(), 1u) << r.err;
  EXPECT_TRUE(std::regex_match(got[0], kRecord)) << got[0];
  EXPECT_THAT(got[0], HasSubstr("ADD ok"));
}

TEST_F(PluginLog, InvalidLogLevelIsAConfigError) {
  json c = conf();
  c["logLevel"] = "chatty";
  const t::RunResult r = ipam("ADD", c);
  EXPECT_NE(r.exitCode, 0);
  EXPECT_EQ(r.json().value("code", 0), 7) << r.out;
  EXPECT_THAT(r.json().value("msg", ""), HasSubstr("logLevel"));
  // The file is usable, so the failure is still recorded there.
  EXPECT_THAT(readFile(logPath), HasSubstr("logLevel"));
}

// The interface plugin and its IPAM plugin in one log, ADD of a real pod: node side in a
// throwaway namespace.
TEST_F(PluginLog, InterfacePluginAndIpamShareTheLog) {
  DUALSTACK_REQUIRE_ROOT();
  t::TestNetns node("node");
  t::TestNetns pod("pod");
  json c = conf();
  c.erase("apiToken");
  const auto env = t::cniEnv("ADD", "cid-pod", pod.path());
  const t::RunResult r = t::runPlugin(t::binPath("dualstack"), env, c.dump(), node.path());
  ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  c["mtu"] = "big";
  const t::RunResult bad = t::runPlugin(
      t::binPath("dualstack"), t::cniEnv("ADD", "cid-pod2", pod.path()), c.dump(), node.path());
  ASSERT_NE(bad.exitCode, 0);
  const std::string log = readFile(logPath);
  const auto got = lines(log);
  ASSERT_EQ(got.size(), 3u) << log;
  EXPECT_THAT(got[0], HasSubstr("level=info prog=dualstack-ipam pid="));
  EXPECT_THAT(got[1], HasSubstr("level=info prog=dualstack pid="));
  EXPECT_THAT(got[1], HasSubstr("container=cid-pod ifname=eth0 network=logged-net"));
  EXPECT_THAT(got[1], HasSubstr("ADD ok: 10.244.1.2/24 fd00:10:244:1::2/64"));
  EXPECT_THAT(got[2], HasSubstr("level=error prog=dualstack pid="));
  EXPECT_THAT(got[2], HasSubstr("container=cid-pod2"));
  EXPECT_THAT(got[2], HasSubstr("mtu: expected an integer"));
  EXPECT_THAT(log, Not(HasSubstr(kSecret)));
}

}  // namespace
}  // namespace dualstack::cni
