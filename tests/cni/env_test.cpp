// CNI_* environment parsing and the identifier rules it shares with config parsing.
#include "dualstack/cni/env.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "dualstack/cni/error.hpp"

namespace dualstack::cni {
namespace {

using ::testing::HasSubstr;

using Vars = std::map<std::string, std::string>;

EnvLookup lookupIn(const Vars& vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

Vars fullEnv(const std::string& command) {
  return {{"CNI_COMMAND", command},
          {"CNI_CONTAINERID", "abc123"},
          {"CNI_NETNS", "/var/run/netns/pod1"},
          {"CNI_IFNAME", "eth0"},
          {"CNI_PATH", "/opt/cni/bin:/usr/lib/cni"}};
}

// Runs parseEnv and returns the error it throws; fails the test when it does not throw.
Error envError(const Vars& vars) {
  try {
    parseEnv(lookupIn(vars));
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "parseEnv did not throw";
  return Error(Code::Internal, "<no error>");
}

TEST(CommandName, EveryVerb) {
  EXPECT_EQ(commandName(Command::Add), "ADD");
  EXPECT_EQ(commandName(Command::Del), "DEL");
  EXPECT_EQ(commandName(Command::Check), "CHECK");
  EXPECT_EQ(commandName(Command::Gc), "GC");
  EXPECT_EQ(commandName(Command::Status), "STATUS");
  EXPECT_EQ(commandName(Command::Version), "VERSION");
}

TEST(ParseEnv, AddReadsEveryVariable) {
  auto vars = fullEnv("ADD");
  vars["CNI_ARGS"] = "IgnoreUnknown=1;K8S_POD_NAME=web-0";
  const Env env = parseEnv(lookupIn(vars));
  EXPECT_EQ(env.command, Command::Add);
  EXPECT_EQ(env.containerId, "abc123");
  EXPECT_EQ(env.netns, "/var/run/netns/pod1");
  EXPECT_EQ(env.ifname, "eth0");
  EXPECT_EQ(env.path, "/opt/cni/bin:/usr/lib/cni");
  EXPECT_EQ(env.args, "IgnoreUnknown=1;K8S_POD_NAME=web-0");
  ASSERT_EQ(env.argPairs.size(), 2u);
  EXPECT_EQ(env.arg("K8S_POD_NAME"), "web-0");
}

TEST(ParseEnv, EachVerbIsRecognised) {
  const std::map<std::string, Command> verbs = {
      {"ADD", Command::Add}, {"DEL", Command::Del},       {"CHECK", Command::Check},
      {"GC", Command::Gc},   {"STATUS", Command::Status}, {"VERSION", Command::Version}};
  for (const auto& [name, cmd] : verbs) {
    EXPECT_EQ(parseEnv(lookupIn(fullEnv(name))).command, cmd) << name;
  }
}

TEST(ParseEnv, MissingCommandIsInvalidEnv) {
  auto vars = fullEnv("ADD");
  vars.erase("CNI_COMMAND");
  const Error e = envError(vars);
  EXPECT_EQ(e.code(), Code::InvalidEnv);
  EXPECT_THAT(e.msg(), HasSubstr("CNI_COMMAND"));

  const Error empty = envError({{"CNI_COMMAND", ""}});
  EXPECT_EQ(empty.code(), Code::InvalidEnv);
  EXPECT_THAT(empty.msg(), HasSubstr("CNI_COMMAND"));
}

TEST(ParseEnv, UnknownCommandIsInvalidEnv) {
  for (const char* bad : {"add", "FOO", "ADD ", "DELETE"}) {
    const Error e = envError(fullEnv(bad));
    EXPECT_EQ(e.code(), Code::InvalidEnv) << bad;
    EXPECT_THAT(e.msg(), HasSubstr("CNI_COMMAND")) << bad;
  }
}

TEST(ParseEnv, UnknownCommandIsShownPrintably) {
  const Error e = envError(fullEnv(std::string("AD\nD\x01")));
  EXPECT_EQ(e.code(), Code::InvalidEnv);
  EXPECT_THAT(e.msg(), HasSubstr("AD\\x0aD\\x01"));
}

TEST(ParseEnv, VersionNeedsNothingElse) {
  const Env env = parseEnv(lookupIn({{"CNI_COMMAND", "VERSION"}}));
  EXPECT_EQ(env.command, Command::Version);
  EXPECT_TRUE(env.path.empty());
}

// Every variable a per-attachment verb needs, missing and present-but-empty, is code 4 naming it.
TEST(ParseEnv, PerAttachmentVerbsRequireTheirVariables) {
  struct Case {
    const char* command;
    const char* variable;
  };
  const Case cases[] = {
      {"ADD", "CNI_CONTAINERID"}, {"ADD", "CNI_NETNS"},         {"ADD", "CNI_IFNAME"},
      {"ADD", "CNI_PATH"},        {"CHECK", "CNI_CONTAINERID"}, {"CHECK", "CNI_NETNS"},
      {"CHECK", "CNI_IFNAME"},    {"CHECK", "CNI_PATH"},        {"DEL", "CNI_CONTAINERID"},
      {"DEL", "CNI_IFNAME"},      {"DEL", "CNI_PATH"},
  };
  for (const auto& c : cases) {
    auto vars = fullEnv(c.command);
    vars.erase(c.variable);
    const Error missing = envError(vars);
    EXPECT_EQ(missing.code(), Code::InvalidEnv) << c.command << " without " << c.variable;
    EXPECT_THAT(missing.msg(), HasSubstr(c.variable)) << c.command;
    EXPECT_THAT(missing.msg(), HasSubstr(c.command)) << "message should name the verb";

    vars[c.variable] = "";
    const Error empty = envError(vars);
    EXPECT_EQ(empty.code(), Code::InvalidEnv) << c.command << " with empty " << c.variable;
    EXPECT_THAT(empty.msg(), HasSubstr(c.variable)) << c.command;
  }
}

TEST(ParseEnv, DelAcceptsEmptyOrMissingNetns) {
  auto vars = fullEnv("DEL");
  vars["CNI_NETNS"] = "";
  Env env = parseEnv(lookupIn(vars));
  EXPECT_EQ(env.command, Command::Del);
  EXPECT_EQ(env.netns, "");
  EXPECT_EQ(env.containerId, "abc123");

  vars.erase("CNI_NETNS");
  env = parseEnv(lookupIn(vars));
  EXPECT_EQ(env.netns, "");
}

TEST(ParseEnv, NetnsThatCannotBePrintedIsInvalidEnvButNotOnDel) {
  // ADD prints CNI_NETNS in its result (the interface's sandbox), and JSON carries only UTF-8.
  for (const char* verb : {"ADD", "CHECK"}) {
    auto vars = fullEnv(verb);
    vars["CNI_NETNS"] = "/var/run/netns/pod\xff";
    const Error e = envError(vars);
    EXPECT_EQ(e.code(), Code::InvalidEnv) << verb;
    EXPECT_THAT(e.msg(), HasSubstr("CNI_NETNS \"/var/run/netns/pod\\xff\"")) << verb;
  }
  // DEL never uses the path: it must not fail on it.
  auto vars = fullEnv("DEL");
  vars["CNI_NETNS"] = "/var/run/netns/pod\xff";
  EXPECT_EQ(parseEnv(lookupIn(vars)).netns, "/var/run/netns/pod\xff");
}

TEST(ParseEnv, GcAndStatusNeedOnlyPath) {
  for (const char* verb : {"GC", "STATUS"}) {
    const Env env = parseEnv(lookupIn({{"CNI_COMMAND", verb}, {"CNI_PATH", "/opt/cni/bin"}}));
    EXPECT_EQ(env.path, "/opt/cni/bin") << verb;
    EXPECT_TRUE(env.containerId.empty()) << verb;
    EXPECT_TRUE(env.ifname.empty()) << verb;

    const Error e = envError({{"CNI_COMMAND", verb}});
    EXPECT_EQ(e.code(), Code::InvalidEnv) << verb;
    EXPECT_THAT(e.msg(), HasSubstr("CNI_PATH")) << verb;
  }
}

TEST(ParseEnv, GcIgnoresInvalidPerAttachmentVariables) {
  // GC is not about one attachment; a leftover bogus CNI_IFNAME must not fail it.
  auto vars = fullEnv("GC");
  vars["CNI_IFNAME"] = "a/b";
  vars["CNI_CONTAINERID"] = "-bad";
  EXPECT_NO_THROW(parseEnv(lookupIn(vars)));
}

TEST(ParseEnv, InvalidContainerIdIsInvalidEnv) {
  for (const std::string& bad :
       std::vector<std::string>{"-abc", ".abc", "_abc", "abc/def", "abc def", "abc:1", "ab\ncd",
                                "ab$c", std::string(129, 'a')}) {
    auto vars = fullEnv("ADD");
    vars["CNI_CONTAINERID"] = bad;
    const Error e = envError(vars);
    EXPECT_EQ(e.code(), Code::InvalidEnv) << bad;
    EXPECT_THAT(e.msg(), HasSubstr("CNI_CONTAINERID")) << bad;
  }
  auto vars = fullEnv("ADD");
  vars["CNI_CONTAINERID"] = std::string(128, 'a');
  EXPECT_EQ(parseEnv(lookupIn(vars)).containerId.size(), 128u);
}

TEST(ParseEnv, InvalidIfnameIsInvalidEnv) {
  for (const std::string& bad :
       std::vector<std::string>{"a/b", "eth:0", "eth 0", "eth\t0", ".", "..", "eth\xff",
                                "eth\xc3\xa9", "abcdefghijklmnop" /* 16 */}) {
    auto vars = fullEnv("ADD");
    vars["CNI_IFNAME"] = bad;
    const Error e = envError(vars);
    EXPECT_EQ(e.code(), Code::InvalidEnv) << bad;
    EXPECT_THAT(e.msg(), HasSubstr("CNI_IFNAME")) << bad;
  }
}

TEST(ParseEnv, MalformedArgsIsInvalidEnvForEveryVerbButVersion) {
  for (const char* verb : {"ADD", "DEL", "CHECK", "GC", "STATUS"}) {
    auto vars = fullEnv(verb);
    vars["CNI_ARGS"] = "IgnoreUnknown=1;garbage";
    const Error e = envError(vars);
    EXPECT_EQ(e.code(), Code::InvalidEnv) << verb;
    EXPECT_THAT(e.msg(), HasSubstr("CNI_ARGS")) << verb;
    EXPECT_THAT(e.msg(), HasSubstr("garbage")) << verb;
  }
  auto vars = fullEnv("VERSION");
  vars["CNI_ARGS"] = "garbage";
  EXPECT_NO_THROW(parseEnv(lookupIn(vars)));
}

TEST(ParseEnv, KubernetesArgs) {
  auto vars = fullEnv("ADD");
  vars["CNI_ARGS"] =
      "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;"
      "K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=0f3c-11";
  const Env env = parseEnv(lookupIn(vars));
  EXPECT_EQ(env.arg("IgnoreUnknown"), "1");
  EXPECT_EQ(env.arg("K8S_POD_NAMESPACE"), "default");
  EXPECT_EQ(env.arg("K8S_POD_NAME"), "web-0");
  EXPECT_EQ(env.arg("K8S_POD_INFRA_CONTAINER_ID"), "abc123");
  EXPECT_EQ(env.arg("K8S_POD_UID"), "0f3c-11");
  EXPECT_EQ(env.arg("K8S_POD_IP"), std::nullopt);
  EXPECT_EQ(env.arg("k8s_pod_name"), std::nullopt) << "keys are case-sensitive";
}

TEST(ParseCniArgs, SplitsPairsInOrder) {
  const auto pairs = parseCniArgs("A=1;B=two;C=");
  ASSERT_EQ(pairs.size(), 3u);
  EXPECT_EQ(pairs[0], (std::pair<std::string, std::string>{"A", "1"}));
  EXPECT_EQ(pairs[1], (std::pair<std::string, std::string>{"B", "two"}));
  EXPECT_EQ(pairs[2], (std::pair<std::string, std::string>{"C", ""}));
}

TEST(ParseCniArgs, EmptyAndStraySeparators) {
  EXPECT_TRUE(parseCniArgs("").empty());
  EXPECT_TRUE(parseCniArgs(";;").empty());
  const auto pairs = parseCniArgs(";A=1;;B=2;");
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].first, "A");
  EXPECT_EQ(pairs[1].first, "B");
}

TEST(ParseCniArgs, ValueMayContainEquals) {
  const auto pairs = parseCniArgs("K=a=b=c");
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0].first, "K");
  EXPECT_EQ(pairs[0].second, "a=b=c");
}

TEST(ParseCniArgs, UnknownKeysAreKept) {
  // Tolerating keys we do not know is the caller's business; the parser must not drop them.
  const auto pairs = parseCniArgs("IgnoreUnknown=1;SOMETHING_NEW=x");
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[1].first, "SOMETHING_NEW");
}

TEST(ParseCniArgs, PairWithoutKeyOrEqualsIsInvalidEnv) {
  for (const char* bad : {"novalue", "A=1;B", "=value", "A=1;=2"}) {
    try {
      parseCniArgs(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::InvalidEnv) << bad;
      EXPECT_THAT(e.msg(), HasSubstr("CNI_ARGS")) << bad;
      EXPECT_THAT(e.msg(), HasSubstr("KEY=VALUE")) << bad;
    }
  }
}

TEST(ParseCniArgs, OversizedArgsAreRejectedNotTruncated) {
  const std::string limit = "K=" + std::string((std::size_t{64} * 1024) - 2, 'v');
  ASSERT_EQ(limit.size(), 64u * 1024u);
  const auto pairs = parseCniArgs(limit);
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0].second.size(), limit.size() - 2);

  try {
    parseCniArgs(limit + "v");
    ADD_FAILURE() << "accepted 64 KiB + 1 of CNI_ARGS";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::InvalidEnv);
    EXPECT_THAT(e.msg(), HasSubstr("CNI_ARGS"));
    EXPECT_THAT(e.msg(), HasSubstr("65537"));
  }
}

TEST(ParseCniArgs, MalformedPairIsShownPrintablyAndShortened) {
  try {
    parseCniArgs(std::string("bad\x1b") + std::string(200, 'x'));
    ADD_FAILURE() << "accepted a pair without '='";
  } catch (const Error& e) {
    EXPECT_THAT(e.msg(), HasSubstr("bad\\x1b"));
    EXPECT_THAT(e.msg(), HasSubstr("..."));
    EXPECT_LT(e.msg().size(), 200u) << e.msg();
  }
}

TEST(EnvArg, FirstOccurrenceWins) {
  Env env;
  env.argPairs = {{"K", "first"}, {"K", "second"}};
  EXPECT_EQ(env.arg("K"), "first");
  EXPECT_EQ(env.arg("missing"), std::nullopt);
}

TEST(ValidContainerId, Pattern) {
  for (const std::string& good :
       std::vector<std::string>{"a", "Z", "0", "abc123", "a.b-c_d", "0123456789abcdef", "a..",
                                "a--", std::string(128, 'f')}) {
    EXPECT_TRUE(validContainerId(good)) << good;
  }
  for (const std::string& bad : std::vector<std::string>{
           "", "-a", ".a", "_a", "a/b", "a b", "a:b", "a@b", "a\x01", "é", std::string(129, 'f')}) {
    EXPECT_FALSE(validContainerId(bad)) << bad;
  }
}

TEST(ValidNetworkName, RejectsPathsAndControlCharacters) {
  EXPECT_TRUE(validNetworkName("dualstack"));
  EXPECT_TRUE(validNetworkName("k8s-pod-network.v6"));
  EXPECT_TRUE(validNetworkName(std::string(64, 'n')));
  EXPECT_FALSE(validNetworkName(std::string(65, 'n'))) << "names are capped at 64";
  for (const char* bad : {"", "../x", "a/b", "..", ".", "/abs", "a\tb", "a\nb"}) {
    EXPECT_FALSE(validNetworkName(bad)) << bad;
  }
}

TEST(ValidIfname, Rules) {
  EXPECT_TRUE(validIfname("eth0"));
  EXPECT_TRUE(validIfname("a"));
  EXPECT_TRUE(validIfname("net1.100"));
  EXPECT_TRUE(validIfname("..."));
  EXPECT_TRUE(validIfname(".a"));
  EXPECT_TRUE(validIfname("abcdefghijklmno")) << "15 bytes is the kernel's limit (IFNAMSIZ-1)";
  EXPECT_FALSE(validIfname("abcdefghijklmnop")) << "16 bytes";
  EXPECT_FALSE(validIfname(""));
  EXPECT_FALSE(validIfname("."));
  EXPECT_FALSE(validIfname(".."));
  EXPECT_FALSE(validIfname("a/b"));
  EXPECT_FALSE(validIfname("eth0:1"));
  EXPECT_FALSE(validIfname("eth 0"));
  EXPECT_FALSE(validIfname("eth\t0"));
  EXPECT_FALSE(validIfname("eth0\n"));
  EXPECT_FALSE(validIfname(std::string("et\0h", 4)));
  EXPECT_FALSE(validIfname("eth\x7f"));
  // Bytes the kernel would take but JSON cannot carry (not UTF-8), and UTF-8 beyond ASCII.
  EXPECT_FALSE(validIfname("eth\xff"));
  EXPECT_FALSE(validIfname("eth\xa0"));
  EXPECT_FALSE(validIfname("eth\xc3\xa9"));
  EXPECT_TRUE(validIfname("~!@#$%^&*()_+-="));
}

TEST(ValidNetnsPath, Rules) {
  EXPECT_TRUE(validNetnsPath("/var/run/netns/cni-1234"));
  EXPECT_TRUE(validNetnsPath("/proc/4242/ns/net"));
  EXPECT_TRUE(validNetnsPath("/run/netns/a pod"));
  EXPECT_TRUE(validNetnsPath("relative/netns"));
  EXPECT_FALSE(validNetnsPath(""));
  EXPECT_FALSE(validNetnsPath("/run/netns/\xff"));
  EXPECT_FALSE(validNetnsPath("/run/netns/caf\xc3\xa9"));
  EXPECT_FALSE(validNetnsPath("/run/netns/a\nb"));
  EXPECT_FALSE(validNetnsPath("/run/netns/a\x7f"));
  EXPECT_TRUE(validNetnsPath("/" + std::string(4095, 'n')));
  EXPECT_FALSE(validNetnsPath("/" + std::string(4096, 'n')));
}

}  // namespace
}  // namespace dualstack::cni
