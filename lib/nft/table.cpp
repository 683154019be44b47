#include "dualstack/nft/table.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "dualstack/sys/error.hpp"
#include "dualstack/sys/file.hpp"
#include "dualstack/sys/hash.hpp"
#include "dualstack/sys/lock.hpp"

namespace dualstack::nft {

using sys::Code;
using sys::Error;

namespace {

constexpr const char* kLockDir = "/run/dualstack-cni";
// nftables names may be 255 bytes; lock file names 255. Longer network names are shortened with
// a hash of the whole name.
constexpr std::size_t kMaxVerbatimName = 200;

bool isAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string shortName(std::string_view network) {
  if (network.size() <= kMaxVerbatimName) return std::string(network);
  std::uint64_t h = sys::fnv1a64(network);
  std::string hex(16, '0');
  for (std::size_t i = 0; i < 16; ++i) {
    hex[15 - i] = "0123456789abcdef"[h & 0xf];
    h >>= 4;
  }
  return std::string(network.substr(0, kMaxVerbatimName - 17)) + "_" + hex;
}

}  // namespace

void checkNetwork(std::string_view network, std::string_view what) {
  const bool ok = !network.empty() && isAsciiAlnum(network.front()) &&
                  std::all_of(network.begin(), network.end(), [](char c) {
                    return isAsciiAlnum(c) || c == '_' || c == '.' || c == '-';
                  });
  if (!ok) {
    throw Error(Code::InvalidConfig, std::string(what) + ": network name \"" +
                                         std::string(network) +
                                         "\" is not valid (expected [a-zA-Z0-9][a-zA-Z0-9_.-]*)");
  }
}

std::string tableName(std::string_view network) { return "dualstack_" + shortName(network); }

std::string qualifiedTable(std::string_view network) { return "inet " + tableName(network); }

std::string declareClusterSets(std::string_view network) {
  const std::string t = qualifiedTable(network);
  return "add set " + t + " " + kCluster4 + " { type ipv4_addr; flags interval; }\n" + "add set " +
         t + " " + kCluster6 + " { type ipv6_addr; flags interval; }\n";
}

std::string lockPath(std::string_view network) {
  return std::string(kLockDir) + "/masq-" + shortName(network) + ".lock";
}

TableLock::TableLock(std::string_view network, std::chrono::milliseconds timeout) {
  const std::string path = lockPath(network);
  if (::mkdir(kLockDir, 0700) != 0 && errno != EEXIST) {
    throw sys::errnoError(Code::IoFailure, std::string("create ") + kLockDir, errno);
  }
  if (const sys::FileProblem p =
          sys::openRegularAt(AT_FDCWD, path, O_RDWR | O_CREAT, 0600, sys::Links::Refuse, fd_)) {
    throw Error(Code::IoFailure, "open lock file " + path + ": " + p.describe());
  }
  if (const int err = sys::lockExclusive(fd_.get(), timeout); err != 0) {
    if (err != ETIMEDOUT) throw sys::errnoError(Code::IoFailure, "lock " + path, err);
    const std::string holder = sys::lockHolder(fd_.get());
    throw Error(Code::TryAgainLater,
                "the masquerade lock " + path + " is held by " +
                    (holder.empty() ? "another process" : holder) +
                    " and was not released within " +
                    (timeout.count() % 1000 == 0 ? std::to_string(timeout.count() / 1000) + " s"
                                                 : std::to_string(timeout.count()) + " ms") +
                    "; try again later (a process that stays stuck holding it must be ended)");
  }
}

ClusterSets readClusterSets(Context& nft, std::string_view network) {
  const std::string t = qualifiedTable(network);
  ClusterSets out;
  for (const char* name : {kCluster4, kCluster6}) {
    // One command per run: libnftables 1.0.6 fetches only the named set for `list set`, while
    // several list commands in one buffer share a cache filter and fail with ENOENT.
    const auto items = listJson(nft, "list set " + t + " " + name);
    if (!items) continue;
    const nlohmann::json* set = findSet(*items);
    auto& slot = std::string_view(name) == kCluster4 ? out.v4 : out.v6;
    slot = set != nullptr ? setPrefixes(*set) : std::vector<ip::Prefix>{};
  }
  return out;
}

bool writeClusterSets(Context& nft, std::string_view network, const std::vector<ip::Prefix>& v4,
                      const std::vector<ip::Prefix>& v6, const ClusterSets& have) {
  const std::string t = qualifiedTable(network);
  std::string cmds;
  const auto sync = [&](const char* set, const char* type,
                        const std::optional<std::vector<ip::Prefix>>& current,
                        const std::vector<ip::Prefix>& wanted) {
    const std::vector<ip::Prefix> want = normalized(wanted);
    if (current && *current == want) return;
    if (current && !current->empty()) cmds += "flush set " + t + " " + set + "\n";
    // A set declaration with elements, not "add element": libnftables 1.0.6 lists every chain
    // and set of the ruleset before an "add element", but only the table for this form; both
    // reach the kernel as the same NEWSETELEM, after the flush in the same transaction.
    cmds += "add set " + t + " " + set + " { type " + type + "; flags interval; ";
    if (!want.empty()) cmds += "elements = { " + elementList(want) + " }; ";
    cmds += "}\n";
  };
  sync(kCluster4, "ipv4_addr", have.v4, v4);
  sync(kCluster6, "ipv6_addr", have.v6, v6);
  if (cmds.empty()) return false;
  cmds = "add table " + t + "\n" + cmds;
  if (!nft.run(cmds)) throw error("update the cluster podCIDR sets of table " + t, nft.error());
  return true;
}

}  // namespace dualstack::nft
