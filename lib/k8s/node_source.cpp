#include "dualstack/k8s/node_source.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "dualstack/k8s/kubeconfig.hpp"
#include "dualstack/sys/env.hpp"
#include "dualstack/sys/error.hpp"
#include "dualstack/sys/json.hpp"

namespace dualstack::k8s {

using nlohmann::json;
using std::chrono::milliseconds;
using sys::Code;
using sys::Error;

namespace {

std::string inQuotes(std::string_view s) { return "\"" + std::string(s.substr(0, 100)) + "\""; }

std::string ageText(std::chrono::system_clock::duration age) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(age).count();
  if (s < 0) return "in the future (clock changed?)";
  if (s < 120) return std::to_string(s) + "s ago";
  if (s < 7200) return std::to_string(s / 60) + "m ago";
  return std::to_string(s / 3600) + "h ago";
}

// Go's time.ParseDuration units that make sense here, in seconds.
std::optional<double> unitSeconds(std::string_view unit) {
  if (unit == "ns") return 1e-9;
  if (unit == "us" || unit == "\xc2\xb5s") return 1e-6;
  if (unit == "ms") return 1e-3;
  if (unit == "s") return 1.0;
  if (unit == "m") return 60.0;
  if (unit == "h") return 3600.0;
  return std::nullopt;
}

std::optional<double> parseGoDuration(std::string_view s) {
  if (s == "0") return 0.0;
  if (s.empty()) return std::nullopt;
  double total = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t numStart = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == numStart) return std::nullopt;
    const std::string num(s.substr(numStart, i - numStart));
    if (num == "." || std::count(num.begin(), num.end(), '.') > 1) return std::nullopt;
    const std::size_t unitStart = i;
    while (i < s.size() && !std::isdigit(static_cast<unsigned char>(s[i])) && s[i] != '.') ++i;
    const auto unit = unitSeconds(s.substr(unitStart, i - unitStart));
    if (!unit) return std::nullopt;
    total += std::strtod(num.c_str(), nullptr) * *unit;
  }
  return total;
}

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) {
    throw sys::errnoError(Code::InvalidConfig,
                          "ipam.node: no name given (node.name, K8S_NODE_NAME) and gethostname "
                          "failed",
                          errno);
  }
  // kubelet registers the node under the host name in lower case (without --hostname-override).
  std::string name = buf;
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

}  // namespace

std::optional<std::string> processEnv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

void warnOnStderr(const std::string& msg) {
  std::fprintf(stderr, "dualstack-ipam: warning: %s\n", msg.c_str());
}

bool isNodeApiConfig(const json& node) { return node.is_object() && node.contains("kubeconfig"); }

bool validNodeName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t labelStart = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      const auto label = name.substr(labelStart, i - labelStart);
      if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
        return false;
      }
      labelStart = i + 1;
      continue;
    }
    const char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

milliseconds parseDuration(const json& value, const std::string& field) {
  std::optional<double> seconds;
  if (value.is_number()) {
    seconds = value.get<double>();
  } else if (value.is_string()) {
    seconds = parseGoDuration(value.get<std::string>());
  } else {
    throw Error(Code::InvalidConfig, field +
                                         ": expected a duration (\"2s\", \"500ms\") or a "
                                         "number of seconds, got " +
                                         std::string(sys::typeName(value)));
  }
  if (!seconds || !std::isfinite(*seconds) || *seconds < 0 || *seconds > 366.0 * 86400) {
    throw Error(Code::InvalidConfig, field + ": " + value.dump().substr(0, 64) +
                                         " is not a duration like \"2s\", \"500ms\", \"1m30s\" "
                                         "or a number of seconds (at most a year)");
  }
  // Rounded to the nearest millisecond without std::llround, whose libm would be one more shared
  // library for the dualstack binary to load at every exec (it checks this config too).
  return milliseconds(static_cast<milliseconds::rep>(*seconds * 1000 + 0.5));
}

NodeApiConfig parseNodeApiConfig(const json& node, std::string_view where,
                                 const sys::EnvLookup& env) {
  const std::string w(where);
  NodeApiConfig cfg;
  for (const char* other : {"file", "podCIDRs", "addresses"}) {
    if (node.contains(other)) {
      throw Error(Code::InvalidConfig, w + ": give either kubeconfig or " + other + ", not both");
    }
  }
  cfg.kubeconfig = sys::reqString(node, "kubeconfig", w);
  if (cfg.kubeconfig.empty() || cfg.kubeconfig[0] != '/' ||
      cfg.kubeconfig.find('\0') != std::string::npos) {
    throw Error(Code::InvalidConfig,
                w + ".kubeconfig: " + inQuotes(cfg.kubeconfig) + " is not an absolute path");
  }
  if (auto name = sys::optString(node, "name", w)) {
    cfg.name = *name;
    cfg.nameSource = w + ".name";
  } else if (auto fromEnv = env("K8S_NODE_NAME"); fromEnv && !fromEnv->empty()) {
    cfg.name = *fromEnv;
    cfg.nameSource = "K8S_NODE_NAME";
  } else {
    cfg.name = hostName();
    cfg.nameSource = "the host name";
  }
  if (!validNodeName(cfg.name)) {
    throw Error(Code::InvalidConfig,
                "node name " + inQuotes(cfg.name) + " (from " + cfg.nameSource +
                    ") is not a valid Kubernetes node name (lower-case letters, digits, '-', "
                    "'.'): set " +
                    w + ".name or K8S_NODE_NAME to the name `kubectl get nodes` shows");
  }
  if (const json* t = sys::member(node, "timeout", w)) {
    cfg.timeout = parseDuration(*t, w + ".timeout");
    if (cfg.timeout < milliseconds(1) || cfg.timeout > std::chrono::minutes(5)) {
      throw Error(Code::InvalidConfig, w + ".timeout: must be between 1ms and 5m");
    }
  }
  if (const json* ttl = sys::member(node, "cacheTTL", w)) {
    cfg.cacheTTL = parseDuration(*ttl, w + ".cacheTTL");
  }
  return cfg;
}

ApiNodeSource::ApiNodeSource(NodeApiConfig cfg, const std::string& dataDir, Warn warn)
    : cfg_(std::move(cfg)), cacheFile_(cachePath(dataDir, cfg_.name)), warn_(std::move(warn)) {}

std::string ApiNodeSource::describe() const {
  return "node " + inQuotes(cfg_.name) + " from the Kubernetes API (kubeconfig " + cfg_.kubeconfig +
         ")";
}

std::optional<CachedNode> ApiNodeSource::cached() const {
  try {
    auto c = readCache(cacheFile_);
    // A copy read with another kubeconfig (another cluster, perhaps) does not count.
    if (c && (c->kubeconfig != cfg_.kubeconfig || c->node.name != cfg_.name)) return std::nullopt;
    return c;
  } catch (const Error& e) {
    warn_("ignoring the node cache: " + e.msg());
    return std::nullopt;
  }
}

Node ApiNodeSource::read(Access access) const {
  const auto cache = cached();
  const auto now = std::chrono::system_clock::now();
  if (access == Access::CacheOnly) {
    if (!cache) {
      throw Error(Code::TryAgainLater, "no cached copy of " + describe() + " in " + cacheFile_ +
                                           " (ADD writes it; CHECK does not ask the API server)");
    }
    return cache->node;
  }
  if (cache) {
    const auto age = now - cache->fetchedAt;
    if (age >= decltype(age)::zero() && age < cfg_.cacheTTL) return cache->node;
  }

  const Kubeconfig kc = loadKubeconfig(cfg_.kubeconfig);
  Node node;
  try {
    node = getNode(kc, {cfg_.name, cfg_.nameSource, cfg_.timeout});
  } catch (const ApiUnavailable& e) {
    if (!cache) throw;
    warn_(e.msg() + "; using the copy of node " + inQuotes(cfg_.name) + " read " +
          ageText(now - cache->fetchedAt) + " from " + cache->server + " (" + cacheFile_ + ")");
    return cache->node;
  }
  node.name = cfg_.name;
  if (node.podCIDRs.empty()) {
    throw Error(Code::TryAgainLater,
                "node " + inQuotes(cfg_.name) + " at " + kc.server +
                    " has no spec.podCIDRs: waiting for podCIDRs to be assigned (is "
                    "kube-controller-manager running with --allocate-node-cidrs?)");
  }
  try {
    writeCache(cacheFile_, {node, cfg_.kubeconfig, kc.server, now});
  } catch (const Error& e) {
    warn_("cannot cache the node: " + e.msg());
  }
  return node;
}

}  // namespace dualstack::k8s
