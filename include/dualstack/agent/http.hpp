// A small HTTP/1.0 server for /healthz, /metrics and /status on a local address, and the client
// `dualstack-agent status` uses. One thread, non-blocking sockets and poll(2); every connection
// has a size limit for its request and a deadline for the whole exchange, so a slow or hostile
// client costs a connection slot for a few seconds and nothing else. GET only; each answer closes
// its connection.
//
// Written here rather than taken from libmicrohttpd: three read-only endpoints on a loopback
// address need ~300 lines, and the image then holds no HTTP library besides libcurl.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <stop_token>
#include <string>
#include <string_view>

#include "dualstack/sys/fd.hpp"

namespace dualstack::agent {

struct HttpReply {
  int status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
};

struct HttpLimits {
  std::size_t maxRequest = 8192;  // request line and headers
  std::chrono::milliseconds deadline{5000};
  std::size_t maxConnections = 16;  // more wait in the listen backlog
};

// "HOST:PORT" with HOST an IPv4 address, an IPv6 address in brackets, or "localhost".
// Error(InvalidConfig) naming `flag`.
struct SocketAddress {
  std::string host;  // as given, without brackets
  std::uint16_t port = 0;
};
SocketAddress parseSocketAddress(std::string_view text, std::string_view flag);

class HttpServer {
 public:
  using Handler = std::function<HttpReply(std::string_view path)>;

  // Binds and listens now (port 0: any free port). Error(IoFailure) when it cannot.
  HttpServer(const SocketAddress& address, Handler handler, HttpLimits limits = {});

  // Serves until `stop` is requested; returns within 100 ms of it.
  void serve(std::stop_token stop);
  std::uint16_t port() const { return port_; }

 private:
  sys::Fd listen_;
  std::uint16_t port_ = 0;
  Handler handler_;
  HttpLimits limits_;
};

// GET http://address/path with a deadline for the whole exchange. Error(IoFailure) when there is
// no answer (nothing listening, timeout), naming the address.
HttpReply httpGet(const SocketAddress& address, std::string_view path,
                  std::chrono::milliseconds deadline);

}  // namespace dualstack::agent
