// The k8s tests' API server: tests/k8s/apiserver.py with real TLS, a CA and certificates made
// once per test process with the openssl CLI, and helpers to write kubeconfigs and Node objects.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualstack/k8s/node.hpp"
#include "dualstack/sys/error.hpp"
#include "support/support.hpp"

namespace dualstack::k8s::testing {

// What the k8s tests name most, for their `using namespace testing;`.
using nlohmann::json;
using std::chrono::milliseconds;
using sys::Code;
using sys::Error;

inline void writeText(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) throw std::runtime_error("write " + path);
}

inline std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  auto byte = [&](std::size_t i) -> unsigned {
    return i < in.size() ? static_cast<unsigned>(static_cast<unsigned char>(in[i])) : 0U;
  };
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += t[(v >> 18) & 63];
    out += t[(v >> 12) & 63];
    out += i + 1 < in.size() ? t[(v >> 6) & 63] : '=';
    out += i + 2 < in.size() ? t[v & 63] : '=';
  }
  return out;
}

// A CA, a server certificate for 127.0.0.1 signed by it, a client certificate signed by it, and
// an unrelated CA: made once per test process.
struct Pki {
  std::string dir, caCrt, serverCrt, serverKey, clientCrt, clientKey, otherCaCrt;
  std::string clientPem;  // certificate and key in one file, like kubelet-client-current.pem

  static const Pki& get() {
    static const std::unique_ptr<dualstack::testing::TempDir> tmp =
        std::make_unique<dualstack::testing::TempDir>();
    static const Pki pki(tmp->path());
    return pki;
  }

 private:
  explicit Pki(const std::string& d) : dir(d) {
    caCrt = d + "/ca.crt";
    serverCrt = d + "/server.crt";
    serverKey = d + "/server.key";
    clientCrt = d + "/client.crt";
    clientKey = d + "/client.key";
    otherCaCrt = d + "/other-ca.crt";
    clientPem = d + "/client-current.pem";
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    writeText(d + "/server.ext",
              "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
              "extendedKeyUsage=serverAuth\n");
    writeText(d + "/client.ext", "extendedKeyUsage=clientAuth\n");
    const std::string script =
        "set -e; cd " + d + "\n" + "openssl req -x509 " + ec +
        " -days 2 -subj /CN=test-kubernetes-ca -keyout ca.key "
        "-out ca.crt\n"
        "openssl req -x509 " +
        ec +
        " -days 2 -subj /CN=some-other-ca -keyout other-ca.key "
        "-out other-ca.crt\n"
        "openssl req " +
        ec +
        " -subj /CN=kube-apiserver -keyout server.key -out server.csr\n"
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile server.ext -out server.crt\n"
        "openssl req " +
        ec +
        " -subj '/O=system:nodes/CN=system:node:worker-1' "
        "-keyout client.key -out client.csr\n"
        "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile client.ext -out client.crt\n"
        "cat client.crt client.key > client-current.pem\n";
    writeText(d + "/make.sh", script);
    std::string out;
    if (dualstack::testing::shell("sh " + d + "/make.sh 2>&1", &out) != 0) {
      throw std::runtime_error("making test certificates with openssl failed: " + out);
    }
  }
};

inline std::string pythonPath() {
  // Debian's python3 first: a python3 earlier on PATH may lack the ssl module.
  return ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

// The podCIDRs of a parsed Node as text, for comparisons.
inline std::vector<std::string> podCidrTexts(const Node& n) {
  std::vector<std::string> out;
  for (const auto& c : n.podCIDRs) out.push_back(c.prefix.str());
  return out;
}

// A Node object shaped like `kubectl get node NAME -o json` prints it.
inline json nodeObject(const std::string& name, const std::vector<std::string>& podCIDRs,
                       const std::vector<std::pair<std::string, std::string>>& addresses) {
  json addrs = json::array();
  for (const auto& [type, address] : addresses) {
    addrs.push_back({{"address", address}, {"type", type}});
  }
  addrs.push_back({{"address", name}, {"type", "Hostname"}});
  json spec = {{"providerID", "kind://docker/kind/" + name}};
  if (!podCIDRs.empty()) {
    spec["podCIDR"] = podCIDRs.front();
    spec["podCIDRs"] = podCIDRs;
  }
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata",
           {{"annotations",
             {{"kubeadm.alpha.kubernetes.io/cri-socket", "unix:///run/containerd/containerd.sock"},
              {"node.alpha.kubernetes.io/ttl", "0"},
              {"volumes.kubernetes.io/controller-managed-attach-detach", "true"}}},
            {"creationTimestamp", "2024-05-01T09:58:12Z"},
            {"labels",
             {{"beta.kubernetes.io/arch", "amd64"},
              {"beta.kubernetes.io/os", "linux"},
              {"kubernetes.io/arch", "amd64"},
              {"kubernetes.io/hostname", name},
              {"kubernetes.io/os", "linux"}}},
            {"name", name},
            {"resourceVersion", "48211"},
            {"uid", "3f9c1d2e-8a47-4f0b-9d6e-5b1c2a7e9f10"}}},
          {"spec", spec},
          {"status",
           {{"addresses", addrs},
            {"allocatable", {{"cpu", "2"}, {"memory", "3902760Ki"}, {"pods", "110"}}},
            {"capacity", {{"cpu", "2"}, {"memory", "4005160Ki"}, {"pods", "110"}}},
            {"conditions",
             {{{"lastHeartbeatTime", "2024-05-01T10:20:01Z"},
               {"lastTransitionTime", "2024-05-01T09:58:40Z"},
               {"message", "kubelet is posting ready status"},
               {"reason", "KubeletReady"},
               {"status", "True"},
               {"type", "Ready"}}}},
            {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", 10250}}}}},
            {"nodeInfo",
             {{"architecture", "amd64"},
              {"containerRuntimeVersion", "containerd://1.7.13"},
              {"kernelVersion", "6.1.0-18-amd64"},
              {"kubeProxyVersion", "v1.29.2"},
              {"kubeletVersion", "v1.29.2"},
              {"operatingSystem", "linux"},
              {"osImage", "Debian GNU/Linux 12 (bookworm)"}}}}}};
}

struct ApiServerOptions {
  double bookmarkInterval = 1.0;  // --bookmark-interval
  int minTokenExpiration = 600;   // --min-token-expiration
};

// tests/k8s/apiserver.py on 127.0.0.1, its state in a temp dir, controlled through its control
// socket (the `ctl` commands documented at the top of apiserver.py).
class TestApiServer {
 public:
  static constexpr const char* kUser = "system:serviceaccount:kube-system:dualstack-cni";

  explicit TestApiServer(ApiServerOptions options = {}) : options_(options) { start(0); }
  ~TestApiServer() { stop(); }
  TestApiServer(const TestApiServer&) = delete;
  TestApiServer& operator=(const TestApiServer&) = delete;

  // Kills it now (SIGKILL): later requests find nothing listening.
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (stdin_ >= 0) {
      ::close(stdin_);
      stdin_ = -1;
    }
  }
  // Starts it again on the same port and state, as after a crash or an upgrade.
  void restart() {
    stop();
    start(port_);
  }

  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  const std::string& stateDir() const { return state_.path(); }

  // Adds or replaces a Node (a new resourceVersion unless nothing but it changed).
  void setNode(const json& node) { ctl({{"cmd", "apply"}, {"objects", json::array({node})}}); }
  void setNodes(const std::vector<json>& nodes) { ctl({{"cmd", "apply"}, {"objects", nodes}}); }
  // The answer to GET of node `name`, byte for byte (not necessarily JSON).
  void setNodeText(const std::string& name, const std::string& body) {
    writeText(state_.file("nodes/" + name + ".raw"), body);
  }
  void deleteNode(const std::string& name) {
    ctl({{"cmd", "delete"}, {"names", json::array({name})}});
  }
  // The current resourceVersion, as the server's text.
  std::string resourceVersion() { return ctl({{"cmd", "rv"}})["rv"].get<std::string>(); }
  std::string bump() { return ctl({{"cmd", "bump"}})["rv"].get<std::string>(); }
  std::string compact() { return ctl({{"cmd", "compact"}})["rv"].get<std::string>(); }
  void closeWatches(bool abort = false) { ctl({{"cmd", "close-watches"}, {"abort", abort}}); }
  // Every request answered with `status` for `seconds` (0: normal again).
  void fail(int status, double seconds) {
    ctl({{"cmd", "fail"}, {"status", status}, {"seconds", seconds}});
  }
  // Writes `line` into every open watch stream; returns how many there were.
  int inject(const std::string& line) {
    return ctl({{"cmd", "inject"}, {"line", line}})["watchers"].get<int>();
  }
  void set(const std::string& key, const std::string& value) {
    ctl({{"cmd", "set"}, {"key", key}, {"value", value}});
  }
  json stats() { return ctl({{"cmd", "stats"}}); }

  // Replaces the accepted tokens.
  void setTokens(const std::vector<std::pair<std::string, std::string>>& tokenVerdicts) {
    std::string text;
    for (const auto& [token, verdict] : tokenVerdicts) {
      text += token + " " + verdict + " " + kUser + "\n";
    }
    writeText(state_.file("tokens"), text);
  }
  void setClient(const std::string& commonName, const std::string& verdict) {
    writeText(state_.file("clients"), commonName + " " + verdict + "\n");
  }
  // Every later request is answered with this status (0: normal again).
  void forceStatus(int status) {
    writeText(state_.file("status"), status == 0 ? "" : std::to_string(status) + "\n");
  }
  // The requests served so far, one "<path?query> <status> <how>" each.
  std::vector<std::string> requestLog() const {
    std::vector<std::string> lines;
    std::istringstream in(dualstack::testing::readFile(state_.file("requests.log")));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
  int requests() const { return static_cast<int>(requestLog().size()); }

  // One control command; its answer. Throws when the server refuses it.
  json ctl(const json& request) {
    const std::string path = state_.file("control.sock");
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (fd < 0 || path.size() >= sizeof a.sun_path) {
      if (fd >= 0) ::close(fd);
      throw std::runtime_error("cannot reach " + path);
    }
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    std::string answer;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      const std::string line = request.dump() + "\n";
      std::size_t sent = 0;
      while (sent < line.size()) {
        const ssize_t n = ::write(fd, line.data() + sent, line.size() - sent);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
      }
      if (sent == line.size()) {
        pollfd p{fd, POLLIN, 0};
        char buf[4096];
        while (answer.find('\n') == std::string::npos && ::poll(&p, 1, 30000) > 0) {
          const ssize_t n = ::read(fd, buf, sizeof buf);
          if (n <= 0) break;
          answer.append(buf, static_cast<std::size_t>(n));
        }
      }
    }
    ::close(fd);
    const json out = json::parse(answer, nullptr, false);
    if (!out.is_object() || !out.value("ok", false)) {
      throw std::runtime_error("apiserver.py ctl " + request.value("cmd", "") +
                               " failed: " + answer);
    }
    return out;
  }

 private:
  void start(int port) {
    const Pki& pki = Pki::get();
    int out[2], in[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe failed");
    }
    const std::string python = pythonPath();
    const std::string script = dualstack::testing::sourcePath("tests/k8s/apiserver.py");
    const std::string log = state_.file("server.log");
    std::vector<std::string> args = {python,
                                     script,
                                     "--cert",
                                     pki.serverCrt,
                                     "--key",
                                     pki.serverKey,
                                     "--client-ca",
                                     pki.caCrt,
                                     "--state",
                                     state_.path(),
                                     "--port",
                                     std::to_string(port),
                                     "--bookmark-interval",
                                     std::to_string(options_.bookmarkInterval),
                                     "--min-token-expiration",
                                     std::to_string(options_.minTokenExpiration)};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (err >= 0) ::dup2(err, 2);
      ::execvp(argv[0], argv.data());
      _exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    std::string line;
    pollfd p{out[0], POLLIN, 0};
    char buf[64];
    while (line.find('\n') == std::string::npos && ::poll(&p, 1, 15000) > 0) {
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    port_ = std::atoi(line.c_str());
    if (port_ <= 0) {
      stop();
      throw std::runtime_error("the test API server did not start: " +
                               dualstack::testing::readFile(log));
    }
  }

  ApiServerOptions options_;
  dualstack::testing::TempDir state_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  int port_ = 0;
};

// A port on 127.0.0.1 where nothing listens (bound, then released).
inline int closedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Listens on 127.0.0.1 but never accepts: connections complete, TLS handshakes never answer.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error(std::string("listen: ") + std::strerror(errno));
    }
    port_ = ntohs(a.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

struct KubeconfigSpec {
  std::string server;
  std::string caFile;  // certificate-authority
  std::string caData;  // PEM: written as certificate-authority-data
  bool insecure = false;
  std::string token;
  std::string tokenFile;
  std::string certFile, keyFile;
  std::string user = "dualstack-cni";
};

inline std::string kubeconfigYaml(const KubeconfigSpec& s) {
  std::string y =
      "apiVersion: v1\n"
      "kind: Config\n"
      "preferences: {}\n"
      "current-context: dualstack-cni@test\n"
      "contexts:\n"
      "- name: unused\n"
      "  context:\n"
      "    cluster: elsewhere\n"
      "    user: nobody\n"
      "- name: dualstack-cni@test\n"
      "  context:\n"
      "    cluster: test\n"
      "    user: " +
      s.user +
      "\n"
      "clusters:\n"
      "- name: elsewhere\n"
      "  cluster:\n"
      "    server: https://192.0.2.1:6443\n"
      "- name: test\n"
      "  cluster:\n"
      "    server: " +
      s.server + "\n";
  if (!s.caFile.empty()) y += "    certificate-authority: " + s.caFile + "\n";
  if (!s.caData.empty()) y += "    certificate-authority-data: " + base64(s.caData) + "\n";
  if (s.insecure) y += "    insecure-skip-tls-verify: true\n";
  y += "users:\n- name: " + s.user + "\n  user:\n";
  if (!s.token.empty()) y += "    token: " + s.token + "\n";
  if (!s.tokenFile.empty()) y += "    tokenFile: " + s.tokenFile + "\n";
  if (!s.certFile.empty()) y += "    client-certificate: " + s.certFile + "\n";
  if (!s.keyFile.empty()) y += "    client-key: " + s.keyFile + "\n";
  if (s.token.empty() && s.tokenFile.empty() && s.certFile.empty()) y += "    {}\n";
  return y;
}

}  // namespace dualstack::k8s::testing
