// Reading one Node object from the Kubernetes API server.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "dualstack/k8s/kubeconfig.hpp"
#include "dualstack/k8s/node.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::k8s {

// No answer from the API server (no route, refused, timeout, reset) or it is overloaded (429,
// 5xx): a cached copy of the node may stand in. Code TryAgainLater.
class ApiUnavailable : public sys::Error {
 public:
  explicit ApiUnavailable(std::string msg) : sys::Error(sys::Code::TryAgainLater, std::move(msg)) {}
};

struct NodeRequest {
  std::string name;
  std::string nameSource;  // where the name came from, for the not-found hint ("K8S_NODE_NAME")
  std::chrono::milliseconds timeout{2000};
};

// GET <server>/api/v1/nodes/<name> with the kubeconfig's credentials. Errors, each naming the
// server and never showing a token or key:
//   ApiUnavailable            unreachable, timeout, 429, 5xx
//   Error(IoFailure)          TLS verification or handshake failure ("TLS ..." with a hint about
//                             certificate-authority), unreadable certificate or token files,
//                             other unexpected answers
//   Error(InvalidConfig)      401 and 403 (which credential was used; the identity needs `get`
//                             on `nodes`), 404 (node "<name>" not found)
Node getNode(const Kubeconfig& kc, const NodeRequest& request);

}  // namespace dualstack::k8s
