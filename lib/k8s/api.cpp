#include "dualstack/k8s/api.hpp"

#include <cerrno>

#include "client.hpp"
#include "dualstack/k8s/http.hpp"
#include "dualstack/sys/error.hpp"
#include "dualstack/sys/json.hpp"
#include "dualstack/sys/version.hpp"
#include "files.hpp"

namespace dualstack::k8s {

using nlohmann::json;
using sys::Code;
using sys::Error;

namespace {

constexpr std::size_t kMaxPem = 1U << 20;
constexpr const char* kRbacHint = "see conf/kubernetes/rbac.yaml";

std::string inQuotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool isNodeNotFound(const std::string& body, const std::string& name) {
  const json j = sys::parseJsonTop(body, 2);
  if (!j.is_object() || j.value("reason", "") != "NotFound") return false;
  const json* details = j.contains("details") ? &j["details"] : nullptr;
  return details != nullptr && details->is_object() && details->value("kind", "") == "nodes" &&
         details->value("name", "") == name;
}

std::string pem(const std::string& data, const std::string& file, const char* field,
                const Kubeconfig& kc) {
  if (!data.empty() || file.empty()) return data;
  try {
    return detail::readFile(file, field, kMaxPem);
  } catch (Error& e) {
    throw e.context("kubeconfig " + kc.path);
  }
}

}  // namespace

namespace detail {

std::string serverName(const Kubeconfig& kc) { return "the Kubernetes API server " + kc.server; }

HttpRequest apiRequest(const Kubeconfig& kc, std::string_view method, std::string_view pathQuery,
                       std::chrono::milliseconds timeout) {
  HttpRequest http;
  http.method = std::string(method);
  http.url = kc.server + std::string(pathQuery);
  http.timeout = timeout;
  http.headers = {"Accept: application/json",
                  "User-Agent: " + std::string(program_invocation_short_name) + "/" +
                      std::string(sys::buildVersion())};
  const std::string token = bearerToken(kc);
  if (!token.empty()) http.headers.push_back("Authorization: Bearer " + token);
  http.insecureSkipTlsVerify = kc.insecureSkipTlsVerify;
  http.caPem = pem(kc.caData, kc.caFile, "certificate-authority", kc);
  http.clientCertPem = pem(kc.clientCertData, kc.clientCertFile, "client-certificate", kc);
  http.clientKeyPem = pem(kc.clientKeyData, kc.clientKeyFile, "client-key", kc);
  return http;
}

std::string statusMessage(std::string_view body) {
  std::string msg;
  const json j = json::parse(body, nullptr, false);
  if (j.is_object() && j.value("kind", "") == "Status" && j.contains("message") &&
      j["message"].is_string()) {
    msg = j["message"].get<std::string>();
  } else {
    msg = std::string(body.substr(0, 300));
  }
  std::string out;
  for (const char c : msg.substr(0, 300)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : ' ';
  }
  return out;
}

void throwNoAnswer(const HttpError& e, const Kubeconfig& kc, const HttpRequest& request) {
  const std::string server = serverName(kc);
  switch (e.failure()) {
    case HttpFailure::Unreachable:
    case HttpFailure::Cancelled:
      throw ApiUnavailable("cannot reach " + server + " (kubeconfig " + kc.path + "): " + e.msg());
    case HttpFailure::Tls: {
      std::string hint = "check certificate-authority(-data) of cluster " +
                         inQuotes(kc.clusterName) + " in kubeconfig " + kc.path +
                         ": it must hold the CA that signed the API server's certificate";
      if (!request.clientCertPem.empty()) {
        hint += ", and the client-certificate and client-key of user " + inQuotes(kc.userName) +
                " must be a pair the API server's client CA signed";
      }
      throw Error(Code::IoFailure, "TLS with " + server + " failed: " + e.msg() + "; " + hint);
    }
    case HttpFailure::Setup:
      break;
  }
  throw Error(e.code(), "cannot ask " + server + ": " + e.msg());
}

void throwForStatus(long status, std::string_view body, const Kubeconfig& kc,
                    const HttpRequest& request, std::string_view subject,
                    std::string_view permission) {
  const std::string server = serverName(kc);
  const std::string said = statusMessage(body);
  const std::string needs =
      "the identity needs " + std::string(permission) + " (" + kRbacHint + ")";
  const std::string what = request.method + " " + request.url;
  if (status == 401) {
    throw Error(Code::InvalidConfig,
                server + " rejected the credentials (401 Unauthorized: " + said +
                    "): " + kc.credentialDescription() +
                    " is not valid (an expired or revoked token, or a certificate it does not "
                    "trust); " +
                    needs);
  }
  if (status == 403) {
    throw Error(Code::InvalidConfig, server + " answered 403 Forbidden to " + std::string(subject) +
                                         " with " + kc.credentialDescription() + " (" + said +
                                         "): " + needs);
  }
  if (status == 429 || status >= 500) {
    throw ApiUnavailable(server + " answered " + std::to_string(status) + " for " + what + ": " +
                         said);
  }
  throw Error(Code::IoFailure, server + " answered " + std::to_string(status) + " for " + what +
                                   ": " + said + " (is the server URL in kubeconfig " + kc.path +
                                   " right?)");
}

}  // namespace detail

Node getNode(const Kubeconfig& kc, const NodeRequest& request) {
  const std::string server = detail::serverName(kc);
  const HttpRequest http =
      detail::apiRequest(kc, "GET", "/api/v1/nodes/" + request.name, request.timeout);

  HttpResponse response;
  try {
    response = httpRequest(http);
  } catch (const HttpError& e) {
    detail::throwNoAnswer(e, kc, http);
  }

  const long status = response.status;
  const std::string node = "node " + inQuotes(request.name);
  if (status == 200) {
    json body;
    try {
      body = sys::parseJson(response.body, "the answer");
    } catch (const Error& e) {
      throw Error(Code::DecodeFailure, server + " answered GET " + http.url + ", but " + e.msg() +
                                           ": " + detail::statusMessage(response.body));
    }
    Node n = parseNode(body, node + " from " + kc.server);
    if (n.name.empty()) n.name = request.name;
    return n;
  }
  if (status == 404 && isNodeNotFound(response.body, request.name)) {
    throw Error(Code::InvalidConfig,
                node + " not found at " + kc.server + " (the name came from " + request.nameSource +
                    "): is K8S_NODE_NAME / node.name right? It must be the "
                    "name `kubectl get nodes` shows (kubelet's --hostname-override, else the host "
                    "name in lower case)");
  }
  detail::throwForStatus(status, response.body, kc, http, "GET " + node, "`get` on `nodes`");
}

}  // namespace dualstack::k8s
