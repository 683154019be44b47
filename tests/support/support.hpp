// Helpers shared by the test suites: temp dirs, throwaway network namespaces, and running a
// plugin binary the way a runtime does (env + stdin, stdout captured).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace dualstack::testing {

bool isRoot();
// Call at the top of a root-only test: skips loudly when not root.
#define DUALSTACK_REQUIRE_ROOT()                                                                   \
  do {                                                                                             \
    if (!::dualstack::testing::isRoot()) {                                                         \
      GTEST_SKIP() << "SKIPPED: this test needs root (network namespaces); run the suite as root"; \
    }                                                                                              \
  } while (0)

// A unique prefix for everything a test process creates: "dst<pid>".
const std::string& runPrefix();
// runPrefix() + "-" + a counter, for netns and file names.
std::string uniqueName(std::string_view what);

// Path of a built binary (dualstack, dualstack-ipam) or of a source file.
std::string binDir();
std::string binPath(std::string_view name);
std::string sourcePath(std::string_view rel);
// CNI_PATH for tests: our build output, then Debian's reference plugins. With
// DUALSTACK_TEST_IPAM=exec in the environment, execIpamDir() comes first.
std::string cniPath();
// Whether DUALSTACK_TEST_IPAM=exec: `dualstack` then execs dualstack-ipam instead of running its
// IPAM code in process, and ctest runs the plugin suite both ways.
bool ipamExecMode();
// A directory (made once per test process, removed at its exit) holding a copy of dualstack-ipam
// without its build ID: the same code, which `dualstack` finds on CNI_PATH but cannot tell is its
// own build, so it execs it.
const std::string& execIpamDir();

// The whole content of a regular file, byte for byte; "" when it cannot be read or is not a
// regular file (a FIFO is never opened).
std::string readFile(const std::string& path);
bool referencePluginsInstalled();

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// A named network namespace (/run/netns/<name>) deleted in the destructor, with lo up.
// Deletes the namespaces of earlier test processes that died without their cleanup (a test binary
// killed by a timeout or a signal): those named "dst<pid>-..." whose process is gone. Returns how
// many it deleted. TestNetns calls it once per process.
int sweepStaleNetns();

class TestNetns {
 public:
  explicit TestNetns(std::string_view what);
  ~TestNetns();
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;
  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }
  // Runs a shell command inside the namespace; returns its exit status, output in *out.
  int exec(const std::string& command, std::string* out = nullptr) const;
  // Deletes it early (e.g. to test DEL after the pod netns is gone).
  void remove();

 private:
  std::string name_;
  bool alive_ = false;
};

struct RunResult {
  int exitCode = -1;
  std::string out;
  std::string err;
  bool timedOut = false;        // killed (with its process group) after the runner's time limit
  nlohmann::json json() const;  // stdout parsed (null if empty or invalid)
};

using EnvMap = std::map<std::string, std::string>;

// A child's environment as execve(2) wants it: `env`, plus a default PATH unless env has one.
class ExecEnv {
 public:
  explicit ExecEnv(const EnvMap& env);
  ExecEnv(const ExecEnv&) = delete;
  ExecEnv& operator=(const ExecEnv&) = delete;
  char** envp() { return ptrs_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> ptrs_;
};

// How long runPlugin lets a plugin run: above every bound of the plugins themselves (a delegate
// may run 60 s), so that those bounds are what a test sees.
inline constexpr std::chrono::seconds kRunTimeout{120};

// Runs `binary` with exactly `env` (plus PATH) and `input` on stdin; when `netnsPath` is set the
// child enters that namespace first (the test process itself never leaves its own). The child
// runs in a process group of its own; past `timeout` (or 64 MiB of output) the group is killed,
// the test fails and the result says timedOut. Returns once the child has exited, even if something
// it started still holds its stdout or stderr.
RunResult runPlugin(const std::string& binary, const EnvMap& env, const std::string& input,
                    const std::optional<std::string>& netnsPath = std::nullopt,
                    std::chrono::milliseconds timeout = kRunTimeout);

// The descriptors a plugin child gets as its stdin, stdout and stderr.
struct StdFds {
  int in = -1;
  int out = -1;
  int err = -1;
};

// Starts `binary` with exactly `env` (plus PATH) and `fds` as its standard descriptors, in a
// process group of its own; when `netnsPath` is set the child enters that namespace first. The
// child starts with `childMask` as its signal mask when one is given, else with the caller's.
// Returns its pid; the caller reaps it. Both runners below start their plugins here.
pid_t startPlugin(const std::string& binary, const EnvMap& env, StdFds fds,
                  const std::optional<std::string>& netnsPath, const sigset_t* childMask = nullptr);

// One plugin invocation running in the background, for tests that kill plugins at any moment.
// Its stdout goes to a temp file (not a pipe), so a child never blocks on a full pipe and a kill
// never leaves a reader hanging; stderr goes to /dev/null. The process is reaped by wait() or,
// at the latest, killed and reaped by the destructor.
class PluginProcess {
 public:
  PluginProcess(const std::string& binary, const EnvMap& env, const std::string& input,
                const std::optional<std::string>& netnsPath);
  ~PluginProcess();
  PluginProcess(const PluginProcess&) = delete;
  PluginProcess& operator=(const PluginProcess&) = delete;

  // Safe at any time before wait(): an exited child stays a zombie until then, so the pid cannot
  // have been reused.
  void kill() const;

  struct Outcome {
    bool killed = false;  // died of SIGKILL
    int exitCode = -1;
    std::string out;
  };
  Outcome wait();

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  bool reaped_ = false;
};

// A process holding an exclusive flock on `path` (created if missing) until it is destroyed:
// the process is killed and reaped then. pid() is what /proc/locks shows as the holder.
class LockHolder {
 public:
  explicit LockHolder(const std::string& path);
  ~LockHolder();
  LockHolder(const LockHolder&) = delete;
  LockHolder& operator=(const LockHolder&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// Whether process `pid` is gone or a zombie: nothing of it runs any more.
bool processGone(pid_t pid);

// Polls `pred` until it holds or `limit` passes (a bound for a loaded machine, not a timing
// assertion: the wait ends as soon as the condition holds). Returns whether it held.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Runs a shell command, returns exit status and stdout.
int shell(const std::string& command, std::string* out = nullptr);

// Standard CNI env for one attachment.
EnvMap cniEnv(std::string_view command, std::string_view containerId, std::string_view netns,
              std::string_view ifname = "eth0", std::string_view args = "");

// The `address` (CIDR form) of each entry of a result's `ips`, in order; none when stdout holds
// no result.
std::vector<std::string> resultCidrs(const RunResult& r);
// The names of the per-IP files in a host-local network directory (e.g. "10.244.1.3"): every
// regular file but the lock and last_reserved_ip.N. Throws when the directory cannot be read.
std::set<std::string> allocationFiles(const std::string& networkDir);

// JSON text with `depth` levels of nesting around `inner`: arrays ("[[[0]]]"), or objects whose
// only key is "a" ({"a":{"a":0}}); for tests of the nesting limit.
std::string nestedJson(std::size_t depth, bool objects = false, std::string_view inner = "0");

// Every file under dir (relative path -> content), to compare the store before/after. Only
// regular files are read; anything else is recorded by its type ("<a FIFO>"), never opened.
std::map<std::string, std::string> snapshotTree(const std::string& dir);

}  // namespace dualstack::testing
