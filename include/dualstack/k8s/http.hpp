// One HTTPS GET with libcurl. libcurl is loaded with dlopen the first time a request is made:
// linked normally it would add ~30 shared libraries to the start-up of every dualstack-ipam run,
// while only an ADD with a cold cache talks to the API server.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "dualstack/cni/error.hpp"

namespace dualstack::k8s {

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  // TLS. caPem empty: the system's CAs. Client certificate and key as PEM, both or neither.
  std::string caPem;
  bool insecureSkipTlsVerify = false;
  std::string clientCertPem;
  std::string clientKeyPem;
  std::chrono::milliseconds timeout{2000};  // connect + TLS + answer
  std::size_t maxBody = 4U << 20;
};

struct HttpResponse {
  long status = 0;
  std::string body;
};

// Why a request got no HTTP answer.
enum class HttpFailure {
  Unreachable,  // resolve, connect, timeout, connection reset: worth trying again later
  Tls,          // the server's certificate did not verify, or ours was refused or unusable
  Setup,        // libcurl missing or too old, a bad URL, an answer too large
};

class HttpError : public cni::Error {
 public:
  HttpError(HttpFailure failure, cni::Code code, std::string msg)
      : cni::Error(code, std::move(msg)), failure_(failure) {}
  HttpFailure failure() const noexcept { return failure_; }

 private:
  HttpFailure failure_;
};

// Any HTTP status is a response; HttpError when there is none. Messages hold the URL and
// libcurl's description, never header values.
HttpResponse httpGet(const HttpRequest& request);

}  // namespace dualstack::k8s
