// Tokens for a service account from the TokenRequest API, for a kubeconfig that must outlive the
// pod that wrote it (a pod's projected token stops working when the pod is deleted).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "dualstack/k8s/kubeconfig.hpp"

namespace dualstack::k8s {

struct TokenResult {
  std::string token;
  std::int64_t expiresUnix = 0;  // status.expirationTimestamp
};

// POST /api/v1/namespaces/<ns>/serviceaccounts/<sa>/token with a TokenRequest asking for
// `expiration` (the API server may shorten it; at least 10 minutes, the API's minimum). Errors,
// each naming the server and never showing a token:
//   Error(InvalidConfig)  ns or sa not a valid name; 401 and 403 (which credential was used; the
//                         identity needs `create` on `serviceaccounts/token`); 404 (no such
//                         service account); 400/422 (the server's reason, e.g. the expiration)
//   ApiUnavailable        unreachable, timeout, 429, 5xx
//   Error(IoFailure)      TLS failures, unreadable credential files, other answers
//   Error(DecodeFailure)  an answer without status.token and status.expirationTimestamp
TokenResult requestToken(const Kubeconfig& kc, std::string_view ns, std::string_view sa,
                         std::chrono::seconds expiration,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

// "2024-05-01T10:00:00Z" (fractions and a +hh:mm offset accepted) as Unix seconds; -1 when the
// text is not such a time.
std::int64_t parseRfc3339(std::string_view text);

}  // namespace dualstack::k8s
