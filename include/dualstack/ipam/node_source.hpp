// Where dualstack-ipam learns the node's podCIDRs and addresses: the whole `ipam.node` section.
//
//   "node": {"podCIDRs": [...], "addresses": [...]}     inline
//        or {"file": "/etc/cni/node.json"}              a Node object as `kubectl get node -o json`
//                                                       prints it, read at every ADD/CHECK/STATUS
//        or {"kubeconfig": "/etc/cni/net.d/dualstack.kubeconfig",
//            "name": "worker-1",     (default: $K8S_NODE_NAME, else the host name in lower case)
//            "timeout": "2s",        (a request's limit; "500ms", "2s", "1m" or seconds; default
//            2s) "cacheTTL": "60s"}      (how long a read is used without asking again; default
//            60s)
//
// Each form parses into the one k8s::Node model through k8s::parseNode. A Node with an unusable
// value (a podCIDR that is no CIDR, an InternalIP that is no IP address) is refused, naming it.
//
// The Kubernetes API source: ADD and STATUS (Access::Api) use the cached copy (k8s/cache.hpp,
// under the dataDir) while it is younger than cacheTTL, else ask the API server and refresh the
// cache, and fall back to the cached copy of any age (with a warning on stderr) when the server
// cannot be reached. CHECK (Access::CacheOnly) only reads the cache. DEL and GC need no node
// information at all. podCIDRs never change once kube-controller-manager has set them, so a long
// TTL is safe for them; addresses (which decide the order of a result's ips) may change, hence
// the default 60s.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "dualstack/cni/env.hpp"
#include "dualstack/k8s/cache.hpp"
#include "dualstack/k8s/node.hpp"

namespace dualstack::ipam {

// Where the node's podCIDRs and addresses come from, chosen by makeNodeSource().
class NodeSource {
 public:
  virtual ~NodeSource() = default;
  // A Node with at least one podCIDR and no unusable value. Throws Error: InvalidConfig for bad
  // content, and for a source that cannot answer yet (file missing, no podCIDRs assigned yet)
  // TryAgainLater or IoFailure.
  virtual k8s::Node load() const = 0;
  virtual std::string describe() const = 0;
  // What messages put before a field of the loaded Node: "ipam.node." (giving
  // "ipam.node.podCIDRs[1]"), "node file /etc/cni/node.json: ".
  virtual std::string fieldPrefix() const = 0;
};

enum class Access {
  Api,        // ADD, STATUS: fresh cache, else the API, else (unreachable) a stale cache
  CacheOnly,  // CHECK: the cached copy, never the API
};

// From the config's "node" object; Error(InvalidConfig) naming the field. dataDir holds the
// Kubernetes API source's cache; `access` says whether that source may ask the API server.
std::unique_ptr<NodeSource> makeNodeSource(const nlohmann::json& node, std::string_view where,
                                           const std::string& dataDir, Access access);

// Error(InvalidConfig) naming the first unusable value of `node`, its field after `fieldPrefix`.
void requireUsable(const k8s::Node& node, std::string_view fieldPrefix);

struct NodeApiConfig {
  std::string kubeconfig;  // absolute path
  std::string name;
  std::string nameSource;  // "ipam.node.name", "K8S_NODE_NAME" or "the host name"
  std::chrono::milliseconds timeout{2000};
  std::chrono::milliseconds cacheTTL{60000};
};

// Parses the object; `env` looks up K8S_NODE_NAME. Error(InvalidConfig) naming the field.
NodeApiConfig parseNodeApiConfig(const nlohmann::json& node, std::string_view where,
                                 const cni::EnvLookup& env = cni::processEnv);

using Warn = std::function<void(const std::string&)>;
// "dualstack-ipam: warning: <msg>" on stderr.
void warnOnStderr(const std::string& msg);

// The Kubernetes API source's policy over k8s::getNode and the node cache.
class ApiNodeSource {
 public:
  ApiNodeSource(NodeApiConfig cfg, const std::string& dataDir, Warn warn = warnOnStderr);

  // The node with at least one podCIDR and no unusable value. Errors: those of getNode()
  // (ApiUnavailable only when there is no cached copy); Error(TryAgainLater) when the node has
  // no podCIDRs yet, or with CacheOnly when nothing is cached; Error(InvalidConfig) naming an
  // unusable value (such a Node is not cached).
  k8s::Node read(Access access) const;
  // "node \"worker-1\" from the Kubernetes API (kubeconfig /etc/...)"
  std::string describe() const;
  const NodeApiConfig& config() const { return cfg_; }
  const std::string& cacheFile() const { return cacheFile_; }

 private:
  std::optional<k8s::CachedNode> cached() const;

  NodeApiConfig cfg_;
  std::string cacheFile_;
  Warn warn_;
};

}  // namespace dualstack::ipam
