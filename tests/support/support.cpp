#include "support/support.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>

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
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return "";
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

int sweepStaleNetns() {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/run/netns", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("dst", 0) != 0) continue;
    const auto dash = name.find('-');
    if (dash == std::string::npos || dash == 3) continue;
    const std::string digits = name.substr(3, dash - 3);
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    const auto pid = static_cast<pid_t>(std::stol(digits));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    if (shell("ip netns del " + name + " 2>/dev/null") == 0) ++removed;
  }
  return removed;
}

TestNetns::TestNetns(std::string_view what) : name_(uniqueName(what)) {
  static std::once_flag swept;
  std::call_once(swept, [] { sweepStaleNetns(); });
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

constexpr std::size_t kMaxOutput = std::size_t{64} << 20;

pid_t startPlugin(const std::string& binary, const EnvMap& env, StdFds fds,
                  const std::optional<std::string>& netnsPath, const sigset_t* childMask) {
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
    ::setpgid(0, 0);
    if (childMask != nullptr) ::pthread_sigmask(SIG_SETMASK, childMask, nullptr);
    ::dup2(fds.in, 0);
    ::dup2(fds.out, 1);
    ::dup2(fds.err, 2);
    if (nsFd >= 0 && ::setns(nsFd, CLONE_NEWNET) != 0) _exit(126);
    ::execve(binary.c_str(), argv, childEnv.envp());
    _exit(127);
  }
  if (nsFd >= 0) ::close(nsFd);
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  return pid;
}

RunResult runPlugin(const std::string& binary, const EnvMap& env, const std::string& input,
                    const std::optional<std::string>& netnsPath,
                    std::chrono::milliseconds timeout) {
  int inPipe[2], outPipe[2], errPipe[2];
  if (::pipe2(inPipe, O_CLOEXEC) || ::pipe2(outPipe, O_CLOEXEC) || ::pipe2(errPipe, O_CLOEXEC)) {
    throw std::runtime_error("pipe failed");
  }
  // A child that exits without reading all of its stdin must not kill the test with SIGPIPE.
  sigset_t pipeSet, oldMask;
  ::sigemptyset(&pipeSet);
  ::sigaddset(&pipeSet, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipeSet, &oldMask);

  const pid_t pid =
      startPlugin(binary, env, {inPipe[0], outPipe[1], errPipe[1]}, netnsPath, &oldMask);
  ::close(inPipe[0]);
  ::close(outPipe[1]);
  ::close(errPipe[1]);
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) throw std::runtime_error(std::string("pidfd_open: ") + std::strerror(errno));
  for (const int fd : {inPipe[1], outPipe[0], errPipe[0]}) ::fcntl(fd, F_SETFL, O_NONBLOCK);

  RunResult r;
  int fds[3] = {outPipe[0], errPipe[0], input.empty() ? -1 : inPipe[1]};
  if (input.empty()) ::close(inPipe[1]);
  std::size_t written = 0;
  char buf[8192];
  // Reads what the pipe holds now, a pipe's worth at most: a writer that never stops must not
  // keep the loop from looking at the clock.
  const auto drain = [&](int i) {
    for (std::size_t budget = std::size_t{1} << 20; budget > 0;) {
      const ssize_t n = ::read(fds[i], buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
        budget -= std::min(budget, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || errno != EAGAIN) {
        ::close(fds[i]);
        fds[i] = -1;
      }
      return;
    }
  };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool exited = false;
  while (!exited) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || r.out.size() + r.err.size() > kMaxOutput) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      r.timedOut = true;
      ADD_FAILURE() << binary << " did not finish within " << timeout.count()
                    << " ms or wrote more than 64 MiB; it was killed with its process group";
      break;
    }
    pollfd p[4] = {
        {fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}, {fds[2], POLLOUT, 0}, {pidfd, POLLIN, 0}};
    if (::poll(p, 4, static_cast<int>(left.count())) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[2] >= 0 && p[2].revents != 0) {
      const ssize_t w = ::write(fds[2], input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      if (written == input.size() || (w < 0 && errno != EAGAIN && errno != EINTR)) {
        ::close(fds[2]);
        fds[2] = -1;
      }
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i] >= 0 && p[i].revents != 0) drain(i);
    }
    exited = (p[3].revents & POLLIN) != 0;
  }
  // What the child wrote before it exited is in the pipes; whatever it started and left holding
  // them is not waited for.
  for (int i = 0; i < 2; ++i) {
    if (fds[i] >= 0) drain(i);
  }
  for (const int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ::close(pidfd);
  const timespec zero{0, 0};
  while (::sigtimedwait(&pipeSet, nullptr, &zero) == SIGPIPE) {
  }
  ::pthread_sigmask(SIG_SETMASK, &oldMask, nullptr);
  r.exitCode = r.timedOut ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

PluginProcess::PluginProcess(const std::string& binary, const EnvMap& env, const std::string& input,
                             const std::optional<std::string>& netnsPath) {
  char inName[] = "/tmp/dshard-in-XXXXXX";
  char outName[] = "/tmp/dshard-out-XXXXXX";
  const int in = ::mkstemp(inName);
  out_ = ::mkstemp(outName);
  if (in >= 0) ::unlink(inName);
  if (out_ >= 0) ::unlink(outName);
  if (in < 0 || out_ < 0) {
    if (in >= 0) ::close(in);
    throw std::runtime_error("mkstemp failed");
  }
  const bool written =
      ::write(in, input.data(), input.size()) == static_cast<ssize_t>(input.size());
  const int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  try {
    if (!written) throw std::runtime_error("write of plugin input failed");
    ::lseek(in, 0, SEEK_SET);
    pid_ = startPlugin(binary, env, {in, out_, devnull}, netnsPath);
  } catch (...) {
    ::close(in);
    ::close(devnull);
    throw;
  }
  ::close(in);
  ::close(devnull);
}

PluginProcess::~PluginProcess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  if (out_ >= 0) ::close(out_);
}

void PluginProcess::kill() const { ::kill(pid_, SIGKILL); }

PluginProcess::Outcome PluginProcess::wait() {
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  Outcome o;
  o.killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
  o.exitCode = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  char buf[8192];
  ssize_t n;
  ::lseek(out_, 0, SEEK_SET);
  while ((n = ::read(out_, buf, sizeof buf)) > 0) o.out.append(buf, static_cast<std::size_t>(n));
  return o;
}

LockHolder::LockHolder(const std::string& path) {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = ::fork();
  if (pid_ == 0) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) _exit(1);
    if (::write(ready[1], "x", 1) != 1) _exit(1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char c = 0;
  const bool locked = pid_ > 0 && ::read(ready[0], &c, 1) == 1;
  ::close(ready[0]);
  if (!locked) {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    throw std::runtime_error("could not hold the lock " + path);
  }
}

LockHolder::~LockHolder() {
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

bool processGone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  // "pid (comm) S ...": the state follows the last ')', as comm may hold anything.
  const auto paren = line.rfind(')');
  return paren == std::string::npos || line.compare(paren + 1, 3, " Z ") == 0;
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

std::vector<std::string> resultCidrs(const RunResult& r) {
  std::vector<std::string> out;
  const nlohmann::json j = r.json();
  if (!j.is_object() || !j.contains("ips")) return out;
  for (const auto& ipc : j["ips"]) out.push_back(ipc["address"].get<std::string>());
  return out;
}

std::set<std::string> allocationFiles(const std::string& networkDir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(networkDir)) {
    const auto n = e.path().filename().string();
    if (e.is_regular_file() && n != "lock" && n.rfind("last_reserved_ip.", 0) != 0) out.insert(n);
  }
  return out;
}

std::string nestedJson(std::size_t depth, bool objects, std::string_view inner) {
  const std::string_view open = objects ? R"({"a":)" : "[";
  const char close = objects ? '}' : ']';
  std::string text;
  text.reserve(depth * (open.size() + 1) + inner.size());
  for (std::size_t i = 0; i < depth; ++i) text += open;
  text += inner;
  text.append(depth, close);
  return text;
}

std::map<std::string, std::string> snapshotTree(const std::string& dir) {
  std::map<std::string, std::string> files;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return files;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const auto rel = fs::relative(it->path(), dir).string();
    const fs::file_status st = it->symlink_status(ec);
    if (fs::is_directory(st)) {
      files[rel + "/"] = "";
    } else if (fs::is_regular_file(st)) {
      files[rel] = readFile(it->path().string());
    } else if (fs::is_symlink(st)) {
      files[rel] = "<a symlink to " + fs::read_symlink(it->path(), ec).string() + ">";
    } else {
      files[rel] = fs::is_fifo(st) ? "<a FIFO>" : "<a special file>";
    }
  }
  return files;
}

}  // namespace dualstack::testing
