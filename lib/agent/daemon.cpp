#include "dualstack/agent/daemon.hpp"

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <thread>

#include "dualstack/agent/agent.hpp"
#include "dualstack/agent/http.hpp"
#include "dualstack/agent/kernel.hpp"
#include "dualstack/agent/metrics.hpp"
#include "dualstack/agent/token.hpp"
#include "dualstack/k8s/informer.hpp"
#include "dualstack/k8s/kubeconfig.hpp"
#include "dualstack/k8s/token.hpp"
#include "dualstack/sys/error.hpp"
#include "dualstack/sys/version.hpp"

namespace dualstack::agent {

using namespace std::chrono_literals;

namespace {

std::function<k8s::Kubeconfig()> kubeconfigSource(const Options& o) {
  if (o.kubeconfig.empty()) return [] { return k8s::inClusterConfig(); };
  return [path = o.kubeconfig] { return k8s::loadKubeconfig(path); };
}

// The loop wakes at least once per interval; one that has not for three intervals (and a
// minute) is stuck. The API server being down does not make the agent unhealthy: restarting it
// would not help, and its routes stay.
HttpReply health(const Agent& agent, std::chrono::milliseconds interval) {
  const auto age = std::chrono::steady_clock::now() - agent.lastLoop();
  const auto limit = std::max<std::chrono::milliseconds>(interval * 3, 60s);
  if (age > limit) {
    return {503, "text/plain; charset=utf-8",
            "the reconcile loop has not run for " +
                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(age).count()) +
                " s\n"};
  }
  return {200, "text/plain; charset=utf-8", "ok\n"};
}

std::unique_ptr<ClusterSets> clusterSetsOrNone(const Options& o, Log& log) {
  try {
    return nftClusterSets(o.cniNetwork);
  } catch (const sys::Error& e) {
    // Routing does not need nftables: carry on, loudly.
    log.error(
        "the cluster podCIDR sets cannot be kept: with ipMasq, traffic to other nodes' pods "
        "is masqueraded",
        {{"error", e.msg()}});
    return nullptr;
  }
}

std::unique_ptr<NodeSource> nodeSource(const std::function<k8s::Kubeconfig()>& config, Log& log) {
  k8s::InformerOptions informerOptions;
  // A route to a new node waits for the watch: after an API server outage (an upgrade, a
  // restart) the agent should be back within seconds, not the library default of up to 30 s.
  // With jitter, the nodes of a large cluster still come back spread over those seconds, and a
  // watch that is refused again doubles its wait up to this bound.
  informerOptions.backoffMax = std::chrono::seconds(4);
  informerOptions.log = log.adapter("node-informer");
  return informerSource(config, informerOptions);
}

// The keeper of the plugin's kubeconfig token; none without --plugin-kubeconfig.
std::unique_ptr<TokenKeeper> tokenKeeper(const Options& o,
                                         const std::function<k8s::Kubeconfig()>& config, Log& log) {
  if (o.pluginKubeconfig.empty()) return nullptr;
  TokenKeeperConfig tc;
  tc.file = o.pluginKubeconfig;
  tc.serviceAccount = o.tokenNamespace + "/" + o.tokenServiceAccount;
  tc.expiration = o.tokenExpiration;
  return std::make_unique<TokenKeeper>(
      tc,
      [&o, config](std::chrono::seconds expiration) {
        const k8s::TokenResult r =
            k8s::requestToken(config(), o.tokenNamespace, o.tokenServiceAccount, expiration);
        return IssuedToken{r.token, r.expiresUnix};
      },
      config, log);
}

// /healthz, /metrics and /status.
HttpServer::Handler endpoints(const Agent& agent, const TokenKeeper* token,
                              std::chrono::milliseconds interval) {
  return [&agent, token, interval](std::string_view path) -> HttpReply {
    const auto snapshot = [&] {
      AgentSnapshot s = agent.snapshot();
      if (token != nullptr) s.token = token->state();
      return s;
    };
    if (path == "/healthz") return health(agent, interval);
    if (path == "/metrics") {
      return {200, "text/plain; version=0.0.4; charset=utf-8", renderMetrics(snapshot())};
    }
    if (path == "/status") {
      return {200, "application/json", renderStatus(snapshot()).dump(2) + "\n"};
    }
    return {404, "text/plain; charset=utf-8", "not found: try /healthz, /metrics or /status\n"};
  };
}

// Until SIGTERM or SIGINT, or the agent's loop ends; SIGHUP asks for a full pass. The signals
// are blocked in every thread (main does that before any thread starts).
void waitForStop(Agent& agent, const std::atomic<bool>& agentEnded, Log& log) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  const timespec tick{0, 200'000'000};
  while (!agentEnded) {
    const int sig = ::sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      log.info(sig == SIGTERM ? "SIGTERM: stopping" : "SIGINT: stopping");
      return;
    }
    if (sig == SIGHUP) {
      log.info("SIGHUP: reconciling everything now");
      agent.requestFull();
    }
  }
}

// With --remove-routes-on-exit, the agent's own routes go; everything else stays.
int leave(const Options& o, Agent& agent, bool routing, Log& log) {
  if (!o.removeRoutesOnExit || !routing) {
    log.info("stopped; routes and sets stay in place");
    return 0;
  }
  try {
    const std::size_t n = agent.removeOwnRoutes();
    log.info("removed the agent's routes", {{"routes", std::to_string(n)}});
    return 0;
  } catch (const sys::Error& e) {
    log.error("cannot remove the agent's routes", {{"error", e.msg()}});
    return 1;
  }
}

}  // namespace

int runDaemon(const Options& o) {
  Log log(o.logLevel);
  const std::string version(sys::buildVersion());
  const auto config = kubeconfigSource(o);
  // Fails now, with the reason, for a kubeconfig that can never work.
  const k8s::Kubeconfig first = config();

  const std::unique_ptr<RouteTable> routes = o.routes ? kernelRouteTable() : nullptr;
  const std::unique_ptr<ClusterSets> sets = clusterSetsOrNone(o, log);
  const auto source = nodeSource(config, log);
  AgentConfig ac;
  ac.self = o.nodeName;
  ac.protocol = o.routeProtocol;
  ac.interval = o.reconcileInterval;
  ac.version = version;
  Agent agent(ac, *source, routes.get(), sets.get(), log);
  const std::unique_ptr<TokenKeeper> token = tokenKeeper(o, config, log);
  HttpServer server(o.metricsAddress, endpoints(agent, token.get(), o.reconcileInterval));

  log.info("dualstack-agent starting",
           {{"version", version},
            {"node", o.nodeName},
            {"api_server", first.server},
            {"routes", o.routes ? "on" : "off"},
            {"route_protocol", std::to_string(o.routeProtocol)},
            {"cni_network", o.cniNetwork},
            {"metrics", o.metricsAddress.host + ":" + std::to_string(server.port())},
            {"plugin_kubeconfig", o.pluginKubeconfig}});

  std::exception_ptr agentError;
  std::atomic<bool> agentEnded{false};
  std::jthread agentThread([&](std::stop_token st) {
    try {
      agent.run(st);
    } catch (...) {
      agentError = std::current_exception();
    }
    agentEnded = true;
  });
  std::jthread httpThread([&](std::stop_token st) {
    try {
      server.serve(st);
    } catch (const std::exception& e) {
      log.error("metrics server stopped", {{"error", e.what()}});
    }
  });
  std::jthread tokenThread;
  if (token) tokenThread = std::jthread([&](std::stop_token st) { token->run(st); });

  waitForStop(agent, agentEnded, log);
  agentThread.request_stop();
  tokenThread.request_stop();
  httpThread.request_stop();
  agentThread.join();
  tokenThread = {};
  httpThread = {};
  if (agentError) std::rethrow_exception(agentError);
  return leave(o, agent, routes != nullptr, log);
}

int runStatus(const Options& o) {
  const HttpReply r = httpGet(o.metricsAddress, "/status", 5s);
  const auto doc = nlohmann::json::parse(r.body, nullptr, false);
  if (r.status != 200 || !doc.is_object()) {
    throw sys::Error(sys::Code::IoFailure, "GET /status answered " + std::to_string(r.status) +
                                               ": " + r.body.substr(0, 200));
  }
  std::cout << formatStatus(doc);
  return 0;
}

}  // namespace dualstack::agent
