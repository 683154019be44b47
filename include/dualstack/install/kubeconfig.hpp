// The kubeconfig the installer writes for the plugins from its pod's service account: the API
// server, the cluster CA and the (rotating) bearer token, all inline.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dualstack::install {

std::string base64Encode(std::string_view data);

// The claims of a JWT that tell when it must be replaced: `exp` and `iat` (seconds since the
// epoch). Both nullopt for a token that is not a JWT (e.g. an opaque static token). A claim that
// is not a time (not a number, negative, after the year 9999) is nullopt too, and `problem` says
// which claim and why.
struct TokenTimes {
  std::optional<std::int64_t> issuedAt;
  std::optional<std::int64_t> expiresAt;
  std::string problem;
};
TokenTimes tokenTimes(std::string_view token);

// "https://<host>:<port>", IPv6 hosts in brackets (KUBERNETES_SERVICE_HOST is a bare address).
std::string serverUrl(std::string_view host, std::string_view port);

// The kubeconfig text (YAML). Error(InvalidConfig) for a token or server that cannot be put in
// one, naming where it came from, and for a server that is not https://. `writer` says in the
// file's header comment who wrote it and when it is rewritten.
std::string renderKubeconfig(const std::string& server, const std::string& caPem,
                             const std::string& token, const std::string& tokenSource,
                             std::string_view writer =
                                 "dualstack-install from its pod's service account; rewritten "
                                 "when the token\n# is rotated");

}  // namespace dualstack::install
