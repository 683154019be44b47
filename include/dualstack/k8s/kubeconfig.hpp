// A kubeconfig file, read the way kubectl reads it: current-context names a context, which names
// a cluster (server, CA) and a user (credentials). YAML or JSON. Relative file names are relative
// to the kubeconfig's directory, as kubectl resolves them.
//
// Supported: server; certificate-authority / certificate-authority-data;
// insecure-skip-tls-verify; token / tokenFile; client-certificate(-data) + client-key(-data).
// exec, auth-provider and username/password users are rejected with a message saying so.
#pragma once

#include <string>
#include <string_view>

#include "dualstack/sys/env.hpp"

namespace dualstack::k8s {

struct Kubeconfig {
  std::string path;  // the file read
  std::string contextName, clusterName, userName;

  std::string server;  // "https://host:port[/prefix]", without a trailing '/'

  // TLS: the CA to trust, as a file or as PEM data; neither means the system's CAs.
  std::string caFile;
  std::string caData;
  bool insecureSkipTlsVerify = false;

  // Credentials. tokenFile (re-read at every request, so rotated tokens work) wins over token.
  std::string token;
  std::string tokenFile;
  std::string clientCertFile, clientCertData;
  std::string clientKeyFile, clientKeyData;

  // What the request authenticates with, for messages; never the secret itself: "token file
  // /var/run/t", "token from kubeconfig user \"cni\"", "client certificate /x/c.pem (kubeconfig
  // user \"cni\")", "no credentials (anonymous)".
  std::string credentialDescription() const;
};

// Parses kubeconfig text. `path` locates relative file names and prefixes messages.
// Error(InvalidConfig) naming the field; the values of secrets never appear in messages.
Kubeconfig parseKubeconfig(std::string_view text, const std::string& path);
// Reads and parses the file (Error(IoFailure) when it cannot be read).
Kubeconfig loadKubeconfig(const std::string& path);

// Where a pod finds its service account's token, CA and namespace.
inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

// The pod's service account, found as client-go's rest.InClusterConfig finds it: the API server
// https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the CA <dir>/ca.crt, the token file
// <dir>/token (re-read at every request, as kubelet rotates it). `env` defaults to the process
// environment. Error(InvalidConfig) outside a pod (a variable unset or malformed), naming what
// to do instead; Error(IoFailure) naming the file when the token or the CA cannot be read.
Kubeconfig inClusterConfig(const sys::EnvLookup& env = {},
                           const std::string& dir = kServiceAccountDir);

// The bearer token to send (tokenFile read now, trimmed), or "" for none. Error(IoFailure) when
// the token file cannot be read or is empty.
std::string bearerToken(const Kubeconfig& kc);

}  // namespace dualstack::k8s
