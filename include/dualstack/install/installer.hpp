// dualstack-install, the entrypoint of the DaemonSet that installs dualstack-cni on each node:
// copies the plugin binaries into the host's CNI bin dir, writes a kubeconfig from the pod's
// service account and the conflist into the host's CNI conf dir, then keeps the kubeconfig's
// token current until SIGTERM. Every file is replaced atomically.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "dualstack/sys/error.hpp"

namespace dualstack::install {

struct Options {
  // The host's file system as the container sees it; the paths below are the host's own, as
  // the runtime and the plugins see them (they are written into the conflist).
  std::string hostRoot = "/host";
  std::string cniBinDir = "/opt/cni/bin";
  std::string cniConfDir = "/etc/cni/net.d";
  std::string conflistName = "10-dualstack.conflist";
  std::string kubeconfigName = "dualstack-cni.kubeconfig";
  // In the container: the binaries to install, the service account, the conflist template
  // (empty: the built-in one, conf/60-dualstack-kubernetes.conflist).
  std::string sourceDir = "/usr/lib/cni";
  std::vector<std::string> binaries = {"dualstack", "dualstack-ipam"};
  std::string tokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string caFile = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::string conflistTemplate;
  std::string server;    // empty: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
  std::string nodeName;  // empty: $K8S_NODE_NAME
  std::chrono::milliseconds interval{std::chrono::seconds(60)};  // token re-read, at most
  // Non-empty ("NS/NAME"): the kubeconfig gets a token of that service account from the
  // TokenRequest API, valid for tokenExpiration whatever happens to this pod, instead of the
  // pod's own projected token (which stops working when the pod is deleted).
  std::string tokenServiceAccount;
  std::chrono::seconds tokenExpiration{std::chrono::hours(24)};
  bool once = false;
  bool uninstallOnExit = false;
};

// Parses the command line (and the environment for the defaults it names). Throws
// sys::Error(InvalidConfig) for a bad option; sets *help for --help.
Options parseOptions(int argc, char** argv, bool* help);
std::string usage();

// Installs, then (unless once) watches until SIGTERM or SIGINT. The caller must have blocked
// those signals in every thread. Returns the exit status; errors before anything was written
// are thrown as sys::Error (nothing is changed then).
int run(const Options& o);

// The conflist to install: the template with every dualstack-ipam's node.kubeconfig and
// node.name set. Error(InvalidConfig) naming `where` when it has no dualstack-ipam.
std::string renderConflist(const std::string& templateText, const std::string& where,
                           const std::string& kubeconfigPath, const std::string& nodeName);

}  // namespace dualstack::install
