// The nftables table of one CNI network, shared by the plugin (ipMasq) and the node agent:
//
//   table inet dualstack_<network> {
//     set pods     { type ifname; }                     plugin: host veths of masqueraded pods
//     set except4  { type ipv4_addr; flags interval; }  plugin: node podCIDRs + ipMasqExcept
//     set except6  { type ipv6_addr; flags interval; }
//     set cluster4 { type ipv4_addr; flags interval; }  agent: every Node's podCIDRs
//     set cluster6 { type ipv6_addr; flags interval; }
//     chain postrouting { ... masquerade unless the destination is in except* or cluster* }
//   }
//
// The plugin creates cluster4/cluster6 empty when they are missing and never changes their
// elements; the agent creates the table and the two sets when the plugin has not, and replaces
// their elements. Both take the table's lock (an flock on lockPath(network)) around a change, so
// the plugin never removes the table while the agent fills it.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dualstack/ip/address.hpp"
#include "dualstack/nft/nftables.hpp"
#include "dualstack/sys/error.hpp"
#include "dualstack/sys/fd.hpp"
#include "dualstack/sys/lock.hpp"

namespace dualstack::nft {

// Throws sys::Error(InvalidConfig) unless `network` is a valid CNI network name
// ([a-zA-Z0-9][a-zA-Z0-9_.-]*); `what` starts the message ("ipMasq").
void checkNetwork(std::string_view network, std::string_view what);

// "dualstack_<network>" (family inet); names longer than 200 bytes are shortened with a hash.
std::string tableName(std::string_view network);
// "inet dualstack_<network>", as nft commands name it.
std::string qualifiedTable(std::string_view network);

inline constexpr const char* kCluster4 = "cluster4";
inline constexpr const char* kCluster6 = "cluster6";
// "add set <table> cluster4 { type ipv4_addr; flags interval; }\n" and the same for cluster6:
// creates them when missing, changes nothing when they exist.
std::string declareClusterSets(std::string_view network);

// /run/dualstack-cni/masq-<network>.lock. Never removed: unlinking a lock file others may be
// waiting on breaks flock.
std::string lockPath(std::string_view network);

// The table's lock, held for the object's lifetime. Waits at most `timeout` for another holder;
// then Error(TryAgainLater) naming the lock file. Error(IoFailure) when it cannot be opened.
class TableLock {
 public:
  explicit TableLock(std::string_view network, std::chrono::milliseconds timeout = sys::kLockWait);

 private:
  sys::Fd fd_;
};

// What the cluster sets hold; nullopt for a missing set (or a missing table).
struct ClusterSets {
  std::optional<std::vector<ip::Prefix>> v4, v6;
};

// Reads both sets (one `list set` each).
ClusterSets readClusterSets(Context& nft, std::string_view network);

// Makes the sets hold exactly `v4` and `v6` (normalized), creating the table and the sets when
// missing, in one transaction: readers never see a set half filled or emptied. `have` is what
// readClusterSets returned (sets already equal to the wanted ones are not written). Returns
// whether anything was written. Throws error() when nft refuses.
bool writeClusterSets(Context& nft, std::string_view network, const std::vector<ip::Prefix>& v4,
                      const std::vector<ip::Prefix>& v6, const ClusterSets& have);

}  // namespace dualstack::nft
