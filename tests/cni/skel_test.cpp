// The plugin main loop, exercised through the built dualstack-ipam binary the way a runtime runs
// it. Only paths decided before a verb handler runs are tested here (VERSION, env and config
// errors, --version); the handlers belong to the ipam and plugin suites.
//
// The binary is found with testing::binPath(): DUALSTACK_BIN_DIR when set, else this build's bin/.
#include <signal.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/support.hpp"

namespace dualstack::cni {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
namespace t = dualstack::testing;

const json kAllVersions = json::array({"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"});

class Skel : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = t::binPath("dualstack-ipam");
    ASSERT_EQ(::access(bin_.c_str(), X_OK), 0)
        << bin_ << " is not built; set DUALSTACK_BIN_DIR to a directory holding it";
  }

  t::RunResult run(const t::EnvMap& env, const std::string& input) {
    return t::runPlugin(bin_, env, input);
  }

  // Runs and checks the CNI error protocol: exit non-zero, one JSON object on stdout with
  // cniVersion, code and msg, the message also on stderr.
  json runExpectingError(const t::EnvMap& env, const std::string& input) {
    const t::RunResult r = run(env, input);
    EXPECT_NE(r.exitCode, 0) << r.out;
    json j = r.json();
    EXPECT_TRUE(j.is_object()) << "stdout: " << r.out;
    if (!j.is_object()) return json::object();
    EXPECT_TRUE(j.contains("cniVersion")) << r.out;
    EXPECT_TRUE(j.contains("code") && j["code"].is_number_integer()) << r.out;
    EXPECT_TRUE(j.contains("msg") && j["msg"].is_string()) << r.out;
    if (j.contains("msg") && j["msg"].is_string()) {
      EXPECT_THAT(r.err, HasSubstr(j["msg"].get<std::string>())) << "stderr carries the log line";
    }
    EXPECT_EQ(r.out.back(), '\n');
    EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "stdout must be only the error: " << r.out;
    return j;
  }

  std::string bin_;
};

t::EnvMap addEnv() { return t::cniEnv("ADD", "ctr1", "/var/run/netns/ctr1"); }

TEST_F(Skel, VersionEchoesTheRequestedVersion) {
  for (const char* v : {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    const t::RunResult r = run({{"CNI_COMMAND", "VERSION"}}, json{{"cniVersion", v}}.dump());
    EXPECT_EQ(r.exitCode, 0) << r.out << r.err;
    const json j = r.json();
    EXPECT_EQ(j["cniVersion"], v) << r.out;
    EXPECT_EQ(j["supportedVersions"], kAllVersions) << r.out;
  }
}

TEST_F(Skel, VersionWithoutStdin) {
  const t::RunResult r = run({{"CNI_COMMAND", "VERSION"}}, "");
  EXPECT_EQ(r.exitCode, 0) << r.err;
  const json j = r.json();
  EXPECT_EQ(j["cniVersion"], "1.1.0") << r.out;
  EXPECT_EQ(j["supportedVersions"], kAllVersions) << r.out;
}

TEST_F(Skel, VersionWithUnsupportedOrUnreadableRequestAnswersLatest) {
  for (const std::string& in :
       std::vector<std::string>{R"({"cniVersion":"0.2.0"})", R"({"cniVersion":5})", "not json",
                                "[]", R"({"name":"x"})"}) {
    const t::RunResult r = run({{"CNI_COMMAND", "VERSION"}}, in);
    EXPECT_EQ(r.exitCode, 0) << in << ": " << r.out << r.err;
    EXPECT_EQ(r.json()["cniVersion"], "1.1.0") << in << ": " << r.out;
    EXPECT_EQ(r.json()["supportedVersions"], kAllVersions) << in;
  }
}

TEST_F(Skel, VersionNeedsNoOtherVariables) {
  // Even with a full config (libcni sends one), VERSION does not look at the rest of it.
  const t::RunResult r =
      run({{"CNI_COMMAND", "VERSION"}}, R"({"cniVersion":"1.0.0","name":"../bad"})");
  EXPECT_EQ(r.exitCode, 0) << r.out;
  EXPECT_EQ(r.json()["cniVersion"], "1.0.0");
}

TEST_F(Skel, ConfigErrorEchoesTheConfigVersion) {
  for (const char* v : {"0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    const json j = runExpectingError(addEnv(), json{{"cniVersion", v}, {"type", "x"}}.dump());
    EXPECT_EQ(j["cniVersion"], v) << j.dump();
    EXPECT_EQ(j["code"], 7) << j.dump();
    EXPECT_THAT(j.value("msg", ""), HasSubstr("name"));
  }
}

TEST_F(Skel, InvalidNetworkNameIsCode7) {
  const json j =
      runExpectingError(addEnv(), R"({"cniVersion":"1.0.0","name":"../etc","type":"x"})");
  EXPECT_EQ(j["code"], 7);
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  EXPECT_THAT(j.value("msg", ""), HasSubstr("name"));
}

TEST_F(Skel, UnsupportedVersionIsCode1AnsweredInLatest) {
  const json j = runExpectingError(addEnv(), R"({"cniVersion":"0.2.0","name":"n","type":"x"})");
  EXPECT_EQ(j["code"], 1);
  EXPECT_EQ(j["cniVersion"], "1.1.0");
  EXPECT_THAT(j.value("msg", ""), HasSubstr("cniVersion"));
}

TEST_F(Skel, CheckOnOldVersionIsCode1) {
  const json j = runExpectingError(t::cniEnv("CHECK", "ctr1", "/var/run/netns/ctr1"),
                                   R"({"cniVersion":"0.3.1","name":"n","type":"x"})");
  EXPECT_EQ(j["code"], 1);
  EXPECT_EQ(j["cniVersion"], "0.3.1");
  EXPECT_THAT(j.value("msg", ""), HasSubstr("CHECK"));
}

TEST_F(Skel, GcAndStatusOnOldVersionAreCode1) {
  for (const char* verb : {"GC", "STATUS"}) {
    const json j = runExpectingError({{"CNI_COMMAND", verb}, {"CNI_PATH", t::cniPath()}},
                                     R"({"cniVersion":"1.0.0","name":"n","type":"x"})");
    EXPECT_EQ(j["code"], 1) << verb;
    EXPECT_EQ(j["cniVersion"], "1.0.0") << verb;
    EXPECT_THAT(j.value("msg", ""), HasSubstr(verb));
  }
}

TEST_F(Skel, MalformedJsonIsCode6) {
  const json j = runExpectingError(addEnv(), R"({"cniVersion":"1.0.0","name":)");
  EXPECT_EQ(j["code"], 6);
  EXPECT_EQ(j["cniVersion"], "1.1.0");
  EXPECT_THAT(j.value("msg", ""), HasSubstr("JSON"));
}

TEST_F(Skel, EmptyStdinOnAddIsCode6) {
  const json j = runExpectingError(addEnv(), "");
  EXPECT_EQ(j["code"], 6);
}

TEST_F(Skel, OversizedStdinIsCode6) {
  // The plugin stops reading past the limit; don't let the broken pipe kill the test.
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  const std::string big = R"({"cniVersion":"1.0.0","name":"n","pad":")" +
                          std::string(std::size_t{2} << 20, 'x') + "\"}";
  const json j = runExpectingError(addEnv(), big);
  ::sigaction(SIGPIPE, &old, nullptr);
  EXPECT_EQ(j["code"], 6);
  EXPECT_THAT(j.value("msg", ""), HasSubstr("larger than"));
}

TEST_F(Skel, MissingEnvIsCode4EchoingTheConfigVersion) {
  const std::string conf = R"({"cniVersion":"0.4.0","name":"n","type":"x"})";
  for (const char* var : {"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"}) {
    t::EnvMap env = addEnv();
    env.erase(var);
    const json j = runExpectingError(env, conf);
    EXPECT_EQ(j["code"], 4) << var;
    EXPECT_EQ(j["cniVersion"], "0.4.0") << var;
    EXPECT_THAT(j.value("msg", ""), HasSubstr(var));
  }
}

TEST_F(Skel, InvalidEnvValuesAreCode4) {
  const std::string conf = R"({"cniVersion":"1.0.0","name":"n","type":"x"})";
  struct Case {
    const char* var;
    const char* value;
  };
  for (const Case& c : {Case{"CNI_COMMAND", "FROB"}, Case{"CNI_IFNAME", "eth0:1"},
                        Case{"CNI_IFNAME", "abcdefghijklmnop"}, Case{"CNI_CONTAINERID", "../x"},
                        Case{"CNI_ARGS", "K8S_POD_NAME"}}) {
    t::EnvMap env = addEnv();
    env[c.var] = c.value;
    const json j = runExpectingError(env, conf);
    EXPECT_EQ(j["code"], 4) << c.var << "=" << c.value;
    EXPECT_THAT(j.value("msg", ""), HasSubstr(c.var));
  }
}

TEST_F(Skel, VersionFlagPrintsBuildAndProtocolVersions) {
  std::string out;
  const int rc = t::shell("env -u CNI_COMMAND '" + bin_ + "' --version", &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, ::testing::StartsWith("dualstack-ipam "));
  EXPECT_THAT(out, HasSubstr("0.3.0 0.3.1 0.4.0 1.0.0 1.1.0"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("cniVersion"))) << "human text, not the JSON answer";
}

}  // namespace
}  // namespace dualstack::cni
