#include "dualstack/agent/options.hpp"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualstack/k8s/duration.hpp"
#include "dualstack/k8s/names.hpp"
#include "dualstack/nft/table.hpp"
#include "dualstack/sys/env.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::agent {

using sys::Code;
using sys::Error;

namespace {

std::chrono::milliseconds duration(const std::string& text, const std::string& flag) {
  return k8s::parseDuration(nlohmann::json(text), flag);
}

std::uint8_t routeProtocol(const std::string& v) {
  const bool digits = !v.empty() && v.size() <= 3 &&
                      std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
  const int n = digits ? std::stoi(v) : -1;
  // 0-4 are the kernel's own (unspec, redirect, kernel, boot, static).
  if (n < 5 || n > 255) {
    throw Error(Code::InvalidConfig, "--route-protocol \"" + v +
                                         "\" must be a number from 5 to 255 (0-4 belong to "
                                         "the kernel and iproute2's static routes)");
  }
  return static_cast<std::uint8_t>(n);
}

std::string absoluteFile(std::string v, const std::string& flag) {
  if (v.empty() || v.front() != '/' || v.back() == '/') {
    throw Error(Code::InvalidConfig, flag + " \"" + v + "\" must be an absolute file name");
  }
  return v;
}

k8s::ServiceAccountRef serviceAccount(const std::string& v, const std::string& flag) {
  auto ref = k8s::parseServiceAccount(v);
  if (!ref) {
    throw Error(Code::InvalidConfig,
                flag + " \"" + v + "\" is not NAMESPACE/NAME of a service account");
  }
  return std::move(*ref);
}

std::chrono::seconds tokenExpiration(const std::string& v, const std::string& flag) {
  const auto d = duration(v, flag);
  // The API server refuses TokenRequests for less than 10 minutes.
  if (d < std::chrono::minutes(10) || d > std::chrono::hours(24 * 365)) {
    throw Error(Code::InvalidConfig, flag + " must be between 10m (the API's minimum) and a year");
  }
  return std::chrono::duration_cast<std::chrono::seconds>(d);
}

Level logLevel(const std::string& v, const std::string& flag) {
  Level level{};
  if (!parseLevel(v, &level)) {
    throw Error(Code::InvalidConfig,
                flag + " \"" + v + "\" is not one of debug, info, warn, error");
  }
  return level;
}

// --node-name, else $NODE_NAME (the downward API's spec.nodeName).
std::string resolveNodeName(std::optional<std::string> nodeName, const sys::EnvLookup& env) {
  if (!nodeName) {
    if (auto fromEnv = env("NODE_NAME"); fromEnv && !fromEnv->empty()) nodeName = *fromEnv;
  }
  if (!nodeName) {
    throw Error(
        Code::InvalidConfig,
        "no node name: pass --node-name or set NODE_NAME (the downward API's spec.nodeName)");
  }
  if (!k8s::validNodeName(*nodeName)) {
    throw Error(Code::InvalidConfig, "node name \"" + *nodeName + "\" is not a valid Node name");
  }
  return *nodeName;
}

}  // namespace

std::string usage() {
  return R"(Usage: dualstack-agent [OPTIONS]
       dualstack-agent status [--metrics-address HOST:PORT]

The node agent of dualstack-cni. It watches the cluster's Node objects and, on this node:
  - routes every other node's podCIDR of each family via that node's InternalIP of the same
    family (its ExternalIP when it has no InternalIP of that family), if that address is on a
    network this node is directly connected to (host-gw); its routes carry their own routing
    protocol number, and it never changes or removes a route of another protocol;
  - keeps every node's podCIDRs in the nftables sets cluster4/cluster6 of the CNI network's
    masquerade table, so that pod-to-pod traffic is never masqueraded;
  - with --plugin-kubeconfig, keeps the plugin's kubeconfig valid with tokens from the
    TokenRequest API, renewed at 80% of their lifetime.
It serves /healthz, /metrics (Prometheus) and /status on --metrics-address. `status` prints
what a running agent reports. SIGTERM and SIGINT stop it (routes stay unless
--remove-routes-on-exit); SIGHUP makes it reconcile everything at once.

  --kubeconfig FILE              the API server and credentials (default: the pod's service
                                 account, as client-go's in-cluster config)
  --node-name NAME               this node (default: $NODE_NAME, from the downward API)
  --metrics-address HOST:PORT    default 127.0.0.1:9967
  --reconcile-interval DURATION  how often every route and set is checked (default 30s)
  --route-protocol N             the rtnetlink protocol number of the agent's routes (default 77)
  --no-routes                    do not route (an underlay that routes podCIDRs itself: a cloud
                                 route table, BGP); the sets and the token are still kept
  --remove-routes-on-exit        on SIGTERM/SIGINT remove the agent's routes (only those)
  --cni-network NAME             the conflist name whose masquerade table gets the sets
                                 (default dualstack)
  --plugin-kubeconfig FILE       write the plugin's kubeconfig here (mode 0600, replaced
                                 atomically): the API server and CA of --kubeconfig and a token
                                 of --token-service-account
  --token-service-account NS/NAME  default kube-system/dualstack-cni
  --token-expiration DURATION    the tokens' lifetime (default 24h; at least 10m)
  --log-level LEVEL              debug, info, warn or error (default info)
  --help, --version
)";
}

Options parseOptions(int argc, char** argv, const sys::EnvLookup& env) {
  Options o;
  int first = 1;
  if (argc > 1 && std::string_view(argv[1]) == "status") {
    o.mode = Options::Mode::Status;
    first = 2;
  }
  std::optional<std::string> nodeName;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    std::optional<std::string> value;
    if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    }
    const auto need = [&]() -> std::string {
      if (value) return *value;
      if (i + 1 >= argc) throw Error(Code::InvalidConfig, arg + " needs a value (see --help)");
      return argv[++i];
    };
    const auto flagOnly = [&] {
      if (value) throw Error(Code::InvalidConfig, arg + " takes no value");
    };
    const bool statusOk = arg == "--metrics-address" || arg == "--help" || arg == "-h";
    if (o.mode == Options::Mode::Status && !statusOk) {
      throw Error(Code::InvalidConfig,
                  "dualstack-agent status takes only --metrics-address, not \"" + arg + "\"");
    }
    if (arg == "--help" || arg == "-h") {
      o.mode = Options::Mode::Help;
      return o;
    } else if (arg == "--version") {
      o.mode = Options::Mode::Version;
      return o;
    } else if (arg == "--kubeconfig") {
      o.kubeconfig = need();
      if (o.kubeconfig.empty()) throw Error(Code::InvalidConfig, "--kubeconfig is empty");
    } else if (arg == "--node-name") {
      nodeName = need();
    } else if (arg == "--metrics-address") {
      o.metricsAddress = parseSocketAddress(need(), arg);
    } else if (arg == "--reconcile-interval") {
      o.reconcileInterval = duration(need(), arg);
      if (o.reconcileInterval < std::chrono::seconds(1) ||
          o.reconcileInterval > std::chrono::hours(1)) {
        throw Error(Code::InvalidConfig, "--reconcile-interval must be between 1s and 1h");
      }
    } else if (arg == "--route-protocol") {
      o.routeProtocol = routeProtocol(need());
    } else if (arg == "--no-routes") {
      flagOnly();
      o.routes = false;
    } else if (arg == "--remove-routes-on-exit") {
      flagOnly();
      o.removeRoutesOnExit = true;
    } else if (arg == "--cni-network") {
      o.cniNetwork = need();
      nft::checkNetwork(o.cniNetwork, "--cni-network");
    } else if (arg == "--plugin-kubeconfig") {
      o.pluginKubeconfig = absoluteFile(need(), arg);
    } else if (arg == "--token-service-account") {
      k8s::ServiceAccountRef ref = serviceAccount(need(), arg);
      o.tokenNamespace = std::move(ref.ns);
      o.tokenServiceAccount = std::move(ref.name);
    } else if (arg == "--token-expiration") {
      o.tokenExpiration = tokenExpiration(need(), arg);
    } else if (arg == "--log-level") {
      o.logLevel = logLevel(need(), arg);
    } else {
      throw Error(Code::InvalidConfig,
                  "unknown argument \"" + std::string(argv[i]) + "\" (see --help)");
    }
  }
  if (o.mode == Options::Mode::Run) o.nodeName = resolveNodeName(nodeName, env);
  return o;
}

}  // namespace dualstack::agent
