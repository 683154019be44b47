// Shared by the kill, storm and hostile-store tests: plugin processes that can be killed at any
// moment, and a reader of the on-disk store that does not go through the plugin's own code.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/support.hpp"

namespace dualstack::hardening {

namespace fs = std::filesystem;

// A positive integer from the environment (the soak raises the CI figures), else `fallback`.
inline int envInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  const int n = std::atoi(v);
  return n > 0 ? n : fallback;
}

// One plugin invocation running in the background. Its output goes to a temp file (not a pipe),
// so a child never blocks on a full pipe and a kill never leaves a reader hanging. The process is
// reaped by wait() or, at the latest, killed and reaped by the destructor.
class PluginProcess {
 public:
  PluginProcess(const std::string& binary, const testing::EnvMap& env, const std::string& input,
                const std::optional<std::string>& netnsPath) {
    char inName[] = "/tmp/dshard-in-XXXXXX";
    char outName[] = "/tmp/dshard-out-XXXXXX";
    const int in = ::mkstemp(inName);
    const int out = ::mkstemp(outName);
    if (in < 0 || out < 0) throw std::runtime_error("mkstemp failed");
    ::unlink(inName);
    ::unlink(outName);
    if (::write(in, input.data(), input.size()) != static_cast<ssize_t>(input.size())) {
      throw std::runtime_error("write of plugin input failed");
    }
    ::lseek(in, 0, SEEK_SET);
    out_ = out;
    testing::ExecEnv childEnv(env);
    std::string arg0 = binary;
    char* argv[] = {arg0.data(), nullptr};
    int nsFd = -1;
    if (netnsPath) {
      nsFd = ::open(netnsPath->c_str(), O_RDONLY | O_CLOEXEC);
      if (nsFd < 0) throw std::runtime_error("open " + *netnsPath + ": " + std::strerror(errno));
    }
    const int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(devnull, 2);
      if (nsFd >= 0 && ::setns(nsFd, CLONE_NEWNET) != 0) _exit(126);
      ::execve(binary.c_str(), argv, childEnv.envp());
      _exit(127);
    }
    ::close(in);
    ::close(devnull);
    if (nsFd >= 0) ::close(nsFd);
    if (pid_ < 0) throw std::runtime_error("fork failed");
  }
  ~PluginProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  PluginProcess(const PluginProcess&) = delete;
  PluginProcess& operator=(const PluginProcess&) = delete;

  // Safe at any time before wait(): an exited child stays a zombie until then, so the pid cannot
  // have been reused.
  void kill() const { ::kill(pid_, SIGKILL); }

  struct Outcome {
    bool killed = false;  // died of SIGKILL
    int exitCode = -1;
    std::string out;
  };
  Outcome wait() {
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

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  bool reaped_ = false;
};

// Makes this process the reaper of orphans (the IPAM child of a killed `dualstack` keeps running)
// and waits until every descendant has exited, so a round's leftovers never overlap the next.
inline void becomeSubreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }
inline void reapOrphans() {
  int st = 0;
  while (::waitpid(-1, &st, 0) > 0 || errno == EINTR) {
  }
}

struct Owner {
  std::string containerId;
  std::string ifname;
  bool operator<(const Owner& o) const {
    return containerId != o.containerId ? containerId < o.containerId : ifname < o.ifname;
  }
  bool operator==(const Owner& o) const = default;
};

// The store as host-local's layout defines it, read directly: per-IP files (name = address,
// content "<id>\r\n<ifname>"), index entries under .dualstack/, and every temp file anywhere.
struct StoreView {
  std::map<std::string, Owner> allocations;      // address -> owner
  std::map<Owner, std::set<std::string>> index;  // index entry -> its addresses
  std::vector<std::string> tempFiles;            // ".tmp-*" anywhere in the tree
  std::vector<std::string> unreadable;           // per-IP files not "<id>\r\n<if>"
};

inline StoreView readStore(const std::string& networkDir) {
  StoreView v;
  std::error_code ec;
  if (!fs::exists(networkDir, ec)) return v;
  for (const auto& e : fs::recursive_directory_iterator(networkDir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(".tmp-", 0) == 0) v.tempFiles.push_back(e.path().string());
  }
  for (const auto& e : fs::directory_iterator(networkDir)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || name == "lock" || name.rfind("last_reserved_ip", 0) == 0 ||
        name.rfind(".", 0) == 0) {
      continue;
    }
    const std::string content = testing::readFile(e.path());
    const auto sep = content.find("\r\n");
    if (sep == std::string::npos) {
      v.unreadable.push_back(name);
      continue;
    }
    v.allocations[name] = Owner{content.substr(0, sep), content.substr(sep + 2)};
  }
  const fs::path index = fs::path(networkDir) / ".dualstack";
  if (fs::exists(index, ec)) {
    for (const auto& e : fs::directory_iterator(index)) {
      const std::string name = e.path().filename().string();
      if (name == "state" || name.rfind(".tmp-", 0) == 0) continue;
      std::istringstream in(testing::readFile(e.path()));
      std::string line;
      Owner o;
      std::set<std::string> addrs;
      while (std::getline(in, line)) {
        if (line.rfind("containerID ", 0) == 0) o.containerId = line.substr(12);
        if (line.rfind("ifname ", 0) == 0) o.ifname = line.substr(7);
        if (line.rfind("address ", 0) == 0) addrs.insert(line.substr(8));
      }
      v.index[o] = addrs;
    }
  }
  return v;
}

// The index is a cache: entries may be missing (rebuilt on the next call), but an entry that is
// there must match the per-IP files exactly. Returns the disagreements, one per line.
inline std::string indexDisagreements(const StoreView& v) {
  std::map<Owner, std::set<std::string>> fromFiles;
  for (const auto& [addr, owner] : v.allocations) fromFiles[owner].insert(addr);
  std::string out;
  for (const auto& [owner, addrs] : v.index) {
    auto it = fromFiles.find(owner);
    const std::set<std::string> files =
        it == fromFiles.end() ? std::set<std::string>{} : it->second;
    if (files != addrs)
      out += "index entry " + owner.containerId + "/" + owner.ifname +
             " disagrees with the per-IP files\n";
  }
  return out;
}

// j[key] when it is a string, else "" (no json::value(): GCC's -Wnull-dereference trips on it).
inline std::string stringField(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "";
  const nlohmann::json& v = j.at(key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

inline std::vector<std::string> resultAddresses(const std::string& out) {
  std::vector<std::string> addrs;
  const auto j = nlohmann::json::parse(out, nullptr, false);
  if (!j.is_object() || !j.contains("ips") || !j["ips"].is_array()) return addrs;
  for (const auto& ipc : j["ips"]) {
    const std::string cidr = stringField(ipc, "address");
    addrs.push_back(cidr.substr(0, cidr.find('/')));
  }
  return addrs;
}

}  // namespace dualstack::hardening
