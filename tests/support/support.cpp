#include "support/support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>

namespace dualstack::testing {

namespace fs = std::filesystem;

bool isRoot() { return ::geteuid() == 0; }

const std::string& runPrefix() {
  static const std::string prefix = "dst" + std::to_string(::getpid());
  return prefix;
}

std::string uniqueName(std::string_view what) {
  static std::atomic<int> counter{0};
  return runPrefix() + "-" + std::string(what) + std::to_string(counter++);
}

std::string binDir() {
  if (const char* d = std::getenv("DUALSTACK_BIN_DIR")) return d;
  return DUALSTACK_BIN_DIR;
}
std::string binPath(std::string_view name) { return binDir() + "/" + std::string(name); }
std::string sourcePath(std::string_view rel) {
  return std::string(DUALSTACK_SOURCE_DIR) + "/" + std::string(rel);
}
std::string cniPath() {
  std::string path = binDir() + ":/usr/lib/cni";
  return ipamExecMode() ? execIpamDir() + ":" + path : path;
}

bool ipamExecMode() {
  const char* mode = std::getenv("DUALSTACK_TEST_IPAM");
  return mode != nullptr && std::string_view(mode) == "exec";
}

const std::string& execIpamDir() {
  static const TempDir dir;
  static const std::string path = [] {
    const std::string copy = dir.file("dualstack-ipam");
    std::string out;
    if (shell("objcopy --remove-section=.note.gnu.build-id '" + binPath("dualstack-ipam") + "' '" +
                  copy + "' 2>&1",
              &out) != 0 ||
        ::chmod(copy.c_str(), 0755) != 0) {
      throw std::runtime_error("cannot make a copy of dualstack-ipam without a build ID: " + out);
    }
    return dir.path();
  }();
  return path;
}
bool referencePluginsInstalled() { return ::access("/usr/lib/cni/host-local", X_OK) == 0; }

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / (runPrefix() + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

std::string readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

int shell(const std::string& command, std::string* out) {
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return -1;
  std::string data;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) data.append(buf, n);
  const int status = ::pclose(p);
  if (out != nullptr) *out = data;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TestNetns::TestNetns(std::string_view what) : name_(uniqueName(what)) {
  if (shell("ip netns add " + name_ + " 2>&1") != 0) {
    throw std::runtime_error("ip netns add " + name_ + " failed");
  }
  alive_ = true;
  exec("ip link set lo up");
}

TestNetns::~TestNetns() { remove(); }

void TestNetns::remove() {
  if (!alive_) return;
  alive_ = false;
  // Links inside go with the namespace; veth peers in other namespaces go with them.
  shell("ip netns del " + name_ + " 2>/dev/null");
}

int TestNetns::exec(const std::string& command, std::string* out) const {
  return shell("ip netns exec " + name_ + " sh -c '" + command + "' 2>&1", out);
}

nlohmann::json RunResult::json() const {
  if (out.empty()) return nullptr;
  return nlohmann::json::parse(out, nullptr, false);
}

ExecEnv::ExecEnv(const EnvMap& env) {
  for (const auto& [k, v] : env) strings_.push_back(k + "=" + v);
  if (env.find("PATH") == env.end()) strings_.emplace_back("PATH=/usr/sbin:/usr/bin:/sbin:/bin");
  for (auto& s : strings_) ptrs_.push_back(s.data());
  ptrs_.push_back(nullptr);
}

RunResult runPlugin(const std::string& binary, const EnvMap& env, const std::string& input,
                    const std::optional<std::string>& netnsPath) {
  int inPipe[2], outPipe[2], errPipe[2];
  if (::pipe2(inPipe, O_CLOEXEC) || ::pipe2(outPipe, O_CLOEXEC) || ::pipe2(errPipe, O_CLOEXEC)) {
    throw std::runtime_error("pipe failed");
  }
  ExecEnv childEnv(env);
  std::string arg0 = binary;
  char* argv[] = {arg0.data(), nullptr};
  int nsFd = -1;
  if (netnsPath) {
    nsFd = ::open(netnsPath->c_str(), O_RDONLY | O_CLOEXEC);
    if (nsFd < 0) throw std::runtime_error("open " + *netnsPath + ": " + std::strerror(errno));
  }

  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(inPipe[0], 0);
    ::dup2(outPipe[1], 1);
    ::dup2(errPipe[1], 2);
    if (nsFd >= 0 && ::setns(nsFd, CLONE_NEWNET) != 0) _exit(126);
    ::execve(binary.c_str(), argv, childEnv.envp());
    _exit(127);
  }
  if (nsFd >= 0) ::close(nsFd);
  ::close(inPipe[0]);
  ::close(outPipe[1]);
  ::close(errPipe[1]);
  RunResult r;
  // Inputs are small (< pipe buffer), so write first, then drain both outputs.
  size_t off = 0;
  while (off < input.size()) {
    const ssize_t w = ::write(inPipe[1], input.data() + off, input.size() - off);
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
  ::close(inPipe[1]);
  pollfd fds[2] = {{outPipe[0], POLLIN, 0}, {errPipe[0], POLLIN, 0}};
  int open = 2;
  char buf[8192];
  while (open > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

EnvMap cniEnv(std::string_view command, std::string_view containerId, std::string_view netns,
              std::string_view ifname, std::string_view args) {
  EnvMap env{{"CNI_COMMAND", std::string(command)},
             {"CNI_CONTAINERID", std::string(containerId)},
             {"CNI_NETNS", std::string(netns)},
             {"CNI_IFNAME", std::string(ifname)},
             {"CNI_PATH", cniPath()}};
  if (!args.empty()) env["CNI_ARGS"] = std::string(args);
  return env;
}

std::map<std::string, std::string> snapshotTree(const std::string& dir) {
  std::map<std::string, std::string> files;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return files;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it); it.increment(ec)) {
    const auto rel = fs::relative(it->path(), dir).string();
    if (it->is_directory()) {
      files[rel + "/"] = "";
    } else {
      files[rel] = readFile(it->path().string());
    }
  }
  return files;
}

}  // namespace dualstack::testing
