// The node's podCIDRs and addresses as last read from the API server, kept on disk so that ADDs
// within the TTL, and ADDs while the API server is unreachable, need no request.
//
//   <dataDir>/.dualstack-k8s/<node name>.json     mode 0600, directory 0700
//   {"version": 1, "node": "worker-1", "kubeconfig": "/etc/cni/net.d/dualstack.kubeconfig",
//    "server": "https://192.168.10.2:6443", "fetchedAt": "2024-05-01T10:00:00.123Z",
//    "fetchedAtMs": 1714557600123, "podCIDRs": ["10.244.1.0/24", "fd00:10:244:1::/64"],
//    "addresses": [{"type": "InternalIP", "address": "192.168.10.5"}, ...]}
//
// One file per node name at the top of the dataDir: node info is per node, not per network, and
// a file inside <dataDir>/<network>/ would change that directory's times and make the ipam
// store rebuild its index. No network can be named ".dualstack-k8s" (names start with [a-zA-Z0-9]).
// Replaced atomically (temp file, fsync, rename); fetchedAtMs decides freshness, fetchedAt is
// for people. podCIDRs and addresses are those of the Node model (addresses that are IP
// addresses); files of older versions, which also kept the Hostname, read the same, and older
// versions read these.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "dualstack/k8s/api.hpp"

namespace dualstack::k8s {

struct CachedNode {
  Node node;
  std::string kubeconfig;  // the kubeconfig it was read with
  std::string server;
  std::chrono::system_clock::time_point fetchedAt;
};

std::string cachePath(const std::string& dataDir, const std::string& nodeName);

std::string formatCache(const CachedNode& c);
// Error(DecodeFailure) naming the file when the content is not a cache of ours.
CachedNode parseCache(std::string_view text, const std::string& path);

// nullopt when the file does not exist; Error for an unreadable or malformed one.
std::optional<CachedNode> readCache(const std::string& path);
// Creates the directory when missing. Error(IoFailure) naming the file.
void writeCache(const std::string& path, const CachedNode& c);

}  // namespace dualstack::k8s
