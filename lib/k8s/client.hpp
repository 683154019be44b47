// What every request to the API server shares inside the k8s layer: the kubeconfig's TLS settings
// and credentials, and the errors an answer turns into.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "dualstack/k8s/http.hpp"
#include "dualstack/k8s/kubeconfig.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::k8s::detail {

// `method` kc.server + pathQuery with the kubeconfig's CA, client certificate and bearer token
// (a tokenFile is read now), "Accept: application/json" and a User-Agent naming this program.
// Error(IoFailure) naming the file when a certificate, key or token file cannot be read.
HttpRequest apiRequest(const Kubeconfig& kc, std::string_view method, std::string_view pathQuery,
                       std::chrono::milliseconds timeout);

// "the Kubernetes API server https://..."
std::string serverName(const Kubeconfig& kc);

// The message of a Kubernetes Status answer, else the start of the body; printable ASCII only.
std::string statusMessage(std::string_view body);

// The sys::Error for a request that got no answer: ApiUnavailable when the server could not be
// reached, Error(IoFailure) with a hint about certificate-authority for TLS failures.
[[noreturn]] void throwNoAnswer(const HttpError& e, const Kubeconfig& kc,
                                const HttpRequest& request);

// The sys::Error for an answer with an unexpected status:
//   401, 403        Error(InvalidConfig): which credential was used and that the identity needs
//                   `permission` (e.g. "`get` on `nodes`"); `subject` names what was asked for
//                   in the 403 message (e.g. "GET node \"worker-1\"")
//   429, 5xx        ApiUnavailable
//   anything else   Error(IoFailure), suggesting to check the server URL
[[noreturn]] void throwForStatus(long status, std::string_view body, const Kubeconfig& kc,
                                 const HttpRequest& request, std::string_view subject,
                                 std::string_view permission);

}  // namespace dualstack::k8s::detail
