// Shared by the kill, storm and hostile-store tests: the reaping of orphaned plugin processes, and
// a reader of the on-disk store that does not go through the plugin's own code. The plugin
// processes themselves (testing::PluginProcess) come from tests/support.
#pragma once

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
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

using testing::PluginProcess;

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
