#include "dualstack/agent/http.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include "dualstack/sys/error.hpp"

namespace dualstack::agent {

using sys::Code;
using sys::Error;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxReply = 16U << 20;

struct Sockaddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  int family = AF_INET;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

Sockaddr toSockaddr(const SocketAddress& a, std::string_view what) {
  Sockaddr out;
  const std::string host = a.host == "localhost" ? "127.0.0.1" : a.host;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(a.port);
    out.len = sizeof(sockaddr_in);
    out.family = AF_INET;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(a.port);
    out.len = sizeof(sockaddr_in6);
    out.family = AF_INET6;
  } else {
    throw Error(Code::InvalidConfig,
                std::string(what) + ": \"" + a.host + "\" is not an IP address (or localhost)");
  }
  return out;
}

std::string display(const SocketAddress& a) {
  const bool v6 = a.host.find(':') != std::string::npos;
  return (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
}

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

std::string serialize(const HttpReply& r) {
  std::string out = "HTTP/1.0 " + std::to_string(r.status) + " " + reason(r.status) + "\r\n";
  out += "Content-Type: " + r.contentType + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out += r.body;
  return out;
}

HttpReply plain(int status, std::string body) {
  HttpReply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

int pollTimeout(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 100));
}

// One client of the server: its request as read so far, then its reply as sent so far.
struct Conn {
  sys::Fd fd;
  std::string in, out;
  std::size_t sent = 0;
  Clock::time_point deadline;
  bool writing = false;
};

void respond(Conn& c, const HttpReply& r) {
  c.out = serialize(r);
  c.writing = true;
}

// The request line of a complete request, answered by the handler (GET only).
void answer(Conn& c, const HttpServer::Handler& handler) {
  const auto eol = c.in.find_first_of("\r\n");
  const std::string line = c.in.substr(0, eol);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos) return respond(c, plain(400, "bad request line\n"));
  const std::string method = line.substr(0, sp1);
  std::string path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));
  if (method != "GET") return respond(c, plain(405, "only GET\n"));
  try {
    respond(c, handler(path));
  } catch (const std::exception& e) {
    respond(c, plain(500, std::string(e.what()) + "\n"));
  }
}

// Reads what arrived; answers once the headers are complete. Closes on EOF or an error.
void readRequest(Conn& c, const HttpServer::Handler& handler, std::size_t maxRequest) {
  char buf[4096];
  const ssize_t got = ::recv(c.fd.get(), buf, sizeof buf, 0);
  if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
    c.fd.reset();
    return;
  }
  if (got > 0) c.in.append(buf, static_cast<std::size_t>(got));
  if (c.in.find("\r\n\r\n") != std::string::npos || c.in.find("\n\n") != std::string::npos) {
    answer(c, handler);
  } else if (c.in.size() > maxRequest) {
    respond(c, plain(431, "request too large\n"));
  }
}

// Sends what the socket takes; closes when the reply is out or on an error.
void writeReply(Conn& c) {
  const ssize_t put =
      ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
  if (put < 0 && errno != EAGAIN && errno != EINTR) {
    c.fd.reset();
    return;
  }
  if (put > 0) c.sent += static_cast<std::size_t>(put);
  if (c.sent == c.out.size()) c.fd.reset();
}

// Whatever was not done by its deadline is given up; a request still being read gets a 408.
void expire(Conn& c) {
  if (!c.writing) {
    respond(c, plain(408, "request not complete in time\n"));
    (void)::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  c.fd.reset();
}

}  // namespace

SocketAddress parseSocketAddress(std::string_view text, std::string_view flag) {
  const std::string t(text);
  const auto bad = [&](const std::string& why) {
    return Error(Code::InvalidConfig,
                 std::string(flag) + " \"" + t + "\": " + why + " (expected HOST:PORT)");
  };
  const auto colon = t.rfind(':');
  if (colon == std::string::npos) throw bad("no port");
  std::string host = t.substr(0, colon);
  const std::string port = t.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    throw bad("an IPv6 address needs brackets");
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoul(port) > 65535) {
    throw bad("port is not a number from 0 to 65535");
  }
  SocketAddress a{host, static_cast<std::uint16_t>(std::stoul(port))};
  toSockaddr(a, flag);  // checks the host
  return a;
}

HttpServer::HttpServer(const SocketAddress& address, Handler handler, HttpLimits limits)
    : handler_(std::move(handler)), limits_(limits) {
  const Sockaddr sa = toSockaddr(address, "metrics address");
  listen_ = sys::Fd(::socket(sa.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_) throw sys::errnoError(Code::IoFailure, "metrics server: socket", errno);
  const int one = 1;
  (void)::setsockopt(listen_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_.get(), sa.get(), sa.len) != 0) {
    throw sys::errnoError(Code::IoFailure, "metrics server: listen on " + display(address), errno);
  }
  if (::listen(listen_.get(), 16) != 0) {
    throw sys::errnoError(Code::IoFailure, "metrics server: listen on " + display(address), errno);
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
}

void HttpServer::serve(std::stop_token stop) {
  std::vector<Conn> conns;
  while (!stop.stop_requested()) {
    std::vector<pollfd> fds;
    const bool accepting = conns.size() < limits_.maxConnections;
    fds.push_back({listen_.get(), static_cast<short>(accepting ? POLLIN : 0), 0});
    Clock::time_point next = Clock::now() + std::chrono::milliseconds(100);
    for (const Conn& c : conns) {
      fds.push_back({c.fd.get(), static_cast<short>(c.writing ? POLLOUT : POLLIN), 0});
      next = std::min(next, c.deadline);
    }
    const int n = ::poll(fds.data(), fds.size(), pollTimeout(next));
    if (n < 0 && errno != EINTR) {
      throw sys::errnoError(Code::IoFailure, "metrics server: poll", errno);
    }
    const Clock::time_point now = Clock::now();
    for (std::size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      if (now >= c.deadline) {
        expire(c);
      } else if (fds[i + 1].revents == 0) {
        continue;
      } else if (c.writing) {
        writeReply(c);
      } else {
        readRequest(c, handler_, limits_.maxRequest);
      }
    }
    conns.erase(std::remove_if(conns.begin(), conns.end(), [](const Conn& c) { return !c.fd; }),
                conns.end());
    if (accepting && (fds[0].revents & POLLIN) != 0) {
      while (conns.size() < limits_.maxConnections) {
        sys::Fd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd) break;
        Conn c;
        c.fd = std::move(fd);
        c.deadline = Clock::now() + limits_.deadline;
        conns.push_back(std::move(c));
      }
    }
  }
}

HttpReply httpGet(const SocketAddress& address, std::string_view path,
                  std::chrono::milliseconds deadlineAfter) {
  const Sockaddr sa = toSockaddr(address, "metrics address");
  const std::string where = "GET http://" + display(address) + std::string(path);
  const Clock::time_point deadline = Clock::now() + deadlineAfter;
  sys::Fd fd(::socket(sa.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw sys::errnoError(Code::IoFailure, where, errno);
  const auto waitFor = [&](short events) {
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) throw Error(Code::IoFailure, where + ": no answer in time");
      pollfd p{fd.get(), events, 0};
      const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
      if (n > 0) return;
      if (n < 0 && errno != EINTR) throw sys::errnoError(Code::IoFailure, where, errno);
    }
  };
  if (::connect(fd.get(), sa.get(), sa.len) != 0) {
    if (errno != EINPROGRESS) {
      throw sys::errnoError(Code::IoFailure, where + " (is dualstack-agent running?)", errno);
    }
    waitFor(POLLOUT);
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      throw sys::errnoError(Code::IoFailure, where + " (is dualstack-agent running?)", err);
    }
  }
  const std::string request = "GET " + std::string(path) +
                              " HTTP/1.0\r\nHost: " + display(address) +
                              "\r\nUser-Agent: dualstack-agent\r\n\r\n";
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t put =
        ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (put > 0) {
      sent += static_cast<std::size_t>(put);
    } else if (errno == EAGAIN || errno == EINTR) {
      waitFor(POLLOUT);
    } else {
      throw sys::errnoError(Code::IoFailure, where, errno);
    }
  }
  std::string in;
  for (;;) {
    char buf[16384];
    const ssize_t got = ::recv(fd.get(), buf, sizeof buf, 0);
    if (got > 0) {
      in.append(buf, static_cast<std::size_t>(got));
      if (in.size() > kMaxReply) throw Error(Code::IoFailure, where + ": answer too large");
    } else if (got == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      waitFor(POLLIN);
    } else {
      throw sys::errnoError(Code::IoFailure, where, errno);
    }
  }
  const auto headerEnd = in.find("\r\n\r\n");
  if (in.rfind("HTTP/1.", 0) != 0 || headerEnd == std::string::npos || in.size() < 12) {
    throw Error(Code::IoFailure, where + ": not an HTTP answer");
  }
  HttpReply r;
  const char* code = in.data() + 9;
  if (std::from_chars(code, code + 3, r.status).ptr != code + 3) {
    throw Error(Code::IoFailure, where + ": not an HTTP answer");
  }
  r.body = in.substr(headerEnd + 4);
  r.contentType.clear();
  return r;
}

}  // namespace dualstack::agent
