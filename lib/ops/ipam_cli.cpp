#include "dualstack/ops/ipam_cli.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualstack/cni/env.hpp"
#include "dualstack/cni/error.hpp"
#include "dualstack/ipam/commands.hpp"
#include "dualstack/ipam/config.hpp"
#include "dualstack/ops/store_ops.hpp"

namespace dualstack::ops {

using cni::Code;
using cni::Error;

namespace {

constexpr std::string_view kUsage =
    R"(Usage: dualstack-ipam COMMAND [OPTIONS]

dualstack-ipam is a CNI IPAM plugin: container runtimes run it with CNI_COMMAND set. Run by
hand, it inspects and repairs the address store (every command takes the store's lock):

  list     [--network N] [--json]
           every allocation: network, address, container ID, interface, age
  verify   [--network N] [--config FILE]
           checks that the per-address files and the index agree, that the store holds nothing
           else, and (with --config) that every address lies in the config's ranges; prints one
           line per problem and exits 1 when there is any
  release  --network N --container-id ID --ifname IF
           releases one attachment's addresses, as a CNI DEL of that attachment would
  gc       --network N [--cache-dir DIR | --live FILE] [--dry-run] [--force]
           releases every allocation that no live attachment holds, as a CNI GC would; the live
           attachments are read from the runtime's libcni result cache (DIR/results/ or DIR
           itself, default /var/lib/cni) or from FILE, a JSON list of
           {"containerID": ..., "ifname": ...}
  help     this text          version   the version (also --help, --version)

Options:
  --data-dir D   the store's data directory (default /var/lib/cni/networks, or the config's)
  --config FILE  a conflist or plugin config: its network name, ipam.dataDir and ranges
  --network N    one network (list and verify default to every network under the data dir)
  --json         (list) one JSON list instead of a table
  --dry-run      (gc) print what would be released, change nothing
  --force        (gc) release even when the cache lists no live attachment of the network

Exit status: 0 success, 1 failure or problems found, 2 bad usage.
)";

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string command;
  std::optional<std::string> dataDir, network, config, containerId, ifname, cacheDir, live;
  bool json = false, dryRun = false, force = false;
};

Options parseArgs(int argc, char** argv) {
  Options o;
  const std::map<std::string, std::optional<std::string> Options::*> valued = {
      {"--data-dir", &Options::dataDir}, {"--network", &Options::network},
      {"--config", &Options::config},    {"--container-id", &Options::containerId},
      {"--ifname", &Options::ifname},    {"--cache-dir", &Options::cacheDir},
      {"--live", &Options::live}};
  const std::map<std::string, bool Options::*> flags = {
      {"--json", &Options::json}, {"--dry-run", &Options::dryRun}, {"--force", &Options::force}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::optional<std::string> inlineValue;
    if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      inlineValue = arg.substr(eq + 1);
      arg.resize(eq);
    }
    if (arg == "--help" || arg == "-h") {
      o.command = "help";
    } else if (auto it = valued.find(arg); it != valued.end()) {
      if (!inlineValue) {
        if (i + 1 >= argc) throw UsageError(arg + " needs a value");
        inlineValue = argv[++i];
      }
      if (inlineValue->empty()) throw UsageError(arg + " needs a non-empty value");
      o.*(it->second) = *inlineValue;
    } else if (auto f = flags.find(arg); f != flags.end() && !inlineValue) {
      o.*(f->second) = true;
    } else if (arg.rfind('-', 0) == 0 || !o.command.empty()) {
      throw UsageError("unknown argument \"" + std::string(argv[i]) + "\"");
    } else {
      o.command = arg;
    }
  }
  return o;
}

// Which options each command accepts; anything else is a usage error rather than ignored.
void allowOnly(const Options& o, std::initializer_list<std::string_view> allowed) {
  const std::set<std::string_view> ok(allowed);
  const std::vector<std::pair<std::string_view, bool>> given = {
      {"--data-dir", o.dataDir.has_value()},
      {"--network", o.network.has_value()},
      {"--config", o.config.has_value()},
      {"--container-id", o.containerId.has_value()},
      {"--ifname", o.ifname.has_value()},
      {"--cache-dir", o.cacheDir.has_value()},
      {"--live", o.live.has_value()},
      {"--json", o.json},
      {"--dry-run", o.dryRun},
      {"--force", o.force}};
  for (const auto& [name, present] : given) {
    if (present && ok.count(name) == 0) {
      throw UsageError(std::string(name) + " does not apply to " + o.command);
    }
  }
}

// The store(s) a command works on: --config gives the network and data dir, options override.
struct Target {
  std::string dataDir;
  std::optional<std::string> network;
  std::optional<ConfigView> config;
};

Target target(const Options& o, bool needNetwork) {
  Target t;
  if (o.config) t.config = readConfigFile(*o.config);
  t.dataDir = o.dataDir  ? *o.dataDir
              : t.config ? t.config->dataDir
                         : std::string(ipam::kDefaultDataDir);
  // As ipam.dataDir: a relative one would name another store depending on the working directory.
  if (t.dataDir.front() != '/') {
    throw UsageError("--data-dir \"" + t.dataDir + "\" is not an absolute path");
  }
  if (o.network) {
    t.network = *o.network;
  } else if (t.config) {
    t.network = t.config->network;
  }
  if (needNetwork && !t.network) throw UsageError(o.command + " needs --network (or --config)");
  if (t.config && t.network != t.config->network) {
    throw UsageError("--network " + *t.network + " is not the network of " + t.config->path + " (" +
                     t.config->network + ")");
  }
  return t;
}

std::vector<std::string> networksOf(const Target& t) {
  if (t.network) return {*t.network};
  return networksIn(t.dataDir);
}

std::string age(std::optional<std::int64_t> since, std::int64_t now) {
  if (!since) return "?";
  const std::int64_t s = std::max<std::int64_t>(0, now - *since);
  if (s < 120) return std::to_string(s) + "s";
  if (s < 120 * 60) return std::to_string(s / 60) + "m";
  if (s < 48 * 3600) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string utc(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int cmdList(const Options& o) {
  allowOnly(o, {"--data-dir", "--network", "--config", "--json"});
  const Target t = target(o, false);
  std::vector<Listed> rows;
  for (const auto& n : networksOf(t)) {
    auto part = listAllocations(t.dataDir, n);
    rows.insert(rows.end(), part.begin(), part.end());
  }
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : rows) {
      nlohmann::json j = {{"network", r.network}, {"address", r.address.str()}};
      j["containerID"] = r.owner ? nlohmann::json(r.owner->containerId) : nlohmann::json(nullptr);
      j["ifname"] = r.owner ? nlohmann::json(r.owner->ifname) : nlohmann::json(nullptr);
      if (r.allocatedAt) {
        j["allocated"] = utc(*r.allocatedAt);
        j["ageSeconds"] = std::max<std::int64_t>(0, now - *r.allocatedAt);
      }
      out.push_back(j);
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> table = {
      {"NETWORK", "ADDRESS", "CONTAINER ID", "IFNAME", "AGE"}};
  for (const auto& r : rows) {
    table.push_back({r.network, r.address.str(), r.owner ? r.owner->containerId : "(nobody)",
                     r.owner && !r.owner->ifname.empty() ? r.owner->ifname : "-",
                     age(r.allocatedAt, now)});
  }
  std::vector<std::size_t> width(table.front().size(), 0);
  for (const auto& row : table) {
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (const auto& row : table) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
  return 0;
}

int cmdVerify(const Options& o) {
  allowOnly(o, {"--data-dir", "--network", "--config"});
  const Target t = target(o, false);
  std::size_t count = 0, stores = 0;
  for (const auto& n : networksOf(t)) {
    ++stores;
    for (const auto& p : verifyStore(t.dataDir, n, t.config ? &*t.config : nullptr)) {
      std::cout << p << "\n";
      ++count;
    }
  }
  if (count != 0) {
    std::cerr << "dualstack-ipam verify: " << count << (count == 1 ? " problem" : " problems")
              << " in " << t.dataDir << "\n";
    return 1;
  }
  std::cerr << "dualstack-ipam verify: " << stores << (stores == 1 ? " store" : " stores") << " in "
            << t.dataDir << ", no problems\n";
  return 0;
}

int cmdRelease(const Options& o) {
  allowOnly(o, {"--data-dir", "--network", "--config", "--container-id", "--ifname"});
  if (!o.containerId || !o.ifname) throw UsageError("release needs --container-id and --ifname");
  const Target t = target(o, true);
  if (!cni::validNetworkName(*t.network)) {
    throw Error(Code::InvalidConfig, "\"" + *t.network + "\" is not a valid network name");
  }
  if (!cni::validContainerId(*o.containerId)) {
    throw Error(Code::InvalidEnv,
                "--container-id \"" + *o.containerId + "\" is not a valid container ID");
  }
  if (!cni::validIfname(*o.ifname)) {
    throw Error(Code::InvalidEnv, "--ifname \"" + *o.ifname + "\" is not a valid interface name");
  }
  const cni::Attachment a{*o.containerId, *o.ifname};
  const auto released = ipam::releaseAttachment(t.dataDir, *t.network, a);
  const std::string store = t.dataDir + "/" + *t.network;
  if (released.empty()) {
    std::cout << a.containerId << "/" << a.ifname << " holds no address in " << store << "\n";
  }
  for (const auto& addr : released) {
    std::cout << "released " << addr.str() << " (" << a.containerId << "/" << a.ifname << ") from "
              << store << "\n";
  }
  return 0;
}

int cmdGc(const Options& o) {
  allowOnly(
      o, {"--data-dir", "--network", "--config", "--cache-dir", "--live", "--dry-run", "--force"});
  if (o.cacheDir && o.live) throw UsageError("gc takes --cache-dir or --live, not both");
  const Target t = target(o, true);
  const std::string cacheDir = o.cacheDir.value_or("/var/lib/cni");
  const auto live = o.live ? liveFromFile(*o.live) : liveFromResultCache(cacheDir, *t.network);
  const std::string store = t.dataDir + "/" + *t.network;
  if (live.empty() && !o.live && !o.force) {
    // An empty cache more likely means the wrong directory than a node without pods.
    const auto held = listAllocations(t.dataDir, *t.network);
    if (!held.empty()) {
      throw Error(Code::InvalidConfig,
                  "the result cache " + cacheDir + " lists no attachment of network " + *t.network +
                      ", so every one of the " + std::to_string(held.size()) + " allocations in " +
                      store +
                      " would be released; pass --force if no pod of this network is running");
    }
  }
  const GcOutcome r = gcStore(t.dataDir, *t.network, live, o.dryRun);
  const char* verb = o.dryRun ? "would release " : "released ";
  for (const auto& [addr, owner] : r.released) {
    std::cout << verb << addr.str() << " (" << (owner ? owner->str() : "held by nobody")
              << ") from " << store << "\n";
  }
  for (const auto& e : r.errors.errors()) std::cerr << "dualstack-ipam gc: " << e.msg() << "\n";
  std::cerr << "dualstack-ipam gc: " << live.size() << " live attachments; kept " << r.kept
            << " addresses, " << (o.dryRun ? "would release " : "released ") << r.released.size()
            << "\n";
  return r.errors.empty() ? 0 : 1;
}

}  // namespace

std::string_view ipamUsage() { return kUsage; }

int ipamCli(int argc, char** argv) {
  try {
    const Options o = parseArgs(argc, argv);
    if (o.command.empty()) {
      std::cerr << kUsage;
      return 2;
    }
    if (o.command == "help" || o.command == "--help" || o.command == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (o.command == "list") return cmdList(o);
    if (o.command == "verify") return cmdVerify(o);
    if (o.command == "release") return cmdRelease(o);
    if (o.command == "gc") return cmdGc(o);
    throw UsageError("unknown command \"" + o.command + "\"");
  } catch (const UsageError& e) {
    std::cerr << "dualstack-ipam: " << e.what() << "\n(dualstack-ipam --help lists the commands)\n";
    return 2;
  } catch (const Error& e) {
    std::cerr << "dualstack-ipam: " << e.msg() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "dualstack-ipam: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace dualstack::ops
