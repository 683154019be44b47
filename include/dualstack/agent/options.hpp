// The command line of dualstack-agent.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "dualstack/agent/http.hpp"
#include "dualstack/agent/log.hpp"
#include "dualstack/sys/env.hpp"

namespace dualstack::agent {

// Not in iproute2's rt_protos (0-4, 8-16, 18, 42, 99, 186-189, 192) nor, as far as we know, used
// by another routing daemon. `ip route show proto 77` lists the agent's routes; a line
// "77 dualstack" in /etc/iproute2/rt_protos.d/dualstack.conf names them.
inline constexpr std::uint8_t kDefaultRouteProtocol = 77;

struct Options {
  enum class Mode { Run, Status, Help, Version };
  Mode mode = Mode::Run;

  std::string kubeconfig;  // empty: the in-cluster service account
  std::string nodeName;    // --node-name, else $NODE_NAME
  SocketAddress metricsAddress{"127.0.0.1", 9967};
  std::chrono::milliseconds reconcileInterval{std::chrono::seconds(30)};
  std::uint8_t routeProtocol = kDefaultRouteProtocol;
  bool routes = true;  // --no-routes turns routing off
  bool removeRoutesOnExit = false;
  std::string cniNetwork = "dualstack";  // the name in conf/60-dualstack-kubernetes.conflist

  // Keeping the plugin's kubeconfig valid: on when pluginKubeconfig is set.
  std::string pluginKubeconfig;
  std::string tokenNamespace = "kube-system";
  std::string tokenServiceAccount = "dualstack-cni";
  std::chrono::seconds tokenExpiration{std::chrono::hours(24)};

  Level logLevel = Level::Info;
};

// Parses argv (argv[1] may be the subcommand "status"); `env` looks up NODE_NAME.
// Error(InvalidConfig) naming the flag for bad input, before anything is done.
Options parseOptions(int argc, char** argv, const sys::EnvLookup& env);
std::string usage();

}  // namespace dualstack::agent
