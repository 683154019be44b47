// Finding a delegate plugin on CNI_PATH and running it, with tiny shell-script plugins.
#include "dualstack/cni/delegate.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "dualstack/cni/error.hpp"
#include "dualstack/sys/fd.hpp"
#include "support/support.hpp"

namespace dualstack::cni {
namespace {

using dualstack::testing::TempDir;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

void writeFile(const std::string& path, const std::string& content, mode_t mode = 0644) {
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << content;
  }
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

using dualstack::testing::readFile;

void writePlugin(const std::string& path, const std::string& body) {
  writeFile(path, "#!/bin/sh\n" + body + "\n", 0755);
}

// Sets process environment variables for one test and restores them afterwards: delegate()
// passes the process environment on, as a plugin exec'd by a runtime would.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::map<std::string, std::optional<std::string>>& vars) {
    for (const auto& [k, v] : vars) {
      const char* old = std::getenv(k.c_str());
      saved_[k] = old ? std::optional<std::string>(old) : std::nullopt;
      set(k, v);
    }
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : saved_) set(k, v);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  static void set(const std::string& k, const std::optional<std::string>& v) {
    if (v)
      ::setenv(k.c_str(), v->c_str(), 1);
    else
      ::unsetenv(k.c_str());
  }
  std::map<std::string, std::optional<std::string>> saved_;
};

Env envWithPath(const std::string& path) {
  Env env;
  env.command = Command::Add;
  env.containerId = "c1";
  env.netns = "/var/run/netns/c1";
  env.ifname = "eth0";
  env.path = path;
  return env;
}

Error delegateError(std::string_view type, Command command, const Env& env,
                    std::string_view config) {
  try {
    delegate(type, command, env, config);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "delegate did not throw";
  return Error(Code::Internal, "<no error>");
}

Error findError(std::string_view type, std::string_view path) {
  try {
    findPlugin(type, path);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "findPlugin(" << type << ") did not throw";
  return Error(Code::Internal, "<no error>");
}

bool sigpipeBlocked() {
  sigset_t mask;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  return ::sigismember(&mask, SIGPIPE) == 1;
}

bool sigpipePending() {
  sigset_t pending;
  ::sigpending(&pending);
  return ::sigismember(&pending, SIGPIPE) == 1;
}

// Fails the whole process (visibly) instead of hanging when a pipe exchange deadlocks.
class Watchdog {
 public:
  explicit Watchdog(unsigned seconds) { ::alarm(seconds); }
  ~Watchdog() { ::alarm(0); }
};

const char* kConfig = R"({"cniVersion":"1.0.0","name":"net1","type":"fake"})";

// ---- findPlugin

// The error of a delegate named `fake` whose shell script is `body`, asked `command` on kConfig
// (a failed expectation if it succeeds).
Error fakeDelegateError(const std::string& body, Command command = Command::Add) {
  TempDir dir;
  writePlugin(dir.file("fake"), body);
  return delegateError("fake", command, envWithPath(dir.path()), kConfig);
}

TEST(FindPlugin, TypeWithSlashIsInvalidConfig) {
  TempDir dir;
  writePlugin(dir.file("fake"), "exit 0");
  for (const char* bad : {"a/b", "/bin/sh", "../fake", "./fake", "fake/", ".", ".."}) {
    const Error e = findError(bad, dir.path());
    EXPECT_EQ(e.code(), Code::InvalidConfig) << bad;
    EXPECT_THAT(e.msg(), HasSubstr("type")) << bad;
  }
}

TEST(FindPlugin, EmptyTypeIsInvalidConfig) {
  TempDir dir;
  const Error e = findError("", dir.path());
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_THAT(e.msg(), HasSubstr("type"));
}

TEST(FindPlugin, NotFoundNamesTheSearchPath) {
  TempDir a, b;
  const std::string path = a.path() + ":" + b.path();
  const Error e = findError("missing-plugin", path);
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_THAT(e.msg(), HasSubstr("missing-plugin"));
  EXPECT_THAT(e.msg(), HasSubstr(a.path()));
  EXPECT_THAT(e.msg(), HasSubstr(b.path()));
  EXPECT_THAT(e.msg(), HasSubstr("CNI_PATH"));
}

TEST(FindPlugin, EmptyPathFindsNothing) {
  const Error e = findError("sh", "");
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_THAT(e.msg(), HasSubstr("sh"));
}

TEST(FindPlugin, FirstMatchOnPathWins) {
  TempDir a, b;
  writePlugin(a.file("fake"), "exit 0");
  writePlugin(b.file("fake"), "exit 0");
  EXPECT_EQ(findPlugin("fake", a.path() + ":" + b.path()), a.file("fake"));
  EXPECT_EQ(findPlugin("fake", b.path() + ":" + a.path()), b.file("fake"));
}

TEST(FindPlugin, SkipsEmptyEntriesAndDirsWithoutIt) {
  TempDir a, b;
  writePlugin(b.file("fake"), "exit 0");
  EXPECT_EQ(findPlugin("fake", "::" + a.path() + "::" + b.path() + ":"), b.file("fake"));
}

TEST(FindPlugin, SkipsNonExecutablesAndDirectories) {
  TempDir a, b, c;
  writeFile(a.file("fake"), "#!/bin/sh\nexit 0\n", 0644);
  ASSERT_EQ(::mkdir(b.file("fake").c_str(), 0755), 0);
  writePlugin(c.file("fake"), "exit 0");
  EXPECT_EQ(findPlugin("fake", a.path() + ":" + b.path() + ":" + c.path()), c.file("fake"));
}

// ---- delegate

TEST(Delegate, SuccessReturnsParsedStdout) {
  TempDir dir;
  const json result = json::parse(
      R"({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.5/24","gateway":"10.0.0.1"}],"dns":{}})");
  writePlugin(dir.file("fake"), "cat >/dev/null\nprintf '%s\\n' '" + result.dump() + "'");
  EXPECT_EQ(delegate("fake", Command::Add, envWithPath(dir.path()), kConfig), result);
}

TEST(Delegate, EmptyStdoutIsNull) {
  TempDir dir;
  writePlugin(dir.file("fake"), "cat >/dev/null\nexit 0");
  EXPECT_TRUE(delegate("fake", Command::Del, envWithPath(dir.path()), kConfig).is_null());
}

TEST(Delegate, NonJsonOutputOnSuccessIsDecodeFailure) {
  const Error e = fakeDelegateError("cat >/dev/null\necho 'all good!'");
  EXPECT_EQ(e.code(), Code::DecodeFailure);
  EXPECT_THAT(e.msg(), HasSubstr("plugin fake"));
  EXPECT_THAT(e.msg(), HasSubstr("not valid JSON"));
}

TEST(Delegate, UsesEnvPathNotProcessPath) {
  TempDir right, wrong;
  writePlugin(right.file("fake"), "cat >/dev/null\necho '{\"which\":\"right\"}'");
  writePlugin(wrong.file("fake"), "cat >/dev/null\necho '{\"which\":\"wrong\"}'");
  ScopedEnv scoped({{"CNI_PATH", wrong.path()}});
  EXPECT_EQ(delegate("fake", Command::Add, envWithPath(right.path()), kConfig)["which"], "right");
}

TEST(Delegate, NotFoundIsInvalidConfig) {
  TempDir dir;
  const Error e = delegateError("nothere", Command::Add, envWithPath(dir.path()), kConfig);
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_THAT(e.msg(), HasSubstr("nothere"));
  EXPECT_THAT(e.msg(), HasSubstr(dir.path()));
}

TEST(Delegate, OverridesCniCommandAndPassesTheRestOfTheEnvironment) {
  TempDir dir;
  writePlugin(dir.file("fake"), R"(cat >/dev/null
n=$(env | grep -c '^CNI_COMMAND=')
printf '{"command":"%s","n":%s,"cid":"%s","netns":"%s","ifname":"%s","args":"%s","path":"%s","other":"%s"}\n' \
  "$CNI_COMMAND" "$n" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH" "$DS_TEST_OTHER")");
  ScopedEnv scoped({{"CNI_COMMAND", "ADD"},
                    {"CNI_CONTAINERID", "c1"},
                    {"CNI_NETNS", "/var/run/netns/c1"},
                    {"CNI_IFNAME", "eth0"},
                    {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=p"},
                    {"CNI_PATH", dir.path()},
                    {"DS_TEST_OTHER", "kept"}});
  const Env env = envWithPath(dir.path());
  for (Command cmd : {Command::Add, Command::Del, Command::Check, Command::Gc, Command::Status}) {
    const json got = delegate("fake", cmd, env, kConfig);
    EXPECT_EQ(got["command"], commandName(cmd));
    EXPECT_EQ(got["n"], 1) << "exactly one CNI_COMMAND in the delegate's environment";
    EXPECT_EQ(got["cid"], "c1");
    EXPECT_EQ(got["netns"], "/var/run/netns/c1");
    EXPECT_EQ(got["ifname"], "eth0");
    EXPECT_EQ(got["args"], "IgnoreUnknown=1;K8S_POD_NAME=p");
    EXPECT_EQ(got["path"], dir.path());
    EXPECT_EQ(got["other"], "kept");
  }
}

TEST(Delegate, SetsCniCommandEvenWhenTheProcessHasNone) {
  TempDir dir;
  writePlugin(dir.file("fake"), R"(cat >/dev/null; printf '{"command":"%s"}' "$CNI_COMMAND")");
  ScopedEnv scoped({{"CNI_COMMAND", std::nullopt}});
  EXPECT_EQ(delegate("fake", Command::Check, envWithPath(dir.path()), kConfig)["command"], "CHECK");
}

TEST(Delegate, StdinIsReceivedVerbatim) {
  TempDir dir;
  const std::string captured = dir.file("stdin.bin");
  writePlugin(dir.file("fake"), "cat >'" + captured + "'");
  // Whitespace, key order, escapes and non-ASCII exactly as given: delegates get the config as is.
  const std::string config =
      "{\n  \"type\": \"fake\",\t\"cniVersion\" : \"1.0.0\",\n  \"name\":\"n\\u00e9t\","
      " \"z\":\"\xc3\xa9\", \"a\":[1.50, 2e3]\n}\n\n";
  EXPECT_TRUE(delegate("fake", Command::Add, envWithPath(dir.path()), config).is_null());
  EXPECT_EQ(readFile(captured), config);
}

TEST(Delegate, EmptyStdinIsClosedNotLeftOpen) {
  TempDir dir;
  // `cat` only finishes if stdin reaches EOF.
  writePlugin(dir.file("fake"), "n=$(cat | wc -c); printf '{\"bytes\":%s}' \"$n\"");
  Watchdog watchdog(60);
  EXPECT_EQ(delegate("fake", Command::Add, envWithPath(dir.path()), "")["bytes"], 0);
}

TEST(Delegate, LargeStdinAndStdoutDoNotDeadlock) {
  TempDir dir;
  // Echoes stdin to stdout as it reads: both pipes fill up at once with a naive implementation.
  writePlugin(dir.file("fake"), "exec cat");
  json config = json::parse(kConfig);
  config["padding"] = std::string(std::size_t{200} * 1024, 'p');
  const std::string text = config.dump();
  ASSERT_GT(text.size(), 200u * 1024u);
  Watchdog watchdog(60);
  EXPECT_EQ(delegate("fake", Command::Add, envWithPath(dir.path()), text), config);
}

TEST(Delegate, PluginThatIgnoresLargeStdinAndFails) {
  TempDir dir;
  // Exits without reading: our writes then hit a closed pipe. That must not kill us (SIGPIPE);
  // the delegate's error is what matters.
  writePlugin(dir.file("fake"),
              R"(echo '{"cniVersion":"1.0.0","code":7,"msg":"bad ipam config"}'; exit 1)");
  const std::string big =
      std::string(R"({"pad":")") + std::string(std::size_t{512} * 1024, 'x') + "\"}";
  Watchdog watchdog(60);
  const Error e = delegateError("fake", Command::Add, envWithPath(dir.path()), big);
  EXPECT_EQ(e.code(), Code::InvalidConfig);
  EXPECT_THAT(e.msg(), HasSubstr("bad ipam config"));
}

TEST(Delegate, PluginThatIgnoresLargeStdinAndSucceeds) {
  TempDir dir;
  writePlugin(dir.file("fake"), R"(echo '{"ok":true}')");
  const std::string big =
      std::string(R"({"pad":")") + std::string(std::size_t{512} * 1024, 'x') + "\"}";
  Watchdog watchdog(60);
  EXPECT_EQ(delegate("fake", Command::Add, envWithPath(dir.path()), big)["ok"], true);
  EXPECT_FALSE(sigpipeBlocked()) << "the signal mask must be restored";
  EXPECT_FALSE(sigpipePending()) << "the SIGPIPE we caused must not be left pending";
}

TEST(Delegate, FailurePropagatesCodeMessageAndDetails) {
  const Error e = fakeDelegateError(R"(cat >/dev/null
echo '{"cniVersion":"1.0.0","code":11,"msg":"store is locked","details":"pid 42 holds it"}'
echo 'some log line' >&2
exit 1)");
  EXPECT_EQ(e.code(), Code::TryAgainLater);
  EXPECT_EQ(e.msg(), "plugin fake: store is locked");
  EXPECT_EQ(e.details(), "pid 42 holds it");
}

TEST(Delegate, PluginSpecificCodesPassThrough) {
  const Error e = fakeDelegateError(
      R"(cat >/dev/null; echo '{"code":101,"msg":"range 10.0.0.0/30 is exhausted"}'; exit 2)");
  EXPECT_EQ(static_cast<int>(e.code()), 101);
  EXPECT_THAT(e.msg(), HasSubstr("plugin fake: "));
  EXPECT_THAT(e.msg(), HasSubstr("range 10.0.0.0/30 is exhausted"));
  EXPECT_EQ(e.details(), "");
}

TEST(Delegate, NonJsonFailureIsIoFailure) {
  const Error e = fakeDelegateError("cat >/dev/null\necho 'panic: runtime error'\nexit 3");
  EXPECT_EQ(e.code(), Code::IoFailure);
  EXPECT_THAT(e.msg(), HasSubstr("plugin fake"));
  EXPECT_THAT(e.msg(), HasSubstr("exit status 3"));
}

TEST(Delegate, FailureWithoutOutputIsIoFailure) {
  const Error e = fakeDelegateError("cat >/dev/null\nexit 4", Command::Del);
  EXPECT_EQ(e.code(), Code::IoFailure);
  EXPECT_THAT(e.msg(), HasSubstr("exit status 4"));
}

TEST(Delegate, FailureJsonWithoutCodeIsIoFailure) {
  for (const char* out : {R"({"msg":"no code"})", R"({"code":"7","msg":"code is a string"})",
                          R"({"code":7})", R"([7,"msg"])"}) {
    const Error e = fakeDelegateError(std::string("cat >/dev/null; echo '") + out + "'; exit 1");
    EXPECT_EQ(e.code(), Code::IoFailure) << out;
    EXPECT_THAT(e.msg(), HasSubstr("exit status 1")) << out;
  }
}

TEST(Delegate, DeeplyNestedOutputIsDecodeFailure) {
  TempDir dir;
  const std::string deep =
      R"({"cniVersion":"1.0.0","dns":{"x":)" + dualstack::testing::nestedJson(100000) + "}}";
  std::ofstream(dir.file("out.json")) << deep;
  writePlugin(dir.file("fake"), "cat >/dev/null\ncat '" + dir.file("out.json") + "'");
  const Error e = delegateError("fake", Command::Add, envWithPath(dir.path()), kConfig);
  EXPECT_EQ(e.code(), Code::DecodeFailure);
  EXPECT_THAT(e.msg(), HasSubstr("the output of plugin fake is nested deeper than 128 levels"));

  // A failing delegate's error is still read, whatever is nested in it.
  std::ofstream(dir.file("out.json"), std::ios::trunc)
      << R"({"code":11,"msg":"busy","details":)" << dualstack::testing::nestedJson(100000) << "}";
  writePlugin(dir.file("fake"), "cat >/dev/null\ncat '" + dir.file("out.json") + "'\nexit 1");
  const Error busy = delegateError("fake", Command::Add, envWithPath(dir.path()), kConfig);
  EXPECT_EQ(busy.code(), Code::TryAgainLater);
  EXPECT_EQ(busy.msg(), "plugin fake: busy");
}

TEST(Delegate, ErrorCodeOutOfRangeIsIoFailure) {
  for (const char* code : {"0", "-1", "-7", "2147483648", "4294967303", "18446744073709551615"}) {
    const Error e = fakeDelegateError(std::string("cat >/dev/null; echo '{\"code\":") + code +
                                      R"(,"msg":"odd"}'; exit 1)");
    EXPECT_EQ(e.code(), Code::IoFailure) << code;
    EXPECT_THAT(e.msg(), HasSubstr(std::string("error code ") + code + ", which is out of range"))
        << code;
    EXPECT_THAT(e.msg(), HasSubstr("odd")) << code;
  }
  const Error big =
      fakeDelegateError(R"(cat >/dev/null; echo '{"code":2147483647,"msg":"big"}'; exit 1)");
  EXPECT_EQ(static_cast<int>(big.code()), 2147483647);
}

TEST(Delegate, KilledBySignalIsAnError) {
  const Error e = fakeDelegateError("cat >/dev/null\nkill -KILL $$");
  EXPECT_EQ(e.code(), Code::IoFailure);
  EXPECT_THAT(e.msg(), HasSubstr("plugin fake"));
  EXPECT_THAT(e.msg(), HasSubstr("signal 9"));
}

// fn() with this process's stderr pointed at `file`; its result, or null when it threw.
json withStderrTo(const std::string& file, const std::function<json()>& fn) {
  std::fflush(stderr);
  const sys::Fd saved(::dup(STDERR_FILENO));
  const sys::Fd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!saved || !fd || ::dup2(fd.get(), STDERR_FILENO) < 0) {
    ADD_FAILURE() << "cannot point stderr at " << file;
    return nullptr;
  }
  json got;
  try {
    got = fn();
  } catch (...) {
  }
  ::dup2(saved.get(), STDERR_FILENO);
  return got;
}

TEST(Delegate, StderrIsPassedThrough) {
  TempDir dir;
  writePlugin(dir.file("fake"), "cat >/dev/null\necho 'delegate says hello' >&2\necho '{}'");
  const std::string errFile = dir.file("stderr.txt");
  const json got = withStderrTo(
      errFile, [&] { return delegate("fake", Command::Add, envWithPath(dir.path()), kConfig); });
  EXPECT_EQ(got, json::object());
  EXPECT_THAT(readFile(errFile), HasSubstr("delegate says hello"));
}

TEST(Delegate, StdoutIsNotMixedWithStderr) {
  TempDir dir;
  writePlugin(dir.file("fake"),
              "cat >/dev/null\necho 'noise' >&2\necho '{\"a\":1}'\necho 'more' >&2");
  const json got = delegate("fake", Command::Add, envWithPath(dir.path()), kConfig);
  EXPECT_EQ(got, json::parse(R"({"a":1})"));
}

TEST(Delegate, UnexecutableScriptIsIoFailure) {
  TempDir dir;
  // Executable bit set but no interpreter line and not ELF: exec fails with ENOEXEC.
  writeFile(dir.file("fake"), "this is not a program\n", 0755);
  const Error e = delegateError("fake", Command::Add, envWithPath(dir.path()), kConfig);
  EXPECT_EQ(e.code(), Code::IoFailure);
  EXPECT_THAT(e.msg(), HasSubstr(dir.file("fake")));
  EXPECT_THAT(e.msg(), Not(HasSubstr("signal")));
}

// ---- bounds: a delegate that never answers, floods, or leaves a child holding its pipes

std::size_t openFds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

pid_t pidIn(const std::string& file) {
  std::ifstream in(file);
  pid_t pid = -1;
  in >> pid;
  return pid;
}

Error delegateError(std::string_view type, const Env& env, const DelegateLimits& limits) {
  try {
    delegate(type, Command::Add, env, kConfig, limits);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "delegate did not throw";
  return Error(Code::Internal, "<no error>");
}

TEST(DelegateBounds, ADelegateThatNeverAnswersIsKilledAtTheTimeout) {
  TempDir dir;
  writePlugin(dir.file("fake"),
              "cat >/dev/null\necho $$ >" + dir.file("self.pid") + "\nexec sleep 3600");
  const std::size_t fdsBefore = openFds();
  DelegateLimits limits;
  limits.timeout = std::chrono::milliseconds(700);
  Watchdog watchdog(60);
  const auto start = std::chrono::steady_clock::now();
  const Error e = delegateError("fake", envWithPath(dir.path()), limits);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(e.code(), Code::TryAgainLater);
  EXPECT_EQ(e.msg(),
            "plugin fake did not finish ADD within 700 ms; it was killed with what it started");
  EXPECT_GE(took, std::chrono::milliseconds(700));
  EXPECT_LT(took, std::chrono::seconds(10));
  EXPECT_TRUE(dualstack::testing::processGone(pidIn(dir.file("self.pid"))));
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a child of ours is left unreaped";
  EXPECT_EQ(openFds(), fdsBefore) << "a descriptor leaked";
}

TEST(DelegateBounds, ADelegateWhoseChildKeepsThePipesIsKilledWithItAtTheTimeout) {
  TempDir dir;
  // The delegate closes its own ends but a child it started keeps them, and runs on.
  writePlugin(dir.file("fake"), "cat >/dev/null\nsleep 3600 &\necho $! >" + dir.file("child.pid") +
                                    "\necho $$ >" + dir.file("self.pid") +
                                    "\nexec sleep 3600 >/dev/null 2>&1");
  DelegateLimits limits;
  limits.timeout = std::chrono::milliseconds(500);
  Watchdog watchdog(60);
  const Error e = delegateError("fake", envWithPath(dir.path()), limits);
  EXPECT_EQ(e.code(), Code::TryAgainLater);
  EXPECT_TRUE(dualstack::testing::processGone(pidIn(dir.file("self.pid"))));
  EXPECT_TRUE(dualstack::testing::processGone(pidIn(dir.file("child.pid"))));
}

TEST(DelegateBounds, AnAnswerIsTakenWhenTheDelegateExitsWhateverItsChildrenHold) {
  TempDir dir;
  writePlugin(dir.file("fake"), "cat >/dev/null\nsleep 3600 &\necho $! >" + dir.file("child.pid") +
                                    "\necho '{\"ok\":true}'");
  const std::size_t fdsBefore = openFds();
  Watchdog watchdog(60);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(delegate("fake", Command::Add, envWithPath(dir.path()), kConfig)["ok"], true);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_TRUE(dualstack::testing::processGone(pidIn(dir.file("child.pid"))))
      << "what the delegate left in its process group must be stopped";
  EXPECT_EQ(openFds(), fdsBefore) << "a descriptor leaked";
}

TEST(DelegateBounds, FloodingStdoutIsStoppedAtTheCap) {
  TempDir dir;
  writePlugin(dir.file("fake"), "cat >/dev/null\necho $$ >" + dir.file("self.pid") + "\nexec yes");
  DelegateLimits limits;
  limits.maxStdout = 100'000;
  Watchdog watchdog(60);
  const Error e = delegateError("fake", envWithPath(dir.path()), limits);
  EXPECT_EQ(e.code(), Code::IoFailure);
  EXPECT_EQ(e.msg(),
            "plugin fake wrote more than 100000 bytes to stdout, more than any CNI result; "
            "it was killed");
  EXPECT_TRUE(dualstack::testing::processGone(pidIn(dir.file("self.pid"))));
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a child of ours is left unreaped";
}

TEST(DelegateBounds, StderrIsForwardedUpToItsCapThenNoted) {
  TempDir dir;
  writePlugin(dir.file("fake"),
              "cat >/dev/null\nhead -c 5000 /dev/zero | tr '\\0' e >&2\necho '{}'");
  const std::string errFile = dir.file("stderr.txt");
  DelegateLimits limits;
  limits.maxStderr = 1000;
  const json got = withStderrTo(errFile, [&] {
    return delegate("fake", Command::Add, envWithPath(dir.path()), kConfig, limits);
  });
  EXPECT_EQ(got, json::object());
  const std::string err = readFile(errFile);
  EXPECT_EQ(err, std::string(1000, 'e') +
                     "[plugin fake: 4000 more bytes of stderr dropped after 1000 bytes]\n");
}

}  // namespace
}  // namespace dualstack::cni
