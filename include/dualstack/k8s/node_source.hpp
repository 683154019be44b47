// The node's podCIDRs and addresses from the Kubernetes API, with a cache under the dataDir:
//
//   "node": {"kubeconfig": "/etc/cni/net.d/dualstack.kubeconfig",
//            "name": "worker-1",     (default: $K8S_NODE_NAME, else the host name in lower case)
//            "timeout": "2s",        (a request's limit; "500ms", "2s", "1m" or seconds; default
//            2s) "cacheTTL": "60s"}      (how long a read is used without asking again; default
//            60s)
//
// ADD and STATUS (Access::Api) use the cached copy while it is younger than cacheTTL, else ask
// the API server and refresh the cache, and fall back to the cached copy of any age (with a
// warning on stderr) when the server cannot be reached. CHECK (Access::CacheOnly) only reads the
// cache. DEL and GC need no node information at all.
//
// podCIDRs never change once kube-controller-manager has set them, so a long TTL is safe for
// them; addresses (which decide the order of a result's ips) may change, hence the default 60s.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "dualstack/k8s/api.hpp"
#include "dualstack/k8s/cache.hpp"
#include "dualstack/sys/env.hpp"

namespace dualstack::k8s {

struct NodeApiConfig {
  std::string kubeconfig;  // absolute path
  std::string name;
  std::string nameSource;  // "ipam.node.name", "K8S_NODE_NAME" or "the host name"
  std::chrono::milliseconds timeout{2000};
  std::chrono::milliseconds cacheTTL{60000};
};

// Whether a "node" config object selects the API (it has "kubeconfig").
bool isNodeApiConfig(const nlohmann::json& node);
// The process environment, as a sys::EnvLookup.
std::optional<std::string> processEnv(const char* name);
// Parses the object; `env` looks up K8S_NODE_NAME. Error(InvalidConfig) naming the field.
NodeApiConfig parseNodeApiConfig(const nlohmann::json& node, std::string_view where,
                                 const sys::EnvLookup& env = processEnv);
// A duration: a number of seconds, or Go's form ("1.5s", "500ms", "1m30s"). Error(InvalidConfig)
// naming `field`.
std::chrono::milliseconds parseDuration(const nlohmann::json& value, const std::string& field);
// Lower-case RFC 1123 subdomain, as Kubernetes requires of node names.
bool validNodeName(std::string_view name);

enum class Access {
  Api,        // ADD, STATUS: fresh cache, else the API, else (unreachable) a stale cache
  CacheOnly,  // CHECK: the cached copy, never the API
};

using Warn = std::function<void(const std::string&)>;
// "dualstack-ipam: warning: <msg>" on stderr.
void warnOnStderr(const std::string& msg);

class ApiNodeSource {
 public:
  ApiNodeSource(NodeApiConfig cfg, const std::string& dataDir, Warn warn = warnOnStderr);

  // The node with at least one podCIDR. Errors: those of getNode() (ApiUnavailable only when
  // there is no cached copy); Error(TryAgainLater) when the node has no podCIDRs yet, or with
  // CacheOnly when nothing is cached.
  Node read(Access access) const;
  // "node \"worker-1\" from the Kubernetes API (kubeconfig /etc/...)"
  std::string describe() const;
  const NodeApiConfig& config() const { return cfg_; }
  const std::string& cacheFile() const { return cacheFile_; }

 private:
  std::optional<CachedNode> cached() const;

  NodeApiConfig cfg_;
  std::string cacheFile_;
  Warn warn_;
};

}  // namespace dualstack::k8s
