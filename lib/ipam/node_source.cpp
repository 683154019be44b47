#include "dualstack/ipam/node_source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>

#include "dualstack/cni/error.hpp"
#include "dualstack/cni/json.hpp"
#include "dualstack/ipam/config.hpp"
#include "dualstack/k8s/api.hpp"
#include "dualstack/k8s/duration.hpp"
#include "dualstack/k8s/kubeconfig.hpp"
#include "dualstack/k8s/names.hpp"
#include "dualstack/sys/file.hpp"

namespace dualstack::ipam {

using cni::Code;
using cni::Error;
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

std::string inQuotes(std::string_view s) { return "\"" + std::string(s.substr(0, 100)) + "\""; }
std::string shown(std::string_view s) { return "\"" + std::string(s.substr(0, 64)) + "\""; }

std::string ageText(std::chrono::system_clock::duration age) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(age).count();
  if (s < 0) return "in the future (clock changed?)";
  if (s < 120) return std::to_string(s) + "s ago";
  if (s < 7200) return std::to_string(s / 60) + "m ago";
  return std::to_string(s / 3600) + "h ago";
}

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) {
    throw cni::errnoError(Code::InvalidConfig,
                          "ipam.node: no name given (node.name, K8S_NODE_NAME) and gethostname "
                          "failed",
                          errno);
  }
  // kubelet registers the node under the host name in lower case (without --hostname-override).
  std::string name = buf;
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

// Whether a "node" config object selects the API (it has "kubeconfig").
bool isNodeApiConfig(const json& node) { return node.is_object() && node.contains("kubeconfig"); }

// Checked when the config is parsed, so that DEL and GC, which never load a node source, refuse
// an inline node that ADD would refuse.
class InlineNode final : public NodeSource {
 public:
  InlineNode(const json& node, const std::string& where)
      : where_(where),
        node_(k8s::parseNode(node, where, k8s::NodeLayout::Inline, Code::InvalidConfig)) {
    requireUsable(node_, fieldPrefix());
    if (node_.podCIDRs.empty()) {
      throw Error(Code::InvalidConfig,
                  "ipam.node.podCIDRs is missing or empty: give the node's pod CIDRs (at most "
                  "one IPv4 and one IPv6), or use ipam.node.file");
    }
    (void)rangeSetsForNode(node_, fieldPrefix());
  }
  k8s::Node load() const override { return node_; }
  std::string describe() const override { return where_; }
  std::string fieldPrefix() const override { return where_ + "."; }

 private:
  std::string where_;
  k8s::Node node_;
};

class NodeFile final : public NodeSource {
 public:
  explicit NodeFile(std::string path) : path_(std::move(path)) {}
  k8s::Node load() const override {
    std::string text;
    const sys::FileProblem p =
        sys::readRegularFileAt(AT_FDCWD, path_, 8U << 20, sys::Links::Follow, text);
    if (p.err == EFBIG)
      throw Error(Code::InvalidConfig, "node file " + path_ + " is larger than 8 MiB");
    if (p.err != 0) {
      // The daemon that writes the file may simply not have run yet.
      throw cni::errnoError(p.err == ENOENT ? Code::TryAgainLater : Code::IoFailure,
                            "read node file " + path_ + " (ipam.node.file)", p.err);
    }
    if (p) throw Error(Code::IoFailure, "node file " + path_ + " (ipam.node.file) " + p.describe());
    const json obj = cni::parseJson(text, describe());
    k8s::Node node;
    try {
      node = k8s::parseNode(obj, "", k8s::NodeLayout::Object, Code::InvalidConfig);
    } catch (Error& e) {
      throw e.context(describe());
    }
    requireUsable(node, fieldPrefix());
    if (node.podCIDRs.empty()) {
      throw Error(Code::TryAgainLater, "node file " + path_ +
                                           " has no spec.podCIDRs yet (they are assigned by "
                                           "kube-controller-manager --allocate-node-cidrs)");
    }
    return node;
  }
  std::string describe() const override { return "node file " + path_; }
  std::string fieldPrefix() const override { return describe() + ": "; }

 private:
  std::string path_;
};

class KubeNode final : public NodeSource {
 public:
  KubeNode(NodeApiConfig cfg, const std::string& dataDir, Access access)
      : source_(std::move(cfg), dataDir), access_(access) {}
  k8s::Node load() const override { return source_.read(access_); }
  std::string describe() const override { return source_.describe(); }
  std::string fieldPrefix() const override { return describe() + ": "; }

 private:
  ApiNodeSource source_;
  Access access_;
};

}  // namespace

void requireUsable(const k8s::Node& node, std::string_view fieldPrefix) {
  if (node.unusable.empty()) return;
  const k8s::Unusable& u = node.unusable.front();
  const std::string what = u.kind == k8s::Unusable::Kind::PodCidr
                               ? " is not an address in CIDR form (like 10.244.1.0/24)"
                               : " is not an IP address";
  throw Error(Code::InvalidConfig,
              std::string(fieldPrefix) + u.field + ": " + shown(u.text) + what);
}

std::unique_ptr<NodeSource> makeNodeSource(const json& node, std::string_view where,
                                           const std::string& dataDir, Access access) {
  const std::string w(where);
  if (!node.is_object()) {
    throw Error(Code::InvalidConfig,
                w + ": expected an object, got " + std::string(cni::typeName(node)));
  }
  if (isNodeApiConfig(node)) {
    return std::make_unique<KubeNode>(parseNodeApiConfig(node, w), dataDir, access);
  }
  const bool inlineForm = node.contains("podCIDRs") || node.contains("addresses");
  if (auto file = cni::optString(node, "file", w)) {
    if (inlineForm) {
      throw Error(Code::InvalidConfig, w + ": give either file or podCIDRs/addresses, not both");
    }
    if (file->empty() || (*file)[0] != '/' || file->find('\0') != std::string::npos) {
      throw Error(Code::InvalidConfig, w + ".file: " + shown(*file) + " is not an absolute path");
    }
    return std::make_unique<NodeFile>(*file);
  }
  return std::make_unique<InlineNode>(node, w);
}

void warnOnStderr(const std::string& msg) {
  std::fprintf(stderr, "dualstack-ipam: warning: %s\n", msg.c_str());
}

NodeApiConfig parseNodeApiConfig(const json& node, std::string_view where,
                                 const cni::EnvLookup& env) {
  const std::string w(where);
  NodeApiConfig cfg;
  for (const char* other : {"file", "podCIDRs", "addresses"}) {
    if (node.contains(other)) {
      throw Error(Code::InvalidConfig, w + ": give either kubeconfig or " + other + ", not both");
    }
  }
  cfg.kubeconfig = cni::reqString(node, "kubeconfig", w);
  if (cfg.kubeconfig.empty() || cfg.kubeconfig[0] != '/' ||
      cfg.kubeconfig.find('\0') != std::string::npos) {
    throw Error(Code::InvalidConfig,
                w + ".kubeconfig: " + inQuotes(cfg.kubeconfig) + " is not an absolute path");
  }
  if (auto name = cni::optString(node, "name", w)) {
    cfg.name = *name;
    cfg.nameSource = w + ".name";
  } else if (auto fromEnv = env("K8S_NODE_NAME"); fromEnv && !fromEnv->empty()) {
    cfg.name = *fromEnv;
    cfg.nameSource = "K8S_NODE_NAME";
  } else {
    cfg.name = hostName();
    cfg.nameSource = "the host name";
  }
  if (!k8s::validNodeName(cfg.name)) {
    throw Error(Code::InvalidConfig,
                "node name " + inQuotes(cfg.name) + " (from " + cfg.nameSource +
                    ") is not a valid Kubernetes node name (lower-case letters, digits, '-', "
                    "'.'): set " +
                    w + ".name or K8S_NODE_NAME to the name `kubectl get nodes` shows");
  }
  if (const json* t = cni::member(node, "timeout", w)) {
    cfg.timeout = k8s::parseDuration(*t, w + ".timeout");
    if (cfg.timeout < milliseconds(1) || cfg.timeout > std::chrono::minutes(5)) {
      throw Error(Code::InvalidConfig, w + ".timeout: must be between 1ms and 5m");
    }
  }
  if (const json* ttl = cni::member(node, "cacheTTL", w)) {
    cfg.cacheTTL = k8s::parseDuration(*ttl, w + ".cacheTTL");
  }
  return cfg;
}

ApiNodeSource::ApiNodeSource(NodeApiConfig cfg, const std::string& dataDir, Warn warn)
    : cfg_(std::move(cfg)),
      cacheFile_(k8s::cachePath(dataDir, cfg_.name)),
      warn_(std::move(warn)) {}

std::string ApiNodeSource::describe() const {
  return "node " + inQuotes(cfg_.name) + " from the Kubernetes API (kubeconfig " + cfg_.kubeconfig +
         ")";
}

std::optional<k8s::CachedNode> ApiNodeSource::cached() const {
  try {
    auto c = k8s::readCache(cacheFile_);
    // A copy read with another kubeconfig (another cluster, perhaps) does not count.
    if (c && (c->kubeconfig != cfg_.kubeconfig || c->node.name != cfg_.name)) return std::nullopt;
    return c;
  } catch (const Error& e) {
    warn_("ignoring the node cache: " + e.msg());
    return std::nullopt;
  }
}

k8s::Node ApiNodeSource::read(Access access) const {
  const std::string fields = describe() + ": ";
  // A cache written by an older version may hold what this one would not have cached.
  const auto usable = [&](const k8s::Node& n) -> const k8s::Node& {
    requireUsable(n, fields);
    return n;
  };
  const auto cache = cached();
  const auto now = std::chrono::system_clock::now();
  if (access == Access::CacheOnly) {
    if (!cache) {
      throw Error(Code::TryAgainLater, "no cached copy of " + describe() + " in " + cacheFile_ +
                                           " (ADD writes it; CHECK does not ask the API server)");
    }
    return usable(cache->node);
  }
  if (cache) {
    const auto age = now - cache->fetchedAt;
    if (age >= decltype(age)::zero() && age < cfg_.cacheTTL) return usable(cache->node);
  }

  const k8s::Kubeconfig kc = k8s::loadKubeconfig(cfg_.kubeconfig);
  k8s::Node node;
  try {
    node = k8s::getNode(kc, {cfg_.name, cfg_.nameSource, cfg_.timeout});
  } catch (const k8s::ApiUnavailable& e) {
    if (!cache) throw;
    warn_(e.msg() + "; using the copy of node " + inQuotes(cfg_.name) + " read " +
          ageText(now - cache->fetchedAt) + " from " + cache->server + " (" + cacheFile_ + ")");
    return usable(cache->node);
  }
  node.name = cfg_.name;
  requireUsable(node, fields);
  if (node.podCIDRs.empty()) {
    throw Error(Code::TryAgainLater,
                "node " + inQuotes(cfg_.name) + " at " + kc.server +
                    " has no spec.podCIDRs: waiting for podCIDRs to be assigned (is "
                    "kube-controller-manager running with --allocate-node-cidrs?)");
  }
  try {
    k8s::writeCache(cacheFile_, {node, cfg_.kubeconfig, kc.server, now});
  } catch (const Error& e) {
    warn_("cannot cache the node: " + e.msg());
  }
  return node;
}

}  // namespace dualstack::ipam
