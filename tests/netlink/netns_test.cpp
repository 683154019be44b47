#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "dualstack/netns/netns.hpp"
#include "dualstack/netns/sysctl.hpp"
#include "dualstack/sys/error.hpp"
#include "netlink/kernel_fixture.hpp"
#include "support/support.hpp"

namespace dualstack {
namespace {

using sys::Code;
using ::testing::HasSubstr;
using testkernel::KernelTest;

using testkernel::errorOf;

// A test binary killed before its cleanup leaves its namespaces behind; the next test process
// removes them, and never those of a process that still runs.
TEST(TestSupport, NamespacesOfDeadTestProcessesAreSweptAndLiveOnesKept) {
  DUALSTACK_REQUIRE_ROOT();
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ::waitpid(child, nullptr, 0);  // a PID no process has now
  const std::string dead = "dst" + std::to_string(child) + "-swepttest";
  const std::string live = dualstack::testing::runPrefix() + "-keptbysweep";
  ASSERT_EQ(dualstack::testing::shell("ip netns add " + dead), 0);
  ASSERT_EQ(dualstack::testing::shell("ip netns add " + live), 0);
  // Another test binary starting in parallel may sweep it first: what counts is that it is gone.
  dualstack::testing::sweepStaleNetns();
  EXPECT_FALSE(std::filesystem::exists("/run/netns/" + dead));
  EXPECT_TRUE(std::filesystem::exists("/run/netns/" + live));
  dualstack::testing::shell("ip netns del " + live);
  dualstack::testing::shell("ip netns del " + dead + " 2>/dev/null");
}

// The failure modes of CNI_NETNS need no root: they are what an operator sees first.
TEST(Netns, RegularFileIsNotANetns) {
  char path[] = "/tmp/dsnltest-file-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  const auto e = errorOf([&] { netns::Netns::open(path, "CNI_NETNS"); });
  ::unlink(path);
  EXPECT_EQ(e.code(), Code::InvalidEnv);
  EXPECT_THAT(e.msg(), HasSubstr(std::string("CNI_NETNS ") + path +
                                 " is a regular file, not a network namespace"));
}

TEST(Netns, DirectoryIsNotANetns) {
  const auto e = errorOf([] { netns::Netns::open("/tmp", "CNI_NETNS"); });
  EXPECT_EQ(e.code(), Code::InvalidEnv);
  EXPECT_THAT(e.msg(), HasSubstr("CNI_NETNS /tmp is a directory, not a network namespace"));
}

TEST(Netns, OtherNamespaceTypeIsNotANetns) {
  const auto e = errorOf([] { netns::Netns::open("/proc/self/ns/mnt"); });
  EXPECT_EQ(e.code(), Code::InvalidEnv);
  EXPECT_THAT(e.msg(),
              HasSubstr("/proc/self/ns/mnt is a namespace of another type, not a network"));
}

TEST(Netns, ProcFileIsNotANetns) {
  const auto e = errorOf([] { netns::Netns::open("/proc/self/status"); });
  EXPECT_EQ(e.code(), Code::InvalidEnv);
  EXPECT_THAT(e.msg(), HasSubstr("/proc/self/status is a /proc file, not a network namespace"));
}

// A FIFO would block a plain open until a writer came; a device node would be opened by its
// driver. Both are looked at without being opened, and named.
TEST(Netns, FifoIsNamedWithoutBlocking) {
  char dir[] = "/tmp/dsnltest-fifo-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  const std::string link = std::string(dir) + "/link";
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  ::alarm(30);  // a blocking open fails the test binary instead of hanging it
  const auto e = errorOf([&] { netns::Netns::open(path, "CNI_NETNS"); });
  const auto viaLink = errorOf([&] { netns::Netns::open(link, "CNI_NETNS"); });
  ::alarm(0);
  ::unlink(link.c_str());
  ::unlink(path.c_str());
  ::rmdir(dir);
  EXPECT_EQ(e.code(), Code::InvalidEnv);
  EXPECT_THAT(e.msg(), HasSubstr("CNI_NETNS " + path + " is a FIFO, not a network namespace"));
  EXPECT_EQ(viaLink.code(), Code::InvalidEnv);
  EXPECT_THAT(viaLink.msg(),
              HasSubstr("CNI_NETNS " + link + " is a FIFO, not a network namespace"));
}

TEST(Netns, DeviceIsNamedWithoutOpeningIt) {
  for (const char* dev : {"/dev/null", "/dev/zero"}) {
    const auto e = errorOf([&] { netns::Netns::open(dev, "CNI_NETNS"); });
    EXPECT_EQ(e.code(), Code::InvalidEnv);
    EXPECT_THAT(e.msg(), HasSubstr(std::string("CNI_NETNS ") + dev +
                                   " is a character device, not a network namespace"));
  }
}

TEST(Netns, SymlinkToANetnsIsFollowed) {
  char dir[] = "/tmp/dsnltest-link-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string link = std::string(dir) + "/net";
  ASSERT_EQ(::symlink("/proc/self/ns/net", link.c_str()), 0);
  const auto viaLink = netns::Netns::open(link, "CNI_NETNS");
  ::unlink(link.c_str());
  ::rmdir(dir);
  EXPECT_TRUE(viaLink.sameAs(netns::Netns::current()));
}

TEST(Netns, MissingPathIsUnknownContainerOrNullopt) {
  const std::string path = "/run/netns/dsnltest-does-not-exist";
  const auto e = errorOf([&] { netns::Netns::open(path, "CNI_NETNS"); });
  EXPECT_EQ(e.code(), Code::UnknownContainer);
  EXPECT_THAT(e.msg(), HasSubstr("CNI_NETNS " + path + " does not exist"));
  EXPECT_FALSE(netns::Netns::openIfExists(path).has_value());
  EXPECT_FALSE(netns::Netns::openIfExists("/etc/hostname/x").has_value());
}

TEST(Netns, EmptyPathIsInvalidEnv) {
  const auto e = errorOf([] { netns::Netns::open("", "CNI_NETNS"); });
  EXPECT_EQ(e.code(), Code::InvalidEnv);
  EXPECT_THAT(e.msg(), HasSubstr("CNI_NETNS is empty"));
}

TEST(Netns, CurrentIsTheProcessNetns) {
  const auto cur = netns::Netns::current();
  const auto self = netns::Netns::open("/proc/self/ns/net");
  EXPECT_TRUE(cur.sameAs(self));
  EXPECT_GE(cur.fd(), 0);
  auto moved = netns::Netns::current();
  netns::Netns other = std::move(moved);
  EXPECT_TRUE(other.sameAs(cur));
}

TEST(Sysctl, MissingKeyNamesFileAndCause) {
  const auto e = errorOf([] { netns::readSysctl("net/ipv4/conf/dsnl-nope/forwarding"); });
  EXPECT_EQ(e.code(), Code::IoFailure);
  EXPECT_THAT(e.msg(),
              HasSubstr("read /proc/sys/net/ipv4/conf/dsnl-nope/forwarding: No such file"));
  EXPECT_THAT(e.msg(), HasSubstr("no such interface"));
}

class NetnsKernel : public KernelTest {};

TEST_F(NetnsKernel, ScopedSetnsEntersAndRestores) {
  const auto node = netns::Netns::current();
  EXPECT_TRUE(node.sameAs(nodeNs().ns()));
  {
    netns::ScopedSetns in(podNs().ns());
    EXPECT_TRUE(netns::Netns::current().sameAs(podNs().ns()));
    {
      netns::ScopedSetns same(podNs().ns());
      EXPECT_TRUE(netns::Netns::current().sameAs(podNs().ns()));
    }
    EXPECT_TRUE(netns::Netns::current().sameAs(podNs().ns()));
  }
  EXPECT_TRUE(netns::Netns::current().sameAs(node));
}

TEST_F(NetnsKernel, ScopedSetnsRestoresWhenAnExceptionIsThrown) {
  EXPECT_THROW(
      {
        netns::ScopedSetns in(podNs().ns());
        ASSERT_TRUE(netns::Netns::current().sameAs(podNs().ns()));
        throw std::runtime_error("boom");
      },
      std::runtime_error);
  EXPECT_TRUE(netns::Netns::current().sameAs(nodeNs().ns()));
}

TEST_F(NetnsKernel, OpensNamedAndProcNetns) {
  const auto byName = netns::Netns::open(podNs().path(), "CNI_NETNS");
  EXPECT_TRUE(byName.sameAs(podNs().ns()));
  EXPECT_FALSE(byName.sameAs(nodeNs().ns()));
  // /proc/thread-self/ns/net follows setns.
  netns::ScopedSetns in(podNs().ns());
  EXPECT_TRUE(netns::Netns::open("/proc/thread-self/ns/net").sameAs(byName));
}

TEST_F(NetnsKernel, SysctlsArePerNetns) {
  auto veth = makeVeth("sysctl0");
  const std::string key = "net/ipv6/conf/eth0/accept_dad";
  {
    netns::ScopedSetns in(podNs().ns());
    EXPECT_EQ(netns::readSysctl(key), "1");
    EXPECT_TRUE(netns::setSysctlIfDifferent(key, "0"));
    EXPECT_FALSE(netns::setSysctlIfDifferent(key, "0"));
    EXPECT_EQ(netns::readSysctl("/proc/sys/" + key), "0");
    netns::writeSysctl(key, "1");
    EXPECT_EQ(netns::readSysctl(key), "1");
    netns::writeSysctl(key, "0");
  }
  // eth0 lives only in the pod; the node's view of /proc/sys/net has no such interface.
  const auto e = errorOf([&] { netns::readSysctl(key); });
  EXPECT_THAT(e.msg(), HasSubstr("No such file or directory"));
  EXPECT_EQ(netns::readSysctl("net/ipv6/conf/" + veth.host.name + "/accept_dad"), "1");
  netns::ScopedSetns in(podNs().ns());
  EXPECT_EQ(netns::readSysctl(key), "0");
}

TEST_F(NetnsKernel, SysctlDirResolvesBelowItInItsNamespace) {
  auto veth = makeVeth("sysctl1");
  {
    netns::ScopedSetns in(podNs().ns());
    const netns::SysctlDir conf("net/ipv6/conf");
    EXPECT_EQ(conf.read("eth0/accept_dad"), "1");
    EXPECT_TRUE(conf.setIfDifferent("eth0/accept_dad", "0"));
    EXPECT_FALSE(conf.setIfDifferent("eth0/accept_dad", "0"));
    EXPECT_EQ(netns::readSysctl("net/ipv6/conf/eth0/accept_dad"), "0");
    conf.write("eth0/keep_addr_on_down", "1");
    EXPECT_EQ(netns::readSysctl("net/ipv6/conf/eth0/keep_addr_on_down"), "1");
    const auto e = errorOf([&] { conf.write("eth0/accept_dad", "banana"); });
    EXPECT_THAT(e.msg(), HasSubstr("write banana to /proc/sys/net/ipv6/conf/eth0/accept_dad: "
                                   "Invalid argument"));
  }
  const netns::SysctlDir conf("/proc/sys/net/ipv6/conf");
  EXPECT_EQ(conf.read(veth.host.name + "/accept_dad"), "1");
  // eth0 lives only in the pod.
  const auto e = errorOf([&] { conf.read("eth0/accept_dad"); });
  EXPECT_THAT(e.msg(), HasSubstr("read /proc/sys/net/ipv6/conf/eth0/accept_dad: No such file"));
  const auto missing = errorOf([] { netns::SysctlDir("net/ipv6/nope"); });
  EXPECT_THAT(missing.msg(), HasSubstr("open /proc/sys/net/ipv6/nope: No such file"));
}

TEST_F(NetnsKernel, SysctlWriteOfInvalidValueIsReported) {
  const auto e = errorOf([] { netns::writeSysctl("net/ipv4/ip_forward", "banana"); });
  EXPECT_EQ(e.code(), Code::IoFailure);
  EXPECT_THAT(e.msg(),
              HasSubstr("write banana to /proc/sys/net/ipv4/ip_forward: Invalid argument"));
}

}  // namespace
}  // namespace dualstack
