// The metrics server and its client over 127.0.0.1, on a port the kernel picks: loopback only,
// nothing leaves the machine and no link or route is touched.
#include "dualstack/agent/http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "dualstack/sys/error.hpp"

namespace dualstack::agent {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

class HttpTest : public ::testing::Test {
 protected:
  void start(HttpLimits limits = {}) {
    server = std::make_unique<HttpServer>(
        SocketAddress{"127.0.0.1", 0},
        [](std::string_view path) {
          if (path == "/healthz") return HttpReply{200, "text/plain", "ok\n"};
          if (path == "/big") return HttpReply{200, "text/plain", std::string(3 << 20, 'x')};
          return HttpReply{404, "text/plain", "no\n"};
        },
        limits);
    addr = {"127.0.0.1", server->port()};
    thread = std::jthread([this](std::stop_token st) { server->serve(st); });
  }
  // A raw connection, to misbehave with.
  int connectRaw() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(addr.port);
    ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    return fd;
  }
  std::string readAll(int fd) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out;
  }

  std::unique_ptr<HttpServer> server;
  SocketAddress addr;
  std::jthread thread;
};

TEST_F(HttpTest, ServesGetsAndLargeBodies) {
  start();
  const HttpReply ok = httpGet(addr, "/healthz", 5s);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "ok\n");
  EXPECT_EQ(httpGet(addr, "/nothing?x=1", 5s).status, 404);
  EXPECT_EQ(httpGet(addr, "/big", 5s).body.size(), 3u << 20);
}

TEST_F(HttpTest, OnlyGetAndBoundedRequests) {
  start();
  int fd = connectRaw();
  const std::string post = "POST /healthz HTTP/1.0\r\n\r\n";
  ::send(fd, post.data(), post.size(), 0);
  EXPECT_THAT(readAll(fd), HasSubstr("HTTP/1.0 405"));
  ::close(fd);

  fd = connectRaw();
  const std::string huge = "GET /" + std::string(20000, 'a');
  ::send(fd, huge.data(), huge.size(), MSG_NOSIGNAL);
  EXPECT_THAT(readAll(fd), HasSubstr("HTTP/1.0 431"));
  ::close(fd);
}

TEST_F(HttpTest, ASilentClientIsDroppedAtItsDeadlineAndOthersAreServedMeanwhile) {
  HttpLimits limits;
  limits.deadline = 300ms;
  limits.maxConnections = 4;
  start(limits);
  std::vector<int> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(connectRaw());
  EXPECT_EQ(httpGet(addr, "/healthz", 5s).status, 200) << "served beside three idle clients";
  for (int fd : idle) {
    EXPECT_THAT(readAll(fd), HasSubstr("HTTP/1.0 408")) << "ended at the deadline";
    ::close(fd);
  }
}

TEST_F(HttpTest, StopEndsServeQuickly) {
  start();
  const auto t0 = std::chrono::steady_clock::now();
  thread.request_stop();
  thread.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST(HttpClient, NothingListeningIsAClearError) {
  // Bind a port and close it again: nothing listens there now.
  HttpServer probe({"127.0.0.1", 0}, [](std::string_view) { return HttpReply{}; });
  const SocketAddress gone{"127.0.0.1", probe.port()};
  { HttpServer moved = std::move(probe); }
  try {
    httpGet(gone, "/status", 2s);
    ADD_FAILURE() << "no error";
  } catch (const sys::Error& e) {
    EXPECT_THAT(e.msg(), HasSubstr("is dualstack-agent running?"));
  }
}

TEST(HttpClient, AStatusThatIsNotANumberIsAClearError) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  socklen_t len = sizeof sa;
  const timeval bound{5, 0};  // accept and recv give up instead of hanging the test
  ASSERT_EQ(::setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound), 0);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  std::jthread peer([listener, bound] {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
    char buf[4096];
    (void)::recv(fd, buf, sizeof buf, 0);
    const std::string answer = "HTTP/1.0 2x0 OK\r\n\r\nbody";
    (void)::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
    ::close(fd);
  });
  try {
    httpGet({"127.0.0.1", ntohs(sa.sin_port)}, "/status", 5s);
    ADD_FAILURE() << "no error";
  } catch (const sys::Error& e) {
    EXPECT_THAT(e.msg(), HasSubstr("not an HTTP answer"));
  }
  peer.join();
  ::close(listener);
}

TEST(SocketAddressParse, FormsAndErrors) {
  EXPECT_EQ(parseSocketAddress("127.0.0.1:9967", "--metrics-address").port, 9967);
  EXPECT_EQ(parseSocketAddress("[::1]:80", "--metrics-address").host, "::1");
  EXPECT_EQ(parseSocketAddress("localhost:1", "--metrics-address").host, "localhost");
  for (const char* bad : {"127.0.0.1", "::1:80", "host.example:80", "1.2.3.4:99999", "1.2.3.4:x"}) {
    EXPECT_THROW(parseSocketAddress(bad, "--metrics-address"), sys::Error) << bad;
  }
}

}  // namespace
}  // namespace dualstack::agent
