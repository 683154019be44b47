// Throwaway network namespaces for the kernel tests of the netns and netlink layers.
//
// Every kernel test runs in namespaces named dsnltest-<pid>-<n>-<role> that it creates itself (with
// `ip netns add`) and that are deleted again when the fixture is torn down, also after a failed
// assertion or an exception. The test process enters its own throwaway "node" namespace before it
// creates anything, so the machine's namespace is never changed; links the tests create are named
// "dst..." and a global check fails the run if one shows up outside the test namespaces.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dualstack/ip/address.hpp"
#include "dualstack/netlink/link.hpp"
#include "dualstack/netlink/socket.hpp"
#include "dualstack/netns/netns.hpp"
#include "dualstack/sys/error.hpp"
#include "support/ip.hpp"

extern char** environ;

namespace dualstack::testkernel {

// Prefix of every link name the tests create (checked in the root namespace at exit).
inline constexpr const char* kLinkPrefix = "dst";

inline bool isRoot() { return ::geteuid() == 0; }

using testing::A;
using testing::P;

// The sys::Error thrown by f (a failed expectation if none).
template <class F>
sys::Error errorOf(F&& f) {
  try {
    f();
  } catch (const sys::Error& e) {
    return e;
  }
  ADD_FAILURE() << "no sys::Error thrown";
  return sys::Error(sys::Code::Internal, "<none thrown>");
}

// Runs a program without a shell; returns its exit status (-1 if it could not run).
inline int run(const std::vector<std::string>& argv, bool quiet = true) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (quiet) {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::string uniqueName(const std::string& role) {
  static std::atomic<int> counter{0};
  return "dsnltest-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + role;
}

// A named network namespace /run/netns/<name>; deleted by the destructor.
class TempNetns {
 public:
  explicit TempNetns(const std::string& role) : name_(uniqueName(role)) {
    if (run({"ip", "netns", "add", name_}) != 0) {
      throw std::runtime_error("ip netns add " + name_ + " failed");
    }
    ns_.emplace(netns::Netns::open(path()));
  }
  TempNetns(const TempNetns&) = delete;
  TempNetns& operator=(const TempNetns&) = delete;
  ~TempNetns() {
    ns_.reset();
    run({"ip", "netns", "del", name_});
  }

  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }
  const netns::Netns& ns() const { return *ns_; }

 private:
  std::string name_;
  std::optional<netns::Netns> ns_;
};

// Base fixture: a "node" namespace the test process sits in for the whole test, a "pod"
// namespace, and one rtnetlink socket in each.
class KernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!isRoot()) {
      GTEST_SKIP() << "\n*** SKIPPED: kernel tests need root (CAP_NET_ADMIN and CAP_SYS_ADMIN to "
                      "create network namespaces); run test_netlink as root ***";
    }
    original_.emplace(netns::Netns::current());
    node_ = std::make_unique<TempNetns>("node");
    pod_ = std::make_unique<TempNetns>("pod");
    enter_.emplace(node_->ns());
    ASSERT_TRUE(netns::Netns::current().sameAs(node_->ns()));
    ASSERT_FALSE(netns::Netns::current().sameAs(*original_));
    host_.emplace("node netns");
    {
      netns::ScopedSetns inPod(pod_->ns());
      pod_sock_.emplace("pod netns");
    }
  }

  void TearDown() override {
    pod_sock_.reset();
    host_.reset();
    enter_.reset();
    if (original_) {
      EXPECT_TRUE(netns::Netns::current().sameAs(*original_));
    }
    pod_.reset();
    node_.reset();
  }

  netlink::Socket& host() { return *host_; }
  netlink::Socket& pod() { return *pod_sock_; }
  const TempNetns& nodeNs() const { return *node_; }
  const TempNetns& podNs() const { return *pod_; }

  // A veth host end "dst<tag>" in the node namespace and its peer `peer` in the pod.
  netlink::Veth makeVeth(const std::string& tag, const std::string& peer = "eth0",
                         std::string alias = {}) {
    netlink::VethSpec spec;
    spec.hostName = std::string(kLinkPrefix) + tag;
    spec.hostAlias = std::move(alias);
    spec.peerName = peer;
    spec.peerNetnsFd = podNs().ns().fd();
    return netlink::createVeth(host(), pod(), spec);
  }

 private:
  std::optional<netns::Netns> original_;
  std::unique_ptr<TempNetns> node_;
  std::unique_ptr<TempNetns> pod_;
  std::optional<netns::ScopedSetns> enter_;
  std::optional<netlink::Socket> host_;
  std::optional<netlink::Socket> pod_sock_;
};

// Global guard: removes namespaces left by earlier runs that crashed, and at the end fails the
// run if a test link leaked into the namespace the test binary was started in.
class KernelEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!isRoot()) return;
    removeStaleNamespaces();
  }
  void TearDown() override {
    if (!isRoot()) return;
    netlink::Socket sock("test runner's netns");
    for (const auto& l : netlink::listLinks(sock)) {
      EXPECT_NE(l.name.rfind(kLinkPrefix, 0), 0u)
          << "test link " << l.name << " leaked into the test runner's network namespace";
    }
  }

 private:
  static void removeStaleNamespaces() {
    DIR* d = ::opendir("/run/netns");
    if (d == nullptr) return;
    std::vector<std::string> stale;
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.rfind("dsnltest-", 0) != 0) continue;
      const long pid = std::strtol(name.c_str() + 9, nullptr, 10);
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
        stale.push_back(name);
      }
    }
    ::closedir(d);
    for (const auto& name : stale) run({"ip", "netns", "del", name});
  }
};

}  // namespace dualstack::testkernel
