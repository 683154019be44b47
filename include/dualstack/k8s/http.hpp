// HTTPS requests with libcurl: one answer read whole, or one streamed as it arrives. libcurl is
// loaded with dlopen the first time a request is made: linked normally it would add ~30 shared
// libraries to the start-up of every dualstack-ipam run, while only an ADD with a cold cache talks
// to the API server.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "dualstack/sys/error.hpp"

namespace dualstack::k8s {

struct HttpRequest {
  std::string method = "GET";  // GET or POST
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // sent with POST
  // TLS. caPem empty: the system's CAs. Client certificate and key as PEM, both or neither.
  std::string caPem;
  bool insecureSkipTlsVerify = false;
  std::string clientCertPem;
  std::string clientKeyPem;
  // httpRequest: connect + TLS + the whole answer. httpStream: connect + TLS + the response
  // headers.
  std::chrono::milliseconds timeout{2000};
  // httpStream only (zero: no limit): no byte for idleTimeout, or the whole answer taking longer
  // than maxDuration, ends it with HttpError(Unreachable).
  std::chrono::milliseconds idleTimeout{0};
  std::chrono::milliseconds maxDuration{0};
  // The largest answer httpRequest reads; for httpStream the largest error (non-2xx) answer kept.
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
  Cancelled,    // the stop token was triggered
};

class HttpError : public sys::Error {
 public:
  HttpError(HttpFailure failure, sys::Code code, std::string msg)
      : sys::Error(code, std::move(msg)), failure_(failure) {}
  HttpFailure failure() const noexcept { return failure_; }

 private:
  HttpFailure failure_;
};

// Any HTTP status is a response; HttpError when there is none. Messages hold the method, the URL
// and libcurl's description, never header values or the body. A triggered `stop` ends the request
// within a few milliseconds (HttpError(Cancelled)).
HttpResponse httpRequest(const HttpRequest& request, std::stop_token stop = {});
inline HttpResponse httpGet(const HttpRequest& request) { return httpRequest(request); }

// A GET whose 2xx answer is handed to onData piece by piece as it arrives (on the calling thread,
// never from inside libcurl; onData may throw, which ends the transfer). onData returning false
// ends the transfer early (`stopped`). The answer's status is returned with `body` holding the
// start (up to maxBody) of a non-2xx answer. HttpError for no answer, a broken transfer,
// request.idleTimeout or request.maxDuration exceeded, or `stop` triggered (Cancelled).
struct HttpStreamResult {
  long status = 0;
  std::string body;
  bool stopped = false;
};
HttpStreamResult httpStream(const HttpRequest& request,
                            const std::function<bool(std::string_view)>& onData,
                            std::stop_token stop = {});

}  // namespace dualstack::k8s
