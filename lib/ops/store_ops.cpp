#include "dualstack/ops/store_ops.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <sstream>

#include "dualstack/cni/env.hpp"
#include "dualstack/cni/error.hpp"
#include "dualstack/cni/json.hpp"
#include "dualstack/ipam/allocator.hpp"
#include "dualstack/ipam/config.hpp"
#include "dualstack/ipam/disk_store.hpp"
#include "dualstack/ops/store_audit.hpp"
#include "dualstack/sys/fd.hpp"
#include "dualstack/sys/file.hpp"
#include "dualstack/sys/io.hpp"

namespace dualstack::ops {

using cni::Code;
using cni::Error;
using ipam::DiskStore;
using nlohmann::json;

namespace {

// Temp files of ADDs are this old before GC removes them (as the CNI GC verb does).
constexpr std::chrono::seconds kStaleTemp = sys::kStaleTempAge;
constexpr std::size_t kMaxFile = std::size_t{1} << 20;

std::string readTextFile(const std::string& path, std::string_view what) {
  std::string data;
  const sys::FileProblem p =
      sys::readRegularFileAt(AT_FDCWD, path, kMaxFile, sys::Links::Follow, data);
  if (p.err != 0 && p.err != EFBIG) {
    throw cni::errnoError(Code::IoFailure, "open " + std::string(what) + " " + path, p.err);
  }
  if (p) throw Error(Code::IoFailure, std::string(what) + " " + path + " " + p.describe());
  return data;
}

json parseJsonFile(const std::string& path, std::string_view what) {
  return cni::parseJson(readTextFile(path, what), std::string(what) + " " + path);
}

std::string storePath(const std::string& dataDir, const std::string& network) {
  return dataDir + (!dataDir.empty() && dataDir.back() == '/' ? "" : "/") + network;
}

void requireNetworkName(const std::string& network) {
  if (!cni::validNetworkName(network)) {
    throw Error(Code::InvalidConfig, "\"" + network +
                                         "\" is not a valid network name: it must match "
                                         "[a-zA-Z0-9][a-zA-Z0-9_.-]*");
  }
}

std::unique_ptr<DiskStore> openStore(const std::string& dataDir, const std::string& network,
                                     DiskStore::Mode mode) {
  requireNetworkName(network);
  return DiskStore::open(dataDir, network, mode);
}

// Names of the directory's entries (no "." and ".."), sorted.
std::vector<std::string> entryNames(const std::string& dir, std::string_view what) {
  const sys::Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::vector<sys::DirEntry> listed;
  const int err = fd ? sys::listDirAt(fd.get(), listed) : errno;
  if (err != 0)
    throw cni::errnoError(Code::IoFailure, "read " + std::string(what) + " " + dir, err);
  std::vector<std::string> names;
  names.reserve(listed.size());
  for (auto& e : listed) names.push_back(std::move(e.name));
  std::sort(names.begin(), names.end());
  return names;
}

bool isDirectory(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

cni::Attachment attachmentFrom(const json& j, const char* idKey, const char* ifKey,
                               const std::string& where) {
  if (!j.is_object() || !j.contains(idKey) || !j[idKey].is_string() || !j.contains(ifKey) ||
      !j[ifKey].is_string()) {
    throw Error(Code::DecodeFailure,
                where + " needs the strings \"" + idKey + "\" and \"" + ifKey + "\"");
  }
  cni::Attachment a{j[idKey].get<std::string>(), j[ifKey].get<std::string>()};
  if (!cni::validContainerId(a.containerId)) {
    throw Error(Code::DecodeFailure, where + "." + idKey + " is not a valid container ID");
  }
  if (!cni::validIfname(a.ifname)) {
    throw Error(Code::DecodeFailure, where + "." + ifKey + " is not a valid interface name");
  }
  return a;
}

}  // namespace

ConfigView readConfigFile(const std::string& path) {
  const json file = parseJsonFile(path, "network config");
  if (!file.is_object())
    throw Error(Code::DecodeFailure, "network config " + path + " is not a JSON object");
  // A conflist names the network and version at the top; each plugin inherits them.
  const json* plugin = nullptr;
  std::string where;
  if (file.contains("plugins")) {
    if (!file["plugins"].is_array())
      throw Error(Code::InvalidConfig, path + ": plugins is not a list");
    for (const char* wanted : {"dualstack-ipam", "host-local"}) {
      for (std::size_t i = 0; plugin == nullptr && i < file["plugins"].size(); ++i) {
        const json& p = file["plugins"][i];
        if (p.is_object() && p.contains("ipam") && p["ipam"].is_object() &&
            p["ipam"].value("type", "") == wanted) {
          plugin = &p;
          where = "plugins[" + std::to_string(i) + "]";
        }
      }
    }
  } else if (file.contains("ipam")) {
    plugin = &file;
  }
  if (plugin == nullptr) {
    throw Error(Code::InvalidConfig,
                path + " has no plugin whose ipam.type is dualstack-ipam or host-local");
  }
  json conf = *plugin;
  for (const char* key : {"name", "cniVersion"}) {
    if (file.contains(key)) conf[key] = file[key];
  }
  try {
    const cni::NetConf netconf = cni::parseNetConf(conf.dump(), cni::Command::Add);
    const ipam::IpamConfig cfg = ipam::parseIpamConfig(netconf, cni::Env{}, ipam::Scope::Check);
    return ConfigView{path, cfg.network, cfg.dataDir, ipam::rangeSets(cfg)};
  } catch (Error& e) {
    throw e.context(path + (where.empty() ? "" : " " + where));
  }
}

std::vector<std::string> networksIn(const std::string& dataDir) {
  std::vector<std::string> out;
  for (const auto& name : entryNames(dataDir, "data directory")) {
    // Dot names are ours (.dualstack-k8s, the node cache), not networks.
    if (cni::validNetworkName(name) && isDirectory(storePath(dataDir, name))) out.push_back(name);
  }
  return out;
}

std::vector<Listed> listAllocations(const std::string& dataDir, const std::string& network) {
  auto store = openStore(dataDir, network, DiskStore::Mode::ReadOnly);
  if (!store) return {};
  store->lock();
  std::vector<Listed> out;
  for (auto& [addr, owner] : store->list()) {
    out.push_back({network, addr, std::move(owner), store->allocatedAt(addr)});
  }
  store->commit();
  std::sort(out.begin(), out.end(),
            [](const Listed& a, const Listed& b) { return a.address < b.address; });
  return out;
}

namespace {

// The range set and range of `config` that hold addr, if any.
std::pair<const ipam::RangeSet*, const ipam::Range*> rangeOf(const ConfigView& config,
                                                             const ip::Address& addr) {
  for (const auto& set : config.ranges) {
    if (const ipam::Range* range = set.rangeFor(addr)) return {&set, range};
  }
  return {nullptr, nullptr};
}

// What the store holds against what `config` allows: addresses outside its ranges, reserved
// addresses, and attachments holding more than one address of a range set.
void configProblems(DiskStore& store, const ConfigView& config,
                    std::vector<std::string>& problems) {
  std::string ranges;
  for (const auto& set : config.ranges) ranges += (ranges.empty() ? "" : ", ") + set.str();
  std::map<std::pair<std::string, std::size_t>, std::vector<ip::Address>> perSet;
  for (const auto& [addr, owner] : store.list()) {
    const std::string file = store.path() + "/" + addr.str();
    const std::string who = owner ? "held by " + owner->str() : "held by nobody";
    const auto [set, range] = rangeOf(config, addr);
    if (range == nullptr) {
      problems.push_back(file + ": " + who + ", outside the ranges of " + config.path + " (" +
                         ranges + ")");
      continue;
    }
    if (range->isReserved(addr)) {
      problems.push_back(file + ": " + who + ", but " + addr.str() +
                         " is the network, gateway or broadcast address of " + range->str());
    }
    if (owner) perSet[{owner->str(), set->id}].push_back(addr);
  }
  for (const auto& [key, addrs] : perSet) {
    if (addrs.size() < 2) continue;
    std::string list;
    for (const auto& a : addrs) list += (list.empty() ? "" : ", ") + a.str();
    problems.push_back(store.path() + ": " + key.first + " holds " + std::to_string(addrs.size()) +
                       " addresses of one range set (" + list + "); one is leaked");
  }
}

}  // namespace

std::vector<std::string> verifyStore(const std::string& dataDir, const std::string& network,
                                     const ConfigView* config) {
  auto store = openStore(dataDir, network, DiskStore::Mode::ReadOnly);
  if (!store) throw Error(Code::IoFailure, "no address store at " + storePath(dataDir, network));
  store->lock();
  std::vector<std::string> problems = auditStore(*store, kStaleTemp);
  if (config != nullptr) configProblems(*store, *config, problems);
  store->commit();
  return problems;
}

std::vector<cni::Attachment> liveFromResultCache(const std::string& dir,
                                                 const std::string& network) {
  requireNetworkName(network);
  const std::string results = isDirectory(dir + "/results") ? dir + "/results" : dir;
  if (!isDirectory(results)) {
    throw Error(Code::IoFailure, "libcni result cache " + results +
                                     " does not exist: is this the runtime's cache directory "
                                     "(CNI_CACHE_DIR, /var/lib/cni by default)?");
  }
  std::vector<cni::Attachment> live;
  const std::string ours = network + "-";
  for (const auto& name : entryNames(results, "libcni result cache")) {
    const std::string path = results + "/" + name;
    const bool mine = name.compare(0, ours.size(), ours) == 0;
    json j;
    try {
      j = parseJsonFile(path, "cached result");
    } catch (const Error& e) {
      // Another network's file (e.g. a half-written one) does not matter; one of ours might be a
      // live pod.
      if (!mine) continue;
      throw Error(Code::IoFailure, e.msg() + "; refusing to guess whether that pod is live");
    }
    if (!j.is_object() || !j.contains("networkName") || !j["networkName"].is_string()) {
      if (!mine) continue;
      throw Error(Code::DecodeFailure, "cached result " + path + " has no networkName");
    }
    if (j["networkName"].get<std::string>() != network) continue;
    live.push_back(attachmentFrom(j, "containerId", "ifName", "cached result " + path));
  }
  return live;
}

std::vector<cni::Attachment> liveFromFile(const std::string& path) {
  const json j = parseJsonFile(path, "live attachment list");
  if (!j.is_array()) {
    throw Error(Code::DecodeFailure, "live attachment list " + path +
                                         " must be a JSON list of {\"containerID\", \"ifname\"}");
  }
  std::vector<cni::Attachment> live;
  for (std::size_t i = 0; i < j.size(); ++i) {
    live.push_back(
        attachmentFrom(j[i], "containerID", "ifname", path + "[" + std::to_string(i) + "]"));
  }
  return live;
}

GcOutcome gcStore(const std::string& dataDir, const std::string& network,
                  const std::vector<cni::Attachment>& live, bool dryRun) {
  GcOutcome out;
  auto store =
      openStore(dataDir, network, dryRun ? DiskStore::Mode::ReadOnly : DiskStore::Mode::Existing);
  if (!store) return out;
  store->lock();
  const auto all = store->list();
  std::map<ip::Address, std::optional<ipam::Owner>> owners(all.begin(), all.end());
  const auto byAddress = [](const auto& a, const auto& b) { return a.first < b.first; };
  if (dryRun) {
    for (const auto& [addr, owner] : all) {
      if (ipam::keptByGc(owner, live)) {
        ++out.kept;
      } else {
        out.released.emplace_back(addr, owner);
      }
    }
    store->commit();
    std::sort(out.released.begin(), out.released.end(), byAddress);
    return out;
  }
  // The same work as the CNI GC verb.
  const ipam::GcResult r = ipam::collectGarbage(live, *store);
  for (const auto& addr : r.released) out.released.emplace_back(addr, owners[addr]);
  std::sort(out.released.begin(), out.released.end(), byAddress);
  out.kept = all.size() - r.released.size() - r.errors.size();
  out.errors = r.errors;
  try {
    store->removeStaleTemps(kStaleTemp);
  } catch (const Error& e) {
    out.errors.add(e);
  }
  try {
    store->commit();
  } catch (const Error& e) {
    out.errors.add(e);
  }
  return out;
}

}  // namespace dualstack::ops
