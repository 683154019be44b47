// What an operator does with an address store by hand (`dualstack-ipam list|verify|release|gc`),
// on top of ipam::DiskStore: every access takes the store lock and goes through the store code,
// so these commands are as safe to run next to a container runtime as an ADD or DEL is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dualstack/cni/config.hpp"
#include "dualstack/cni/error.hpp"
#include "dualstack/ip/address.hpp"
#include "dualstack/ipam/range.hpp"
#include "dualstack/ipam/store.hpp"

namespace dualstack::ops {

// What a network config file says about its IPAM: the network name, the store's dataDir and the
// ranges. Reads a conflist (the first plugin whose ipam.type is dualstack-ipam, else host-local)
// or a single plugin config. A Kubernetes API node source is only read from its cache. Throws
// cni::Error naming the file and the field.
struct ConfigView {
  std::string path;
  std::string network;
  std::string dataDir;
  std::vector<ipam::RangeSet> ranges;
};
ConfigView readConfigFile(const std::string& path);

// The networks that have a store under dataDir (sorted); Error(IoFailure) when dataDir cannot be
// read.
std::vector<std::string> networksIn(const std::string& dataDir);

struct Listed {
  std::string network;
  ip::Address address;
  std::optional<ipam::Owner> owner;         // nullopt: the record names nobody
  std::optional<std::int64_t> allocatedAt;  // seconds since the epoch
};
// Every allocation of <dataDir>/<network>, by address; empty when the store does not exist.
std::vector<Listed> listAllocations(const std::string& dataDir, const std::string& network);

// Problems of <dataDir>/<network>, one line each: auditStore(), and with `config` the
// addresses outside its ranges, reserved addresses (network, gateway, broadcast) and attachments
// holding more than one address of a range set. Error(IoFailure) when the store does not exist.
std::vector<std::string> verifyStore(const std::string& dataDir, const std::string& network,
                                     const ConfigView* config);

// The live attachments of `network` in libcni's result cache: `dir` is either the cache
// directory (CNI_CACHE_DIR, whose results/ is read) or the results directory itself. A file of
// this network that cannot be read is an error: guessing could release a live pod's address.
std::vector<cni::Attachment> liveFromResultCache(const std::string& dir,
                                                 const std::string& network);
// A JSON list of {"containerID": ..., "ifname": ...}, as in cni.dev/valid-attachments.
std::vector<cni::Attachment> liveFromFile(const std::string& path);

struct GcOutcome {
  std::vector<std::pair<ip::Address, std::optional<ipam::Owner>>> released;  // or would be
  std::size_t kept = 0;
  cni::ErrorList errors;
};
// Releases (with dryRun: only reports) every allocation of <dataDir>/<network> that no live
// attachment holds, by the rule of CNI GC, and removes temp files of crashed ADDs.
GcOutcome gcStore(const std::string& dataDir, const std::string& network,
                  const std::vector<cni::Attachment>& live, bool dryRun);

}  // namespace dualstack::ops
