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

// The bearer token to send (tokenFile read now, trimmed), or "" for none. Error(IoFailure) when
// the token file cannot be read or is empty.
std::string bearerToken(const Kubeconfig& kc);

}  // namespace dualstack::k8s
